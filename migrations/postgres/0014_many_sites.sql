-- Many sites (domain::sites): each embeds its own widget, placed at the
-- bottom right or bottom left of its pages. A site that had conversations
-- is archived rather than deleted (`archived_at`): its history stays, its
-- widget takes no new chats. Each FAQ entry answers on every site
-- (`all_sites`) or only on the sites listed in `faq_entry_sites`.
ALTER TABLE sites ADD COLUMN widget_position TEXT NOT NULL DEFAULT 'bottom-right'
    CHECK (widget_position IN ('bottom-right', 'bottom-left'));
ALTER TABLE sites ADD COLUMN archived_at BIGINT;

ALTER TABLE faq_entries ADD COLUMN all_sites BIGINT NOT NULL DEFAULT 1;
CREATE TABLE faq_entry_sites (
    faq_entry_id BIGINT NOT NULL REFERENCES faq_entries (id) ON DELETE CASCADE,
    site_id      BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    PRIMARY KEY (faq_entry_id, site_id)
);
CREATE INDEX faq_entry_sites_site ON faq_entry_sites (site_id);

-- The ticket list and the console filter by site; the report splits by it.
CREATE INDEX conversations_site ON conversations (site_id, created_at);

-- Changes to sites take turns on this row (store::sites): two admins adding
-- sites of one name, or removing the last two sites, at the same moment.
INSERT INTO counters (name, value) VALUES ('site_changes', 0);
