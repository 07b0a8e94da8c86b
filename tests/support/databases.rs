//! Databases for tests: a SQLite file in the test's data directory, or a
//! fresh PostgreSQL database dropped afterwards.
//!
//! PostgreSQL tests run when a server answers at `CARELINE_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and say why they skip
//! when none does; under `CI=true` a missing server is a failure.

use std::path::Path;

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

pub const POSTGRES_URL_VAR: &str = "CARELINE_TEST_POSTGRES_URL";

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

/// The backends a test should run on here: SQLite always, PostgreSQL when reachable.
pub async fn backends(test: &str) -> Vec<Database> {
    let mut all = vec![Database::Sqlite];
    if postgres_available(test).await {
        all.push(Database::Postgres);
    }
    all
}

pub struct TestDb {
    pub url: String,
    postgres_name: Option<String>,
}

impl TestDb {
    pub async fn create(db: Database, data_dir: &Path) -> TestDb {
        match db {
            Database::Sqlite => TestDb {
                url: format!("sqlite://{}/careline.db?mode=rwc", data_dir.display()),
                postgres_name: None,
            },
            Database::Postgres => {
                let name = format!(
                    "careline_t_{}",
                    careline::auth::random_token(9)
                        .to_lowercase()
                        .replace(['-', '_'], "x")
                );
                let admin = admin_url();
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let _ = conn.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    postgres_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs outside async code: use a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                        let _ = conn
                            .execute(AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
