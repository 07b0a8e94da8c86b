-- The outbox counts what one address was sent in a day (store::outbox,
-- EMAILS_PER_ADDRESS_PER_DAY) on every email it queues.
CREATE INDEX email_outbox_by_address ON email_outbox (to_email, created_at);
