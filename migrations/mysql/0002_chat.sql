-- Real-time chat: presence and capacity, bot state, read markers, the FAQ
-- bot's entries, canned replies, ratings and the email outbox.

ALTER TABLE users ADD COLUMN capacity BIGINT NOT NULL DEFAULT 5;

CREATE TABLE agent_presence (
    user_id    BIGINT      NOT NULL PRIMARY KEY,
    status     VARCHAR(16) NOT NULL CHECK (status IN ('online', 'away')),
    updated_at BIGINT      NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE conversations ADD COLUMN bot_misses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN agent_read_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN customer_read_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN waiting_since BIGINT;
CREATE INDEX conversations_assignee ON conversations (assignee_id, status);

ALTER TABLE visitors ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;

CREATE TABLE faq_entries (
    id         BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    questions  MEDIUMTEXT NOT NULL,
    answer     MEDIUMTEXT NOT NULL,
    created_at BIGINT     NOT NULL,
    updated_at BIGINT     NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE canned_replies (
    id         BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title      MEDIUMTEXT NOT NULL,
    body       MEDIUMTEXT NOT NULL,
    created_at BIGINT     NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE csat_ratings (
    id              BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT     NOT NULL UNIQUE,
    score           BIGINT     NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment         MEDIUMTEXT NOT NULL DEFAULT (''),
    created_at      BIGINT     NOT NULL,
    FOREIGN KEY (conversation_id) REFERENCES conversations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE email_outbox (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    to_email        VARCHAR(320) NOT NULL,
    template        VARCHAR(64)  NOT NULL,
    payload         MEDIUMTEXT   NOT NULL,
    status          VARCHAR(16)  NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        BIGINT       NOT NULL DEFAULT 0,
    next_attempt_at BIGINT       NOT NULL,
    last_error      MEDIUMTEXT   NOT NULL DEFAULT (''),
    created_at      BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);

-- A small FAQ so that a fresh install's bot can answer something useful.
-- One question variant per line.
INSERT INTO faq_entries (questions, answer, created_at, updated_at) VALUES
('What are your opening hours?
When are you open?
business hours
what time do you close', 'Our team answers chats Monday to Friday, 9:00 to 17:00. Outside those hours, leave your email and we will reply by email.', 0, 0),
('I forgot my password
How do I reset my password?
cannot log in
password reset', 'Use "Forgot password" on the login page; we send you a link that works once within an hour. If the email does not arrive, ask for a person here.', 0, 0),
('How do I get a refund?
refund policy
I want my money back
can I return my order', 'You can ask for a refund within 30 days of purchase. Tell us your order number and a person will take it from there.', 0, 0),
('Where is my order?
track my order
delivery status
when will my package arrive', 'You can follow your delivery from the link in your confirmation email. If it is late, give us your order number and we will look into it.', 0, 0),
('How do I contact support?
email address for support
phone number', 'You are in the right place: ask here, or raise a ticket from your account and follow its progress there.', 0, 0);

-- Single-use tokens sent by email (address verification; password reset
-- later). Only a hash is stored.
CREATE TABLE email_tokens (
    token_hash VARCHAR(128) NOT NULL PRIMARY KEY,
    user_id    BIGINT       NOT NULL,
    purpose    VARCHAR(32)  NOT NULL,
    expires_at BIGINT       NOT NULL,
    used_at    BIGINT,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Settings admins change at run time (the bot's). Secret values are stored
-- encrypted (XChaCha20-Poly1305) with a key derived from the server secret.
CREATE TABLE settings (
    name       VARCHAR(128) NOT NULL PRIMARY KEY,
    value      MEDIUMTEXT   NOT NULL,
    updated_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The bot's own session for a conversation (Watson Assistant v2).
ALTER TABLE conversations ADD COLUMN bot_session MEDIUMTEXT;
