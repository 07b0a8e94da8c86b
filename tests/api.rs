//! The REST API's resources over real HTTP with personal tokens: tickets
//! opened by an integration and paged by cursor, contacts, report figures.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::api::{call, get_paged, make_token, send};
use support::{Database, TestApp};

#[tokio::test]
async fn staff_open_tickets_for_customers_once_per_key_and_page_through_them_by_cursor() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "CRM", "write").await;

    // An integration opens a ticket for a customer Careline does not know.
    let new = json!({
        "subject": "Invoice 7 is wrong",
        "description": "Charged twice",
        "priority": "high",
        "customer": {"email": "Mia@Example.com", "name": "Mia"}
    });
    let (status, first, replayed) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/tickets",
        new.clone(),
        Some("crm-7"),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert!(!replayed);
    assert_eq!(first["customer"]["email"], "mia@example.com", "{first}");
    assert_eq!(first["priority"], "high");
    assert_eq!(first["status"], "open");
    // A retry with the same key is the same ticket, not a second one.
    let (status, again, replayed) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/tickets",
        new,
        Some("crm-7"),
    )
    .await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again["number"], first["number"]);
    let mia = app
        .store
        .user_with_hash(&careline::model::Email::parse("mia@example.com").unwrap())
        .await
        .unwrap()
        .expect("the customer has an account to follow the ticket with")
        .0;
    assert_eq!(mia.role, careline::model::Role::Customer);

    // Bad input is named: the field, and nothing is made.
    for (body, field) in [
        (
            json!({"subject": "x", "description": "y", "customer": {"email": "not an address"}}),
            "customer.email",
        ),
        (
            json!({"subject": "x", "description": "y", "customer": {"email": "alan@example.com"}}),
            "customer.email",
        ),
        (json!({"subject": "x", "description": "y"}), "customer"),
        (
            json!({"subject": " ", "description": "y", "customer": {"email": "zoe@example.com"}}),
            "subject",
        ),
        (
            json!({"subject": "x", "description": "y", "priority": "soon", "customer": {"email": "zoe@example.com"}}),
            "priority",
        ),
        (json!({"subject": 5}), "body"),
        (json!(["x", "y"]), "body"),
    ] {
        let (status, error, _) =
            send(&app, &token, Method::POST, "/api/v1/tickets", body, None).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert!(
        app.store
            .user_with_hash(&careline::model::Email::parse("zoe@example.com").unwrap())
            .await
            .unwrap()
            .is_none(),
        "a refused ticket makes no account"
    );
    // A read token opens nothing.
    let reader = make_token(&mut alan, "reader", "read").await;
    let (status, _, _) = send(
        &app,
        &reader,
        Method::POST,
        "/api/v1/tickets",
        json!({"subject": "x", "description": "y", "customer": {"email": "zoe@example.com"}}),
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Seven more, then read back three at a time by cursor: each once.
    let mut opened = vec![first["number"].as_i64().unwrap()];
    for i in 0..7 {
        let (status, t, _) = send(
            &app,
            &token,
            Method::POST,
            "/api/v1/tickets",
            json!({"subject": format!("Question {i}"), "description": "?", "customer": {"email": format!("c{i}@example.com")}}),
            None,
        )
        .await;
        assert_eq!(status, 201, "{t}");
        opened.push(t["number"].as_i64().unwrap());
    }
    let mut seen = Vec::new();
    let mut path = Some("/api/v1/tickets?limit=3&status=open".to_string());
    let mut pages = 0;
    while let Some(p) = path {
        let (status, page, next) = get_paged(&app, &token, &p).await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|t| t["number"].as_i64().unwrap()));
        pages += 1;
        if let Some(next) = &next {
            assert!(
                next.contains("status=open"),
                "the filter carries on: {next}"
            );
        }
        path = next;
    }
    assert_eq!(pages, 3, "8 tickets: 3 + 3 + 2, and no empty page after");
    opened.sort_unstable();
    opened.reverse();
    assert_eq!(seen, opened, "newest first, each exactly once");
    // A ticket changed while paging moves to the front; nothing repeats.
    let (_, page, next) = get_paged(&app, &token, "/api/v1/tickets?limit=3").await;
    let last_seen = page[0]["number"].as_i64().unwrap();
    let (status, _, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/tickets/{last_seen}"),
        json!({"status": "pending"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mut rest = Vec::new();
    let mut path = next;
    while let Some(p) = path {
        let (_, page, next) = get_paged(&app, &token, &p).await;
        rest.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|t| t["number"].as_i64().unwrap()),
        );
        path = next;
    }
    assert_eq!(rest.len(), 5);
    assert!(!rest.contains(&last_seen));

    for (query, field) in [
        ("cursor=yesterday", "cursor"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=many", "limit"),
        ("assignee=someone", "assignee"),
        ("offset=-1", "offset"),
    ] {
        let (status, error) = call(
            &app,
            &token,
            Method::GET,
            &format!("/api/v1/tickets?{query}"),
        )
        .await;
        assert_eq!(status, 422, "{query}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (status, mine) = call(&app, &token, Method::GET, "/api/v1/tickets?assignee=me").await;
    assert_eq!(status, 200);
    assert_eq!(mine, Value::Array(vec![]), "nothing is Alan's yet");
}

#[tokio::test]
async fn a_customer_raises_their_own_ticket_through_the_api_and_nobody_elses() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let mine = grace
        .json_request(
            Method::POST,
            "/api/v1/tickets",
            &json!({"subject": "Login fails", "description": "Since Monday"}),
            true,
        )
        .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    assert_eq!(mine.json()["customer"]["email"], "grace@example.com");
    let for_someone = grace
        .json_request(
            Method::POST,
            "/api/v1/tickets",
            &json!({"subject": "x", "description": "y", "customer": {"email": "eve@example.com"}}),
            true,
        )
        .await;
    assert_eq!(for_someone.status, 403, "{}", for_someone.body);
    let without_csrf = grace
        .json_request(
            Method::POST,
            "/api/v1/tickets",
            &json!({"subject": "x", "description": "y"}),
            false,
        )
        .await;
    assert_eq!(without_csrf.status, 403);
    let listed = grace.get("/api/v1/tickets").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn staff_find_a_contact_correct_them_keep_attributes_and_read_their_conversations() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "CRM", "write").await;
    // A widget visitor who chats, then leaves a name and a (typo'd) email.
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "first", "body": "hello"}))
        .await;
    let conversation = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    visitor.leave_contact("Grace", "grace@exmaple.com").await;
    // And one who never said who they are: not a contact to list.
    let _anonymous = app.visitor(&site).await;

    let (status, found, next) = get_paged(&app, &token, "/api/v1/contacts?q=GRACE").await;
    assert_eq!(status, 200, "{found}");
    assert!(next.is_none());
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let grace = &found[0];
    assert_eq!(grace["email"], "grace@exmaple.com");
    assert_eq!(grace["email_verified"], false);
    assert_eq!(grace["has_account"], false);
    assert_eq!(grace["attributes"], json!({}));
    let id = grace["id"].as_i64().unwrap();
    let (_, all, _) = get_paged(&app, &token, "/api/v1/contacts").await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "the anonymous visitor is left out: {all}"
    );

    // The CRM corrects the email and sets what it knows; null removes.
    let path = format!("/api/v1/contacts/{id}");
    let (status, changed, _) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        json!({"email": "grace@example.com", "attributes": {"plan": "pro", "seats": 5, "trial": true}}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["email"], "grace@example.com");
    assert_eq!(
        changed["attributes"],
        json!({"plan": "pro", "seats": 5, "trial": true})
    );
    let (_, changed, _) = send(
        &app,
        &token,
        Method::PATCH,
        &path,
        json!({"attributes": {"trial": null, "plan": "team"}}),
        None,
    )
    .await;
    assert_eq!(changed["attributes"], json!({"plan": "team", "seats": 5}));
    assert_eq!(changed["name"], "Grace", "untouched details stay");
    let (_, read) = call(&app, &token, Method::GET, &path).await;
    assert_eq!(read, changed, "what was answered is what is kept");

    for (body, field) in [
        (json!({"email": "nope"}), "email"),
        (json!({"name": ""}), "name"),
        (json!({"attributes": {"Bad Key": 1}}), "attributes"),
        (json!({"attributes": {"nested": {"a": 1}}}), "attributes"),
        (json!({"attributes": "plan=pro"}), "body"),
        (json!({"colour": "blue"}), "body"),
        (json!([null, null]), "body"),
    ] {
        let (status, error, _) = send(&app, &token, Method::PATCH, &path, body.clone(), None).await;
        assert_eq!(status, 422, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    let (_, unchanged) = call(&app, &token, Method::GET, &path).await;
    assert_eq!(unchanged, changed, "a refused change changes nothing");

    // Their conversations, as the console sees them.
    let (status, theirs, _) = get_paged(
        &app,
        &token,
        &format!("/api/v1/contacts/{id}/conversations"),
    )
    .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs[0]["id"], conversation.as_str(), "{theirs}");
    assert_eq!(theirs[0]["customer"]["email"], "grace@example.com");

    // An account's email is the account's own.
    let (_, opened, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/tickets",
        json!({"subject": "Hi", "description": "there", "customer": {"email": "mia@example.com", "name": "Mia"}}),
        None,
    )
    .await;
    assert_eq!(opened["customer"]["email"], "mia@example.com");
    let (_, mia, _) = get_paged(&app, &token, "/api/v1/contacts?q=mia").await;
    assert_eq!(mia[0]["has_account"], true, "{mia}");
    let (status, refused, _) = send(
        &app,
        &token,
        Method::PATCH,
        &format!("/api/v1/contacts/{}", mia[0]["id"]),
        json!({"email": "someone@example.com"}),
        None,
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (422, &json!("email")),
        "{refused}"
    );

    // Paging: one at a time, newest first, each once.
    let (_, first, next) = get_paged(&app, &token, "/api/v1/contacts?limit=1").await;
    assert_eq!(first[0]["email"], "mia@example.com");
    let (_, second, last) = get_paged(&app, &token, &next.expect("a second page")).await;
    assert_eq!(second[0]["email"], "grace@example.com");
    assert!(last.is_none(), "{second}");

    // Contacts are staff's: a customer's session finds none of them.
    let mut customer = app.customer("Eve", "eve@example.com").await;
    assert_eq!(customer.get(&path).await.status, 404);
    assert_eq!(customer.get("/api/v1/contacts").await.status, 404);
    let (status, _) = call(&app, &token, Method::GET, "/api/v1/contacts/999999").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn admins_read_the_report_figures_and_agents_do_not() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let admin_token = make_token(&mut admin, "BI", "read").await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let agent_token = make_token(&mut alan, "mine", "write").await;
    for i in 0..2 {
        let (status, _, _) = send(
            &app,
            &agent_token,
            Method::POST,
            "/api/v1/tickets",
            json!({"subject": format!("Q{i}"), "description": "?", "customer": {"email": "c@example.com"}}),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, report) = call(&app, &admin_token, Method::GET, "/api/v1/reports?days=30").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["days"], 30);
    assert_eq!(report["tickets_opened"], 2, "{report}");
    assert_eq!(report["awaiting_first_response"], 2, "{report}");
    assert_eq!(
        report["first_response"],
        Value::Null,
        "nothing answered yet"
    );
    assert!(
        report["people"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["email"] == "alan@example.com"),
        "{report}"
    );
    assert_eq!(report["sites"][0]["tickets_opened"], 2, "{report}");
    let (status, error) = call(&app, &admin_token, Method::GET, "/api/v1/reports?days=12").await;
    assert_eq!((status, &error["error"]["field"]), (422, &json!("days")));
    let (status, _) = call(&app, &agent_token, Method::GET, "/api/v1/reports").await;
    assert_eq!(status, 404, "the report is the admins'");
}

#[tokio::test]
async fn a_retried_upload_with_the_same_key_is_one_file() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "CRM", "write").await;
    let (_, ticket, _) = send(
        &app,
        &token,
        Method::POST,
        "/api/v1/tickets",
        json!({"subject": "Receipt", "description": "attached", "customer": {"email": "mia@example.com"}}),
        None,
    )
    .await;
    let number = careline::model::TicketNumber(ticket["number"].as_i64().unwrap());
    let conversation = app
        .store
        .ticket_by_number(number)
        .await
        .unwrap()
        .unwrap()
        .conversation_id;
    let upload = |key: &'static str| {
        let url = format!(
            "{}/api/v1/conversations/{}/attachments?name=receipt.txt",
            app.base, conversation.0
        );
        let token = token.clone();
        async move {
            let response = careline::http_client(std::time::Duration::from_secs(10))
                .post(url)
                .header("Authorization", format!("Bearer {token}"))
                .header("Idempotency-Key", key)
                .body("paid in full\n")
                .send()
                .await
                .unwrap();
            let replayed = response.headers().get("idempotent-replayed").is_some();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap(), replayed)
        }
    };
    let (status, first, replayed) = upload("upload-1").await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = upload("upload-1").await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again["id"], first["id"], "the same file, stored once");
    let (_, other, _) = upload("upload-2").await;
    assert_ne!(other["id"], first["id"], "a new key is a new upload");
}
