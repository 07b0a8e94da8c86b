-- Files attached to messages. The bytes live in the blob store under their
-- SHA-256 (content-addressed); a row is one upload into one conversation.
-- An upload is first unattached (message_id NULL, visible to its uploader
-- only) and is bound to exactly one message in that message's transaction.
CREATE TABLE attachments (
    id               TEXT    PRIMARY KEY,
    conversation_id  BIGINT NOT NULL REFERENCES conversations (id),
    uploader_kind    TEXT    NOT NULL CHECK (uploader_kind IN ('customer', 'agent')),
    uploader_user_id BIGINT REFERENCES users (id),
    name             TEXT    NOT NULL,
    content_type     TEXT    NOT NULL,
    size             BIGINT NOT NULL,
    sha256           TEXT    NOT NULL,
    message_id       BIGINT UNIQUE REFERENCES messages (id),
    created_at       BIGINT NOT NULL
);
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX attachments_conversation ON attachments (conversation_id);

-- What a message shows of its attachment (id, name, size, type) as JSON,
-- written with the message: both are immutable, so the hot paths (send,
-- resume, ticket pages) read one row per message and join nothing.
ALTER TABLE messages ADD COLUMN attachment TEXT;
