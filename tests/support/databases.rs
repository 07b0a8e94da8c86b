//! Databases for tests: a SQLite file in the test's data directory, or a
//! fresh PostgreSQL or MariaDB/MySQL database dropped afterwards.
//!
//! PostgreSQL tests run when a server answers at `CARELINE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`), MariaDB/MySQL tests
//! when one answers at `CARELINE_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`); each says why it skips when none
//! does, and under `CI=true` a missing server is a failure.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
    Mysql,
}

pub const POSTGRES_URL_VAR: &str = "CARELINE_TEST_POSTGRES_URL";
pub const MYSQL_URL_VAR: &str = "CARELINE_TEST_MYSQL_URL";

fn mysql_admin_url() -> String {
    std::env::var(MYSQL_URL_VAR).unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// Whether MariaDB/MySQL tests can run here (see [`postgres_available`]).
pub async fn mysql_available(test: &str) -> bool {
    let url = mysql_admin_url();
    match MySqlConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(e) => {
            super::cannot_run(
                &format!("{test} on MariaDB/MySQL"),
                &format!(
                    "MariaDB/MySQL is not reachable at {url} ({e}); start it or set {MYSQL_URL_VAR}"
                ),
            );
            false
        }
    }
}

fn admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR)
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether PostgreSQL tests can run here. Prints why not when they skip;
/// panics under CI, where a skip would hide a broken setup.
pub async fn postgres_available(test: &str) -> bool {
    let url = admin_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(e) => {
            super::cannot_run(
                &format!("{test} on PostgreSQL"),
                &format!(
                    "PostgreSQL is not reachable at {url} ({e}); start it or set {POSTGRES_URL_VAR}"
                ),
            );
            false
        }
    }
}

/// The backends a test should run on here: SQLite always, PostgreSQL and
/// MariaDB/MySQL when reachable.
pub async fn backends(test: &str) -> Vec<Database> {
    let mut all = vec![Database::Sqlite];
    if postgres_available(test).await {
        all.push(Database::Postgres);
    }
    if mysql_available(test).await {
        all.push(Database::Mysql);
    }
    all
}

/// The servers a test needs one of: PostgreSQL and MariaDB/MySQL, those
/// reachable here.
pub async fn servers(test: &str) -> Vec<Database> {
    let mut all = Vec::new();
    if postgres_available(test).await {
        all.push(Database::Postgres);
    }
    if mysql_available(test).await {
        all.push(Database::Mysql);
    }
    all
}

pub struct TestDb {
    pub url: String,
    server: Option<(Database, String)>,
}

fn fresh_name() -> String {
    format!(
        "careline_t_{}",
        careline::auth::random_token(9)
            .to_lowercase()
            .replace(['-', '_'], "x")
    )
}

fn base_of(url: &str) -> &str {
    url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url)
}

impl TestDb {
    pub async fn create(db: Database, data_dir: &Path) -> TestDb {
        match db {
            Database::Sqlite => TestDb {
                url: format!("sqlite://{}/careline.db?mode=rwc", data_dir.display()),
                server: None,
            },
            Database::Postgres => {
                let name = fresh_name();
                let admin = admin_url();
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                TestDb {
                    url: format!("{}/{name}", base_of(&admin)),
                    server: Some((db, name)),
                }
            }
            Database::Mysql => {
                let name = fresh_name();
                let admin = mysql_admin_url();
                let mut conn = MySqlConnection::connect(&admin)
                    .await
                    .expect("connect to MariaDB/MySQL");
                conn.execute(AssertSqlSafe(format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                )))
                .await
                .expect("create test database");
                let _ = conn.close().await;
                TestDb {
                    url: format!("{}/{name}", base_of(&admin)),
                    server: Some((db, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((db, name)) = self.server.take() else {
            return;
        };
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    match db {
                        Database::Postgres => {
                            if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                                let _ = conn
                                    .execute(AssertSqlSafe(format!(
                                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                    )))
                                    .await;
                            }
                        }
                        Database::Mysql => {
                            if let Ok(mut conn) = MySqlConnection::connect(&mysql_admin_url()).await
                            {
                                // Like PostgreSQL's WITH (FORCE): a pooled
                                // connection whose dropped transaction is
                                // still to be rolled back holds the tables'
                                // metadata locks, and the test's runtime is
                                // blocked here, so it cannot run that
                                // rollback: end those connections first.
                                let ids: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
                                    "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE db = '{name}'"
                                )))
                                .fetch_all(&mut conn)
                                .await
                                .unwrap_or_default();
                                for (id,) in ids {
                                    let _ = conn.execute(AssertSqlSafe(format!("KILL {id}"))).await;
                                }
                                let _ = conn
                                    .execute(AssertSqlSafe(format!(
                                        "DROP DATABASE IF EXISTS {name}"
                                    )))
                                    .await;
                            }
                        }
                        Database::Sqlite => {}
                    }
                });
            }
        })
        .join();
    }
}
