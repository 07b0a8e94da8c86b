//! The delivery contract and the socket's defences, over real sockets:
//! idempotent sends, resume without gap or duplicate, slow readers, origins,
//! other people's conversations, malformed and abusive frames, atomic
//! claims, shutdown.
//!
//! Longer than 600 lines: one contract, one binary: each test binary links
//! the whole server (on two cores, a new binary costs more than a long file);
//! each case reads alone, top to bottom.

mod support;

use std::sync::Arc;
use std::time::Duration;

use careline::Adapters;
use careline::bot::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use careline::model::VisitorId;
use futures_util::SinkExt;
use serde_json::{Value, json};
use support::browser::Browser;
use support::ws::{Ended, SHOP_ORIGIN, WsClient};
use support::{Database, TestApp};
use tokio_tungstenite::tungstenite::Message;

/// A visitor in a live conversation with an agent; returns (visitor,
/// agent, conversation id, site key).
async fn live_chat(app: &TestApp) -> (WsClient, WsClient, String, String) {
    let site = app.allow_shop().await;
    let live = app.live_chat(&site).await;
    (live.visitor, live.agent, live.id, site)
}

fn seqs_of(frames: &[Value], conversation: &str) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f["type"] == "message" && f["conversation_id"] == conversation)
        .map(|f| f["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_retried_send_gets_the_same_ack_and_is_stored_once() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut visitor, mut agent, id, _) = live_chat(&app).await;
    let frame = json!({"type": "send", "conversation_id": id, "client_msg_id": "retry-1", "body": "only once"});
    visitor.send(frame.clone()).await;
    let first = visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "retry-1")
        .await;
    visitor.expect_message("only once").await;
    visitor.send(frame.clone()).await;
    let visitor_log_len = visitor.log.len();
    let second = visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "retry-1")
        .await;
    let third_frame =
        json!({"type": "send", "conversation_id": id, "client_msg_id": "after", "body": "next"});
    visitor.send(third_frame).await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "after")
        .await;
    assert_eq!(first["seq"], second["seq"]);
    assert_eq!(first["id"], second["id"]);
    agent.expect_message("next").await;
    let copies = agent
        .log
        .iter()
        .filter(|f| f["type"] == "message" && f["body"] == "only once")
        .count();
    assert_eq!(copies, 1, "a retry is not broadcast again");
    assert!(
        visitor.log[visitor_log_len..]
            .iter()
            .all(|f| f["body"] != "only once"),
        "nor echoed again"
    );
    let next = visitor.seen("ack").last().unwrap()["seq"].as_i64().unwrap();
    assert_eq!(
        next,
        first["seq"].as_i64().unwrap() + 1,
        "no seq was used up by the retry"
    );
}

#[tokio::test]
async fn resume_after_a_dropped_socket_has_no_gap_and_no_duplicate() {
    for db in support::databases::backends("resume").await {
        let app = TestApp::spawn(db).await;
        let (mut visitor, mut agent, id, site) = live_chat(&app).await;
        agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a0", "body": "before the drop"})).await;
        let before = visitor.expect_message("before the drop").await;
        let held = before["seq"].as_i64().unwrap();
        let token = visitor.token.clone().unwrap();
        visitor.drop_connection();

        // The agent keeps writing while the customer is away.
        for i in 1..=5 {
            agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": format!("a{i}"), "body": format!("while away {i}")})).await;
            agent
                .expect(|f| f["type"] == "ack" && f["client_msg_id"] == format!("a{i}"))
                .await;
        }
        let mut back = app.visitor_with_token(&site, &token).await;
        back.send(json!({"type": "resume", "conversation_id": id, "after_seq": held}))
            .await;
        let resumed = back.expect_type("resumed").await;
        let got = seqs_of(&back.log, &id);
        assert_eq!(
            got,
            (held + 1..=held + 5).collect::<Vec<_>>(),
            "exactly the missed messages, in order"
        );
        assert_eq!(resumed["last_seq"].as_i64().unwrap(), held + 5);
        // Then live again.
        agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a6", "body": "live again"})).await;
        let live = back.expect_message("live again").await;
        assert_eq!(live["seq"].as_i64().unwrap(), held + 6);
        eprintln!("resume passed on {db:?}");
    }
}

/// A bot that asks which order, offering buttons the way an assistant's
/// content can come: padded, blank, far too long, far too many.
struct AskingBot;

impl Bot for AskingBot {
    fn reply<'a>(&'a self, _turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async {
            let mut options = vec!["  Latest order ".to_string(), " ".into(), "x".repeat(300)];
            options.extend((1..=20).map(|n| format!("Order {n}")));
            Ok(BotReply::Answer {
                text: "Which order?".into(),
                options,
            })
        })
    }
    fn name(&self) -> &'static str {
        "asking"
    }
}

#[tokio::test]
async fn a_bot_questions_buttons_come_back_on_resume_as_they_were_sent_live() {
    for db in support::databases::backends("bot options on resume").await {
        let adapters = Adapters {
            bot: Some(Arc::new(AskingBot)),
            ..Adapters::default()
        };
        let app = TestApp::spawn_full(db, |_| {}, adapters).await;
        let site = app.allow_shop().await;
        let mut visitor = app.visitor(&site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": "q1", "body": "where is my order"}))
            .await;
        let live = visitor.expect_message("Which order?").await;
        let id = live["conversation_id"].as_str().unwrap().to_string();
        // Bounded: trimmed, blanks dropped, cut to 200 characters, 10 at most.
        let mut expected = vec![json!("Latest order"), json!("x".repeat(200))];
        expected.extend((1..=8).map(|n| json!(format!("Order {n}"))));
        assert_eq!(live["options"], Value::Array(expected.clone()));

        // The customer reloads: a new socket resumes from nothing held.
        let token = visitor.token.clone().unwrap();
        visitor.drop_connection();
        let mut back = app.visitor_with_token(&site, &token).await;
        back.send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
            .await;
        back.expect_type("resumed").await;
        let replayed: Vec<&Value> = back.seen("message");
        assert_eq!(replayed.len(), 2, "{replayed:?}");
        assert_eq!(replayed[0]["body"], "where is my order");
        assert!(
            replayed[0].get("options").is_none(),
            "no `options` on a message without any"
        );
        assert_eq!(replayed[1]["seq"], live["seq"]);
        assert_eq!(replayed[1]["options"], live["options"]);

        // Staff replaying the conversation see them too.
        let admin = app.admin().await;
        let mut console = app.agent_socket(&admin).await;
        console
            .send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
            .await;
        console.expect_type("resumed").await;
        let question = console
            .seen("message")
            .into_iter()
            .find(|f| f["body"] == "Which order?")
            .cloned()
            .expect("staff replay the bot's question");
        assert_eq!(question["options"], Value::Array(expected));
        eprintln!("bot options on resume passed on {db:?}");
    }
}

#[tokio::test]
async fn a_slow_reader_is_closed_and_the_others_keep_up() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.ws_frames_per_second = 10_000;
        c.ws_frame_burst = 10_000;
        c.ws_outbound_queue = 64;
    })
    .await;
    let (mut visitor, mut agent, id, _) = live_chat(&app).await;

    // A second agent console that never reads, with a tiny receive buffer.
    let slow = slow_admin_replaying(&app, &id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A flood of large messages: the slow socket's queue fills up.
    let body = "x".repeat(8000);
    // Far more than the kernel's socket buffers and a 64-frame queue hold.
    let total = 1200;
    let last = format!("f{}", total - 1);
    let reader = {
        let last = last.clone();
        tokio::spawn(async move {
            visitor
                .expect(|f| f["type"] == "message" && f["client_msg_id"] == last.as_str())
                .await;
            visitor
        })
    };
    send_in_acked_batches(&mut agent, &id, "f", total, &body).await;
    // The visitor got every one, in order, without gaps.
    let visitor = reader.await.unwrap();
    let got = seqs_of(&visitor.log, &id);
    assert!(got.len() >= total, "{} messages", got.len());
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "no gap and no duplicate"
    );

    // The slow socket was closed by the server: draining it ends in 4000 or EOF.
    let mut slow_client = WsClientRaw(slow, 0);
    let ended = slow_client.drain_until_end(Duration::from_secs(20)).await;
    assert!(
        matches!(
            ended,
            Some(Ended::Closed(Some(4000))) | Some(Ended::Dropped)
        ),
        "the slow socket should be closed by the server, got {ended:?}"
    );
    eprintln!(
        "slow reader ended with {ended:?} after {} frames",
        slow_client.1
    );
}

/// Sends `total` messages `{prefix}0…` to conversation `id`, a few at a
/// time, each few acked before the next. Few: the agent's socket does not
/// read while it sends, and each message comes back to it (an ack and the
/// 8 KB message) — more than the kernel's buffers and a small queue hold
/// would have the server close the agent as a slow reader too.
async fn send_in_acked_batches(
    agent: &mut WsClient,
    id: &str,
    prefix: &str,
    total: usize,
    body: &str,
) {
    const AT_ONCE: usize = 4;
    for batch in 0..total.div_ceil(AT_ONCE) {
        let ids = batch * AT_ONCE..(batch * AT_ONCE + AT_ONCE).min(total);
        for i in ids.clone() {
            agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": format!("{prefix}{i}"), "body": body})).await;
        }
        let batch_last = format!("{prefix}{}", ids.end - 1);
        agent
            .expect(|f| f["type"] == "ack" && f["client_msg_id"] == batch_last.as_str())
            .await;
    }
}

/// An admin console that asks for the whole history of conversation `id`
/// and then never reads, behind a 4 KiB receive buffer.
async fn slow_admin_replaying(
    app: &TestApp,
    id: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let admin_browser = {
        let mut b = app.browser();
        b.login("admin@example.com", "admin password 1").await;
        b
    };
    let cookie = admin_browser.cookie_header();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            app.addr
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("Origin", app.base.parse().unwrap());
    request
        .headers_mut()
        .insert("Cookie", cookie.parse().unwrap());
    let (mut slow, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    slow.send(Message::Text(json!({"type": "hello"}).to_string().into()))
        .await
        .unwrap();
    // The welcome proves the server holds the socket (it is counted in the
    // hub); from here on the client reads nothing.
    let welcome = tokio::time::timeout(Duration::from_secs(10), async {
        use futures_util::StreamExt;
        while let Some(Ok(message)) = slow.next().await {
            if let Message::Text(text) = message
                && serde_json::from_str::<Value>(&text).unwrap()["type"] == "welcome"
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(welcome, Ok(true), "the slow console was welcomed");
    slow.send(Message::Text(
        json!({"type": "resume", "conversation_id": id, "after_seq": 0})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    slow
}

/// A client that asks for a long history and then stops reading must not
/// hold the server's socket for long: once it is closed as too slow, the
/// rest of the replay gives up at once instead of waiting for room frame by
/// frame.
#[tokio::test]
async fn a_client_that_stops_reading_during_a_replay_is_let_go_promptly() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.ws_frames_per_second = 10_000;
        c.ws_frame_burst = 10_000;
        c.ws_outbound_queue = 8;
    })
    .await;
    let (_visitor, mut agent, id, _) = live_chat(&app).await;
    // More history than the kernel's socket buffers and the queue hold.
    let body = "y".repeat(8000);
    let total = 1000;
    send_in_acked_batches(&mut agent, &id, "h", total, &body).await;
    let before = app.hub.socket_count();

    let slow = slow_admin_replaying(&app, &id).await;
    let opened = tokio::time::Instant::now();
    assert_eq!(
        app.hub.socket_count(),
        before + 1,
        "the slow console is held"
    );
    // One send timeout (10 s) to be judged too slow, then a few seconds to
    // close; waiting for room frame by frame would take 10 s per frame.
    while app.hub.socket_count() > before {
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "the server still holds the socket of a client that stopped reading"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("let go after {:?}", opened.elapsed());
    // The others are unaffected.
    agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "after", "body": "still here"})).await;
    agent
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "after")
        .await;
    drop(slow);
}

/// A raw client for the slow-reader test, counting frames as it drains.
struct WsClientRaw(
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    usize,
);

impl WsClientRaw {
    async fn drain_until_end(&mut self, wait: Duration) -> Option<Ended> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(Ended::Dropped),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(Ended::Closed(frame.map(|f| u16::from(f.code))));
                }
                Ok(Some(Ok(_))) => self.1 += 1,
            }
        }
    }
}

#[tokio::test]
async fn sockets_from_origins_that_are_not_allowed_are_refused() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    assert_eq!(
        app.connect_ws(&format!("/ws?site={site}"), "http://evil.example", None)
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        app.connect_ws("/ws?site=no-such-site", SHOP_ORIGIN, None)
            .await
            .err(),
        Some(403)
    );
    assert!(
        app.connect_ws(&format!("/ws?site={site}"), SHOP_ORIGIN, None)
            .await
            .is_ok()
    );

    // Agents: only from Careline's own origin, and only with a staff session.
    let admin = app.admin().await;
    let cookie = admin.cookie_header();
    assert_eq!(
        app.connect_ws("/ws", SHOP_ORIGIN, Some(&cookie))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        app.connect_ws("/ws", &app.base, None).await.err(),
        Some(403)
    );
    assert_eq!(
        app.connect_ws("/ws", &app.base, Some("careline_session=forged"))
            .await
            .err(),
        Some(403)
    );
    let customer = app.customer("Grace", "grace@example.com").await;
    let cookie = customer.cookie_header();
    assert_eq!(
        app.connect_ws("/ws", &app.base, Some(&cookie)).await.err(),
        Some(403),
        "customers are not agents"
    );

    // The HTTP bootstrap follows the same rule (CORS).
    let refused = app
        .widget_session("http://evil.example", json!({"site_key": site}))
        .await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let allowed = app
        .widget_session(SHOP_ORIGIN, json!({"site_key": site}))
        .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        SHOP_ORIGIN
    );
    let preflight = |origin: &'static str| {
        let url = format!("{}/api/widget/v1/session", app.base);
        async move {
            careline::http_client(std::time::Duration::from_secs(30))
                .request(reqwest::Method::OPTIONS, url)
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(preflight(SHOP_ORIGIN).await.status(), 204);
    assert_eq!(preflight("http://evil.example").await.status(), 403);
}

#[tokio::test]
async fn an_unknown_visitor_token_gets_a_fresh_visitor_never_someone_elses() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let first: Value = app
        .widget_session(SHOP_ORIGIN, json!({"site_key": site}))
        .await
        .json()
        .await
        .unwrap();
    let again: Value = app
        .widget_session(
            SHOP_ORIGIN,
            json!({"site_key": site, "visitor_token": first["visitor_token"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["visitor_id"], again["visitor_id"],
        "a known token finds its visitor"
    );
    let forged: Value = app
        .widget_session(
            SHOP_ORIGIN,
            json!({"site_key": site, "visitor_token": "made-up"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(forged["visitor_id"], first["visitor_id"]);
    assert_ne!(forged["visitor_token"], "made-up");
    assert!(
        forged["visitor_token"].as_str().unwrap().len() >= 22,
        "at least 128 bits"
    );
    // A socket hello with an unknown token is refused and closed.
    let mut client = app
        .connect_ws(&format!("/ws?site={site}"), SHOP_ORIGIN, None)
        .await
        .unwrap();
    client
        .send(json!({"type": "hello", "visitor_token": "made-up"}))
        .await;
    let error = client.expect_type("error").await;
    assert_eq!(error["code"], "invalid");
    assert_eq!(
        client.ended(Duration::from_secs(5)).await,
        Some(Ended::Closed(Some(1008)))
    );
}

#[tokio::test]
async fn a_visitor_cannot_read_or_write_another_conversation() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut owner, mut agent, id, site) = live_chat(&app).await;
    let mut intruder = app.visitor(&site).await;
    let attempts = [
        json!({"type": "send", "conversation_id": id, "client_msg_id": "x1", "body": "injected", "ref": 1}),
        json!({"type": "resume", "conversation_id": id, "after_seq": 0, "ref": 2}),
        json!({"type": "typing", "conversation_id": id, "ref": 3}),
        json!({"type": "read", "conversation_id": id, "seq": 1, "ref": 4}),
        json!({"type": "handoff", "conversation_id": id, "ref": 5}),
        json!({"type": "rate", "conversation_id": id, "score": 1, "ref": 6}),
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        intruder.send(attempt.clone()).await;
        let error = intruder
            .expect(|f| f["type"] == "error" && f["ref"] == i + 1)
            .await;
        assert_eq!(error["code"], "not_found", "{attempt}");
    }
    // The same answer as a conversation that does not exist.
    intruder
        .send(json!({"type": "resume", "conversation_id": "999999", "after_seq": 0, "ref": 99}))
        .await;
    let missing = intruder
        .expect(|f| f["type"] == "error" && f["ref"] == 99)
        .await;
    assert_eq!(
        missing["message"],
        intruder.log.iter().find(|f| f["ref"] == 2).unwrap()["message"]
    );
    assert!(
        intruder.log.iter().all(|f| f["type"] != "message"),
        "nothing leaked"
    );
    // Visitors cannot use agent frames either.
    intruder
        .send(json!({"type": "claim", "conversation_id": id, "ref": 7}))
        .await;
    let refused = intruder.expect(|f| f["ref"] == 7).await;
    assert_eq!(refused["code"], "unknown_type");

    owner.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "o1", "body": "still mine"})).await;
    agent.expect_message("still mine").await;
    assert!(
        agent.log.iter().all(|f| f["body"] != "injected"),
        "nothing was stored"
    );
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_socket_stays_usable() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut visitor, _agent, id, _) = live_chat(&app).await;
    let cases: [(&str, &str); 6] = [
        ("not json", "bad_frame"),
        ("[1,2,3]", "bad_frame"),
        (r#"{"no":"type"}"#, "bad_frame"),
        (r#"{"type":"explode"}"#, "unknown_type"),
        (r#"{"type":"send","conversation_id":"1"}"#, "invalid"),
        (
            r#"{"type":"send","conversation_id":"1","client_msg_id":"","body":"x"}"#,
            "invalid",
        ),
    ];
    for (text, code) in cases {
        visitor.send_raw(Message::Text(text.into())).await;
        let error = visitor.expect_type("error").await;
        assert_eq!(error["code"], code, "{text}");
    }
    visitor
        .send_raw(Message::Binary(vec![1, 2, 3].into()))
        .await;
    assert_eq!(visitor.expect_type("error").await["code"], "bad_frame");
    let long = "y".repeat(8001);
    visitor
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": "long", "body": long}))
        .await;
    assert_eq!(visitor.expect_type("error").await["code"], "too_large");
    // Still usable.
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "ok", "body": "still here"})).await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "ok")
        .await;

    // A frame over 64 KiB closes the socket with 1009.
    let huge = json!({"type": "send", "conversation_id": id, "client_msg_id": "huge", "body": "z".repeat(70 * 1024)});
    visitor.send(huge).await;
    assert_eq!(
        visitor.ended(Duration::from_secs(5)).await,
        Some(Ended::Closed(Some(1009)))
    );
}

#[tokio::test]
async fn a_flood_of_frames_is_rate_limited_then_closed() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut flood = app.visitor(&site).await;
    let mut calm = app.visitor(&site).await;
    for _ in 0..200 {
        flood
            .send(json!({"type": "typing", "conversation_id": "1"}))
            .await;
    }
    let ended = flood.ended(Duration::from_secs(5)).await;
    assert!(
        flood.log.iter().any(|f| f["code"] == "rate_limited"),
        "errors first"
    );
    assert_eq!(ended, Some(Ended::Closed(Some(1008))));
    // Everyone else is fine.
    calm.send(json!({"type": "start"})).await;
    calm.expect_type("conversation").await;
}

#[tokio::test]
async fn a_console_may_send_three_times_a_widgets_frames_and_no_more() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let alan_browser = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut console = app.agent_socket(&alan_browser).await;
    let mut widget = app.visitor(&site).await;
    // Frames of an unknown type: answered at once without touching the
    // database, so the refill (a tenth of the burst per second) adds
    // next to nothing while they are handled. hello took one token.
    async fn burst(socket: &mut WsClient, frames: usize) -> (usize, usize) {
        for _ in 0..frames {
            socket.send(json!({"type": "no_such_frame"})).await;
        }
        let (mut handled, mut refused) = (0, 0);
        while handled + refused < frames {
            let frame = socket.next().await;
            match frame["code"].as_str() {
                Some("unknown_type") => handled += 1,
                Some("rate_limited") => refused += 1,
                _ => panic!("unexpected frame {frame}"),
            }
        }
        (handled, refused)
    }
    // 20 over each burst (30 refusals in a row would close the socket).
    let (handled, refused) = burst(&mut console, 89 + 20).await;
    assert!(
        (89..=99).contains(&handled),
        "a console's burst is 90: {handled}"
    );
    assert!(refused >= 10, "and what is over it is refused: {refused}");
    let (handled, refused) = burst(&mut widget, 29 + 20).await;
    assert!(
        (29..=33).contains(&handled),
        "a widget's burst is 30: {handled}"
    );
    assert!(refused >= 16, "{refused}");
}

#[tokio::test]
async fn frames_before_hello_are_refused() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut client = app
        .connect_ws(&format!("/ws?site={site}"), SHOP_ORIGIN, None)
        .await
        .unwrap();
    client.send(json!({"type": "start", "ref": "early"})).await;
    let error = client.expect_type("error").await;
    assert_eq!(error["ref"], "early");
    assert!(error["message"].as_str().unwrap().contains("hello"));
}

#[tokio::test]
async fn two_agents_claiming_at_once_exactly_one_wins() {
    for db in support::databases::backends("claim race").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin = app.admin().await;
        let a = app.agent(&mut admin, "Agent A", "a@example.com").await;
        let b = app.agent(&mut admin, "Agent B", "b@example.com").await;
        let mut sa = app.agent_socket(&a).await;
        let mut sb = app.agent_socket(&b).await;
        for round in 0..5 {
            let mut visitor = app.visitor(&site).await;
            visitor.send(json!({"type": "start", "body": format!("round {round}"), "client_msg_id": "s"})).await;
            let id = visitor.expect_type("conversation").await["id"]
                .as_str()
                .unwrap()
                .to_string();
            visitor
                .send(json!({"type": "handoff", "conversation_id": id}))
                .await;
            visitor
                .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
                .await;
            let claim = |r: &str| json!({"type": "claim", "conversation_id": id, "ref": r});
            let (_, _) = tokio::join!(sa.send(claim("a")), sb.send(claim("b")));
            let ra = sa
                .expect(|f| {
                    f["ref"] == "a"
                        || (f["type"] == "conversation"
                            && f["id"] == id.as_str()
                            && f["assignee"]["name"] == "Agent A")
                })
                .await;
            let rb = sb
                .expect(|f| {
                    f["ref"] == "b"
                        || (f["type"] == "conversation"
                            && f["id"] == id.as_str()
                            && f["assignee"]["name"] == "Agent B")
                })
                .await;
            let won = [&ra, &rb]
                .iter()
                .filter(|f| f["type"] == "conversation")
                .count();
            let lost = [&ra, &rb]
                .iter()
                .filter(|f| f["type"] == "error" && f["code"] == "conflict")
                .count();
            assert_eq!((won, lost), (1, 1), "round {round}: {ra} / {rb}");

            // The loser's console does not keep following a conversation it
            // never got: the customer's next message reaches the winner only.
            let (winner, loser) = if ra["type"] == "conversation" {
                (&mut sa, &mut sb)
            } else {
                (&mut sb, &mut sa)
            };
            let body = format!("after round {round}");
            visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "after", "body": body})).await;
            winner.expect_message(&body).await;
            // Frames reach a socket in order: its own answer comes after
            // anything the hub already queued for it.
            loser.send(json!({"type": "watch_queue"})).await;
            loser.expect_type("queue").await;
            assert!(
                loser.log.iter().all(|f| f["body"] != body.as_str()),
                "round {round}: the losing agent still follows the conversation"
            );
        }
        eprintln!("claim race passed on {db:?}");
    }
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let mut app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    let stopping = tokio::spawn(async move {
        app.stop().await;
        app
    });
    assert_eq!(
        visitor.ended(Duration::from_secs(10)).await,
        Some(Ended::Closed(Some(1001)))
    );
    let _app = tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("drains in time");
}

#[tokio::test]
async fn the_hello_deadline_is_not_extended_by_other_frames() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.ws_hello_timeout_ms = 600).await;
    let site = app.allow_shop().await;
    let mut client = app
        .connect_ws(&format!("/ws?site={site}"), SHOP_ORIGIN, None)
        .await
        .unwrap();
    for _ in 0..6 {
        client
            .send(json!({"type": "typing", "conversation_id": "1"}))
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        client.ended(Duration::from_secs(3)).await,
        Some(Ended::Closed(Some(1008)))
    );
}

#[tokio::test]
async fn client_msg_ids_belong_to_their_sender() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut visitor, mut agent, id, _) = live_chat(&app).await;
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "same", "body": "from the visitor"})).await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "same")
        .await;
    agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "same", "body": "from the agent", "ref": "dup"})).await;
    let refused = agent.expect(|f| f["ref"] == "dup").await;
    assert_eq!(refused["code"], "conflict", "{refused}");
    // Ids with ':' are the server's own (bot:…): a client cannot take them.
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "bot:v0", "body": "x", "ref": "r"})).await;
    assert_eq!(visitor.expect(|f| f["ref"] == "r").await["code"], "invalid");
    // The ack carries the id as stored (trimmed).
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "  spaced  ", "body": "y"})).await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "spaced")
        .await;
}

#[tokio::test]
async fn a_retried_start_gets_the_same_conversation() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    let start = json!({"type": "start", "client_msg_id": "first-words", "body": "hello there"});
    visitor.send(start.clone()).await;
    let first = visitor.expect_type("conversation").await["id"].clone();
    visitor.expect_type("ack").await;
    visitor.send(start).await;
    let again = visitor.expect_type("conversation").await;
    assert_eq!(again["id"], first, "the retry found the first conversation");
    let ack = visitor.expect_type("ack").await;
    assert_eq!(ack["seq"], 1, "and the same first message");
    let visitor_id: VisitorId = visitor.log[0]["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        app.store
            .visitor_conversations(visitor_id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn resuming_from_beyond_the_end_replays_nothing_and_says_where_the_end_is() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut visitor, _agent, id, _) = live_chat(&app).await;
    visitor
        .send(json!({"type": "resume", "conversation_id": id, "after_seq": 9999}))
        .await;
    let resumed = visitor.expect_type("resumed").await;
    let actual = visitor.seen("conversation").last().unwrap()["last_seq"]
        .as_i64()
        .unwrap();
    assert_eq!(resumed["last_seq"].as_i64().unwrap(), actual);
    assert!(actual < 9999);
}

#[tokio::test]
async fn only_the_owner_or_an_admin_resolves_a_conversation() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (_visitor, _alan, id, _) = live_chat(&app).await;
    let mut admin_browser = app.browser();
    admin_browser
        .login("admin@example.com", "admin password 1")
        .await;
    let bea = app
        .agent(&mut admin_browser, "Bea", "bea@example.com")
        .await;
    let mut bea_socket = app.agent_socket(&bea).await;
    bea_socket
        .send(json!({"type": "resolve", "conversation_id": id, "ref": "r"}))
        .await;
    let refused = bea_socket.expect(|f| f["ref"] == "r").await;
    assert_eq!(refused["code"], "conflict");
    let mut admin = app.agent_socket(&admin_browser).await;
    admin
        .send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    admin
        .expect(|f| f["type"] == "conversation" && f["status"] == "resolved")
        .await;
}

#[tokio::test]
async fn pings_keep_a_live_socket_open_and_a_silent_one_is_closed() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.ws_idle_timeout_ms = 600).await;
    let site = app.allow_shop().await;
    let mut live = app.visitor(&site).await;
    let mut silent = app.visitor(&site).await;
    // The live client keeps reading, so it answers the server's pings.
    assert!(
        live.try_next(Duration::from_millis(1500)).await.is_none(),
        "no frames, only pings"
    );
    // The silent one read nothing for as long: no pongs, so the server gave up.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        silent.ended(Duration::from_secs(2)).await,
        Some(Ended::Closed(Some(1001)))
    );
    live.send(json!({"type": "start"})).await;
    live.expect_type("conversation").await;
}

// A console's session is not looked up on every frame: the change is
// announced on the account's bus topic and the console re-checks at once.
// So these tests send nothing after the change: the close must come by
// itself, well before the 30 s heartbeat.

/// The console was closed because its session ended (4401), within 5 s.
async fn assert_session_ended(console: &mut WsClient) {
    assert_eq!(
        console.ended(Duration::from_secs(5)).await,
        Some(Ended::Closed(Some(4401)))
    );
}

/// Two agents with a console each (Bea's: the one that must not be
/// affected), and the admin who invited them.
async fn alan_and_bea_consoles(app: &TestApp) -> (Browser, WsClient, WsClient) {
    let mut admin = app.admin().await;
    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let bea = app.agent(&mut admin, "Bea", "bea@example.com").await;
    let (alan, bea) = (app.agent_socket(&alan).await, app.agent_socket(&bea).await);
    (admin, alan, bea)
}

/// The console is still open and answers.
async fn assert_console_answers(console: &mut WsClient) {
    console.send(json!({"type": "watch_queue"})).await;
    console.expect_type("queue").await;
}

#[tokio::test]
async fn an_agent_socket_ends_with_4401_as_soon_as_the_session_ends() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan_browser = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut alan = app.agent_socket(&alan_browser).await;
    assert_console_answers(&mut alan).await;
    alan_browser.get("/console").await;
    alan_browser
        .submit("/logout", &[])
        .await
        .expect_redirect("/");
    assert_session_ended(&mut alan).await;
}

#[tokio::test]
async fn a_console_ends_with_4401_when_its_session_expires_with_nothing_sent() {
    use sqlx::Connection as _;
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let alan_browser = app.agent(&mut admin, "Alan", "alan@example.com").await;
    // Alan's session runs out in two seconds (as if it had been opened two
    // weeks ago): written straight to the database, as time would.
    let mut db = sqlx::SqliteConnection::connect(&app.raw.database_url)
        .await
        .unwrap();
    let soon = careline::store::now_ms() + 2_000;
    let changed = sqlx::query(
        "UPDATE sessions SET expires_at = ? WHERE user_id = (SELECT id FROM users WHERE email = 'alan@example.com')",
    )
    .bind(soon)
    .execute(&mut db)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1);
    let mut alan = app.agent_socket(&alan_browser).await;
    assert_console_answers(&mut alan).await;
    // Nothing is sent, nothing announced: the console's own timer ends it
    // at the expiry, well before the 30 s heartbeat.
    assert_eq!(
        alan.ended(Duration::from_secs(10)).await,
        Some(Ended::Closed(Some(4401)))
    );
}

#[tokio::test]
async fn a_new_name_reaches_the_open_console_without_ending_it() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let live = app.live_chat(&site).await;
    let (mut visitor, mut agent, mut browser, id) =
        (live.visitor, live.agent, live.agent_browser, live.id);
    browser.get("/account").await.expect_status(200);
    browser
        .submit("/account/profile", &[("name", "Alan Turing")])
        .await
        .expect_redirect("/account?saved=profile");
    // The console re-checks when the change is announced; its next
    // messages carry the new name (within 5 s, not at the 30 s heartbeat).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let client_msg_id = format!("rename-{attempt}");
        agent
            .send(json!({"type": "send", "conversation_id": id,
                         "client_msg_id": client_msg_id, "body": "still here"}))
            .await;
        let seen = visitor
            .expect(|f| f["type"] == "message" && f["client_msg_id"] == client_msg_id.as_str())
            .await;
        if seen["sender"]["name"] == "Alan Turing" {
            break;
        }
        assert_eq!(seen["sender"]["name"], "Alan Agent", "{seen}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new name did not reach the console"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_console_answers(&mut agent).await;
}

#[tokio::test]
async fn logging_in_again_ends_the_console_of_the_session_it_replaces() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan_browser = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut old = app.agent_socket(&alan_browser).await;
    // The same browser logs in again: its old session ends (rotation).
    alan_browser.get("/console").await;
    let page = alan_browser
        .submit(
            "/login",
            &[
                ("email", "alan@example.com"),
                ("password", "agent password 1"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_session_ended(&mut old).await;
    let mut new = app.agent_socket(&alan_browser).await;
    assert_console_answers(&mut new).await;
}

#[tokio::test]
async fn a_password_change_ends_the_consoles_of_every_other_session() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let alan_laptop = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut alan_phone = app.browser();
    alan_phone
        .login("alan@example.com", "agent password 1")
        .await;
    let mut on_laptop = app.agent_socket(&alan_laptop).await;
    let mut on_phone = app.agent_socket(&alan_phone).await;

    alan_phone.get("/account").await.expect_status(200);
    alan_phone
        .submit(
            "/account/password",
            &[
                ("current_password", "agent password 1"),
                ("new_password", "a new agent password"),
            ],
        )
        .await
        .expect_redirect("/account?saved=password");

    assert_session_ended(&mut on_laptop).await;
    // The session that made the change goes on.
    assert_console_answers(&mut on_phone).await;
}

#[tokio::test]
async fn a_password_reset_by_link_ends_every_console_of_the_account() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (_admin, mut alan, mut bea) = alan_and_bea_consoles(&app).await;
    assert_console_answers(&mut alan).await;

    // Someone with Alan's mailbox (Alan on another device, or not Alan).
    let mut b = app.browser();
    b.get("/password/forgot").await.expect_status(200);
    b.submit("/password/forgot", &[("email", "alan@example.com")])
        .await
        .expect_redirect("/password/forgot?sent=1");
    let link = app.emailed_link("alan@example.com", "password_reset").await;
    let token = support::token_of(&link);
    b.get(&link).await.expect_status(200);
    b.submit(
        "/password",
        &[("token", &token), ("password", "a brand new password")],
    )
    .await
    .expect_redirect("/login?password=saved");

    // No session made the change, so every one of Alan's consoles ends.
    assert_session_ended(&mut alan).await;
    assert_console_answers(&mut bea).await;
}

#[tokio::test]
async fn losing_the_staff_role_ends_the_console_at_once() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (mut admin, mut alan, mut bea) = alan_and_bea_consoles(&app).await;

    admin.get("/admin/people").await.expect_status(200);
    admin
        .submit(
            "/admin/people/role",
            &[("role_email", "alan@example.com"), ("role", "customer")],
        )
        .await
        .expect_redirect("/admin/people?done=role");

    assert_session_ended(&mut alan).await;
    // Only that account's consoles are affected.
    assert_console_answers(&mut bea).await;
}

/// A frame the WebSocket layer cannot read closes the socket with the code
/// RFC 6455 gives it: text that is not UTF-8 1007; a control frame over
/// 125 bytes or a reserved opcode 1002.
#[tokio::test]
async fn unreadable_frames_close_with_the_rfc_6455_codes() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let cases = [
        (
            Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true),
            1007,
        ),
        (Frame::ping(vec![b'x'; 200]), 1002),
        (
            Frame::message(b"{}".to_vec(), OpCode::Data(Data::Reserved(3)), true),
            1002,
        ),
    ];
    for (frame, code) in cases {
        let mut visitor = app.visitor(&site).await;
        visitor.send_raw(Message::Frame(frame)).await;
        assert_eq!(
            visitor.ended(Duration::from_secs(5)).await,
            Some(Ended::Closed(Some(code))),
            "close code {code}"
        );
    }
}
