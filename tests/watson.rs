//! Watson Assistant as the bot, against a fake Watson that checks requests
//! like the real service (IAM bearer token, `version`, session lifecycle):
//! answers with options (again on resume after a reconnect), handoff to a
//! person with a note for the agent, expired sessions, failures, the
//! circuit breaker and the FAQ fallback. The fake listens on loopback:
//! each app lists it in `egress_allowed_hosts`, as an install lists an
//! internal Watson (what is refused without that: `tests/egress.rs`).

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::fakes::{FakeWatson, WATSON_ASSISTANT, WATSON_KEY, WATSON_VERSION, WatsonReply};
use support::ws::WsClient;
use support::{Browser, Database, TestApp};

async fn configure(admin: &mut Browser, watson: &FakeWatson, fallback: &str) {
    admin.get("/admin/bot").await.expect_status(200);
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
                ("fallback", fallback),
            ],
        )
        .await
        .expect_redirect("/admin/bot?done=saved");
}

/// A new visitor says `body`; returns them and the `conversation` frame
/// that puts them in the queue for a person.
async fn says_and_waits_for_a_person(app: &TestApp, site: &str, body: &str) -> (WsClient, Value) {
    let mut visitor = app.visitor(site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "a", "body": body}))
        .await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    (visitor, waiting)
}

#[tokio::test]
async fn watson_answers_with_options_then_hands_off_with_a_note_for_the_agent() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;

    // The admin page never shows the key back, and the test button works.
    let page = admin.get("/admin/bot").await;
    assert!(!page.contains(WATSON_KEY));
    assert!(page.contains("••••-key"), "only the last 4 characters");
    let tested = admin
        .submit("/admin/bot/test", &[])
        .await
        .expect_redirect("/admin/bot?test=ok");
    let _ = tested;

    watson.script(&[
        WatsonReply::Generic(
            json!([
                {"response_type": "text", "text": "Hi! What is it about?"},
                {"response_type": "pause", "time": 300, "typing": true},
                {"response_type": "option", "title": "Choose a topic", "options": [
                    {"label": "An order", "value": {"input": {"text": "order"}}},
                    {"label": "A refund", "value": {"input": {"text": "refund"}}}
                ]}
            ]),
            0.92,
        ),
        WatsonReply::Generic(
            json!([{"response_type": "connect_to_agent", "message_to_human_agent": "Wants a refund for order 42",
                    "agent_available": {"message": "Connecting you"}, "agent_unavailable": {"message": "Nobody there"}}]),
            0.88,
        ),
    ]);
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "w1", "body": "hello"}))
        .await;
    let id = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    assert_eq!(answer["body"], "Hi! What is it about?\n\nChoose a topic");
    assert_eq!(answer["options"], json!(["An order", "A refund"]));

    // The customer's connection drops before they choose; back, the widget
    // resumes from nothing held (a reload) and gets the buttons again.
    let token = visitor.token.clone().unwrap();
    visitor.drop_connection();
    let mut visitor = app.visitor_with_token(&site, &token).await;
    visitor
        .send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
        .await;
    visitor.expect_type("resumed").await;
    let replayed = visitor
        .seen("message")
        .into_iter()
        .find(|f| f["sender"]["kind"] == "bot")
        .cloned()
        .expect("the bot's answer is replayed");
    assert_eq!(replayed["seq"], answer["seq"]);
    assert_eq!(replayed["body"], answer["body"]);
    assert_eq!(replayed["options"], json!(["An order", "A refund"]));

    // Choosing one after the reconnect is a message like any other.
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "w2", "body": "A refund"})).await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let number = waiting["ticket_number"].as_i64().expect("a ticket opened");

    // One session for the conversation; both messages went to it.
    assert_eq!(
        watson.sessions_created(),
        2,
        "one for the connection test, one for the chat"
    );
    let sent: Vec<String> = watson
        .messages()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert_eq!(sent, vec!["hello", "A refund"]);
    let sessions: Vec<String> = watson.messages().into_iter().map(|(s, _)| s).collect();
    assert_eq!(sessions[0], sessions[1]);
    assert_eq!(
        watson.tokens_issued(),
        2,
        "one IAM token per bot instance, reused for every call"
    );

    // The agent reads the assistant's note; the customer never does. The
    // note is written just after the hand-off the customer saw.
    let note = "From the assistant: Wants a refund for order 42";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !admin
        .get(&format!("/console/tickets/{number}"))
        .await
        .contains(note)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the note never reached the ticket page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    while visitor.try_next(Duration::from_millis(100)).await.is_some() {}
    assert!(
        visitor
            .log
            .iter()
            .all(|f| !f["body"].as_str().unwrap_or("").contains("order 42"))
    );
}

#[tokio::test]
async fn an_expired_watson_session_is_recreated_and_the_message_retried() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    watson.script(&[
        WatsonReply::Generic(
            json!([{"response_type": "text", "text": "First answer"}]),
            0.9,
        ),
        WatsonReply::SessionExpired,
        WatsonReply::Generic(
            json!([{"response_type": "text", "text": "Still here"}]),
            0.9,
        ),
    ]);
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "a", "body": "one"}))
        .await;
    let id = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    visitor.expect_message("First answer").await;
    visitor
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "b", "body": "two"}))
        .await;
    visitor.expect_message("Still here").await;
    assert_eq!(watson.sessions_created(), 2, "a new session after the 404");
}

#[tokio::test]
async fn when_watson_is_down_the_customer_still_reaches_a_person() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    // 429, then 500s: retried with backoff, then given up.
    watson.script(&[
        WatsonReply::RateLimited,
        WatsonReply::ServerError,
        WatsonReply::ServerError,
    ]);
    let (_visitor, waiting) = says_and_waits_for_a_person(&app, &site, "help").await;
    assert!(waiting["ticket_number"].is_i64());
    assert_eq!(
        watson.requests(),
        4,
        "a session, then the message tried 3 times"
    );
}

#[tokio::test]
async fn an_oversized_answer_is_not_read_and_the_customer_reaches_a_person() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    // Valid JSON, but 2 MiB of it: an assistant gone wrong, not an answer.
    watson.script(&[WatsonReply::Huge(2 << 20)]);
    let (visitor, waiting) = says_and_waits_for_a_person(&app, &site, "help").await;
    assert!(waiting["ticket_number"].is_i64());
    assert!(
        visitor
            .seen("message")
            .iter()
            .all(|m| m["body"].as_str().unwrap_or_default().len() < 10_000),
        "nothing of the oversized answer reached the customer"
    );
    assert_eq!(
        watson.requests(),
        2,
        "a session, then the message once: not retried"
    );
}

#[tokio::test]
async fn a_rate_limited_answer_is_retried() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    watson.script(&[
        WatsonReply::RateLimited,
        WatsonReply::Generic(
            json!([{"response_type": "text", "text": "After the wait"}]),
            0.9,
        ),
    ]);
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "a", "body": "hi"}))
        .await;
    visitor.expect_message("After the wait").await;
}

#[tokio::test]
async fn with_the_faq_fallback_the_built_in_bot_answers_while_watson_fails() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "faq").await;
    watson.script(&[
        WatsonReply::ServerError,
        WatsonReply::ServerError,
        WatsonReply::ServerError,
    ]);
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "a", "body": "When are you open?"}))
        .await;
    let answer = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    assert!(
        answer["body"]
            .as_str()
            .unwrap()
            .contains("Monday to Friday"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_slow_watson_hands_off_within_the_bot_timeout() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.bot_timeout_ms = 500;
        watson.allow(c);
    })
    .await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    watson.script(&[WatsonReply::Slow(Duration::from_secs(3))]);
    let started = std::time::Instant::now();
    says_and_waits_for_a_person(&app, &site, "hi").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "nobody waits for a dead bot"
    );
}

#[tokio::test]
async fn the_circuit_breaker_stops_calling_a_failing_watson() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    configure(&mut admin, &watson, "person").await;
    watson.script(&vec![WatsonReply::ServerError; 100]);
    for i in 0..5 {
        let mut visitor = app.visitor(&site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": format!("s{i}"), "body": "hi"}))
            .await;
        visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
    }
    let before = watson.requests();
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "after", "body": "hi"}))
        .await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    assert_eq!(
        watson.requests(),
        before,
        "the open breaker answers without calling Watson"
    );
}

#[tokio::test]
async fn a_wrong_api_key_fails_the_connection_test_with_the_reason() {
    let watson = FakeWatson::start().await;
    let app = TestApp::spawn_with(Database::Sqlite, |c| watson.allow(c)).await;
    let mut admin = app.admin().await;
    admin.get("/admin/bot").await;
    let iam = format!("{}/identity/token", watson.base);
    admin
        .submit(
            "/admin/bot",
            &[
                ("kind", "watson"),
                ("url", &watson.base),
                ("assistant_id", WATSON_ASSISTANT),
                ("api_key", "wrong-key"),
                ("version", WATSON_VERSION),
                ("iam_url", &iam),
                ("min_confidence", "0.3"),
                ("fallback", "person"),
            ],
        )
        .await
        .expect_redirect("/admin/bot?done=saved");
    admin.get("/admin/bot").await;
    let redirect = admin.submit("/admin/bot/test", &[]).await;
    let location = redirect.location.clone().unwrap();
    assert!(location.starts_with("/admin/bot?test=failed"), "{location}");
    let page = admin.get(&location).await;
    assert!(
        page.contains("Provided API key could not be found"),
        "{}",
        page.body
    );
    assert!(!page.contains("wrong-key"));
    // Bad settings are refused with the field named.
    admin.get("/admin/bot").await;
    let bad = admin
        .submit(
            "/admin/bot",
            &[
                ("kind", "watson"),
                ("url", "not a url"),
                ("assistant_id", "x"),
                ("version", "2021-11-27"),
                ("iam_url", &iam),
                ("min_confidence", "0.3"),
                ("fallback", "person"),
            ],
        )
        .await
        .expect_status(422);
    assert!(bad.contains("Enter the service URL"));
}
