//! The security suite, socket side: malformed bytes and pathological JSON.
//! (Origins, other people's conversations, floods and oversized frames are
//! in chat_contract.rs; docs/security.md lists every case.)

mod support;

use std::time::Duration;

use serde_json::json;
use support::ws::SHOP_ORIGIN;
use support::{Database, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens a raw WebSocket (handshake by hand) so that frames the client
/// libraries refuse to send can be sent.
async fn raw_socket(app: &TestApp, site: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /ws?site={site} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {SHOP_ORIGIN}\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 1024];
    let n = stream.read(&mut response).await.unwrap();
    assert!(
        String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 101"),
        "upgraded"
    );
    stream
}

/// A masked client frame (`opcode` 1 = text).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode];
    assert!(payload.len() < 126);
    out.push(0x80 | payload.len() as u8);
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_only_that_socket() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut bystander = app.visitor(&site).await;
    let mut attacker = raw_socket(&app, &site).await;
    attacker
        .write_all(&frame(1, &[0x7b, 0xff, 0xfe, 0x7d]))
        .await
        .unwrap();
    // The server ends the connection (a close frame, then EOF, or a reset).
    let mut buf = vec![0u8; 256];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match attacker.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) if buf[0] & 0x0f == 0x8 && n >= 2 => return true, // close frame
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the socket with bad bytes is closed");
    bystander.send(json!({"type": "start"})).await;
    bystander.expect_type("conversation").await;
}

#[tokio::test]
async fn deeply_nested_or_huge_number_json_gets_an_error_and_the_socket_stays_usable() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    let mut visitor = app.visitor(&site).await;
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    visitor
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(nested.into()))
        .await;
    assert_eq!(visitor.expect_type("error").await["code"], "bad_frame");
    let object_nest = format!(
        "{{\"type\":\"start\",\"x\":{}1{}}}",
        "{\"a\":".repeat(3000),
        "}".repeat(3000)
    );
    visitor
        .send_raw(tokio_tungstenite::tungstenite::Message::Text(
            object_nest.into(),
        ))
        .await;
    let error = visitor.expect_type("error").await;
    assert!(
        error["code"] == "bad_frame" || error["code"] == "invalid",
        "{error}"
    );
    visitor
        .send(json!({"type": "resume", "conversation_id": "1e999", "after_seq": 1e300}))
        .await;
    assert_eq!(visitor.expect_type("error").await["code"], "invalid");
    visitor.send(json!({"type": "start"})).await;
    visitor.expect_type("conversation").await;
    assert_eq!(
        visitor.ended(Duration::from_millis(200)).await,
        None,
        "still open"
    );
}

#[tokio::test]
async fn a_socket_that_never_upgrades_properly_is_refused() {
    let app = TestApp::spawn(Database::Sqlite).await;
    let site = app.allow_shop().await;
    // No Origin at all: refused before the upgrade.
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET /ws?site={site} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        app.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 512];
    let n = stream.read(&mut response).await.unwrap();
    assert!(
        String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&response[..n])
    );
}
