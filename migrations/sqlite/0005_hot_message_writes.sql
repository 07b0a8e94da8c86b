-- Every message moves its conversation's `updated_at`. With that column in
-- an index, each message rewrote every index of the conversation row; on
-- PostgreSQL it also ruled out a HOT update (the row rewritten in place,
-- no index touched). No query reads conversations by `updated_at` through
-- this index (the queue orders by `waiting_since`), so it keeps the status
-- alone. Figures in docs/benchmarks.md.
DROP INDEX conversations_status;
CREATE INDEX conversations_status ON conversations (status);
