-- Personal API tokens of agents and admins (domain::api_tokens): shown
-- once, kept as a SHA-256 hash, scoped (read, write, admin), with an
-- expiry; revoked ones stay listed for the record.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scope        VARCHAR(8) NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    created_at   INTEGER NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
