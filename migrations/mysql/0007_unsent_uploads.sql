-- The sweep of uploads never sent (domain::attachments) looks for old rows
-- without a message every 15 minutes on every instance. MariaDB/MySQL have
-- no partial index: this one starts with message_id, so the unsent rows
-- (message_id IS NULL) are one range of it, in created_at order.
CREATE INDEX attachments_unsent ON attachments (message_id, created_at);
