//! Email over SMTP against a real SMTP server on loopback (Python's
//! aiosmtpd, see `support::smtp`): what arrives (one recipient, the
//! threading headers, text and HTML, UTF-8 words encoded), no header a
//! subject or a sender's name can inject, STARTTLS with the test CA (a
//! wrong CA, or a server without STARTTLS, gets nothing), AUTH; and
//! through the real worker and outbox, a 5xx is a failure with the
//! server's words and a 4xx is tried again and delivered once.

mod support;

use std::time::Duration;

use careline::mail::smtp::{Security, Smtp, SmtpSettings};
use careline::mail::{Email, Mailer, SendError, Threading};
use mail_parser::{MessageParser, MimeHeaders};
use support::smtp::{Options, Received, SmtpServer};
use support::tls::Certs;
use support::{Database, TestApp};

const USER: &str = "careline@shop.example";
const PASSWORD: &str = "smtp-test-pass 9Zq";

fn settings(server: &SmtpServer, security: Security, ca: Option<&Certs>) -> SmtpSettings {
    SmtpSettings {
        host: "localhost".into(),
        port: server.port,
        security,
        credentials: Some((USER.into(), PASSWORD.into())),
        ca_file: ca.map(|certs| certs.ca.clone()),
        timeout: Duration::from_secs(10),
        hello_name: Some("careline.shop.example".into()),
        from_email: "support@shop.example".into(),
        from_name: "Søren’s Support".into(),
    }
}

fn email(subject: &str) -> Email {
    Email {
        to: "grace@example.com".into(),
        subject: subject.into(),
        text: "Your answer is ready.\n\n— Careline".into(),
        html: "<p>Your answer is <b>ready</b>.</p>".into(),
        threading: Threading {
            message_id: Some("<careline.17.c42-ab12@shop.example>".into()),
            in_reply_to: Some("<CAF=x7y@mail.gmail.com>".into()),
            reply_to: Some("help+c42-ab12cd@reply.shop.example".into()),
            auto_replied: true,
        },
    }
}

async fn tls_server(test: &str, certs: &Certs, replies: &[&str]) -> Option<SmtpServer> {
    SmtpServer::start(
        test,
        Options {
            tls: Some((&certs.cert, &certs.key)),
            auth: Some((USER, PASSWORD)),
            replies,
            ..Options::default()
        },
    )
    .await
}

fn header(received: &Received, name: &str) -> String {
    let values = received.headers(name);
    assert_eq!(values.len(), 1, "one {name} header: {values:?}");
    values[0].clone()
}

#[tokio::test]
async fn an_email_arrives_over_starttls_with_one_recipient_the_threading_headers_and_both_parts() {
    let certs = Certs::make();
    let Some(server) = tls_server("smtp delivery", &certs, &[]).await else {
        return;
    };
    let smtp = Smtp::new(&settings(&server, Security::StartTls, Some(&certs))).unwrap();
    smtp.send(&email("Re: Ihre Anfrage — déjà vu ✓"))
        .await
        .expect("delivered");

    let received = server.wait_received(1).await;
    let got = &received[0];
    assert!(got.tls, "STARTTLS before the message");
    assert_eq!(got.login.as_deref(), Some(USER), "AUTH as the user");
    assert_eq!(got.mail_from, "support@shop.example");
    assert_eq!(got.rcpt_tos, ["grace@example.com"]);
    assert_eq!(header(got, "To"), "grace@example.com");
    assert!(got.headers("Cc").is_empty() && got.headers("Bcc").is_empty());
    assert_eq!(
        header(got, "Message-ID"),
        "<careline.17.c42-ab12@shop.example>"
    );
    assert_eq!(header(got, "In-Reply-To"), "<CAF=x7y@mail.gmail.com>");
    assert_eq!(header(got, "References"), "<CAF=x7y@mail.gmail.com>");
    assert_eq!(
        header(got, "Reply-To"),
        "help+c42-ab12cd@reply.shop.example"
    );
    assert_eq!(header(got, "Auto-Submitted"), "auto-replied");
    // Non-ASCII travels encoded (RFC 2047): the header lines are ASCII.
    for line in got.header_lines() {
        assert!(line.is_ascii(), "raw UTF-8 in a header: {line:?}");
    }

    let parsed = MessageParser::default().parse(&got.raw).expect("MIME");
    assert_eq!(parsed.subject(), Some("Re: Ihre Anfrage — déjà vu ✓"));
    let from = parsed.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.name(), Some("Søren’s Support"));
    assert_eq!(from.address(), Some("support@shop.example"));
    let content_type = parsed.content_type().expect("Content-Type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    // Lines end in CRLF on the wire.
    assert_eq!(
        parsed
            .body_text(0)
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        "Your answer is ready.\n\n— Careline"
    );
    assert_eq!(
        parsed.body_html(0).unwrap().trim_end(),
        "<p>Your answer is <b>ready</b>.</p>"
    );
}

#[tokio::test]
async fn a_line_break_in_a_subject_or_sender_name_injects_no_header_and_no_recipient() {
    let certs = Certs::make();
    let Some(server) = tls_server("smtp header injection", &certs, &[]).await else {
        return;
    };
    let mut settings = settings(&server, Security::StartTls, Some(&certs));
    settings.from_name = "Support\r\nBcc: evil@example.com".into();
    let smtp = Smtp::new(&settings).unwrap();
    for subject in [
        "Hello\r\nBcc: evil@example.com",
        "Hello\nBcc: evil@example.com\r\nX-Injected: yes",
        "Hello\r\n\r\nBcc: evil@example.com",
    ] {
        smtp.send(&email(subject)).await.expect("delivered");
    }
    let mut threading_broken = email("Hi");
    threading_broken.threading.message_id = Some("<a@b>\r\nBcc: evil@example.com".into());
    smtp.send(&threading_broken).await.expect("delivered");

    let received = server.wait_received(4).await;
    for got in &received {
        assert_eq!(got.rcpt_tos, ["grace@example.com"], "one recipient");
        for line in got.header_lines() {
            let name = line.split(':').next().unwrap().to_ascii_lowercase();
            assert!(
                !matches!(name.as_str(), "bcc" | "cc" | "x-injected"),
                "injected header {line:?} in {:?}",
                got.header_lines()
            );
        }
        assert_eq!(got.headers("From").len(), 1);
        assert_eq!(got.headers("Subject").len(), 1);
    }
    let parsed = MessageParser::default().parse(&received[0].raw).unwrap();
    assert_eq!(parsed.subject(), Some("Hello  Bcc: evil@example.com"));

    // A recipient with a line break is refused before any connection.
    let mut smuggled = email("Hi");
    smuggled.to = "grace@example.com\r\nRCPT TO:<evil@example.com>".into();
    assert!(matches!(
        smtp.send(&smuggled).await,
        Err(SendError::Rejected(_))
    ));
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn a_wrong_ca_or_a_server_without_starttls_gets_nothing() {
    let certs = Certs::make();
    let Some(server) = tls_server("smtp wrong CA", &certs, &[]).await else {
        return;
    };
    let mut wrong = settings(&server, Security::StartTls, Some(&certs));
    wrong.ca_file = Some(certs.other_ca.clone());
    match Smtp::new(&wrong).unwrap().send(&email("Hi")).await {
        Err(SendError::Retry { reason, .. }) => {
            assert!(reason.contains("certificate"), "{reason}")
        }
        other => panic!("a certificate from another CA must be refused: {other:?}"),
    }
    // The system's roots do not vouch for the test CA either.
    let system = settings(&server, Security::StartTls, None);
    assert!(matches!(
        Smtp::new(&system).unwrap().send(&email("Hi")).await,
        Err(SendError::Retry { .. })
    ));
    assert!(server.received().is_empty());

    // A server that offers no STARTTLS is not used in plain text.
    let Some(plain) = SmtpServer::start("smtp without STARTTLS", Options::default()).await else {
        return;
    };
    match Smtp::new(&settings(&plain, Security::StartTls, Some(&certs)))
        .unwrap()
        .send(&email("Hi"))
        .await
    {
        Err(SendError::Retry { reason, .. }) => {
            assert!(reason.contains("STARTTLS"), "{reason}")
        }
        other => panic!("no STARTTLS must mean no email: {other:?}"),
    }
    assert!(plain.received().is_empty());
}

#[tokio::test]
async fn implicit_tls_and_plain_text_on_loopback_deliver() {
    let certs = Certs::make();
    let Some(server) = SmtpServer::start(
        "smtp implicit TLS",
        Options {
            tls: Some((&certs.cert, &certs.key)),
            implicit_tls: true,
            auth: Some((USER, PASSWORD)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    Smtp::new(&settings(&server, Security::Tls, Some(&certs)))
        .unwrap()
        .send(&email("Hi"))
        .await
        .expect("delivered over TLS");
    assert!(server.wait_received(1).await[0].tls);

    let Some(relay) = SmtpServer::start("smtp plain relay", Options::default()).await else {
        return;
    };
    let mut plain = settings(&relay, Security::None, None);
    plain.credentials = None;
    Smtp::new(&plain)
        .unwrap()
        .send(&email("Hi"))
        .await
        .expect("delivered to the relay");
    let got = relay.wait_received(1).await;
    assert!(!got[0].tls && got[0].login.is_none());
}

#[tokio::test]
async fn a_wrong_password_is_a_rejection_with_the_servers_words() {
    let certs = Certs::make();
    let Some(server) = tls_server("smtp wrong password", &certs, &[]).await else {
        return;
    };
    let mut wrong = settings(&server, Security::StartTls, Some(&certs));
    wrong.credentials = Some((USER.into(), "not the password".into()));
    match Smtp::new(&wrong).unwrap().send(&email("Hi")).await {
        Err(SendError::Rejected(reason)) => assert!(reason.contains("535"), "{reason}"),
        other => panic!("expected a rejection: {other:?}"),
    }
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_server_that_stops_answering_is_given_up_on_at_the_timeout() {
    // Greets, then never answers again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let (mut socket, _) = listener.accept().await.unwrap();
        socket
            .write_all(b"220 silent.example ESMTP\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let settings = SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        credentials: None,
        ca_file: None,
        timeout: Duration::from_millis(500),
        hello_name: None,
        from_email: "support@shop.example".into(),
        from_name: String::new(),
    };
    let started = std::time::Instant::now();
    match Smtp::new(&settings).unwrap().send(&email("Hi")).await {
        Err(SendError::Retry { reason, .. }) => assert!(reason.contains("500 ms"), "{reason}"),
        other => panic!("expected a retry: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn app_with_smtp(server: &SmtpServer, certs: &Certs) -> TestApp {
    let (port, ca) = (server.port, certs.ca.to_string_lossy().into_owned());
    TestApp::spawn_with(Database::Sqlite, move |c| {
        c.mail_transport = "smtp".into();
        c.smtp_host = "localhost".into();
        c.smtp_port = port;
        c.smtp_tls = "starttls".into();
        c.smtp_ca_file = ca;
        c.smtp_user = USER.into();
        c.smtp_password = PASSWORD.into();
        c.smtp_timeout_ms = 10_000;
        c.mail_from = "support@shop.example".into();
        c.mail_poll_ms = 50;
        c.mail_retry_ms = 100;
        c.mail_max_attempts = 3;
    })
    .await
}

async fn wait_status(app: &TestApp, template: &str, status: &str) -> careline::store::OutboxEmail {
    for _ in 0..300 {
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no {template} email reached {status}: {:#?}",
        app.store.outbox(50).await.unwrap()
    );
}

#[tokio::test]
async fn through_the_worker_a_4xx_is_tried_again_and_delivered_once() {
    let certs = Certs::make();
    let replies = ["451 4.3.0 Mailbox busy, try again later"];
    let Some(server) = tls_server("smtp 4xx through the worker", &certs, &replies).await else {
        return;
    };
    let app = app_with_smtp(&server, &certs).await;
    app.customer("Grace", "grace@example.com").await;

    let sent = wait_status(&app, "verify_email", "sent").await;
    assert_eq!(sent.attempts, 2, "one 451, then one 250");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = server.received();
    assert_eq!(received.len(), 1, "delivered exactly once");
    assert_eq!(server.attempts().len(), 2);
    let got = &received[0];
    assert_eq!(got.rcpt_tos, ["grace@example.com"]);
    assert!(got.tls);
    assert!(
        header(got, "Message-ID").ends_with("@shop.example>"),
        "{:?}",
        got.headers("Message-ID")
    );
    let parsed = MessageParser::default().parse(&got.raw).unwrap();
    assert_eq!(parsed.subject(), Some("Confirm your email address"));
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains(&format!("{}/verify?token=", app.base)),
        "{text}"
    );
    assert!(parsed.body_html(0).is_some());
}

#[tokio::test]
async fn through_the_worker_a_5xx_marks_the_email_failed_with_the_servers_reason() {
    let certs = Certs::make();
    let replies = ["550 5.7.1 Message rejected: sender not allowed by policy"];
    let Some(server) = tls_server("smtp 5xx through the worker", &certs, &replies).await else {
        return;
    };
    let app = app_with_smtp(&server, &certs).await;
    let mut admin = app.admin().await;
    app.customer("Grace", "grace@example.com").await;

    let failed = wait_status(&app, "verify_email", "failed").await;
    assert_eq!(failed.attempts, 1, "a rejection is not retried");
    assert!(
        failed.last_error.contains("550")
            && failed
                .last_error
                .contains("Message rejected: sender not allowed by policy"),
        "{}",
        failed.last_error
    );
    let page = admin.get("/admin/outbox").await.expect_status(200);
    assert!(page.contains("sender not allowed by policy"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.attempts().len(), 1);
    assert!(server.received().is_empty());
}
