//! Labels over real HTTP: admins define them (and only admins), agents put
//! them on tickets and take them off (each change on the timeline, never
//! shown to the customer), the ticket list filters by them and applies
//! bulk changes, and the API reads and writes them with the right tokens.

mod support;

use reqwest::Method;
use serde_json::json;
use support::api::{call, make_token, send};
use support::browser::Browser;
use support::{Database, TestApp, ticket_number};

/// Grace raises a ticket; its number.
async fn raise(grace: &mut Browser, subject: &str) -> i64 {
    grace.get("/tickets/new").await.expect_status(200);
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", subject),
                ("description", "Please help."),
                ("priority", "normal"),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    ticket_number(created.location.as_deref().unwrap())
}

/// The admin adds a label on the admin page; its id.
async fn add_label(app: &TestApp, admin: &mut Browser, name: &str, colour: &str) -> i64 {
    admin.get("/admin/labels").await.expect_status(200);
    admin
        .submit("/admin/labels", &[("name", name), ("colour", colour)])
        .await
        .expect_redirect("/admin/labels?done=added");
    app.store
        .labels()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.name == name)
        .expect("the label was added")
        .id
        .0
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.store
        .staff()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == email)
        .unwrap()
        .id
        .0
}

#[tokio::test]
async fn admins_add_rename_recolour_and_delete_labels_with_clear_refusals() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let refund = add_label(&app, &mut admin, "Refund", "red").await;
    let page = admin.get("/admin/labels").await.expect_status(200);
    assert!(page.contains("label label-red") && page.contains(">Refund<"));

    // Refused, each with the reason next to the field, and nothing added.
    let long = "x".repeat(41);
    let refusals = [
        (("   ", "blue"), "Give the label a name."),
        ((long.as_str(), "blue"), "Use at most 40 characters"),
        (("rEFUND", "blue"), "There is already a label called"),
        (("Bug", "#ff0000"), "Choose a colour from the list"),
    ];
    for ((name, colour), why) in refusals {
        let answer = admin
            .submit("/admin/labels", &[("name", name), ("colour", colour)])
            .await;
        assert_eq!(answer.status, 422, "{name:?} {colour:?}");
        assert!(answer.contains(why), "{why}: {}", answer.body);
    }
    assert_eq!(app.store.labels().await.unwrap().len(), 1);

    // Hostile names are text.
    add_label(&app, &mut admin, "<b>loud</b>", "grey").await;
    let page = admin.get("/admin/labels").await;
    assert!(page.contains("&lt;b&gt;loud&lt;/b&gt;") && !page.contains("<b>loud</b>"));

    // Rename and recolour; a rename onto another's name is refused.
    admin
        .submit(
            &format!("/admin/labels/{refund}"),
            &[("name", "Refund asked"), ("colour", "green")],
        )
        .await
        .expect_redirect("/admin/labels?done=saved");
    let answer = admin
        .submit(
            &format!("/admin/labels/{refund}"),
            &[("name", "<B>LOUD</B>"), ("colour", "green")],
        )
        .await;
    assert_eq!(answer.status, 422);
    assert!(answer.contains("There is already a label called"));
    let page = admin.get("/admin/labels").await;
    assert!(page.contains("label label-green") && page.contains(">Refund asked<"));

    // Deleting asks first, saying how many tickets lose it; then takes it
    // off them.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let number = raise(&mut grace, "Money back").await;
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/labels"),
            &[("label", &refund.to_string())],
        )
        .await
        .expect_redirect(&format!("/console/tickets/{number}"));
    admin.get("/admin/labels").await;
    let asked = admin
        .submit(&format!("/admin/labels/{refund}/delete"), &[])
        .await
        .expect_status(200);
    assert!(asked.contains("<strong>1 ticket</strong>") && asked.contains("Delete the label"));
    assert_eq!(app.store.labels().await.unwrap().len(), 2, "not yet");
    admin
        .submit(
            &format!("/admin/labels/{refund}/delete"),
            &[("confirm", "yes")],
        )
        .await
        .expect_redirect("/admin/labels?done=deleted");
    assert_eq!(app.store.labels().await.unwrap().len(), 1);
    let ticket = admin.get(&format!("/console/tickets/{number}")).await;
    assert!(!ticket.contains("label-green"), "gone from the ticket too");

    // Agents and customers do not reach the page.
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    alan.get("/admin/labels").await.expect_status(404);
    grace.get("/admin/labels").await.expect_status(404);
    alan.get("/console").await;
    let posted = alan
        .submit("/admin/labels", &[("name", "Mine"), ("colour", "blue")])
        .await;
    assert_eq!(posted.status, 404);
    // And a post without the form's CSRF token is refused.
    let forged = admin
        .post_raw("/admin/labels", &[("name", "Forged"), ("colour", "blue")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.store.labels().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_agent_labels_a_ticket_the_timeline_says_so_and_the_list_filters_by_it() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let vip = add_label(&app, &mut admin, "VIP", "purple").await;
    let bug = add_label(&app, &mut admin, "Bug", "orange").await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let printer = raise(&mut grace, "Printer jams").await;
    raise(&mut grace, "Invoice wrong").await;

    let path = format!("/console/tickets/{printer}");
    let page = alan.get(&path).await.expect_status(200);
    assert!(page.contains("No labels.") && page.contains("Add a label"));
    alan.submit(&format!("{path}/labels"), &[("label", &vip.to_string())])
        .await
        .expect_redirect(&path);
    // Twice is once: no second timeline entry.
    alan.get(&path).await;
    alan.submit(&format!("{path}/labels"), &[("label", &vip.to_string())])
        .await
        .expect_redirect(&path);
    let page = alan.get(&path).await;
    assert!(page.contains("label label-purple"));
    assert_eq!(page.body.matches("Label added: VIP").count(), 1);

    // An unknown label is a clear refusal.
    let refused = alan
        .submit(&format!("{path}/labels"), &[("label", "9999")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.contains("Choose a label from the list"));

    // The list shows the chip and filters by the label.
    let all = alan.get("/console").await.expect_status(200);
    assert!(all.contains("Printer jams") && all.contains("Invoice wrong"));
    assert!(all.contains("label label-purple"));
    let only = alan.get(&format!("/console?label={vip}")).await;
    assert!(only.contains("Printer jams") && !only.contains("Invoice wrong"));
    let none = alan.get(&format!("/console?label={bug}")).await;
    assert!(none.contains("No tickets match these filters."));
    assert!(
        alan.get(&format!("/console?label={vip}&page=2"))
            .await
            .contains("No tickets match"),
        "the label filter keeps to its pages"
    );

    // Taken off: the timeline says so, the filter no longer finds it.
    alan.get(&path).await;
    alan.submit(&format!("{path}/labels/{vip}/remove"), &[])
        .await
        .expect_redirect(&path);
    let page = alan.get(&path).await;
    assert!(page.contains("Label removed: VIP"));
    assert!(!page.contains("label label-purple"));
    assert!(
        alan.get(&format!("/console?label={vip}"))
            .await
            .contains("No tickets match")
    );

    // The customer never sees labels or their timeline entries.
    let theirs = grace.get(&format!("/tickets/{printer}")).await;
    assert!(!theirs.contains("VIP") && !theirs.contains("Label added"));
}

#[tokio::test]
async fn a_bulk_action_changes_the_ticked_tickets_and_says_which_were_refused_and_why() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let urgent = add_label(&app, &mut admin, "Escalated", "red").await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    app.agent(&mut admin, "Bob", "bob@example.com").await;
    let bob = user_id(&app, "bob@example.com").await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let free = raise(&mut grace, "Nobody owns me").await;
    let bobs = raise(&mut grace, "Bob owns me").await;
    let untouched = raise(&mut grace, "Not ticked").await;
    // The admin gives the second ticket to Bob.
    admin.get(&format!("/console/tickets/{bobs}")).await;
    admin
        .submit(
            &format!("/console/tickets/{bobs}/update"),
            &[("assignee", &bob.to_string())],
        )
        .await
        .expect_redirect(&format!("/console/tickets/{bobs}"));

    // Nothing ticked, or nothing chosen: said plainly.
    let list = alan.get("/console").await.expect_status(200);
    assert!(list.contains("name=\"ticket\"") && list.contains("Apply to ticked"));
    let none = alan
        .submit("/console/bulk", &[("set_status", "resolved")])
        .await;
    assert_eq!(none.status, 422);
    assert!(none.contains("Tick the tickets to change first."));
    let nothing = alan
        .submit("/console/bulk", &[("ticket", &free.to_string())])
        .await;
    assert_eq!(nothing.status, 422);
    assert!(nothing.contains("Choose a label, an assignee, a status or a priority"));

    // Alan resolves and labels both: his colleague's ticket is refused by
    // the same rule as on its own page, and keeps its labels as they were.
    alan.get("/console").await;
    let done = alan
        .submit(
            "/console/bulk",
            &[
                ("ticket", &free.to_string()),
                ("ticket", &bobs.to_string()),
                ("add_label", &urgent.to_string()),
                ("set_status", "resolved"),
                ("back", "status=&label="),
            ],
        )
        .await
        .expect_status(200);
    assert!(
        done.contains("1 ticket changed, 1 refused."),
        "{}",
        done.body
    );
    assert!(done.contains(&format!("#{bobs}</a>: Bob owns this conversation")));
    let ticket = |n: i64| {
        let store = app.store.clone();
        async move {
            store
                .ticket_by_number(careline::model::TicketNumber(n))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let changed = ticket(free).await;
    assert_eq!(changed.status, careline::model::TicketStatus::Resolved);
    assert_eq!(changed.labels.len(), 1);
    let refused = ticket(bobs).await;
    assert_eq!(refused.status, careline::model::TicketStatus::Open);
    assert!(refused.labels.is_empty());
    let other = ticket(untouched).await;
    assert!(other.labels.is_empty() && other.status == careline::model::TicketStatus::Open);

    // The same again changes nothing more, and says so.
    alan.get("/console").await;
    let again = alan
        .submit(
            "/console/bulk",
            &[
                ("ticket", &free.to_string()),
                ("add_label", &urgent.to_string()),
                ("set_status", "resolved"),
            ],
        )
        .await
        .expect_status(200);
    assert!(again.contains("0 tickets changed, 1 already as asked."));

    // Assignee and priority alike, for the admin (who may reassign).
    admin.get("/console").await;
    admin
        .submit(
            "/console/bulk",
            &[
                ("ticket", &bobs.to_string()),
                ("ticket", &untouched.to_string()),
                ("set_assignee", "none"),
                ("set_priority", "urgent"),
            ],
        )
        .await
        .expect_status(200);
    for n in [bobs, untouched] {
        let t = ticket(n).await;
        assert!(t.assignee.is_none() && t.priority == careline::model::Priority::Urgent);
    }
}

#[tokio::test]
async fn the_api_lists_labels_puts_them_on_and_off_and_filters_by_them() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let vip = add_label(&app, &mut admin, "VIP", "teal").await;
    let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let read = make_token(&mut alan, "reader", "read").await;
    let write = make_token(&mut alan, "writer", "write").await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let printer = raise(&mut grace, "Printer jams").await;
    raise(&mut grace, "Invoice wrong").await;

    let (status, labels) = call(&app, &read, Method::GET, "/api/v1/labels").await;
    assert_eq!(status, 200);
    assert_eq!(
        labels,
        json!([{"id": vip, "name": "VIP", "colour": "teal"}])
    );

    let path = format!("/api/v1/tickets/{printer}/labels/{vip}");
    let (status, body) = call(&app, &read, Method::PUT, &path).await;
    assert_eq!(status, 403, "a read token changes nothing: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    let (status, ticket) = call(&app, &write, Method::PUT, &path).await;
    assert_eq!(status, 200, "{ticket}");
    assert_eq!(
        ticket["labels"],
        json!([{"id": vip, "name": "VIP", "colour": "teal"}])
    );
    // Again: the same answer, no second entry.
    let (status, _) = call(&app, &write, Method::PUT, &path).await;
    assert_eq!(status, 200);

    let (status, listed) = call(
        &app,
        &read,
        Method::GET,
        &format!("/api/v1/tickets?label={vip}"),
    )
    .await;
    assert_eq!(status, 200);
    let numbers: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [printer]);
    let (status, bad) = call(&app, &read, Method::GET, "/api/v1/tickets?label=vip").await;
    assert_eq!(status, 422);
    assert_eq!(bad["error"]["field"], "label");

    // Unknown label, bad id: named.
    let (status, bad) = call(
        &app,
        &write,
        Method::PUT,
        &format!("/api/v1/tickets/{printer}/labels/9999"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(bad["error"]["field"], "label");
    let (status, bad) = call(
        &app,
        &write,
        Method::PUT,
        &format!("/api/v1/tickets/{printer}/labels/abc"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(bad["error"]["field"], "label_id");
    let (status, _) = call(
        &app,
        &write,
        Method::PUT,
        &format!("/api/v1/tickets/999999/labels/{vip}"),
    )
    .await;
    assert_eq!(status, 404);

    // The customer sees neither the labels nor their timeline entries.
    let theirs = grace
        .get(&format!("/api/v1/tickets/{printer}"))
        .await
        .json();
    assert_eq!(theirs["ticket"]["labels"], json!([]));
    assert!(!theirs["timeline"].to_string().contains("label_added"));
    let (status, _, _) = send(&app, &write, Method::DELETE, &path, json!({}), None).await;
    assert_eq!(status, 200);
    let (_, view) = call(
        &app,
        &read,
        Method::GET,
        &format!("/api/v1/tickets/{printer}"),
    )
    .await;
    assert_eq!(view["ticket"]["labels"], json!([]));
    let kinds: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.starts_with("label_"))
            .collect::<Vec<_>>(),
        [&"label_added", &"label_removed"]
    );
    // A customer's filter by label is no way to learn of labels.
    let theirs = grace
        .get(&format!("/api/v1/tickets?label={vip}"))
        .await
        .json();
    assert_eq!(theirs.as_array().unwrap().len(), 2);
}
