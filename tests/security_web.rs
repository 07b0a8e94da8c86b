//! The security suite, HTTP side: what an intruder tries against pages and
//! the API, each with the refusal it must meet. (More cases live beside the
//! features they guard: CSRF and cookies in accounts.rs, IDOR in tickets.rs,
//! origins and frames in chat_contract.rs; docs/security.md lists them all.)

mod support;

use support::{Database, TestApp, ticket_number};

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut anon = app.browser();
    for (as_admin, path) in [
        (false, "/login"),
        (false, "/register"),
        (true, "/console"),
        (true, "/console/chat"),
        (true, "/admin/people"),
    ] {
        let browser = if as_admin { &mut admin } else { &mut anon };
        let page = browser.get(path).await.expect_status(200);
        let csp = page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("form-action 'self'"), "{path}: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(page.headers["referrer-policy"], "same-origin", "{path}");
        assert!(!page.body.contains("<script>"), "{path}: no inline script");
    }
}

#[tokio::test]
async fn sql_in_search_and_filters_is_just_text() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Ordinary problem"),
                ("description", "x"),
                ("priority", "low"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    for attack in [
        "' OR '1'='1",
        "%' OR 1=1 --",
        "'; DROP TABLE tickets; --",
        "\" OR \"\"=\"",
        "1; DELETE FROM users",
    ] {
        let q =
            serde_urlencoded::to_string([("q", attack), ("status", attack), ("assignee", attack)])
                .unwrap();
        let page = admin.get(&format!("/console?{q}")).await.expect_status(200);
        assert!(
            !page.contains("Ordinary problem"),
            "{attack:?} matched nothing but itself"
        );
        let api = grace
            .get(&format!(
                "/api/v1/tickets?{}",
                serde_urlencoded::to_string([("q", attack)]).unwrap()
            ))
            .await;
        assert_eq!(api.status, 200, "{attack:?}");
        assert_eq!(api.json().as_array().unwrap().len(), 0, "{attack:?}");
        let bad_filter = grace
            .get(&format!(
                "/api/v1/tickets?{}",
                serde_urlencoded::to_string([("status", attack)]).unwrap()
            ))
            .await;
        assert_eq!(
            bad_filter.status, 422,
            "{attack:?}: an unknown status is refused by name"
        );
    }
    // Everything is still there.
    let page = admin
        .get(&format!("/console/tickets/{number}"))
        .await
        .expect_status(200);
    assert!(page.contains("Ordinary problem"));
    admin.get("/admin/people").await.expect_status(200);
}

#[tokio::test]
async fn error_pages_reveal_nothing_internal() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.browser();
    for path in [
        "/tickets/abc",
        "/tickets/99999999999999999999",
        "/console/tickets/%00",
        "/api/v1/tickets/-1",
    ] {
        let page = b.get(path).await;
        assert!(
            page.status >= 300 && page.status < 500,
            "{path}: {}",
            page.status
        );
        for leak in ["sqlx", "panicked", "SELECT", "stack", "src/"] {
            assert!(
                !page.body.contains(leak),
                "{path} leaks {leak}: {}",
                page.body
            );
        }
    }
}

#[tokio::test]
async fn password_hashes_and_tokens_never_reach_a_page_or_the_api() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let session = grace.cookies["careline_session"].clone();
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[("subject", "Hi"), ("description", "x"), ("priority", "low")],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    let pages = [
        admin.get("/admin/people").await,
        admin.get(&format!("/console/tickets/{number}")).await,
        admin.get(&format!("/api/v1/tickets/{number}")).await,
        grace.get("/account").await,
        grace.get(&format!("/api/v1/tickets/{number}")).await,
        admin.get("/admin/outbox").await,
        admin.get("/admin/reports").await,
    ];
    for page in pages {
        assert!(!page.body.contains("$argon2id$"), "no password hash shown");
        assert!(!page.body.contains(&session), "no session token shown");
    }
}

#[tokio::test]
async fn a_script_cannot_mint_widget_visitors_without_bound_but_returning_ones_pass() {
    use support::ws::SHOP_ORIGIN;
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.widget_new_visitors_per_minute = 3).await;
    let site = app.allow_shop().await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let response = app
            .widget_session(SHOP_ORIGIN, serde_json::json!({"site_key": site}))
            .await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        tokens.push(body["visitor_token"].as_str().unwrap().to_string());
    }
    // The fourth new visitor from this address in a minute is refused,
    // readable by the page (CORS) and saying when to come back.
    let refused = app
        .widget_session(SHOP_ORIGIN, serde_json::json!({"site_key": site}))
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        SHOP_ORIGIN
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // An unknown token is a new visitor too: no way around the limit.
    let forged = app
        .widget_session(
            SHOP_ORIGIN,
            serde_json::json!({"site_key": site, "visitor_token": "made-up"}),
        )
        .await;
    assert_eq!(forged.status(), 429);
    // Nor does a forged X-Forwarded-For from an untrusted peer help.
    let spoofed = careline::http_client(std::time::Duration::from_secs(10))
        .post(format!("{}/api/widget/v1/session", app.base))
        .header("Origin", SHOP_ORIGIN)
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&serde_json::json!({"site_key": site}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), 429);
    // Returning visitors (a page load in an office behind one address) are
    // never held back.
    for token in &tokens {
        let again = app
            .widget_session(
                SHOP_ORIGIN,
                serde_json::json!({"site_key": site, "visitor_token": token}),
            )
            .await;
        assert_eq!(again.status(), 200);
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["visitor_token"], token.as_str());
    }
}

/// A valid token is not enough on its own: a browser that says the post
/// comes from another site (`Origin`, `Sec-Fetch-Site`) is refused with a
/// clear 403, and nothing is stored; the same post from Careline's own
/// pages goes through.
#[tokio::test]
async fn forms_from_another_site_are_refused_even_with_a_valid_token() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    let fields = [("subject", "From elsewhere"), ("description", "Hi")];
    let refused: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site"), ("origin", &app.base)],
    ];
    for headers in refused {
        let page = raise_with(&mut grace, headers, &fields).await;
        assert_eq!(page.status, 403, "{headers:?}: {}", page.body);
        assert!(
            page.contains("Careline takes forms only from its own pages"),
            "{headers:?}: {}",
            page.body
        );
        // Scripts' requests (uploads) are held to the same.
        let upload = grace
            .upload(
                "/api/v1/conversations/1/attachments?name=a.txt",
                b"hi".to_vec(),
                true,
            )
            .await;
        assert_eq!(upload.status, 403, "{headers:?}: {}", upload.body);
    }
    let listed = grace.get("/dashboard").await;
    assert!(!listed.contains("From elsewhere"), "nothing was stored");

    // From Careline's own page, as a browser says it: accepted.
    for headers in [
        vec![
            ("origin", app.base.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![("sec-fetch-site", "none")],
        vec![],
    ] {
        let page = raise_with(&mut grace, &headers, &fields).await;
        assert_eq!(page.status, 303, "{headers:?}: {}", page.body);
    }
}

/// Raises a ticket from the form page, the browser sending `headers` with
/// both requests.
async fn raise_with(
    browser: &mut support::browser::Browser,
    headers: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> support::browser::Page {
    browser.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    browser.get("/tickets/new").await.expect_status(200);
    browser.submit("/tickets", fields).await
}
