-- API requests that create something, by the caller's Idempotency-Key
-- (web::idempotency): the first answer is kept and given again to a retry,
-- so a retried create never creates twice. status 0: still running.
CREATE TABLE idempotency_keys (
    user_id    INTEGER NOT NULL,
    idem_key   TEXT NOT NULL,
    request    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
