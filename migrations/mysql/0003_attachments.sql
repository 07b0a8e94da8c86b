-- Files attached to messages. The bytes live in the blob store under their
-- SHA-256 (content-addressed); a row is one upload into one conversation.
-- An upload is first unattached (message_id NULL, visible to its uploader
-- only) and is bound to exactly one message in that message's transaction.
CREATE TABLE attachments (
    id               VARCHAR(64)  NOT NULL PRIMARY KEY,
    conversation_id  BIGINT       NOT NULL,
    uploader_kind    VARCHAR(16)  NOT NULL CHECK (uploader_kind IN ('customer', 'agent')),
    uploader_user_id BIGINT,
    name             VARCHAR(255) NOT NULL,
    content_type     VARCHAR(255) NOT NULL,
    size             BIGINT       NOT NULL,
    sha256           VARCHAR(64)  NOT NULL,
    message_id       BIGINT UNIQUE,
    created_at       BIGINT       NOT NULL,
    FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    FOREIGN KEY (uploader_user_id) REFERENCES users (id),
    FOREIGN KEY (message_id) REFERENCES messages (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX attachments_sha256 ON attachments (sha256);
CREATE INDEX attachments_conversation ON attachments (conversation_id);

-- What a message shows of its attachment (id, name, size, type) as JSON,
-- written with the message: both are immutable, so the hot paths (send,
-- resume, ticket pages) read one row per message and join nothing.
ALTER TABLE messages ADD COLUMN attachment MEDIUMTEXT;

-- The lock of one blob hash (store::attachments): PostgreSQL takes an
-- advisory lock for the transaction; here a transaction locks one of these
-- rows (the hash's first 32 bits modulo 1024). Two hashes on one slot only
-- wait for each other.
CREATE TABLE blob_locks (
    slot BIGINT NOT NULL PRIMARY KEY
) ENGINE = InnoDB;
-- 32 x 32 rows (MariaDB stops a recursion at 1,000 steps).
INSERT INTO blob_locks (slot)
WITH RECURSIVE d (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 31)
SELECT a.n * 32 + b.n FROM d a, d b;
