//! The hub: this instance's open sockets and the bus topics they listen
//! to. The bus delivers each event once per instance; the hub hands the same
//! serialized frame to every local socket on that topic through its bounded
//! queue. A socket whose queue is full is closed (4000) rather than allowed
//! to slow anyone else down; its client resumes from the database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

use super::outbox::{Outbox, Refused};

use crate::bus::{Bus, BusEvent, Topic};
use crate::model::{ConversationId, UserId};
use crate::protocol::ServerFrame;

pub type SocketId = u64;

/// Close codes the server uses (see docs/protocol.md).
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const GOING_AWAY: u16 = 1001;
    /// A frame that breaks RFC 6455 (a reserved opcode, a control frame
    /// over 125 bytes, reserved bits set).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const TOO_SLOW: u16 = 4000;
    pub const SESSION_ENDED: u16 = 4401;
}

/// Closes one socket from anywhere (hub, shutdown, its own reader).
#[derive(Default)]
pub struct KillSwitch {
    notify: Notify,
    code: AtomicU16,
}

impl KillSwitch {
    /// The first code wins; later calls do not change it.
    pub fn fire(&self, code: u16) {
        if self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_waiters();
        }
    }

    pub fn code(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    pub async fn fired(&self) -> u16 {
        loop {
            let notified = self.notify.notified();
            if let Some(code) = self.code() {
                return code;
            }
            notified.await;
        }
    }
}

struct SocketEntry {
    outbox: Arc<Outbox>,
    kill: Arc<KillSwitch>,
    topics: HashSet<Topic>,
    agent: Option<AgentLink>,
}

/// What the hub knows of a console socket: whose it is, and how to tell it
/// that the account changed (on its [`Topic::Account`]).
pub struct AgentLink {
    pub agent: UserId,
    pub account_changed: Arc<Notify>,
}

#[derive(Default)]
struct HubState {
    sockets: HashMap<SocketId, SocketEntry>,
    topics: HashMap<Topic, HashSet<SocketId>>,
}

pub struct Hub {
    bus: Arc<dyn Bus>,
    /// Topics this instance is subscribed to on the bus.
    on_bus: tokio::sync::Mutex<HashSet<Topic>>,
    metrics: Arc<crate::metrics::Metrics>,
    state: Mutex<HubState>,
    next_id: AtomicU64,
    slow_closes: AtomicU64,
}

impl Hub {
    pub fn new(bus: Arc<dyn Bus>, metrics: Arc<crate::metrics::Metrics>) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            bus,
            on_bus: tokio::sync::Mutex::new(HashSet::new()),
            metrics,
            state: Mutex::new(HubState::default()),
            next_id: AtomicU64::new(1),
            slow_closes: AtomicU64::new(0),
        });
        if let Some(events) = hub.bus.events() {
            tokio::spawn(dispatch(Arc::downgrade(&hub), events));
        }
        hub
    }

    pub fn register(
        &self,
        outbox: Arc<Outbox>,
        agent: Option<AgentLink>,
    ) -> (SocketId, Arc<KillSwitch>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kill = Arc::new(KillSwitch::default());
        let entry = SocketEntry {
            outbox,
            kill: kill.clone(),
            topics: HashSet::new(),
            agent,
        };
        self.state
            .lock()
            .expect("hub lock")
            .sockets
            .insert(id, entry);
        (id, kill)
    }

    /// Starts delivering `topic` to socket `id`. Returns once the instance
    /// is subscribed on the bus, so that a database read after it cannot
    /// miss a message published meanwhile.
    pub async fn subscribe(&self, id: SocketId, topic: Topic) -> Result<(), crate::bus::BusError> {
        {
            let mut state = self.state.lock().expect("hub lock");
            let Some(entry) = state.sockets.get_mut(&id) else {
                return Ok(());
            };
            if !entry.topics.insert(topic) {
                // Already following it: nothing to tell the bus. (Every send
                // re-subscribes, so this is the hot path; the bus lock below
                // is held across a Redis round trip when a topic is new.)
                return Ok(());
            }
            state.topics.entry(topic).or_default().insert(id);
        }
        self.sync_bus(topic).await
    }

    /// Whether socket `id` listens to `topic` now.
    pub fn is_subscribed(&self, id: SocketId, topic: Topic) -> bool {
        self.state
            .lock()
            .expect("hub lock")
            .sockets
            .get(&id)
            .is_some_and(|entry| entry.topics.contains(&topic))
    }

    /// Stops delivering `topic` to socket `id`.
    pub async fn unsubscribe(
        &self,
        id: SocketId,
        topic: Topic,
    ) -> Result<(), crate::bus::BusError> {
        {
            let mut state = self.state.lock().expect("hub lock");
            let Some(entry) = state.sockets.get_mut(&id) else {
                return Ok(());
            };
            if !entry.topics.remove(&topic) {
                return Ok(());
            }
            if let Some(listeners) = state.topics.get_mut(&topic) {
                listeners.remove(&id);
                if listeners.is_empty() {
                    state.topics.remove(&topic);
                }
            }
        }
        self.sync_bus(topic).await
    }

    /// Forgets a socket; unsubscribes topics nobody here listens to any more.
    pub async fn unregister(&self, id: SocketId) {
        let topics: Vec<Topic> = {
            let mut state = self.state.lock().expect("hub lock");
            let Some(entry) = state.sockets.remove(&id) else {
                return;
            };
            for topic in &entry.topics {
                if let Some(listeners) = state.topics.get_mut(topic) {
                    listeners.remove(&id);
                    if listeners.is_empty() {
                        state.topics.remove(topic);
                    }
                }
            }
            entry.topics.into_iter().collect()
        };
        for topic in topics {
            if let Err(e) = self.sync_bus(topic).await {
                tracing::warn!(%topic, error = %e, "unsubscribe failed");
            }
        }
    }

    /// Makes the bus subscription of `topic` match whether any local socket
    /// listens to it now. Changes are serialized (one async lock), and each
    /// decides from the listeners at that moment, so a late unsubscribe can
    /// never cut off a socket that subscribed meanwhile.
    async fn sync_bus(&self, topic: Topic) -> Result<(), crate::bus::BusError> {
        let mut on_bus = self.on_bus.lock().await;
        let wanted = self
            .state
            .lock()
            .expect("hub lock")
            .topics
            .contains_key(&topic);
        match (wanted, on_bus.contains(&topic)) {
            (true, false) => {
                self.bus.subscribe(topic).await?;
                on_bus.insert(topic);
            }
            (false, true) => {
                on_bus.remove(&topic);
                self.bus.unsubscribe(topic).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Closes socket `id` with `code` (its reader and writer both stop).
    pub fn kill(&self, id: SocketId, code: u16) {
        if let Some(entry) = self.state.lock().expect("hub lock").sockets.get(&id) {
            entry.kill.fire(code);
        }
    }

    /// Closes every visitor socket with `code` without waiting (a network
    /// blip, for tests; `close_all` is the graceful shutdown).
    pub fn kill_visitors(&self, code: u16) {
        for entry in self.state.lock().expect("hub lock").sockets.values() {
            if entry.agent.is_none() {
                entry.kill.fire(code);
            }
        }
    }

    /// Closes every console socket with `code` without waiting (a network
    /// blip on the staff side, for tests).
    pub fn kill_consoles(&self, code: u16) {
        for entry in self.state.lock().expect("hub lock").sockets.values() {
            if entry.agent.is_some() {
                entry.kill.fire(code);
            }
        }
    }

    pub fn agent_sockets(&self, agent: UserId) -> usize {
        let state = self.state.lock().expect("hub lock");
        state
            .sockets
            .values()
            .filter(|s| s.agent.as_ref().is_some_and(|a| a.agent == agent))
            .count()
    }

    pub fn socket_count(&self) -> usize {
        self.state.lock().expect("hub lock").sockets.len()
    }

    /// Sockets closed because they could not keep up.
    pub fn slow_closes(&self) -> u64 {
        self.slow_closes.load(Ordering::Relaxed)
    }

    /// Shutdown: every socket is closed with `code`; waits up to `grace`
    /// for them to finish.
    pub async fn close_all(&self, code: u16, grace: Duration) {
        {
            let state = self.state.lock().expect("hub lock");
            for entry in state.sockets.values() {
                entry.kill.fire(code);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.socket_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Hands `frame` to every local socket on `topic`; returns the sockets
    /// that must now follow conversation `follow` (an assignment).
    fn deliver(
        &self,
        topic: Topic,
        frame: Utf8Bytes,
        follow: Option<ConversationId>,
    ) -> Vec<(SocketId, ConversationId)> {
        let state = self.state.lock().expect("hub lock");
        let Some(listeners) = state.topics.get(&topic) else {
            return Vec::new();
        };
        // For the server only: an account changed, its consoles re-check.
        if let Topic::Account(_) = topic {
            account_changed(&state, listeners);
            return Vec::new();
        }
        let mut followers = Vec::new();
        for id in listeners {
            let Some(entry) = state.sockets.get(id) else {
                continue;
            };
            match entry.outbox.try_push(frame.clone()) {
                Ok(()) => {
                    self.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
                }
                Err(Refused::Full(_)) => {
                    if entry.kill.code().is_none() {
                        self.slow_closes.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(socket = id, "socket too slow; closing it (4000)");
                    }
                    entry.kill.fire(close::TOO_SLOW);
                }
                // Its writer has stopped: the socket is closing anyway.
                Err(Refused::Closed) => {}
            }
            if let Some(conversation) = follow {
                followers.push((*id, conversation));
            }
        }
        followers
    }

    /// The bus may have lost messages on `topics`. Conversation listeners
    /// are told to resume. Queue watchers and assignment listeners cannot
    /// resume a single thing, so their sockets are closed with 1001: the
    /// console reconnects and gets a fresh welcome and queue.
    fn resync(&self, topics: &[Topic]) {
        let state = self.state.lock().expect("hub lock");
        for topic in topics {
            let Some(listeners) = state.topics.get(topic) else {
                continue;
            };
            // A lost account event: every console of that account re-checks.
            if let Topic::Account(_) = topic {
                account_changed(&state, listeners);
                continue;
            }
            let Some(conversation) = topic.conversation() else {
                for id in listeners {
                    if let Some(entry) = state.sockets.get(id) {
                        entry.kill.fire(close::GOING_AWAY);
                    }
                }
                continue;
            };
            let frame: Utf8Bytes = ServerFrame::ResumeRequired {
                conversation_id: conversation.to_string(),
            }
            .to_text()
            .as_ref()
            .into();
            for id in listeners {
                if let Some(entry) = state.sockets.get(id)
                    && let Err(Refused::Full(_)) = entry.outbox.try_push(frame.clone())
                {
                    entry.kill.fire(close::TOO_SLOW);
                }
            }
        }
    }
}

/// Wakes each console among `listeners` to re-check its session.
fn account_changed(state: &HubState, listeners: &HashSet<SocketId>) {
    for id in listeners {
        if let Some(link) = state.sockets.get(id).and_then(|s| s.agent.as_ref()) {
            link.account_changed.notify_one();
        }
    }
}

async fn dispatch(hub: std::sync::Weak<Hub>, mut events: mpsc::Receiver<BusEvent>) {
    while let Some(event) = events.recv().await {
        let Some(hub) = hub.upgrade() else { break };
        match event {
            BusEvent::Message { topic, envelope } => {
                // One copy per event, shared (reference counted) by every socket.
                let frame: Utf8Bytes = envelope.frame.as_ref().into();
                let follows = hub.deliver(topic, frame, envelope.follow);
                if !follows.is_empty() {
                    // A conversation given to an agent: their sockets follow
                    // it. Off the dispatch loop: a bus round trip must not
                    // hold up delivery to everyone else.
                    let hub = hub.clone();
                    tokio::spawn(async move {
                        for (socket, conversation) in follows {
                            let topic = Topic::Staff(conversation);
                            if let Err(e) = hub.subscribe(socket, topic).await {
                                tracing::warn!(%topic, error = %e, "could not follow an assigned conversation");
                            }
                        }
                    });
                }
            }
            BusEvent::Resync { topics } => hub.resync(&topics),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;

    fn hub() -> Arc<Hub> {
        Hub::new(Arc::new(LocalBus::standalone()), Arc::default())
    }

    fn console(hub: &Hub, agent: i64) -> (SocketId, Arc<Outbox>, Arc<Notify>) {
        let outbox = Arc::new(Outbox::new(8));
        let changed = Arc::new(Notify::new());
        let link = AgentLink {
            agent: UserId(agent),
            account_changed: changed.clone(),
        };
        let (id, _) = hub.register(outbox.clone(), Some(link));
        (id, outbox, changed)
    }

    async fn rung(changed: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(200), changed.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_account_event_wakes_that_accounts_consoles_and_reaches_no_client() {
        let hub = hub();
        let (alan, alan_out, alan_changed) = console(&hub, 1);
        let (bea, _, bea_changed) = console(&hub, 2);
        hub.subscribe(alan, Topic::Account(UserId(1)))
            .await
            .unwrap();
        hub.subscribe(bea, Topic::Account(UserId(2))).await.unwrap();

        hub.deliver(Topic::Account(UserId(1)), "{}".into(), None);

        assert!(rung(&alan_changed).await, "alan's console re-checks");
        assert!(!rung(&bea_changed).await, "bea's console is not woken");
        assert!(alan_out.try_pop().is_none(), "nothing goes to the client");
    }

    #[tokio::test]
    async fn a_lost_account_event_makes_the_consoles_re_check_instead_of_closing() {
        let hub = hub();
        let (alan, alan_out, alan_changed) = console(&hub, 1);
        hub.subscribe(alan, Topic::Account(UserId(1)))
            .await
            .unwrap();
        hub.subscribe(alan, Topic::Agent(UserId(1))).await.unwrap();

        hub.resync(&[Topic::Account(UserId(1))]);

        assert!(rung(&alan_changed).await);
        assert!(alan_out.try_pop().is_none());
        assert_eq!(hub.agent_sockets(UserId(1)), 1);
        let state = hub.state.lock().unwrap();
        assert_eq!(state.sockets[&alan].kill.code(), None, "still open");
    }
}
