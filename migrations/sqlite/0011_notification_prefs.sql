-- Which emails an agent wants about their own work (domain::notifications):
-- a conversation or ticket assigned to them, and a customer writing while
-- they are away. One row per person who changed them on the account page;
-- no row means both are on.
CREATE TABLE notification_prefs (
    user_id        INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    assigned       INTEGER NOT NULL DEFAULT 1,
    customer_wrote INTEGER NOT NULL DEFAULT 1,
    updated_at     INTEGER NOT NULL
);
