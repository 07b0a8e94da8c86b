//! Test support: spawn the real application on a random port, on SQLite or
//! a fresh PostgreSQL database, and a small browser-like HTTP client that
//! keeps cookies and the page's CSRF token.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod cluster;
pub mod databases;
pub mod fakes;
pub mod forms;
pub mod imap;
pub mod redis;
pub mod resilient;
pub mod s3;
pub mod smtp;
pub mod tls;
pub mod webdriver;
pub mod ws;

use std::net::SocketAddr;

use careline::config::RawConfig;
use careline::store::Store;
use careline::{Adapters, App};
use tokio::sync::oneshot;

pub use browser::{Browser, Page};
pub use databases::{Database, TestDb};

/// A free loopback port (for a process the test starts itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test needs something this machine lacks (`why`). Under `CI=true` that
/// is a failure (a skip would hide a broken setup); otherwise the test says
/// why and skips.
pub fn cannot_run(test: &str, why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {why} ({test})");
    }
    eprintln!("SKIPPED {test}: {why}");
}

/// The token the page shows once after "Make the token".
pub async fn make_token(browser: &mut Browser, name: &str, scope: &str) -> String {
    browser.get("/account/tokens").await.expect_status(200);
    let page = browser
        .submit(
            "/account/tokens",
            &[("name", name), ("scope", scope), ("days", "30")],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.headers
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let start = page
        .body
        .find("<pre><code>clt_")
        .expect("the token is shown once")
        + "<pre><code>".len();
    page.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

/// A running Careline on 127.0.0.1 with its own data directory and database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub setup_token: Option<String>,
    pub store: Store,
    pub hub: std::sync::Arc<careline::web::ws::hub::Hub>,
    pub blobs: std::sync::Arc<dyn careline::blobs::Blobs>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The configuration it runs with (kept for [`TestApp::restart`]).
    pub raw: RawConfig,
    _data: tempfile::TempDir,
    _db: TestDb,
}

impl TestApp {
    pub async fn spawn(db: Database) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    /// Spawns with configuration changes applied on top of the test defaults.
    pub async fn spawn_with(db: Database, tweak: impl FnOnce(&mut RawConfig)) -> TestApp {
        Self::spawn_full(db, tweak, Adapters::default()).await
    }

    /// Spawns with configuration changes and replaced seams.
    pub async fn spawn_full(
        db: Database,
        tweak: impl FnOnce(&mut RawConfig),
        adapters: Adapters,
    ) -> TestApp {
        let data = tempfile::tempdir().expect("temp dir");
        let test_db = TestDb::create(db, data.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut raw = RawConfig {
            bind: addr.to_string(),
            data_dir: data.path().to_string_lossy().into_owned(),
            database_url: test_db.url.clone(),
            database_max_connections: 5,
            // Tests log many people in from 127.0.0.1; the rate-limit test
            // sets its own, lower limit.
            auth_rate_limit_burst: 100,
            ..RawConfig::default()
        };
        tweak(&mut raw);
        let (app, shutdown, server) = Self::serve(listener, raw.clone(), adapters).await;
        TestApp {
            addr,
            base: format!("http://{addr}"),
            setup_token: app.setup_token,
            store: app.store,
            hub: app.hub,
            blobs: app.blobs,
            shutdown: Some(shutdown),
            server: Some(server),
            raw,
            _data: data,
            _db: test_db,
        }
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        raw: RawConfig,
        adapters: Adapters,
    ) -> (Started, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let config = raw.validate().expect("test config is valid");
        let app = App::build_with(config, adapters).await.expect("app builds");
        let started = Started {
            setup_token: app.setup_token.clone(),
            store: app.state.store().clone(),
            hub: app.state.hub().clone(),
            blobs: app.state.blobs().clone(),
        };
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        (started, tx, server)
    }

    /// Stops the server and starts a new process-worth of it on the same
    /// data directory, database and address: what survives this survives a
    /// restart.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("the same address is free again");
        let (started, shutdown, server) =
            Self::serve(listener, self.raw.clone(), Adapters::default()).await;
        self.store = started.store;
        self.hub = started.hub;
        self.blobs = started.blobs;
        self.shutdown = Some(shutdown);
        self.server = Some(server);
    }

    /// Shuts the server down gracefully and waits until it has drained.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn data_dir(&self) -> std::path::PathBuf {
        self.raw.data_dir.clone().into()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Completes first-run setup and returns a browser logged in as that admin.
    pub async fn admin(&self) -> Browser {
        let token = self
            .setup_token
            .clone()
            .expect("fresh app has a setup token");
        let mut b = self.browser();
        b.get(&format!("/setup?token={token}"))
            .await
            .expect_status(200);
        b.submit(
            "/setup",
            &[
                ("token", &token),
                ("name", "Ada Admin"),
                ("email", "admin@example.com"),
                ("password", "admin password 1"),
            ],
        )
        .await
        .expect_redirect("/login?setup=done");
        b.login("admin@example.com", "admin password 1").await;
        b
    }

    /// Registers a customer and returns their logged-in browser.
    pub async fn customer(&self, name: &str, email: &str) -> Browser {
        let mut b = self.browser();
        b.get("/register").await.expect_status(200);
        b.submit(
            "/register",
            &[
                ("name", name),
                ("email", email),
                ("password", "customer password"),
            ],
        )
        .await
        .expect_redirect("/dashboard");
        b
    }

    /// Invites an agent through the admin page; the agent follows the
    /// emailed link, chooses "agent password 1" and logs in.
    pub async fn agent(&self, admin: &mut Browser, name: &str, email: &str) -> Browser {
        admin.get("/admin/people").await.expect_status(200);
        admin
            .submit(
                "/admin/people",
                &[("name", name), ("email", email), ("role", "agent")],
            )
            .await
            .expect_redirect("/admin/people?done=created");
        let link = self.emailed_link(email, "agent_invitation").await;
        let mut b = self.browser();
        b.get(&link).await.expect_status(200);
        b.submit(
            "/password",
            &[
                ("token", &token_of(&link)),
                ("password", "agent password 1"),
            ],
        )
        .await
        .expect_redirect("/login?password=saved");
        b.login(email, "agent password 1").await;
        b
    }

    /// The path of the link in the newest `template` email to `to`.
    pub async fn emailed_link(&self, to: &str, template: &str) -> String {
        let email = self
            .store
            .outbox(100)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.template == template && e.to_email == to)
            .unwrap_or_else(|| panic!("no {template} email to {to}"));
        let payload: serde_json::Value = serde_json::from_str(&email.payload).unwrap();
        let link = payload["link"].as_str().expect("the email has a link");
        link.strip_prefix(&self.base)
            .expect("the link points at Careline")
            .to_string()
    }
}

struct Started {
    setup_token: Option<String>,
    store: Store,
    hub: std::sync::Arc<careline::web::ws::hub::Hub>,
    blobs: std::sync::Arc<dyn careline::blobs::Blobs>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The `token` query parameter of a link.
pub fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .expect("a token in the link")
        .to_string()
}

/// Extracts the number from a `/tickets/1001` or `/console/tickets/1001` location.
pub fn ticket_number(location: &str) -> i64 {
    location
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ticket number in {location}"))
}
