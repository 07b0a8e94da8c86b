-- API requests that create something, by the caller's Idempotency-Key
-- (web::idempotency): the first answer is kept and given again to a retry,
-- so a retried create never creates twice. status 0: still running.
CREATE TABLE idempotency_keys (
    user_id    BIGINT NOT NULL,
    idem_key   VARCHAR(255) NOT NULL,
    request    VARCHAR(255) NOT NULL,
    status     BIGINT NOT NULL,
    body       MEDIUMTEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
