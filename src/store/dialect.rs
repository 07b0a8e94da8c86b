//! What differs between the SQL backends, decided in one place: which
//! backend a URL names, and how a portable statement is spelled for it.
//!
//! Every query is written once. The few constructs that have no common
//! spelling are asked for here: `RETURNING` (MariaDB/MySQL have none on
//! `UPDATE`, MySQL none at all), upserts (`ON CONFLICT` against `ON
//! DUPLICATE KEY UPDATE`) and the row lock a read takes.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row as _};

use super::{Store, StoreError, StoreResult};

/// A statement with its values bound, ready to run.
pub(super) type Bound<'q> = Query<'q, Any, AnyArguments>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// MariaDB or MySQL: one wire protocol, one dialect.
    Mysql,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(Backend::Mysql)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
        }
    }

    /// Turns portable `?` placeholders into this backend's syntax.
    pub(super) fn placeholders(self, sql: &str) -> String {
        match self {
            Backend::Sqlite | Backend::Mysql => sql.to_string(),
            Backend::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                let mut in_literal = false;
                for c in sql.chars() {
                    match c {
                        '\'' => {
                            in_literal = !in_literal;
                            out.push(c);
                        }
                        '?' if !in_literal => {
                            n += 1;
                            out.push('$');
                            out.push_str(&n.to_string());
                        }
                        _ => out.push(c),
                    }
                }
                out
            }
        }
    }
}

impl Backend {
    /// Statements every new connection runs first.
    pub(super) fn session_setup(self) -> &'static [&'static str] {
        match self {
            // WAL lets readers run beside the single writer; the busy
            // timeout makes a second writer wait instead of failing.
            Backend::Sqlite => &[
                "PRAGMA journal_mode = WAL",
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                "PRAGMA busy_timeout = 10000",
            ],
            Backend::Postgres => &[],
            // READ COMMITTED, as on PostgreSQL: each statement sees what
            // was committed before it, and InnoDB takes no gap locks (the
            // deadlocks of REPEATABLE READ under parallel inserts). Strict
            // mode turns a value that does not fit into an error rather
            // than a silent truncation; NO_BACKSLASH_ESCAPES reads string
            // literals as standard SQL does (`ESCAPE '\'` in LIKE).
            Backend::Mysql => &[
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES')",
            ],
        }
    }

    /// The URL as sqlx reads it: `mariadb://` is MariaDB's name for the
    /// same protocol as `mysql://`.
    pub(super) fn driver_url(self, url: &str) -> std::borrow::Cow<'_, str> {
        match url.strip_prefix("mariadb://") {
            Some(rest) if self == Backend::Mysql => format!("mysql://{rest}").into(),
            _ => url.into(),
        }
    }

    /// How a locking read ends: `FOR UPDATE` where rows are locked
    /// (SQLite has one writer at a time, and no such clause).
    pub(super) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres | Backend::Mysql => " FOR UPDATE",
        }
    }

    /// `insert` (an `INSERT … VALUES (…)`) that updates `set` when a row
    /// with the same `keys` exists, or does nothing when `set` is empty.
    pub(super) fn upsert(self, insert: &str, keys: &[&str], set: &[&str]) -> String {
        match self {
            Backend::Sqlite | Backend::Postgres => {
                let keys = keys.join(", ");
                if set.is_empty() {
                    format!("{insert} ON CONFLICT ({keys}) DO NOTHING")
                } else {
                    let set: Vec<String> =
                        set.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                    format!(
                        "{insert} ON CONFLICT ({keys}) DO UPDATE SET {}",
                        set.join(", ")
                    )
                }
            }
            // VALUES(c) rather than MySQL 8's row alias, which MariaDB
            // does not have; assigning a key to itself is the no-op update
            // (INSERT IGNORE would also swallow every other error).
            Backend::Mysql => {
                let set: Vec<String> = if set.is_empty() {
                    vec![format!("{0} = {0}", keys[0])]
                } else {
                    set.iter().map(|c| format!("{c} = VALUES({c})")).collect()
                };
                format!("{insert} ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
        }
    }

    /// `statement` followed by `RETURNING columns` where the backend
    /// returns rows from a write; unchanged on MariaDB/MySQL, where
    /// [`Store::inserted_id`], [`Store::inserted_row`] and
    /// [`Store::updated_row`] read them back instead.
    pub(super) fn returning(self, statement: &str, columns: &str) -> String {
        match self {
            Backend::Sqlite | Backend::Postgres => format!("{statement} RETURNING {columns}"),
            Backend::Mysql => statement.to_string(),
        }
    }

    /// `column + by` as the new value of a counter that an update returns
    /// through [`Store::counted`]: MariaDB/MySQL hand it back as the
    /// statement's insert id, with no second statement.
    pub(super) fn counter(self, column: &str, by: &str) -> String {
        match self {
            Backend::Sqlite | Backend::Postgres => format!("{column} + {by}"),
            Backend::Mysql => format!("LAST_INSERT_ID({column} + {by})"),
        }
    }
}

/// Attempts at a transaction the database ended to break a deadlock.
const DEADLOCK_ATTEMPTS: u32 = 3;

/// Whether the database ended the transaction to break a deadlock (or a
/// serialization conflict): nothing of it was kept, and running it again is
/// the answer InnoDB and PostgreSQL document.
pub(super) fn is_deadlock(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

impl Store {
    /// Runs `transaction` again, up to three times in all, when the database
    /// ends it to break a deadlock; any other outcome is returned as it is.
    pub(super) async fn retrying_deadlocks<T, F, Fut>(&self, mut transaction: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let mut attempt = 1;
        loop {
            match transaction().await {
                Err(e) if is_deadlock(&e) && attempt < DEADLOCK_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "deadlock: running the transaction again");
                    attempt += 1;
                    // A moment apart, so that the two do not meet again.
                    let pause = 5 * u64::from(attempt) + rand::random_range(0..10);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// Runs an insert built with [`Backend::returning`]`(…, "id")` and
    /// returns the new row's id.
    pub(super) async fn inserted_id(
        &self,
        insert: Bound<'_>,
        conn: &mut AnyConnection,
    ) -> StoreResult<i64> {
        match self.backend {
            Backend::Sqlite | Backend::Postgres => Ok(insert.fetch_one(conn).await?.try_get(0)?),
            Backend::Mysql => insert
                .execute(conn)
                .await?
                .last_insert_id()
                .ok_or(StoreError::NotFound),
        }
    }

    /// Runs an insert built with [`Backend::returning`]`(…, columns)` into
    /// `table` (whose key is `id`) and returns the new row's `columns`.
    pub(super) async fn inserted_row(
        &self,
        insert: Bound<'_>,
        table: &str,
        columns: &str,
        conn: &mut AnyConnection,
    ) -> StoreResult<AnyRow> {
        match self.backend {
            Backend::Sqlite | Backend::Postgres => Ok(insert.fetch_one(conn).await?),
            Backend::Mysql => {
                let id = self.inserted_id(insert, &mut *conn).await?;
                let select = format!("SELECT {columns} FROM {table} WHERE id = ?");
                Ok(sqlx::query(self.sql(&select))
                    .bind(id)
                    .fetch_one(conn)
                    .await?)
            }
        }
    }

    /// Runs `update` built with [`Backend::returning`]; the row it returns,
    /// or `None` when it matched none. On MariaDB/MySQL `select` makes the
    /// statement (the same row's columns by key) that reads it back, built
    /// only there: `conn` must be in a transaction, in which the update's
    /// row lock keeps the row as written.
    pub(super) async fn updated_row(
        &self,
        update: Bound<'_>,
        select: impl FnOnce() -> Bound<'static>,
        conn: &mut AnyConnection,
    ) -> StoreResult<Option<AnyRow>> {
        match self.backend {
            Backend::Sqlite | Backend::Postgres => Ok(update.fetch_optional(conn).await?),
            Backend::Mysql => {
                if update.execute(&mut *conn).await?.rows_affected() == 0 {
                    return Ok(None);
                }
                Ok(select().fetch_optional(conn).await?)
            }
        }
    }

    /// Runs `delete` built with [`Backend::returning`]; the row it
    /// removed, or `None`. On MariaDB/MySQL `select` (the same row by key)
    /// reads it first, and only a delete that removed it returns it, so of
    /// two racing deletes one gets the row.
    pub(super) async fn deleted_row(
        &self,
        delete: Bound<'_>,
        select: Bound<'_>,
        conn: &mut AnyConnection,
    ) -> StoreResult<Option<AnyRow>> {
        match self.backend {
            Backend::Sqlite | Backend::Postgres => Ok(delete.fetch_optional(conn).await?),
            Backend::Mysql => {
                let Some(row) = select.fetch_optional(&mut *conn).await? else {
                    return Ok(None);
                };
                let removed = delete.execute(conn).await?.rows_affected() > 0;
                Ok(removed.then_some(row))
            }
        }
    }

    /// Runs an update that sets one column to [`Backend::counter`] and
    /// returns (`RETURNING` that column, see [`Backend::returning`]) its new
    /// value; `None` when no row matched.
    pub(super) async fn counted(
        &self,
        update: Bound<'_>,
        conn: &mut AnyConnection,
    ) -> StoreResult<Option<i64>> {
        match self.backend {
            Backend::Sqlite | Backend::Postgres => match update.fetch_optional(conn).await? {
                Some(row) => Ok(Some(row.try_get(0)?)),
                None => Ok(None),
            },
            Backend::Mysql => {
                let done = update.execute(conn).await?;
                Ok((done.rows_affected() > 0)
                    .then(|| done.last_insert_id())
                    .flatten())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_outside_literals() {
        let sql = "SELECT '?' FROM t WHERE a = ? AND b = ?";
        assert_eq!(
            Backend::Postgres.placeholders(sql),
            "SELECT '?' FROM t WHERE a = $1 AND b = $2"
        );
        assert_eq!(Backend::Sqlite.placeholders(sql), sql);
    }
}
