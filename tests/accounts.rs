//! Accounts over real HTTP: first-run setup, registration, login and
//! logout, sessions and cookies, rate limits and CSRF.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores, a new binary costs more than a long file); each case reads alone,
//! top to bottom.

mod support;

use support::{Database, TestApp};

#[tokio::test]
async fn first_visit_offers_setup_which_needs_the_printed_token_and_then_disappears() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let token = app
        .setup_token
        .clone()
        .expect("a fresh install has a setup token");
    let mut b = app.browser();
    b.get("/").await.expect_redirect("/setup");
    let page = b.get("/setup").await.expect_status(200);
    assert!(
        page.contains("Setup token"),
        "without the token in the link, the form asks for it"
    );

    // A wrong token creates nothing.
    let refused = b
        .submit(
            "/setup",
            &[
                ("token", "guess"),
                ("name", "Mallory"),
                ("email", "m@example.com"),
                ("password", "mallory password"),
            ],
        )
        .await
        .expect_status(403);
    assert!(refused.contains("setup token is not right"));
    assert!(!app.store.any_admin_exists().await.unwrap());

    b.get(&format!("/setup?token={token}"))
        .await
        .expect_status(200);
    b.submit(
        "/setup",
        &[
            ("token", &token),
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", "admin password 1"),
        ],
    )
    .await
    .expect_redirect("/login?setup=done");
    assert!(app.store.any_admin_exists().await.unwrap());

    b.get("/setup").await.expect_status(404);
    b.get("/").await.expect_status(200);
    b.login("ada@example.com", "admin password 1").await;
    let console = b.get("/console").await.expect_status(200);
    assert!(console.contains("Tickets"));
}

#[tokio::test]
async fn customer_registers_logs_out_and_logs_back_in() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let _admin = app.admin().await;
    let mut b = app.customer("Grace Hopper", "grace@example.com").await;
    let dashboard = b.get("/dashboard").await.expect_status(200);
    assert!(dashboard.contains("Grace Hopper"));
    assert!(dashboard.contains("You have no tickets yet"));

    b.get("/dashboard").await;
    b.submit("/logout", &[]).await.expect_redirect("/");
    b.get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");

    b.login("GRACE@example.com", "customer password").await;
    b.get("/dashboard").await.expect_status(200);
}

#[tokio::test]
async fn registration_errors_are_shown_next_to_the_field() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.browser();
    b.get("/register").await;
    let page = b
        .submit(
            "/register",
            &[
                ("name", "Grace"),
                ("email", "not-an-email"),
                ("password", "customer password"),
            ],
        )
        .await
        .expect_status(422);
    assert!(
        page.contains(
            r#"<p class="error" id="email-error">Enter an email address like name@example.com.</p>"#
        ),
        "{}",
        page.body
    );
    assert!(
        page.contains(r#"value="Grace""#),
        "what the person typed is kept"
    );

    let page = b
        .submit(
            "/register",
            &[
                ("name", "Grace"),
                ("email", "grace@example.com"),
                ("password", "short"),
            ],
        )
        .await
        .expect_status(422);
    assert!(page.contains(r#"id="password-error">Use at least 10 characters."#));

    app.customer("Grace", "grace@example.com").await;
    let mut again = app.browser();
    again.get("/register").await;
    let page = again
        .submit(
            "/register",
            &[
                ("name", "Imposter"),
                ("email", "Grace@Example.com"),
                ("password", "another password"),
            ],
        )
        .await
        .expect_status(422);
    assert!(page.contains("An account with this email already exists"));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn(Database::Sqlite).await;
    app.customer("Grace", "grace@example.com").await;
    let mut b = app.browser();
    b.get("/login").await;
    let wrong = b
        .submit(
            "/login",
            &[
                ("email", "grace@example.com"),
                ("password", "wrong password"),
            ],
        )
        .await;
    let unknown = b
        .submit(
            "/login",
            &[
                ("email", "nobody@example.com"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let message = "wrong email or password";
    assert!(wrong.contains(message) && unknown.contains(message));
    assert!(
        !b.cookies.contains_key("careline_session"),
        "no session after a failed login"
    );
}

#[tokio::test]
async fn session_cookie_is_http_only_same_site_and_rotated_at_login() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.customer("Grace", "grace@example.com").await;
    let first = b
        .cookies
        .get("careline_session")
        .cloned()
        .expect("session cookie");

    // Logging in again from a logged-in browser (the form token comes from any page).
    b.get("/dashboard").await;
    let page = b
        .submit(
            "/login",
            &[
                ("email", "grace@example.com"),
                ("password", "customer password"),
            ],
        )
        .await;
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("careline_session="))
        .expect("login sets a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http on localhost: no Secure flag"
    );
    let second = b.cookies.get("careline_session").cloned().unwrap();
    assert_ne!(first, second, "a new token at each login");

    // The old token no longer works.
    let mut thief = app.browser();
    thief.cookies.insert("careline_session".into(), first);
    thief
        .get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");

    // Logout ends the session on the server, not just in the browser.
    b.get("/dashboard").await;
    b.submit("/logout", &[]).await;
    let mut replay = app.browser();
    replay.cookies.insert("careline_session".into(), second);
    replay
        .get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_https() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.public_url = "https://support.example.com".into()
    })
    .await;
    let mut b = app.browser();
    let page = b.get("/register").await;
    assert!(
        page.set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-careline_csrf=") && c.contains("Secure"))
    );
    let page = b
        .submit(
            "/register",
            &[
                ("name", "Grace"),
                ("email", "grace@example.com"),
                ("password", "customer password"),
            ],
        )
        .await
        .expect_redirect("/dashboard");
    let cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-careline_session="))
        .unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.customer("Grace", "grace@example.com").await;
    b.get("/tickets/new").await;
    let fields = [
        ("subject", "Forged"),
        ("description", "from another site"),
        ("priority", "normal"),
    ];
    let missing = b.post_raw("/tickets", &fields).await.expect_status(403);
    assert!(missing.contains("expired or was sent from another site"));
    let mut forged = vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")];
    forged.extend_from_slice(&fields);
    b.post_raw("/tickets", &forged).await.expect_status(403);
    // A token from another browser does not match this browser's cookie.
    let mut other = app.browser();
    other.get("/register").await;
    let stolen = other.csrf.clone().unwrap();
    let mut with_stolen = vec![("csrf", stolen.as_str())];
    with_stolen.extend_from_slice(&fields);
    b.post_raw("/tickets", &with_stolen)
        .await
        .expect_status(403);
    // A token paired with a cookie the attacker planted does not work in a
    // logged-in session: tokens are bound to the session.
    let mut attacker = app.browser();
    attacker.get("/login").await;
    let planted_cookie = attacker.cookies.get("careline_csrf").cloned().unwrap();
    let planted_token = attacker.csrf.clone().unwrap();
    b.cookies.insert("careline_csrf".into(), planted_cookie);
    let mut with_planted = vec![("csrf", planted_token.as_str())];
    with_planted.extend_from_slice(&fields);
    b.post_raw("/tickets", &with_planted)
        .await
        .expect_status(403);
    // Logout and login forms are protected too.
    b.post_raw("/logout", &[]).await.expect_status(403);
    b.post_raw(
        "/login",
        &[
            ("email", "grace@example.com"),
            ("password", "customer password"),
        ],
    )
    .await
    .expect_status(403);

    let dashboard = b.get("/dashboard").await.expect_status(200);
    assert!(
        dashboard.contains("You have no tickets yet"),
        "nothing was created"
    );
}

#[tokio::test]
async fn login_is_rate_limited_per_client_and_a_spoofed_forwarded_header_does_not_help() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.auth_rate_limit_burst = 3;
        c.auth_rate_limit_per_minute = 1;
    })
    .await;
    let mut b = app.browser();
    b.get("/login").await;
    for _ in 0..3 {
        b.submit(
            "/login",
            &[("email", "x@example.com"), ("password", "wrong password")],
        )
        .await
        .expect_status(401);
    }
    let limited = b
        .submit(
            "/login",
            &[("email", "x@example.com"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(limited.status, 429);
    assert!(limited.contains("Too many attempts"));
    // Careline trusts no proxy by default: claiming another address changes nothing.
    b.headers
        .push(("X-Forwarded-For".into(), "203.0.113.77".into()));
    let spoofed = b
        .submit(
            "/login",
            &[("email", "x@example.com"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(spoofed.status, 429);
    // Pages themselves are not limited.
    b.get("/login").await.expect_status(200);
}

#[tokio::test]
async fn instances_sharing_redis_give_a_guesser_one_budget_not_one_each() {
    let Some(mut redis) = support::redis::PrivateRedis::start("shared login limit").await else {
        return;
    };
    let url = redis.url();
    let tweak = |c: &mut careline::config::RawConfig| {
        c.redis_url = url.clone();
        c.trusted_proxies = "127.0.0.1".into();
        c.auth_rate_limit_burst = 3;
        c.auth_rate_limit_per_minute = 1;
    };
    let one = TestApp::spawn_with(Database::Sqlite, tweak).await;
    let two = TestApp::spawn_with(Database::Sqlite, tweak).await;
    let wrong = [("email", "x@example.com"), ("password", "wrong password")];
    let from = |app: &TestApp, address: &str| {
        let mut b = app.browser();
        b.headers.push(("X-Forwarded-For".into(), address.into()));
        b
    };
    let mut on_one = from(&one, "203.0.113.5");
    let mut on_two = from(&two, "203.0.113.5");
    on_one.get("/login").await;
    on_two.get("/login").await;
    // Three attempts spread over both instances, as a load balancer would.
    on_one.submit("/login", &wrong).await.expect_status(401);
    on_two.submit("/login", &wrong).await.expect_status(401);
    on_one.submit("/login", &wrong).await.expect_status(401);
    // The fourth reaches the instance that saw one: refused all the same.
    let limited = on_two.submit("/login", &wrong).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.contains("Too many attempts"));
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Someone else, through the same instances, is not held up.
    let mut other = from(&two, "198.51.100.9");
    other.get("/login").await;
    other.submit("/login", &wrong).await.expect_status(401);

    // Redis gone: each instance's own limit still holds (three a minute
    // here, for an address it has not seen), and logins still work.
    redis.stop();
    let mut during = from(&one, "192.0.2.44");
    during.get("/login").await;
    for _ in 0..3 {
        during.submit("/login", &wrong).await.expect_status(401);
    }
    during.submit("/login", &wrong).await.expect_status(429);
}

#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address_for_rate_limits() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.auth_rate_limit_burst = 1;
        c.auth_rate_limit_per_minute = 1;
        c.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    let mut b = app.browser();
    b.get("/login").await;
    for client in ["198.51.100.1", "198.51.100.2"] {
        b.headers = vec![("X-Forwarded-For".into(), client.into())];
        b.submit(
            "/login",
            &[("email", "x@example.com"), ("password", "wrong password")],
        )
        .await
        .expect_status(401);
    }
    b.headers = vec![("X-Forwarded-For".into(), "198.51.100.1".into())];
    let limited = b
        .submit(
            "/login",
            &[("email", "x@example.com"), ("password", "wrong password")],
        )
        .await;
    assert_eq!(
        limited.status, 429,
        "each forwarded client has its own budget"
    );
}

#[tokio::test]
async fn profile_and_password_changes() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.customer("Grace", "grace@example.com").await;
    let mut other_device = app.browser();
    other_device
        .login("grace@example.com", "customer password")
        .await;

    b.get("/account").await.expect_status(200);
    b.submit("/account/profile", &[("name", "Grace B. Hopper")])
        .await
        .expect_redirect("/account?saved=profile");
    assert!(b.get("/dashboard").await.contains("Grace B. Hopper"));

    b.get("/account").await;
    let wrong = b
        .submit(
            "/account/password",
            &[
                ("current_password", "not it at all"),
                ("new_password", "brand new password"),
            ],
        )
        .await
        .expect_status(422);
    assert!(wrong.contains("That is not your current password."));
    b.submit(
        "/account/password",
        &[
            ("current_password", "customer password"),
            ("new_password", "brand new password"),
        ],
    )
    .await
    .expect_redirect("/account?saved=password");

    // This browser stays logged in; the other device is logged out.
    b.get("/dashboard").await.expect_status(200);
    other_device
        .get("/dashboard")
        .await
        .expect_redirect("/login?next=%2Fdashboard");
    let mut fresh = app.browser();
    fresh.login("grace@example.com", "brand new password").await;
}

#[tokio::test]
async fn login_redirects_only_to_local_paths() {
    let app = TestApp::spawn(Database::Sqlite).await;
    app.customer("Grace", "grace@example.com").await;
    for hostile in [
        "//evil.example/",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example",
        "/x\n",
    ] {
        let mut b = app.browser();
        b.get("/login").await;
        let fields = [
            ("email", "grace@example.com"),
            ("password", "customer password"),
            ("next", hostile),
        ];
        let page = b.submit("/login", &fields).await;
        assert_eq!(page.location.as_deref(), Some("/dashboard"), "{hostile:?}");
        // Already logged in, the login page redirects too: same rule.
        let encoded = hostile
            .replace('\t', "%09")
            .replace('\n', "%0A")
            .replace('\\', "%5C");
        let page = b.get(&format!("/login?next={encoded}")).await;
        assert_eq!(page.location.as_deref(), Some("/dashboard"), "{hostile:?}");
    }
    let mut b = app.browser();
    b.get("/login").await;
    let fields = [
        ("email", "grace@example.com"),
        ("password", "customer password"),
        ("next", "/tickets/new?x=1"),
    ];
    let page = b.submit("/login", &fields).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/tickets/new?x=1"),
        "local paths are kept"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let mut b = app.browser();
    assert_eq!(b.get("/healthz").await.expect_status(200).body, "ok");
    let ready = b.get("/readyz").await.expect_status(200);
    // Every answer names its request and the instance that gave it.
    assert_eq!(ready.headers["x-request-id"].len(), 12);
    assert_eq!(
        ready.headers["x-careline-instance"],
        app.addr.to_string().as_str()
    );
    let ready = ready.json();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["database"], "sqlite");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_counts_only() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    visitor.send(serde_json::json!({"type": "start", "client_msg_id": "m1", "body": "When are you open?"})).await;
    visitor
        .expect(|f| f["type"] == "message" && f["sender"]["kind"] == "bot")
        .await;
    let page = app.browser().get("/metrics").await.expect_status(200);
    assert!(
        page.content_type
            .as_deref()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    for line in [
        "careline_sockets_open 1",
        "careline_messages_in_total 1",
        "careline_bot_seconds_count 1",
        "careline_bot_failures_total 0",
        "careline_bus_connected 1",
        "careline_email_outbox_pending 0",
    ] {
        assert!(
            page.body.lines().any(|l| l == line),
            "missing `{line}` in\n{}",
            page.body
        );
    }
    assert!(
        page.body
            .contains("careline_delivery_publish_seconds_bucket{le=\"0.005\"}")
    );
    assert!(
        !page.body.contains("When are you open"),
        "no message bodies"
    );
    // Beside Careline's own figures, what every service reports: HTTP
    // requests by route and status with their latency, the process, and the
    // database pool.
    let widget_bootstrap = page.body.lines().find(|l| {
        l.starts_with("careline_http_requests_total{")
            && l.contains(r#"route="/api/widget/v1/session""#)
            && l.contains(r#"status="200""#)
    });
    assert!(widget_bootstrap.is_some(), "{}", page.body);
    for name in [
        "careline_http_request_duration_seconds_bucket{",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
        "careline_db_pool_connections ",
        "careline_db_pool_max 5",
    ] {
        assert!(
            page.body.lines().any(|l| l.starts_with(name)),
            "missing `{name}` in\n{}",
            page.body
        );
    }
    let ready = app.browser().get("/readyz").await.expect_status(200).json();
    assert_eq!(ready["bus"], "local");
}

/// `/metrics` as someone else would ask for it: status and body.
async fn metrics_as(app: &TestApp, headers: &[(&str, &str)]) -> (u16, String) {
    let client = careline::http_client(std::time::Duration::from_secs(10));
    let mut request = client.get(format!("{}/metrics", app.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_refused_to_a_forwarded_request_and_to_a_wrong_token() {
    // No token: this machine only, and not through a proxy.
    let app =
        TestApp::spawn_with(Database::Sqlite, |c| c.trusted_proxies = "127.0.0.1".into()).await;
    let (status, body) = metrics_as(&app, &[]).await;
    assert_eq!(status, 200, "{body}");
    // What nginx sends for a visitor from outside, and a visitor's attempt
    // to pass as local through it: both refused, with what to do.
    for forwarded in ["203.0.113.7", "127.0.0.1, 203.0.113.7", "127.0.0.1"] {
        let (status, body) = metrics_as(&app, &[("x-forwarded-for", forwarded)]).await;
        assert_eq!(status, 403, "{forwarded}: {body}");
        assert!(body.contains("CARELINE_METRICS_TOKEN"), "{body}");
        assert!(!body.contains("careline_"), "no figures leak: {body}");
    }
    // Whichever header the proxy is set to write.
    for header in [
        ("forwarded", "for=203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-host", "support.example.com"),
        ("via", "1.1 nginx"),
    ] {
        let (status, body) = metrics_as(&app, &[header]).await;
        assert_eq!(status, 403, "{header:?}: {body}");
        assert!(!body.contains("careline_"), "no figures leak: {body}");
    }

    // With a token: the token from anywhere, nothing without it.
    let token = "0123456789abcdef0123";
    let app = TestApp::spawn_with(Database::Sqlite, |c| c.metrics_token = token.into()).await;
    let bearer = format!("Bearer {token}");
    let (status, body) = metrics_as(
        &app,
        &[
            ("authorization", &bearer),
            ("x-forwarded-for", "203.0.113.7"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("careline_sockets_open"), "{body}");
    for headers in [
        vec![],
        vec![("authorization", "Bearer 0123456789abcdef0124")],
        vec![("authorization", "Bearer ")],
        vec![("authorization", token)],
    ] {
        let (status, body) = metrics_as(&app, &headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(!body.contains("careline_"), "{body}");
    }
}
