//! Email both ways over real HTTP: an agent's reply goes out (through the
//! SendGrid client, to a fake SendGrid) with a signed reply address and
//! threading headers; the customer's answer comes back through the
//! SendGrid Inbound Parse hook, in raw MIME or parsed fields, and reaches
//! the agent's console live with the next `seq`. And every refusal: a
//! forged tag, someone else's address, machine mail, the same email twice,
//! mail that cannot be read, the wrong secret, too large a post.

mod support;

use serde_json::{Value, json};
use support::fakes::{FakeSendGrid, SENDGRID_KEY};
use support::ws::WsClient;
use support::{Browser, Database, TestApp, ticket_number};

const SECRET: &str = "inbound-secret-0123456789abcdef";

async fn app(sendgrid: &FakeSendGrid) -> TestApp {
    let url = sendgrid.base.clone();
    TestApp::spawn_with(Database::Sqlite, move |c| {
        c.sendgrid_url = url;
        c.sendgrid_api_key = SENDGRID_KEY.into();
        c.mail_from = "support@shop.example".into();
        c.mail_reply_address = "help@shop.example".into();
        c.mail_inbound_secret = SECRET.into();
        c.mail_poll_ms = 50;
    })
    .await
}

/// A form as SendGrid Inbound Parse posts it.
fn form(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "xYzZY-careline-test";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

async fn post_hook(app: &TestApp, secret: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let (content_type, body) = form(fields);
    let response = careline::http_client(std::time::Duration::from_secs(30))
        .post(format!("{}/hooks/email/sendgrid/{secret}", app.base))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A raw reply from Grace's mail app.
fn raw_reply(to: &str, message_id: &str, in_reply_to: &str, text: &str) -> String {
    format!(
        "From: Grace Hopper <grace@example.com>\r\n\
         To: {to}\r\n\
         Subject: Re: New reply on your request\r\n\
         Message-ID: {message_id}\r\n\
         In-Reply-To: {in_reply_to}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {text}\r\n\
         \r\n\
         On Mon, 7 Dec 2026 at 10:00, Support <help@shop.example> wrote:\r\n\
         > Try the rear tray\r\n"
    )
}

struct Scene {
    app: TestApp,
    sendgrid: FakeSendGrid,
    grace: Browser,
    console: WsClient,
    number: i64,
    conversation: String,
    /// The agent's reply email as SendGrid got it.
    emailed: Value,
}

/// Grace raises a ticket; Alan claims it and replies while she is away;
/// the reply is emailed to her.
async fn scene() -> Scene {
    let sendgrid = FakeSendGrid::start().await;
    let app = app(&sendgrid).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer jams"),
                ("description", "Every page"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    let ticket = app
        .store
        .ticket_by_number(careline::model::TicketNumber(number))
        .await
        .unwrap()
        .unwrap();
    let conversation = ticket.conversation_id.to_string();
    let alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut console = app.agent_socket(&alan).await;
    console.claim(&conversation).await;
    console
        .send(json!({"type": "send", "conversation_id": conversation, "client_msg_id": "r1", "body": "Try the rear tray"}))
        .await;
    console
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "r1")
        .await;
    let emailed = loop {
        let found = sendgrid.accepted().into_iter().find(|e| {
            e["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("New reply"))
        });
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    Scene {
        app,
        sendgrid,
        grace,
        console,
        number,
        conversation,
        emailed,
    }
}

#[tokio::test]
async fn a_reply_by_email_reaches_the_console_live_with_the_next_seq_once() {
    let mut s = scene().await;
    let reply_to = s.emailed["reply_to"]["email"].as_str().unwrap().to_string();
    let prefix = format!("help+c{}-", s.conversation);
    assert!(reply_to.starts_with(&prefix), "{reply_to}");
    assert!(reply_to.ends_with("@shop.example"), "{reply_to}");
    let message_id = s.emailed["headers"]["Message-ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message_id.contains(&format!(".c{}-", s.conversation)),
        "{message_id}"
    );
    assert!(message_id.ends_with("@shop.example>"), "{message_id}");

    let raw = raw_reply(
        &reply_to,
        "<grace-1@mail.example>",
        &message_id,
        "That worked, thanks! ✅",
    );
    let envelope = json!({"to": [reply_to], "from": "grace@example.com"}).to_string();
    let (status, body) =
        post_hook(&s.app, SECRET, &[("email", &raw), ("envelope", &envelope)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("appended")),
        "{body}"
    );

    // Live in the console, after the description (1) and the reply (2),
    // without the quoted history.
    let live = s.console.expect_message("That worked, thanks! ✅").await;
    assert_eq!(live["seq"], 3, "{live}");
    let page = s.grace.get(&format!("/tickets/{}", s.number)).await;
    assert!(page.contains("That worked, thanks!"));
    let stored = s
        .app
        .store
        .messages(s.conversation.parse().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(!stored[2].body.contains("rear tray"), "{}", stored[2].body);

    // SendGrid posts it again (a retry): taken once.
    let (status, body) =
        post_hook(&s.app, SECRET, &[("email", &raw), ("envelope", &envelope)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("already taken"))
    );
    let again = s
        .app
        .store
        .messages(s.conversation.parse().unwrap(), true)
        .await
        .unwrap();
    assert_eq!(again.len(), 3, "stored once");
    assert!(s.sendgrid.accepted().len() >= 2);
}

#[tokio::test]
async fn parsed_fields_with_only_the_threading_header_find_the_conversation() {
    let mut s = scene().await;
    let message_id = s.emailed["headers"]["Message-ID"].as_str().unwrap();
    // A client that answered the sender's address, not Reply-To: only
    // In-Reply-To names the conversation.
    let headers = format!(
        "From: grace@example.com\r\nTo: support@shop.example\r\nSubject: Re: hi\r\nMessage-ID: <grace-2@mail.example>\r\nIn-Reply-To: {message_id}"
    );
    let (status, body) = post_hook(
        &s.app,
        SECRET,
        &[
            ("headers", &headers),
            ("text", "Parsed and threaded"),
            ("from", "grace@example.com"),
            ("to", "support@shop.example"),
            ("subject", "Re: hi"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("appended")),
        "{body}"
    );
    let live = s.console.expect_message("Parsed and threaded").await;
    assert_eq!(live["seq"], 3);
}

#[tokio::test]
async fn a_forged_tag_or_another_sender_opens_their_own_ticket_never_this_one() {
    let s = scene().await;
    let conversation: careline::model::ConversationId = s.conversation.parse().unwrap();
    let count = || async {
        s.app
            .store
            .messages(conversation, true)
            .await
            .unwrap()
            .len()
    };
    // A tag for this conversation with a made-up signature.
    let forged = format!("help+c{}-0123456789abcdef0123@shop.example", s.conversation);
    let raw = raw_reply(&forged, "<forged@mail.example>", "<nothing@x>", "Forged");
    let (status, body) = post_hook(&s.app, SECRET, &[("email", &raw)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("opened")),
        "{body}"
    );
    assert_eq!(count().await, 2, "nothing appended to Grace's conversation");

    // The real reply address, from someone else.
    let reply_to = s.emailed["reply_to"]["email"].as_str().unwrap();
    let raw = raw_reply(
        reply_to,
        "<mallory@mail.example>",
        "<nothing@x>",
        "I am not Grace",
    )
    .replace(
        "Grace Hopper <grace@example.com>",
        "Mallory <mallory@example.com>",
    );
    let (status, body) = post_hook(&s.app, SECRET, &[("email", &raw)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("opened")),
        "{body}"
    );
    assert_eq!(count().await, 2);
    let tickets = s
        .app
        .store
        .list_tickets(&careline::store::TicketFilter::default())
        .await
        .unwrap();
    let mallorys = tickets
        .iter()
        .find(|t| t.customer.email == "mallory@example.com")
        .expect("Mallory's own ticket");
    assert_eq!(mallorys.subject, "Re: New reply on your request");
}

#[tokio::test]
async fn machine_mail_makes_no_message_and_no_answer() {
    let s = scene().await;
    let reply_to = s.emailed["reply_to"]["email"].as_str().unwrap();
    let sent_before = s.sendgrid.accepted().len();
    for (n, header) in [
        "Auto-Submitted: auto-replied",
        "Precedence: bulk",
        "List-Id: <customers.lists.example.com>",
        "Return-Path: <>",
    ]
    .iter()
    .enumerate()
    {
        let raw = raw_reply(
            reply_to,
            &format!("<auto-{n}@mail.example>"),
            "<x@y>",
            "I am out of office",
        )
        .replacen("Subject:", &format!("{header}\r\nSubject:"), 1);
        let (status, body) = post_hook(&s.app, SECRET, &[("email", &raw)]).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("ignored")),
            "{header}: {body}"
        );
    }
    let conversation: careline::model::ConversationId = s.conversation.parse().unwrap();
    assert_eq!(
        s.app
            .store
            .messages(conversation, true)
            .await
            .unwrap()
            .len(),
        2
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        s.sendgrid.accepted().len(),
        sent_before,
        "no email answers machine mail"
    );
}

#[tokio::test]
async fn an_email_from_a_stranger_opens_a_ticket_for_a_new_unverified_customer() {
    let sendgrid = FakeSendGrid::start().await;
    let app = app(&sendgrid).await;
    let raw = "From: Ada <ada@example.org>\r\nTo: help@shop.example\r\nSubject: Where is my order?\r\nMessage-ID: <ada-1@example.org>\r\n\r\nOrder 42 has not arrived.\r\n";
    let (status, body) = post_hook(&app, SECRET, &[("email", raw)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("opened")),
        "{body}"
    );
    let tickets = app
        .store
        .list_tickets(&careline::store::TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].subject, "Where is my order?");
    assert_eq!(tickets[0].customer.email, "ada@example.org");
    let (user, hash) = app
        .store
        .user_with_hash(&careline::model::Email::parse("ada@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!user.verified, "an address that only wrote is not verified");
    assert!(!hash.starts_with("$argon2"), "no password was set");

    // "We received your request" answers her email: threaded under it, and
    // marked automatic so that her auto-responder does not answer it.
    let acknowledged = sendgrid.wait_accepted(1).await;
    let sent = &acknowledged[0];
    assert_eq!(
        sent["personalizations"][0]["to"][0]["email"],
        "ada@example.org"
    );
    assert_eq!(sent["headers"]["In-Reply-To"], "<ada-1@example.org>");
    assert_eq!(sent["headers"]["References"], "<ada-1@example.org>");
    assert_eq!(sent["headers"]["Auto-Submitted"], "auto-replied");
    assert!(
        sent["reply_to"]["email"]
            .as_str()
            .is_some_and(|r| r.starts_with("help+c")),
        "{sent}"
    );
}

#[tokio::test]
async fn unreadable_mail_is_kept_for_an_admin_and_bad_posts_are_refused() {
    let sendgrid = FakeSendGrid::start().await;
    let app = app(&sendgrid).await;
    // Not MIME at all: kept, answered 200 so SendGrid does not retry.
    let (status, body) =
        post_hook(&app, SECRET, &[("email", "\u{1}\u{2}<script>x</script>")]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("failed")),
        "{body}"
    );
    // An admin reads it, as text.
    let mut admin = app.admin().await;
    let page = admin.get("/admin/inbound").await.expect_status(200);
    assert!(page.contains("The mail as it came"), "{}", page.body);
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
    assert!(!page.contains("<script>x</script>"));
    // The wrong secret, and a post that is not a form: nothing is there.
    let (status, _) = post_hook(&app, "wrong-secret-0123456789abcdef", &[("email", "x")]).await;
    assert_eq!(status, 404);
    let refused = careline::http_client(std::time::Duration::from_secs(30))
        .post(format!("{}/hooks/email/sendgrid/{SECRET}", app.base))
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    // Larger than SendGrid ever posts.
    let huge = "x".repeat(31 * 1024 * 1024);
    let (status, _) = post_hook(&app, SECRET, &[("email", &huge)]).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn without_a_secret_the_hook_is_not_there() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let (status, _) = post_hook(&app, SECRET, &[("email", "x")]).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_reply_by_email_to_a_resolved_conversation_reopens_it() {
    let mut s = scene().await;
    s.console
        .send(json!({"type": "resolve", "conversation_id": s.conversation}))
        .await;
    s.console
        .expect(|f| f["type"] == "conversation" && f["status"] == "resolved")
        .await;
    let reply_to = s.emailed["reply_to"]["email"].as_str().unwrap().to_string();
    let raw = raw_reply(
        &reply_to,
        "<grace-3@mail.example>",
        "<x@y>",
        "It jammed again",
    );
    let (status, body) = post_hook(&s.app, SECRET, &[("email", &raw)]).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("appended")),
        "{body}"
    );
    s.console.expect_message("It jammed again").await;
    let conversation = s
        .app
        .store
        .conversation(s.conversation.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        conversation.status,
        careline::model::ConversationStatus::Live,
        "back to the agent who had it"
    );
}
