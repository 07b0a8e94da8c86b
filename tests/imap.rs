//! The support mailbox over IMAP, against a real Dovecot (see
//! `support::imap`) and, for the round trip, a real SMTP server: an agent's
//! reply goes out by SMTP with a signed reply address, the customer's
//! answer is dropped into the mailbox, and it reaches the console live with
//! the next `seq` and the widget on resume. Then the mailbox's own rules:
//! each email taken once, marked read and moved, machine mail ignored,
//! unreadable mail kept, an instance that died mid-way takes nothing twice,
//! one instance at a time; and the admin page (settings checked on save,
//! the password never shown back, a wrong password or CA said plainly).

mod support;

use std::sync::Arc;
use std::time::Duration;

use careline::auth::Secret;
use careline::bot::faq::FaqBot;
use careline::bus::LocalBus;
use careline::domain::chat::{Chat, ChatConfig};
use careline::domain::inbound_email;
use careline::domain::mailbox::{self, MailboxConfig, Round};
use careline::mail::imap::{ImapSecurity, ImapSettings};
use careline::store::Store;
use serde_json::json;
use support::imap::{ImapServer, PASSWORD, USER};
use support::smtp::{Options, SmtpServer};
use support::tls::Certs;
use support::{Database, TestApp, TestDb};

const APP_SECRET: &str = "imap-round-trip-secret-0123456789abcdef";

fn settings(server: &ImapServer, security: ImapSecurity) -> ImapSettings {
    ImapSettings {
        enabled: true,
        host: "localhost".into(),
        port: match security {
            ImapSecurity::Tls => server.tls_port,
            ImapSecurity::StartTls => server.starttls_port,
        },
        security,
        user: USER.into(),
        password: PASSWORD.into(),
        folder: "INBOX".into(),
        done_folder: String::new(),
    }
}

/// The test's Dovecot is on this machine: the operator lists it, as an
/// install with its mail server on an internal address would.
const LISTED: &str = "localhost, 127.0.0.0/8";

fn policy() -> careline::egress::Policy {
    careline::egress::Policy::new(
        false,
        LISTED
            .split(',')
            .map(|e| careline::egress::Allowed::parse(e.trim()).unwrap())
            .collect(),
    )
}

fn config(certs: &Certs) -> MailboxConfig {
    MailboxConfig {
        every: Duration::from_millis(100),
        timeout: Duration::from_secs(10),
        ca_pem: Some(std::fs::read(&certs.ca).unwrap()),
        policy: policy(),
    }
}

/// A store and the chat over it, without a web server: rounds are run by
/// hand, as an instance's reader would.
struct Bench {
    store: Store,
    chat: Arc<Chat>,
    secret: Secret,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

async fn bench() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::create(Database::Sqlite, dir.path()).await;
    let store = Store::open(&db.url, 5).await.unwrap();
    store.default_site().await.unwrap();
    let chat = Arc::new(Chat::new(
        store.clone(),
        Arc::new(LocalBus::standalone()),
        Arc::new(FaqBot::new(store.clone(), 0.5)),
        ChatConfig::default(),
    ));
    Bench {
        store,
        chat,
        secret: Secret::new("imap-test-secret-0123456789abcdef"),
        _db: db,
        _dir: dir,
    }
}

/// The tickets of the customer with this email.
async fn tickets_of(store: &Store, email: &str) -> Vec<careline::model::Ticket> {
    let Some((user, _)) = store
        .user_with_hash(&careline::model::Email::parse(email).unwrap())
        .await
        .unwrap()
    else {
        return Vec::new();
    };
    store
        .list_tickets(&careline::store::TicketFilter {
            customer: Some(user.id),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn new_mail(from: &str, message_id: &str, subject: &str, text: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@shop.example\r\nSubject: {subject}\r\n\
         Message-ID: {message_id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    )
}

#[tokio::test]
async fn mail_is_taken_once_then_marked_read_and_moved() {
    let certs = Certs::make();
    let Some(server) = ImapServer::start("imap: taken once", &certs) else {
        return;
    };
    let b = bench().await;
    server.create_folder("Careline").await;
    let mut mailbox = settings(&server, ImapSecurity::Tls);
    mailbox.done_folder = "Careline".into();
    mailbox.save(&b.store, &b.secret, PASSWORD).await.unwrap();

    server
        .deliver(
            "INBOX",
            &new_mail(
                "Ada <ada@example.com>",
                "<ada-1@mail.example>",
                "Invoice missing",
                "Where is my invoice?",
            ),
        )
        .await;
    let auto = "From: ada@example.com\r\nTo: support@shop.example\r\nSubject: Out of office\r\n\
                Message-ID: <ooo-1@mail.example>\r\nAuto-Submitted: auto-replied\r\n\r\nAway until Monday\r\n";
    server.deliver("INBOX", auto).await;
    server
        .deliver("INBOX", "\u{1}\u{2} not a mail at all")
        .await;

    let round = mailbox::round(&b.chat, &b.secret, "instance-a", &config(&certs))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(round, Round::Worked { taken: 3 });
    // Ada's email opened a ticket for her; the auto-reply made nothing.
    let tickets = tickets_of(&b.store, "ada@example.com").await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0].subject, "Invoice missing");
    let outcomes: Vec<String> = b
        .store
        .recent_inbound_emails(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    for outcome in ["opened", "ignored", "failed"] {
        assert!(outcomes.iter().any(|o| o == outcome), "{outcomes:?}");
    }
    // All three left the inbox, read, for the folder named.
    assert!(server.messages("INBOX").await.is_empty());
    let moved = server.messages("Careline").await;
    assert_eq!(moved.len(), 3, "{moved:?}");
    assert!(
        moved
            .iter()
            .all(|(flags, _)| flags.iter().any(|f| f.contains("Seen"))),
        "{moved:?}"
    );

    // The same email delivered again (a server that delivered twice): the
    // next round marks it and stores nothing new.
    server
        .deliver(
            "INBOX",
            &new_mail(
                "Ada <ada@example.com>",
                "<ada-1@mail.example>",
                "Invoice missing",
                "Where is my invoice?",
            ),
        )
        .await;
    let round = mailbox::round(&b.chat, &b.secret, "instance-a", &config(&certs))
        .await
        .unwrap();
    assert_eq!(round, Round::Worked { taken: 1 });
    assert_eq!(tickets_of(&b.store, "ada@example.com").await.len(), 1);
    assert_eq!(b.store.recent_inbound_emails(10).await.unwrap().len(), 3);
    let status = mailbox::MailboxStatus::load(&b.store)
        .await
        .unwrap()
        .unwrap();
    assert!(status.ok && status.detail.contains("took 1"), "{status:?}");
}

#[tokio::test]
async fn an_instance_that_died_mid_way_takes_nothing_twice_and_one_reads_at_a_time() {
    let certs = Certs::make();
    let Some(server) = ImapServer::start("imap: died mid-way", &certs) else {
        return;
    };
    let b = bench().await;
    settings(&server, ImapSecurity::StartTls)
        .save(&b.store, &b.secret, PASSWORD)
        .await
        .unwrap();
    let raw = new_mail(
        "Bo <bo@example.com>",
        "<bo-1@mail.example>",
        "Broken lid",
        "The lid cracked",
    );
    server.deliver("INBOX", &raw).await;
    // Instance A took the email into Careline, then died before marking
    // it: the mail is still unread, its lease still runs.
    let taken = inbound_email::receive_raw(&b.chat, &b.secret, raw.as_bytes(), &[])
        .await
        .unwrap();
    assert_eq!(taken.outcome(), "opened");
    assert!(
        b.store
            .take_lease("mailbox:imap", "instance-a", 300)
            .await
            .unwrap()
    );

    // B waits while A's lease runs...
    let round = mailbox::round(&b.chat, &b.secret, "instance-b", &config(&certs))
        .await
        .unwrap();
    assert_eq!(round, Round::NotMine);
    let unread = server.messages("INBOX").await;
    assert!(
        !unread[0].0.iter().any(|f| f.contains("Seen")),
        "{unread:?}"
    );
    // ...then takes over, finds the email taken, and only marks it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let round = mailbox::round(&b.chat, &b.secret, "instance-b", &config(&certs))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(round, Round::Worked { taken: 1 });
    assert_eq!(
        tickets_of(&b.store, "bo@example.com").await.len(),
        1,
        "one ticket, not two"
    );
    let read = server.messages("INBOX").await;
    assert!(read[0].0.iter().any(|f| f.contains("Seen")), "{read:?}");
    // And A, back from the dead, finds B holds the mailbox now.
    let round = mailbox::round(&b.chat, &b.secret, "instance-a", &config(&certs))
        .await
        .unwrap();
    assert_eq!(round, Round::NotMine);
}

#[tokio::test]
async fn a_wrong_password_ca_or_folder_is_said_plainly_and_nothing_is_marked() {
    let certs = Certs::make();
    let Some(server) = ImapServer::start("imap: refusals", &certs) else {
        return;
    };
    let b = bench().await;
    server
        .deliver(
            "INBOX",
            &new_mail("cy@example.com", "<cy-1@mail.example>", "Hello", "Hi"),
        )
        .await;
    type Spoil<'a> = Box<dyn Fn(&mut ImapSettings, &mut MailboxConfig) + 'a>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "refused the login",
            Box::new(|s, _| s.password = "wrong".into()),
        ),
        (
            "TLS with",
            Box::new(|_, c| c.ca_pem = Some(std::fs::read(&certs.other_ca).unwrap())),
        ),
        // The certificate is for localhost only.
        ("TLS with", Box::new(|s, _| s.host = "127.0.0.1".into())),
        (
            "cannot open the folder `Nope`",
            Box::new(|s, _| s.folder = "Nope".into()),
        ),
        (
            "cannot reach",
            Box::new(|s, _| s.port = support::free_port()),
        ),
    ];
    for (said, spoil) in cases {
        let mut s = settings(&server, ImapSecurity::Tls);
        let mut c = config(&certs);
        spoil(&mut s, &mut c);
        s.save(&b.store, &b.secret, &s.password.clone())
            .await
            .unwrap();
        let failed = mailbox::round(&b.chat, &b.secret, "instance-a", &c)
            .await
            .expect_err(said)
            .to_string();
        assert!(failed.contains(said), "{said}: {failed}");
        assert!(
            !failed.contains(PASSWORD) && !failed.contains("wrong"),
            "{failed}"
        );
        let status = mailbox::MailboxStatus::load(&b.store)
            .await
            .unwrap()
            .unwrap();
        assert!(!status.ok && status.detail.contains(said), "{status:?}");
    }
    let unread = server.messages("INBOX").await;
    assert_eq!(unread.len(), 1);
    assert!(
        !unread[0].0.iter().any(|f| f.contains("Seen")),
        "{unread:?}"
    );
    assert!(b.store.recent_inbound_emails(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_admin_page_checks_settings_on_save_and_never_shows_the_password() {
    let certs = Certs::make();
    let Some(server) = ImapServer::start("imap: admin page", &certs) else {
        return;
    };
    let ca = certs.ca.display().to_string();
    let app = TestApp::spawn_with(Database::Sqlite, move |c| {
        c.mail_imap_ca_file = ca;
        c.mail_imap_poll_ms = 60_000;
        c.egress_allowed_hosts = LISTED.into();
    })
    .await;
    let mut admin = app.admin().await;
    admin.get("/admin/inbound/mailbox").await.expect_status(200);
    let port = server.tls_port.to_string();
    let form = |password: &'static str, host: &'static str| {
        vec![
            ("enabled", "on"),
            ("host", host),
            ("security", "tls"),
            ("user", USER),
            ("password", password),
            ("folder", "INBOX"),
            ("done_folder", ""),
        ]
    };
    // A host with a scheme is refused, nothing saved.
    let mut fields = form(PASSWORD, "imaps://localhost");
    fields.push(("port", &port));
    let refused = admin.submit("/admin/inbound/mailbox", &fields).await;
    assert_eq!(refused.status, 422);
    assert!(refused.contains("not a host name"), "{}", refused.body);
    // Saved and checked: connected.
    let mut fields = form(PASSWORD, "localhost");
    fields.push(("port", &port));
    let saved = admin.submit("/admin/inbound/mailbox", &fields).await;
    let to = saved.location.clone().unwrap();
    assert!(to.contains("saved=ok"), "{to}");
    let page = admin.get(&to).await;
    assert!(
        page.contains("Saved and connected: 0 unread"),
        "{}",
        page.body
    );
    assert!(!page.contains(PASSWORD));
    // Saved again without a password: the stored one is kept (and works).
    admin.get("/admin/inbound/mailbox").await;
    let mut fields = form("", "localhost");
    fields.push(("port", &port));
    let kept = admin.submit("/admin/inbound/mailbox", &fields).await;
    assert!(kept.location.unwrap().contains("saved=ok"));
    let stored = app
        .store
        .setting("mail.imap.password")
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.contains(PASSWORD), "sealed at rest");
    // A wrong password is saved but said to fail, in words.
    admin.get("/admin/inbound/mailbox").await;
    let mut fields = form("not-it", "localhost");
    fields.push(("port", &port));
    let failed = admin.submit("/admin/inbound/mailbox", &fields).await;
    let page = admin.get(&failed.location.unwrap()).await;
    assert!(page.contains("refused the login"), "{}", page.body);
    assert!(!page.contains("not-it"));
    // Agents cannot see or change it.
    let mut agent = app.agent(&mut admin, "Alan", "alan@example.com").await;
    let denied = agent.get("/admin/inbound/mailbox").await;
    assert_ne!(denied.status, 200);
}

/// The round trip of the issue: an agent's reply leaves by SMTP with the
/// conversation's reply address; the customer answers from their mail
/// app into the support mailbox; the answer reaches the agent's console
/// live with the next `seq`, and the widget shows it on resume.
#[tokio::test]
async fn a_reply_dropped_in_the_mailbox_reaches_the_console_live_and_the_widget() {
    let certs = Certs::make();
    let Some(imap) = ImapServer::start("imap: round trip", &certs) else {
        return;
    };
    let Some(smtp) = SmtpServer::start(
        "imap: round trip (smtp)",
        Options {
            tls: Some((&certs.cert, &certs.key)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (smtp_port, ca) = (smtp.port, certs.ca.display().to_string());
    let app = TestApp::spawn_with(Database::Sqlite, move |c| {
        c.mail_transport = "smtp".into();
        c.smtp_host = "localhost".into();
        c.smtp_port = smtp_port;
        c.smtp_tls = "starttls".into();
        c.smtp_ca_file = ca.clone();
        c.mail_from = "support@shop.example".into();
        c.mail_reply_address = "help@shop.example".into();
        c.mail_poll_ms = 50;
        c.mail_imap_ca_file = ca;
        c.mail_imap_poll_ms = 100;
        c.egress_allowed_hosts = LISTED.into();
        c.secret_key = APP_SECRET.into();
    })
    .await;
    // As the admin page saves them (tested above), under this app's secret.
    settings(&imap, ImapSecurity::Tls)
        .save(&app.store, &Secret::new(APP_SECRET), PASSWORD)
        .await
        .unwrap();
    let site = app.allow_shop().await;
    let mut chat = app.live_chat(&site).await;
    chat.visitor
        .leave_contact("Grace", "grace@example.com")
        .await;
    let token = chat.visitor.token.clone().unwrap();
    chat.visitor.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    chat.agent
        .send(json!({"type": "send", "conversation_id": chat.id, "client_msg_id": "r1", "body": "Try the rear tray"}))
        .await;
    let ack = chat
        .agent
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "r1")
        .await;
    let reply_seq = ack["seq"].as_i64().unwrap();

    // The agent's invitation went out first; then the reply to Grace.
    let mut waited = 0;
    let email = loop {
        waited += 1;
        assert!(
            waited < 400,
            "no reply email to Grace: {:?}",
            smtp.attempts()
        );
        let found = smtp
            .received()
            .into_iter()
            .find(|e| e.rcpt_tos == ["grace@example.com".to_string()]);
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reply_to = email.headers("Reply-To").join("");
    assert!(
        reply_to.contains(&format!("help+c{}-", chat.id)),
        "{reply_to}"
    );
    let reply_to = reply_to
        .trim_start_matches(|c| c != '<')
        .trim_matches(['<', '>'])
        .to_string();
    let reply_to = if reply_to.is_empty() {
        email.headers("Reply-To").join("")
    } else {
        reply_to
    };
    let message_id = email.headers("Message-ID").join("");

    // Grace answers from her mail app; it lands in the support mailbox.
    let answer = format!(
        "From: Grace <grace@example.com>\r\nTo: {reply_to}\r\nSubject: Re: New reply\r\n\
         Message-ID: <grace-imap-1@mail.example>\r\nIn-Reply-To: {message_id}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThe rear tray worked ✅\r\n\r\n\
         On Mon, Support wrote:\r\n> Try the rear tray\r\n"
    );
    imap.deliver("INBOX", &answer).await;

    let live = chat.agent.expect_message("The rear tray worked ✅").await;
    assert_eq!(live["seq"].as_i64().unwrap(), reply_seq + 1, "{live}");
    assert_eq!(live["sender"]["kind"], "customer", "{live}");

    // The widget, back later, sees it on resume.
    let mut widget = app.visitor_with_token(&site, &token).await;
    widget
        .send(json!({"type": "resume", "conversation_id": chat.id, "after_seq": reply_seq}))
        .await;
    let replayed = widget.expect_message("The rear tray worked ✅").await;
    assert_eq!(replayed["seq"], live["seq"]);
    let resumed = widget.expect_type("resumed").await;
    assert_eq!(resumed["last_seq"], live["seq"], "{resumed}");
    // Taken, marked read in the mailbox.
    let mut marked = false;
    for _ in 0..50 {
        let messages = imap.messages("INBOX").await;
        if messages
            .iter()
            .all(|(flags, _)| flags.iter().any(|f| f.contains("Seen")))
        {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(marked, "{:?}", imap.messages("INBOX").await);
}

/// Whatever the door (IMAP or SendGrid): a crash after an email opened its
/// ticket but before the email was recorded leaves a ticket that the next
/// delivery finds, instead of opening a second one.
#[tokio::test]
async fn a_ticket_opened_before_a_crash_is_found_not_opened_twice() {
    let b = bench().await;
    let raw = new_mail(
        "Di <di@example.com>",
        "<di-1@mail.example>",
        "Refund",
        "Please refund",
    );
    let di = b
        .store
        .create_user(
            &careline::model::Email::parse("di@example.com").unwrap(),
            "Di",
            "!opened-by-email",
            careline::model::Role::Customer,
        )
        .await
        .unwrap();
    // The first delivery got this far before it died.
    let first = careline::domain::tickets::raise_answering(
        &b.chat,
        &di,
        ("Refund", "Please refund"),
        careline::model::Priority::Normal,
        Some("<di-1@mail.example>"),
        Some("<di-1@mail.example>"),
    )
    .await
    .unwrap();
    let again = inbound_email::receive_raw(&b.chat, &b.secret, raw.as_bytes(), &[])
        .await
        .unwrap();
    assert_eq!(
        again,
        inbound_email::Received::Opened {
            number: first.number
        }
    );
    assert_eq!(tickets_of(&b.store, "di@example.com").await.len(), 1);
}
