//! Signed webhooks, end to end: an admin registers endpoints on the admin
//! page, changes happen, and a real HTTP receiver on loopback (allowed by
//! the operator's `egress_allowed_hosts`) checks every signature, sees each
//! conversation's events in order, sees a retried event with the same id
//! and body, and never sees a private note unless it asked. An endpoint that
//! keeps failing is turned off and the admins emailed; a delivery held by an
//! instance that is killed is delivered by another one.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores a second binary costs more than a long file), and the receiver the
//! four stories share is a third of it.

mod support;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use careline::model::{ConversationId, SenderKind, User};
use careline::store::{NewChatMessage, Store};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::databases::{backends, postgres_available};
use support::{Browser, Database, TestApp, TestDb};

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    event_id: String,
    event_type: String,
    signature: String,
    body: String,
    /// What the receiver answered.
    answered: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    /// Per path and event type (`/all contact.created`), answers to give
    /// before 200s.
    plan: HashMap<String, VecDeque<u16>>,
    /// Per path, whether the first request is held until the test ends.
    hold_first: Vec<String>,
}

/// A webhook receiver on 127.0.0.1: it records every request and answers
/// as planned (`/fail` always 500).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    held: Arc<tokio::sync::Notify>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let path = uri.path().to_string();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (answer, hold) = {
        let mut log = receiver.log.lock().unwrap();
        let first = !log.received.iter().any(|r| r.path == path);
        let hold = first && log.hold_first.contains(&path);
        let answer = if path == "/fail" {
            500
        } else {
            let event_type = header("careline-event-type");
            log.plan
                .get_mut(&format!("{path} {event_type}"))
                .and_then(|p| p.pop_front())
                .unwrap_or(200)
        };
        log.received.push(Received {
            path: path.clone(),
            event_id: header("careline-event-id"),
            event_type: header("careline-event-type"),
            signature: header("careline-signature"),
            body,
            answered: if hold { 0 } else { answer },
        });
        (answer, hold)
    };
    if hold {
        receiver.held.notify_one();
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    StatusCode::from_u16(answer).unwrap()
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            log: Arc::default(),
            held: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn plan(&self, path: &str, event_type: &str, answers: &[u16]) {
        let mut log = self.log.lock().unwrap();
        let key = format!("{path} {event_type}");
        log.plan.insert(key, answers.iter().copied().collect());
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The requests answered 200 on `path`, in arrival order.
    fn delivered(&self, path: &str) -> Vec<Received> {
        self.received(path)
            .into_iter()
            .filter(|r| r.answered == 200)
            .collect()
    }

    /// Waits until `done` holds of what `path` received.
    async fn wait_for(&self, path: &str, what: &str, done: impl Fn(&[Received]) -> bool) {
        for _ in 0..300 {
            if done(&self.received(path)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{path} never saw {what}; it got: {:#?}",
            self.received(path)
                .iter()
                .map(|r| (&r.event_type, &r.event_id, r.answered))
                .collect::<Vec<_>>()
        );
    }
}

/// Checks `Careline-Signature: t=…,v1=…` as a receiver would: the HMAC of
/// `t.body` under the secret, and a time within five minutes.
fn verify(secret: &str, received: &Received) {
    let (t, v1) = received
        .signature
        .split_once(",v1=")
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1)))
        .unwrap_or_else(|| panic!("a signature header: {:?}", received.signature));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature of {}", received.body);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - t.parse::<i64>().unwrap()).abs() < 300,
        "a fresh timestamp"
    );
    let body = received.json();
    assert_eq!(
        body["id"].to_string(),
        received.event_id,
        "the id header is the body's"
    );
    assert_eq!(body["type"], received.event_type.as_str());
}

fn allow_the_receiver(raw: &mut careline::config::RawConfig) {
    raw.egress_allow_http = true;
    raw.egress_allowed_hosts = "127.0.0.1".into();
    raw.webhook_poll_ms = 50;
    raw.webhook_retry_ms = 100;
    raw.webhook_disable_after = 3;
    raw.webhook_timeout_ms = 3000;
}

/// Adds an endpoint on Admin → Webhooks; returns its id and the secret the
/// page shows once.
async fn add_endpoint(
    admin: &mut Browser,
    url: &str,
    events: &[&str],
    include_private: bool,
) -> (i64, String) {
    admin.get("/admin/webhooks").await.expect_status(200);
    let boxes: Vec<String> = events.iter().map(|e| format!("event:{e}")).collect();
    let mut fields: Vec<(&str, &str)> = vec![("url", url)];
    fields.extend(boxes.iter().map(|b| (b.as_str(), "on")));
    if include_private {
        fields.push(("include_private", "on"));
    }
    let page = admin.submit("/admin/webhooks", &fields).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page
        .body
        .find("whsec_")
        .unwrap_or_else(|| panic!("the secret is shown once: {}", page.body));
    let secret: String = page.body[at..].chars().take_while(|c| *c != '<').collect();
    let id = page
        .body
        .split("/admin/webhooks/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .expect("a link to the endpoint");
    (id, secret)
}

async fn admin_user(store: &Store) -> User {
    store
        .staff()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == "admin@example.com")
        .unwrap()
}

async fn say(store: &Store, c: ConversationId, who: Option<&User>, body: &str, private: bool) {
    store
        .append_message(
            c,
            NewChatMessage {
                sender_kind: if who.is_some() {
                    SenderKind::Agent
                } else {
                    SenderKind::Customer
                },
                sender_user_id: who.map(|u| u.id),
                sender_name: who.map_or("Grace", |u| u.name.as_str()),
                body,
                private,
                client_msg_id: body,
                only_in: None,
                only_assignee: None,
                only_if_customer_seen_after: None,
                email: None,
                attachment: None,
                options: &[],
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_receiver_sees_signed_events_in_order_retries_and_private_notes_only_when_asked() {
    let test = "webhooks_in_order";
    for db in backends(test).await {
        let app = TestApp::spawn_with(db, allow_the_receiver).await;
        let mut admin = app.admin().await;
        let receiver = Receiver::start().await;
        receiver.plan("/all", "contact.created", &[500, 500]);
        let all: Vec<&str> = vec![
            "conversation.started",
            "conversation.handed_off",
            "conversation.assigned",
            "conversation.resolved",
            "message.created",
            "ticket.created",
            "ticket.status_changed",
            "rating.received",
            "contact.created",
        ];
        let (_, all_secret) = add_endpoint(&mut admin, &receiver.url("/all"), &all, false).await;
        let (notes_id, notes_secret) = add_endpoint(
            &mut admin,
            &receiver.url("/notes"),
            &["message.created"],
            true,
        )
        .await;

        // A visitor chats, is handed to a person, gets an answer and a
        // private note about them, is resolved and rates.
        let store = &app.store;
        let site = store.default_site().await.unwrap();
        let visitor = store
            .create_visitor(site.id, "device-token-hash", "Grace", "grace@example.com")
            .await
            .unwrap();
        let c = store
            .create_conversation(site.id, visitor.id)
            .await
            .unwrap()
            .id;
        say(store, c, None, "my printer is on fire", false).await;
        assert!(store.escalate(c, "Printer on fire", "Grace").await.unwrap());
        let ada = admin_user(store).await;
        assert!(store.claim(c, &ada).await.unwrap());
        say(store, c, Some(&ada), "put it out first", false).await;
        say(store, c, Some(&ada), "PRIVATE: she sounds calm", true).await;
        assert!(store.resolve(c, &ada, None).await.unwrap());
        store.rate(c, 5, "quick", "Grace").await.unwrap();

        let expected = [
            "conversation.started",
            "message.created",
            "ticket.created",
            "conversation.handed_off",
            "conversation.assigned",
            "message.created",
            "ticket.status_changed",
            "conversation.resolved",
            "rating.received",
        ];
        receiver
            .wait_for("/all", "every event delivered", |got| {
                got.iter().filter(|r| r.answered == 200).count() == expected.len() + 1
            })
            .await;
        let got = receiver.received("/all");
        for r in &got {
            verify(&all_secret, r);
        }
        // The contact's delivery failed twice and came again, the same bytes.
        let tries: Vec<&Received> = got
            .iter()
            .filter(|r| r.event_type == "contact.created")
            .collect();
        let answers: Vec<u16> = tries.iter().map(|r| r.answered).collect();
        assert_eq!(answers, [500, 500, 200], "{db:?}");
        assert!(tries.iter().all(|r| r.event_id == tries[0].event_id));
        assert!(tries.iter().all(|r| r.body == tries[0].body));
        // One contact, then the conversation's events in the order they happened.
        let delivered = receiver.delivered("/all");
        let contact: Vec<&Received> = delivered
            .iter()
            .filter(|r| r.event_type == "contact.created")
            .collect();
        assert_eq!(contact.len(), 1);
        let shown = &contact[0].json()["data"]["contact"];
        assert_eq!(shown["name"], "Grace");
        // The API's own contact shape: its id reads the same contact there.
        assert!(shown["id"].is_i64(), "{shown}");
        assert_eq!(shown["attributes"], json!({}), "{shown}");
        let story: Vec<&Received> = delivered
            .iter()
            .filter(|r| r.event_type != "contact.created")
            .collect();
        let kinds: Vec<&str> = story.iter().map(|r| r.event_type.as_str()).collect();
        assert_eq!(
            kinds,
            expected,
            "{db:?}: {:#?}",
            got.iter()
                .map(|r| (&r.event_id, &r.event_type, r.answered))
                .collect::<Vec<_>>()
        );
        let ids: Vec<i64> = story
            .iter()
            .map(|r| r.json()["id"].as_i64().unwrap())
            .collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
        // The API's shapes: the conversation frame, the message, the ticket.
        let first = story[1].json();
        assert_eq!(first["data"]["conversation"]["id"], c.to_string());
        assert_eq!(first["data"]["message"]["body"], "my printer is on fire");
        let ticket = story[2].json();
        assert_eq!(ticket["data"]["ticket"]["subject"], "Printer on fire");
        let change = story[6].json();
        assert_eq!(change["data"]["changes"]["status"]["to"], "resolved");
        assert_eq!(story[8].json()["data"]["rating"]["score"], 5);
        assert!(
            !got.iter().any(|r| r.body.contains("PRIVATE")),
            "a private note reached an endpoint that did not ask for them"
        );

        // The endpoint that asked for private notes gets all three messages.
        receiver
            .wait_for("/notes", "three messages", |got| got.len() == 3)
            .await;
        let notes = receiver.received("/notes");
        for r in &notes {
            verify(&notes_secret, r);
        }
        assert_eq!(notes[2].json()["data"]["message"]["private"], true);
        assert!(notes[2].body.contains("PRIVATE: she sounds calm"));

        // "Send test event" reaches that endpoint only, and the log shows it.
        let endpoint_page = format!("/admin/webhooks/{notes_id}");
        admin.get(&endpoint_page).await.expect_status(200);
        admin
            .submit(&format!("{endpoint_page}/test"), &[])
            .await
            .expect_redirect(&format!("{endpoint_page}?done=test_sent"));
        receiver
            .wait_for("/notes", "a ping", |got| {
                got.iter().any(|r| r.event_type == "ping")
            })
            .await;
        let ping = receiver.received("/notes").pop().unwrap();
        verify(&notes_secret, &ping);
        assert!(
            !receiver
                .received("/all")
                .iter()
                .any(|r| r.event_type == "ping")
        );
        let log = admin.get(&endpoint_page).await.expect_status(200);
        assert!(log.contains("<code>ping</code>"), "{}", log.body);
        assert!(log.contains("delivered"));
    }
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_turned_off_once_and_can_be_turned_back_on() {
    let app = TestApp::spawn_with(Database::Sqlite, allow_the_receiver).await;
    let mut admin = app.admin().await;
    let receiver = Receiver::start().await;
    let (id, _) = add_endpoint(
        &mut admin,
        &receiver.url("/fail"),
        &["contact.created"],
        false,
    )
    .await;
    let site = app.store.default_site().await.unwrap();
    app.store
        .create_visitor(site.id, "a-device-hash", "", "")
        .await
        .unwrap();
    let mut turned_off = false;
    for _ in 0..100 {
        if !app
            .store
            .webhook_endpoint(id)
            .await
            .unwrap()
            .unwrap()
            .enabled
        {
            turned_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(turned_off, "three failures in a row turn the endpoint off");
    // Turned off, nothing more is tried.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(receiver.received("/fail").len(), 3);
    let emails: Vec<_> = app
        .store
        .outbox(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.template == "webhook_disabled")
        .collect();
    assert_eq!(emails.len(), 1, "the admins are emailed once");
    assert_eq!(emails[0].to_email, "admin@example.com");
    let page = admin
        .get(&format!("/admin/webhooks/{id}"))
        .await
        .expect_status(200);
    assert!(
        page.contains("Turned off after 3 failed deliveries"),
        "{}",
        page.body
    );
    assert!(page.contains("answered 500"));
    assert!(page.contains("Turn back on"));

    admin
        .submit(&format!("/admin/webhooks/{id}/enable"), &[])
        .await
        .expect_redirect(&format!("/admin/webhooks/{id}?done=enabled"));
    receiver
        .wait_for("/fail", "tries after it was turned back on", |got| {
            got.len() > 3
        })
        .await;
}

#[tokio::test]
async fn the_form_refuses_loopback_and_bad_input_and_only_admins_see_the_page() {
    // No allow-list: the operator has not let admins reach this machine.
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    admin.get("/admin/webhooks").await.expect_status(200);
    let refused = admin
        .submit(
            "/admin/webhooks",
            &[
                ("url", "https://127.0.0.1:9/hook"),
                ("event:ticket.created", "on"),
            ],
        )
        .await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.contains("127.0.0.1 is a loopback address")
            && refused.contains("egress_allowed_hosts"),
        "{}",
        refused.body
    );
    let http = admin
        .submit(
            "/admin/webhooks",
            &[
                ("url", "http://hooks.example.com/x"),
                ("event:ticket.created", "on"),
            ],
        )
        .await;
    assert_eq!(http.status, 422);
    assert!(http.contains("egress_allow_http"), "{}", http.body);
    let no_events = admin
        .submit("/admin/webhooks", &[("url", "https://hooks.example.com/x")])
        .await;
    assert_eq!(no_events.status, 422);
    assert!(no_events.contains("choose at least one event"));
    assert!(app.store.webhook_endpoints().await.unwrap().is_empty());
    let nav = admin.get("/admin/people").await.expect_status(200);
    assert!(nav.contains("href=\"/admin/webhooks\""), "a nav link");

    let mut customer = app.customer("Grace", "grace@example.com").await;
    customer.get("/admin/webhooks").await.expect_status(404);
}

const CRASH_SECRET: &str = "webhook-crash-test-secret-of-32-characters";

/// A `careline` process on `db_url`, its workers looking every 100 ms.
fn careline_process(db_url: &str, dir: &std::path::Path, port: u16) -> std::process::Child {
    std::fs::create_dir_all(dir).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_careline"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("CARELINE_CONFIG", dir.join("none.toml"))
        .env("CARELINE_BIND", format!("127.0.0.1:{port}"))
        .env("CARELINE_SECRET_KEY", CRASH_SECRET)
        .env("CARELINE_DATA_DIR", dir)
        .env("CARELINE_EGRESS_ALLOW_HTTP", "true")
        .env("CARELINE_EGRESS_ALLOWED_HOSTS", "127.0.0.1")
        .env("CARELINE_WEBHOOK_POLL_MS", "100")
        .env("CARELINE_WEBHOOK_TIMEOUT_MS", "2000")
        .env("CARELINE_LOG", "warn")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("careline starts")
}

async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("careline on port {port} never became ready");
}

#[tokio::test]
async fn a_delivery_held_by_a_killed_instance_is_delivered_by_another_with_the_same_id() {
    let test = "webhooks_crash";
    let db = if postgres_available(test).await {
        Database::Postgres
    } else {
        Database::Sqlite
    };
    let dir = tempfile::tempdir().unwrap();
    let test_db = TestDb::create(db, dir.path()).await;
    let receiver = Receiver::start().await;
    receiver
        .log
        .lock()
        .unwrap()
        .hold_first
        .push("/crash".into());

    let port_a = support::free_port();
    let mut a = careline_process(&test_db.url, &dir.path().join("a"), port_a);
    wait_ready(port_a).await;
    let store = Store::open(&test_db.url, 2).await.unwrap();
    let policy = careline::egress::Policy::new(
        true,
        vec![careline::egress::Allowed::parse("127.0.0.1").unwrap()],
    );
    careline::domain::webhooks::create(
        &store,
        &careline::auth::Secret::new(CRASH_SECRET),
        &policy,
        &careline::domain::webhooks::Settings {
            url: receiver.url("/crash"),
            events: vec!["contact.created".into()],
            include_private: false,
        },
    )
    .await
    .unwrap();
    let site = store.default_site().await.unwrap();
    for n in 0..3 {
        store
            .create_visitor(site.id, &format!("crash-{n}"), &format!("Visitor {n}"), "")
            .await
            .unwrap();
    }
    // A is sending the first delivery and the receiver holds it: kill A.
    tokio::time::timeout(Duration::from_secs(20), receiver.held.notified())
        .await
        .expect("instance A sent a delivery");
    let port_b = support::free_port();
    let mut b = careline_process(&test_db.url, &dir.path().join("b"), port_b);
    wait_ready(port_b).await;
    a.kill().unwrap();
    a.wait().unwrap();

    receiver
        .wait_for("/crash", "all three events delivered", |got| {
            let mut ids: Vec<&str> = got
                .iter()
                .filter(|r| r.answered == 200)
                .map(|r| r.event_id.as_str())
                .collect();
            ids.sort();
            ids.dedup();
            ids.len() == 3
        })
        .await;
    let got = receiver.received("/crash");
    let held = &got[0];
    assert_eq!(held.answered, 0, "the first was held");
    let again: Vec<&Received> = got[1..]
        .iter()
        .filter(|r| r.event_id == held.event_id)
        .collect();
    assert!(!again.is_empty(), "the held event came again");
    assert!(
        again.iter().all(|r| r.body == held.body),
        "with the same body"
    );
    let mut ids: Vec<&str> = got.iter().map(|r| r.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "no event id but the three: {ids:?}");
    b.kill().unwrap();
    b.wait().unwrap();
}
