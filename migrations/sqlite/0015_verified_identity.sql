-- Customers the host site already knows (domain::identity). Each site has
-- a secret (sealed) its server signs user ids with; a rotated secret is
-- still accepted until previous_until. A verified visitor carries the host
-- site's user id, one per site, and may hold a token on several devices.
CREATE TABLE site_identity (
    site_id          INTEGER PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    secret           TEXT    NOT NULL,
    previous_secret  TEXT,
    previous_until   INTEGER,
    require_verified INTEGER NOT NULL DEFAULT 0,
    updated_at       INTEGER NOT NULL
);
ALTER TABLE visitors ADD COLUMN external_id TEXT;
ALTER TABLE visitors ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX visitors_site_external ON visitors (site_id, external_id);
CREATE TABLE visitor_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    visitor_id INTEGER NOT NULL REFERENCES visitors (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX visitor_tokens_visitor ON visitor_tokens (visitor_id);
