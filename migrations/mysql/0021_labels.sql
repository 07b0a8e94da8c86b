-- Labels (domain::labels): admin-defined, coloured tags on tickets. A
-- name is unique ignoring case: `name_key` is the name lower-cased by the
-- domain, so every backend compares the same way (and the binary collation
-- adds no folding of its own). A conversation's labels are its ticket's
-- (docs/decisions.md).
CREATE TABLE labels (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name       VARCHAR(40) NOT NULL,
    name_key   VARCHAR(40) NOT NULL,
    colour     VARCHAR(20) NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE UNIQUE INDEX labels_name_key ON labels (name_key);
CREATE TABLE ticket_labels (
    ticket_id BIGINT NOT NULL,
    label_id  BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, label_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- The list's filter by label, and removing a label from everything.
CREATE INDEX ticket_labels_label ON ticket_labels (label_id, ticket_id);
