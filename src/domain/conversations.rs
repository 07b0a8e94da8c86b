//! The chat service: what happens when someone writes, asks for a person,
//! claims, transfers, resolves or rates. Every change is committed to the
//! store first and then published on the bus, once per audience:
//! - `c:{id}` carries what the visitor may see (public messages, numbered
//!   by `public_seq`);
//! - `s:{id}` carries what staff see (every message, numbered by `seq`);
//! - `queue` carries the waiting list; `a:{agent}` tells one agent that a
//!   conversation became theirs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::attachments::{AttachmentRef, Reader, sender_upload};
use super::chat::{
    Conversation, Visitor, asks_for_a_person, attachment_taken, body_with, message_text,
    parse_client_msg_id, subject_from,
};
use super::tickets::Message;
use super::{ConversationStatus, DomainError, DomainResult, SenderKind, User, UserId, invalid};
use crate::bot::{Bot, BotReply, BotTurn, bounded_options, bounded_text};
use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::protocol::{
    self, Assignee, AttachmentInfo, ConversationFrame, Customer, MessageFrame, QueueItem, Sender,
    ServerFrame,
};
use crate::store::{Appended, Assignment, NewChatMessage, NewEmail, Store, Wait};

pub fn public_topic(conversation_id: i64) -> String {
    format!("c:{conversation_id}")
}

pub fn staff_topic(conversation_id: i64) -> String {
    format!("s:{conversation_id}")
}

pub fn agent_topic(agent: UserId) -> String {
    format!("a:{agent}")
}

pub const QUEUE_TOPIC: &str = "queue";

/// How far a resume has got: the staff seq read up to, and the last seq
/// sent in the audience's numbering.
#[derive(Debug, Clone, Copy)]
pub struct ReplayCursor {
    pub staff_seq: i64,
    pub last: i64,
}

/// Who a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Visitor,
    Staff,
}

/// Who is acting on a conversation.
#[derive(Debug, Clone)]
pub enum Participant {
    Visitor(Visitor),
    Agent(User),
}

#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Misses in a row before the bot hands the customer to a person.
    pub bot_miss_limit: i64,
    /// Longest the customer waits for the bot before a person is called.
    pub bot_timeout: Duration,
    /// An agent's presence counts while refreshed within this time.
    pub presence_fresh: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            bot_miss_limit: 2,
            bot_timeout: Duration::from_secs(5),
            presence_fresh: Duration::from_secs(90),
        }
    }
}

/// Why a conversation goes to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffReason {
    CustomerAsked,
    BotHandedOff,
    BotMissed,
    BotFailed,
}

/// The result of a send: the stored message, and whether it was a retry.
pub struct Sent {
    pub message: Message,
    pub duplicate: bool,
}

pub struct Chat {
    store: Store,
    bus: Arc<dyn Bus>,
    bot: Arc<dyn Bot>,
    config: ChatConfig,
    /// Visitors with an open socket on this instance, by visitor id.
    online_visitors: Mutex<HashMap<i64, usize>>,
    /// When each conversation last emailed its customer (to coalesce bursts).
    emailed: Mutex<HashMap<i64, Instant>>,
    /// Conversations whose ticket is known to have its first response, so
    /// that an agent's reply need not look (bounded: see
    /// [`FIRST_RESPONSES_KEPT`]; forgetting costs one idempotent write).
    first_responded: Mutex<HashSet<i64>>,
    metrics: Arc<Metrics>,
    /// Wakes the task that sends queue snapshots (see [`QUEUE_COALESCE`]).
    queue_changed: Arc<tokio::sync::Notify>,
}

/// Queue snapshots go out at most once per this period: a burst of a
/// thousand handoffs would otherwise read the queue and send all of it to
/// every agent a thousand times (quadratic). A snapshot is a snapshot, so
/// the latest one is all anyone needs.
const QUEUE_COALESCE: Duration = Duration::from_millis(100);

/// How often each instance refreshes the presence of its connected visitors.
pub const PRESENCE_PERIOD: Duration = Duration::from_secs(30);

/// At most one "you have a reply" email per conversation in this window.
const EMAIL_COALESCE: Duration = Duration::from_secs(600);

/// Conversations remembered in `Chat::first_responded` before it starts over.
const FIRST_RESPONSES_KEPT: usize = 100_000;

/// How many messages a resume sends per database read.
const REPLAY_PAGE: i64 = 200;

impl Drop for Chat {
    fn drop(&mut self) {
        // Lets the queue task see that it is the last one left.
        self.queue_changed.notify_one();
    }
}

impl Chat {
    pub fn new(store: Store, bus: Arc<dyn Bus>, bot: Arc<dyn Bot>, config: ChatConfig) -> Chat {
        let queue_changed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(send_queue_snapshots(
            store.clone(),
            bus.clone(),
            queue_changed.clone(),
        ));
        Chat {
            store,
            bus,
            bot,
            config,
            online_visitors: Mutex::new(HashMap::new()),
            metrics: Arc::new(Metrics::default()),
            emailed: Mutex::new(HashMap::new()),
            first_responded: Mutex::new(HashSet::new()),
            queue_changed,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    pub fn bot(&self) -> &Arc<dyn Bot> {
        &self.bot
    }

    fn presence_fresh_ms(&self) -> i64 {
        self.config.presence_fresh.as_millis() as i64
    }

    // ----- who may see what -----

    /// The conversation if it belongs to `visitor`; "not found" otherwise,
    /// whether or not it exists.
    pub async fn visitor_conversation(
        &self,
        visitor: &Visitor,
        id: i64,
    ) -> DomainResult<Conversation> {
        match self.store.conversation(id).await? {
            Some(c) if c.visitor_id == visitor.id => Ok(c),
            _ => Err(DomainError::NotFound),
        }
    }

    /// Any conversation, for staff.
    pub async fn staff_conversation(&self, agent: &User, id: i64) -> DomainResult<Conversation> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        self.store
            .conversation(id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn conversation_for(&self, who: &Participant, id: i64) -> DomainResult<Conversation> {
        match who {
            Participant::Visitor(v) => self.visitor_conversation(v, id).await,
            Participant::Agent(a) => self.staff_conversation(a, id).await,
        }
    }

    // ----- frames -----

    pub fn conversation_frame(&self, c: &Conversation, audience: Audience) -> ConversationFrame {
        let staff = audience == Audience::Staff;
        ConversationFrame {
            id: c.id.to_string(),
            status: c.status.as_str(),
            assignee: c.assignee_id.map(|id| Assignee {
                id: staff.then(|| id.to_string()),
                name: c.assignee_name.clone().unwrap_or_default(),
            }),
            ticket_number: c.ticket_number,
            last_seq: if staff { c.last_seq } else { c.last_public_seq },
            customer: staff.then(|| Customer {
                name: c.customer_name.clone(),
                email: c.customer_email.clone(),
            }),
            unread: staff.then(|| (c.last_seq - c.agent_read_seq).max(0)),
        }
    }

    /// The frame for `message` as `audience` sees it; `None` when that
    /// audience must not see it (a private note for a visitor).
    pub fn message_frame(&self, message: &Message, audience: Audience) -> Option<ServerFrame> {
        let staff = audience == Audience::Staff;
        let seq = if staff {
            Some(message.seq)
        } else {
            message.public_seq
        }?;
        let sender_id = match message.sender_kind {
            SenderKind::Agent if staff => message.sender_user_id.map(|id| id.to_string()),
            _ => None,
        };
        Some(ServerFrame::Message(MessageFrame {
            conversation_id: message.conversation_id.to_string(),
            seq,
            id: message.id.to_string(),
            sender: Sender {
                kind: message.sender_kind.as_str(),
                id: sender_id,
                name: message.sender_name.clone(),
            },
            body: message.body.clone(),
            private: message.private,
            attachment: message
                .attachment
                .as_ref()
                .map(|a| attachment_info(a, audience)),
            options: message.options.clone(),
            client_msg_id: message.client_msg_id.clone(),
            at: protocol::rfc3339(message.created_at),
        }))
    }

    /// Where a resume starts: after `after_seq` in the audience's numbering,
    /// brought back to what exists when a client claims more (stale storage).
    pub async fn replay_start(
        &self,
        c: &Conversation,
        audience: Audience,
        after_seq: i64,
    ) -> DomainResult<ReplayCursor> {
        let staff = audience == Audience::Staff;
        let newest = if staff { c.last_seq } else { c.last_public_seq };
        let after_seq = after_seq.clamp(0, newest);
        let staff_seq = if staff {
            after_seq
        } else {
            self.staff_seq_of_public(c.id, after_seq).await?
        };
        Ok(ReplayCursor {
            staff_seq,
            last: after_seq,
        })
    }

    /// One page of a resume: the frames, where the next page starts, and
    /// whether there may be more.
    pub async fn replay_page(
        &self,
        c: &Conversation,
        audience: Audience,
        mut cursor: ReplayCursor,
    ) -> DomainResult<(Vec<ServerFrame>, ReplayCursor, bool)> {
        let staff = audience == Audience::Staff;
        let page = self
            .store
            .messages_after(c.id, cursor.staff_seq, staff, REPLAY_PAGE)
            .await?;
        let more = page.len() as i64 == REPLAY_PAGE;
        let mut frames = Vec::with_capacity(page.len());
        for message in &page {
            cursor.staff_seq = message.seq;
            if let Some(frame) = self.message_frame(message, audience) {
                cursor.last = if staff {
                    message.seq
                } else {
                    message.public_seq.unwrap_or(cursor.last)
                };
                frames.push(frame);
            }
        }
        Ok((frames, cursor, more))
    }

    async fn staff_seq_of_public(
        &self,
        conversation_id: i64,
        public_seq: i64,
    ) -> DomainResult<i64> {
        if public_seq <= 0 {
            return Ok(0);
        }
        Ok(self
            .store
            .staff_seq_for_public(conversation_id, public_seq)
            .await?)
    }

    async fn publish(&self, topic: &str, frame: &ServerFrame) {
        publish_on(&self.bus, topic, frame).await;
    }

    async fn publish_message(&self, message: &Message) {
        if let Some(frame) = self.message_frame(message, Audience::Staff) {
            self.publish(&staff_topic(message.conversation_id), &frame)
                .await;
        }
        if let Some(frame) = self.message_frame(message, Audience::Visitor) {
            self.publish(&public_topic(message.conversation_id), &frame)
                .await;
        }
        let since_commit = (crate::store::now_ms() - message.created_at).max(0) as u64;
        self.metrics
            .publish_latency
            .observe(Duration::from_millis(since_commit));
    }

    /// Tells both audiences (and the assignee) where a conversation stands.
    pub async fn publish_conversation(&self, id: i64) -> DomainResult<Option<Conversation>> {
        let Some(c) = self.store.conversation(id).await? else {
            return Ok(None);
        };
        let staff = ServerFrame::Conversation(self.conversation_frame(&c, Audience::Staff));
        self.publish(&staff_topic(id), &staff).await;
        if let Some(agent) = c.assignee_id {
            self.publish(&agent_topic(agent), &staff).await;
        }
        let visitor = ServerFrame::Conversation(self.conversation_frame(&c, Audience::Visitor));
        self.publish(&public_topic(id), &visitor).await;
        Ok(Some(c))
    }

    pub async fn queue_frame(&self) -> DomainResult<ServerFrame> {
        queue_frame(&self.store).await
    }

    /// The queue changed: a snapshot goes out shortly (coalesced).
    async fn publish_queue(&self) {
        self.queue_changed.notify_one();
    }

    // ----- visitors -----

    /// A visitor's socket opened on this instance. Presence is shared
    /// through the database (`visitors.last_seen_at`), refreshed for every
    /// connected visitor by [`Chat::refresh_presence`], so that any instance
    /// can tell whether a customer is away.
    pub async fn visitor_connected(&self, visitor_id: i64) {
        *self
            .online_visitors
            .lock()
            .expect("online lock")
            .entry(visitor_id)
            .or_default() += 1;
        if let Err(e) = self.store.touch_visitors(&[visitor_id]).await {
            tracing::warn!(error = %e, "could not record visitor presence");
        }
    }

    pub async fn visitor_disconnected(&self, visitor_id: i64) {
        let gone = {
            let mut online = self.online_visitors.lock().expect("online lock");
            match online.get_mut(&visitor_id) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    online.remove(&visitor_id);
                    true
                }
                None => false,
            }
        };
        // Another instance holding a socket of the same visitor refreshes
        // the mark within one presence period.
        if gone && let Err(e) = self.store.visitor_left(visitor_id).await {
            tracing::warn!(error = %e, "could not record visitor leaving");
        }
    }

    /// Refreshes the presence of every visitor connected here (one batched
    /// write per period, not one per socket).
    pub async fn refresh_presence(&self) -> DomainResult<()> {
        let ids: Vec<i64> = self
            .online_visitors
            .lock()
            .expect("online lock")
            .keys()
            .copied()
            .collect();
        for chunk in ids.chunks(500) {
            self.store.touch_visitors(chunk).await?;
        }
        Ok(())
    }

    /// Connected here, or seen by another instance within two periods.
    async fn visitor_online(&self, visitor_id: i64) -> DomainResult<bool> {
        if self
            .online_visitors
            .lock()
            .expect("online lock")
            .contains_key(&visitor_id)
        {
            return Ok(true);
        }
        let seen = self.store.visitor_last_seen(visitor_id).await?;
        Ok(seen > away_if_unseen_since())
    }

    /// A new conversation with the bot. A retried start (same first
    /// `client_msg_id`) gets the conversation the first one created.
    pub async fn start(
        &self,
        visitor: &Visitor,
        client_msg_id: Option<&str>,
    ) -> DomainResult<Conversation> {
        if let Some(id) = client_msg_id
            && let Some(existing) = self.store.conversation_with_message(visitor.id, id).await?
        {
            return Ok(existing);
        }
        Ok(self
            .store
            .create_conversation(visitor.site_id, visitor.id)
            .await?)
    }

    /// The visitor writes. A conversation that was resolved or closed
    /// reopens; one with the bot gets the bot's answer (spawned, so the
    /// sender's ack is not held up by the bot).
    pub async fn send_as_visitor(
        self: &Arc<Self>,
        visitor: &Visitor,
        conversation_id: i64,
        client_msg_id: &str,
        body: &str,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        self.send_as_visitor_to(visitor, c.id, client_msg_id, body, attachment_id)
            .await
    }

    /// [`Chat::send_as_visitor`] in conversation `id`, which the caller
    /// already knows is the visitor's (a conversation's visitor never
    /// changes): no lookup at all. Its status is decided by the write.
    pub async fn send_as_visitor_to(
        self: &Arc<Self>,
        visitor: &Visitor,
        id: i64,
        client_msg_id: &str,
        body: &str,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let attachment = sender_upload(&self.store, id, Reader::Customer, attachment_id).await?;
        let body = body_with(body, attachment.as_ref())?;
        let appended = self
            .store
            .append_message(
                id,
                NewChatMessage {
                    sender_kind: SenderKind::Customer,
                    sender_user_id: visitor.user_id,
                    sender_name: &visitor.display_name(),
                    body: &body,
                    private: false,
                    client_msg_id: &client_msg_id,
                    only_in: None,
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: attachment.as_ref(),
                    options: &[],
                },
            )
            .await?;
        let (sent, status) = match appended {
            Appended::Duplicate(message) => {
                return Ok(Sent {
                    message,
                    duplicate: true,
                });
            }
            Appended::New(message, status) => (message, status),
            Appended::IdTaken => {
                return Err(DomainError::Conflict(
                    "client_msg_id is already used in this conversation; send with a fresh one"
                        .into(),
                ));
            }
            Appended::Refused => {
                return Err(DomainError::Conflict(
                    "the conversation does not take messages now".into(),
                ));
            }
            Appended::AttachmentTaken => return Err(attachment_taken()),
        };
        self.publish_message(&sent).await;
        // Decided on the status the write saw, not the one read before it.
        match status {
            ConversationStatus::Bot => {
                let chat = self.clone();
                let message = sent.clone();
                tokio::spawn(async move {
                    if let Err(e) = chat.bot_turn(&message).await {
                        tracing::warn!(conversation = message.conversation_id, error = %e, "bot turn failed");
                    }
                });
            }
            ConversationStatus::Resolved | ConversationStatus::Closed => {
                if self.store.reopen(id, &visitor.display_name()).await? {
                    self.publish_conversation(id).await?;
                    self.publish_queue().await;
                }
            }
            ConversationStatus::Waiting | ConversationStatus::Live => {}
        }
        Ok(Sent {
            message: sent,
            duplicate: false,
        })
    }

    /// One bot turn for a customer message: answer, count a miss, or hand
    /// off. A bot that errs or is slower than the timeout hands off too.
    async fn bot_turn(self: &Arc<Self>, message: &Message) -> DomainResult<()> {
        let conversation_id = message.conversation_id;
        // A file without words gives the bot nothing to answer; the file
        // stays in the conversation for the person who takes it over.
        if message.body.is_empty() {
            return Ok(());
        }
        if asks_for_a_person(&message.body) {
            return self
                .handoff(conversation_id, HandoffReason::CustomerAsked)
                .await;
        }
        let turn = BotTurn {
            conversation_id,
            text: &message.body,
        };
        let started = Instant::now();
        let reply = tokio::time::timeout(self.config.bot_timeout, self.bot.reply(turn)).await;
        self.metrics.bot_latency.observe(started.elapsed());
        if !matches!(reply, Ok(Ok(_))) {
            self.metrics.bot_failures.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            bot = self.bot.name(),
            ms = started.elapsed().as_millis() as u64,
            "bot answered"
        );
        let bot_msg_id = format!("bot:{}", message.client_msg_id);
        match reply {
            Ok(Ok(BotReply::Answer { text, options })) => {
                self.store.reset_bot_misses(conversation_id).await?;
                self.bot_says(conversation_id, &bot_msg_id, &text, options)
                    .await
            }
            Ok(Ok(BotReply::NotUnderstood { text })) => {
                let misses = self.store.count_bot_miss(conversation_id).await?;
                if misses >= self.config.bot_miss_limit {
                    self.handoff(conversation_id, HandoffReason::BotMissed)
                        .await
                } else {
                    self.bot_says(conversation_id, &bot_msg_id, &text, Vec::new())
                        .await
                }
            }
            Ok(Ok(BotReply::Handoff { text, note })) => {
                self.bot_says(conversation_id, &bot_msg_id, &text, Vec::new())
                    .await?;
                self.handoff(conversation_id, HandoffReason::BotHandedOff)
                    .await?;
                // What the bot tells the agent stays with the staff.
                match note {
                    Some(note) => {
                        let id = format!("botnote:{}", message.client_msg_id);
                        let note = format!("From the assistant: {note}");
                        self.staff_note(conversation_id, &id, bounded_text(&note))
                            .await
                    }
                    None => Ok(()),
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(conversation = conversation_id, error = %e, "bot failed; handing off");
                self.handoff(conversation_id, HandoffReason::BotFailed)
                    .await
            }
            Err(_) => {
                tracing::warn!(conversation = conversation_id, "bot timed out; handing off");
                self.handoff(conversation_id, HandoffReason::BotFailed)
                    .await
            }
        }
    }

    /// A bot message, with the buttons it offers (bounded here: they come
    /// from the bot, and are stored and sent to customers); refused by the
    /// store once a person is involved.
    async fn bot_says(
        &self,
        conversation_id: i64,
        client_msg_id: &str,
        text: &str,
        options: Vec<String>,
    ) -> DomainResult<()> {
        let options = bounded_options(&options);
        let text = bounded_text(text);
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    sender_kind: SenderKind::Bot,
                    sender_user_id: None,
                    sender_name: "Assistant",
                    body: text,
                    private: false,
                    client_msg_id,
                    only_in: Some(&[ConversationStatus::Bot]),
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options: &options,
                },
            )
            .await?;
        if let Appended::New(message, _) = appended {
            self.publish_message(&message).await;
        }
        Ok(())
    }

    /// A private note by Careline itself (e.g. the bot's handoff message).
    async fn staff_note(
        &self,
        conversation_id: i64,
        client_msg_id: &str,
        text: &str,
    ) -> DomainResult<()> {
        self.careline_says(conversation_id, client_msg_id, text, true)
            .await
    }

    async fn system_says(
        &self,
        conversation_id: i64,
        client_msg_id: &str,
        text: &str,
    ) -> DomainResult<()> {
        self.careline_says(conversation_id, client_msg_id, text, false)
            .await
    }

    /// A message from Careline itself, public or private, published once
    /// (a retry with the same client_msg_id stores and publishes nothing).
    async fn careline_says(
        &self,
        conversation_id: i64,
        client_msg_id: &str,
        text: &str,
        private: bool,
    ) -> DomainResult<()> {
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    sender_kind: SenderKind::System,
                    sender_user_id: None,
                    sender_name: "Careline",
                    body: text,
                    private,
                    client_msg_id,
                    only_in: None,
                    only_assignee: None,
                    only_if_customer_seen_after: None,
                    email: None,
                    attachment: None,
                    options: &[],
                },
            )
            .await?;
        if let Appended::New(message, _) = appended {
            self.publish_message(&message).await;
        }
        Ok(())
    }

    /// Sends the conversation to a person: it leaves the bot, gets a ticket
    /// with the transcript so far, and goes to an available agent or the queue.
    pub async fn handoff(&self, conversation_id: i64, reason: HandoffReason) -> DomainResult<()> {
        let c = self
            .store
            .conversation(conversation_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if c.status != ConversationStatus::Bot {
            return Ok(());
        }
        let first = self
            .store
            .messages_after(c.id, 0, false, 20)
            .await?
            .into_iter()
            .find(|m| m.sender_kind == SenderKind::Customer)
            .map(|m| m.body);
        let subject = subject_from(first.as_deref(), &c.customer_name);
        if !self.store.escalate(c.id, &subject, "Careline").await? {
            return Ok(());
        }
        tracing::info!(conversation = c.id, ?reason, "handed off to a person");
        let someone_online = self
            .store
            .any_agent_online(self.presence_fresh_ms())
            .await?;
        let text = if someone_online {
            "Connecting you with a person. You can keep writing here."
        } else {
            "No one from our team is online right now. Leave your email and we will reply by email; you will also see the answer here."
        };
        self.system_says(c.id, &format!("handoff:{}", c.last_seq), text)
            .await?;
        self.publish_conversation(c.id).await?;
        self.route(c.id).await?;
        self.publish_queue().await;
        Ok(())
    }

    /// Gives a waiting conversation to the least busy available agent, if
    /// any. Agents another assignment holds at this moment are tried last
    /// (then waited for), so that a burst of handoffs spreads over the team
    /// instead of queueing behind the least busy agent's row.
    async fn route(&self, conversation_id: i64) -> DomainResult<bool> {
        let agents = self
            .store
            .available_agents(self.presence_fresh_ms())
            .await?;
        let mut busy = Vec::new();
        for agent in &agents {
            match self
                .store
                .assign_within_capacity(conversation_id, agent, Wait::No)
                .await?
            {
                Assignment::Assigned => {
                    self.publish_conversation(conversation_id).await?;
                    return Ok(true);
                }
                Assignment::AgentBusy => busy.push(agent),
                Assignment::AgentFull => {}
                Assignment::NoLongerWaiting => return Ok(false),
            }
        }
        for agent in busy {
            match self
                .store
                .assign_within_capacity(conversation_id, agent, Wait::Yes)
                .await?
            {
                Assignment::Assigned => {
                    self.publish_conversation(conversation_id).await?;
                    return Ok(true);
                }
                Assignment::NoLongerWaiting => return Ok(false),
                Assignment::AgentFull | Assignment::AgentBusy => {}
            }
        }
        Ok(false)
    }

    /// The visitor asks for a person (the button).
    pub async fn visitor_handoff(
        &self,
        visitor: &Visitor,
        conversation_id: i64,
    ) -> DomainResult<Conversation> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        self.handoff(c.id, HandoffReason::CustomerAsked).await?;
        self.visitor_conversation(visitor, conversation_id).await
    }

    pub async fn contact(
        &self,
        visitor: &Visitor,
        name: Option<&str>,
        email: Option<&str>,
    ) -> DomainResult<Visitor> {
        let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(n) => super::parse_name(n)?,
            None => String::new(),
        };
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) => super::Email::parse(e)?.as_str().to_string(),
            None => String::new(),
        };
        self.store
            .update_visitor_contact(visitor.id, &name, &email)
            .await?;
        self.store
            .visitor(visitor.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn rate(
        &self,
        visitor: &Visitor,
        conversation_id: i64,
        score: i64,
        comment: Option<&str>,
    ) -> DomainResult<Conversation> {
        let c = self.visitor_conversation(visitor, conversation_id).await?;
        if !(1..=5).contains(&score) {
            return Err(invalid("score", "score must be 1 to 5"));
        }
        if !matches!(
            c.status,
            ConversationStatus::Resolved | ConversationStatus::Closed
        ) {
            return Err(DomainError::Conflict(
                "rate a conversation once it is resolved".into(),
            ));
        }
        let comment: String = comment.unwrap_or("").trim().chars().take(2000).collect();
        self.store
            .rate(c.id, score, &comment, &visitor.display_name())
            .await?;
        Ok(c)
    }

    // ----- agents -----

    /// An agent writes (a reply, or a private note). Writing to a waiting
    /// conversation claims it; one owned by someone else is refused.
    pub async fn send_as_agent(
        &self,
        agent: &User,
        conversation_id: i64,
        client_msg_id: &str,
        body: &str,
        private: bool,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        self.send_as_agent_in(agent, c, client_msg_id, body, private, attachment_id)
            .await
    }

    /// An agent's message written straight away, without reading the
    /// conversation first, when nothing needs deciding before the write:
    /// the agent owns the conversation (a reply), and its customer needs no
    /// email about it. Both are conditions of the write itself. `None` when
    /// they refused it: [`Chat::send_as_agent`] then decides (a claim, a
    /// conflict, an email) and writes. For a conversation the caller knows
    /// exists (a console following it); no attachment (it has its checks).
    pub async fn send_as_owner(
        &self,
        agent: &User,
        conversation_id: i64,
        client_msg_id: &str,
        body: &str,
        private: bool,
    ) -> DomainResult<Option<Sent>> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let body = agent_body(body, None, private)?;
        let appended = self
            .store
            .append_message(
                conversation_id,
                NewChatMessage {
                    // Within a burst already emailed about, no email is due
                    // whether or not the customer is here.
                    only_if_customer_seen_after: (!private
                        && !self.emailed_lately(conversation_id))
                    .then(away_if_unseen_since),
                    ..agent_message(agent, &body, private, &client_msg_id)
                },
            )
            .await?;
        let Some(sent) = agent_sent(appended)? else {
            return Ok(None);
        };
        if !sent.duplicate {
            self.metrics
                .agent_writes_direct
                .fetch_add(1, Ordering::Relaxed);
            self.publish_message(&sent.message).await;
            if !private {
                self.note_first_response(conversation_id).await?;
            }
        }
        Ok(Some(sent))
    }

    /// Whether this conversation's customer was emailed within
    /// [`EMAIL_COALESCE`] (so a reply now would not email them again).
    fn emailed_lately(&self, conversation_id: i64) -> bool {
        self.emailed
            .lock()
            .expect("emailed lock")
            .get(&conversation_id)
            .is_some_and(|at| at.elapsed() < EMAIL_COALESCE)
    }

    /// Stamps the ticket's first response unless this instance knows it
    /// has one (one idempotent write per conversation, not one per reply).
    async fn note_first_response(&self, conversation_id: i64) -> DomainResult<()> {
        let known = self
            .first_responded
            .lock()
            .expect("first responses lock")
            .contains(&conversation_id);
        if !known && self.store.note_first_response(conversation_id).await? {
            self.remember_first_response(conversation_id);
        }
        Ok(())
    }

    fn remember_first_response(&self, conversation_id: i64) {
        let mut known = self.first_responded.lock().expect("first responses lock");
        if known.len() >= FIRST_RESPONSES_KEPT {
            known.clear();
        }
        known.insert(conversation_id);
    }

    /// [`Chat::send_as_agent`] with the conversation already in hand (as
    /// read by [`Chat::staff_conversation`]: one lookup less).
    pub async fn send_as_agent_in(
        &self,
        agent: &User,
        mut c: Conversation,
        client_msg_id: &str,
        body: &str,
        private: bool,
        attachment_id: Option<&str>,
    ) -> DomainResult<Sent> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        let conversation_id = c.id;
        let client_msg_id = parse_client_msg_id(client_msg_id)?;
        let attachment = sender_upload(
            &self.store,
            c.id,
            Reader::Staff {
                user_id: agent.id.0,
            },
            attachment_id,
        )
        .await?;
        let body = agent_body(body, attachment.as_ref(), private)?;
        if !private {
            if c.status == ConversationStatus::Waiting && c.assignee_id.is_none() {
                if self.store.claim(c.id, agent).await? {
                    self.publish_conversation(c.id).await?;
                    self.publish_queue().await;
                }
                c = self.staff_conversation(agent, conversation_id).await?;
            }
            if let Some(owner) = c.assignee_id
                && owner != agent.id
            {
                return Err(DomainError::Conflict(format!(
                    "{} owns this conversation; ask them to transfer it",
                    c.assignee_name.clone().unwrap_or_default()
                )));
            }
        }
        // The email (if the customer is away) is written with the message.
        let email = if private {
            None
        } else {
            self.reply_email_if_away(&c, agent, &message_text(&body, attachment.as_ref()))
                .await?
        };
        let appended = self
            .store
            .append_message(
                c.id,
                NewChatMessage {
                    email,
                    attachment: attachment.as_ref(),
                    ..agent_message(agent, &body, private, &client_msg_id)
                },
            )
            .await?;
        let Some(sent) = agent_sent(appended)? else {
            return Err(DomainError::Conflict(
                "someone else took this conversation meanwhile; ask them to transfer it".into(),
            ));
        };
        if sent.duplicate {
            return Ok(sent);
        }
        self.metrics
            .agent_writes_read_first
            .fetch_add(1, Ordering::Relaxed);
        self.publish_message(&sent.message).await;
        if !private && c.ticket_id.is_some() {
            if c.first_response_at.is_some() {
                self.remember_first_response(c.id);
            } else {
                self.note_first_response(c.id).await?;
            }
        }
        Ok(sent)
    }

    /// The email for a customer who is not connected, so that a reply is
    /// never missed; bursts of replies make one email.
    async fn reply_email_if_away(
        &self,
        c: &Conversation,
        agent: &User,
        body: &str,
    ) -> DomainResult<Option<NewEmail>> {
        if c.customer_email.is_empty() || self.visitor_online(c.visitor_id).await? {
            return Ok(None);
        }
        {
            let mut emailed = self.emailed.lock().expect("emailed lock");
            if emailed
                .get(&c.id)
                .is_some_and(|at| at.elapsed() < EMAIL_COALESCE)
            {
                return Ok(None);
            }
            emailed.insert(c.id, Instant::now());
        }
        Ok(Some(NewEmail {
            to: c.customer_email.clone(),
            template: "agent_reply",
            payload: serde_json::json!({
                "name": c.customer_name,
                "ticket_number": c.ticket_number,
                "agent": agent.name,
                "body": body,
            }),
        }))
    }

    pub async fn claim(&self, agent: &User, conversation_id: i64) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        if c.assignee_id == Some(agent.id) {
            return Ok(c);
        }
        if !self.store.claim(c.id, agent).await? {
            return Err(DomainError::Conflict(match c.assignee_name {
                Some(name) => format!("{name} already took this conversation"),
                None => "this conversation is not waiting for an agent".into(),
            }));
        }
        self.publish_queue().await;
        self.publish_conversation(c.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn transfer(
        &self,
        agent: &User,
        conversation_id: i64,
        to: UserId,
    ) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        let target = self
            .store
            .user(to)
            .await?
            .filter(|u| u.role.is_staff())
            .ok_or_else(|| invalid("agent_id", "no agent with that id"))?;
        let from = c.assignee_id.ok_or_else(|| {
            DomainError::Conflict("claim the conversation before transferring it".into())
        })?;
        if from != agent.id && agent.role != super::Role::Admin {
            return Err(DomainError::Conflict(
                "only the agent who owns it (or an admin) can transfer it".into(),
            ));
        }
        if !self.store.transfer(c.id, agent, from, &target).await? {
            return Err(DomainError::Conflict(
                "the conversation changed hands meanwhile; reload".into(),
            ));
        }
        self.system_says(
            c.id,
            &format!("transfer:{}:{}", c.last_seq, target.id),
            &format!("{} will take it from here.", target.name),
        )
        .await?;
        self.publish_conversation(c.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// Resolves a conversation: its owner, an admin, or anyone while nobody
    /// owns it (clearing the queue).
    pub async fn resolve(&self, agent: &User, conversation_id: i64) -> DomainResult<Conversation> {
        let c = self.staff_conversation(agent, conversation_id).await?;
        if let Some(owner) = c.assignee_id
            && owner != agent.id
            && agent.role != super::Role::Admin
        {
            return Err(DomainError::Conflict(format!(
                "{} owns this conversation; only they (or an admin) can resolve it",
                c.assignee_name.clone().unwrap_or_default()
            )));
        }
        let email = match c.ticket_number {
            Some(number) => {
                let subject = self
                    .store
                    .ticket_by_number(number)
                    .await?
                    .map(|t| t.subject)
                    .unwrap_or_default();
                super::tickets::resolved_email(
                    number,
                    &subject,
                    &c.customer_name,
                    &c.customer_email,
                )
            }
            None => None,
        };
        if !self.store.resolve(c.id, agent, email).await? {
            return Err(DomainError::Conflict(
                "the conversation is already resolved".into(),
            ));
        }
        if c.status == ConversationStatus::Waiting {
            self.publish_queue().await;
        }
        self.publish_conversation(c.id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// An agent's console says online or away. Coming online picks up
    /// whatever is waiting, up to the agent's capacity.
    pub async fn presence(&self, agent: &User, online: bool) -> DomainResult<()> {
        self.store.set_presence(agent.id, online).await?;
        if online {
            self.pick_up_waiting(agent).await?;
        }
        Ok(())
    }

    /// Assigns waiting conversations to `agent`, oldest first, while the
    /// agent is available and below capacity: when they come online, or
    /// when an admin gives them room for more chats.
    pub async fn pick_up_waiting(&self, agent: &User) -> DomainResult<()> {
        for entry in self.store.queue().await? {
            let available = self
                .store
                .available_agents(self.presence_fresh_ms())
                .await?;
            if !available.iter().any(|a| a.id == agent.id) {
                break;
            }
            match self
                .store
                .assign_within_capacity(entry.conversation_id, agent, Wait::Yes)
                .await?
            {
                Assignment::Assigned => {
                    self.publish_conversation(entry.conversation_id).await?;
                }
                Assignment::AgentFull => break,
                Assignment::AgentBusy | Assignment::NoLongerWaiting => {}
            }
        }
        self.publish_queue().await;
        Ok(())
    }

    /// A ticket changed through the pages (a reply, a note, a new status or
    /// assignee): live clients hear of it like any chat change, including
    /// exactly the message the change wrote.
    pub async fn ticket_changed(
        &self,
        conversation_id: i64,
        message: Option<&Message>,
    ) -> DomainResult<()> {
        if let Some(message) = message {
            self.publish_message(message).await;
        }
        self.publish_conversation(conversation_id).await?;
        self.publish_queue().await;
        Ok(())
    }

    /// Whether any agent's console is online now.
    pub async fn agents_online(&self) -> DomainResult<bool> {
        Ok(self
            .store
            .any_agent_online(self.presence_fresh_ms())
            .await?)
    }

    pub async fn my_conversations(&self, agent: &User) -> DomainResult<Vec<Conversation>> {
        Ok(self.store.agent_conversations(agent.id).await?)
    }

    // ----- ephemeral signals -----

    fn sender_of(who: &Participant, audience: Audience) -> Sender {
        match who {
            Participant::Visitor(v) => Sender {
                kind: "customer",
                id: None,
                name: v.display_name(),
            },
            Participant::Agent(a) => Sender {
                kind: "agent",
                id: (audience == Audience::Staff).then(|| a.id.to_string()),
                name: a.name.clone(),
            },
        }
    }

    pub async fn typing(&self, who: &Participant, conversation_id: i64) -> DomainResult<()> {
        let c = self.conversation_for(who, conversation_id).await?;
        for (audience, topic) in [
            (Audience::Staff, staff_topic(c.id)),
            (Audience::Visitor, public_topic(c.id)),
        ] {
            let frame = ServerFrame::Typing {
                conversation_id: c.id.to_string(),
                sender: Self::sender_of(who, audience),
            };
            self.publish(&topic, &frame).await;
        }
        Ok(())
    }

    /// A read marker, in the reader's own numbering; each audience is told
    /// in its own.
    pub async fn read(
        &self,
        who: &Participant,
        conversation_id: i64,
        seq: i64,
    ) -> DomainResult<()> {
        let c = self.conversation_for(who, conversation_id).await?;
        let (staff_seq, public_seq) = match who {
            Participant::Agent(_) => {
                let seq = seq.clamp(0, c.last_seq);
                (seq, self.store.public_seq_at(c.id, seq).await?)
            }
            Participant::Visitor(_) => {
                let seq = seq.clamp(0, c.last_public_seq);
                (self.staff_seq_of_public(c.id, seq).await?, seq)
            }
        };
        self.store
            .mark_read(
                c.id,
                matches!(who, Participant::Agent(_)),
                match who {
                    Participant::Agent(_) => staff_seq,
                    Participant::Visitor(_) => public_seq,
                },
            )
            .await?;
        for (audience, topic, seq) in [
            (Audience::Staff, staff_topic(c.id), staff_seq),
            (Audience::Visitor, public_topic(c.id), public_seq),
        ] {
            let frame = ServerFrame::Read {
                conversation_id: c.id.to_string(),
                seq,
                sender: Self::sender_of(who, audience),
            };
            self.publish(&topic, &frame).await;
        }
        Ok(())
    }
}

/// A message's file as `audience` fetches it: visitors with their token,
/// cross-origin (the widget); staff and portal users with their session.
pub fn attachment_info(a: &AttachmentRef, audience: Audience) -> AttachmentInfo {
    let url = match audience {
        Audience::Visitor => format!("/api/widget/v1/attachments/{}", a.id),
        Audience::Staff => format!("/attachments/{}", a.id),
    };
    AttachmentInfo {
        id: a.id.clone(),
        name: a.name.clone(),
        size: a.size,
        content_type: a.content_type.clone(),
        image: a.is_image(),
        url,
    }
}

/// The live queue as a frame: waiting, unassigned conversations.
async fn queue_frame(store: &Store) -> DomainResult<ServerFrame> {
    let waiting = store
        .queue()
        .await?
        .into_iter()
        .map(|q| QueueItem {
            conversation_id: q.conversation_id.to_string(),
            ticket_number: q.ticket_number,
            customer: if q.customer_name.is_empty() {
                q.customer_email
            } else {
                q.customer_name
            },
            waiting_since: protocol::rfc3339(q.waiting_since),
            preview: q.preview.chars().take(140).collect(),
        })
        .collect();
    Ok(ServerFrame::Queue { waiting })
}

/// Publishes `frame`; on failure tries again in the background (a late
/// frame is fine: clients order by seq and drop repeats). If the bus stays
/// down, its reconnect makes every instance tell its clients to resume.
async fn publish_on(bus: &Arc<dyn Bus>, topic: &str, frame: &ServerFrame) {
    let text = frame.to_text();
    if let Err(e) = bus.publish(topic, text.clone()).await {
        tracing::warn!(topic, error = %e, "publish failed; retrying");
        let bus = bus.clone();
        let topic = topic.to_string();
        tokio::spawn(async move {
            for delay in [200, 1000, 3000] {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if bus.publish(&topic, text.clone()).await.is_ok() {
                    return;
                }
            }
            tracing::error!(%topic, "publish failed for good; clients resume after the bus reconnects");
        });
    }
}

/// Sends a queue snapshot after each change, at most once per
/// [`QUEUE_COALESCE`]; changes meanwhile are folded into the next one.
/// Ends with its `Chat` (the last other holder of `changed`).
async fn send_queue_snapshots(store: Store, bus: Arc<dyn Bus>, changed: Arc<tokio::sync::Notify>) {
    loop {
        changed.notified().await;
        tokio::time::sleep(QUEUE_COALESCE).await;
        if Arc::strong_count(&changed) == 1 {
            return;
        }
        match queue_frame(&store).await {
            Ok(frame) => publish_on(&bus, QUEUE_TOPIC, &frame).await,
            Err(e) => tracing::warn!(error = %e, "could not read the queue"),
        }
    }
}

/// Before this time (ms), a customer not connected here counts as away
/// (presence is refreshed every [`PRESENCE_PERIOD`]; one missed refresh is
/// allowed for).
fn away_if_unseen_since() -> i64 {
    crate::store::now_ms() - 2 * PRESENCE_PERIOD.as_millis() as i64
}

/// An agent's message as both write paths store it: a reply lands only
/// while this agent still owns the conversation; a private note anywhere.
fn agent_message<'a>(
    agent: &'a User,
    body: &'a str,
    private: bool,
    client_msg_id: &'a str,
) -> NewChatMessage<'a> {
    NewChatMessage {
        sender_kind: SenderKind::Agent,
        sender_user_id: Some(agent.id.0),
        sender_name: &agent.name,
        body,
        private,
        client_msg_id,
        only_in: None,
        only_assignee: (!private).then_some(agent.id.0),
        only_if_customer_seen_after: None,
        email: None,
        attachment: None,
        options: &[],
    }
}

/// An agent's text, with its attachment, checked; errors name the field the
/// console shows them on.
fn agent_body(
    body: &str,
    attachment: Option<&AttachmentRef>,
    private: bool,
) -> DomainResult<String> {
    body_with(body, attachment).map_err(|e| match e {
        DomainError::Invalid { message, .. } => {
            invalid(if private { "note" } else { "body" }, message)
        }
        other => other,
    })
}

/// An agent's write as the agent is told of it: stored (new, or the message
/// a resend already stored), refused by the write's conditions (`None`: each
/// caller says what that means), or an error.
fn agent_sent(appended: Appended) -> DomainResult<Option<Sent>> {
    match appended {
        Appended::New(message, _) => Ok(Some(Sent {
            message,
            duplicate: false,
        })),
        Appended::Duplicate(message) => Ok(Some(Sent {
            message,
            duplicate: true,
        })),
        Appended::Refused => Ok(None),
        Appended::IdTaken => Err(DomainError::Conflict(
            "client_msg_id is already used in this conversation; send with a fresh one".into(),
        )),
        Appended::AttachmentTaken => Err(attachment_taken()),
    }
}
