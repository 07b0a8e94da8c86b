-- Signed webhooks (domain::webhooks). The endpoints admins register; the
-- journal of events, each written in the same transaction as the change it
-- tells of (and only while an enabled endpoint wants that kind); one
-- delivery per event and endpoint, its body frozen when fanned out; and
-- every attempt, for the endpoint's delivery log.
CREATE TABLE webhook_endpoints (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL,
    -- ",conversation.started,message.created," : matched with LIKE.
    events          TEXT NOT NULL,
    secret_sealed   TEXT NOT NULL,
    include_private INTEGER NOT NULL DEFAULT 0,
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT NOT NULL DEFAULT '',
    failures_in_row INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY,
    kind            VARCHAR(40) NOT NULL,
    conversation_id INTEGER,
    refs            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    fanned_out      INTEGER NOT NULL DEFAULT 0,
    claimed_until   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_events_waiting ON webhook_events (fanned_out, conversation_id, id);
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL,
    conversation_id INTEGER,
    kind            VARCHAR(40) NOT NULL,
    body            TEXT NOT NULL,
    status          VARCHAR(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER NOT NULL DEFAULT 0,
    last_status     INTEGER,
    last_latency_ms INTEGER,
    last_excerpt    TEXT NOT NULL DEFAULT '',
    last_error      TEXT NOT NULL DEFAULT '',
    last_attempt_at INTEGER,
    delivered_at    INTEGER,
    created_at      INTEGER NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, conversation_id, status, event_id);
CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY,
    endpoint_id  INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    delivery_id  INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    status       INTEGER,
    latency_ms   INTEGER NOT NULL,
    excerpt      TEXT NOT NULL,
    error        TEXT NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
