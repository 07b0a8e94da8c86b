-- Work that one instance does at a time (store::leases): the support
-- mailbox is read by whoever holds its lease; a holder that dies loses it
-- when it expires, and another instance takes over.
CREATE TABLE leases (
    name       VARCHAR(191) NOT NULL PRIMARY KEY,
    holder     VARCHAR(64)  NOT NULL,
    expires_at BIGINT       NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
