-- Careline foundation schema (MariaDB/MySQL). Timestamps are UTC unix
-- milliseconds. Flags are BIGINT 0/1 so that the same SQL runs on every
-- backend.
--
-- What differs from migrations/postgres, and why (docs/decisions.md):
-- * utf8mb4 with the binary collation: every character (emoji, 4-byte
--   scripts) fits, and text compares byte by byte as on PostgreSQL and
--   SQLite, so `=` and UNIQUE are case-sensitive everywhere.
-- * Text that an index or key covers is VARCHAR with a bound at or above
--   what the domain accepts (an email is at most 254 bytes, a name 100
--   characters); other text is MEDIUMTEXT, whose defaults are written as
--   expressions, `DEFAULT ('')`, as MySQL 8 requires.
-- * Foreign keys are table constraints: MySQL ignores a REFERENCES written
--   on the column itself.

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(320) NOT NULL UNIQUE,
    name          VARCHAR(255) NOT NULL,
    password_hash MEDIUMTEXT   NOT NULL,
    role          VARCHAR(16)  NOT NULL CHECK (role IN ('customer', 'agent', 'admin')),
    verified      BIGINT       NOT NULL DEFAULT 0,
    created_at    BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    token_hash   VARCHAR(128) NOT NULL PRIMARY KEY,
    user_id      BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    expires_at   BIGINT       NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sites (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_key        VARCHAR(128) NOT NULL UNIQUE,
    name            MEDIUMTEXT   NOT NULL,
    allowed_origins MEDIUMTEXT   NOT NULL DEFAULT (''),
    greeting        MEDIUMTEXT   NOT NULL DEFAULT (''),
    color           VARCHAR(32)  NOT NULL DEFAULT '#1f6feb',
    require_email   BIGINT       NOT NULL DEFAULT 0,
    created_at      BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE visitors (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id     BIGINT       NOT NULL,
    token_hash  VARCHAR(128) UNIQUE,
    user_id     BIGINT,
    name        VARCHAR(255) NOT NULL DEFAULT '',
    email       VARCHAR(320) NOT NULL DEFAULT '',
    created_at  BIGINT       NOT NULL,
    FOREIGN KEY (site_id) REFERENCES sites (id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE UNIQUE INDEX visitors_site_user ON visitors (site_id, user_id);
CREATE INDEX visitors_email ON visitors (email);

CREATE TABLE conversations (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    site_id      BIGINT       NOT NULL,
    visitor_id   BIGINT       NOT NULL,
    status       VARCHAR(16)  NOT NULL CHECK (status IN ('bot', 'waiting', 'live', 'resolved', 'closed')),
    assignee_id  BIGINT,
    team         VARCHAR(255),
    last_seq     BIGINT       NOT NULL DEFAULT 0,
    -- Private notes are not numbered for customers: each audience has its
    -- own gap-free sequence (staff: last_seq; customers: last_public_seq).
    last_public_seq BIGINT    NOT NULL DEFAULT 0,
    created_at   BIGINT       NOT NULL,
    updated_at   BIGINT       NOT NULL,
    FOREIGN KEY (site_id) REFERENCES sites (id),
    FOREIGN KEY (visitor_id) REFERENCES visitors (id),
    FOREIGN KEY (assignee_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX conversations_visitor ON conversations (visitor_id);
CREATE INDEX conversations_status ON conversations (status, updated_at);

CREATE TABLE messages (
    id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT      NOT NULL,
    seq            BIGINT       NOT NULL,
    public_seq     BIGINT,
    sender_kind    VARCHAR(16)  NOT NULL CHECK (sender_kind IN ('customer', 'bot', 'agent', 'system')),
    sender_user_id BIGINT,
    sender_name    VARCHAR(255) NOT NULL DEFAULT '',
    body           MEDIUMTEXT   NOT NULL,
    private        BIGINT       NOT NULL DEFAULT 0,
    client_msg_id  VARCHAR(255) NOT NULL,
    created_at     BIGINT       NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, public_seq),
    UNIQUE (conversation_id, client_msg_id),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    FOREIGN KEY (sender_user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE counters (
    name  VARCHAR(64) NOT NULL PRIMARY KEY,
    value BIGINT      NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Ticket numbers start at 1001 so that the first ticket reads like a real one.
INSERT INTO counters (name, value) VALUES ('ticket_number', 1000);

CREATE TABLE tickets (
    id                 BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    number             BIGINT       NOT NULL UNIQUE,
    conversation_id    BIGINT       NOT NULL UNIQUE,
    customer_id        BIGINT       NOT NULL,
    subject            MEDIUMTEXT   NOT NULL,
    status             VARCHAR(16)  NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    priority           VARCHAR(16)  NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id        BIGINT,
    team               VARCHAR(255),
    created_at         BIGINT       NOT NULL,
    updated_at         BIGINT       NOT NULL,
    first_response_at  BIGINT,
    resolved_at        BIGINT,
    FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    FOREIGN KEY (customer_id) REFERENCES visitors (id),
    FOREIGN KEY (assignee_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX tickets_customer ON tickets (customer_id, updated_at);
CREATE INDEX tickets_status ON tickets (status, updated_at);
CREATE INDEX tickets_assignee ON tickets (assignee_id, updated_at);
CREATE INDEX tickets_updated ON tickets (updated_at);

CREATE TABLE ticket_events (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    ticket_id     BIGINT       NOT NULL,
    at            BIGINT       NOT NULL,
    actor_user_id BIGINT,
    actor_name    VARCHAR(255) NOT NULL DEFAULT '',
    kind          VARCHAR(64)  NOT NULL,
    old_value     MEDIUMTEXT,
    new_value     MEDIUMTEXT,
    private       BIGINT       NOT NULL DEFAULT 0,
    FOREIGN KEY (ticket_id) REFERENCES tickets (id),
    FOREIGN KEY (actor_user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE audit_log (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at            BIGINT       NOT NULL,
    actor_user_id BIGINT,
    action        VARCHAR(255) NOT NULL,
    detail        MEDIUMTEXT   NOT NULL DEFAULT (''),
    FOREIGN KEY (actor_user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
