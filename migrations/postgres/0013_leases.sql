-- Work that one instance does at a time (store::leases): the support
-- mailbox is read by whoever holds its lease; a holder that dies loses it
-- when it expires, and another instance takes over.
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
