//! Tickets over real HTTP: a customer raises one, an agent works it, the
//! customer follows the progress; and every refusal around it.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores, a new binary costs more than a long file); each case reads alone,
//! top to bottom.

mod support;

use support::databases::backends;
use support::{Database, TestApp, ticket_number};

#[tokio::test]
async fn customer_raises_a_ticket_agent_replies_and_customer_sees_progress() {
    for db in backends("ticket story").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut agent = app
            .agent(&mut admin, "Alan Agent", "alan@example.com")
            .await;
        let mut grace = app.customer("Grace", "grace@example.com").await;

        // The customer raises a ticket.
        grace.get("/tickets/new").await.expect_status(200);
        let created = grace
            .submit(
                "/tickets",
                &[
                    ("subject", "Cannot print invoices"),
                    ("description", "The PDF is blank."),
                    ("priority", "high"),
                ],
            )
            .await;
        assert_eq!(created.status, 303, "{}", created.body);
        let number = ticket_number(created.location.as_deref().unwrap());
        assert_eq!(number, 1001);
        let page = grace
            .get(&format!("/tickets/{number}"))
            .await
            .expect_status(200);
        assert!(page.contains("#1001 Cannot print invoices"));
        assert!(page.contains("The PDF is blank."));
        assert!(page.contains("Ticket opened"));
        assert!(
            grace
                .get("/dashboard")
                .await
                .contains("Cannot print invoices")
        );

        // The agent finds it unassigned, replies, writes a private note,
        // takes it and sets it pending.
        let queue = agent
            .get("/console?assignee=unassigned")
            .await
            .expect_status(200);
        assert!(queue.contains("Cannot print invoices") && queue.contains("grace@example.com"));
        agent
            .get(&format!("/console/tickets/{number}"))
            .await
            .expect_status(200);
        agent
            .submit(
                &format!("/console/tickets/{number}/reply"),
                &[("body", "Which printer driver do you use?")],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{number}"));
        agent.get(&format!("/console/tickets/{number}")).await;
        agent
            .submit(
                &format!("/console/tickets/{number}/note"),
                &[("note", "Customer is on the legacy plan")],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{number}"));
        let agent_id = app
            .store
            .staff()
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.email == "alan@example.com")
            .unwrap()
            .id;
        agent.get(&format!("/console/tickets/{number}")).await;
        agent
            .submit(
                &format!("/console/tickets/{number}/update"),
                &[
                    ("status", "pending"),
                    ("priority", "urgent"),
                    ("assignee", &agent_id.to_string()),
                ],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{number}"));
        let console = agent.get(&format!("/console/tickets/{number}")).await;
        assert!(
            console.contains("Customer is on the legacy plan"),
            "agents see notes"
        );
        assert!(console.contains("Status changed from open to pending"));
        assert!(console.contains("Assigned to Alan Agent"));
        assert!(
            agent
                .get("/console?assignee=me")
                .await
                .contains("Cannot print invoices")
        );

        // The customer sees the reply and the progress, but never the note.
        let page = grace
            .get(&format!("/tickets/{number}"))
            .await
            .expect_status(200);
        assert!(page.contains("Which printer driver do you use?"));
        assert!(page.contains("Status changed from open to pending"));
        assert!(page.contains("Priority changed from high to urgent"));
        assert!(page.contains("Assigned to Alan Agent"));
        assert!(
            !page.contains("legacy plan"),
            "private notes never reach the customer"
        );
        assert!(!page.contains("Private note added"));

        // The customer's reply reopens it.
        grace
            .submit(
                &format!("/tickets/{number}/reply"),
                &[("body", "Driver 4.2")],
            )
            .await
            .expect_redirect(&format!("/tickets/{number}"));
        let page = grace.get(&format!("/tickets/{number}")).await;
        assert!(page.contains("Status changed from pending to open"));
        assert!(page.contains("Driver 4.2"));
        eprintln!("ticket story passed on {db:?}");
    }
}

#[tokio::test]
async fn another_customers_ticket_answers_404_everywhere() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let mut mallory = app.customer("Mallory", "mallory@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Secret subject"),
                ("description", "Secret body"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());

    let page = mallory
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(404);
    assert!(!page.contains("Secret"));
    let missing = mallory.get("/tickets/999999").await.expect_status(404);
    assert_eq!(
        page.body, missing.body,
        "the same answer whether it exists or not"
    );
    let api = mallory
        .get(&format!("/api/v1/tickets/{number}"))
        .await
        .expect_status(404);
    assert_eq!(api.json()["error"]["code"], "not_found");
    assert!(!api.body.contains("Secret"));
    let list = mallory
        .get("/api/v1/tickets")
        .await
        .expect_status(200)
        .json();
    assert_eq!(list.as_array().unwrap().len(), 0);

    mallory.get("/dashboard").await;
    mallory
        .submit(&format!("/tickets/{number}/reply"), &[("body", "injected")])
        .await
        .expect_status(404);
    assert!(
        !grace
            .get(&format!("/tickets/{number}"))
            .await
            .contains("injected"),
        "nothing was written"
    );
}

#[tokio::test]
async fn customers_cannot_reach_agent_or_admin_pages() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Mine"),
                ("description", "Body"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());

    for path in [
        "/console",
        &format!("/console/tickets/{number}"),
        "/admin/people",
    ] {
        grace.get(path).await.expect_status(404);
    }
    grace.get("/dashboard").await;
    grace
        .submit(
            &format!("/console/tickets/{number}/update"),
            &[("status", "closed")],
        )
        .await
        .expect_status(404);
    grace.get("/dashboard").await;
    grace
        .submit(&format!("/console/tickets/{number}/note"), &[("note", "x")])
        .await
        .expect_status(404);
    grace.get("/dashboard").await;
    grace
        .submit(
            "/admin/people/role",
            &[("role_email", "grace@example.com"), ("role", "admin")],
        )
        .await
        .expect_status(404);
    let page = grace.get(&format!("/tickets/{number}")).await;
    assert!(page.contains(r#"class="badge badge-open""#), "still open");
    assert!(
        !page.contains("Status changed") && !page.contains("Private note"),
        "nothing changed"
    );

    // Anonymous visitors are sent to log in.
    let mut anon = app.browser();
    anon.get("/console")
        .await
        .expect_redirect("/login?next=%2Fconsole");
    let api = anon.get("/api/v1/tickets").await.expect_status(401).json();
    assert_eq!(api["error"]["code"], "unauthorized");
    assert!(api["error"]["message"].as_str().unwrap().contains("log in"));
}

#[tokio::test]
async fn private_notes_never_reach_the_customer_api() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Help"),
                ("description", "Body"),
                ("priority", "low"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/note"),
            &[("note", "internal only: refund approved")],
        )
        .await;

    let customer_json = grace
        .get(&format!("/api/v1/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(!customer_json.body.contains("refund approved"));
    assert!(!customer_json.body.contains("\"note\""));
    let json = customer_json.json();
    assert_eq!(json["ticket"]["number"], number);
    assert_eq!(json["messages"].as_array().unwrap().len(), 1);

    let staff_json = admin
        .get(&format!("/api/v1/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(staff_json.body.contains("refund approved"));

    // Assign it and reply: the customer learns the agent's name, never their
    // email or id, and their own message numbering has no gap where the note is.
    let admin_id = app.store.staff().await.unwrap()[0].id.to_string();
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/update"),
            &[("assignee", &admin_id)],
        )
        .await
        .expect_redirect(&format!("/console/tickets/{number}"));
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/reply"),
            &[("body", "Refund is on its way")],
        )
        .await
        .expect_redirect(&format!("/console/tickets/{number}"));
    let json = grace
        .get(&format!("/api/v1/tickets/{number}"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(json["ticket"]["assignee"]["name"], "Ada Admin");
    assert!(json["ticket"]["assignee"].get("email").is_none());
    assert!(json["ticket"]["assignee"].get("id").is_none());
    let seqs = |v: &serde_json::Value| -> Vec<i64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        seqs(&json),
        vec![1, 2],
        "the customer's numbering skips nothing"
    );
    let staff = admin.get(&format!("/api/v1/tickets/{number}")).await.json();
    assert_eq!(seqs(&staff), vec![1, 2, 3]);
    assert_eq!(staff["ticket"]["assignee"]["email"], "admin@example.com");
    let kinds = |v: &serde_json::Value| -> Vec<String> {
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!kinds(&json).contains(&"note".to_string()));
    assert!(
        kinds(&json).contains(&"agent_reply".to_string()),
        "{:?}",
        kinds(&json)
    );
    assert!(kinds(&staff).contains(&"note".to_string()));
}

#[tokio::test]
async fn markup_in_user_input_is_shown_as_text() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let evil = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"#;
    let mut grace = app.customer(evil, "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", evil),
                ("description", evil),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    for page in [
        grace.get(&format!("/tickets/{number}")).await,
        grace.get("/dashboard").await,
        admin.get(&format!("/console/tickets/{number}")).await,
        admin.get("/console").await,
    ] {
        assert!(
            !page.contains("<script>alert(1)"),
            "raw markup in {}",
            page.body
        );
        assert!(!page.contains("<img src=x"), "raw markup");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}

#[tokio::test]
async fn bad_ticket_input_gets_a_clear_error_and_stores_nothing() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let page = grace
        .submit(
            "/tickets",
            &[
                ("subject", "   "),
                ("description", "Body"),
                ("priority", "normal"),
            ],
        )
        .await
        .expect_status(422);
    assert!(
        page.contains(r#"id="subject-error">Say in a few words what the ticket is about."#),
        "{}",
        page.body
    );
    assert!(page.contains(">Body</textarea>"), "the description is kept");
    let page = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Ok"),
                ("description", "Body"),
                ("priority", "whenever"),
            ],
        )
        .await
        .expect_status(422);
    assert!(page.contains("Choose a priority from the list."));
    let long = "x".repeat(8001);
    let page = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Ok"),
                ("description", &long),
                ("priority", "low"),
            ],
        )
        .await
        .expect_status(422);
    assert!(page.contains("Use at most 8000 characters"));
    assert!(
        grace
            .get("/dashboard")
            .await
            .contains("You have no tickets yet")
    );
}

#[tokio::test]
async fn console_filters_and_search() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let mut linus = app.customer("Linus", "linus@example.org").await;
    grace.get("/tickets/new").await;
    grace
        .submit(
            "/tickets",
            &[
                ("subject", "Refund please"),
                ("description", "b"),
                ("priority", "low"),
            ],
        )
        .await;
    linus.get("/tickets/new").await;
    linus
        .submit(
            "/tickets",
            &[
                ("subject", "Kernel panic"),
                ("description", "b"),
                ("priority", "urgent"),
            ],
        )
        .await;

    let only = |page: &support::Page, yes: &str, no: &str| {
        assert!(page.contains(yes), "expected {yes}");
        assert!(!page.contains(no), "did not expect {no}");
    };
    only(
        &admin.get("/console?priority=urgent").await,
        "Kernel panic",
        "Refund please",
    );
    only(
        &admin.get("/console?q=refund").await,
        "Refund please",
        "Kernel panic",
    );
    only(
        &admin.get("/console?q=linus%40example").await,
        "Kernel panic",
        "Refund please",
    );
    only(
        &admin.get("/console?q=%231001").await,
        "Refund please",
        "Kernel panic",
    );
    only(
        &admin.get("/console?status=open&assignee=unassigned").await,
        "Kernel panic",
        "No tickets match",
    );
    assert!(
        admin
            .get("/console?status=closed")
            .await
            .contains("No tickets match these filters.")
    );
}

#[tokio::test]
async fn admin_adds_agents_and_changes_roles() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut agent = app.agent(&mut admin, "Alan", "alan@example.com").await;
    agent.get("/console").await.expect_status(200);
    agent.get("/admin/people").await.expect_status(404);

    // Promote a customer to agent by email.
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/console").await.expect_status(404);
    let page = admin.get("/admin/people").await;
    // The fields the page's form sends (once, its `email` was not).
    assert!(page.contains(r#"name="role_email""#) && page.contains(r#"name="role""#));
    admin
        .submit(
            "/admin/people/role",
            &[("role_email", "grace@example.com"), ("role", "agent")],
        )
        .await
        .expect_redirect("/admin/people?done=role");
    grace.get("/console").await.expect_status(200);

    // An admin cannot demote themselves, and unknown emails get a clear error.
    admin.get("/admin/people").await;
    let page = admin
        .submit(
            "/admin/people/role",
            &[("role_email", "admin@example.com"), ("role", "agent")],
        )
        .await
        .expect_status(422);
    assert!(page.contains("You cannot remove your own admin role"));
    let page = admin
        .submit(
            "/admin/people/role",
            &[("role_email", "ghost@example.com"), ("role", "agent")],
        )
        .await
        .expect_status(422);
    assert!(page.contains("Nobody has an account with this email."));
    // Staff accounts cannot be created as customers through the admin page.
    let page = admin
        .submit(
            "/admin/people",
            &[
                ("name", "X"),
                ("email", "x@example.com"),
                ("role", "customer"),
            ],
        )
        .await
        .expect_status(422);
    assert!(page.contains("Choose agent or admin."));
}

/// The live chat's ownership rules hold on the ticket pages too
/// (src/domain/ownership.rs): once Alan owns a conversation, Bea may add a
/// private note but not answer the customer, take it, give it away or
/// resolve it; an admin may resolve and reassign it, but answers only
/// after taking it over.
#[tokio::test]
async fn the_ticket_pages_keep_the_owner_rules_of_the_live_chat() {
    for db in backends("ticket ownership").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut alan = app.agent(&mut admin, "Alan", "alan@example.com").await;
        let mut bea = app.agent(&mut admin, "Bea", "bea@example.com").await;
        let mut grace = app.customer("Grace", "grace@example.com").await;
        grace.get("/tickets/new").await.expect_status(200);
        let created = grace
            .submit(
                "/tickets",
                &[("subject", "Broken printer"), ("description", "It jams.")],
            )
            .await;
        let number = ticket_number(created.location.as_deref().unwrap());
        let staff = app.store.staff().await.unwrap();
        let id_of = |email: &str| {
            staff
                .iter()
                .find(|u| u.email == email)
                .unwrap()
                .id
                .to_string()
        };
        let (alan_id, bea_id) = (id_of("alan@example.com"), id_of("bea@example.com"));
        let ticket = format!("/console/tickets/{number}");

        // Alan takes it (nobody owned it: any agent may).
        alan.get(&ticket).await;
        alan.submit(&format!("{ticket}/update"), &[("assignee", &alan_id)])
            .await
            .expect_redirect(&ticket);

        // Bea is refused everything that is the owner's, with a reason.
        bea.get(&ticket).await;
        let refused = [
            ("reply", vec![("body", "I can help!")]),
            ("update", vec![("assignee", bea_id.as_str())]),
            ("update", vec![("assignee", "")]),
            ("update", vec![("status", "resolved")]),
            ("update", vec![("status", "closed")]),
        ];
        for (action, fields) in &refused {
            let page = bea.submit(&format!("{ticket}/{action}"), fields).await;
            assert_eq!(page.status, 422, "{db:?}: {action} {fields:?}");
            assert!(
                page.body.contains("Alan owns this conversation")
                    || page
                        .body
                        .contains("only the agent who owns it (or an admin)"),
                "{db:?}: {action} {fields:?} says why: {}",
                page.body
            );
            bea.get(&ticket).await;
        }
        // What is not the owner's is any agent's: a note, the priority.
        bea.submit(&format!("{ticket}/note"), &[("note", "Known jam issue")])
            .await
            .expect_redirect(&ticket);
        bea.get(&ticket).await;
        bea.submit(&format!("{ticket}/update"), &[("priority", "high")])
            .await
            .expect_redirect(&ticket);
        let view = alan.get(&ticket).await;
        assert!(!view.contains("I can help!"), "{db:?}: no reply was stored");
        assert!(view.contains("Assigned to Alan"), "{db:?}");
        assert!(!view.contains("Assigned to Bea"), "{db:?}");
        assert!(!view.contains("Status changed from open to resolved"));

        // The admin answers only after taking it over, and may resolve.
        admin.get(&ticket).await;
        let page = admin
            .submit(&format!("{ticket}/reply"), &[("body", "Admin here")])
            .await;
        assert_eq!(page.status, 422, "{db:?}");
        admin.get(&ticket).await;
        admin
            .submit(&format!("{ticket}/update"), &[("assignee", &bea_id)])
            .await
            .expect_redirect(&ticket);
        // Now Bea owns it: she answers and resolves.
        bea.get(&ticket).await;
        bea.submit(&format!("{ticket}/reply"), &[("body", "Fixed it")])
            .await
            .expect_redirect(&ticket);
        bea.get(&ticket).await;
        bea.submit(&format!("{ticket}/update"), &[("status", "resolved")])
            .await
            .expect_redirect(&ticket);
        let view = grace.get(&format!("/tickets/{number}")).await;
        assert!(view.contains("Fixed it") && view.contains("Status changed from open to resolved"));
        eprintln!("ticket ownership passed on {db:?}");
    }
}

/// Hidden characters (controls, direction overrides) are taken out of a
/// ticket's subject and description on the way in; the description keeps
/// its lines, the subject is one line.
#[tokio::test]
async fn hidden_characters_never_reach_a_tickets_subject_or_thread() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await.expect_status(200);
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Invoice\r\nfor\u{202e}fdp.exe\u{0}"),
                ("description", "Line one\u{1b}[31m\r\nline two\u{7}"),
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
    assert_eq!(ticket.subject, "Invoice  forfdp.exe");
    let thread = app
        .store
        .messages(ticket.conversation_id, true)
        .await
        .unwrap();
    assert_eq!(thread[0].body, "Line one[31m\nline two");
    let page = grace.get(&format!("/tickets/{number}")).await;
    assert!(!page.body.contains('\u{0}') && !page.body.contains('\u{202e}'));
}
