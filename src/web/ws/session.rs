//! One socket's conversation with the server: authentication by `hello`,
//! a per-socket rate limit, and each client frame turned into a call to the
//! chat service. Errors become `error` frames; the socket stays open.
//!
//! The frames are answered by one method each: `hello` in `hello.rs`,
//! the visitor's own frames in `visitor.rs`, the agent's in `agent.rs`,
//! `resume` in `resume.rs`, and those both sides send (`send`, `typing`,
//! `read`) here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::PreAuth;
use super::account::AgentAccount;
use super::hub::{SocketId, close};
use super::outbox::Outbox;
use crate::bus::Topic;
use crate::domain::DomainError;
use crate::domain::chat::{Audience, Participant, Sent};
use crate::model::{Conversation, ConversationId, User, Visitor};
use crate::protocol::{ClientFrame, ServerFrame, parse_client_frame};
use crate::store::Site;
use crate::web::AppState;
use crate::web::error::ErrorParts;

/// Refused frames in a row before the socket is closed (1008).
const MAX_STRIKES: u32 = 30;
/// Longest a reply may wait for room in this socket's queue.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// An agent's console speaks for many conversations at once (a reply, a
/// read receipt and typing in each of ten), so it may send this many times
/// a widget's frames. It is a logged-in member of staff: the limit is there
/// to stop a runaway client, not a stranger.
const CONSOLE_RATE_FACTOR: f64 = 3.0;

/// A token bucket: `burst` frames at once, refilled at `per_second`.
struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One socket's state. The fields are open to the frame handlers beside
/// this file (`hello.rs`, `visitor.rs`, `agent.rs`, …), which are methods
/// of this type.
pub(super) struct Session {
    pub(super) state: AppState,
    pub(super) id: SocketId,
    pub(super) outbox: Arc<Outbox>,
    pub(super) site: Option<Site>,
    pub(super) pending_agent: Option<(User, String)>,
    /// Rung by the hub when this console's account changes.
    pub(super) account_changed: Option<Arc<Notify>>,
    pub(super) account: Option<Arc<AgentAccount>>,
    pub(super) who: Option<Participant>,
    bucket: Bucket,
    strikes: u32,
    pub(super) agent_online: Arc<AtomicBool>,
    pub(super) heartbeat: Option<JoinHandle<()>>,
}

pub(super) type Reply = Result<(), DomainError>;

impl Session {
    pub(super) fn new(
        state: AppState,
        id: SocketId,
        outbox: Arc<Outbox>,
        auth: PreAuth,
        account_changed: Option<Arc<Notify>>,
    ) -> Session {
        let (site, pending_agent) = match auth {
            PreAuth::Visitor(site) => (Some(site), None),
            PreAuth::Agent(user, token) => (None, Some((user, token))),
        };
        let factor = if pending_agent.is_some() {
            CONSOLE_RATE_FACTOR
        } else {
            1.0
        };
        let burst = f64::from(state.config().ws_frame_burst) * factor;
        let bucket = Bucket {
            tokens: burst,
            burst,
            per_second: f64::from(state.config().ws_frames_per_second) * factor,
            at: Instant::now(),
        };
        Session {
            state,
            id,
            outbox,
            site,
            pending_agent,
            account_changed,
            account: None,
            who: None,
            bucket,
            strikes: 0,
            agent_online: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
        }
    }

    pub(super) fn needs_hello(&self) -> bool {
        self.who.is_none()
    }

    pub(super) async fn send(&self, frame: ServerFrame) {
        let text: Utf8Bytes = frame.to_text().as_ref().into();
        // Waiting here only slows this socket's own reader; a client that
        // stops reading altogether is closed as too slow.
        match tokio::time::timeout(SEND_TIMEOUT, self.outbox.push(text)).await {
            Ok(Ok(())) => {}
            // The writer has stopped (the socket is closing): nothing to wait for.
            Ok(Err(_closed)) => {}
            Err(_) => self.kill(close::TOO_SLOW),
        }
    }

    /// Sends a conversation's state as `audience` sees it.
    pub(super) async fn send_conversation(&self, c: &Conversation, audience: Audience) {
        let frame = self.state.chat().conversation_frame(c, audience);
        self.send(ServerFrame::Conversation(frame)).await;
    }

    pub(super) async fn error(
        &self,
        code: &'static str,
        message: String,
        reference: Option<Value>,
    ) {
        self.send(ServerFrame::Error {
            code,
            message,
            reference,
        })
        .await;
    }

    pub(super) async fn refuse_binary(&self) {
        self.error(
            "bad_frame",
            "binary frames are not accepted; send JSON text".into(),
            None,
        )
        .await;
    }

    /// Handles one text frame; false means the socket must close.
    pub(super) async fn handle_text(&mut self, text: &str) -> bool {
        if !self.bucket.take() {
            self.strikes += 1;
            if self.strikes > MAX_STRIKES {
                self.kill(close::POLICY);
                return false;
            }
            self.error("rate_limited", "too many frames; slow down".into(), None)
                .await;
            return true;
        }
        self.strikes = 0;
        let (frame, reference) = match parse_client_frame(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.error(e.code, e.message, e.reference).await;
                return true;
            }
        };
        let result = self.dispatch(frame, reference.clone()).await;
        if let Err(error) = result {
            let parts = ErrorParts::of(&error, "socket frame failed");
            let Some(code) = parts.socket_code() else {
                self.kill(close::SESSION_ENDED);
                return false;
            };
            self.error(code, parts.socket_message(), reference).await;
        }
        true
    }

    pub(super) fn kill(&self, code: u16) {
        // The hub owns the kill switch; reach it through our registration.
        self.state.hub().kill(self.id, code);
    }

    pub(super) async fn subscribe(&self, topic: Topic) -> Reply {
        self.state
            .hub()
            .subscribe(self.id, topic)
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    pub(super) async fn unsubscribe(&self, topic: Topic) -> Reply {
        self.state
            .hub()
            .unsubscribe(self.id, topic)
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    pub(super) fn audience(&self) -> Audience {
        match self.who {
            Some(Participant::Agent(_)) => Audience::Staff,
            _ => Audience::Visitor,
        }
    }

    pub(super) fn conversation_topic(&self, id: ConversationId) -> Topic {
        match self.audience() {
            Audience::Staff => Topic::Staff(id),
            Audience::Visitor => Topic::Public(id),
        }
    }

    /// Who speaks on this socket as of now; an error if no one yet (no
    /// `hello`), or no longer (the agent's session has ended).
    fn speaker(&mut self) -> Result<Participant, DomainError> {
        let Some(mut who) = self.who.clone() else {
            return Err(crate::domain::invalid("type", "say hello first"));
        };
        // An agent acts with the account as last checked: a logout, a
        // password change or a lost staff role ends the socket (4401) once
        // the announcement has reached this instance and the session has
        // been looked up, and no frame is handled after that. Without its
        // heartbeat (the task that checks) nothing would: then it ends too.
        if let Some(account) = &self.account {
            if self.heartbeat.as_ref().is_none_or(|h| h.is_finished()) {
                return Err(DomainError::Unauthenticated);
            }
            let user = account.current().ok_or(DomainError::Unauthenticated)?;
            who = Participant::Agent(user);
            self.who = Some(who.clone());
        }
        Ok(who)
    }

    /// Answers a frame with the method for its kind; a frame for the other
    /// side of the chat is refused (`unknown_type`).
    async fn dispatch(&mut self, frame: ClientFrame, reference: Option<Value>) -> Reply {
        let who = match frame {
            ClientFrame::Hello { visitor_token, .. } => {
                return self.on_hello(visitor_token, reference).await;
            }
            _ => self.speaker()?,
        };
        match frame {
            ClientFrame::Hello { .. } => unreachable!("hello is answered before anyone speaks"),
            ClientFrame::Start {
                client_msg_id,
                body,
                ..
            } => {
                self.on_start(visitor(&who)?, client_msg_id, body, reference)
                    .await
            }
            ClientFrame::Send {
                conversation_id,
                client_msg_id,
                body,
                attachment_id,
                ..
            } => {
                let write = Write {
                    conversation_id: ConversationId(conversation_id),
                    client_msg_id,
                    body,
                    attachment_id,
                };
                self.on_send(&who, write, reference).await
            }
            ClientFrame::Note {
                conversation_id,
                client_msg_id,
                body,
                attachment_id,
                ..
            } => {
                let note = Write {
                    conversation_id: ConversationId(conversation_id),
                    client_msg_id,
                    body,
                    attachment_id,
                };
                self.on_note(agent(&who)?, note, reference).await
            }
            ClientFrame::Resume {
                conversation_id,
                after_seq,
                ..
            } => {
                self.on_resume(&who, ConversationId(conversation_id), after_seq, reference)
                    .await
            }
            ClientFrame::Typing {
                conversation_id, ..
            } => self.on_typing(&who, ConversationId(conversation_id)).await,
            ClientFrame::Read {
                conversation_id,
                seq,
                ..
            } => {
                self.on_read(&who, ConversationId(conversation_id), seq)
                    .await
            }
            ClientFrame::Handoff {
                conversation_id, ..
            } => {
                self.on_handoff(visitor(&who)?, ConversationId(conversation_id))
                    .await
            }
            ClientFrame::Rate {
                conversation_id,
                score,
                comment,
                ..
            } => {
                self.on_rate(
                    visitor(&who)?,
                    ConversationId(conversation_id),
                    score,
                    comment,
                )
                .await
            }
            ClientFrame::Contact { name, email, .. } => {
                self.on_contact(visitor(&who)?, name, email).await
            }
            ClientFrame::Presence { status, .. } => self.on_presence(agent(&who)?, &status).await,
            ClientFrame::WatchQueue { .. } => {
                agent(&who)?;
                self.on_watch_queue().await
            }
            ClientFrame::Claim {
                conversation_id, ..
            } => {
                self.on_claim(agent(&who)?, ConversationId(conversation_id))
                    .await
            }
            ClientFrame::Transfer {
                conversation_id,
                agent_id,
                ..
            } => {
                self.on_transfer(agent(&who)?, ConversationId(conversation_id), agent_id)
                    .await
            }
            ClientFrame::Resolve {
                conversation_id, ..
            } => {
                self.on_resolve(agent(&who)?, ConversationId(conversation_id))
                    .await
            }
        }
    }

    /// `send`: a visitor's message, or an agent's reply to the customer.
    async fn on_send(&self, who: &Participant, write: Write, reference: Option<Value>) -> Reply {
        match who {
            Participant::Visitor(visitor) => self.visitor_sends(visitor, write, reference).await,
            Participant::Agent(agent) => self.agent_writes(agent, write, false, reference).await,
        }
    }

    /// `typing`: tells the others in a conversation that this side is typing.
    async fn on_typing(&self, who: &Participant, conversation_id: ConversationId) -> Reply {
        self.state.chat().typing(who, conversation_id).await
    }

    /// `read`: records that this side has read a conversation up to `seq`.
    async fn on_read(&self, who: &Participant, conversation_id: ConversationId, seq: i64) -> Reply {
        self.state.chat().read(who, conversation_id, seq).await
    }

    /// Acknowledges a stored message in the sender's numbering; a retried
    /// send is acknowledged again but not counted again.
    pub(super) async fn acknowledge(
        &self,
        sent: &Sent,
        audience: Audience,
        reference: Option<Value>,
    ) {
        if !sent.duplicate {
            self.state
                .chat()
                .metrics()
                .messages_in
                .fetch_add(1, Ordering::Relaxed);
        }
        let message = &sent.message;
        let seq = match audience {
            Audience::Staff => message.seq,
            Audience::Visitor => message.public_seq.unwrap_or(0),
        };
        self.send(ServerFrame::Ack {
            client_msg_id: message.client_msg_id.clone(),
            conversation_id: message.conversation_id.to_string(),
            seq,
            id: message.id.to_string(),
            reference,
        })
        .await;
    }

    /// The socket is gone: visitor offline; an agent with no other socket
    /// here goes away so that nothing new is routed to a closed console.
    pub(super) async fn finish(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        match &self.who {
            Some(Participant::Visitor(visitor)) => {
                self.state.chat().visitor_disconnected(visitor.id).await
            }
            Some(Participant::Agent(agent))
                if self.agent_online.load(Ordering::Acquire)
                    && self.state.hub().agent_sockets(agent.id) == 0 =>
            {
                if let Err(e) = self.state.chat().agent_left(agent).await {
                    tracing::warn!(error = %e, "could not mark agent away");
                }
            }
            Some(Participant::Agent(_)) => {}
            None => {}
        }
    }
}

/// The visitor behind a frame only visitors send.
fn visitor(who: &Participant) -> Result<&Visitor, DomainError> {
    match who {
        Participant::Visitor(visitor) => Ok(visitor),
        Participant::Agent(_) => Err(DomainError::Forbidden("this frame is for visitors")),
    }
}

/// The agent behind a frame only agents send.
fn agent(who: &Participant) -> Result<&User, DomainError> {
    match who {
        Participant::Agent(agent) => Ok(agent),
        Participant::Visitor(_) => Err(DomainError::Forbidden("this frame is for agents")),
    }
}

/// A `send` or `note` frame's message, as the session passes it on.
pub(super) struct Write {
    pub(super) conversation_id: ConversationId,
    pub(super) client_msg_id: String,
    pub(super) body: String,
    pub(super) attachment_id: Option<String>,
}
