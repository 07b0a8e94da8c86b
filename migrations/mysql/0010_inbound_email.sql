-- Email that came in (domain::inbound_email): one row per email, by its
-- Message-ID (or a hash of the raw mail when it has none), so the same
-- email delivered twice is taken once. What became of it: `appended` to a
-- conversation, `opened` a ticket, `ignored` (machine mail, no sender) or
-- `failed` (unreadable: the raw mail is kept for an admin).
CREATE TABLE inbound_emails (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_key     VARCHAR(255) NOT NULL UNIQUE,
    from_email      VARCHAR(320) NOT NULL DEFAULT '',
    outcome         VARCHAR(16)  NOT NULL CHECK (outcome IN ('appended', 'opened', 'ignored', 'failed')),
    conversation_id BIGINT,
    detail          MEDIUMTEXT   NOT NULL DEFAULT (''),
    raw             MEDIUMTEXT,
    received_at     BIGINT       NOT NULL,
    FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX inbound_emails_received ON inbound_emails (received_at);
