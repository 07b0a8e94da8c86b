//! Real-time chat over real sockets: a visitor on another site's page, the
//! built-in bot, escalation, an agent console, and the delivery contract.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores, a new binary costs more than a long file); each case reads alone,
//! top to bottom.

mod support;

use std::sync::Arc;
use std::time::Duration;

use careline::Adapters;
use careline::bot::{Bot, BotError, BotReply, BotTurn, BoxFuture};
use serde_json::json;
use support::browser::Browser;
use support::databases::backends;
use support::ws::WsClient;
use support::{Database, TestApp};

#[tokio::test]
async fn customer_bot_handoff_agent_reply_resolve_and_rating() {
    for db in backends("chat story").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin_browser = app.admin().await;
        let agent_browser = app
            .agent(&mut admin_browser, "Alan Agent", "alan@example.com")
            .await;

        // The agent opens the console and watches the queue.
        let mut agent = app.agent_socket(&agent_browser).await;
        agent.send(json!({"type": "watch_queue"})).await;
        let queue = agent.expect_type("queue").await;
        assert_eq!(queue["waiting"].as_array().unwrap().len(), 0);

        // A visitor starts a chat; the FAQ bot answers a known question.
        let mut visitor = app.visitor(&site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": "v1", "body": "When are you open?"}))
            .await;
        let conversation = visitor.expect_type("conversation").await;
        assert_eq!(conversation["status"], "bot");
        let id = conversation["id"].as_str().unwrap().to_string();
        let ack = visitor.expect_type("ack").await;
        assert_eq!(ack["seq"], 1);
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
        assert_eq!(answer["seq"], 2);

        // "Talk to a person": the conversation waits with a ticket, and the
        // agent's queue shows it live.
        visitor
            .send(json!({"type": "handoff", "conversation_id": id}))
            .await;
        let waiting = visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
        let ticket_number = waiting["ticket_number"]
            .as_i64()
            .expect("a ticket was opened");
        let queue = agent
            .expect(|f| f["type"] == "queue" && !f["waiting"].as_array().unwrap().is_empty())
            .await;
        assert_eq!(queue["waiting"][0]["conversation_id"], id.as_str());
        assert_eq!(queue["waiting"][0]["ticket_number"], ticket_number);

        // The agent claims it and replies; the visitor sees the reply.
        let claimed = agent.claim(&id).await;
        assert_eq!(claimed["assignee"]["name"], "Alan Agent");
        agent
            .send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
            .await;
        agent.expect_type("resumed").await;
        agent.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "body": "Hi, I'm Alan. How can I help?"})).await;
        agent
            .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "a1")
            .await;
        let reply = visitor
            .expect_message("Hi, I'm Alan. How can I help?")
            .await;
        assert_eq!(reply["sender"]["kind"], "agent");
        assert!(
            reply["sender"].get("id").is_none(),
            "visitors do not learn agent ids"
        );

        // A private note reaches the agent only.
        agent.send(json!({"type": "note", "conversation_id": id, "client_msg_id": "n1", "body": "VIP customer"})).await;
        agent.expect_message("VIP customer").await;
        visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "v2", "body": "My order is late"})).await;
        let customer_msg = agent.expect_message("My order is late").await;
        let visitor_view = visitor.expect_message("My order is late").await;
        assert!(
            visitor.log.iter().all(|f| f["body"] != "VIP customer"),
            "notes never reach a visitor"
        );
        // Each side numbers without gaps: the visitor never saw the note's number.
        assert_eq!(
            visitor_view["seq"].as_i64().unwrap() + 1,
            customer_msg["seq"].as_i64().unwrap()
        );

        // Typing reaches the other side.
        visitor
            .send(json!({"type": "typing", "conversation_id": id}))
            .await;
        agent
            .expect(|f| f["type"] == "typing" && f["sender"]["kind"] == "customer")
            .await;

        // Resolve, then the visitor rates; the rating lands on the ticket.
        agent
            .send(json!({"type": "resolve", "conversation_id": id}))
            .await;
        visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "resolved")
            .await;
        visitor.send(json!({"type": "rate", "conversation_id": id, "score": 5, "comment": "Quick and kind"})).await;
        visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "resolved")
            .await;
        let number = ticket_number;
        let admin_view = admin_browser
            .get(&format!("/console/tickets/{number}"))
            .await
            .expect_status(200);
        assert!(
            admin_view.contains("When are you open?"),
            "the transcript is on the ticket"
        );
        assert!(admin_view.contains("Customer rated the help 5/5"));
        assert!(
            admin_view.contains("Status changed from open to resolved")
                || admin_view.contains("to resolved")
        );

        // Writing again reopens it, back to Alan.
        visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "v3", "body": "One more thing"})).await;
        visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "live")
            .await;
        agent.expect_message("One more thing").await;
        eprintln!("chat story passed on {db:?}");
    }
}

/// A visitor who has started a conversation and said `first`.
async fn started(app: &TestApp, site: &str, first: &str) -> (WsClient, String) {
    let mut visitor = app.visitor(site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "first", "body": first}))
        .await;
    let id = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (visitor, id)
}

#[tokio::test]
async fn the_bot_hands_off_after_misses_in_a_row() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.bot_miss_limit = 2).await;
    let site = app.allow_shop().await;
    let (mut visitor, id) = started(&app, &site, "zorbled my flux capacitor").await;
    let miss = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    assert!(
        miss["body"]
            .as_str()
            .unwrap()
            .contains("did not understand"),
        "{miss}"
    );
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "m2", "body": "quantum banana"})).await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let told = visitor
        .seen("message")
        .into_iter()
        .find(|f| f["sender"]["kind"] == "system")
        .cloned();
    let told = told.expect("the customer is told what happens next");
    assert!(
        told["body"]
            .as_str()
            .unwrap()
            .contains("No one from our team is online"),
        "{told}"
    );
}

#[tokio::test]
async fn asking_for_a_person_in_words_hands_off_at_once() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let (mut visitor, _id) = started(&app, &site, "I want to talk to a person").await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    assert!(waiting["ticket_number"].as_i64().is_some());
    assert!(
        visitor
            .seen("message")
            .iter()
            .all(|f| f["sender"]["kind"] != "bot"),
        "the bot stays quiet"
    );
}

struct FailingBot;

impl Bot for FailingBot {
    fn reply<'a>(&'a self, _turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async { Err(BotError::Unavailable("upstream returned 500".into())) })
    }
    fn name(&self) -> &'static str {
        "failing"
    }
}

struct SlowBot;

impl Bot for SlowBot {
    fn reply<'a>(&'a self, _turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(BotReply::Answer {
                text: "too late".into(),
                options: vec![],
            })
        })
    }
    fn name(&self) -> &'static str {
        "slow"
    }
}

/// A bot asking a question whose buttons carry markup.
struct ChoosingBot;

impl Bot for ChoosingBot {
    fn reply<'a>(&'a self, _turn: BotTurn<'a>) -> BoxFuture<'a, Result<BotReply, BotError>> {
        Box::pin(async {
            Ok(BotReply::Answer {
                text: "Which order?".into(),
                options: vec!["Latest order".into(), "<b>Another</b> order".into()],
            })
        })
    }
    fn name(&self) -> &'static str {
        "choosing"
    }
}

#[tokio::test]
async fn a_ticket_page_shows_what_the_bot_offered_as_text() {
    let adapters = Adapters {
        bot: Some(Arc::new(ChoosingBot)),
        ..Adapters::default()
    };
    let app = TestApp::spawn_full(Database::Sqlite, |_| {}, adapters).await;
    let site = app.allow_shop().await;
    let (mut visitor, id) = started(&app, &site, "where is my order").await;
    visitor.expect_message("Which order?").await;
    visitor
        .send(json!({"type": "handoff", "conversation_id": id}))
        .await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let number = waiting["ticket_number"].as_i64().unwrap();
    let mut admin = app.admin().await;
    let page = admin
        .get(&format!("/console/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(
        page.contains(
            r#"<p class="offered">Offered: Latest order · &lt;b&gt;Another&lt;/b&gt; order</p>"#
        ),
        "the options as escaped text under the question"
    );
    assert!(!page.contains("<b>Another</b>"));
    // The JSON API gives them as data (escaping is the client's business).
    let api = admin
        .get(&format!("/api/v1/tickets/{number}"))
        .await
        .expect_status(200)
        .json();
    let question = api["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"] == "Which order?")
        .unwrap_or_else(|| panic!("the bot's question in {api}"));
    assert_eq!(
        question["options"],
        json!(["Latest order", "<b>Another</b> order"])
    );
    let others = api["messages"].as_array().unwrap().iter();
    assert!(
        others
            .filter(|m| m["body"] != "Which order?")
            .all(|m| m.get("options").is_none()),
        "no options key on other messages: {api}"
    );
}

#[tokio::test]
async fn a_failing_or_slow_bot_hands_the_customer_to_a_person() {
    let bots: [(Arc<dyn Bot>, &str); 2] = [
        (Arc::new(FailingBot), "failing"),
        (Arc::new(SlowBot), "slow"),
    ];
    for (bot, name) in bots {
        let adapters = Adapters {
            bot: Some(bot),
            ..Adapters::default()
        };
        let app = TestApp::spawn_full(Database::Sqlite, |c| c.bot_timeout_ms = 300, adapters).await;
        let site = app.allow_shop().await;
        let (mut visitor, _id) = started(&app, &site, "where is my order").await;
        let waiting = visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
        assert!(
            waiting["ticket_number"].is_i64(),
            "{name} bot: a ticket was opened"
        );
        assert!(
            visitor
                .seen("message")
                .iter()
                .all(|f| f["body"] != "too late"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_online_agent_is_given_new_conversations_automatically() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut console = app.agent_socket(&alan).await;
    console.go_online().await;

    let (mut visitor, id) = started(&app, &site, "talk to a person please").await;
    let assigned = console
        .expect(|f| f["type"] == "conversation" && f["id"] == id.as_str() && f["status"] == "live")
        .await;
    assert_eq!(assigned["assignee"]["name"], "Alan");
    let told = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "system")
        .await;
    assert!(
        told["body"]
            .as_str()
            .unwrap()
            .contains("Connecting you with a person")
    );
    // The console follows the conversation without claiming it.
    visitor.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "q", "body": "hello Alan"})).await;
    console.expect_message("hello Alan").await;
}

/// Sets someone's chats at once through the people page's form (loaded).
async fn set_chats_at_once(admin: &mut Browser, email: &str, chats: &str) {
    admin
        .submit(
            "/admin/people/capacity",
            &[("capacity_email", email), ("capacity", chats)],
        )
        .await
        .expect_redirect("/admin/people?done=capacity");
}

/// Someone's "chats at once" as the people page shows it.
fn chats_at_once_shown(page: &str, email: &str) -> Option<String> {
    let row = page
        .split("<tr>")
        .find(|row| row.contains(&format!("<td>{email}</td>")))?;
    let cells: Vec<&str> = row
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().unwrap())
        .collect();
    cells.get(3).map(|c| c.to_string())
}

#[tokio::test]
async fn chats_at_once_set_by_an_admin_bound_routing_and_a_raise_takes_from_the_queue() {
    for db in backends("chats at once").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin = app.admin().await;
        let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
        let page = admin.get("/admin/people").await.expect_status(200);
        assert_eq!(
            chats_at_once_shown(&page.body, "alan@example.com").as_deref(),
            Some("5"),
            "the default"
        );
        assert!(page.contains(r#"name="capacity_email""#) && page.contains(r#"name="capacity""#));
        set_chats_at_once(&mut admin, "alan@example.com", "1").await;
        let page = admin
            .get("/admin/people?done=capacity")
            .await
            .expect_status(200);
        assert!(page.contains("Chats at once were saved."));
        assert_eq!(
            chats_at_once_shown(&page.body, "alan@example.com").as_deref(),
            Some("1")
        );

        let mut console = app.agent_socket(&alan).await;
        console.go_online().await;
        let (_first, one) = started(&app, &site, "talk to a person please").await;
        console
            .expect(|f| {
                f["type"] == "conversation" && f["id"] == one.as_str() && f["status"] == "live"
            })
            .await;
        // Full at one: the second chat waits in the queue.
        let (_second, two) = started(&app, &site, "talk to a person please").await;
        console
            .expect(|f| {
                f["type"] == "queue"
                    && f["waiting"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|w| w["conversation_id"] == two.as_str())
            })
            .await;

        // Raised to two while Alan is online: the waiting chat is his at once.
        admin.get("/admin/people").await;
        set_chats_at_once(&mut admin, "alan@example.com", "2").await;
        let taken = console
            .expect(|f| {
                f["type"] == "conversation" && f["id"] == two.as_str() && f["status"] == "live"
            })
            .await;
        assert_eq!(taken["assignee"]["name"], "Alan", "{db:?}");
    }
}

#[tokio::test]
async fn chats_at_once_refuses_bad_numbers_customers_strangers_and_anyone_but_an_admin() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    app.customer("Grace", "grace@example.com").await;
    let alans = async || -> i64 {
        let staff = app.store.staff_with_capacity().await.unwrap();
        staff
            .iter()
            .find(|(u, _)| u.email == "alan@example.com")
            .unwrap()
            .1
    };
    admin.get("/admin/people").await;
    for (email, chats, says) in [
        ("alan@example.com", "0", "from 1 to 50"),
        ("alan@example.com", "51", "from 1 to 50"),
        ("alan@example.com", "two", "from 1 to 50"),
        ("alan@example.com", "", "from 1 to 50"),
        ("alan@example.com", "2.5", "from 1 to 50"),
        (
            "grace@example.com",
            "3",
            "Only agents and admins take chats",
        ),
        (
            "ghost@example.com",
            "3",
            "Nobody has an account with this email.",
        ),
        ("not an address", "3", "Enter the person's email address."),
    ] {
        let page = admin
            .submit(
                "/admin/people/capacity",
                &[("capacity_email", email), ("capacity", chats)],
            )
            .await
            .expect_status(422);
        assert!(page.contains(says), "{email} {chats}: {}", page.body);
        // What was typed stays in the form.
        assert!(page.contains(&format!(r#"value="{}""#, chats)), "{chats}");
    }
    assert_eq!(alans().await, 5, "nothing changed");

    // An agent is not an admin: no such page for them, nothing changed.
    alan.get("/console").await.expect_status(200);
    alan.submit(
        "/admin/people/capacity",
        &[("capacity_email", "alan@example.com"), ("capacity", "50")],
    )
    .await
    .expect_status(404);
    // Without the page's token: refused.
    admin
        .post_raw(
            "/admin/people/capacity",
            &[("capacity_email", "alan@example.com"), ("capacity", "50")],
        )
        .await
        .expect_status(403);
    assert_eq!(alans().await, 5, "nothing changed");
}

#[tokio::test]
async fn a_burst_of_handoffs_fills_an_agent_only_up_to_capacity() {
    for db in backends("handoff burst").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin = app.admin().await;
        let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
        let mut console = app.agent_socket(&alan).await;
        console.go_online().await;

        // Eight customers ask for a person at the same moment; Alan's
        // capacity is the default 5.
        let mut visitors = Vec::new();
        for i in 0..8 {
            let mut visitor = app.visitor(&site).await;
            visitor
                .send(
                    json!({"type": "start", "body": format!("question {i}"), "client_msg_id": "s"}),
                )
                .await;
            let id = visitor.expect_type("conversation").await["id"]
                .as_str()
                .unwrap()
                .to_string();
            visitors.push((visitor, id));
        }
        let handoffs = visitors.iter_mut().map(|(visitor, id)| async move {
            visitor
                .send(json!({"type": "handoff", "conversation_id": id}))
                .await;
        });
        futures_util::future::join_all(handoffs).await;
        // Each handoff is answered once it has been routed: only then is
        // the final state there to count.
        for (visitor, id) in visitors.iter_mut() {
            let id = id.clone();
            visitor
                .expect(|f| {
                    f["type"] == "conversation"
                        && f["id"] == id.as_str()
                        && (f["status"] == "waiting" || f["status"] == "live")
                })
                .await;
        }
        let alan_id = app
            .store
            .user_with_hash(&careline::model::Email::parse("alan@example.com").unwrap())
            .await
            .unwrap()
            .unwrap()
            .0
            .id;
        // Routing follows each escalation closely: wait for the expected
        // split, then make sure it holds (an overfill would go past it).
        let count = || async {
            (
                app.store.agent_conversations(alan_id).await.unwrap().len(),
                app.store.queue().await.unwrap().len(),
            )
        };
        let mut settled = count().await;
        for _ in 0..100 {
            if settled == (5, 3) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            settled = count().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(count().await, settled, "{db:?}: assignments kept changing");
        assert_eq!(
            settled,
            (5, 3),
            "{db:?}: Alan holds 5, the rest wait in the queue"
        );
    }
}

#[tokio::test]
async fn with_nobody_online_the_reply_waits_and_goes_out_by_email() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let (mut visitor, id) = started(&app, &site, "talk to a person").await;
    visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "system")
        .await;
    visitor.leave_contact("Grace", "grace@example.com").await;
    visitor.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut console = app.agent_socket(&alan).await;
    console.claim(&id).await;
    console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "r1", "body": "Here is your answer"})).await;
    console.expect_type("ack").await;
    let outbox = reply_emails(&app).await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(outbox[0].to_email, "grace@example.com");
    assert_eq!(outbox[0].template, "agent_reply");
    assert!(outbox[0].payload.contains("Here is your answer"));
    // A burst of replies makes one email, not one per message.
    console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "r2", "body": "And one more thing"})).await;
    console
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "r2")
        .await;
    assert_eq!(reply_emails(&app).await.len(), 1);
}

/// A console that follows a conversation writes a reply without reading the
/// conversation first; the write itself checks what the read would have
/// decided: that the customer needs no email, and the first response.
#[tokio::test]
async fn a_customer_who_leaves_mid_chat_gets_the_next_reply_by_email() {
    for db in backends("reply email after leaving").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin = app.admin().await;
        let (mut visitor, id) = started(&app, &site, "talk to a person").await;
        let waiting = visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
        let number = careline::model::TicketNumber(waiting["ticket_number"].as_i64().unwrap());
        let welcome = visitor.leave_contact("Grace", "grace@example.com").await;
        let visitor_id: careline::model::VisitorId =
            welcome["user"]["id"].as_str().unwrap().parse().unwrap();
        let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
        let mut console = app.agent_socket(&alan).await;
        console.claim(&id).await;
        let first_response = || async {
            app.store
                .ticket_by_number(number)
                .await
                .unwrap()
                .unwrap()
                .first_response_at
        };

        // Here: replies go out live, nobody is emailed, and the first one
        // stamps the ticket's first response (once).
        for (n, body) in [(1, "First answer"), (2, "Second answer")] {
            let client_msg_id = format!("r{n}");
            console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": client_msg_id, "body": body})).await;
            console
                .expect(|f| f["type"] == "ack" && f["client_msg_id"] == client_msg_id.as_str())
                .await;
            visitor.expect_message(body).await;
        }
        assert!(
            reply_emails(&app).await.is_empty(),
            "{db:?}: {:?}",
            reply_emails(&app).await
        );
        let stamped = first_response().await;
        assert!(
            stamped.is_some(),
            "{db:?}: the first reply is the first response"
        );
        assert_eq!(
            agent_writes(&app).await,
            (2, 0),
            "{db:?}: (direct, read first)"
        );

        // Gone: the next reply is stored with an email.
        visitor.close().await;
        for _ in 0..100 {
            if app.store.visitor_last_seen(visitor_id).await.unwrap() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.store.visitor_last_seen(visitor_id).await.unwrap(),
            0,
            "{db:?}"
        );
        console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "r3", "body": "Third answer"})).await;
        let ack = console
            .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "r3")
            .await;
        let outbox = reply_emails(&app).await;
        assert_eq!(outbox.len(), 1, "{db:?}: {outbox:?}");
        assert_eq!(outbox[0].to_email, "grace@example.com");
        assert!(outbox[0].payload.contains("Third answer"), "{outbox:?}");
        let stored = app
            .store
            .messages_after(
                id.parse().unwrap(),
                ack["seq"].as_i64().unwrap() - 1,
                true,
                10,
            )
            .await
            .unwrap();
        assert_eq!(stored.len(), 1, "{db:?}: {stored:?}");
        assert_eq!(stored[0].body, "Third answer");
        assert_eq!(
            agent_writes(&app).await,
            (2, 1),
            "{db:?}: the write found the customer away and read first"
        );
        // Within the burst already emailed about, no email is due: the
        // next reply goes straight in again, and makes no second email.
        console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "r4", "body": "Fourth answer"})).await;
        console
            .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "r4")
            .await;
        assert_eq!(agent_writes(&app).await, (3, 1), "{db:?}");
        assert_eq!(reply_emails(&app).await.len(), 1, "{db:?}");
        assert_eq!(first_response().await, stamped, "{db:?}: stamped once");
    }
}

/// The "you have a reply" emails queued so far.
async fn reply_emails(app: &TestApp) -> Vec<careline::store::OutboxEmail> {
    let all = app.store.outbox(20).await.unwrap();
    all.into_iter()
        .filter(|e| e.template == "agent_reply")
        .collect()
}

/// This instance's agent messages so far: (written directly, read first).
async fn agent_writes(app: &TestApp) -> (u64, u64) {
    let page = app.browser().get("/metrics").await.expect_status(200);
    let value = |name: &str| -> u64 {
        page.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    (
        value("careline_agent_writes_direct_total"),
        value("careline_agent_writes_read_first_total"),
    )
}

#[tokio::test]
async fn an_agent_transfers_a_conversation_to_a_colleague() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let bea = app.agent(&mut admin, "Bea", "bea@example.com").await;
    let mut a = app.agent_socket(&alan).await;
    let mut b = app.agent_socket(&bea).await;
    let (mut visitor, id) = started(&app, &site, "talk to a person").await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    a.claim(&id).await;
    // Bea cannot write in Alan's conversation…
    b.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "b0", "body": "hi", "ref": "early"})).await;
    assert_eq!(b.expect(|f| f["ref"] == "early").await["code"], "conflict");
    // …until Alan hands it over.
    let bea_id = app
        .store
        .staff()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.name == "Bea")
        .unwrap()
        .id
        .0;
    a.send(json!({"type": "transfer", "conversation_id": id, "agent_id": bea_id}))
        .await;
    a.expect(|f| f["type"] == "conversation" && f["assignee"]["name"] == "Bea")
        .await;
    b.expect(|f| {
        f["type"] == "conversation" && f["id"] == id.as_str() && f["assignee"]["name"] == "Bea"
    })
    .await;
    // Alan's console still follows it, but his replies no longer land.
    a.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "a1", "body": "still me", "ref": "late"})).await;
    let refused = a.expect(|f| f["ref"] == "late").await;
    assert_eq!(refused["code"], "conflict", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("Bea owns"),
        "{refused}"
    );
    visitor
        .expect(|f| f["type"] == "message" && f["body"] == "Bea will take it from here.")
        .await;
    b.send(
        json!({"type": "send", "conversation_id": id, "client_msg_id": "b1", "body": "Bea here"}),
    )
    .await;
    b.expect(|f| f["type"] == "ack" && f["client_msg_id"] == "b1")
        .await;
    visitor.expect_message("Bea here").await;
}
