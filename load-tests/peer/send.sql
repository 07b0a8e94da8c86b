-- One message, in one statement (one round trip, one implicit transaction):
-- a retried client_msg_id gets its first row back; otherwise the
-- conversation's next seq (the row lock orders concurrent senders) and the
-- insert. $1 conversation, $2 client_msg_id, $3 sender kind, $4 body.
-- server.js runs it for every `send`; load-tests/run's pgbench ceiling runs
-- the same statement (pgbench-send.sql).
WITH existing AS (
    SELECT id, seq, created_at FROM peer_messages
    WHERE conversation_id = $1 AND client_msg_id = $2
), next AS (
    UPDATE peer_conversations SET last_seq = last_seq + 1
    WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM existing)
    RETURNING last_seq
), inserted AS (
    INSERT INTO peer_messages (conversation_id, seq, sender_kind, client_msg_id, body)
    SELECT $1, last_seq, $3, $2, $4 FROM next
    RETURNING id, seq, created_at
)
SELECT id, seq, created_at, true AS fresh FROM inserted
UNION ALL
SELECT id, seq, created_at, false AS fresh FROM existing
