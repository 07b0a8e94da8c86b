-- The sweep of uploads never sent (domain::attachments) looks for old rows
-- without a message every 15 minutes on every instance; sent files are
-- nearly all of the table, so the index holds only the unsent ones.
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;
