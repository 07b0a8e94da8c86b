//! The live chat: what happens when someone writes, asks for a person,
//! claims, transfers, resolves or rates. Every change is committed to the
//! store first and then published on the bus ([`publish`]). One job a file:
//! - [`input`]: what people send, checked, and what it means;
//! - [`sending`]: visitors' and agents' messages, emails to the away;
//! - [`bot_turns`]: the bot's answer to each customer message;
//! - [`routing`]: handoff, assignment, claim, transfer, resolve;
//! - [`presence`], [`signals`], [`visitors`]: who is here, typing and
//!   read markers, contact details and ratings;
//! - [`frames`], [`replay`], [`publish`]: the wire, resume, fan-out.
//!
//! Rules kept here:
//! - the bot speaks only while a conversation is `bot`; once a person is
//!   involved, bot replies are refused by the store itself;
//! - a customer can always reach a person (asking, the button, repeated
//!   misses, a failing or slow bot);
//! - a visitor reaches only their own conversations; private notes and
//!   staff-side numbering never reach a visitor.

mod bot_turns;
mod frames;
pub mod input;
mod presence;
mod publish;
mod replay;
mod routing;
mod sending;
mod signals;
mod visitors;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use frames::{Audience, attachment_info};
pub use input::{
    asks_for_a_person, attachment_taken, body_with, message_text, parse_body, parse_client_msg_id,
    subject_from,
};
pub use presence::PRESENCE_PERIOD;
pub use replay::ReplayCursor;
pub use routing::HandoffReason;
pub use sending::Sent;

use super::notifications::AwayNotices;
use super::uploads::Files;
use super::{DomainError, DomainResult};
use crate::bot::Bot;
use crate::bus::Bus;
use crate::metrics::Metrics;
use crate::model::{Conversation, ConversationId, User, Visitor, VisitorId};
use crate::store::Store;
use publish::send_queue_snapshots;

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

pub struct Chat {
    store: Store,
    bus: Arc<dyn Bus>,
    bot: Arc<dyn Bot>,
    config: ChatConfig,
    /// Visitors with an open socket on this instance, by visitor id.
    online_visitors: Mutex<HashMap<VisitorId, usize>>,
    /// When each conversation last emailed its customer (to coalesce bursts).
    emailed: Mutex<HashMap<ConversationId, Instant>>,
    /// When each conversation last emailed its away owner (the same, for agents).
    away_notices: AwayNotices,
    /// Conversations whose ticket is known to have its first response, so
    /// that an agent's reply need not look (bounded: see
    /// [`sending::FIRST_RESPONSES_KEPT`]; forgetting costs one idempotent write).
    first_responded: Mutex<HashSet<ConversationId>>,
    metrics: Arc<Metrics>,
    /// Wakes the task that sends queue snapshots (see [`publish::QUEUE_COALESCE`]).
    queue_changed: Arc<tokio::sync::Notify>,
    /// Where uploads and the originals of emails go; `None` in a chat built
    /// without a blob store (some tests), which then takes no files.
    files: Option<Files>,
}

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
            away_notices: AwayNotices::default(),
            first_responded: Mutex::new(HashSet::new()),
            queue_changed,
            files: None,
        }
    }

    /// This chat, storing files (uploads, emails' attachments and
    /// originals) in `files`.
    pub fn with_files(mut self, files: Files) -> Chat {
        self.files = Some(files);
        self
    }

    /// Where files go, when this chat takes any.
    pub fn files(&self) -> Option<&Files> {
        self.files.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What this instance remembers of telling owners their customers wrote.
    pub fn away_notices(&self) -> &crate::domain::notifications::AwayNotices {
        &self.away_notices
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

    pub(super) fn presence_fresh_ms(&self) -> i64 {
        self.config.presence_fresh.as_millis() as i64
    }

    // ----- who may see what -----

    /// The conversation if it belongs to `visitor`; "not found" otherwise,
    /// whether or not it exists.
    pub async fn visitor_conversation(
        &self,
        visitor: &Visitor,
        id: ConversationId,
    ) -> DomainResult<Conversation> {
        match self.store.conversation(id).await? {
            Some(c) if c.visitor_id == visitor.id => Ok(c),
            _ => Err(DomainError::NotFound),
        }
    }

    /// Any conversation, for staff.
    pub async fn staff_conversation(
        &self,
        agent: &User,
        id: ConversationId,
    ) -> DomainResult<Conversation> {
        if !agent.role.is_staff() {
            return Err(DomainError::NotFound);
        }
        self.store
            .conversation(id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    pub async fn conversation_for(
        &self,
        who: &Participant,
        id: ConversationId,
    ) -> DomainResult<Conversation> {
        match who {
            Participant::Visitor(v) => self.visitor_conversation(v, id).await,
            Participant::Agent(a) => self.staff_conversation(a, id).await,
        }
    }
}
