//! Headless Chromium through chromedriver (Debian's `chromium` and
//! `chromium-driver`), driven with fantoccini. Each session gets a fresh
//! profile. Tests that need a browser say why they skip when there is none,
//! and fail under CI=true.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub struct Chrome {
    port: u16,
    driver: Child,
    profiles: tempfile::TempDir,
    sessions: usize,
}

fn which(candidates: &[&str]) -> Option<String> {
    candidates
        .iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
}

impl Chrome {
    pub async fn start(test: &str) -> Option<Chrome> {
        let driver = which(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let browser = which(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let (Some(driver), Some(_)) = (driver, browser) else {
            super::cannot_run(
                test,
                "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
            );
            return None;
        };
        let port = super::free_port();
        // Its own process group: the browsers it starts are in it too, and
        // go with it (killing chromedriver alone left every Chromium of the
        // test running).
        let child = Command::new(driver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let chrome = Chrome {
            port,
            driver: child,
            profiles: tempfile::tempdir().unwrap(),
            sessions: 0,
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(chrome);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not start");
    }

    /// A new browser (its own profile: no shared cookies or storage).
    pub async fn session(&mut self, width: u32, height: u32) -> Client {
        self.sessions += 1;
        let profile = self
            .profiles
            .path()
            .join(format!("profile-{}", self.sessions));
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium", "args": args}),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session starts")
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        // The whole group: chromedriver and every browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Waits (10 s at most) until `js` (an expression) is truthy in the page.
pub async fn wait_until(client: &Client, what: &str, js: &str) -> Value {
    for _ in 0..200 {
        let value = client
            .execute(&format!("return ({js});"), vec![])
            .await
            .unwrap_or(Value::Null);
        let truthy = match &value {
            Value::Null | Value::Bool(false) => false,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        if truthy {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    panic!("waited 10 s for {what} on {url}");
}

/// The widget's shadow root on a host page.
pub const WIDGET: &str = "document.getElementById('careline-widget').shadowRoot";

pub async fn fill(client: &Client, css: &str, text: &str) {
    let field = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.ok();
    field.send_keys(text).await.unwrap();
}

/// Saves a PNG to target/screenshots/<name>.png, and to docs/screenshots
/// when CARELINE_UPDATE_SCREENSHOTS is set (the committed ones).
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let dirs = std::iter::once(concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots")).chain(
        std::env::var("CARELINE_UPDATE_SCREENSHOTS")
            .ok()
            .map(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshots")),
    );
    for dir in dirs {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(format!("{dir}/{name}.png"), &png).unwrap();
    }
}
