//! Personal API tokens over real HTTP: made on the account page (shown
//! once, stored hashed), used as `Authorization: Bearer`, refused at once
//! when revoked, expired, unknown or its owner demoted; scoped (an agent
//! cannot make an admin token; a read token cannot change anything);
//! rate limited per token; the browser's cookie still works. And the API
//! they call: ticket writes with idempotency keys, live conversations,
//! the agents and sites directory.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores a new binary costs more than a long file); each case reads alone.

mod support;

use careline::model::Role;
use serde_json::Value;
use support::{Database, TestApp, make_token};

async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = careline::http_client(std::time::Duration::from_secs(10))
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_token_reads_as_its_owner_until_it_is_revoked() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer jams"),
                ("description", "Every page"),
                ("priority", "normal"),
            ],
        )
        .await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "CRM sync", "read").await;
    assert!(token.starts_with("clt_") && token.len() > 40, "{token}");

    let (status, body) = call(&app, &token, reqwest::Method::GET, "/api/v1/tickets").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["subject"], "Printer jams", "{body}");
    // Shown once: the list names it, never shows it again.
    let listed = alan.get("/account/tokens").await;
    assert!(listed.contains("CRM sync") && !listed.contains(&token));
    let used = alan.get("/account/tokens").await;
    assert!(!used.body.contains("never"), "last used is recorded");

    // Revoked: 401 on the very next request.
    let id = app.store.api_tokens_of(alan_id(&app).await).await.unwrap()[0].id;
    alan.get("/account/tokens").await;
    let revoked = alan
        .submit(&format!("/account/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303);
    let (status, body) = call(&app, &token, reqwest::Method::GET, "/api/v1/tickets").await;
    assert_eq!(status, 401, "{body}");
    // Nobody else revokes it (another user's id is "not found").
    let other = make_token(&mut alan, "second", "read").await;
    let other_id = app.store.api_tokens_of(alan_id(&app).await).await.unwrap()[0].id;
    admin.get("/account/tokens").await;
    let refused = admin
        .submit(&format!("/account/tokens/{other_id}/revoke"), &[])
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(
        call(&app, &other, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        200
    );
    // The browser's cookie still works.
    assert_eq!(alan.get("/api/v1/tickets").await.status, 200);
}

async fn alan_id(app: &TestApp) -> careline::model::UserId {
    app.store
        .user_with_hash(&careline::model::Email::parse("alan@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .0
        .id
}

#[tokio::test]
async fn expired_unknown_and_demoted_tokens_are_refused() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "ops", "write").await;
    assert_eq!(
        call(&app, &token, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        200
    );
    for bad in [
        "clt_not-a-token",
        "",
        "session-cookie-value",
        &format!("{token}x"),
    ] {
        let (status, body) = call(&app, bad, reqwest::Method::GET, "/api/v1/tickets").await;
        assert_eq!(status, 401, "{bad}: {body}");
    }
    // An expired token (made a day ago for less than a day).
    let alan_id = alan_id(&app).await;
    let stale = "clt_stale-token-for-the-test-0123456789abcdef";
    app.store
        .create_api_token(
            alan_id,
            "stale",
            &careline::auth::hash_token(stale),
            "read",
            careline::store::now_ms() - 1,
        )
        .await
        .unwrap();
    assert_eq!(
        call(&app, stale, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        401
    );
    // Demoted to customer: the token stops at once.
    let admin_id = app
        .store
        .user_with_hash(&careline::model::Email::parse("admin@example.com").unwrap())
        .await
        .unwrap()
        .expect("the admin")
        .0
        .id;
    app.store
        .change_role_as(admin_id, alan_id, Role::Customer)
        .await
        .unwrap();
    assert_eq!(
        call(&app, &token, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn scopes_follow_the_owner_and_tokens_are_rate_limited() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    // An agent cannot make an admin token; a customer has no token page.
    alan.get("/account/tokens").await;
    let refused = alan
        .submit(
            "/account/tokens",
            &[("name", "x"), ("scope", "admin"), ("days", "30")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    for (name, days) in [("", "30"), ("ok", "0"), ("ok", "400"), ("ok", "soon")] {
        let refused = alan
            .submit(
                "/account/tokens",
                &[("name", name), ("scope", "read"), ("days", days)],
            )
            .await;
        assert_eq!(refused.status, 422, "{name} {days}");
    }
    let mut grace = app.customer("Grace", "grace@example.com").await;
    assert_ne!(grace.get("/account/tokens").await.status, 200);
    let admin_token = make_token(&mut admin, "backup", "admin").await;
    assert_eq!(
        call(&app, &admin_token, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        200
    );

    // Ten a second with bursts of sixty: a loop of 80 meets the limit.
    let token = make_token(&mut alan, "loop", "read").await;
    let mut limited = None;
    for _ in 0..80 {
        let response = careline::http_client(std::time::Duration::from_secs(10))
            .get(format!("{}/api/v1/tickets", app.base))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the token was limited");
    assert_eq!(limited.headers()["retry-after"], "1");
    // Another token has its own allowance.
    assert_eq!(
        call(&app, &admin_token, reqwest::Method::GET, "/api/v1/tickets")
            .await
            .0,
        200
    );
}

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value, bool) {
    let mut request = careline::http_client(std::time::Duration::from_secs(10))
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        replayed,
    )
}

#[tokio::test]
async fn a_write_token_replies_notes_and_updates_and_a_retried_reply_is_made_once() {
    use reqwest::Method;
    use serde_json::json;
    let app = TestApp::spawn(Database::Sqlite).await;
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
    let number = support::ticket_number(created.location.as_deref().unwrap());
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let write = make_token(&mut alan, "helpdesk bot", "write").await;
    let read = make_token(&mut alan, "reports", "read").await;
    let replies = format!("/api/v1/tickets/{number}/replies");
    let count = || async {
        let ticket = app
            .store
            .ticket_by_number(careline::model::TicketNumber(number))
            .await
            .unwrap()
            .unwrap();
        app.store
            .messages(ticket.conversation_id, true)
            .await
            .unwrap()
            .len()
    };
    let before = count().await;

    // A reply, sent twice with one key (a retry): made once, answered twice.
    let reply = json!({"body": "Try the rear tray"});
    let (status, first, replayed) = send(
        &app,
        &write,
        Method::POST,
        &replies,
        reply.clone(),
        Some("k-1"),
    )
    .await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = send(
        &app,
        &write,
        Method::POST,
        &replies,
        reply.clone(),
        Some("k-1"),
    )
    .await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(first, again);
    assert_eq!(count().await, before + 1, "made once");
    // The same key for another request is refused; bad keys too.
    let (status, body, _) = send(
        &app,
        &write,
        Method::POST,
        &format!("/api/v1/tickets/{number}/notes"),
        json!({"body": "x"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, _, _) = send(
        &app,
        &write,
        Method::POST,
        &replies,
        reply.clone(),
        Some("bad key"),
    )
    .await;
    assert_eq!(status, 422);
    // Without a key each request is its own.
    send(
        &app,
        &write,
        Method::POST,
        &replies,
        json!({"body": "One more"}),
        None,
    )
    .await;
    assert_eq!(count().await, before + 2);

    // The customer sees the replies, not a note.
    let (status, _, _) = send(
        &app,
        &write,
        Method::POST,
        &format!("/api/v1/tickets/{number}/notes"),
        json!({"body": "Customer is on the old firmware"}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let seen = grace.get(&format!("/api/v1/tickets/{number}")).await.json();
    let bodies: Vec<&str> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(
        bodies.contains(&"Try the rear tray") && !bodies.iter().any(|b| b.contains("firmware")),
        "{bodies:?}"
    );

    // Status, priority and assignee; bad values name their field.
    let path = format!("/api/v1/tickets/{number}");
    let (status, ticket, _) = send(
        &app,
        &write,
        Method::PATCH,
        &path,
        json!({"status": "pending", "priority": "high", "assignee_id": null}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(
        (ticket["status"].as_str(), ticket["priority"].as_str()),
        (Some("pending"), Some("high"))
    );
    assert!(ticket["assignee"].is_null());
    let (status, body, _) = send(
        &app,
        &write,
        Method::PATCH,
        &path,
        json!({"status": "done"}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("status")),
        "{body}"
    );
    let (status, body, _) = send(
        &app,
        &write,
        Method::POST,
        &replies,
        json!({"text": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // A read token changes nothing.
    let (status, body, _) = send(&app, &read, Method::POST, &replies, reply.clone(), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = send(
        &app,
        &read,
        Method::PATCH,
        &path,
        json!({"priority": "low"}),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // The browser's session needs the page's CSRF token to change things.
    grace.get(&format!("/tickets/{number}")).await;
    let refused = grace
        .json_request(
            Method::POST,
            &replies,
            &json!({"body": "From a script"}),
            false,
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let taken = grace
        .json_request(
            Method::POST,
            &replies,
            &json!({"body": "From my page"}),
            true,
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
}

#[tokio::test]
async fn staff_read_the_agents_presence_and_the_sites_customers_do_not() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "wallboard", "read").await;
    let presence_of = |agents: &Value, email: &str| {
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["email"] == email)
            .map(|a| a["presence"].as_str().unwrap().to_string())
    };
    let (status, agents) = call(&app, &token, reqwest::Method::GET, "/api/v1/agents").await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(
        presence_of(&agents, "alan@example.com").as_deref(),
        Some("offline")
    );
    let mut console = app.agent_socket(&alan).await;
    console.go_online().await;
    let (_, agents) = call(&app, &token, reqwest::Method::GET, "/api/v1/agents").await;
    assert_eq!(
        presence_of(&agents, "alan@example.com").as_deref(),
        Some("online"),
        "{agents}"
    );
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["role"] != "customer")
    );

    let (status, sites) = call(&app, &token, reqwest::Method::GET, "/api/v1/sites").await;
    assert_eq!(status, 200, "{sites}");
    let default = app.store.default_site().await.unwrap();
    assert_eq!(sites[0]["key"], default.key.as_str());

    let mut grace = app.customer("Grace", "grace@example.com").await;
    assert_eq!(grace.get("/api/v1/agents").await.status, 404);
    assert_eq!(grace.get("/api/v1/sites").await.status, 404);
}

#[tokio::test]
async fn a_write_token_works_a_live_conversation_as_the_console_does() {
    use reqwest::Method;
    use serde_json::json;
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut chat = app.live_chat(&site).await;
    let mut alan = chat.agent_browser;
    let write = make_token(&mut alan, "macro runner", "write").await;
    let read = make_token(&mut alan, "viewer", "read").await;
    let base = format!("/api/v1/conversations/{}", chat.id);

    let (status, seen) = call(&app, &write, Method::GET, &base).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["conversation"]["status"], "live");
    assert!(
        seen["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["body"] == "hello"),
        "{seen}"
    );

    // A reply reaches the widget live; the same client_msg_id again is the
    // same message.
    let messages = format!("{base}/messages");
    let (status, first, _) = send(
        &app,
        &write,
        Method::POST,
        &messages,
        json!({"body": "Hello from the API", "client_msg_id": "m-1"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{first}");
    chat.visitor.expect_message("Hello from the API").await;
    let (status, again, _) = send(
        &app,
        &write,
        Method::POST,
        &messages,
        json!({"body": "Hello from the API", "client_msg_id": "m-1"}),
        None,
    )
    .await;
    assert_eq!(
        (status, again["seq"].clone(), again["duplicate"].clone()),
        (200, first["seq"].clone(), json!(true))
    );
    // A private note: the agents see it, the widget never does.
    let (status, _, _) = send(
        &app,
        &write,
        Method::POST,
        &messages,
        json!({"body": "note: VIP", "private": true}),
        Some("n-1"),
    )
    .await;
    assert_eq!(status, 201);
    let (_, paged) = call(
        &app,
        &write,
        Method::GET,
        &format!("{base}?after_seq=1&limit=1"),
    )
    .await;
    assert_eq!(paged["messages"].as_array().unwrap().len(), 1);
    assert_eq!(paged["more"], true, "{paged}");

    // A read token writes nothing; a bad id is not found.
    let (status, _, _) = send(
        &app,
        &read,
        Method::POST,
        &messages,
        json!({"body": "x"}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        call(&app, &write, Method::GET, "/api/v1/conversations/abc")
            .await
            .0,
        404
    );
    let (status, body, _) = send(
        &app,
        &write,
        Method::POST,
        &format!("{base}/transfer"),
        json!({"agent_id": 999_999}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("agent_id")),
        "{body}"
    );

    // Resolved through the API: the widget hears it.
    let (status, resolved, _) = send(
        &app,
        &write,
        Method::POST,
        &format!("{base}/resolve"),
        json!({}),
        None,
    )
    .await;
    assert_eq!(
        (status, resolved["status"].as_str()),
        (200, Some("resolved")),
        "{resolved}"
    );
    // Everything the widget got since the reply, up to the resolution:
    // the note is not among it.
    let mut visible = Vec::new();
    while let Some(frame) = chat
        .visitor
        .try_next(std::time::Duration::from_secs(5))
        .await
    {
        let done = frame["type"] == "conversation" && frame["status"] == "resolved";
        visible.push(frame);
        if done {
            break;
        }
    }
    assert!(
        visible.iter().any(|f| f["status"] == "resolved"),
        "the widget hears the resolution: {visible:?}"
    );
    assert!(
        !visible.iter().any(|f| f["body"] == "note: VIP"),
        "{visible:?}"
    );

    // A customer's session reads no conversation through the staff API.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    assert_eq!(grace.get(&base).await.status, 404);
}
