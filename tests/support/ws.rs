//! A WebSocket client that speaks Careline's protocol, for tests: a widget
//! visitor (bootstrapped over HTTP like widget.js) or a logged-in agent.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Browser, TestApp};

pub const SHOP_ORIGIN: &str = "http://shop.example";

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every frame received so far, in order.
    pub log: Vec<Value>,
    cursor: usize,
    pub token: Option<String>,
}

/// See [`TestApp::live_chat`].
pub struct LiveChat {
    pub visitor: WsClient,
    pub agent: WsClient,
    pub agent_browser: Browser,
    /// The conversation's id.
    pub id: String,
}

/// How the socket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl TestApp {
    /// Lets pages on [`SHOP_ORIGIN`] embed the default site's widget; returns its key.
    pub async fn allow_shop(&self) -> String {
        let site = self.store.default_site().await.unwrap();
        let settings = careline::store::SiteSettings {
            name: site.name.clone(),
            allowed_origins: vec![SHOP_ORIGIN.to_string()],
            greeting: site.greeting.clone(),
            color: site.color.clone(),
            require_email: false,
            position: careline::model::WidgetPosition::BottomRight,
        };
        self.store.update_site(site.id, &settings).await.unwrap();
        site.key
    }

    /// `POST /api/widget/v1/session` as widget.js does it.
    pub async fn widget_session(&self, origin: &str, body: Value) -> reqwest::Response {
        careline::http_client(std::time::Duration::from_secs(30))
            .post(format!("{}/api/widget/v1/session", self.base))
            .header("Origin", origin)
            .json(&body)
            .send()
            .await
            .expect("session request answered")
    }

    /// A new widget visitor on the shop's page, connected and welcomed.
    pub async fn visitor(&self, site_key: &str) -> WsClient {
        self.visitor_at(SHOP_ORIGIN, site_key).await
    }

    /// A new widget visitor of site `site_key` on a page at `origin`.
    pub async fn visitor_at(&self, origin: &str, site_key: &str) -> WsClient {
        let response = self
            .widget_session(origin, json!({"site_key": site_key}))
            .await;
        assert_eq!(response.status(), 200);
        let session: Value = response.json().await.unwrap();
        let token = session["visitor_token"].as_str().unwrap().to_string();
        self.visitor_with_token_at(origin, site_key, &token).await
    }

    pub async fn visitor_with_token(&self, site_key: &str, token: &str) -> WsClient {
        self.visitor_with_token_at(SHOP_ORIGIN, site_key, token)
            .await
    }

    pub async fn visitor_with_token_at(
        &self,
        origin: &str,
        site_key: &str,
        token: &str,
    ) -> WsClient {
        let mut client = self
            .connect_ws(&format!("/ws?site={site_key}"), origin, None)
            .await
            .expect("upgrade");
        client.token = Some(token.to_string());
        client
            .send(json!({"type": "hello", "visitor_token": token}))
            .await;
        client.expect_type("welcome").await;
        client
    }

    /// An agent's console socket, authenticated by the browser's session cookie.
    pub async fn agent_socket(&self, browser: &Browser) -> WsClient {
        let cookie = browser.cookie_header();
        let mut client = self
            .connect_ws("/ws", &self.base, Some(&cookie))
            .await
            .expect("upgrade");
        client.send(json!({"type": "hello"})).await;
        client.expect_type("welcome").await;
        client
    }

    /// A customer and an agent in a live conversation (the agent has claimed
    /// it and resumed it): what many tests start from.
    pub async fn live_chat(&self, site: &str) -> LiveChat {
        let mut admin = self.admin().await;
        let agent_browser = self
            .agent(&mut admin, "Alan Agent", "alan@example.com")
            .await;
        let mut agent = self.agent_socket(&agent_browser).await;
        let mut visitor = self.visitor(site).await;
        visitor
            .send(json!({"type": "start", "client_msg_id": "v0", "body": "hello"}))
            .await;
        let id = visitor.expect_type("conversation").await["id"]
            .as_str()
            .unwrap()
            .to_string();
        visitor
            .send(json!({"type": "handoff", "conversation_id": id}))
            .await;
        visitor
            .expect(|f| f["type"] == "conversation" && f["status"] == "waiting")
            .await;
        agent.claim(&id).await;
        agent
            .send(json!({"type": "resume", "conversation_id": id, "after_seq": 0}))
            .await;
        agent.expect_type("resumed").await;
        LiveChat {
            visitor,
            agent,
            agent_browser,
            id,
        }
    }

    /// Opens a socket; Err carries the HTTP status of a refused upgrade.
    pub async fn connect_ws(
        &self,
        path: &str,
        origin: &str,
        cookie: Option<&str>,
    ) -> Result<WsClient, u16> {
        let url = format!("ws://{}{path}", self.addr);
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("Cookie", HeaderValue::from_str(cookie).unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(WsClient {
                stream,
                log: Vec::new(),
                cursor: 0,
                token: None,
            }),
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("websocket connect failed: {e}"),
        }
    }
}

impl WsClient {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("send frame");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("send raw");
    }

    /// The next frame not yet looked at (waits up to 10 s).
    pub async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(10))
            .await
            .expect("a frame within 10 s")
    }

    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        if self.cursor < self.log.len() {
            self.cursor += 1;
            return Some(self.log[self.cursor - 1].clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()??;
            match message {
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    self.log.push(value.clone());
                    self.cursor = self.log.len();
                    return Some(value);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Reads until a frame matches `pred`; earlier frames stay in the log.
    pub async fn expect_named(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            match self.try_next(Duration::from_secs(10)).await {
                Some(frame) if pred(&frame) => return frame,
                Some(_) => continue,
                None => panic!(
                    "socket ended or 10 s passed waiting for {what}; got {:#?}",
                    self.log
                ),
            }
        }
    }

    /// Reads until a frame matches `pred`.
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        self.expect_named("a matching frame", pred).await
    }

    pub async fn expect_type(&mut self, kind: &str) -> Value {
        self.expect_named(kind, |f| f["type"] == kind).await
    }

    /// A visitor leaves a name and an address (`contact`); returns the
    /// `welcome` that greets them by name.
    pub async fn leave_contact(&mut self, name: &str, email: &str) -> Value {
        self.send(json!({"type": "contact", "name": name, "email": email}))
            .await;
        self.expect_named("the welcome by name", |f| {
            f["type"] == "welcome" && f["user"]["name"] == name
        })
        .await
    }

    /// An agent's console goes online and watches the queue; returns with
    /// the first queue snapshot (presence is written before the next frame
    /// is handled, so routing counts the agent from here on).
    pub async fn go_online(&mut self) -> Value {
        self.send(json!({"type": "presence", "status": "online"}))
            .await;
        self.send(json!({"type": "watch_queue"})).await;
        self.expect_type("queue").await
    }

    /// Claims conversation `id` (an agent's socket) and returns the
    /// `conversation` frame that says it is live.
    pub async fn claim(&mut self, id: &str) -> Value {
        self.send(json!({"type": "claim", "conversation_id": id}))
            .await;
        self.expect_named("the claimed conversation, live", |f| {
            f["type"] == "conversation" && f["status"] == "live"
        })
        .await
    }

    /// The next message frame with this body.
    pub async fn expect_message(&mut self, body: &str) -> Value {
        self.expect_named(&format!("message {body:?}"), |f| {
            f["type"] == "message" && f["body"] == body
        })
        .await
    }

    /// Frames of type `kind` received so far.
    pub fn seen(&self, kind: &str) -> Vec<&Value> {
        self.log.iter().filter(|f| f["type"] == kind).collect()
    }

    /// Waits for the server to end the socket; reports the close code.
    pub async fn ended(&mut self, wait: Duration) -> Option<Ended> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) => return Some(Ended::Dropped),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code))));
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Ok(value) = serde_json::from_str(&text) {
                        self.log.push(value);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_))) => return Some(Ended::Dropped),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Drops the TCP connection without a close handshake (a network drop).
    pub fn drop_connection(self) {
        drop(self);
    }
}
