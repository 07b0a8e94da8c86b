//! Every form on every page sends what its handler reads. A form whose
//! field names drift from its handler's (the people page's role form once
//! sent `role_email` to a handler reading `email`) fails for every real
//! person while tests that post hand-written fields pass; here the fields
//! come from the pages themselves, as a browser sends them.

mod support;

use support::browser::Browser;
use support::forms::{Form, post_forms};
use support::{Database, TestApp, ticket_number};

/// Forms not submitted: logging out would end the crawl, and the bot test
/// calls Watson at the address typed in (the internet, from a test).
const SKIPPED: [&str; 2] = ["/logout", "/admin/bot/test"];

/// Submits every POST form of each page in turn, as a browser would, and
/// checks that the handler could read it. Returns how many were sent.
async fn submit_every_form(b: &mut Browser, pages: &[&str]) -> usize {
    let mut sent = 0;
    for path in pages {
        let page = b.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let forms: Vec<Form> = post_forms(&page.body)
            .into_iter()
            .filter(|f| !f.multipart && !SKIPPED.contains(&f.action.as_str()))
            .collect();
        for form in forms {
            let fields: Vec<(&str, &str)> = form
                .fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let answer = b.post_raw(&form.action, &fields).await;
            let what = format!(
                "{path} → POST {} {fields:?}: {}",
                form.action, answer.status
            );
            for unread in [
                "The form is missing a field or has a bad value",
                "The form could not be read",
                "This form has expired or was sent from another site",
            ] {
                assert!(
                    !answer.contains(unread),
                    "{what}: {unread}\n{}",
                    answer.body
                );
            }
            assert!(
                ![403, 405, 500].contains(&answer.status),
                "{what}\n{}",
                answer.body
            );
            sent += 1;
        }
    }
    sent
}

#[tokio::test]
async fn every_form_on_every_page_sends_what_its_handler_reads() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    app.agent(&mut admin, "Alan", "alan@example.com").await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await.expect_status(200);
    let raised = grace
        .submit(
            "/tickets",
            &[
                ("subject", "My order"),
                ("description", "It has not arrived."),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(raised.location.as_deref().unwrap());
    // A FAQ entry and a canned reply, so that their edit and delete forms show.
    admin.get("/admin/faq").await;
    admin
        .submit(
            "/admin/faq",
            &[("questions", "When are you open?"), ("answer", "9 to 5.")],
        )
        .await;
    admin.get("/admin/canned").await;
    admin
        .submit(
            "/admin/canned",
            &[("title", "Hello"), ("body", "Hello, how can I help?")],
        )
        .await;
    // A label, so that its forms and the ticket's label forms show.
    admin.get("/admin/labels").await;
    admin
        .submit("/admin/labels", &[("name", "Refund"), ("colour", "red")])
        .await
        .expect_redirect("/admin/labels?done=added");

    let mut sent = 0;
    let ticket = format!("/tickets/{number}");
    sent += submit_every_form(&mut grace, &["/tickets/new", &ticket, "/account"]).await;
    let console_ticket = format!("/console/tickets/{number}");
    sent += submit_every_form(
        &mut admin,
        &[
            "/admin/people",
            "/admin/sites",
            "/admin/bot",
            "/admin/faq",
            "/admin/canned",
            "/admin/labels",
            "/console",
            &console_ticket,
            "/account",
        ],
    )
    .await;
    // Resolved, the customer's page shows the rating form.
    admin.get(&console_ticket).await;
    admin
        .submit(
            &format!("{console_ticket}/update"),
            &[("status", "resolved")],
        )
        .await
        .expect_status(303);
    let page = grace.get(&ticket).await;
    assert!(page.contains("/rate\""), "the rating form shows");
    sent += submit_every_form(&mut grace, &[&ticket]).await;
    let mut visitor = app.browser();
    sent += submit_every_form(&mut visitor, &["/login", "/register", "/password/forgot"]).await;
    assert!(
        sent >= 20,
        "only {sent} forms found: the pages changed shape?"
    );
}
#[test]
fn reads_what_a_browser_would_send() {
    let html = r#"<form method="get" action="/search"><input name="q"></form>
<form method="post" action="/a?x=1&amp;y=2"><input type="hidden" name="csrf" value="t&quot;1">
<input id="e" name="email" type="email" value="">
<input type="checkbox" name="off"><input type="checkbox" name="on" checked>
<select name="role"><option value="a">a</option><option value="b" selected>b</option></select>
<textarea name="body"></textarea><button type="submit" name="go" value="yes">Go</button></form>
<form method="post" action="/up" enctype="multipart/form-data"><input type="file" name="f"></form>"#;
    let forms = post_forms(html);
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0].action, "/a?x=1&y=2");
    let fields: Vec<(&str, &str)> = forms[0]
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("csrf", "t\"1"),
            ("email", "someone@example.com"),
            ("on", "on"),
            ("role", "b"),
            ("body", "Filled in by the test"),
            ("go", "yes"),
        ]
    );
    assert!(forms[1].multipart && forms[1].fields.is_empty());
}
