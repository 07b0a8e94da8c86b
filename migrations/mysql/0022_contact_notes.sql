-- Contact profiles (domain::contacts): agents' notes on a person, and the
-- mark a merged contact keeps. A merged visitor row stays (its id is in
-- audit trails and old links) but names the contact it went into, so its
-- old id leads there instead of to nothing.
CREATE TABLE contact_notes (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    visitor_id  BIGINT NOT NULL,
    author_id   BIGINT,
    author_name VARCHAR(400) NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    FOREIGN KEY (visitor_id) REFERENCES visitors (id),
    FOREIGN KEY (author_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX contact_notes_visitor ON contact_notes (visitor_id, id);
ALTER TABLE visitors ADD COLUMN merged_into BIGINT;
