-- Every message moves its conversation's `updated_at`; with that column in
-- an index, each message rewrote the index entry too. No query reads
-- conversations by `updated_at` through this index (the queue orders by
-- `waiting_since`), so it keeps the status alone (as on PostgreSQL).
CREATE INDEX conversations_status_only ON conversations (status);
DROP INDEX conversations_status ON conversations;
ALTER TABLE conversations RENAME INDEX conversations_status_only TO conversations_status;
