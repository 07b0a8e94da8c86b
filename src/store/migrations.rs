//! Migrations, embedded in the binary so that a deployment is one file.
//! Each backend has its own folder under `migrations/`; a test checks that
//! every file there is listed here, so none can be forgotten.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

/// (version, description, SQLite SQL, PostgreSQL SQL, MariaDB/MySQL SQL)
pub(crate) const MIGRATIONS: &[(i64, &str, &str, &str, &str)] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
        include_str!("../../migrations/postgres/0001_foundation.sql"),
        include_str!("../../migrations/mysql/0001_foundation.sql"),
    ),
    (
        2,
        "chat",
        include_str!("../../migrations/sqlite/0002_chat.sql"),
        include_str!("../../migrations/postgres/0002_chat.sql"),
        include_str!("../../migrations/mysql/0002_chat.sql"),
    ),
    (
        3,
        "attachments",
        include_str!("../../migrations/sqlite/0003_attachments.sql"),
        include_str!("../../migrations/postgres/0003_attachments.sql"),
        include_str!("../../migrations/mysql/0003_attachments.sql"),
    ),
    (
        4,
        "page_indexes",
        include_str!("../../migrations/sqlite/0004_page_indexes.sql"),
        include_str!("../../migrations/postgres/0004_page_indexes.sql"),
        include_str!("../../migrations/mysql/0004_page_indexes.sql"),
    ),
    (
        5,
        "hot_message_writes",
        include_str!("../../migrations/sqlite/0005_hot_message_writes.sql"),
        include_str!("../../migrations/postgres/0005_hot_message_writes.sql"),
        include_str!("../../migrations/mysql/0005_hot_message_writes.sql"),
    ),
    (
        6,
        "message_options",
        include_str!("../../migrations/sqlite/0006_message_options.sql"),
        include_str!("../../migrations/postgres/0006_message_options.sql"),
        include_str!("../../migrations/mysql/0006_message_options.sql"),
    ),
    (
        7,
        "unsent_uploads",
        include_str!("../../migrations/sqlite/0007_unsent_uploads.sql"),
        include_str!("../../migrations/postgres/0007_unsent_uploads.sql"),
        include_str!("../../migrations/mysql/0007_unsent_uploads.sql"),
    ),
    (
        8,
        "report_indexes",
        include_str!("../../migrations/sqlite/0008_report_indexes.sql"),
        include_str!("../../migrations/postgres/0008_report_indexes.sql"),
        include_str!("../../migrations/mysql/0008_report_indexes.sql"),
    ),
    (
        9,
        "outbox_by_address",
        include_str!("../../migrations/sqlite/0009_outbox_by_address.sql"),
        include_str!("../../migrations/postgres/0009_outbox_by_address.sql"),
        include_str!("../../migrations/mysql/0009_outbox_by_address.sql"),
    ),
    (
        10,
        "inbound_email",
        include_str!("../../migrations/sqlite/0010_inbound_email.sql"),
        include_str!("../../migrations/postgres/0010_inbound_email.sql"),
        include_str!("../../migrations/mysql/0010_inbound_email.sql"),
    ),
    (
        11,
        "notification_prefs",
        include_str!("../../migrations/sqlite/0011_notification_prefs.sql"),
        include_str!("../../migrations/postgres/0011_notification_prefs.sql"),
        include_str!("../../migrations/mysql/0011_notification_prefs.sql"),
    ),
    (
        12,
        "email_originals",
        include_str!("../../migrations/sqlite/0012_email_originals.sql"),
        include_str!("../../migrations/postgres/0012_email_originals.sql"),
        include_str!("../../migrations/mysql/0012_email_originals.sql"),
    ),
    (
        13,
        "leases",
        include_str!("../../migrations/sqlite/0013_leases.sql"),
        include_str!("../../migrations/postgres/0013_leases.sql"),
        include_str!("../../migrations/mysql/0013_leases.sql"),
    ),
    (
        14,
        "many_sites",
        include_str!("../../migrations/sqlite/0014_many_sites.sql"),
        include_str!("../../migrations/postgres/0014_many_sites.sql"),
        include_str!("../../migrations/mysql/0014_many_sites.sql"),
    ),
    (
        15,
        "verified_identity",
        include_str!("../../migrations/sqlite/0015_verified_identity.sql"),
        include_str!("../../migrations/postgres/0015_verified_identity.sql"),
        include_str!("../../migrations/mysql/0015_verified_identity.sql"),
    ),
    (
        16,
        "ticket_sources",
        include_str!("../../migrations/sqlite/0016_ticket_sources.sql"),
        include_str!("../../migrations/postgres/0016_ticket_sources.sql"),
        include_str!("../../migrations/mysql/0016_ticket_sources.sql"),
    ),
    (
        17,
        "api_tokens",
        include_str!("../../migrations/sqlite/0017_api_tokens.sql"),
        include_str!("../../migrations/postgres/0017_api_tokens.sql"),
        include_str!("../../migrations/mysql/0017_api_tokens.sql"),
    ),
    (
        18,
        "idempotency_keys",
        include_str!("../../migrations/sqlite/0018_idempotency_keys.sql"),
        include_str!("../../migrations/postgres/0018_idempotency_keys.sql"),
        include_str!("../../migrations/mysql/0018_idempotency_keys.sql"),
    ),
    (
        19,
        "webhooks",
        include_str!("../../migrations/sqlite/0019_webhooks.sql"),
        include_str!("../../migrations/postgres/0019_webhooks.sql"),
        include_str!("../../migrations/mysql/0019_webhooks.sql"),
    ),
    (
        20,
        "contact_attributes",
        include_str!("../../migrations/sqlite/0020_contact_attributes.sql"),
        include_str!("../../migrations/postgres/0020_contact_attributes.sql"),
        include_str!("../../migrations/mysql/0020_contact_attributes.sql"),
    ),
    (
        21,
        "labels",
        include_str!("../../migrations/sqlite/0021_labels.sql"),
        include_str!("../../migrations/postgres/0021_labels.sql"),
        include_str!("../../migrations/mysql/0021_labels.sql"),
    ),
    (
        22,
        "contact_notes",
        include_str!("../../migrations/sqlite/0022_contact_notes.sql"),
        include_str!("../../migrations/postgres/0022_contact_notes.sql"),
        include_str!("../../migrations/mysql/0022_contact_notes.sql"),
    ),
];

pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|&(version, description, sqlite, postgres, mysql)| {
            let sql = match backend {
                Backend::Sqlite => sqlite,
                Backend::Postgres => postgres,
                Backend::Mysql => mysql,
            };
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sqlx::AssertSqlSafe(sql).into_sql_str(),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        for backend in ["sqlite", "postgres", "mysql"] {
            let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .expect("migrations folder")
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            files.sort();
            let listed: Vec<String> = MIGRATIONS
                .iter()
                .map(|(v, d, ..)| format!("{v:04}_{d}.sql"))
                .collect();
            assert_eq!(files, listed, "migrations/{backend} and MIGRATIONS differ");
        }
    }
}
