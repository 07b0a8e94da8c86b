-- Contact profiles (domain::contacts): agents' notes on a person, and the
-- mark a merged contact keeps. A merged visitor row stays (its id is in
-- audit trails and old links) but names the contact it went into, so its
-- old id leads there instead of to nothing.
CREATE TABLE contact_notes (
    id          INTEGER PRIMARY KEY,
    visitor_id  INTEGER NOT NULL REFERENCES visitors (id),
    author_id   INTEGER REFERENCES users (id),
    author_name TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX contact_notes_visitor ON contact_notes (visitor_id, id);
ALTER TABLE visitors ADD COLUMN merged_into INTEGER;
