//! Agents are told by email about their own work, over real HTTP and
//! sockets: a conversation or ticket someone else (or routing) gives them,
//! and a customer writing while they are away, at most once per
//! conversation in ten minutes; never about their own action; and not at all
//! for the kinds they turned off on their account page.

mod support;

use std::time::Duration;

use careline::store::OutboxEmail;
use serde_json::{Value, json};
use support::browser::Browser;
use support::databases::backends;
use support::ws::WsClient;
use support::{Database, TestApp};

/// The emails of `template` queued for `to`, oldest first.
async fn emails(app: &TestApp, template: &str, to: &str) -> Vec<OutboxEmail> {
    let mut found: Vec<OutboxEmail> = app
        .store
        .outbox(200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.template == template && e.to_email == to)
        .collect();
    found.reverse();
    found
}

/// The emails of `template` for `to` once there are `n` of them (an
/// assignment's email is queued just after the change is published).
async fn emailed(app: &TestApp, template: &str, to: &str, n: usize) -> Vec<OutboxEmail> {
    for _ in 0..250 {
        let found = emails(app, template, to).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "fewer than {n} {template} emails to {to}: {:?}",
        emails(app, template, to).await
    );
}

/// Every agent notification queued so far, as (template, to).
async fn notifications(app: &TestApp) -> Vec<(String, String)> {
    app.store
        .outbox(200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            ["conversation_assigned", "ticket_assigned", "customer_wrote"]
                .contains(&e.template.as_str())
        })
        .map(|e| (e.template, e.to_email))
        .collect()
}

fn payload(email: &OutboxEmail) -> Value {
    serde_json::from_str(&email.payload).unwrap()
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.store
        .staff()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == email)
        .unwrap_or_else(|| panic!("no staff member {email}"))
        .id
        .0
}

/// A visitor whose conversation waits for a person; returns its id.
async fn waiting(app: &TestApp, site: &str, first: &str) -> (WsClient, String) {
    let mut visitor = app.visitor(site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "v0", "body": first}))
        .await;
    let id = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    visitor
        .send(json!({"type": "handoff", "conversation_id": id}))
        .await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] != "bot")
        .await;
    (visitor, id)
}

/// The visitor writes `body` and sees it stored.
async fn customer_writes(visitor: &mut WsClient, id: &str, n: usize, body: &str) {
    let client_msg_id = format!("w{n}");
    visitor
        .send(json!({"type": "send", "conversation_id": id, "client_msg_id": client_msg_id, "body": body}))
        .await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == client_msg_id.as_str())
        .await;
}

/// The console says `status` (online or away), written before the next
/// frame is handled.
async fn presence(console: &mut WsClient, status: &str) {
    console
        .send(json!({"type": "presence", "status": status}))
        .await;
    console.send(json!({"type": "watch_queue"})).await;
    console.expect_type("queue").await;
}

#[tokio::test]
async fn assignment_by_someone_else_or_routing_emails_the_assignee_and_self_claim_nobody() {
    for db in backends("assignment emails").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut admin = app.admin().await;
        let alan_b = app.agent(&mut admin, "Alan", "alan@example.com").await;
        let bea_b = app.agent(&mut admin, "Bea", "bea@example.com").await;
        let mut alan = app.agent_socket(&alan_b).await;
        let _bea = app.agent_socket(&bea_b).await;

        // Alan claims a waiting conversation himself: nobody is emailed.
        let (_visitor, id) = waiting(&app, &site, "my parcel is lost").await;
        alan.claim(&id).await;
        assert_eq!(notifications(&app).await, vec![], "{db:?}: a self-claim");

        // Alan hands it to Bea: Bea is told, by whom, with a link.
        let bea_id = user_id(&app, "bea@example.com").await;
        alan.send(json!({"type": "transfer", "conversation_id": id, "agent_id": bea_id}))
            .await;
        alan.expect(|f| f["type"] == "conversation" && f["assignee"]["name"] == "Bea")
            .await;
        let to_bea = emailed(&app, "conversation_assigned", "bea@example.com", 1).await;
        assert_eq!(to_bea.len(), 1, "{db:?}: {to_bea:?}");
        let sent = payload(&to_bea[0]);
        assert_eq!(sent["conversation_id"].to_string(), id, "{db:?}: {sent}");
        assert_eq!(sent["by"], "Alan", "{db:?}");
        assert!(sent["ticket_number"].as_i64().is_some(), "{db:?}: {sent}");
        assert_eq!(notifications(&app).await.len(), 1, "{db:?}: Alan got none");

        // Routing gives Alan (online, free) the next one: he is told, by nobody.
        presence(&mut alan, "online").await;
        let (_other, routed) = waiting(&app, &site, "the app crashes").await;
        let to_alan = emailed(&app, "conversation_assigned", "alan@example.com", 1).await;
        assert_eq!(to_alan.len(), 1, "{db:?}: {to_alan:?}");
        let sent = payload(&to_alan[0]);
        assert_eq!(sent["conversation_id"].to_string(), routed, "{db:?}");
        assert_eq!(sent["by"], "", "{db:?}: routing has no actor");

        // The ticket page: the admin gives Bea's ticket to Alan (Alan is
        // told), then takes it himself (nobody is told).
        let number = sent["ticket_number"].as_i64().unwrap();
        let first_number = payload(&to_bea[0])["ticket_number"].as_i64().unwrap();
        let alan_id = user_id(&app, "alan@example.com").await.to_string();
        let page = format!("/console/tickets/{first_number}");
        admin.get(&page).await.expect_status(200);
        admin
            .submit(&format!("{page}/update"), &[("assignee", &alan_id)])
            .await
            .expect_status(303);
        let ticket = emails(&app, "ticket_assigned", "alan@example.com").await;
        assert_eq!(ticket.len(), 1, "{db:?}: {ticket:?}");
        let sent = payload(&ticket[0]);
        assert_eq!(sent["ticket_number"], first_number, "{db:?}");
        assert_eq!(sent["by"], "Ada Admin", "{db:?}");
        assert_eq!(sent["conversation_id"].to_string(), id, "{db:?}");
        let admin_id = user_id(&app, "admin@example.com").await.to_string();
        admin.get(&page).await.expect_status(200);
        admin
            .submit(&format!("{page}/update"), &[("assignee", &admin_id)])
            .await
            .expect_status(303);
        assert!(
            emails(&app, "ticket_assigned", "admin@example.com")
                .await
                .is_empty(),
            "{db:?}: assigning oneself"
        );
        assert_ne!(number, first_number);
        assert_eq!(notifications(&app).await.len(), 3, "{db:?}");
        eprintln!("assignment emails passed on {db:?}");
    }
}

#[tokio::test]
async fn a_customer_writing_to_an_away_agent_emails_them_once_in_the_window() {
    for db in backends("away emails").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let mut chat = app.live_chat(&site).await;
        let (visitor, id) = (&mut chat.visitor, chat.id.clone());
        let wrote = async || emails(&app, "customer_wrote", "alan@example.com").await;

        // Online: his console shows it, no email.
        presence(&mut chat.agent, "online").await;
        customer_writes(visitor, &id, 1, "are you there?").await;
        chat.agent.expect_message("are you there?").await;
        assert!(wrote().await.is_empty(), "{db:?}: he is online");

        // He closes his console: the next message emails him, the ones
        // after it within ten minutes do not.
        chat.agent.close().await;
        for _ in 0..100 {
            let online = app.store.available_agents(90_000).await.unwrap();
            if online.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        customer_writes(visitor, &id, 2, "hello <b>again</b>").await;
        customer_writes(visitor, &id, 3, "anyone?").await;
        let sent = wrote().await;
        assert_eq!(sent.len(), 1, "{db:?}: {sent:?}");
        let sent = payload(&sent[0]);
        assert_eq!(sent["conversation_id"].to_string(), id, "{db:?}");
        assert_eq!(sent["body"], "hello <b>again</b>", "{db:?}");
        assert!(sent["customer"].as_str().unwrap().starts_with("Visitor"));

        // Back, then "away" on an open console: still within the window.
        let mut console = app.agent_socket(&chat.agent_browser).await;
        presence(&mut console, "away").await;
        customer_writes(visitor, &id, 4, "still here").await;
        assert_eq!(wrote().await.len(), 1, "{db:?}: coalesced");
        eprintln!("away emails passed on {db:?}");
    }
}

/// Turns `alan`'s two checkboxes to `assigned` and `customer_wrote` on the
/// account page, as a browser sends the form (an unticked box is not sent).
async fn choose(alan: &mut Browser, assigned: bool, customer_wrote: bool) -> String {
    alan.get("/account").await.expect_status(200);
    let mut fields = Vec::new();
    if assigned {
        fields.push(("assigned", "on"));
    }
    if customer_wrote {
        fields.push(("customer_wrote", "on"));
    }
    alan.submit("/account/notifications", &fields)
        .await
        .expect_redirect("/account?saved=notifications");
    let page = alan.get("/account?saved=notifications").await;
    assert!(page.contains("Your email notifications are saved."));
    page.body
}

fn ticked(page: &str, name: &str) -> bool {
    let at = page
        .find(&format!(r#"name="{name}""#))
        .unwrap_or_else(|| panic!("no {name} checkbox on the page"));
    let tag = &page[page[..at].rfind('<').unwrap()..];
    tag[..tag.find('>').unwrap()].contains("checked")
}

#[tokio::test]
async fn the_account_page_shows_and_saves_the_toggles_and_off_means_nothing() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let bea_b = app.agent(&mut admin, "Bea", "bea@example.com").await;

    // On by default.
    let page = alan.get("/account").await.expect_status(200);
    assert!(page.contains("Email notifications"));
    assert!(ticked(&page.body, "assigned") && ticked(&page.body, "customer_wrote"));

    // Without the form's token nothing changes.
    alan.post_raw("/account/notifications", &[])
        .await
        .expect_status(403);
    let page = alan.get("/account").await;
    assert!(ticked(&page.body, "assigned") && ticked(&page.body, "customer_wrote"));

    // Each saves on its own.
    let page = choose(&mut alan, true, false).await;
    assert!(ticked(&page, "assigned") && !ticked(&page, "customer_wrote"));
    let page = choose(&mut alan, false, false).await;
    assert!(!ticked(&page, "assigned") && !ticked(&page, "customer_wrote"));

    // Both off: a transfer to him and a customer writing while he is away
    // email him nothing.
    let mut bea = app.agent_socket(&bea_b).await;
    let (mut visitor, id) = waiting(&app, &site, "help").await;
    bea.claim(&id).await;
    let alan_id = user_id(&app, "alan@example.com").await;
    bea.send(json!({"type": "transfer", "conversation_id": id, "agent_id": alan_id}))
        .await;
    // Her socket answers frames in order: once the queue comes, the
    // transfer (and whatever email it made) is done.
    bea.send(json!({"type": "watch_queue"})).await;
    bea.expect_type("queue").await;
    customer_writes(&mut visitor, &id, 1, "hello?").await;
    assert_eq!(notifications(&app).await, vec![]);

    // Turned on again: the next message tells him.
    choose(&mut alan, true, true).await;
    customer_writes(&mut visitor, &id, 2, "hello??").await;
    assert_eq!(
        notifications(&app).await,
        vec![("customer_wrote".to_string(), "alan@example.com".to_string())]
    );

    // A customer has no such choices: not shown, and not saved.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let page = grace.get("/account").await.expect_status(200);
    assert!(!page.contains("Email notifications"));
    grace
        .submit("/account/notifications", &[("assigned", "on")])
        .await
        .expect_status(404);
}
