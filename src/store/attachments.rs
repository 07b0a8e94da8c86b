//! Attachment rows: one upload into one conversation, bound to at most one
//! message (in the message's own transaction, see `append_message`).
//!
//! Blobs are shared by every upload of the same bytes, so a blob may go
//! only when no row names it any more. The rows of one hash change under
//! that hash's lock ([`Store::lock_blob`]): an upload records its row under
//! it *before* it stores the bytes, and removing an unsent upload checks for
//! other rows and deletes the bytes under it. Whichever comes second sees
//! the other's work: either the sweeper finds the new row and keeps the
//! bytes, or the upload finds them gone and stores them again.

use std::future::Future;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::rows::{flag, text_enum};
use super::{Backend, Store, StoreResult};
use crate::model::SenderKind;
use crate::model::{Attachment, ConversationId};

const ATTACHMENT_SELECT: &str = "
SELECT a.id, a.conversation_id, a.uploader_kind, a.uploader_user_id, a.name, a.content_type,
       a.size, a.sha256, a.message_id, COALESCE(m.private, 0) AS private, a.created_at
FROM attachments a
LEFT JOIN messages m ON m.id = a.message_id";

fn attachment(row: &AnyRow) -> Result<Attachment, sqlx::Error> {
    Ok(Attachment {
        id: row.try_get("id")?,
        conversation_id: row.try_get("conversation_id")?,
        uploader_kind: text_enum(row, "uploader_kind", SenderKind::parse)?,
        uploader_user_id: row.try_get("uploader_user_id")?,
        name: row.try_get("name")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        message_id: row.try_get("message_id")?,
        private: flag(row, "private")?,
        created_at: row.try_get("created_at")?,
    })
}

/// What became of an unsent upload the sweeper removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadRemoval {
    /// Its row and its bytes are gone.
    Removed,
    /// Its row is gone; its bytes stay for another upload of the same file.
    BytesShared,
    /// It was sent meanwhile, or removed already: nothing changed.
    NotThere,
    /// Its bytes could not be deleted. On PostgreSQL nothing changed: the
    /// next sweep tries again. On SQLite its row is gone and the bytes stay
    /// in the blob store (the caller logs them).
    BytesFailed,
}

/// The class of PostgreSQL advisory locks that guard blob hashes (two-key
/// locks, so that they cannot collide with single-key locks elsewhere).
const BLOB_LOCKS: i32 = 0x424c_4f42; // "BLOB"

/// The rows of `blob_locks` on MariaDB/MySQL (migrations/mysql/0003).
const BLOB_LOCK_SLOTS: i64 = 1024;

/// A hash's lock key: its first 32 bits. Two hashes that share them only
/// wait for each other.
fn blob_lock_key(sha256: &str) -> i32 {
    let prefix = sha256.get(..8).unwrap_or(sha256);
    u32::from_str_radix(prefix, 16).unwrap_or(0) as i32
}

impl Store {
    /// Records an upload, under its hash's lock. Store its bytes only after
    /// this returns (see the module's comment), and remove the row with
    /// [`Store::remove_unsent_upload`] if that fails.
    pub async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()> {
        let _blob = self.sqlite_blob_turn().await;
        let (mut tx, _turn) = self.write_tx().await?;
        self.lock_blob(&mut tx, &a.sha256).await?;
        sqlx::query(self.sql(
            "INSERT INTO attachments (id, conversation_id, uploader_kind, uploader_user_id, name, content_type, size, sha256, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&a.id)
        .bind(a.conversation_id)
        .bind(a.uploader_kind.as_str())
        .bind(a.uploader_user_id)
        .bind(&a.name)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(a.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Names the bytes `sha256` (`size` bytes) as an email's original,
    /// under the hash's lock, before they are stored: the same order as an
    /// upload's row (see the module's comment). Naming them again is a no-op.
    pub async fn name_email_original(&self, sha256: &str, size: i64) -> StoreResult<()> {
        let _blob = self.sqlite_blob_turn().await;
        let (mut tx, _turn) = self.write_tx().await?;
        self.lock_blob(&mut tx, sha256).await?;
        let named =
            sqlx::query(self.sql("SELECT 1 AS named FROM email_originals WHERE sha256 = ?"))
                .bind(sha256)
                .fetch_optional(&mut *tx)
                .await?;
        if named.is_none() {
            sqlx::query(
                self.sql("INSERT INTO email_originals (sha256, size, created_at) VALUES (?, ?, ?)"),
            )
            .bind(sha256)
            .bind(size)
            .bind(super::now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Uploads no message took that were made before `before_ms`, oldest
    /// first, at most `limit`: (id, sha256).
    pub async fn unsent_uploads_before(
        &self,
        before_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(self.sql(
            "SELECT id, sha256 FROM attachments
             WHERE message_id IS NULL AND created_at < ?
             ORDER BY created_at LIMIT ?",
        ))
        .bind(before_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("sha256")?)))
            .collect()
    }

    /// Removes unsent upload `id` and, when no other upload has the same
    /// bytes, runs `delete_bytes` (which says whether the bytes are gone),
    /// all under the hash's lock.
    pub async fn remove_unsent_upload(
        &self,
        id: &str,
        sha256: &str,
        delete_bytes: impl Future<Output = bool>,
    ) -> StoreResult<UploadRemoval> {
        match self.backend {
            Backend::Postgres | Backend::Mysql => {
                // The hash's lock lasts as long as the transaction: the
                // row goes only if the bytes do.
                let (mut tx, _turn) = self.write_tx().await?;
                self.lock_blob(&mut tx, sha256).await?;
                let others = match self.delete_unsent_row(&mut tx, id, sha256).await? {
                    Some(others) => others,
                    None => {
                        tx.rollback().await?;
                        return Ok(UploadRemoval::NotThere);
                    }
                };
                if others == 0 && !delete_bytes.await {
                    tx.rollback().await?;
                    return Ok(UploadRemoval::BytesFailed);
                }
                tx.commit().await?;
                Ok(if others > 0 {
                    UploadRemoval::BytesShared
                } else {
                    UploadRemoval::Removed
                })
            }
            Backend::Sqlite => {
                // SQLite's write lock is every writer's: held across a slow
                // blob store's delete it would stall the chat. This
                // process's blob turn is the hash lock instead (one process
                // writes a SQLite install's uploads), and the row goes first.
                let _blob = self.sqlite_blob_turn().await;
                let (mut tx, turn) = self.write_tx().await?;
                let others = self.delete_unsent_row(&mut tx, id, sha256).await?;
                match others {
                    Some(_) => tx.commit().await?,
                    None => tx.rollback().await?,
                }
                drop(turn);
                Ok(match others {
                    None => UploadRemoval::NotThere,
                    Some(others) if others > 0 => UploadRemoval::BytesShared,
                    Some(_) if delete_bytes.await => UploadRemoval::Removed,
                    Some(_) => UploadRemoval::BytesFailed,
                })
            }
        }
    }

    /// Deletes the row of unsent upload `id` in `tx`: how many other rows
    /// name the same bytes, or `None` if it was not there (sent meanwhile,
    /// or another instance's sweep was first).
    async fn delete_unsent_row(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        sha256: &str,
    ) -> StoreResult<Option<i64>> {
        let removed = sqlx::query(
            self.sql("DELETE FROM attachments WHERE id = ? AND sha256 = ? AND message_id IS NULL"),
        )
        .bind(id)
        .bind(sha256)
        .execute(&mut **tx)
        .await?;
        if removed.rows_affected() == 0 {
            return Ok(None);
        }
        // The original of an email may be the same bytes (someone uploaded
        // a saved .eml): it names them too.
        let others: i64 = sqlx::query(self.sql(
            "SELECT (SELECT COUNT(*) FROM attachments WHERE sha256 = ?)
                  + (SELECT COUNT(*) FROM email_originals WHERE sha256 = ?) AS n",
        ))
        .bind(sha256)
        .bind(sha256)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
        Ok(Some(others))
    }

    /// Makes every upload look `by_ms` older (tests of expiry).
    #[doc(hidden)]
    pub async fn backdate_uploads(&self, by_ms: i64) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(self.sql("UPDATE attachments SET created_at = created_at - ?"))
            .bind(by_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes the lock of one blob hash until `tx` ends (SQLite uses this
    /// process's blob turn). The sweep's count of other rows is read after
    /// the lock is granted, so at READ COMMITTED (PostgreSQL's default, and
    /// what `store::connect` sets on MariaDB/MySQL) it sees every row
    /// committed before.
    async fn lock_blob(&self, tx: &mut Transaction<'static, Any>, sha256: &str) -> StoreResult<()> {
        match self.backend {
            Backend::Postgres => {
                sqlx::query(self.sql("SELECT pg_advisory_xact_lock(?, ?)"))
                    .bind(BLOB_LOCKS)
                    .bind(blob_lock_key(sha256))
                    .execute(&mut **tx)
                    .await?;
            }
            // No advisory lock lasts a transaction there: a row of
            // `blob_locks` does (migrations/mysql/0003).
            Backend::Mysql => {
                sqlx::query(self.sql("SELECT slot FROM blob_locks WHERE slot = ? FOR UPDATE"))
                    .bind(i64::from(blob_lock_key(sha256)).rem_euclid(BLOB_LOCK_SLOTS))
                    .execute(&mut **tx)
                    .await?;
            }
            Backend::Sqlite => {}
        }
        Ok(())
    }

    pub async fn attachment(&self, id: &str) -> StoreResult<Option<Attachment>> {
        let row = sqlx::query(self.sql(&format!("{ATTACHMENT_SELECT} WHERE a.id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(attachment).transpose()?)
    }

    /// Uploads into a conversation since `since_ms` that no message carries
    /// (a bound on what one conversation can pile up unsent).
    pub async fn unsent_uploads_since(
        &self,
        conversation_id: ConversationId,
        since_ms: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM attachments
             WHERE conversation_id = ? AND message_id IS NULL AND created_at > ?",
        ))
        .bind(conversation_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

impl Store {
    /// On SQLite, this process's turn to change which rows name which blob
    /// bytes (the hash lock); nothing where the database locks the hash.
    async fn sqlite_blob_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.blob_turn.lock().await),
            Backend::Postgres | Backend::Mysql => None,
        }
    }
}
