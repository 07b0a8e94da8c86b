//! Email over real HTTP: the outbox, its delivery worker and the SendGrid
//! client against a fake SendGrid; the flows that send mail (verification,
//! password reset, invitations, tickets opened, replied to and resolved).

mod support;

use support::fakes::{FakeSendGrid, SENDGRID_KEY, SendGridReply};
use support::{Database, TestApp, ticket_number, token_of};

async fn app_with_sendgrid(sendgrid: &FakeSendGrid) -> TestApp {
    let url = sendgrid.base.clone();
    TestApp::spawn_with(Database::Sqlite, move |c| {
        c.sendgrid_url = url;
        c.sendgrid_api_key = SENDGRID_KEY.into();
        c.mail_from = "support@shop.example".into();
        c.mail_poll_ms = 50;
        c.mail_retry_ms = 100;
        c.mail_max_attempts = 3;
    })
    .await
}

async fn wait_status(app: &TestApp, template: &str, status: &str) -> careline::store::OutboxEmail {
    for _ in 0..200 {
        if let Some(email) = app
            .store
            .outbox(50)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.template == template && e.status == status)
        {
            return email;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "no {template} email reached {status}: {:#?}",
        app.store.outbox(50).await.unwrap()
    );
}

#[tokio::test]
async fn a_rate_limited_email_is_retried_after_the_reset_and_delivered_once() {
    let sendgrid = FakeSendGrid::start().await;
    sendgrid.script(&[
        SendGridReply::RateLimited { reset_in_secs: 1 },
        SendGridReply::Accept,
    ]);
    let app = app_with_sendgrid(&sendgrid).await;
    app.customer("Grace", "grace@example.com").await;

    let accepted = sendgrid.wait_accepted(1).await;
    let email = wait_status(&app, "verify_email", "sent").await;
    assert_eq!(email.attempts, 2, "one 429, then one 202");
    assert_eq!(sendgrid.requests().len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sendgrid.accepted().len(), 1, "delivered exactly once");

    let sent = &accepted[0];
    assert_eq!(
        sent["personalizations"][0]["to"][0]["email"],
        "grace@example.com"
    );
    assert_eq!(sent["from"]["email"], "support@shop.example");
    assert_eq!(sent["subject"], "Confirm your email address");
    assert_eq!(sent["content"][0]["type"], "text/plain");
    assert_eq!(sent["content"][1]["type"], "text/html");
    let text = sent["content"][0]["value"].as_str().unwrap();
    assert!(
        text.contains(&format!("{}/verify?token=", app.base)),
        "{text}"
    );
}

#[tokio::test]
async fn a_rejected_email_is_marked_failed_with_the_reason_for_admins() {
    let sendgrid = FakeSendGrid::start().await;
    let app = app_with_sendgrid(&sendgrid).await;
    let mut admin = app.admin().await;
    sendgrid.script(&[SendGridReply::Reject(
        "The from address does not match a verified Sender Identity.",
    )]);
    app.customer("Grace", "grace@example.com").await;
    let failed = wait_status(&app, "verify_email", "failed").await;
    assert_eq!(failed.attempts, 1, "a rejection is not retried");
    assert!(
        failed
            .last_error
            .contains("does not match a verified Sender Identity. (from)"),
        "{}",
        failed.last_error
    );
    let page = admin.get("/admin/outbox").await.expect_status(200);
    assert!(page.contains("does not match a verified Sender Identity"));
    assert!(page.contains("failed"));
}

#[tokio::test]
async fn server_errors_are_retried_then_given_up_after_the_limit() {
    let sendgrid = FakeSendGrid::start().await;
    sendgrid.script(&[
        SendGridReply::ServerError,
        SendGridReply::ServerError,
        SendGridReply::ServerError,
    ]);
    let app = app_with_sendgrid(&sendgrid).await;
    app.customer("Grace", "grace@example.com").await;
    let failed = wait_status(&app, "verify_email", "failed").await;
    assert_eq!(failed.attempts, 3);
    assert!(
        failed.last_error.contains("gave up after 3 attempts"),
        "{}",
        failed.last_error
    );
    assert!(sendgrid.accepted().is_empty());
}

#[tokio::test]
async fn password_reset_from_request_to_new_password() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let mut other_device = app.browser();
    other_device
        .login("grace@example.com", "customer password")
        .await;

    let mut b = app.browser();
    b.get("/password/forgot").await.expect_status(200);
    // Unknown and known addresses get the same answer.
    let unknown = b
        .submit("/password/forgot", &[("email", "nobody@example.com")])
        .await;
    let known = b
        .submit("/password/forgot", &[("email", "grace@example.com")])
        .await;
    assert_eq!(unknown.location, known.location);
    assert_eq!(known.location.as_deref(), Some("/password/forgot?sent=1"));
    assert!(
        app.store
            .outbox(50)
            .await
            .unwrap()
            .iter()
            .all(|e| e.to_email != "nobody@example.com")
    );

    let link = app
        .emailed_link("grace@example.com", "password_reset")
        .await;
    let token = token_of(&link);
    b.get(&link).await.expect_status(200);
    let short = b
        .submit("/password", &[("token", &token), ("password", "short")])
        .await
        .expect_status(422);
    assert!(
        short.contains("Use at least 10 characters."),
        "a bad password does not use up the link"
    );
    b.submit(
        "/password",
        &[("token", &token), ("password", "a brand new password")],
    )
    .await
    .expect_redirect("/login?password=saved");
    // Single use.
    b.get(&link).await;
    let again = b
        .submit(
            "/password",
            &[("token", &token), ("password", "another new password")],
        )
        .await
        .expect_status(422);
    assert!(again.contains("expired or was already used"));
    // Old password gone, new one works, every session ended.
    let mut login = app.browser();
    login.get("/login").await;
    assert_eq!(
        login
            .submit(
                "/login",
                &[
                    ("email", "grace@example.com"),
                    ("password", "customer password")
                ]
            )
            .await
            .status,
        401
    );
    login
        .login("grace@example.com", "a brand new password")
        .await;
    grace
        .get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");
    other_device
        .get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let app = TestApp::spawn(Database::Sqlite).await;
    app.customer("Grace", "grace@example.com").await;
    let mut b = app.browser();
    b.get("/password/forgot").await;
    b.submit("/password/forgot", &[("email", "grace@example.com")])
        .await;
    let link = app
        .emailed_link("grace@example.com", "password_reset")
        .await;
    // Make the token older than its hour.
    let token = token_of(&link);
    let hash = careline::auth::hash_token(&token);
    careline::testing::expire_token(&app.store, &hash).await;
    b.get(&link).await;
    let refused = b
        .submit(
            "/password",
            &[("token", &token), ("password", "a brand new password")],
        )
        .await
        .expect_status(422);
    assert!(refused.contains("expired or was already used"));
}

#[tokio::test]
async fn ticket_emails_opened_replied_and_resolved_with_a_rating_link() {
    let sendgrid = FakeSendGrid::start().await;
    let app = app_with_sendgrid(&sendgrid).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer <jams>"),
                ("description", "Every page"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/reply"),
            &[("body", "Try the <b>rear</b> tray")],
        )
        .await;
    admin.get(&format!("/console/tickets/{number}")).await;
    admin
        .submit(
            &format!("/console/tickets/{number}/update"),
            &[("status", "resolved")],
        )
        .await;

    // verification (registration) + opened + reply + resolved
    let accepted = sendgrid.wait_accepted(4).await;
    let subjects: Vec<&str> = accepted
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects.contains(&format!("We received your request #{number}").as_str()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("New reply on your request #{number}").as_str()),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&format!("Your request #{number} is resolved").as_str()),
        "{subjects:?}"
    );
    let reply = accepted
        .iter()
        .find(|e| e["subject"].as_str().unwrap().starts_with("New reply"))
        .unwrap();
    let html = reply["content"][1]["value"].as_str().unwrap();
    assert!(
        html.contains("Try the &lt;b&gt;rear&lt;/b&gt; tray"),
        "escaped in HTML: {html}"
    );
    assert!(
        reply["content"][0]["value"]
            .as_str()
            .unwrap()
            .contains("Try the <b>rear</b> tray"),
        "plain in text"
    );
    let resolved = accepted
        .iter()
        .find(|e| e["subject"].as_str().unwrap().ends_with("is resolved"))
        .unwrap();
    let rating_link = format!("{}/tickets/{number}#rate", app.base);
    assert!(
        resolved["content"][0]["value"]
            .as_str()
            .unwrap()
            .contains(&rating_link)
    );

    // The rating link's form works.
    let page = grace
        .get(&format!("/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(page.contains(r#"id="rate""#));
    grace
        .submit(
            &format!("/tickets/{number}/rate"),
            &[("score", "4"), ("comment", "Fixed!")],
        )
        .await
        .expect_redirect(&format!("/tickets/{number}#rate"));
    let page = grace.get(&format!("/tickets/{number}")).await;
    assert!(page.contains("Customer rated the help 4/5"));
    assert!(page.contains("You rated this <strong>4 out of 5</strong>"));
    let bad = grace
        .submit(&format!("/tickets/{number}/rate"), &[("score", "9")])
        .await
        .expect_status(422);
    assert!(bad.contains("Choose from 1 to 5 stars."));
    // No star chosen (a client that skips `required`): the same page and
    // advice, not a bare error page, and the earlier rating stands.
    for fields in [vec![("comment", "no stars")], vec![("score", "four")]] {
        let bad = grace
            .submit(&format!("/tickets/{number}/rate"), &fields)
            .await
            .expect_status(422);
        assert!(bad.contains("Choose from 1 to 5 stars."), "{fields:?}");
        assert!(
            bad.contains("How did we do?"),
            "{fields:?}: the ticket page"
        );
    }
    let page = grace.get(&format!("/tickets/{number}")).await;
    assert!(page.contains("You rated this <strong>4 out of 5</strong>"));
}

#[tokio::test]
async fn the_default_mailer_keeps_emails_in_the_outbox() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.mail_poll_ms = 50).await;
    let mut admin = app.admin().await;
    app.customer("Grace", "grace@example.com").await;
    wait_status(&app, "verify_email", "sent").await;
    let page = admin.get("/admin/outbox").await.expect_status(200);
    assert!(page.contains("grace@example.com"));
    assert!(page.contains("No mail service is configured"));
}

/// Careline carries no text of a stranger's choosing to an address nobody
/// proved: the "we received your request" email to an unverified address
/// says neither the name nor the subject typed with it; a verified
/// customer's says both.
#[tokio::test]
async fn an_unverified_address_gets_no_text_its_sender_chose() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let raise = async |email: &str, subject: &str| {
        let mut customer = app.customer("Buy pills at spam.example", email).await;
        customer.get("/tickets/new").await.expect_status(200);
        customer
            .submit("/tickets", &[("subject", subject), ("description", "x")])
            .await
            .expect_status(303);
    };
    raise("stranger@example.com", "Cheap pills at spam.example").await;
    let verified = app
        .store
        .user_with_hash(&careline::model::Email::parse("real@example.com").unwrap())
        .await
        .unwrap();
    assert!(verified.is_none());
    let mut real = app.customer("Ada", "real@example.com").await;
    let ada = app
        .store
        .user_with_hash(&careline::model::Email::parse("real@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .0;
    app.store.set_verified(ada.id).await.unwrap();
    real.get("/tickets/new").await.expect_status(200);
    real.submit(
        "/tickets",
        &[("subject", "Printer jams"), ("description", "x")],
    )
    .await
    .expect_status(303);

    let outbox = app.store.outbox(100).await.unwrap();
    let opened = |to: &str| {
        outbox
            .iter()
            .find(|e| e.template == "ticket_opened" && e.to_email == to)
            .unwrap_or_else(|| panic!("an opened email to {to}: {outbox:?}"))
            .payload
            .clone()
    };
    let stranger = opened("stranger@example.com");
    assert!(!stranger.contains("spam.example"), "{stranger}");
    assert!(stranger.contains("ticket_number"), "{stranger}");
    let real = opened("real@example.com");
    assert!(
        real.contains("Printer jams") && real.contains("Ada"),
        "{real}"
    );
}
