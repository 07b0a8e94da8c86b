//! Redis for tests: the shared server (`CARELINE_TEST_REDIS_URL`, default
//! redis://127.0.0.1:6379) when one answers, or a private `redis-server`
//! process on a free port that a test may stop and start again.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const REDIS_URL_VAR: &str = "CARELINE_TEST_REDIS_URL";

fn shared_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn answers(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The shared Redis URL if a server answers there. Prints why a test skips;
/// panics under CI=true, where a skip would hide a broken setup.
pub async fn redis_available(test: &str) -> Option<String> {
    let url = shared_url();
    match answers(&url).await {
        Ok(()) => Some(url),
        Err(e) => {
            super::cannot_run(
                &format!("{test} on Redis"),
                &format!("Redis is not reachable at {url} ({e}); start it or set {REDIS_URL_VAR}"),
            );
            None
        }
    }
}

/// A private redis-server this test owns.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one, or says why not (None) when `redis-server` is missing;
    /// under CI=true that is a failure.
    pub async fn start(test: &str) -> Option<PrivateRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            super::cannot_run(test, "redis-server is not installed");
            return None;
        }
        let port = super::free_port();
        let mut redis = PrivateRedis { port, child: None };
        redis.restart().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if answers(&self.url()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not come up on port {}", self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
