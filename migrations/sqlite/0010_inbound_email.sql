-- Email that came in (domain::inbound_email): one row per email, by its
-- Message-ID (or a hash of the raw mail when it has none), so the same
-- email delivered twice is taken once. What became of it: `appended` to a
-- conversation, `opened` a ticket, `ignored` (machine mail, no sender) or
-- `failed` (unreadable: the raw mail is kept for an admin).
CREATE TABLE inbound_emails (
    id              INTEGER PRIMARY KEY,
    message_key     TEXT    NOT NULL UNIQUE,
    from_email      TEXT    NOT NULL DEFAULT '',
    outcome         TEXT    NOT NULL CHECK (outcome IN ('appended', 'opened', 'ignored', 'failed')),
    conversation_id BIGINT  REFERENCES conversations (id),
    detail          TEXT    NOT NULL DEFAULT '',
    raw             TEXT,
    received_at     BIGINT  NOT NULL
);
CREATE INDEX inbound_emails_received ON inbound_emails (received_at);
