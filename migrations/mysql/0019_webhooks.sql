-- Signed webhooks (domain::webhooks). The endpoints admins register; the
-- journal of events, each written in the same transaction as the change it
-- tells of (and only while an enabled endpoint wants that kind); one
-- delivery per event and endpoint, its body frozen when fanned out; and
-- every attempt, for the endpoint's delivery log.
CREATE TABLE webhook_endpoints (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    url             TEXT NOT NULL,
    -- ",conversation.started,message.created," : matched with LIKE.
    events          TEXT NOT NULL,
    secret_sealed   TEXT NOT NULL,
    include_private BIGINT NOT NULL DEFAULT 0,
    enabled         BIGINT NOT NULL DEFAULT 1,
    disabled_reason VARCHAR(1000) NOT NULL DEFAULT '',
    failures_in_row BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE TABLE webhook_events (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    kind            VARCHAR(40) NOT NULL,
    conversation_id BIGINT,
    refs            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    fanned_out      BIGINT NOT NULL DEFAULT 0,
    claimed_until   BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX webhook_events_waiting ON webhook_events (fanned_out, conversation_id, id);
CREATE TABLE webhook_deliveries (
    id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    endpoint_id     BIGINT NOT NULL,
    event_id        BIGINT NOT NULL,
    conversation_id BIGINT,
    kind            VARCHAR(40) NOT NULL,
    body            TEXT NOT NULL,
    status          VARCHAR(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    last_status     BIGINT,
    last_latency_ms BIGINT,
    last_excerpt    VARCHAR(1000) NOT NULL DEFAULT '',
    last_error      VARCHAR(1000) NOT NULL DEFAULT '',
    last_attempt_at BIGINT,
    delivered_at    BIGINT,
    created_at      BIGINT NOT NULL,
    UNIQUE (endpoint_id, event_id),
    FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, conversation_id, status, event_id);
CREATE TABLE webhook_attempts (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    endpoint_id  BIGINT NOT NULL,
    delivery_id  BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status       BIGINT,
    latency_ms   BIGINT NOT NULL,
    excerpt      TEXT NOT NULL,
    error        TEXT NOT NULL,
    FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    FOREIGN KEY (delivery_id) REFERENCES webhook_deliveries (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
