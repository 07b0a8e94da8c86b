//! Contact profiles over real HTTP: the staff page of a person (history,
//! notes, attributes, escaped), merging a duplicate contact into one from
//! the page and the API, and the API's notes.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::api::{call, make_token, send};
use support::ws::WsClient;
use support::{Database, TestApp};

/// A widget visitor who leaves `name` and `email` and talks to a person:
/// their socket, contact id and ticket number.
async fn chatting_customer(
    app: &TestApp,
    site: &str,
    name: &str,
    email: &str,
) -> (WsClient, i64, i64) {
    let mut visitor = app.visitor(site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "first", "body": "My invoice is wrong"}))
        .await;
    let conversation = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let welcome = visitor.leave_contact(name, email).await;
    let id: i64 = welcome["user"]["id"].as_str().unwrap().parse().unwrap();
    visitor
        .send(json!({"type": "handoff", "conversation_id": conversation}))
        .await;
    let waiting = visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    let number = waiting["ticket_number"]
        .as_i64()
        .expect("a ticket was opened");
    (visitor, id, number)
}

#[tokio::test]
async fn staff_see_a_profile_with_history_notes_and_attributes_and_customers_see_nothing() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let hostile = "<script>alert(1)</script> Grace";
    let (_visitor, id, number) = chatting_customer(&app, &site, hostile, "grace@example.com").await;
    let profile = format!("/console/contacts/{id}");

    // Found from the navigation's list by search, and from the ticket.
    let list = alan
        .get("/console/contacts?q=GRACE")
        .await
        .expect_status(200);
    assert!(
        list.contains("href=\"/console/contacts\""),
        "the nav links the list"
    );
    assert!(
        list.contains(&format!("href=\"{profile}\"")),
        "{}",
        list.body
    );
    let ticket = alan
        .get(&format!("/console/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(
        ticket.contains(&format!("href=\"{profile}\"")),
        "the ticket links the customer"
    );

    let page = alan.get(&profile).await.expect_status(200);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; Grace"));
    assert!(!page.contains("<script>alert(1)"), "the name is escaped");
    assert!(page.contains("grace@example.com"));
    assert!(page.contains("unverified"), "a typed email is marked");
    assert!(page.contains("No account"));
    assert!(page.contains(&format!("href=\"/console/tickets/{number}\"")));

    // Notes: kept with the author, escaped; an empty one is refused.
    alan.submit(
        &format!("{profile}/notes"),
        &[("note", "Prefers <b>email</b>")],
    )
    .await
    .expect_redirect(&profile);
    let page = alan.get(&profile).await;
    assert!(
        page.contains("Prefers &lt;b&gt;email&lt;/b&gt;"),
        "{}",
        page.body
    );
    assert!(page.contains("Alan"));
    let empty = alan
        .submit(&format!("{profile}/notes"), &[("note", "  ")])
        .await;
    assert_eq!(empty.status, 422);
    assert!(empty.contains("Write the note first."));

    // Attributes: add, change, and a bad name refused by the API's rule.
    alan.submit(
        &format!("{profile}/attributes"),
        &[("key", "plan"), ("value", "pro"), ("action", "set")],
    )
    .await
    .expect_redirect(&profile);
    alan.submit(
        &format!("{profile}/attributes"),
        &[("key", "plan"), ("value", "team"), ("action", "set")],
    )
    .await
    .expect_redirect(&profile);
    let page = alan.get(&profile).await;
    assert!(page.contains("value=\"team\""), "{}", page.body);
    let bad = alan
        .submit(
            &format!("{profile}/attributes"),
            &[("key", "Bad Key"), ("value", "x"), ("action", "set")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.contains("attribute names are 1 to 64 characters"),
        "{}",
        bad.body
    );
    alan.submit(
        &format!("{profile}/attributes"),
        &[("key", "plan"), ("value", ""), ("action", "remove")],
    )
    .await
    .expect_redirect(&profile);
    let token = make_token(&mut alan, "CRM", "write").await;
    let (_, contact) = call(&app, &token, Method::GET, &format!("/api/v1/contacts/{id}")).await;
    assert_eq!(
        contact["attributes"],
        json!({}),
        "the page and the API keep the same"
    );

    // A form without its CSRF token changes nothing.
    let forged = alan
        .post_raw(&format!("{profile}/notes"), &[("note", "forged")])
        .await;
    assert_eq!(forged.status, 403);

    // Staff's pages: a customer, and a contact that is not there, get 404.
    let mut eve = app.customer("Eve", "eve@example.com").await;
    assert_eq!(eve.get(&profile).await.status, 404);
    assert_eq!(eve.get("/console/contacts").await.status, 404);
    assert_eq!(alan.get("/console/contacts/999999").await.status, 404);
    assert_eq!(alan.get("/console/contacts/abc").await.status, 404);
}

#[tokio::test]
async fn merging_a_duplicate_moves_its_history_writes_the_timeline_and_ends_its_token() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let token = make_token(&mut alan, "CRM", "write").await;
    let (_grace, grace, first) = chatting_customer(&app, &site, "Grace", "grace@example.com").await;
    let (duplicate_socket, duplicate, second) =
        chatting_customer(&app, &site, "G. Hopper", "g.hopper@example.com").await;
    let old_token = duplicate_socket.token.clone().unwrap();
    for (id, attributes) in [
        (grace, json!({"plan": "pro"})),
        (duplicate, json!({"plan": "free", "seats": 3})),
    ] {
        let (status, _, _) = send(
            &app,
            &token,
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            json!({"attributes": attributes}),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = send(
        &app,
        &token,
        Method::POST,
        &format!("/api/v1/contacts/{duplicate}/notes"),
        json!({"body": "Wrote from a second browser"}),
        None,
    )
    .await;
    assert_eq!(status, 201);

    // Picked by email, looked at, then confirmed.
    let profile = format!("/console/contacts/{grace}");
    alan.get(&profile).await.expect_status(200);
    let itself = alan
        .submit(&format!("{profile}/merge"), &[("from", &grace.to_string())])
        .await;
    assert_eq!(itself.status, 422);
    assert!(itself.contains("cannot be merged into itself"));
    let review = alan
        .submit(
            &format!("{profile}/merge"),
            &[("from", "G.Hopper@example.com")],
        )
        .await
        .expect_status(200);
    assert!(
        review.contains(&format!("Merge #{duplicate} into #{grace}")),
        "{}",
        review.body
    );
    assert!(
        review.contains("1 conversations and 1 tickets move"),
        "{}",
        review.body
    );
    alan.submit(
        &format!("{profile}/merge"),
        &[("from", &duplicate.to_string()), ("confirm", "yes")],
    )
    .await
    .expect_redirect(&profile);

    let page = alan.get(&profile).await.expect_status(200);
    for number in [first, second] {
        assert!(
            page.contains(&format!("href=\"/console/tickets/{number}\"")),
            "#{number}"
        );
    }
    assert!(
        page.contains("Wrote from a second browser"),
        "the notes came along"
    );
    let moved = alan.get(&format!("/console/tickets/{second}")).await;
    assert!(
        moved.contains(&format!(
            "Contact merged: G. Hopper &lt;g.hopper@example.com&gt; (#{duplicate}) into Grace &lt;grace@example.com&gt; (#{grace})"
        )),
        "{}",
        moved.body
    );
    assert!(
        moved.contains(&format!("href=\"{profile}\"")),
        "the ticket is Grace's now"
    );
    let (_, merged) = call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/contacts/{grace}"),
    )
    .await;
    assert_eq!(
        merged["attributes"],
        json!({"plan": "pro", "seats": 3}),
        "the first wins a clash"
    );

    // The old id leads to the survivor on the page; the API no longer has it.
    alan.get(&format!("/console/contacts/{duplicate}"))
        .await
        .expect_redirect(&profile);
    let (status, _) = call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/contacts/{duplicate}"),
    )
    .await;
    assert_eq!(status, 404);

    // The duplicate's browser starts again as a new visitor, with nothing
    // of Grace's.
    let response = app
        .widget_session(
            support::ws::SHOP_ORIGIN,
            json!({"site_key": site, "visitor_token": old_token}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_ne!(session["visitor_token"], old_token.as_str());
    assert_ne!(session["visitor_id"], duplicate.to_string());
    assert_ne!(session["visitor_id"], grace.to_string());
    assert_eq!(session["conversations"], json!([]));
}

#[tokio::test]
async fn the_api_keeps_notes_and_merges_by_the_same_rules() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let write = make_token(&mut alan, "CRM", "write").await;
    let read = make_token(&mut alan, "Reader", "read").await;
    let (_a, grace, _) = chatting_customer(&app, &site, "Grace", "grace@example.com").await;
    let (_b, twin, _) = chatting_customer(&app, &site, "Grace H", "grace.h@example.com").await;
    let notes = format!("/api/v1/contacts/{grace}/notes");

    // A note, once per Idempotency-Key.
    let note = json!({"body": "VIP: answer within the hour"});
    let (status, first, _) = send(
        &app,
        &write,
        Method::POST,
        &notes,
        note.clone(),
        Some("n-1"),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["author"], "Alan");
    let (status, again, replayed) =
        send(&app, &write, Method::POST, &notes, note, Some("n-1")).await;
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again["id"], first["id"]);
    let (status, listed) = call(&app, &read, Method::GET, &notes).await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["body"], "VIP: answer within the hour");
    for (body, field) in [
        (json!({"body": ""}), "note"),
        (json!({"body": "x".repeat(5001)}), "note"),
        (json!({"text": "hi"}), "body"),
        (json!(["hi"]), "body"),
    ] {
        let (status, error, _) = send(&app, &write, Method::POST, &notes, body, None).await;
        assert_eq!(
            (status, &error["error"]["field"]),
            (422, &json!(field)),
            "{error}"
        );
    }
    let (status, _, _) = send(
        &app,
        &read,
        Method::POST,
        &notes,
        json!({"body": "hi"}),
        None,
    )
    .await;
    assert_eq!(status, 403, "a read token writes nothing");

    // Merge: refused with the reason, then done.
    let merge = format!("/api/v1/contacts/{grace}/merge");
    for (body, field, words) in [
        (json!({"from": grace}), "from", "itself"),
        (json!({"from": 999_999}), "from", "no contact"),
        (json!({"from": "two"}), "body", "expected"),
    ] {
        let (status, error, _) = send(&app, &write, Method::POST, &merge, body, None).await;
        assert_eq!(
            (status, &error["error"]["field"]),
            (422, &json!(field)),
            "{error}"
        );
        assert!(
            error["error"]["message"].as_str().unwrap().contains(words),
            "{error}"
        );
    }
    let (status, _, _) = send(
        &app,
        &read,
        Method::POST,
        &merge,
        json!({"from": twin}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, merged, _) = send(
        &app,
        &write,
        Method::POST,
        &merge,
        json!({"from": twin}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["contact"]["id"], grace);
    assert_eq!(merged["moved_conversations"], 1);
    assert_eq!(merged["moved_tickets"], 1);
    let (_, conversations) = call(
        &app,
        &read,
        Method::GET,
        &format!("/api/v1/contacts/{grace}/conversations"),
    )
    .await;
    assert_eq!(
        conversations.as_array().unwrap().len(),
        2,
        "{conversations}"
    );

    // Two people who each have an account are never one contact.
    for (name, email) in [("Eve", "eve@example.com"), ("Mia", "mia@example.com")] {
        let (status, _, _) = send(
            &app,
            &write,
            Method::POST,
            "/api/v1/tickets",
            json!({"subject": "Hi", "description": "there", "customer": {"email": email, "name": name}}),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let (_, eve) = call(&app, &read, Method::GET, "/api/v1/contacts?q=eve").await;
    let (_, mia) = call(&app, &read, Method::GET, "/api/v1/contacts?q=mia").await;
    let (status, refused, _) = send(
        &app,
        &write,
        Method::POST,
        &format!("/api/v1/contacts/{}/merge", eve[0]["id"]),
        json!({"from": mia[0]["id"]}),
        None,
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("own Careline account"),
        "{refused}"
    );
}
