-- Careline foundation schema (SQLite). Timestamps are UTC unix milliseconds.
-- Flags are INTEGER 0/1 so that the same SQL runs on every backend.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('customer', 'agent', 'admin')),
    verified      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sites (
    id              INTEGER PRIMARY KEY,
    site_key        TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    allowed_origins TEXT    NOT NULL DEFAULT '',
    greeting        TEXT    NOT NULL DEFAULT '',
    color           TEXT    NOT NULL DEFAULT '#1f6feb',
    require_email   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE TABLE visitors (
    id          INTEGER PRIMARY KEY,
    site_id     INTEGER NOT NULL REFERENCES sites (id),
    token_hash  TEXT    UNIQUE,
    user_id     INTEGER REFERENCES users (id),
    name        TEXT    NOT NULL DEFAULT '',
    email       TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX visitors_site_user ON visitors (site_id, user_id);
CREATE INDEX visitors_email ON visitors (email);

CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    visitor_id   INTEGER NOT NULL REFERENCES visitors (id),
    status       TEXT    NOT NULL CHECK (status IN ('bot', 'waiting', 'live', 'resolved', 'closed')),
    assignee_id  INTEGER REFERENCES users (id),
    team         TEXT,
    last_seq     INTEGER NOT NULL DEFAULT 0,
    -- Private notes are not numbered for customers: each audience has its
    -- own gap-free sequence (staff: last_seq; customers: last_public_seq).
    last_public_seq INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX conversations_visitor ON conversations (visitor_id);
CREATE INDEX conversations_status ON conversations (status, updated_at);

CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq            INTEGER NOT NULL,
    public_seq     INTEGER,
    sender_kind    TEXT    NOT NULL CHECK (sender_kind IN ('customer', 'bot', 'agent', 'system')),
    sender_user_id INTEGER REFERENCES users (id),
    sender_name    TEXT    NOT NULL DEFAULT '',
    body           TEXT    NOT NULL,
    private        INTEGER NOT NULL DEFAULT 0,
    client_msg_id  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, public_seq),
    UNIQUE (conversation_id, client_msg_id)
);

CREATE TABLE counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
-- Ticket numbers start at 1001 so that the first ticket reads like a real one.
INSERT INTO counters (name, value) VALUES ('ticket_number', 1000);

CREATE TABLE tickets (
    id                 INTEGER PRIMARY KEY,
    number             INTEGER NOT NULL UNIQUE,
    conversation_id    INTEGER NOT NULL UNIQUE REFERENCES conversations (id),
    customer_id        INTEGER NOT NULL REFERENCES visitors (id),
    subject            TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    priority           TEXT    NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id        INTEGER REFERENCES users (id),
    team               TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    first_response_at  INTEGER,
    resolved_at        INTEGER
);
CREATE INDEX tickets_customer ON tickets (customer_id, updated_at);
CREATE INDEX tickets_status ON tickets (status, updated_at);
CREATE INDEX tickets_assignee ON tickets (assignee_id, updated_at);
CREATE INDEX tickets_updated ON tickets (updated_at);

CREATE TABLE ticket_events (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets (id),
    at            INTEGER NOT NULL,
    actor_user_id INTEGER REFERENCES users (id),
    actor_name    TEXT    NOT NULL DEFAULT '',
    kind          TEXT    NOT NULL,
    old_value     TEXT,
    new_value     TEXT,
    private       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor_user_id INTEGER REFERENCES users (id),
    action        TEXT    NOT NULL,
    detail        TEXT    NOT NULL DEFAULT ''
);
