//! Attachments through the real server over HTTP and WebSocket, on both
//! blob backends (local files; S3 through a real local S3 server): upload,
//! send, delivery to the other side, resume, restart, limits, and who may
//! read what.
//!
//! Longer than 600 lines: each test binary links the whole server (on two
//! cores, a new binary costs more than a long file); each case reads alone,
//! top to bottom.

mod support;

use std::time::Duration;

use careline::config::RawConfig;
use careline::model::TicketNumber;
use serde_json::{Value, json};
use support::databases::backends;
use support::s3::Moto;
use support::ws::{SHOP_ORIGIN, WsClient};
use support::{Browser, Database, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A PNG as far as anyone checks: the signature, then bytes.
fn png(tag: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(format!("IHDR {tag} ").repeat(50).as_bytes());
    bytes
}

fn pdf(tag: &str) -> Vec<u8> {
    format!("%PDF-1.7\n% {tag}\n").repeat(40).into_bytes()
}

/// Where blobs go in a test.
enum BlobBackend {
    Local,
    S3(Moto),
}

impl BlobBackend {
    fn name(&self) -> &'static str {
        match self {
            BlobBackend::Local => "local",
            BlobBackend::S3(_) => "s3",
        }
    }

    fn configure(&self, raw: &mut RawConfig) {
        if let BlobBackend::S3(moto) = self {
            let s = moto.settings();
            raw.blob_store = "s3".into();
            raw.s3_endpoint = s.endpoint;
            raw.s3_bucket = s.bucket;
            raw.s3_region = s.region;
            raw.s3_access_key_id = s.access_key_id;
            raw.s3_secret_access_key = s.secret_access_key;
            raw.s3_prefix = s.prefix;
        }
    }

    /// How many blobs the store holds.
    async fn count(&self, app: &TestApp) -> usize {
        match self {
            BlobBackend::Local => files_under(&app.data_dir().join("blobs")),
            BlobBackend::S3(moto) => moto.keys().await.len(),
        }
    }
}

/// Local files always; S3 when moto_server is here (required under CI).
async fn blob_backends(test: &str) -> Vec<BlobBackend> {
    let mut all = vec![BlobBackend::Local];
    if let Some(moto) = Moto::start(test).await {
        all.push(BlobBackend::S3(moto));
    }
    all
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { files_under(&path) } else { 1 }
        })
        .sum()
}

/// The widget's HTTP door, as widget.js uses it.
async fn widget_upload(
    app: &TestApp,
    site: &str,
    token: &str,
    conversation: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let response = careline::http_client(Duration::from_secs(30))
        .post(format!(
            "{}/api/widget/v1/conversations/{conversation}/attachments?site={site}&name={name}",
            app.base
        ))
        .header("Origin", SHOP_ORIGIN)
        .header("Authorization", format!("Bearer {token}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn widget_download(
    app: &TestApp,
    site: &str,
    token: Option<&str>,
    origin: &str,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = careline::http_client(Duration::from_secs(30))
        .get(format!("{}{url}?site={site}", app.base))
        .header("Origin", origin);
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A visitor in a live conversation with an agent: (visitor, agent socket,
/// agent browser, conversation id).
async fn live_chat(app: &TestApp, site: &str) -> (WsClient, WsClient, Browser, String) {
    let live = app.live_chat(site).await;
    (live.visitor, live.agent, live.agent_browser, live.id)
}

#[tokio::test]
async fn a_file_sent_in_chat_reaches_the_agent_and_survives_resume_and_restart() {
    let test = "attachment story";
    for blobs in blob_backends(test).await {
        for db in backends(test).await {
            story(&blobs, db).await;
            eprintln!("{test} passed on {db:?} with {} blobs", blobs.name());
        }
    }
}

async fn story(blobs: &BlobBackend, db: Database) {
    let mut app = TestApp::spawn_with(db, |raw| blobs.configure(raw)).await;
    let site = app.allow_shop().await;
    let (mut visitor, mut agent, mut agent_browser, id) = live_chat(&app, &site).await;
    let token = visitor.token.clone().unwrap();

    // The customer uploads a screenshot from the widget and sends it.
    let screenshot = png("screenshot");
    let (status, uploaded) = widget_upload(
        &app,
        &site,
        &token,
        &id,
        "screen shot.png",
        screenshot.clone(),
    )
    .await;
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["content_type"], "image/png");
    assert_eq!(uploaded["image"], true);
    assert_eq!(uploaded["name"], "screen shot.png");
    assert_eq!(uploaded["size"], screenshot.len());
    let attachment_id = uploaded["id"].as_str().unwrap().to_string();
    visitor
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "v-file",
                     "body": "Here is the screen", "attachment_id": attachment_id}),
        )
        .await;
    let ack = visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "v-file")
        .await;

    // The agent, on another connection, gets the message with its file.
    let seen = agent.expect_message("Here is the screen").await;
    let file = &seen["attachment"];
    assert_eq!(file["id"], attachment_id.as_str(), "{seen}");
    assert_eq!(file["name"], "screen shot.png");
    assert_eq!(file["image"], true);
    let staff_url = file["url"].as_str().unwrap().to_string();
    assert_eq!(staff_url, format!("/attachments/{attachment_id}"));
    let (status, headers, bytes) = agent_browser.download(&staff_url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, screenshot);
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert!(header(&headers, "content-disposition").starts_with("inline;"));
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "content-security-policy").contains("sandbox"));

    // The agent answers with a PDF and no words, from the console.
    agent_browser
        .get(&format!("/console/tickets/{}", ticket_of(&app, &id).await))
        .await
        .expect_status(200);
    let manual = pdf("manual");
    let page = agent_browser
        .upload(
            &format!("/api/v1/conversations/{id}/attachments?name=manual.pdf"),
            manual.clone(),
            true,
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let agent_file = page.json()["id"].as_str().unwrap().to_string();
    agent
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "a-file",
                     "body": "", "attachment_id": agent_file}),
        )
        .await;
    agent
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "a-file")
        .await;
    let got = visitor
        .expect(|f| f["type"] == "message" && f["attachment"]["id"] == agent_file.as_str())
        .await;
    assert_eq!(got["body"], "");
    assert_eq!(got["attachment"]["image"], false);
    let visitor_url = got["attachment"]["url"].as_str().unwrap().to_string();
    assert_eq!(
        visitor_url,
        format!("/api/widget/v1/attachments/{agent_file}")
    );
    let (status, headers, bytes) =
        widget_download(&app, &site, Some(&token), SHOP_ORIGIN, &visitor_url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, manual);
    assert!(header(&headers, "content-disposition").starts_with("attachment;"));
    assert_eq!(header(&headers, "access-control-allow-origin"), SHOP_ORIGIN);

    // A retry of the send is the same message, not a second one.
    visitor
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "v-file",
                     "body": "Here is the screen", "attachment_id": attachment_id}),
        )
        .await;
    let again = visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "v-file")
        .await;
    assert_eq!(again["seq"], ack["seq"]);

    // Restart: the files come back with their messages on resume.
    drop((visitor, agent));
    app.restart().await;
    let mut visitor = app.visitor_with_token(&site, &token).await;
    visitor
        .send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
        .await;
    visitor.expect_type("resumed").await;
    let replayed: Vec<&Value> = visitor
        .seen("message")
        .into_iter()
        .filter(|m| m["attachment"].is_object())
        .collect();
    assert_eq!(replayed.len(), 2, "{:?}", visitor.log);
    assert_eq!(replayed[0]["attachment"]["id"], attachment_id.as_str());
    assert_eq!(replayed[1]["attachment"]["id"], agent_file.as_str());
    let (status, _, bytes) = widget_download(
        &app,
        &site,
        Some(&token),
        SHOP_ORIGIN,
        replayed[0]["attachment"]["url"].as_str().unwrap(),
    )
    .await;
    assert_eq!((status, bytes), (200, screenshot));
    assert_eq!(blobs.count(&app).await, 2);
}

/// The ticket number of conversation `id`.
async fn ticket_of(app: &TestApp, id: &str) -> TicketNumber {
    app.store
        .conversation(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .ticket_number
        .expect("a ticket")
}

#[tokio::test]
async fn oversize_wrong_type_and_broken_uploads_leave_nothing_behind() {
    let test = "refused uploads";
    for blobs in blob_backends(test).await {
        let app = TestApp::spawn_with(Database::Sqlite, |raw| {
            blobs.configure(raw);
            raw.attachment_max_bytes = 64 * 1024;
        })
        .await;
        let site = app.allow_shop().await;
        let mut visitor = app.visitor(&site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": "v1", "body": "hello"}))
            .await;
        let id = visitor.expect_type("conversation").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let token = visitor.token.clone().unwrap();

        // Over the limit, declared up front: refused before reading.
        let (status, body) =
            widget_upload(&app, &site, &token, &id, "big.png", png("x").repeat(200)).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["error"]["code"], "too_large");
        assert!(body["error"]["message"].as_str().unwrap().contains("64 KB"));

        // Over the limit, streamed without a length: refused mid-stream.
        let path =
            format!("/api/widget/v1/conversations/{id}/attachments?site={site}&name=big.png");
        let status = raw_upload(&app, &path, &token, RawBody::Chunked(400 * 1024)).await;
        assert_eq!(status, Some(413));

        // Types are decided from the bytes, whatever the name says.
        for (name, bytes, expected) in [
            (
                "invoice.pdf",
                b"MZ\x90\0\x03\0\0\0 windows program".to_vec(),
                415,
            ),
            (
                "page.png",
                b"\0\0\0 not an image at all \xff\xfe".to_vec(),
                415,
            ),
            ("empty.txt", Vec::new(), 422),
            // Pages and pictures that carry script: refused, not kept as text.
            (
                "notes.txt",
                b"<!doctype html><script>alert(1)</script>".to_vec(),
                415,
            ),
            (
                "logo.svg",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"
                    .to_vec(),
                415,
            ),
            (
                "page.xhtml",
                b"<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"/>".to_vec(),
                415,
            ),
        ] {
            let (status, body) = widget_upload(&app, &site, &token, &id, name, bytes).await;
            assert_eq!(status, expected, "{name}: {body}");
            assert!(body["error"]["message"].as_str().is_some(), "{body}");
        }

        // A client that goes away halfway leaves nothing either.
        let status = raw_upload(&app, &path, &token, RawBody::CutShort).await;
        assert!(matches!(status, Some(400) | None), "{status:?}");

        // Nothing in the spool folder, the blob store or the database.
        let spool = app.data_dir().join("uploads-in-progress");
        let mut left = usize::MAX;
        for _ in 0..50 {
            left = files_under(&spool);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(left, 0, "spool files left behind");
        assert_eq!(blobs.count(&app).await, 0, "{}", blobs.name());
        assert_eq!(
            app.store
                .unsent_uploads_since(id.parse().unwrap(), 0)
                .await
                .unwrap(),
            0
        );

        // And the limit still lets a file of exactly the limit through.
        let mut exact = png("edge");
        exact.resize(64 * 1024, b'.');
        let (status, body) = widget_upload(&app, &site, &token, &id, "edge.png", exact).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(blobs.count(&app).await, 1);
        eprintln!("{test} passed with {} blobs", blobs.name());
    }
}

enum RawBody {
    /// `Transfer-Encoding: chunked`, this many bytes, no length up front.
    Chunked(usize),
    /// Declares 60,000 bytes, sends 20,000 and hangs up.
    CutShort,
}

/// An upload over a bare TCP socket, for bodies reqwest will not send.
/// Returns the response status, if the server sent one.
async fn raw_upload(app: &TestApp, path: &str, token: &str, body: RawBody) -> Option<u16> {
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let framing = match body {
        RawBody::Chunked(_) => "Transfer-Encoding: chunked".to_string(),
        RawBody::CutShort => "Content-Length: 60000".to_string(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {SHOP_ORIGIN}\r\nAuthorization: Bearer {token}\r\n{framing}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut payload = png("stream");
    payload.resize(8 * 1024, b'.');
    match body {
        RawBody::Chunked(total) => {
            for _ in 0..total / payload.len() {
                let chunk = format!("{:x}\r\n", payload.len());
                // The server may stop reading once it has refused.
                if socket.write_all(chunk.as_bytes()).await.is_err()
                    || socket.write_all(&payload).await.is_err()
                    || socket.write_all(b"\r\n").await.is_err()
                {
                    break;
                }
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
        RawBody::CutShort => {
            for _ in 0..20_000 / payload.len() {
                socket.write_all(&payload).await.unwrap();
            }
            socket
                .write_all(&payload[..20_000 % payload.len()])
                .await
                .unwrap();
            socket.shutdown().await.unwrap();
        }
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn only_people_who_may_read_the_conversation_get_its_files() {
    for db in backends("attachment access").await {
        let app = TestApp::spawn(db).await;
        let site = app.allow_shop().await;
        let (mut visitor, mut agent, mut agent_browser, id) = live_chat(&app, &site).await;
        let token = visitor.token.clone().unwrap();
        let (status, uploaded) =
            widget_upload(&app, &site, &token, &id, "mine.png", png("mine")).await;
        assert_eq!(status, 201);
        let file = uploaded["id"].as_str().unwrap().to_string();
        let widget_url = format!("/api/widget/v1/attachments/{file}");
        let staff_url = format!("/attachments/{file}");

        // Not sent yet: the uploader's only, not even staff see it.
        let (status, _, _) = agent_browser.download(&staff_url).await;
        assert_eq!(status, 404);
        let (status, _, bytes) =
            widget_download(&app, &site, Some(&token), SHOP_ORIGIN, &widget_url).await;
        assert_eq!((status, bytes), (200, png("mine")));

        // Another visitor of the same site: not found, for reading and for
        // uploading into this conversation; nor may they send this file.
        let mut other = app.visitor(&site).await;
        let other_token = other.token.clone().unwrap();
        let (status, _, body) =
            widget_download(&app, &site, Some(&other_token), SHOP_ORIGIN, &widget_url).await;
        assert_eq!(status, 404);
        assert!(!body.windows(4).any(|w| w == b"IHDR"), "no bytes leak");
        let (status, _) =
            widget_upload(&app, &site, &other_token, &id, "x.png", png("intruder")).await;
        assert_eq!(status, 404);
        other
            .send(json!({"type": "start", "client_msg_id": "o1", "body": "hi"}))
            .await;
        let other_id = other.expect_type("conversation").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        other
            .send(
                json!({"type": "send", "conversation_id": other_id, "client_msg_id": "o2",
                         "body": "look", "attachment_id": file}),
            )
            .await;
        let refused = other.expect_type("error").await;
        assert_eq!(refused["code"], "invalid", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("attachment_id")
        );

        // No token, a wrong token, a foreign origin.
        let (status, _, _) = widget_download(&app, &site, None, SHOP_ORIGIN, &widget_url).await;
        assert_eq!(status, 401);
        let (status, _, _) =
            widget_download(&app, &site, Some("forged-token"), SHOP_ORIGIN, &widget_url).await;
        assert_eq!(status, 401);
        let (status, _, _) = widget_download(
            &app,
            &site,
            Some(&token),
            "http://evil.example",
            &widget_url,
        )
        .await;
        assert_eq!(status, 403);

        // Sent: staff may read it now; it cannot go out a second time.
        visitor
            .send(
                json!({"type": "send", "conversation_id": id, "client_msg_id": "v-f",
                         "body": "", "attachment_id": file}),
            )
            .await;
        visitor
            .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "v-f")
            .await;
        agent
            .expect(|f| f["type"] == "message" && f["attachment"]["id"] == file.as_str())
            .await;
        let (status, _, _) = agent_browser.download(&staff_url).await;
        assert_eq!(status, 200);
        visitor
            .send(
                json!({"type": "send", "conversation_id": id, "client_msg_id": "v-g",
                         "body": "again", "attachment_id": file}),
            )
            .await;
        let refused = visitor.expect_type("error").await;
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("already sent"),
            "{refused}"
        );

        // A registered customer who is not this visitor, and nobody at all.
        let mut stranger = app.customer("Sam Stranger", "sam@example.com").await;
        let (status, _, _) = stranger.download(&staff_url).await;
        assert_eq!(status, 404);
        let (status, _, _) = app.browser().download(&staff_url).await;
        assert_eq!(status, 401);
        stranger.get("/dashboard").await.expect_status(200);
        let page = stranger
            .upload(
                &format!("/api/v1/conversations/{id}/attachments?name=x.png"),
                png("x"),
                true,
            )
            .await;
        assert_eq!(page.status, 404, "{}", page.body);

        // A page upload without the CSRF token is refused (a form on another
        // site could otherwise post a file with the agent's cookie).
        let page = agent_browser
            .upload(
                &format!("/api/v1/conversations/{id}/attachments?name=x.png"),
                png("csrf"),
                false,
            )
            .await;
        assert_eq!(page.status, 403, "{}", page.body);
        eprintln!("attachment access passed on {db:?}");
    }
}

#[tokio::test]
async fn file_names_are_cleaned_and_shown_as_text() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let (mut visitor, mut agent, mut agent_browser, id) = live_chat(&app, &site).await;
    let token = visitor.token.clone().unwrap();
    let evil = "..%2F..%2F<img src=x onerror=alert(1)>%E2%80%AEgnp.exe";
    let (status, uploaded) = widget_upload(&app, &site, &token, &id, evil, png("evil")).await;
    assert_eq!(status, 201, "{uploaded}");
    let name = uploaded["name"].as_str().unwrap().to_string();
    assert_eq!(
        name, "<img src=x onerror=alert(1)>gnp.exe",
        "folders and direction marks go"
    );
    let file = uploaded["id"].as_str().unwrap().to_string();
    visitor
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "v-x",
                     "body": "see file", "attachment_id": file}),
        )
        .await;
    agent.expect_message("see file").await;
    let page = agent_browser
        .get(&format!("/console/tickets/{}", ticket_of(&app, &id).await))
        .await
        .expect_status(200);
    assert!(
        !page.contains("<img src=x"),
        "the name is escaped on the ticket page"
    );
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;gnp.exe"));
    let (_, headers, _) = agent_browser
        .download(&format!("/attachments/{file}"))
        .await;
    let disposition = header(&headers, "content-disposition");
    assert!(
        disposition.starts_with("inline; filename=\"<img src=x onerror=alert(1)>gnp.exe\""),
        "{disposition}"
    );
}

/// The upload address a ticket page's file field uses.
fn upload_path(page: &support::Page) -> String {
    let marker = "data-upload=\"";
    let at = page.body.find(marker).expect("the page has a file field") + marker.len();
    page.body[at..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn ticket_pages_take_files_and_a_note_keeps_its_file_private() {
    for db in backends("ticket page files").await {
        let app = TestApp::spawn(db).await;
        let mut admin = app.admin().await;
        let mut customer = app.customer("Cora Customer", "cora@example.com").await;
        customer.get("/tickets/new").await.expect_status(200);
        let created = customer
            .submit(
                "/tickets",
                &[
                    ("subject", "Blank invoice"),
                    ("description", "See the PDF."),
                ],
            )
            .await;
        let number = support::ticket_number(created.location.as_deref().unwrap());

        // The customer attaches the PDF to a reply in the portal: no words needed.
        let page = customer
            .get(&format!("/tickets/{number}"))
            .await
            .expect_status(200);
        assert!(page.contains("/assets/ticket.js"));
        let upload = upload_path(&page);
        let sent = customer
            .upload(&format!("{upload}?name=invoice.pdf"), pdf("invoice"), true)
            .await;
        assert_eq!(sent.status, 201, "{}", sent.body);
        let invoice = sent.json()["id"].as_str().unwrap().to_string();
        customer
            .submit(
                &format!("/tickets/{number}/reply"),
                &[("body", ""), ("attachment_id", &invoice)],
            )
            .await
            .expect_redirect(&format!("/tickets/{number}"));
        let page = customer.get(&format!("/tickets/{number}")).await;
        assert!(page.contains(&format!("href=\"/attachments/{invoice}\"")));
        assert!(page.contains("invoice.pdf"));

        // Staff see it on the console's ticket page and read it.
        let console = admin
            .get(&format!("/console/tickets/{number}"))
            .await
            .expect_status(200);
        assert!(console.contains("invoice.pdf"));
        let (status, _, bytes) = admin.download(&format!("/attachments/{invoice}")).await;
        assert_eq!((status, bytes), (200, pdf("invoice")));

        // Staff answer with a picture, and keep another file in a note.
        let upload = upload_path(&console);
        let picture = admin
            .upload(&format!("{upload}?name=fix.png"), png("fix"), true)
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        admin
            .submit(
                &format!("/console/tickets/{number}/reply"),
                &[("body", "Try this setting"), ("attachment_id", &picture)],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{number}"));
        admin.get(&format!("/console/tickets/{number}")).await;
        let internal = admin
            .upload(
                &format!("{upload}?name=internal.png"),
                png("internal"),
                true,
            )
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        admin
            .submit(
                &format!("/console/tickets/{number}/note"),
                &[("note", "Known bug"), ("attachment_id", &internal)],
            )
            .await
            .expect_redirect(&format!("/console/tickets/{number}"));

        // The customer sees the picture (a thumbnail), never the note's file.
        let page = customer.get(&format!("/tickets/{number}")).await;
        assert!(page.contains(&format!("src=\"/attachments/{picture}\"")));
        assert!(!page.contains("internal.png") && !page.contains(&internal));
        let (status, _, _) = customer.download(&format!("/attachments/{picture}")).await;
        assert_eq!(status, 200);
        let (status, _, _) = customer.download(&format!("/attachments/{internal}")).await;
        assert_eq!(status, 404, "a note's file stays with staff");

        // A file goes out once; a second reply with it is refused, nothing stored.
        admin.get(&format!("/console/tickets/{number}")).await;
        let again = admin
            .submit(
                &format!("/console/tickets/{number}/reply"),
                &[("body", "again"), ("attachment_id", &picture)],
            )
            .await;
        assert_eq!(again.status, 422, "{}", again.body);
        assert!(again.contains("already sent"));
        let page = customer.get(&format!("/tickets/{number}")).await;
        assert!(!page.contains(">again<"));
        eprintln!("ticket page files passed on {db:?}");
    }
}

#[tokio::test]
async fn uploads_never_sent_are_removed_after_a_day_and_shared_bytes_stay() {
    let test = "unsent upload sweep";
    for blobs in blob_backends(test).await {
        for db in backends(test).await {
            unsent_uploads_expire(&blobs, db).await;
            eprintln!("{test} passed on {db:?} with {} blobs", blobs.name());
        }
    }
}

async fn unsent_uploads_expire(blobs: &BlobBackend, db: Database) {
    use careline::domain::attachments::{Swept, UNSENT_UPLOAD_LIFETIME, sweep_unsent_uploads};
    let app = TestApp::spawn_with(db, |raw| blobs.configure(raw)).await;
    let site = app.allow_shop().await;
    let (mut visitor, _agent, _agent_browser, id) = live_chat(&app, &site).await;
    let token = visitor.token.clone().unwrap();
    // An S3 bucket outlives the app (one bucket for both databases): files
    // of this run's own, counted from what is there.
    let earlier = blobs.count(&app).await;
    let png = |tag: &str| png(&format!("{tag} {db:?}"));
    let pdf = |tag: &str| pdf(&format!("{tag} {db:?}"));
    let upload = |name: &'static str, bytes: Vec<u8>| {
        let (app, site, token, id) = (&app, &site, &token, &id);
        async move {
            let (status, body) = widget_upload(app, site, token, id, name, bytes).await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_string()
        }
    };
    // Sent: stays. Its twin (same bytes, never sent): its row goes, the
    // bytes stay for the sent one. Forgotten: row and bytes go.
    let sent = upload("sent.png", png("sent")).await;
    let twin = upload("twin.png", png("sent")).await;
    let forgotten = upload("forgotten.pdf", pdf("forgotten")).await;
    visitor
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "v-sent",
                     "body": "the one I meant", "attachment_id": sent}),
        )
        .await;
    visitor
        .expect(|f| f["type"] == "ack" && f["client_msg_id"] == "v-sent")
        .await;
    assert_eq!(blobs.count(&app).await, earlier + 2);

    // A day and a bit later; one more upload made just now.
    app.store.backdate_uploads(25 * 3_600_000).await.unwrap();
    let fresh = upload("fresh.pdf", pdf("fresh")).await;
    // A spool file left by a process that died mid-upload, and one of an
    // upload in progress.
    let spool = careline::blobs::spool_dir(&app.data_dir());
    let stale_spool = spool.join(".tmp-stale");
    let live_spool = spool.join(".tmp-live");
    for path in [&stale_spool, &live_spool] {
        std::fs::write(path, b"partial").unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(&stale_spool)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - 2 * UNSENT_UPLOAD_LIFETIME)
        .unwrap();

    let before = careline::store::now_ms() - UNSENT_UPLOAD_LIFETIME.as_millis() as i64;
    let swept = sweep_unsent_uploads(&app.store, &*app.blobs, &spool, before)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept {
            uploads: 2,
            blobs: 1,
            spool_files: 1
        }
    );
    assert!(app.store.attachment(&sent).await.unwrap().is_some());
    assert!(app.store.attachment(&fresh).await.unwrap().is_some());
    for gone in [&twin, &forgotten] {
        assert!(
            app.store.attachment(gone).await.unwrap().is_none(),
            "{gone}"
        );
    }
    assert_eq!(
        blobs.count(&app).await,
        earlier + 2,
        "the sent file's and the fresh one's"
    );
    assert!(!stale_spool.exists());
    assert!(live_spool.exists());

    // The sent file still downloads; the forgotten one cannot be sent any
    // more, and the customer is told what to do.
    let (status, _, bytes) = widget_download(
        &app,
        &site,
        Some(&token),
        SHOP_ORIGIN,
        &format!("/api/widget/v1/attachments/{sent}"),
    )
    .await;
    assert_eq!((status, bytes), (200, png("sent")));
    visitor
        .send(
            json!({"type": "send", "conversation_id": id, "client_msg_id": "v-late",
                     "body": "and this", "attachment_id": forgotten}),
        )
        .await;
    let refused = visitor.expect_type("error").await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("upload the file first"),
        "{refused}"
    );

    // A second sweep finds nothing; the same file uploaded again is whole.
    let again = sweep_unsent_uploads(&app.store, &*app.blobs, &spool, before)
        .await
        .unwrap();
    assert_eq!(again, Swept::default());
    let back = upload("forgotten.pdf", pdf("forgotten")).await;
    let (status, _, bytes) = widget_download(
        &app,
        &site,
        Some(&token),
        SHOP_ORIGIN,
        &format!("/api/widget/v1/attachments/{back}"),
    )
    .await;
    assert_eq!((status, bytes), (200, pdf("forgotten")));
}

#[tokio::test]
async fn an_upload_whose_bytes_cannot_be_stored_leaves_no_row_behind() {
    // A blob store that refuses connections: nothing listens on the port.
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let app = TestApp::spawn_with(Database::Sqlite, |raw| {
        raw.blob_store = "s3".into();
        raw.s3_endpoint = dead;
        raw.s3_bucket = "careline".into();
        raw.s3_region = "us-east-1".into();
        raw.s3_access_key_id = "test".into();
        raw.s3_secret_access_key = "test-secret".into();
    })
    .await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    visitor
        .send(json!({"type": "start", "client_msg_id": "v1", "body": "hello"}))
        .await;
    let id = visitor.expect_type("conversation").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = visitor.token.clone().unwrap();
    let (status, body) = widget_upload(&app, &site, &token, &id, "a.png", png("a")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let unsent = app
        .store
        .unsent_uploads_since(id.parse().unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(unsent, 0, "the refused upload's row was left behind");
}
