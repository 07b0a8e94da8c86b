-- Personal API tokens of agents and admins (domain::api_tokens): shown
-- once, kept as a SHA-256 hash, scoped (read, write, admin), with an
-- expiry; revoked ones stay listed for the record.
CREATE TABLE api_tokens (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    name         VARCHAR(400) NOT NULL,
    token_hash   VARCHAR(64) NOT NULL UNIQUE,
    scope        VARCHAR(8) NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
