//! One socket's conversation with the server: authentication by `hello`,
//! a per-socket rate limit, and each client frame turned into a call to the
//! chat service. Errors become `error` frames; the socket stays open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::PreAuth;
use super::hub::{SocketId, close};
use super::outbox::Outbox;
use crate::auth::hash_token;
use crate::bus::Topic;
use crate::domain::DomainError;
use crate::domain::chat::{Audience, Participant, Sent};
use crate::model::{ConversationStatus, User, UserId};
use crate::protocol::{ClientFrame, ServerFrame, UserRef, parse_client_frame};
use crate::store::{Site, now_ms};
use crate::web::AppState;

/// Refused frames in a row before the socket is closed (1008).
const MAX_STRIKES: u32 = 30;
/// Longest a reply may wait for room in this socket's queue.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an agent's presence is refreshed and their session re-checked
/// (besides at once on an account event, and at the session's expiry).
const HEARTBEAT: Duration = Duration::from_secs(30);

/// How soon a session check that failed (the database did not answer) is
/// tried again.
const RECHECK_AFTER_ERROR: Duration = Duration::from_secs(1);

/// The agent behind a console as of the last check of their session, or
/// `None` once it ended. Frames read it instead of asking the database each
/// time: the heartbeat task re-checks when the account changes (a bus event
/// on its account topic), when the session expires, and every [`HEARTBEAT`].
#[derive(Default)]
struct AgentAccount(Mutex<Option<User>>);

impl AgentAccount {
    fn current(&self) -> Option<User> {
        self.0.lock().expect("account lock").clone()
    }

    fn set(&self, user: Option<User>) {
        *self.0.lock().expect("account lock") = user;
    }
}

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

pub(super) struct Session {
    state: AppState,
    id: SocketId,
    outbox: Arc<Outbox>,
    site: Option<Site>,
    pending_agent: Option<(User, String)>,
    /// Rung by the hub when this console's account changes.
    account_changed: Option<Arc<Notify>>,
    account: Option<Arc<AgentAccount>>,
    who: Option<Participant>,
    bucket: Bucket,
    strikes: u32,
    agent_online: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

type Reply = Result<(), DomainError>;

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

    async fn send(&self, frame: ServerFrame) {
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

    async fn error(&self, code: &'static str, message: String, reference: Option<Value>) {
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
            let (code, message) = match error {
                DomainError::Invalid { field, message } => {
                    ("invalid", format!("{field}: {message}"))
                }
                DomainError::TooLarge { field, message } => {
                    ("too_large", format!("{field}: {message}"))
                }
                DomainError::NotFound => ("not_found", "no such conversation".to_string()),
                DomainError::Conflict(message) => ("conflict", message),
                DomainError::Forbidden(message) => ("unknown_type", message.to_string()),
                DomainError::BadCredentials | DomainError::Unauthenticated => {
                    self.kill(close::SESSION_ENDED);
                    return false;
                }
                other => {
                    let reference = crate::auth::random_token(6);
                    tracing::error!(%reference, error = %other, "socket frame failed");
                    (
                        "internal",
                        format!(
                            "something went wrong on our side (reference {reference}); try again"
                        ),
                    )
                }
            };
            self.error(code, message, reference).await;
        }
        true
    }

    fn kill(&self, code: u16) {
        // The hub owns the kill switch; reach it through our registration.
        self.state.hub().kill(self.id, code);
    }

    async fn subscribe(&self, topic: Topic) -> Reply {
        self.state
            .hub()
            .subscribe(self.id, topic)
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    async fn unsubscribe(&self, topic: Topic) -> Reply {
        self.state
            .hub()
            .unsubscribe(self.id, topic)
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    fn audience(&self) -> Audience {
        match self.who {
            Some(Participant::Agent(_)) => Audience::Staff,
            _ => Audience::Visitor,
        }
    }

    fn conversation_topic(&self, id: i64) -> Topic {
        match self.audience() {
            Audience::Staff => Topic::Staff(id),
            Audience::Visitor => Topic::Public(id),
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame, reference: Option<Value>) -> Reply {
        let chat = self.state.chat().clone();
        let kind = frame.type_name();
        if let ClientFrame::Hello { visitor_token, .. } = frame {
            return self.hello(visitor_token, reference).await;
        }
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
        match (who, frame) {
            (
                Participant::Visitor(visitor),
                ClientFrame::Start {
                    client_msg_id,
                    body,
                    ..
                },
            ) => {
                let c = chat.start(&visitor, client_msg_id.as_deref()).await?;
                self.subscribe(Topic::Public(c.id)).await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Visitor),
                ))
                .await;
                if let Some(body) = body.filter(|b| !b.trim().is_empty()) {
                    let client_msg_id = client_msg_id.unwrap_or_else(|| format!("start-{}", c.id));
                    let sent = chat
                        .send_as_visitor(&visitor, c.id, &client_msg_id, &body, None)
                        .await?;
                    self.acknowledge(&sent, Audience::Visitor, reference).await;
                }
                Ok(())
            }
            (
                Participant::Visitor(visitor),
                ClientFrame::Send {
                    conversation_id,
                    client_msg_id,
                    body,
                    attachment_id,
                    ..
                },
            ) => {
                let topic = Topic::Public(conversation_id);
                // This socket follows only conversations it has checked are
                // the visitor's (hello, start, resume, an earlier send), so
                // following it is proof enough: no lookup on the hot path.
                if !self.state.hub().is_subscribed(self.id, topic) {
                    // Theirs? Then follow it before writing, so that what the
                    // write causes (a reopen, a quick reply) is not missed.
                    chat.visitor_conversation(&visitor, conversation_id).await?;
                    self.subscribe(topic).await?;
                }
                let sent = chat
                    .send_as_visitor_to(
                        &visitor,
                        conversation_id,
                        &client_msg_id,
                        &body,
                        attachment_id.as_deref(),
                    )
                    .await?;
                self.acknowledge(&sent, Audience::Visitor, reference).await;
                Ok(())
            }
            (
                Participant::Agent(agent),
                ClientFrame::Send {
                    conversation_id,
                    client_msg_id,
                    body,
                    attachment_id,
                    ..
                },
            ) => {
                let write = AgentWrite {
                    conversation_id,
                    client_msg_id: &client_msg_id,
                    body: &body,
                    private: false,
                    attachment_id: attachment_id.as_deref(),
                };
                self.agent_writes(&agent, write, reference).await
            }
            (
                Participant::Agent(agent),
                ClientFrame::Note {
                    conversation_id,
                    client_msg_id,
                    body,
                    attachment_id,
                    ..
                },
            ) => {
                let write = AgentWrite {
                    conversation_id,
                    client_msg_id: &client_msg_id,
                    body: &body,
                    private: true,
                    attachment_id: attachment_id.as_deref(),
                };
                self.agent_writes(&agent, write, reference).await
            }
            (
                who,
                ClientFrame::Resume {
                    conversation_id,
                    after_seq,
                    ..
                },
            ) => {
                let c = chat.conversation_for(&who, conversation_id).await?;
                // Subscribe first, then read: a message committed meanwhile
                // arrives live, from the database, or both (clients drop
                // the seq they already hold), never neither.
                self.subscribe(self.conversation_topic(c.id)).await?;
                let audience = self.audience();
                // Page by page: memory stays bounded however long the history.
                let mut cursor = chat.replay_start(&c, audience, after_seq).await?;
                let last = loop {
                    let (frames, next, more) = chat.replay_page(&c, audience, cursor).await?;
                    for frame in frames {
                        self.send(frame).await;
                    }
                    if self.outbox.is_closed() {
                        // The socket is closing: no use reading the rest.
                        return Ok(());
                    }
                    cursor = next;
                    if !more {
                        break cursor.last;
                    }
                };
                let fresh = chat.conversation_for(&who, conversation_id).await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&fresh, audience),
                ))
                .await;
                self.send(ServerFrame::Resumed {
                    conversation_id: c.id.to_string(),
                    last_seq: last,
                    reference,
                })
                .await;
                Ok(())
            }
            (
                who,
                ClientFrame::Typing {
                    conversation_id, ..
                },
            ) => chat.typing(&who, conversation_id).await,
            (
                who,
                ClientFrame::Read {
                    conversation_id,
                    seq,
                    ..
                },
            ) => chat.read(&who, conversation_id, seq).await,
            (
                Participant::Visitor(visitor),
                ClientFrame::Handoff {
                    conversation_id, ..
                },
            ) => {
                let c = chat.visitor_handoff(&visitor, conversation_id).await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Visitor),
                ))
                .await;
                Ok(())
            }
            (
                Participant::Visitor(visitor),
                ClientFrame::Rate {
                    conversation_id,
                    score,
                    comment,
                    ..
                },
            ) => {
                let c = chat
                    .rate(&visitor, conversation_id, score, comment.as_deref())
                    .await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Visitor),
                ))
                .await;
                Ok(())
            }
            (Participant::Visitor(visitor), ClientFrame::Contact { name, email, .. }) => {
                let visitor = chat
                    .contact(&visitor, name.as_deref(), email.as_deref())
                    .await?;
                // A fresh welcome: the visitor's new name, and their conversations.
                let conversations = self.state.store().visitor_conversations(visitor.id).await?;
                self.send(ServerFrame::Welcome {
                    role: "visitor",
                    user: UserRef {
                        id: visitor.id.to_string(),
                        name: visitor.display_name(),
                    },
                    conversations: conversations
                        .iter()
                        .map(|c| chat.conversation_frame(c, Audience::Visitor))
                        .collect(),
                })
                .await;
                self.who = Some(Participant::Visitor(visitor));
                Ok(())
            }
            (Participant::Agent(agent), ClientFrame::Presence { status, .. }) => {
                let online = match status.as_str() {
                    "online" => true,
                    "away" => false,
                    _ => {
                        return Err(crate::domain::invalid(
                            "status",
                            "status must be online or away",
                        ));
                    }
                };
                self.agent_online.store(online, Ordering::Release);
                chat.presence(&agent, online).await
            }
            (Participant::Agent(_), ClientFrame::WatchQueue { .. }) => {
                self.subscribe(Topic::Queue).await?;
                self.send(chat.queue_frame().await?).await;
                Ok(())
            }
            (
                Participant::Agent(agent),
                ClientFrame::Claim {
                    conversation_id, ..
                },
            ) => {
                // Follow before claiming, so nothing published in between is
                // missed; a lost claim stops following what it never owned.
                let topic = Topic::Staff(conversation_id);
                let followed = self.state.hub().is_subscribed(self.id, topic);
                self.subscribe(topic).await?;
                let c = match chat.claim(&agent, conversation_id).await {
                    Ok(c) => c,
                    Err(e) => {
                        if !followed {
                            self.unsubscribe(topic).await?;
                        }
                        return Err(e);
                    }
                };
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Staff),
                ))
                .await;
                Ok(())
            }
            (
                Participant::Agent(agent),
                ClientFrame::Transfer {
                    conversation_id,
                    agent_id,
                    ..
                },
            ) => {
                let c = chat
                    .transfer(&agent, conversation_id, UserId(agent_id))
                    .await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Staff),
                ))
                .await;
                Ok(())
            }
            (
                Participant::Agent(agent),
                ClientFrame::Resolve {
                    conversation_id, ..
                },
            ) => {
                let c = chat.resolve(&agent, conversation_id).await?;
                self.send(ServerFrame::Conversation(
                    chat.conversation_frame(&c, Audience::Staff),
                ))
                .await;
                Ok(())
            }
            (Participant::Visitor(_), _) => Err(DomainError::Forbidden(match kind {
                "presence" | "watch_queue" | "claim" | "transfer" | "note" | "resolve" => {
                    "this frame is for agents"
                }
                _ => "this frame is not available",
            })),
            (Participant::Agent(_), _) => Err(DomainError::Forbidden(match kind {
                "start" | "handoff" | "rate" | "contact" => "this frame is for visitors",
                _ => "this frame is not available",
            })),
        }
    }

    /// Acknowledges a stored message in the sender's numbering; a retried
    /// send is acknowledged again but not counted again.
    async fn acknowledge(&self, sent: &Sent, audience: Audience, reference: Option<Value>) {
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

    /// An agent's message or private note: follow the conversation before
    /// writing, so that nothing the write causes is missed.
    async fn agent_writes(
        &self,
        agent: &User,
        write: AgentWrite<'_>,
        reference: Option<Value>,
    ) -> Reply {
        let chat = self.state.chat();
        let topic = Topic::Staff(write.conversation_id);
        // Followed means looked up before (it exists): the common reply goes
        // out with no read first, unless its write finds there is something
        // to decide (a claim, a conflict, an email to an away customer).
        if write.attachment_id.is_none() && self.state.hub().is_subscribed(self.id, topic) {
            let sent = chat
                .send_as_owner(
                    agent,
                    write.conversation_id,
                    write.client_msg_id,
                    write.body,
                    write.private,
                )
                .await?;
            if let Some(sent) = sent {
                self.acknowledge(&sent, Audience::Staff, reference).await;
                return Ok(());
            }
        }
        let c = chat
            .staff_conversation(agent, write.conversation_id)
            .await?;
        self.subscribe(topic).await?;
        let sent = chat
            .send_as_agent_in(
                agent,
                c,
                write.client_msg_id,
                write.body,
                write.private,
                write.attachment_id,
            )
            .await?;
        self.acknowledge(&sent, Audience::Staff, reference).await;
        Ok(())
    }

    async fn hello(&mut self, visitor_token: Option<String>, reference: Option<Value>) -> Reply {
        if self.who.is_some() {
            return Err(DomainError::Conflict("already said hello".into()));
        }
        let chat = self.state.chat().clone();
        if let Some((agent, token)) = self.pending_agent.take() {
            // Listen for changes to the account first, then check it: a
            // logout since the upgrade is either seen here or announced.
            self.subscribe(Topic::Account(agent.id)).await?;
            let token_hash = hash_token(&token);
            let (agent, expires_at) = self
                .state
                .store()
                .live_session(&token_hash)
                .await?
                .filter(|(user, _)| user.role.is_staff())
                .ok_or(DomainError::Unauthenticated)?;
            self.subscribe(Topic::Agent(agent.id)).await?;
            let mine = chat.my_conversations(&agent).await?;
            for c in &mine {
                self.subscribe(Topic::Staff(c.id)).await?;
            }
            self.send(ServerFrame::Welcome {
                role: if agent.role == crate::model::Role::Admin {
                    "admin"
                } else {
                    "agent"
                },
                user: UserRef {
                    id: agent.id.to_string(),
                    name: agent.name.clone(),
                },
                conversations: mine
                    .iter()
                    .map(|c| chat.conversation_frame(c, Audience::Staff))
                    .collect(),
            })
            .await;
            let account = Arc::new(AgentAccount::default());
            account.set(Some(agent.clone()));
            self.heartbeat =
                Some(self.spawn_heartbeat(agent.id, token_hash, expires_at, account.clone()));
            self.account = Some(account);
            self.who = Some(Participant::Agent(agent));
            return Ok(());
        }
        let site = self.site.clone().ok_or(DomainError::NotFound)?;
        let token = visitor_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            crate::domain::invalid(
                "visitor_token",
                "visitor_token is required; get one from /api/widget/v1/session",
            )
        })?;
        let Some(visitor) = self
            .state
            .store()
            .visitor_by_token(site.id, &hash_token(&token))
            .await?
        else {
            // Tell the client why before closing; it must bootstrap again.
            self.error(
                "invalid",
                "visitor_token: unknown visitor token; get a new one from /api/widget/v1/session"
                    .into(),
                reference,
            )
            .await;
            self.kill(close::POLICY);
            return Ok(());
        };
        chat.visitor_connected(visitor.id).await;
        let conversations = self.state.store().visitor_conversations(visitor.id).await?;
        for c in conversations
            .iter()
            .filter(|c| c.status != ConversationStatus::Closed)
        {
            self.subscribe(Topic::Public(c.id)).await?;
        }
        self.send(ServerFrame::Welcome {
            role: "visitor",
            user: UserRef {
                id: visitor.id.to_string(),
                name: visitor.display_name(),
            },
            conversations: conversations
                .iter()
                .map(|c| chat.conversation_frame(c, Audience::Visitor))
                .collect(),
        })
        .await;
        self.who = Some(Participant::Visitor(visitor));
        Ok(())
    }

    /// While an agent's socket is open: refresh presence, and re-check the
    /// session when the account changes, when it expires and on each beat;
    /// once it has ended (logout, password change, lost staff role) the
    /// socket closes (4401).
    fn spawn_heartbeat(
        &self,
        agent: UserId,
        token_hash: String,
        expires_at: i64,
        account: Arc<AgentAccount>,
    ) -> JoinHandle<()> {
        let state = self.state.clone();
        let online = self.agent_online.clone();
        let changed = self.account_changed.clone().unwrap_or_default();
        let id = self.id;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            let expiry = tokio::time::sleep_until(instant_of(expires_at));
            tokio::pin!(expiry);
            loop {
                let beat = tokio::select! {
                    _ = tick.tick() => true,
                    () = changed.notified() => false,
                    () = &mut expiry => false,
                };
                match state.store().live_session(&token_hash).await {
                    Ok(Some((user, expires_at))) if user.role.is_staff() => {
                        expiry.as_mut().reset(instant_of(expires_at));
                        account.set(Some(user));
                    }
                    Ok(_) => {
                        account.set(None);
                        state.hub().kill(id, close::SESSION_ENDED);
                        return;
                    }
                    // Try again shortly, not at the next beat: the change that
                    // woke us (a logout, say) must not wait 30 s for the
                    // database to answer. (Re-arming also keeps a fired
                    // expiry from spinning the loop.)
                    Err(e) => {
                        tracing::warn!(error = %e, "session check failed; retrying in 1 s");
                        expiry
                            .as_mut()
                            .reset(tokio::time::Instant::now() + RECHECK_AFTER_ERROR);
                    }
                }
                if beat
                    && online.load(Ordering::Acquire)
                    && let Err(e) = state.store().set_presence(agent, true).await
                {
                    tracing::warn!(error = %e, "presence heartbeat failed");
                }
            }
        })
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
                if let Err(e) = self.state.store().set_presence(agent.id, false).await {
                    tracing::warn!(error = %e, "could not mark agent away");
                }
            }
            Some(Participant::Agent(_)) => {}
            None => {}
        }
    }
}

/// When a session that expires at `expires_at` (ms since the epoch) ends,
/// on the runtime's clock. At least a moment ahead, so that a clock that
/// disagrees with the database's cannot spin the heartbeat.
fn instant_of(expires_at: i64) -> tokio::time::Instant {
    let left = u64::try_from(expires_at - now_ms()).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(left.max(100))
}

/// An agent's `send` or `note`, as the session passes it on.
struct AgentWrite<'a> {
    conversation_id: i64,
    client_msg_id: &'a str,
    body: &'a str,
    private: bool,
    attachment_id: Option<&'a str>,
}
