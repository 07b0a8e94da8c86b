-- A bot answer's option buttons (Watson `option` and `suggestion`
-- responses), kept with the message so that a resume or a reloaded widget
-- shows them again: a JSON array of strings, NULL for every message without
-- any (all existing rows, and every message but a bot's question). Adding a
-- nullable column without a default rewrites no rows.
ALTER TABLE messages ADD COLUMN options MEDIUMTEXT;
