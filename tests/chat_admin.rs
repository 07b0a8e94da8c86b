//! What admins set up for chat (sites, the FAQ bot, canned replies) and how
//! the ticket pages and the live chat stay in step.

mod support;

use serde_json::json;
use support::ws::SHOP_ORIGIN;
use support::{Database, TestApp, ticket_number};

#[tokio::test]
async fn admin_sets_allowed_origins_and_gets_the_snippet() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let site = app.store.default_site().await.unwrap();
    let page = admin.get("/admin/sites").await.expect_status(200);
    let snippet = format!(
        "&lt;script src=&quot;{}/widget.js&quot; data-site=&quot;{}&quot; async&gt;&lt;/script&gt;",
        app.base, site.key
    );
    assert!(page.contains(&snippet), "the snippet to copy is shown");

    // Not allowed yet.
    assert_eq!(
        app.widget_session(SHOP_ORIGIN, json!({"site_key": site.key}))
            .await
            .status(),
        403
    );
    let bad = admin
        .submit(
            &format!("/admin/sites/{}", site.id),
            &[
                ("site_name", "Shop"),
                ("allowed_origins", "shop.example/path"),
                ("greeting", "Hi"),
                ("color", "#123456"),
            ],
        )
        .await
        .expect_status(422);
    assert!(bad.contains("is not an origin like https://shop.example.com"));
    admin
        .submit(
            &format!("/admin/sites/{}", site.id),
            &[
                ("site_name", "Shop"),
                (
                    "allowed_origins",
                    &format!("{SHOP_ORIGIN}\nhttps://www.shop.example"),
                ),
                ("greeting", "Welcome to the shop!"),
                ("color", "#AA3300"),
                ("require_email", "on"),
            ],
        )
        .await
        .expect_redirect("/admin/sites?done=saved");
    let response = app
        .widget_session(SHOP_ORIGIN, json!({"site_key": site.key}))
        .await;
    assert_eq!(response.status(), 200);
    let session: serde_json::Value = response.json().await.unwrap();
    assert_eq!(session["site"]["greeting"], "Welcome to the shop!");
    assert_eq!(session["site"]["color"], "#aa3300");
    assert_eq!(session["site"]["require_email"], true);
    assert_eq!(session["site"]["name"], "Shop");
}

#[tokio::test]
async fn an_faq_entry_added_by_an_admin_is_answered_by_the_bot() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    admin.get("/admin/faq").await.expect_status(200);
    admin
        .submit(
            "/admin/faq",
            &[
                ("questions", "Do you ship to Iceland?\nshipping to Iceland"),
                ("answer", "Yes, we ship to Iceland in 5 days."),
            ],
        )
        .await
        .expect_redirect("/admin/faq?done=added");
    let empty = admin
        .submit("/admin/faq", &[("questions", " "), ("answer", "x")])
        .await
        .expect_status(422);
    assert!(empty.contains("Write at least one question."));

    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "q1", "body": "do you ship to iceland"}))
        .await;
    let answer = visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    assert_eq!(answer["body"], "Yes, we ship to Iceland in 5 days.");
}

#[tokio::test]
async fn canned_replies_appear_in_the_console() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    admin.get("/admin/canned").await.expect_status(200);
    admin
        .submit(
            "/admin/canned",
            &[
                ("title", "Refund policy"),
                ("body", "Refunds take 5 <working> days."),
            ],
        )
        .await
        .expect_redirect("/admin/canned?done=added");
    let console = admin.get("/console/chat").await.expect_status(200);
    assert!(console.contains("Refund policy"));
    assert!(
        console.contains("Refunds take 5 &lt;working&gt; days."),
        "escaped"
    );
    assert!(console.contains(r#"<script src="/assets/console.js" defer>"#));
    // Agents see the console but not the admin pages.
    let mut agent = app.agent(&mut admin, "Alan", "alan@example.com").await;
    agent.get("/console/chat").await.expect_status(200);
    for path in [
        "/admin/canned",
        "/admin/faq",
        "/admin/sites",
        "/admin/outbox",
    ] {
        agent.get(path).await.expect_status(404);
    }
}

#[tokio::test]
async fn a_reply_from_the_ticket_page_reaches_the_widget_live() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "s", "body": "talk to a person"}))
        .await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let number = waiting["ticket_number"].as_i64().unwrap();
    admin
        .get(&format!("/console/tickets/{number}"))
        .await
        .expect_status(200);
    admin
        .submit(
            &format!("/console/tickets/{number}/reply"),
            &[("body", "Answered from the ticket page")],
        )
        .await
        .expect_redirect(&format!("/console/tickets/{number}"));
    let reply = visitor
        .expect_message("Answered from the ticket page")
        .await;
    assert_eq!(reply["sender"]["kind"], "agent");
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/note"),
            &[("note", "secret note")],
        )
        .await;
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/update"),
            &[("status", "resolved")],
        )
        .await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "resolved")
        .await;
    assert!(
        visitor.log.iter().all(|f| f["body"] != "secret note"),
        "notes stay private on every path"
    );
}

#[tokio::test]
async fn a_ticket_raised_in_the_portal_joins_the_live_queue() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut console = app.agent_socket(&admin).await;
    console.send(json!({"type": "watch_queue"})).await;
    console.expect_type("queue").await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer"),
                ("description", "It jams"),
                ("priority", "high"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    let queue = console
        .expect(|f| f["type"] == "queue" && !f["waiting"].as_array().unwrap().is_empty())
        .await;
    assert_eq!(queue["waiting"][0]["ticket_number"], number);
    assert_eq!(queue["waiting"][0]["preview"], "It jams");
    // The agent answers from the console; the customer reads it in the portal.
    let id = queue["waiting"][0]["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    console.send(json!({"type": "send", "conversation_id": id, "client_msg_id": "c1", "body": "Which model?"})).await;
    console.expect(|f| f["type"] == "ack").await;
    let page = grace
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(page.contains("Which model?"));
    assert!(page.contains("Assigned to Ada Admin"), "writing claimed it");
    let _ = &mut admin;
}

#[tokio::test]
async fn a_verified_email_brings_earlier_chats_into_the_portal() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    visitor.leave_contact("Grace", "Grace@Example.com").await;
    visitor.send(json!({"type": "start", "client_msg_id": "s", "body": "My parcel never came, talk to a person"})).await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let number = waiting["ticket_number"].as_i64().unwrap();

    // Registering with the same address is not enough: it must be verified.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    assert!(
        grace
            .get("/dashboard")
            .await
            .contains("You have no tickets yet")
    );
    grace
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(404);

    let email = app
        .store
        .outbox(10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.template == "verify_email" && e.to_email == "grace@example.com")
        .expect("a verification email was queued");
    let payload: serde_json::Value = serde_json::from_str(&email.payload).unwrap();
    let link = payload["link"].as_str().unwrap();
    let path = link
        .strip_prefix(&app.base)
        .expect("the link points at Careline");
    grace.get(path).await.expect_status(200);
    assert_eq!(
        grace.get(path).await.status,
        400,
        "a verification link works once"
    );
    assert_eq!(grace.get("/verify?token=forged").await.status, 400);

    let dashboard = grace.get("/dashboard").await;
    assert!(
        dashboard.contains("My parcel never came"),
        "the chat's ticket is hers now"
    );
    let ticket = grace
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(ticket.contains("My parcel never came, talk to a person"));
}
