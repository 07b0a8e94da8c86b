-- pgbench's version of send.sql (the peer's message insert), for the
-- PostgreSQL ceiling in `load-tests/run cluster`: a random conversation
-- among :lo … :hi, a fresh client_msg_id, a body like the generator's.
\set conversation random(:lo, :hi)
\set n random(1, 2000000000)
WITH existing AS (
    SELECT id, seq, created_at FROM peer_messages
    WHERE conversation_id = :conversation AND client_msg_id = 'pgbench-' || :client_id || '-' || :n
), next AS (
    UPDATE peer_conversations SET last_seq = last_seq + 1
    WHERE id = :conversation AND NOT EXISTS (SELECT 1 FROM existing)
    RETURNING last_seq
), inserted AS (
    INSERT INTO peer_messages (conversation_id, seq, sender_kind, client_msg_id, body)
    SELECT :conversation, last_seq, 'customer', 'pgbench-' || :client_id || '-' || :n,
           'L 123456789 Hello, I have a question about my order and its delivery.' FROM next
    RETURNING id, seq, created_at
)
SELECT id, seq, created_at, true AS fresh FROM inserted
UNION ALL
SELECT id, seq, created_at, false AS fresh FROM existing;
