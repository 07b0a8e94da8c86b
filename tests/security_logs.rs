//! Secrets never reach the logs: passwords, session and visitor tokens,
//! API keys. The whole app runs in this test process with a log collector
//! at debug level; then the collected logs are searched for every secret.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::fakes::{
    FakeSendGrid, FakeWatson, SENDGRID_KEY, WATSON_ASSISTANT, WATSON_KEY, WATSON_VERSION,
};
use support::{Database, TestApp};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<u8>>>);

impl Write for Collector {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_is_ever_logged() {
    let logs = Collector::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let sendgrid = FakeSendGrid::start().await;
    let watson = FakeWatson::start().await;
    let url = sendgrid.base.clone();
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        watson.allow(c);
        c.sendgrid_url = url;
        c.sendgrid_api_key = SENDGRID_KEY.into();
        c.mail_poll_ms = 50;
    })
    .await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    // Watson configured through the admin page, with its API key.
    admin.get("/admin/bot").await;
    let iam = format!("{}/identity/token", watson.base);
    admin
        .submit(
            "/admin/bot",
            &[
                ("kind", "watson"),
                ("url", &watson.base),
                ("assistant_id", WATSON_ASSISTANT),
                ("api_key", WATSON_KEY),
                ("version", WATSON_VERSION),
                ("iam_url", &iam),
                ("min_confidence", "0.3"),
                ("fallback", "person"),
            ],
        )
        .await
        .expect_redirect("/admin/bot?done=saved");
    // A customer with a password, a session, a failed login and a reset.
    let grace = app.customer("Grace", "grace@example.com").await;
    let session = grace.cookies["careline_session"].clone();
    let mut wrong = app.browser();
    wrong.get("/login").await;
    wrong
        .submit(
            "/login",
            &[
                ("email", "grace@example.com"),
                ("password", "a-wrong-password-123"),
            ],
        )
        .await;
    wrong.get("/password/forgot").await;
    wrong
        .submit("/password/forgot", &[("email", "grace@example.com")])
        .await;
    let reset = app
        .emailed_link("grace@example.com", "password_reset")
        .await;
    // A widget visitor talking to Watson.
    let mut visitor = app.visitor(&site).await;
    let visitor_token = visitor.token.clone().unwrap();
    visitor
        .send(json!({"type": "start", "client_msg_id": "s", "body": "hello"}))
        .await;
    visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    sendgrid.wait_accepted(2).await;

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        text.contains("email delivered"),
        "the collector saw the app's logs"
    );
    // One access line a request: the route (not the path), status, time,
    // inside the request's span (id, method, client).
    let access = text
        .lines()
        .find(|l| {
            l.contains("finished processing request")
                && l.contains("method=POST path=/login")
                && l.contains("route=/login")
        })
        .expect("an access line for the login");
    for field in [
        "status=",
        "latency=",
        "method=POST",
        "client=127.0.0.1",
        "request{id=",
    ] {
        assert!(access.contains(field), "{field} in {access}");
    }
    assert!(
        access.contains(" INFO "),
        "access lines are written at info: {access}"
    );
    for (what, secret) in [
        ("a password", "customer password"),
        ("a wrong password", "a-wrong-password-123"),
        ("the admin's password", "admin password 1"),
        ("a session token", session.as_str()),
        ("a visitor token", visitor_token.as_str()),
        ("the Watson API key", WATSON_KEY),
        ("the SendGrid API key", SENDGRID_KEY),
        ("a reset token", support::token_of(&reset).as_str()),
        ("a message body at any level", "hello"),
    ] {
        assert!(!text.contains(secret), "{what} appears in the logs");
    }
}
