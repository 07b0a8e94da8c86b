-- What opened a ticket, when it must open only once: the key of the email
-- that opened it (domain::inbound_email). A delivery retried after the
-- ticket was made but before the email was recorded finds this ticket
-- instead of opening a second one.
ALTER TABLE tickets ADD COLUMN source_key VARCHAR(255);
CREATE UNIQUE INDEX tickets_source_key ON tickets (source_key);
