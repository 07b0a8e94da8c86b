//! The admins' report page over real flows: portal tickets, replies,
//! assignment, resolution, a rating and a chat the bot answered alone, on
//! every database backend.

mod support;

use serde_json::json;
use support::databases::backends;
use support::{Browser, TestApp, ticket_number};

/// An agent replies on a ticket's page, then assigns it to `assignee` with
/// `status`, as the page's forms do.
async fn answer_and_take(
    agent: &mut Browser,
    number: i64,
    reply: &str,
    assignee: &str,
    status: &str,
) {
    let page = format!("/console/tickets/{number}");
    agent.get(&page).await;
    agent
        .submit(&format!("{page}/reply"), &[("body", reply)])
        .await
        .expect_redirect(&page);
    agent.get(&page).await;
    agent
        .submit(
            &format!("{page}/update"),
            &[
                ("status", status),
                ("priority", "normal"),
                ("assignee", assignee),
            ],
        )
        .await
        .expect_redirect(&page);
}

#[tokio::test]
async fn the_report_counts_what_the_team_did_and_only_admins_see_it() {
    for db in backends("reports").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut alan = app
            .agent(&mut admin, "Alan Agent", "alan@example.com")
            .await;
        let mut bea = app.agent(&mut admin, "Bea Agent", "bea@example.com").await;
        let mut grace = app.customer("Grace", "grace@example.com").await;

        // Nothing yet: every figure says so instead of showing zeros as times.
        let empty = admin.get("/admin/reports").await.expect_status(200);
        assert!(
            empty.contains(r#"<dd id="opened">0</dd>"#),
            "{}",
            empty.body
        );
        assert!(empty.contains("none yet") && empty.contains("no ratings yet"));

        let mut numbers = Vec::new();
        for subject in ["Printer", "Invoice", "Login"] {
            grace.get("/tickets/new").await;
            let created = grace
                .submit(
                    "/tickets",
                    &[
                        ("subject", subject),
                        ("description", "Help"),
                        ("priority", "normal"),
                    ],
                )
                .await;
            assert_eq!(created.status, 303, "{}", created.body);
            numbers.push(ticket_number(created.location.as_deref().unwrap()));
        }
        let id_of = |email: &str| {
            let store = app.store.clone();
            let email = email.to_string();
            async move {
                store
                    .staff()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|u| u.email == email)
                    .unwrap()
                    .id
                    .to_string()
            }
        };
        let (alan_id, bea_id) = (
            id_of("alan@example.com").await,
            id_of("bea@example.com").await,
        );

        // Alan answers the first, takes it and resolves it; Grace gives 5 stars.
        let first = numbers[0];
        answer_and_take(&mut alan, first, "On it", &alan_id, "resolved").await;
        grace.get(&format!("/tickets/{first}")).await;
        grace
            .submit(
                &format!("/tickets/{first}/rate"),
                &[("score", "5"), ("comment", "")],
            )
            .await
            .expect_redirect(&format!("/tickets/{first}#rate"));
        // Bea answers the second and keeps it open; the third waits.
        answer_and_take(&mut bea, numbers[1], "Looking", &bea_id, "open").await;

        // A widget chat the FAQ bot answers, with no person involved.
        let site = app.allow_shop().await;
        let mut visitor = app.visitor(&site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": "v1", "body": "What are your opening hours?"}))
            .await;
        visitor
            .expect(|f| {
                f["type"] == "message"
                    && f["sender"]["kind"] == "bot"
                    && f["body"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("Monday to Friday")
            })
            .await;

        let report = admin.get("/admin/reports").await.expect_status(200);
        for (figure, value) in [
            ("conversations", "4"),
            ("opened", "3"),
            ("resolved", "1"),
            ("awaiting", "1"),
        ] {
            assert!(
                report.contains(&format!(r#"<dd id="{figure}">{value}</dd>"#)),
                "{figure} should be {value}: {}",
                report.body
            );
        }
        assert!(
            report.contains(r#"<dd id="bot-only">1 (25 %)</dd>"#),
            "{}",
            report.body
        );
        assert!(
            report.contains("(2 tickets)"),
            "two first answers: {}",
            report.body
        );
        assert!(report.contains("5.0 of 5 stars, 100 % 4 or 5 (1 rating)"));
        let people = &report.body[report.body.find(r#"id="people""#).unwrap()..];
        let row = |name: &str| {
            let start = people
                .find(name)
                .unwrap_or_else(|| panic!("{name} missing"));
            people[start..].split("</tr>").next().unwrap().to_string()
        };
        assert!(
            row("Alan Agent").contains("<td>1</td>"),
            "{}",
            row("Alan Agent")
        );
        assert!(row("Alan Agent").contains("1 rating"));
        assert!(row("Bea Agent").contains("<td>0</td>") && row("Bea Agent").contains("(1 ticket)"));
        assert!(report.contains(r#"href="/admin/reports" aria-current="page""#));

        // Other periods by link; anything else is a clear error.
        let month = admin.get("/admin/reports?days=30").await.expect_status(200);
        assert!(month.contains(r#"href="/admin/reports?days=30" aria-current="page""#));
        assert!(month.contains(r#"<dd id="opened">3</dd>"#));
        let bad = admin
            .get("/admin/reports?days=365")
            .await
            .expect_status(422);
        assert!(bad.contains("A report covers the last 7, 30 or 90 days."));

        // Agents, customers and strangers do not get it.
        alan.get("/admin/reports").await.expect_status(404);
        grace.get("/admin/reports").await.expect_status(404);
        let stranger = app.browser().get("/admin/reports").await;
        assert_eq!(
            stranger.location.as_deref(),
            Some("/login?next=%2Fadmin%2Freports"),
            "{}",
            stranger.status
        );
        eprintln!("reports passed on {db:?}");
    }
}
