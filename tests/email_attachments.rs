//! A customer's email, whole, over real HTTP: its files go through the same
//! upload rules as the widget's (type from the bytes, the size limit, the
//! name cleaned) and follow its text into the conversation, once however
//! often the email is delivered; what is refused is said to the agents
//! while the text still arrives. The original, quoted history and all, is
//! kept and shown on its own page to staff and to its own customer only,
//! as escaped text.

mod support;

use base64::Engine as _;
use careline::auth::Secret;
use careline::mail::threading;
use careline::model::{ConversationId, Message, TicketNumber};
use serde_json::Value;
use support::{Browser, Database, TestApp, ticket_number};

const SECRET: &str = "inbound-secret-0123456789abcdef";
const KEY: &str = "email-attachments-test-key-0123456789abcdef";
/// The attachment limit of these tests, small so that "too large" is cheap.
const LIMIT: u64 = 64 * 1024;

async fn app() -> TestApp {
    TestApp::spawn_with(Database::Sqlite, |c| {
        c.secret_key = KEY.into();
        c.mail_from = "support@shop.example".into();
        c.mail_reply_address = "help@shop.example".into();
        c.mail_inbound_secret = SECRET.into();
        c.attachment_max_bytes = LIMIT;
    })
    .await
}

/// A PNG as far as anyone checks: the signature, then bytes.
fn png(tag: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(format!("IHDR {tag} ").repeat(50).as_bytes());
    bytes
}

/// A reply from Grace's mail app: her words over the quoted history, and
/// `files` (name, MIME type, bytes) as base64 parts.
fn reply_with_files(
    to: &str,
    message_id: &str,
    text: &str,
    files: &[(&str, &str, Vec<u8>)],
) -> String {
    let mut raw = format!(
        "From: Grace Hopper <grace@example.com>\r\n\
         To: {to}\r\n\
         Cc: Ops <ops@example.com>\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\
         Subject: Re: Printer jams\r\n\
         Message-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b-outer\"\r\n\
         \r\n\
         --b-outer\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         {text}\r\n\
         \r\n\
         On Mon, 7 Dec 2026 at 09:00, Support <help@shop.example> wrote:\r\n\
         > Try the rear tray\r\n"
    );
    for (name, content_type, bytes) in files {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        raw.push_str(&format!(
            "--b-outer\r\n\
             Content-Type: {content_type}; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\
             \r\n"
        ));
        for line in encoded.as_bytes().chunks(76) {
            raw.push_str(std::str::from_utf8(line).unwrap());
            raw.push_str("\r\n");
        }
    }
    raw.push_str("--b-outer--\r\n");
    raw
}

/// A multipart form as SendGrid Inbound Parse posts it: text fields, then
/// files (field name, file name, bytes).
fn form(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "xYzZY-careline-test";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_form(app: &TestApp, fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> Value {
    let (content_type, body) = form(fields, files);
    let response = careline::http_client(std::time::Duration::from_secs(30))
        .post(format!("{}/hooks/email/sendgrid/{SECRET}", app.base))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Posts a raw MIME email as SendGrid's raw mode does; the outcome.
async fn post_raw(app: &TestApp, raw: &str) -> String {
    let answer = post_form(app, &[("email", raw)], &[]).await;
    answer["outcome"].as_str().unwrap_or_default().to_string()
}

struct Scene {
    app: TestApp,
    admin: Browser,
    grace: Browser,
    number: i64,
    conversation: ConversationId,
    /// The signed reply address of Grace's ticket, as Careline's emails give it.
    reply_to: String,
}

/// Grace has a ticket; her replies by email name it by its reply address.
async fn scene() -> Scene {
    let app = app().await;
    let admin = app.admin().await;
    let mut grace = app.customer("Grace", "grace@example.com").await;
    grace.get("/tickets/new").await;
    let created = grace
        .submit(
            "/tickets",
            &[
                ("subject", "Printer jams"),
                ("description", "Every page"),
                ("priority", "normal"),
            ],
        )
        .await;
    let number = ticket_number(created.location.as_deref().unwrap());
    let ticket = app
        .store
        .ticket_by_number(TicketNumber(number))
        .await
        .unwrap()
        .unwrap();
    let conversation = ticket.conversation_id;
    let reply_to = threading::reply_address(
        "help@shop.example",
        &threading::tag(&Secret::new(KEY), conversation),
    );
    Scene {
        app,
        admin,
        grace,
        number,
        conversation,
        reply_to,
    }
}

impl Scene {
    async fn messages(&self) -> Vec<Message> {
        self.app
            .store
            .messages(self.conversation, true)
            .await
            .unwrap()
    }
}

/// The first `/emails/N` link on a page.
fn original_link(page: &str) -> String {
    let at = page
        .find("href=\"/emails/")
        .expect("a link to an original email");
    let rest = &page[at + "href=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[tokio::test]
async fn a_png_in_a_reply_follows_its_text_and_the_agent_downloads_it_once() {
    let mut s = scene().await;
    let image = png("screenshot");
    let raw = reply_with_files(
        &s.reply_to,
        "<grace-png@mail.example>",
        "Here is what the display says.",
        &[("display \u{202e}gnp.exe.png", "image/png", image.clone())],
    );
    assert_eq!(post_raw(&s.app, &raw).await, "appended");

    // The description (1), her words (2), then the file as her own message (3).
    let messages = s.messages().await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(messages[1].body, "Here is what the display says.");
    assert!(!messages[1].body.contains("rear tray"));
    let file = &messages[2];
    assert_eq!(file.body, "", "a file alone needs no words");
    assert_eq!(file.sender_kind.as_str(), "customer");
    let attachment = file.attachment.clone().expect("the PNG is attached");
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(
        attachment.name, "display gnp.exe.png",
        "the name is cleaned"
    );
    assert!(!messages.iter().any(|m| m.private), "nothing was refused");

    // The agent sees it on the ticket and downloads it, typed from its bytes.
    let mut alan = s.app.agent(&mut s.admin, "Alan", "alan@example.com").await;
    let page = alan
        .get(&format!("/console/tickets/{}", s.number))
        .await
        .expect_status(200);
    assert!(page.contains(&format!("/attachments/{}", attachment.id)));
    let (status, headers, bytes) = alan
        .download(&format!("/attachments/{}", attachment.id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(bytes, image);
    // So does Grace, on her side.
    let (status, _, _) = s
        .grace
        .download(&format!("/attachments/{}", attachment.id))
        .await;
    assert_eq!(status, 200);

    // Delivered again (a retry): nothing new.
    assert_eq!(post_raw(&s.app, &raw).await, "already taken");
    assert_eq!(s.messages().await.len(), 3, "the file is stored once");
}

#[tokio::test]
async fn two_deliveries_at_once_send_the_text_and_the_file_once_and_keep_no_spare_upload() {
    let s = scene().await;
    let raw = reply_with_files(
        &s.reply_to,
        "<grace-race@mail.example>",
        "Twice at once",
        &[("a.png", "image/png", png("race"))],
    );
    let (first, second) = tokio::join!(post_raw(&s.app, &raw), post_raw(&s.app, &raw));
    let outcomes = [first, second];
    assert!(
        outcomes
            .iter()
            .all(|o| o == "appended" || o == "already taken"),
        "{outcomes:?}"
    );
    let messages = s.messages().await;
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(
        messages.iter().filter(|m| m.attachment.is_some()).count(),
        1
    );
    let spare = s
        .app
        .store
        .unsent_uploads_since(s.conversation, 0)
        .await
        .unwrap();
    assert_eq!(spare, 0, "the losing delivery's copy of the file is gone");
}

#[tokio::test]
async fn refused_files_leave_the_text_and_tell_the_agents_why() {
    let mut s = scene().await;
    let too_large = {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.resize(LIMIT as usize + 1, b'x');
        pdf
    };
    let raw = reply_with_files(
        &s.reply_to,
        "<grace-refused@mail.example>",
        "Logs attached",
        &[
            (
                "setup.exe",
                "application/octet-stream",
                b"MZ\x90\0\x03\0\0\0 program".to_vec(),
            ),
            (
                "invoice.pdf.html",
                "text/html",
                b"<html><script>alert(1)</script></html>".to_vec(),
            ),
            ("scan.pdf", "application/pdf", too_large),
        ],
    );
    assert_eq!(post_raw(&s.app, &raw).await, "appended");

    let messages = s.messages().await;
    assert_eq!(messages[1].body, "Logs attached", "the text is taken");
    assert!(
        messages.iter().all(|m| m.attachment.is_none()),
        "no refused file is stored: {messages:?}"
    );
    let note = messages.last().unwrap();
    assert!(note.private, "the agents' note is private: {note:?}");
    assert_eq!(note.sender_kind.as_str(), "system");
    assert!(
        note.body
            .contains("setup.exe: this kind of file cannot be attached"),
        "{}",
        note.body
    );
    assert!(
        note.body
            .contains("invoice.pdf.html: this kind of file cannot be attached")
    );
    assert!(
        note.body.contains("scan.pdf: files may be up to 64 KB"),
        "{}",
        note.body
    );
    assert_eq!(
        s.app
            .store
            .unsent_uploads_since(s.conversation, 0)
            .await
            .unwrap(),
        0
    );

    // The admin's inbound page says it too; the customer sees no note.
    let inbound = s.admin.get("/admin/inbound").await.expect_status(200);
    assert!(
        inbound.contains("not taken: setup.exe (this kind of file cannot be attached"),
        "{}",
        inbound.body
    );
    let hers = s
        .grace
        .get(&format!("/tickets/{}", s.number))
        .await
        .expect_status(200);
    assert!(hers.contains("Logs attached"));
    assert!(!hers.contains("Not attached from"));

    // Delivered again: no second note.
    assert_eq!(post_raw(&s.app, &raw).await, "already taken");
    assert_eq!(s.messages().await.len(), messages.len());
}

#[tokio::test]
async fn an_email_of_files_only_takes_the_first_ten_and_names_the_rest() {
    let s = scene().await;
    let files: Vec<(String, Vec<u8>)> = (1..=12)
        .map(|n| (format!("photo-{n}.png"), png(&format!("photo {n}"))))
        .collect();
    let files: Vec<(&str, &str, Vec<u8>)> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), "image/png", bytes.clone()))
        .collect();
    let raw = reply_with_files(&s.reply_to, "<grace-many@mail.example>", "", &files)
        // No words at all, not even the quoted history.
        .replace(
            "On Mon, 7 Dec 2026 at 09:00, Support <help@shop.example> wrote:\r\n> Try the rear tray\r\n",
            "",
        );
    assert_eq!(post_raw(&s.app, &raw).await, "appended");
    let messages = s.messages().await;
    assert_eq!(messages[1].body, "(no text: the email's files follow)");
    let sent: Vec<String> = messages
        .iter()
        .filter_map(|m| m.attachment.as_ref().map(|a| a.name.clone()))
        .collect();
    assert_eq!(sent.len(), 10, "{sent:?}");
    assert_eq!(sent[0], "photo-1.png");
    assert_eq!(sent[9], "photo-10.png");
    let note = messages.last().unwrap();
    assert!(note.private);
    assert!(
        note.body
            .contains("photo-11.png: only the first 10 files of an email are taken"),
        "{}",
        note.body
    );
    assert!(note.body.contains("photo-12.png"));
}

#[tokio::test]
async fn sendgrid_parsed_fields_bring_attachment1_under_its_own_name() {
    let mut s = scene().await;
    let pdf = b"%PDF-1.7\n% the invoice\n".repeat(20);
    let headers = format!(
        "From: grace@example.com\r\nTo: {}\r\nSubject: Re: hi\r\nMessage-ID: <grace-parsed@mail.example>\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"gone\"",
        s.reply_to
    );
    let info = r#"{"attachment1": {"filename": "invoice 42.pdf", "name": "invoice 42.pdf", "type": "application/pdf"}}"#;
    let answer = post_form(
        &s.app,
        &[
            ("headers", &headers),
            (
                "text",
                "The invoice, as asked.\n\nOn Monday Support wrote:\n> send it",
            ),
            ("attachments", "1"),
            ("attachment-info", info),
        ],
        &[("attachment1", "part1.bin", &pdf)],
    )
    .await;
    assert_eq!(answer["outcome"], "appended", "{answer}");
    let messages = s.messages().await;
    assert_eq!(messages[1].body, "The invoice, as asked.");
    let attachment = messages[2]
        .attachment
        .clone()
        .expect("attachment1 is attached");
    assert_eq!(attachment.name, "invoice 42.pdf");
    assert_eq!(attachment.content_type, "application/pdf");

    // Its original is what SendGrid gave: the headers over the whole text.
    let page = s
        .admin
        .get(&format!("/console/tickets/{}", s.number))
        .await
        .expect_status(200);
    let original = s
        .admin
        .get(&original_link(&page.body))
        .await
        .expect_status(200);
    assert!(original.contains("&gt; send it"), "{}", original.body);
}

#[tokio::test]
async fn the_original_shows_the_history_to_staff_and_its_customer_only() {
    let mut s = scene().await;
    let raw = reply_with_files(
        &s.reply_to,
        "<grace-original@mail.example>",
        "Still jams.",
        &[],
    );
    assert_eq!(post_raw(&s.app, &raw).await, "appended");
    assert!(!s.messages().await[1].body.contains("rear tray"));

    // The agent's ticket page links the message to its original, which
    // holds the history the message left out, as text.
    let page = s
        .admin
        .get(&format!("/console/tickets/{}", s.number))
        .await
        .expect_status(200);
    assert!(page.contains("View original email"));
    let link = original_link(&page.body);
    let original = s.admin.get(&link).await.expect_status(200);
    assert!(
        original.contains("&gt; Try the rear tray"),
        "{}",
        original.body
    );
    assert!(original.contains("Grace Hopper &lt;grace@example.com&gt;"));
    assert!(
        original.contains("Ops &lt;ops@example.com&gt;"),
        "Cc is shown"
    );
    assert!(original.contains("Re: Printer jams"));
    let (status, headers, bytes) = s.admin.download(&format!("{link}/original.eml")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "message/rfc822");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(bytes, raw.as_bytes(), "the email as it came");

    // Grace reads it from her own ticket.
    let hers = s
        .grace
        .get(&format!("/tickets/{}", s.number))
        .await
        .expect_status(200);
    assert_eq!(original_link(&hers.body), link);
    s.grace.get(&link).await.expect_status(200);

    // Another customer: as if there were no such email, page and download.
    let mut mallory = s.app.customer("Mallory", "mallory@example.com").await;
    let refused = mallory.get(&link).await.expect_status(404);
    assert!(!refused.contains("rear tray"));
    let (status, _, bytes) = mallory.download(&format!("{link}/original.eml")).await;
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&bytes).contains("rear tray"));
    mallory.get("/emails/999999").await.expect_status(404);
    mallory.get("/emails/not-a-number").await.expect_status(404);

    // Logged out: off to the login page, and nothing of it.
    let mut nobody = s.app.browser();
    let page = nobody.get(&link).await;
    assert!(matches!(page.status, 303 | 302), "{}", page.status);
    assert!(page.location.unwrap().starts_with("/login"));
    let (status, _, bytes) = nobody.download(&format!("{link}/original.eml")).await;
    assert_ne!(status, 200);
    assert!(!String::from_utf8_lossy(&bytes).contains("rear tray"));
}

#[tokio::test]
async fn an_html_only_email_is_shown_as_escaped_text_never_as_html() {
    let app = app().await;
    let raw = "From: Eve <eve@example.org>\r\n\
               To: help@shop.example\r\n\
               Subject: <img src=x onerror=alert(1)>\r\n\
               Message-ID: <eve-1@example.org>\r\n\
               Content-Type: text/html; charset=utf-8\r\n\
               \r\n\
               <html><body><script>alert('live')</script>\
               <p>Please help &lt;script&gt;alert(2)&lt;/script&gt;</p>\
               <img src=\"https://tracker.example/pixel\" onerror=\"alert(3)\"></body></html>\r\n";
    assert_eq!(post_raw(&app, raw).await, "opened");
    let mut admin = app.admin().await;
    let tickets = app
        .store
        .list_tickets(&careline::store::TicketFilter::default())
        .await
        .unwrap();
    let page = admin
        .get(&format!("/console/tickets/{}", tickets[0].number))
        .await
        .expect_status(200);
    let original = admin
        .get(&original_link(&page.body))
        .await
        .expect_status(200);
    let body = &original.body;
    assert!(
        body.contains("Please help &lt;script&gt;alert(2)&lt;/script&gt;"),
        "{body}"
    );
    assert!(
        body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the subject, escaped"
    );
    for live in [
        "<script>alert",
        "alert('live')",
        "<img src=x",
        "tracker.example",
        "onerror=\"alert(3)",
    ] {
        assert!(!body.contains(live), "{live} in {body}");
    }
}
