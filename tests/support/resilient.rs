//! A client that behaves like widget.js and console.js on a bad day: it
//! reconnects (through the load balancer) whenever its socket ends, says
//! hello, resumes its conversation from the last seq it holds, resends what
//! was not acknowledged (same client_msg_id), and drops a seq it already has.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub enum Identity {
    Visitor {
        site: String,
        token: String,
        origin: String,
    },
    Agent {
        cookie: String,
        origin: String,
    },
}

pub struct Resilient {
    pub label: &'static str,
    addr: String,
    identity: Identity,
    socket: Option<WebSocketStream<MaybeTlsStream<TcpStream>>>,
    pub conversation: String,
    /// seq -> message frame: what this client shows, in order, once each.
    pub held: BTreeMap<i64, Value>,
    /// Sent but not acknowledged: resent after a reconnect.
    pub unacked: BTreeMap<String, String>,
    pub acked: usize,
    pub reconnects: usize,
    pub duplicates_dropped: usize,
    pub instance: Option<String>,
    /// Every other frame received, in order.
    pub extra: Vec<Value>,
    pub resumes_required: usize,
    resume_wanted: bool,
}

impl Resilient {
    pub fn new(
        label: &'static str,
        addr: &str,
        identity: Identity,
        conversation: &str,
    ) -> Resilient {
        Resilient {
            label,
            addr: addr.to_string(),
            identity,
            socket: None,
            conversation: conversation.to_string(),
            held: BTreeMap::new(),
            unacked: BTreeMap::new(),
            acked: 0,
            reconnects: 0,
            duplicates_dropped: 0,
            instance: None,
            extra: Vec::new(),
            resumes_required: 0,
            resume_wanted: false,
        }
    }

    /// The highest seq held with nothing missing below it, as the
    /// protocol says to resume from (docs/protocol.md §6.4): resuming from
    /// the highest held would never fill a gap below a message that came
    /// live after a loss (a message that overtook a `resume_required`).
    fn last_seq(&self) -> i64 {
        let mut last = 0;
        while self.held.contains_key(&(last + 1)) {
            last += 1;
        }
        last
    }

    /// Connects (retrying for up to 30 s), says hello and resumes.
    pub async fn connect(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_connect().await {
                Ok(()) => return,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{}: could not reconnect within 30 s: {e}", self.label),
            }
        }
    }

    async fn try_connect(&mut self) -> Result<(), String> {
        let (path, origin, cookie) = match &self.identity {
            Identity::Visitor { site, origin, .. } => {
                (format!("/ws?site={site}"), origin.clone(), None)
            }
            Identity::Agent { cookie, origin } => {
                ("/ws".to_string(), origin.clone(), Some(cookie.clone()))
            }
        };
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .map_err(|e| e.to_string())?;
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("Cookie", cookie.parse().unwrap());
        }
        let (mut socket, response) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(request),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
        self.instance = response
            .headers()
            .get("x-careline-instance")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let hello = match &self.identity {
            Identity::Visitor { token, .. } => json!({"type": "hello", "visitor_token": token}),
            Identity::Agent { .. } => json!({"type": "hello"}),
        };
        socket
            .send(Message::Text(hello.to_string().into()))
            .await
            .map_err(|e| e.to_string())?;
        if !self.conversation.is_empty() {
            let resume = json!({"type": "resume", "conversation_id": self.conversation, "after_seq": self.last_seq()});
            socket
                .send(Message::Text(resume.to_string().into()))
                .await
                .map_err(|e| e.to_string())?;
        }
        for (id, body) in &self.unacked {
            let frame = json!({"type": "send", "conversation_id": self.conversation, "client_msg_id": id, "body": body});
            socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .map_err(|e| e.to_string())?;
        }
        self.socket = Some(socket);
        Ok(())
    }

    /// Sends a new message (or queues it until the next reconnect).
    pub async fn send(&mut self, client_msg_id: String, body: String) {
        self.unacked.insert(client_msg_id.clone(), body.clone());
        let frame = json!({"type": "send", "conversation_id": self.conversation, "client_msg_id": client_msg_id, "body": body});
        self.send_frame(frame).await;
    }

    pub async fn send_frame(&mut self, frame: Value) {
        if let Some(socket) = self.socket.as_mut()
            && socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
        {
            self.socket = None;
        }
    }

    /// Reads for up to `wait`, reconnecting if the socket ends.
    pub async fn pump(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.socket.is_none() {
                self.reconnects += 1;
                self.connect().await;
            }
            if std::mem::take(&mut self.resume_wanted) {
                let resume = json!({"type": "resume", "conversation_id": self.conversation, "after_seq": self.last_seq()});
                self.send_frame(resume).await;
                continue;
            }
            let socket = self.socket.as_mut().expect("connected");
            match tokio::time::timeout_at(deadline, socket.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    self.take(frame);
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    self.socket = None;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    fn take(&mut self, frame: Value) {
        match frame["type"].as_str() {
            Some("message") if frame["conversation_id"] == self.conversation.as_str() => {
                let seq = frame["seq"].as_i64().expect("seq");
                match self.held.entry(seq) {
                    std::collections::btree_map::Entry::Occupied(_) => self.duplicates_dropped += 1,
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert(frame);
                    }
                }
            }
            Some("ack") => {
                if let Some(id) = frame["client_msg_id"].as_str()
                    && self.unacked.remove(id).is_some()
                {
                    self.acked += 1;
                }
            }
            Some("resume_required") => {
                self.resumes_required += 1;
                self.resume_wanted = true;
                self.extra.push(frame);
            }
            _ => self.extra.push(frame),
        }
    }

    /// Bodies held from `sender_kind`, in seq order.
    pub fn bodies_from(&self, sender_kind: &str) -> Vec<String> {
        self.held
            .values()
            .filter(|m| m["sender"]["kind"] == sender_kind)
            .map(|m| m["body"].as_str().unwrap().to_string())
            .collect()
    }

    /// Whether the seqs held run without a gap from the first one.
    pub fn gap_free(&self) -> bool {
        let seqs: Vec<i64> = self.held.keys().copied().collect();
        seqs.windows(2).all(|w| w[1] == w[0] + 1)
    }
}

impl Resilient {
    /// Reads until a frame other than a message matches `pred` (30 s at most).
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        loop {
            if let Some(found) = self.extra[seen..].iter().find(|f| pred(f)) {
                return found.clone();
            }
            seen = self.extra.len();
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: no {what} within 30 s; got {:#?}",
                self.label,
                self.extra
            );
            self.pump(Duration::from_millis(50)).await;
        }
    }
}
