-- Labels (domain::labels): admin-defined, coloured tags on tickets. A
-- name is unique ignoring case: `name_key` is the name lower-cased by the
-- domain, so every backend compares the same way. A conversation's labels
-- are its ticket's (docs/decisions.md).
CREATE TABLE labels (
    id         INTEGER PRIMARY KEY,
    name       VARCHAR(40) NOT NULL,
    name_key   VARCHAR(40) NOT NULL,
    colour     VARCHAR(20) NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX labels_name_key ON labels (name_key);
CREATE TABLE ticket_labels (
    ticket_id INTEGER NOT NULL,
    label_id  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, label_id)
);
-- The list's filter by label, and removing a label from everything.
CREATE INDEX ticket_labels_label ON ticket_labels (label_id, ticket_id);
