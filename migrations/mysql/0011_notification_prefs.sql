-- Which emails an agent wants about their own work (domain::notifications):
-- a conversation or ticket assigned to them, and a customer writing while
-- they are away. One row per person who changed them on the account page;
-- no row means both are on.
CREATE TABLE notification_prefs (
    user_id        BIGINT NOT NULL PRIMARY KEY,
    assigned       BIGINT NOT NULL DEFAULT 1,
    customer_wrote BIGINT NOT NULL DEFAULT 1,
    updated_at     BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
