//! The one way out to the network (`careline::egress`), over real sockets.
//! Every form of an internal address an admin could give Watson is refused
//! on the admin page, by the connection test and in a customer's chat, and
//! a canary listener on loopback proves that no connection was made; the
//! Watson the operator listed still works; plain http only where allowed;
//! answers are bounded in size and in time; a name is looked up once,
//! the connection pinned to the answer that was checked; and https://
//! trusts the system's roots only.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use careline::Adapters;
use careline::adapter::BoxFuture;
use careline::egress::{Allowed, Dns, EgressError, Limits, Policy};
use serde_json::json;
use support::fakes::{
    Canary, FakeWatson, WATSON_ASSISTANT, WATSON_KEY, WATSON_VERSION, allow_host, redirecting_to,
};
use support::{Browser, Database, Page, TestApp};

const LIST_IT: &str =
    "Careline does not call internal addresses unless `egress_allowed_hosts` lists it";

/// A DNS of fixed answers that counts its lookups by name; each name may
/// have a list of answers, one per lookup, the last one repeated.
#[derive(Default)]
struct FakeDns {
    answers: HashMap<String, Vec<IpAddr>>,
    lookups: std::sync::Mutex<HashMap<String, usize>>,
}

impl FakeDns {
    fn new(names: &[(&str, &[&str])]) -> FakeDns {
        FakeDns {
            answers: names
                .iter()
                .map(|(name, ips)| {
                    let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
                    (name.to_string(), ips)
                })
                .collect(),
            lookups: Default::default(),
        }
    }

    fn lookups(&self, name: &str) -> usize {
        self.lookups.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl Dns for FakeDns {
    fn lookup<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        let mut lookups = self.lookups.lock().unwrap();
        let n = lookups.entry(name.to_string()).or_default();
        let answer = self.answers.get(name).and_then(|ips| {
            let ip = ips.get(*n).or(ips.last())?;
            Some(vec![SocketAddr::new(*ip, port)])
        });
        *n += 1;
        Box::pin(async move {
            answer.ok_or_else(|| std::io::Error::other("failed to lookup address information"))
        })
    }
}

/// Saves Watson's settings through the admin page.
async fn save(admin: &mut Browser, url: &str, iam_url: &str) -> Page {
    admin.get("/admin/bot").await.expect_status(200);
    admin
        .submit(
            "/admin/bot",
            &[
                ("kind", "watson"),
                ("url", url),
                ("assistant_id", WATSON_ASSISTANT),
                ("api_key", WATSON_KEY),
                ("version", WATSON_VERSION),
                ("iam_url", iam_url),
                ("min_confidence", "0.3"),
                ("fallback", "person"),
            ],
        )
        .await
}

/// Presses "Test connection"; the page it leads to when it failed.
async fn failed_test(admin: &mut Browser) -> String {
    admin.get("/admin/bot").await.expect_status(200);
    let redirect = admin.submit("/admin/bot/test", &[]).await;
    let location = redirect.location.clone().expect("the test redirects");
    assert!(location.starts_with("/admin/bot?test=failed"), "{location}");
    admin.get(&location).await.body
}

/// The URLs stored as an install may hold them from before the policy
/// (no form checked them), then the connection test.
async fn stored_then_tested(app: &TestApp, admin: &mut Browser, url: &str, iam: &str) -> String {
    app.store
        .save_settings(&[
            ("bot.watson.url", url.to_string()),
            ("bot.watson.iam_url", iam.to_string()),
        ])
        .await
        .unwrap();
    failed_test(admin).await
}

#[tokio::test]
async fn no_form_of_an_internal_address_is_ever_connected_to() {
    let canary = Canary::start().await;
    let c = canary.port;
    let watson = FakeWatson::start().await;
    let (redirect, redirected) =
        redirecting_to(&format!("http://127.0.0.1:{c}/identity/token")).await;
    let dns = Arc::new(FakeDns::new(&[
        ("canary.example.test", &["127.0.0.1"]),
        ("redirect.example.test", &["127.0.0.1"]),
    ]));
    let adapters = Adapters {
        dns: Some(dns.clone()),
        ..Adapters::default()
    };
    let app = TestApp::spawn_full(
        Database::Sqlite,
        |config| {
            watson.allow(config);
            allow_host(
                config,
                &format!("redirect.example.test:{}", redirect.port()),
            );
        },
        adapters,
    )
    .await;
    let site = app.allow_shop().await;
    let mut admin = app.admin().await;

    // The listed Watson works through the same page: what follows is
    // refused for its address, not because the path is broken.
    let iam = format!("{}/identity/token", watson.base);
    save(&mut admin, &watson.base, &iam)
        .await
        .expect_redirect("/admin/bot?done=saved");
    admin.get("/admin/bot").await;
    admin
        .submit("/admin/bot/test", &[])
        .await
        .expect_redirect("/admin/bot?test=ok");

    let loopback = |ip: &str| format!("{ip} is a loopback address; {LIST_IT}");
    let v6 = canary.v6_port.unwrap_or(c);
    let written: Vec<(String, String)> = vec![
        (format!("http://127.0.0.1:{c}"), loopback("127.0.0.1")),
        (format!("https://localhost:{c}"), loopback("localhost")),
        (format!("https://localhost.:{c}/v1"), loopback("localhost")),
        (format!("https://[::1]:{v6}"), loopback("::1")),
        (
            format!("https://[::ffff:127.0.0.1]:{c}"),
            loopback("::ffff:127.0.0.1"),
        ),
        (format!("https://0x7f000001:{c}"), loopback("127.0.0.1")),
        (format!("https://2130706433:{c}"), loopback("127.0.0.1")),
        (
            format!("https://0.0.0.0:{c}"),
            format!("0.0.0.0 is an unspecified address (it reaches this machine); {LIST_IT}"),
        ),
        (
            "https://169.254.169.254/latest/meta-data/".into(),
            format!("169.254.169.254 is a cloud metadata address; {LIST_IT}"),
        ),
        (
            "file:///etc/passwd".into(),
            "file: URLs are not allowed: Careline calls https:// URLs only".into(),
        ),
        (
            format!("gopher://127.0.0.1:{c}/_GET"),
            "gopher: URLs are not allowed: Careline calls https:// URLs only".into(),
        ),
    ];
    for (url, why) in &written {
        // Refused when saved, the field named…
        let page = save(&mut admin, url, &iam).await.expect_status(422);
        assert!(
            page.contains(&format!("Careline will not call the service URL: {why}.")),
            "{url}: {}",
            page.body
        );
        // …and when it was stored already: refused on every call, as the
        // service URL (after a good token) and as the IAM URL.
        let shown = stored_then_tested(&app, &mut admin, url, &iam).await;
        assert!(
            shown.contains(&format!("The connection failed: the service URL: {why}")),
            "{url}: {shown}"
        );
        let shown = stored_then_tested(&app, &mut admin, &watson.base, url).await;
        assert!(
            shown.contains(&format!("The connection failed: the IAM token URL: {why}")),
            "{url}: {shown}"
        );
        assert_eq!(canary.connections().await, 0, "{url} was connected to");
    }

    // A name that resolves to loopback: the form cannot tell without DNS,
    // every call can.
    let name = format!("https://canary.example.test:{c}/api");
    save(&mut admin, &name, &iam)
        .await
        .expect_redirect("/admin/bot?done=saved");
    let shown = failed_test(&mut admin).await;
    let why = format!("canary.example.test resolves to 127.0.0.1, a loopback address; {LIST_IT}");
    assert!(
        shown.contains(&format!("the service URL: {why}")),
        "{shown}"
    );
    assert!(dns.lookups("canary.example.test") > 0, "judged after DNS");
    // A customer's chat meanwhile: the bot is refused the same way, and
    // the customer reaches a person.
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "a", "body": "hello"}))
        .await;
    visitor
        .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
        .await;
    assert_eq!(canary.connections().await, 0, "the chat connected");

    // A listed, outside-looking server that redirects to loopback: the
    // redirect is reported, not followed.
    let via = format!(
        "http://redirect.example.test:{}/identity/token",
        redirect.port()
    );
    save(&mut admin, &watson.base, &via)
        .await
        .expect_redirect("/admin/bot?done=saved");
    let shown = failed_test(&mut admin).await;
    assert!(
        shown.contains(
            "the IAM token URL: redirect.example.test answered 302 Found, a redirect; \
             Careline follows no redirects"
        ),
        "{shown}"
    );
    assert_eq!(
        redirected.load(Ordering::SeqCst),
        1,
        "the listed server was called"
    );
    assert_eq!(canary.connections().await, 0, "the redirect was followed");
    assert!(
        !shown.contains(&format!("127.0.0.1:{c}")),
        "nothing of the answer is shown"
    );

    // The canary does count a connection when one is made.
    let _made = tokio::net::TcpStream::connect(("127.0.0.1", c))
        .await
        .unwrap();
    assert_eq!(canary.connections().await, 1);
}

#[tokio::test]
async fn plain_http_is_refused_unless_the_operator_allows_it() {
    let canary = Canary::start().await;
    let listed = format!("127.0.0.1:{}", canary.port);
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        allow_host(c, &listed);
        c.egress_allow_http = false;
    })
    .await;
    let mut admin = app.admin().await;
    let url = format!("http://{listed}");
    let why = "http:// is not allowed: Careline calls https:// URLs \
               (an operator may allow http:// with `egress_allow_http`)";
    let page = save(&mut admin, &url, &format!("{url}/identity/token"))
        .await
        .expect_status(422);
    assert!(page.contains(why), "{}", page.body);
    // Saved with public https:// URLs (and the API key), then changed in
    // the store as an older install may hold them.
    save(
        &mut admin,
        "https://api.watson.example.com",
        "https://iam.example.com/identity/token",
    )
    .await
    .expect_redirect("/admin/bot?done=saved");
    let shown = stored_then_tested(&app, &mut admin, &url, &url).await;
    assert!(
        shown.contains(&format!("the IAM token URL: {why}")),
        "{shown}"
    );
    assert_eq!(canary.connections().await, 0);
}

/// A server on 127.0.0.1 with answers of known sizes.
async fn sized_answers() -> SocketAddr {
    let router = Router::new()
        .route("/exact", get(|| async { "x".repeat(1000) }))
        .route("/over", get(|| async { "x".repeat(1001) }))
        .route(
            "/streamed",
            get(|| async {
                // No Content-Length: only counting the bytes stops it.
                let chunks = (0..11).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 100]));
                Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn listing(entry: &str) -> Policy {
    Policy::new(true, vec![Allowed::parse(entry).unwrap()])
}

#[tokio::test]
async fn an_answer_is_read_up_to_its_limit_and_no_further() {
    let server = sized_answers().await;
    let egress = listing(&server.to_string()).client(Limits {
        timeout: Duration::from_secs(10),
        max_answer_bytes: 1000,
    });
    let get = |path: &str| {
        let url = format!("http://{server}{path}");
        let egress = &egress;
        async move { egress.send(reqwest::Method::GET, &url, |r| r).await }
    };
    let exact = get("/exact").await.expect("1000 bytes are read");
    assert_eq!(exact.body.len(), 1000);
    for path in ["/over", "/streamed"] {
        let err = get(path).await.expect_err(path);
        assert!(
            matches!(err, EgressError::TooLarge { .. }),
            "{path}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "127.0.0.1's answer is larger than 1000 bytes; it was not read"
        );
    }
}

#[tokio::test]
async fn a_silent_service_is_given_up_at_the_timeout() {
    let canary = Canary::start().await;
    let egress = listing(&format!("127.0.0.1:{}", canary.port)).client(Limits {
        timeout: Duration::from_millis(300),
        max_answer_bytes: 1000,
    });
    let started = Instant::now();
    let err = egress
        .send(
            reqwest::Method::GET,
            &format!("http://127.0.0.1:{}/", canary.port),
            |r| r,
        )
        .await
        .expect_err("no answer");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, EgressError::TimedOut { .. }), "{err:?}");
    assert_eq!(err.to_string(), "127.0.0.1 did not answer within 300 ms");
    assert!(err.may_pass());
    assert_eq!(canary.connections().await, 1, "listed: it was called");
}

#[tokio::test]
async fn a_name_is_looked_up_once_and_the_connection_goes_to_the_checked_answer() {
    // A service on 127.0.0.1 and, on the same port of 127.0.0.2, a canary:
    // DNS answers the first, then "rebinds" the name to the second.
    let router = Router::new().route("/", get(|| async { "the checked one" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let canary = match tokio::net::TcpListener::bind(("127.0.0.2", port)).await {
        Ok(canary) => canary,
        Err(e) => {
            support::cannot_run(
                "a_name_is_looked_up_once_and_the_connection_goes_to_the_checked_answer",
                &format!("cannot listen on 127.0.0.2:{port}: {e}"),
            );
            return;
        }
    };
    let reached = Arc::new(AtomicUsize::new(0));
    let count = reached.clone();
    tokio::spawn(async move {
        while canary.accept().await.is_ok() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dns = Arc::new(FakeDns::new(&[(
        "rebind.example.test",
        &["127.0.0.1", "127.0.0.2"],
    )]));
    let policy = listing("127.0.0.1").with_dns(dns.clone());
    let egress = policy.client(Limits {
        timeout: Duration::from_secs(10),
        max_answer_bytes: 1000,
    });
    let url = format!("http://rebind.example.test:{port}/");
    for _ in 0..3 {
        let answer = egress
            .send(reqwest::Method::GET, &url, |r| r)
            .await
            .expect("the checked address answers");
        assert_eq!(&answer.body[..], b"the checked one");
    }
    assert_eq!(dns.lookups("rebind.example.test"), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the rebound address was reached"
    );

    // A new client looks the name up again, and the rebound answer is
    // judged like any other.
    let err = policy
        .client(Limits {
            timeout: Duration::from_secs(10),
            max_answer_bytes: 1000,
        })
        .send(reqwest::Method::GET, &url, |r| r)
        .await
        .expect_err("127.0.0.2 is not listed");
    assert_eq!(
        err.to_string(),
        format!("rebind.example.test resolves to 127.0.0.2, a loopback address; {LIST_IT}")
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn https_is_checked_against_the_systems_roots() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    careline::install_tls();
    // A TLS server whose certificate a private test CA signed.
    let certs = support::tls::Certs::make();
    let chain = CertificateDer::pem_file_iter(&certs.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let count = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(socket).await;
            });
        }
    });
    let egress = listing(&format!("127.0.0.1:{port}")).client(Limits {
        timeout: Duration::from_secs(10),
        max_answer_bytes: 1000,
    });
    let err = egress
        .send(
            reqwest::Method::GET,
            &format!("https://127.0.0.1:{port}/"),
            |r| r,
        )
        .await
        .expect_err("a CA Careline does not trust");
    assert_eq!(
        err.to_string(),
        "cannot reach 127.0.0.1: TLS: bad certificate: the server's certificate \
         is not signed by a CA Careline trusts"
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}
