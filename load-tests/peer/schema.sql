-- The peer's tables, beside Careline's in the same database (load-tests/run
-- creates them). A conversation holds its last seq; a message takes the
-- next one in the same statement that inserts it (send.sql).
CREATE TABLE IF NOT EXISTS peer_conversations (
    id         bigserial PRIMARY KEY,
    last_seq   bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS peer_messages (
    id            bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES peer_conversations (id),
    seq           bigint NOT NULL,
    sender_kind   text NOT NULL,
    client_msg_id text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, client_msg_id)
);
