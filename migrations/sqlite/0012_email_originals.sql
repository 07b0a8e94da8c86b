-- The original of every email that entered a conversation (appended to it
-- or opened its ticket), viewable on the ticket page. The bytes live in the
-- blob store under their SHA-256, like attachments; a row here names them
-- before they are stored, so the sweep of unsent uploads never deletes the
-- bytes of an original that an upload happens to share (store::attachments).
CREATE TABLE email_originals (
    sha256     TEXT    NOT NULL PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
-- Which original an inbound email kept, and the message (by its staff
-- `seq` in `conversation_id`) that its text became: the ticket page links
-- that message to its original.
ALTER TABLE inbound_emails ADD COLUMN original_sha256 TEXT REFERENCES email_originals (sha256);
ALTER TABLE inbound_emails ADD COLUMN message_seq BIGINT;
CREATE INDEX inbound_emails_conversation ON inbound_emails (conversation_id, message_seq);
