//! The `chat` scenario: customers on widgets and agents on consoles, each
//! conversation a customer and an agent exchanging messages at a set rate.
//!
//! Longer than 600 lines: the scenario's clients keep the delivery contract
//! as the widget and console do (hold by seq, gap grace, resume, resend) and
//! its ledger checks them; the state machine reads best in one place.
//!
//! The clients follow the delivery contract (docs/protocol.md §6) as the
//! widget and the console do: they hold messages by `seq`, drop a `seq`
//! already held (resume may send one twice), give a live `seq` that skips
//! ahead [`GAP_GRACE`] to be overtaken before resuming, resume from the
//! highest gap-free `seq` after a reconnect and resend what was not acked
//! with the same `client_msg_id`. What they measure:
//! - end-to-end latency: every body carries its send time;
//! - lost: acked, but never shown to the other side (a ledger keyed by the
//!   server's message id);
//! - duplicated: one message shown to the same person twice (under two
//!   seqs, e.g. a retried send stored twice);
//! - seq conflicts: two different messages under one seq.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::report::Latency;
use crate::socket::{Incoming, Socket};
use crate::{Protocol, Setup, Target, http, local_ip, procfs};

#[derive(Debug, Clone)]
pub struct ChatPlan {
    pub customers: usize,
    /// Cookie headers of logged-in agents (see [`http::agent_cookie`]).
    pub agent_cookies: Vec<String>,
    /// Messages per second each side sends in each conversation.
    pub rate: f64,
    /// From the first connection until sending stops.
    pub duration: Duration,
    /// Customers connecting together, and the pause between waves.
    pub wave: usize,
    pub wave_every: Duration,
    /// At most this long after sending stops for the last deliveries.
    pub grace: Duration,
    /// Client source addresses to spread over (127.0.0.2 …).
    pub spread: usize,
    /// The server process, to read its memory (one instance; more with
    /// [`run_with`]).
    pub server_pid: Option<u32>,
}

#[derive(Debug, Default)]
pub struct ChatReport {
    pub conversations: u64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub seq_conflicts: u64,
    /// Frames for a seq already held (allowed while resuming).
    pub replayed_twice: u64,
    pub reconnects: u64,
    /// Close codes that ended client sockets mid-run.
    pub closes: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub failed_clients: u64,
    pub first_failure: Option<String>,
    pub send_window: Duration,
    /// The start of the send window that is not measured (latency,
    /// throughput): customers arriving, conversations being assigned.
    pub warmup: Duration,
    /// When the last conversation went live, since the start.
    pub all_live_after: Option<Duration>,
    /// From the end of sending until the last delivery (or the grace ran out).
    pub drain: Duration,
    pub delivery: Latency,
    pub ack: Latency,
    /// Acks over a second late in the measured window, by when the message
    /// was sent (5 s buckets since the start) and by who sent it: whether
    /// the tail comes in waves, and from which side.
    pub slow_acks: BTreeMap<u64, u64>,
    pub slow_acks_agents: u64,
    pub slow_acks_customers: u64,
    /// Clients with at least one slow ack (a tail spread over everyone, or
    /// a few clients that fell behind), and what each was doing.
    pub slow_clients: Vec<String>,
    /// Resumes the clients asked for after a gap (or `resume_required`).
    pub resumes: u64,
    /// Live messages that arrived ahead of an earlier seq: how often
    /// senders on different instances were delivered out of order.
    pub reordered: u64,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_after: Option<u64>,
    /// The servers' CPU over the measured window, in percent of one core
    /// (summed over instances).
    pub server_cpu_percent: Option<f64>,
    /// The whole machine's CPU over the measured window, in percent of all
    /// its cores (the generator, databases and neighbours included).
    pub machine_busy_percent: Option<f64>,
}

impl ChatReport {
    /// Deliveries of messages sent after the warm-up, per second of the
    /// measured window.
    pub fn delivered_per_second(&self) -> f64 {
        let measured = self.send_window.saturating_sub(self.warmup);
        self.delivery.count() as f64 / measured.as_secs_f64().max(0.001)
    }

    /// The figures, for `--json`.
    pub fn to_json(&self) -> Value {
        json!({
            "conversations": self.conversations,
            "sent": self.sent,
            "acked": self.acked,
            "unacked": self.sent.saturating_sub(self.acked),
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "seq_conflicts": self.seq_conflicts,
            "reconnects": self.reconnects,
            "closes": self.closes,
            "errors": self.errors,
            "resumes": self.resumes,
            "reordered": self.reordered,
            "slow_ack_clients": self.slow_clients.len(),
            "failed_clients": self.failed_clients,
            "delivered_per_second": self.delivered_per_second(),
            "send_seconds": self.send_window.as_secs_f64(),
            "warmup_seconds": self.warmup.as_secs_f64(),
            "all_live_after_seconds": self.all_live_after.map(|d| d.as_secs_f64()),
            "drain_seconds": self.drain.as_secs_f64(),
            "delivery_ms": self.delivery.to_json(),
            "ack_ms": self.ack.to_json(),
            "rss_kib_before": self.rss_kib_before,
            "rss_kib_after": self.rss_kib_after,
            "server_cpu_percent": self.server_cpu_percent,
            "machine_busy_percent": self.machine_busy_percent,
        })
    }

    /// Whether the delivery contract held.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.seq_conflicts == 0
            && self.failed_clients == 0
    }
}

impl std::fmt::Display for ChatReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.all_live_after {
            Some(all) => writeln!(
                f,
                "conversations live   {} (all live {:.1} s after the start)",
                self.conversations,
                all.as_secs_f64()
            )?,
            None => writeln!(f, "conversations live   {}", self.conversations)?,
        }
        writeln!(
            f,
            "messages             sent {}, acked {} (never acked {}), delivered {}, lost {}, duplicated {}, seq conflicts {}",
            self.sent,
            self.acked,
            self.sent.saturating_sub(self.acked),
            self.delivered,
            self.lost,
            self.duplicated,
            self.seq_conflicts
        )?;
        writeln!(
            f,
            "throughput           {:.0} delivered/s over {:.1} s after a {:.1} s warm-up (drained in {:.1} s)",
            self.delivered_per_second(),
            self.send_window.saturating_sub(self.warmup).as_secs_f64(),
            self.warmup.as_secs_f64(),
            self.drain.as_secs_f64()
        )?;
        writeln!(f, "send → message       {}", self.delivery)?;
        writeln!(f, "send → ack           {}", self.ack)?;
        if !self.slow_acks.is_empty() {
            writeln!(
                f,
                "acks over 1 s        agents {}, customers {}, from {} clients; by send time (s: count) {:?}",
                self.slow_acks_agents,
                self.slow_acks_customers,
                self.slow_clients.len(),
                self.slow_acks
            )?;
            writeln!(
                f,
                "clients with them    {}",
                self.slow_clients
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
        writeln!(
            f,
            "reconnects {} (closes {:?}), errors {:?}, out of order {}, resumes {}, replayed twice {}, failed clients {}",
            self.reconnects,
            self.closes,
            self.errors,
            self.reordered,
            self.resumes,
            self.replayed_twice,
            self.failed_clients
        )?;
        if let Some(failure) = &self.first_failure {
            writeln!(f, "first failure        {failure}")?;
        }
        if let (Some(server), Some(machine)) = (self.server_cpu_percent, self.machine_busy_percent)
        {
            writeln!(
                f,
                "CPU                  servers {server:.0} % of one core, machine {machine:.0} % busy (measured window)"
            )?;
        }
        if let (Some(before), Some(after)) = (self.rss_kib_before, self.rss_kib_after) {
            writeln!(
                f,
                "server RSS           {before} KiB before, {after} KiB with every socket open"
            )?;
        }
        Ok(())
    }
}

/// How long a gap may wait for its missing seqs to arrive live before the
/// client resumes (docs/protocol.md §6.5): live messages from senders on
/// different instances overtake each other by milliseconds.
const GAP_GRACE: Duration = Duration::from_millis(500);

/// What every client shares: the clock in message bodies, the ledger and
/// the counters.
struct Shared {
    target: Target,
    plan: ChatPlan,
    setup: Setup,
    /// Socket.IO peer only: conversations handed to agent i (Careline's
    /// routing does it on the server).
    handoffs: Vec<tokio::sync::mpsc::UnboundedSender<String>>,
    start: Instant,
    stop_sending: Instant,
    ledger: Mutex<HashMap<String, Entry>>,
    tallies: Mutex<Tallies>,
    sent: AtomicU64,
    live: AtomicU64,
    /// When the last customer's conversation went live (since the start).
    all_live_at: Mutex<Option<Duration>>,
}

#[derive(Default)]
struct Entry {
    acked: bool,
    delivered: bool,
}

#[derive(Default)]
struct Tallies {
    duplicated: u64,
    seq_conflicts: u64,
    replayed_twice: u64,
    resumes: u64,
    reordered: u64,
    closes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

impl Shared {
    fn body(&self) -> String {
        // Realistic size: a timestamp and a sentence.
        format!(
            "L {} Hello, I have a question about my order and its delivery.",
            self.start.elapsed().as_micros()
        )
    }

    /// A body's latency, and when it was sent (since the start).
    fn sent_at(&self, body: &str) -> Option<(Duration, Duration)> {
        let micros: u64 = body.strip_prefix("L ")?.split(' ').next()?.parse().ok()?;
        let sent = Duration::from_micros(micros);
        Some((self.start.elapsed().saturating_sub(sent), sent))
    }

    fn entry<R>(&self, id: &str, f: impl FnOnce(&mut Entry) -> R) -> R {
        f(self
            .ledger
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default())
    }

    /// Messages still on their way: sent but not acked yet, or acked but
    /// not delivered yet.
    fn unsettled(&self) -> u64 {
        let ledger = self.ledger.lock().unwrap();
        let acked = ledger.values().filter(|e| e.acked).count() as u64;
        let undelivered = ledger.values().filter(|e| e.acked && !e.delivered).count() as u64;
        self.sent.load(Ordering::Relaxed).saturating_sub(acked) + undelivered
    }

    fn tally(&self, f: impl FnOnce(&mut Tallies)) {
        f(&mut self.tallies.lock().unwrap());
    }
}

/// One client's view of one conversation: message ids by seq.
#[derive(Default)]
struct View {
    held: BTreeMap<i64, String>,
}

impl View {
    /// A seq is held above a missing one.
    fn has_hole(&self) -> bool {
        self.held
            .last_key_value()
            .is_some_and(|(&top, _)| top > self.gap_free())
    }

    /// After a resume from `resumed_from` answered: whether a hole left
    /// above the end is worth waiting for. Only if the resume got
    /// somewhere: one that filled nothing would be asked again every grace.
    fn hole_worth_a_grace(&self, resumed_from: i64) -> bool {
        self.has_hole() && self.gap_free() > resumed_from
    }

    /// The highest seq held with nothing missing below it: where to resume.
    fn gap_free(&self) -> i64 {
        let mut last = 0;
        for &seq in self.held.keys() {
            if seq != last + 1 {
                break;
            }
            last = seq;
        }
        last
    }
}

/// Conversations with a hole in their seqs, and when to stop waiting for
/// the live messages that fill it and resume instead.
#[derive(Default)]
struct Gaps {
    due: HashMap<String, Instant>,
}

impl Gaps {
    /// Accounts for live message `seq`, just added to `view`. Returns
    /// whether it skipped ahead of a missing seq (outside a resume, where
    /// order is not kept: §6.4.3).
    fn after_live(
        &mut self,
        conversation: &str,
        view: &View,
        seq: i64,
        resuming: bool,
        now: Instant,
    ) -> bool {
        if !view.has_hole() {
            self.forget(conversation);
            return false;
        }
        let ahead = seq > view.gap_free() + 1 && !resuming;
        if ahead {
            self.wait(conversation, now);
        }
        ahead
    }

    /// Starts the grace of a gap, unless one is already running.
    fn wait(&mut self, conversation: &str, now: Instant) {
        self.due
            .entry(conversation.to_string())
            .or_insert(now + GAP_GRACE);
    }

    fn forget(&mut self, conversation: &str) {
        self.due.remove(conversation);
    }

    /// When the first grace ends, if a gap is open.
    fn due(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// The conversations whose grace has ended (they are forgotten here;
    /// the resume that follows answers them).
    fn overdue(&mut self, now: Instant) -> Vec<String> {
        let overdue: Vec<String> = self
            .due
            .iter()
            .filter(|(_, due)| **due <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &overdue {
            self.due.remove(id);
        }
        overdue
    }
}

/// One client's figures, merged at the end.
#[derive(Default)]
struct Side {
    /// (sent, since the start; latency): the measured window is chosen at
    /// the end (see [`Setup::steady`]).
    delivery: Vec<(Duration, Duration)>,
    ack: Vec<(Duration, Duration)>,
    reconnects: u64,
    /// An agent's side (else a customer's), for the slow-ack breakdown.
    agent: bool,
    /// `c<i>` or `a<i>`: names the client, and prefixes its client_msg_ids.
    tag: String,
    /// Conversations it held at the end, resumes it asked for, messages
    /// it was sent twice: what a client that fell behind was doing.
    conversations: usize,
    resumes: u64,
    replayed: u64,
}

/// A client's messages in flight and what it was shown.
struct Traffic {
    /// Sent, not yet acked: client_msg_id → (first sent, the frame to resend).
    pending: HashMap<String, (Instant, Value)>,
    views: HashMap<String, View>,
    /// Every message id shown, whichever the seq.
    shown: HashSet<String>,
    /// Conversations with a resume in flight (until `resumed`), and the
    /// seq each asked to resume after.
    resuming: HashMap<String, i64>,
    gaps: Gaps,
    next: u64,
    side: Side,
}

impl Traffic {
    fn new(tag: String) -> Traffic {
        let agent = tag.starts_with('a');
        let side = Side {
            agent,
            tag,
            ..Side::default()
        };
        Traffic {
            pending: HashMap::new(),
            views: HashMap::new(),
            shown: HashSet::new(),
            resuming: HashMap::new(),
            gaps: Gaps::default(),
            next: 0,
            side,
        }
    }

    async fn send(
        &mut self,
        shared: &Shared,
        socket: &mut Socket,
        conversation: &str,
    ) -> anyhow::Result<()> {
        // A select! checks its `if` guard when it starts waiting, so a tick
        // can still fire after sending stopped: such a late send would not be
        // waited for by the drain, and would count as never acked.
        if Instant::now() >= shared.stop_sending {
            return Ok(());
        }
        self.next += 1;
        let client_msg_id = format!("{}-{}", self.side.tag, self.next);
        let frame = json!({"type": "send", "conversation_id": conversation,
                           "client_msg_id": client_msg_id, "body": shared.body()});
        shared.sent.fetch_add(1, Ordering::Relaxed);
        self.pending
            .insert(client_msg_id, (Instant::now(), frame.clone()));
        // A failed write means the socket is going: the reconnect resends.
        let _ = socket.send(&frame).await;
        Ok(())
    }

    /// Catches up on a conversation from the highest gap-free seq held.
    async fn resume(&mut self, socket: &mut Socket, conversation: &str) -> anyhow::Result<()> {
        self.gaps.forget(conversation);
        let after = self.views.get(conversation).map_or(0, View::gap_free);
        self.resuming.insert(conversation.to_string(), after);
        // A failed write means the socket is going: the reconnect resumes.
        let _ = socket
            .send(&json!({"type": "resume", "conversation_id": conversation, "after_seq": after}))
            .await;
        Ok(())
    }

    /// After a reconnect: catch up on `conversations`, then resend what was
    /// never acked, under the same client_msg_id.
    async fn recover(
        &mut self,
        socket: &mut Socket,
        conversations: &[String],
    ) -> anyhow::Result<()> {
        for id in conversations {
            self.resume(socket, id).await?;
        }
        for (_, frame) in self.pending.values() {
            let _ = socket.send(frame).await;
        }
        Ok(())
    }

    /// Handles a frame; a conversation to resume is sent at once.
    async fn handle(
        &mut self,
        shared: &Shared,
        socket: &mut Socket,
        frame: &Value,
        other: &str,
    ) -> anyhow::Result<()> {
        if let Some(conversation) = self.observe(shared, frame, other) {
            self.resume_after_gap(shared, socket, &conversation).await?;
        }
        Ok(())
    }

    async fn resume_after_gap(
        &mut self,
        shared: &Shared,
        socket: &mut Socket,
        conversation: &str,
    ) -> anyhow::Result<()> {
        shared.tally(|t| t.resumes += 1);
        self.side.resumes += 1;
        self.resume(socket, conversation).await
    }

    /// Resumes every conversation whose gap outlived its grace (§6.5).
    async fn resume_overdue(&mut self, shared: &Shared, socket: &mut Socket) -> anyhow::Result<()> {
        for conversation in self.gaps.overdue(Instant::now()) {
            self.resume_after_gap(shared, socket, &conversation).await?;
        }
        Ok(())
    }

    /// Accounts for a frame; messages from `other` count as deliveries.
    /// Returns a conversation to resume now; a live message that skips
    /// ahead only starts its gap's grace (see [`GAP_GRACE`]).
    fn observe(&mut self, shared: &Shared, frame: &Value, other: &str) -> Option<String> {
        match frame["type"].as_str() {
            Some("ack") => {
                let pending = frame["client_msg_id"]
                    .as_str()
                    .and_then(|c| self.pending.remove(c));
                if let (Some((sent, _)), Some(id)) = (pending, frame["id"].as_str()) {
                    self.side.ack.push((sent - shared.start, sent.elapsed()));
                    shared.entry(id, |e| e.acked = true);
                }
            }
            Some("message") => {
                let (Some(conversation), Some(seq), Some(id)) = (
                    frame["conversation_id"].as_str(),
                    frame["seq"].as_i64(),
                    frame["id"].as_str(),
                ) else {
                    return None;
                };
                let view = self.views.entry(conversation.to_string()).or_default();
                match view.held.get(&seq) {
                    Some(held) if held == id => {
                        shared.tally(|t| t.replayed_twice += 1);
                        self.side.replayed += 1;
                        return None;
                    }
                    Some(_) => {
                        shared.tally(|t| t.seq_conflicts += 1);
                        return None;
                    }
                    None => {
                        view.held.insert(seq, id.to_string());
                    }
                }
                let resuming = self.resuming.contains_key(conversation);
                if self
                    .gaps
                    .after_live(conversation, view, seq, resuming, Instant::now())
                {
                    shared.tally(|t| t.reordered += 1);
                }
                if !self.shown.insert(id.to_string()) {
                    shared.tally(|t| t.duplicated += 1);
                    return None;
                }
                if frame["sender"]["kind"] == other
                    && let Some((latency, sent)) =
                        frame["body"].as_str().and_then(|b| shared.sent_at(b))
                {
                    // One latency per message: its first arrival on the other
                    // side. (An agent whose claim lost follows the conversation
                    // for a moment and may see a message too.)
                    if shared.entry(id, |e| !std::mem::replace(&mut e.delivered, true)) {
                        self.side.delivery.push((sent, latency));
                    }
                }
                return None;
            }
            Some("resumed") => {
                let conversation = frame["conversation_id"].as_str()?;
                let from = self.resuming.remove(conversation).unwrap_or(0);
                // Still missing something below the end: resume again.
                let view = self.views.get(conversation);
                if view.map_or(0, View::gap_free) < frame["last_seq"].as_i64().unwrap_or(0) {
                    return Some(conversation.to_string());
                }
                // A live message past the end skipped one that was stored
                // after the resume read: give it its grace too, if this
                // resume got anywhere (as the widget does, §6.5: a hole no
                // resume fills is not asked about every 500 ms; the next
                // live message past it starts a grace again).
                if view.is_some_and(|v| v.hole_worth_a_grace(from)) {
                    self.gaps.wait(conversation, Instant::now());
                }
            }
            Some("resume_required") => {
                return frame["conversation_id"].as_str().map(str::to_string);
            }
            Some("error") => {
                let code = frame["code"].as_str().unwrap_or("?").to_string();
                shared.tally(|t| *t.errors.entry(code).or_default() += 1);
            }
            _ => {}
        }
        None
    }

    fn closed(&mut self, shared: &Shared, code: Option<u16>, ended: Option<&str>) {
        self.side.reconnects += 1;
        let code = code.map_or_else(
            || format!("none ({})", ended.unwrap_or("?")),
            |c| c.to_string(),
        );
        shared.tally(|t| *t.closes.entry(code).or_default() += 1);
    }
}

/// Runs the scenario against one Careline instance.
pub async fn run(target: Target, plan: ChatPlan) -> anyhow::Result<ChatReport> {
    let setup = Setup {
        server_pids: plan.server_pid.into_iter().collect(),
        ..Setup::default()
    };
    run_with(target, plan, setup).await
}

/// The servers' CPU ticks (summed; None without pids or if one cannot be
/// read) and the machine's busy and total ticks.
fn cpu(pids: &[u32]) -> Option<(Option<u64>, u64, u64)> {
    let (busy, total) = procfs::machine_ticks().ok()?;
    let servers = if pids.is_empty() {
        None
    } else {
        pids.iter().map(|&pid| procfs::cpu_ticks(pid).ok()).sum()
    };
    Some((servers, busy, total))
}

/// Sum of the servers' resident memory, if every one could be read.
fn rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| procfs::rss_kib(pid).ok()).sum()
}

/// Runs the scenario: agents first, online; then customers in waves.
/// Agents on `setup.agent_addr` when given (another instance), customers
/// on `target.addr`.
pub async fn run_with(target: Target, plan: ChatPlan, setup: Setup) -> anyhow::Result<ChatReport> {
    if plan.agent_cookies.is_empty() {
        bail!("the chat scenario needs at least one agent");
    }
    if plan.rate.is_nan() || plan.rate <= 0.0 {
        bail!("--rate must be above 0");
    }
    let start = Instant::now();
    let mut handoffs = Vec::new();
    let mut handoff_rx = Vec::new();
    for _ in &plan.agent_cookies {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        handoffs.push(tx);
        handoff_rx.push(rx);
    }
    let shared = Arc::new(Shared {
        target,
        setup,
        handoffs,
        start,
        stop_sending: start + plan.duration,
        plan,
        ledger: Mutex::new(HashMap::new()),
        tallies: Mutex::new(Tallies::default()),
        sent: AtomicU64::new(0),
        live: AtomicU64::new(0),
        all_live_at: Mutex::new(None),
    });
    let (done_tx, done) = watch::channel(false);
    let rss_before = rss_kib(&shared.setup.server_pids);

    let agents = shared.plan.agent_cookies.len();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(agents);
    for ((i, cookie), handoffs) in shared.plan.agent_cookies.iter().enumerate().zip(handoff_rx) {
        let (shared, cookie, ready, done) = (
            shared.clone(),
            cookie.clone(),
            ready_tx.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            agent(&shared, i, &cookie, handoffs, ready, done).await
        }));
    }
    drop(ready_tx);
    for _ in 0..agents {
        ready_rx
            .recv()
            .await
            .context("an agent failed to come online")?;
    }

    let wave = shared.plan.wave.max(1);
    let mut waves = tokio::time::interval(shared.plan.wave_every);
    for first in (0..shared.plan.customers).step_by(wave) {
        waves.tick().await;
        for i in first..(first + wave).min(shared.plan.customers) {
            let (shared, done) = (shared.clone(), done.clone());
            tasks.push(tokio::spawn(
                async move { customer(&shared, i, done).await },
            ));
        }
    }

    // CPU, sampled until sending stops; the measured window is chosen at
    // the end.
    let mut cpu_samples = Vec::new();
    while Instant::now() < shared.stop_sending {
        if let Some(sample) = cpu(&shared.setup.server_pids) {
            cpu_samples.push((start.elapsed(), sample));
        }
        tokio::time::sleep(Duration::from_millis(250).min(shared.stop_sending - Instant::now()))
            .await;
    }
    if let Some(sample) = cpu(&shared.setup.server_pids) {
        cpu_samples.push((start.elapsed(), sample));
    }
    let rss_after = rss_kib(&shared.setup.server_pids);
    // Drain: wait until every message sent is acked and has reached the
    // other side (an overloaded server may still be working through a
    // backlog of sends), or the grace runs out.
    let drained = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waited = shared.stop_sending.elapsed();
        if (waited >= Duration::from_secs(1) && shared.unsettled() == 0)
            || waited >= shared.plan.grace
        {
            break waited;
        }
    };
    let _ = done_tx.send(true);

    // The measured window: after the warm-up, and in steady mode also
    // after every conversation went live.
    let all_live_after = *shared.all_live_at.lock().unwrap();
    let measure_from = match (shared.setup.steady, all_live_after) {
        (true, Some(all_live)) => all_live.max(shared.setup.warmup),
        _ => shared.setup.warmup,
    };
    let first = cpu_samples.iter().find(|(at, _)| *at >= measure_from);
    let (server_cpu_percent, machine_busy_percent) = match (first, cpu_samples.last()) {
        (Some((at0, (s0, b0, t0))), Some((at1, (s1, b1, t1)))) if at1 > at0 => (
            // Linux reports CPU time in 1/100 s ticks.
            s0.zip(*s1)
                .map(|(s0, s1)| (s1 - s0) as f64 / (*at1 - *at0).as_secs_f64()),
            Some(100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64),
        ),
        _ => (None, None),
    };
    let mut report = ChatReport {
        server_cpu_percent,
        machine_busy_percent,
        rss_kib_before: rss_before,
        rss_kib_after: rss_after,
        send_window: shared.plan.duration,
        warmup: measure_from.min(shared.plan.duration),
        all_live_after,
        drain: drained,
        ..Default::default()
    };
    for task in tasks {
        match task.await.context("a client task panicked")? {
            Ok(side) => {
                for &(sent, latency) in &side.delivery {
                    if sent >= measure_from {
                        report.delivery.record(latency);
                    }
                }
                let mut slow = false;
                for &(sent, latency) in &side.ack {
                    if sent >= measure_from {
                        report.ack.record(latency);
                        if latency > Duration::from_secs(1) {
                            slow = true;
                            *report.slow_acks.entry(sent.as_secs() / 5 * 5).or_default() += 1;
                            if side.agent {
                                report.slow_acks_agents += 1;
                            } else {
                                report.slow_acks_customers += 1;
                            }
                        }
                    }
                }
                if slow {
                    report.slow_clients.push(format!(
                        "{} ({} conversations, {} resumes, {} replayed)",
                        side.tag, side.conversations, side.resumes, side.replayed
                    ));
                }
                report.reconnects += side.reconnects;
            }
            Err(e) => {
                report.failed_clients += 1;
                report.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let ledger = shared.ledger.lock().unwrap();
    report.sent = shared.sent.load(Ordering::Relaxed);
    report.conversations = shared.live.load(Ordering::Relaxed);
    report.acked = ledger.values().filter(|e| e.acked).count() as u64;
    report.delivered = ledger.values().filter(|e| e.delivered).count() as u64;
    report.lost = ledger.values().filter(|e| e.acked && !e.delivered).count() as u64;
    let tallies = std::mem::take(&mut *shared.tallies.lock().unwrap());
    report.duplicated = tallies.duplicated;
    report.seq_conflicts = tallies.seq_conflicts;
    report.replayed_twice = tallies.replayed_twice;
    report.reordered = tallies.reordered;
    report.resumes = tallies.resumes;
    report.closes = tallies.closes;
    report.errors = tallies.errors;
    Ok(report)
}

/// Reconnecting as a client would: with growing pauses, for up to 30 s.
struct Backoff {
    wait: Duration,
    give_up: Instant,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            wait: Duration::from_millis(100),
            give_up: Instant::now() + Duration::from_secs(30),
        }
    }

    /// Pauses before the next attempt, or gives up with the last error.
    async fn after(&mut self, error: anyhow::Error) -> anyhow::Result<()> {
        if Instant::now() >= self.give_up {
            return Err(error.context("reconnecting for 30 s"));
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Duration::from_secs(2));
        Ok(())
    }
}

async fn hello(socket: &mut Socket, frame: Value) -> anyhow::Result<Value> {
    socket.send(&frame).await?;
    socket.expect("welcome").await
}

/// A widget: bootstrap, hello, start, ask for a person, then chat.
async fn customer(
    shared: &Shared,
    i: usize,
    mut done: watch::Receiver<bool>,
) -> anyhow::Result<Side> {
    let local = Some(local_ip(i, shared.plan.spread));
    let target = &shared.target;
    let peer = shared.setup.protocol == Protocol::SocketIo;
    let token = if peer {
        String::new()
    } else {
        http::visitor_token(&http::client(local), target).await?
    };
    let path = format!("/ws?site={}", target.site_key);
    let connect = async || -> anyhow::Result<Socket> {
        if peer {
            let auth = json!({"role": "customer"});
            return Socket::open_sio(target.addr, &target.origin, &auth, local).await;
        }
        let mut socket = Socket::open(target.addr, &path, &target.origin, None, local).await?;
        hello(
            &mut socket,
            json!({"type": "hello", "visitor_token": token}),
        )
        .await?;
        Ok(socket)
    };
    let mut socket = connect().await?;
    socket.send(&json!({"type": "start"})).await?;
    let conversation = socket.expect("conversation").await?["id"]
        .as_str()
        .context("conversation without id")?
        .to_string();
    if peer {
        // The peer has no routing: hand the conversation to the agent
        // whose share it is, as Careline's agents claim theirs.
        let agents = shared.handoffs.len() as u64;
        let share = conversation.parse::<u64>().unwrap_or(i as u64) % agents;
        let _ = shared.handoffs[share as usize].send(conversation.clone());
    } else {
        socket
            .send(&json!({"type": "handoff", "conversation_id": conversation}))
            .await?;
    }

    let mut traffic = Traffic::new(format!("c{i}"));
    let mut live = false;
    let period = Duration::from_secs_f64(1.0 / shared.plan.rate);
    // Spread first sends over one period so that conversations do not tick together.
    let offset = period.mul_f64((i % 97) as f64 / 97.0);
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let gap_due = traffic.gaps.due();
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Incoming::Frame(frame) => {
                    if !live && frame["type"] == "conversation" && frame["id"] == conversation.as_str()
                        && frame["status"] == "live" {
                        live = true;
                        let live = shared.live.fetch_add(1, Ordering::Relaxed) + 1;
                        if live == shared.plan.customers as u64 {
                            *shared.all_live_at.lock().unwrap() = Some(shared.start.elapsed());
                        }
                    }
                    traffic.handle(shared, &mut socket, &frame, "agent").await?;
                }
                Incoming::Closed(code) => {
                    if *done.borrow() {
                        break;
                    }
                    traffic.closed(shared, code, socket.ended());
                    let mut backoff = Backoff::new();
                    socket = loop {
                        match connect().await {
                            Ok(socket) => break socket,
                            Err(e) => backoff.after(e).await?,
                        }
                    };
                    traffic.recover(&mut socket, std::slice::from_ref(&conversation)).await?;
                }
            },
            _ = ticker.tick(), if live && Instant::now() < shared.stop_sending => {
                traffic.send(shared, &mut socket, &conversation).await?;
            }
            _ = tokio::time::sleep_until(gap_due.unwrap_or(shared.stop_sending)), if gap_due.is_some() => {
                traffic.resume_overdue(shared, &mut socket).await?;
            }
            _ = done.changed() => break,
        }
    }
    socket.close().await;
    traffic.side.conversations = traffic.views.len();
    Ok(traffic.side)
}

/// An agent's console: online, watching the queue, claiming its share of
/// the waiting conversations and answering in every one it owns.
async fn agent(
    shared: &Shared,
    index: usize,
    cookie: &str,
    mut handoffs: tokio::sync::mpsc::UnboundedReceiver<String>,
    ready: tokio::sync::mpsc::Sender<()>,
    mut done: watch::Receiver<bool>,
) -> anyhow::Result<Side> {
    let agents = shared.plan.agent_cookies.len() as u64;
    let local = Some(local_ip(index, shared.plan.spread));
    let target = &shared.target;
    let addr = shared.setup.agent_addr.unwrap_or(target.addr);
    let connect = async || -> anyhow::Result<(Socket, String)> {
        if shared.setup.protocol == Protocol::SocketIo {
            // The peer answers `join` with a `conversation` frame naming
            // this id as the assignee, as Careline's claim does.
            let me = format!("a{index}");
            let auth = json!({"role": "agent", "id": me});
            let mut socket = Socket::open_sio(addr, &target.origin, &auth, local).await?;
            socket.pace_as_console();
            return Ok((socket, me));
        }
        let mut socket = Socket::open(addr, "/ws", &target.origin, Some(cookie), local).await?;
        socket.pace_as_console();
        let welcome = hello(&mut socket, json!({"type": "hello"})).await?;
        let me = welcome["user"]["id"]
            .as_str()
            .context("welcome without user id")?
            .to_string();
        socket
            .send(&json!({"type": "presence", "status": "online"}))
            .await?;
        socket.send(&json!({"type": "watch_queue"})).await?;
        Ok((socket, me))
    };
    let (mut socket, me) = connect().await?;
    let _ = ready.send(()).await;

    let mut traffic = Traffic::new(format!("a{index}"));
    let mut mine: Vec<String> = Vec::new();
    let mut claimed = HashSet::new();
    // Each conversation gets `rate` messages per second, but spread out:
    // the period is cut into SLOTS and conversation i sends in slot
    // i % SLOTS, and agents start at different phases. (Sending for every
    // conversation of every agent on one tick made synchronized bursts of
    // agents × conversations messages, a queueing tail of the generator's
    // making.)
    const SLOTS: u32 = 8;
    let period = Duration::from_secs_f64(1.0 / shared.plan.rate);
    let offset = period.mul_f64((index % 97) as f64 / 97.0);
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, period / SLOTS);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut slot: u32 = 0;
    loop {
        let gap_due = traffic.gaps.due();
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Incoming::Frame(frame) => {
                    match frame["type"].as_str() {
                        Some("queue") => {
                            for waiting in frame["waiting"].as_array().into_iter().flatten() {
                                let Some(id) = waiting["conversation_id"].as_str() else { continue };
                                let share = id.parse::<u64>().unwrap_or(0) % agents == index as u64;
                                if share && claimed.insert(id.to_string()) {
                                    let _ = socket.send(&json!({"type": "claim", "conversation_id": id})).await;
                                }
                            }
                        }
                        Some("conversation") => {
                            let id = frame["id"].as_str().unwrap_or_default().to_string();
                            let owned = frame["status"] == "live" && frame["assignee"]["id"] == me.as_str();
                            match (owned, mine.contains(&id)) {
                                (true, false) => {
                                    // Newly mine: load what was said so far, as the console does.
                                    traffic.resume(&mut socket, &id).await?;
                                    mine.push(id);
                                }
                                (false, true) => mine.retain(|m| *m != id),
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                    traffic.handle(shared, &mut socket, &frame, "customer").await?;
                }
                Incoming::Closed(code) => {
                    if *done.borrow() {
                        break;
                    }
                    traffic.closed(shared, code, socket.ended());
                    let mut backoff = Backoff::new();
                    socket = loop {
                        match connect().await {
                            Ok((socket, _)) => break socket,
                            Err(e) => backoff.after(e).await?,
                        }
                    };
                    traffic.recover(&mut socket, &mine).await?;
                }
            },
            _ = tokio::time::sleep_until(gap_due.unwrap_or(shared.stop_sending)), if gap_due.is_some() => {
                traffic.resume_overdue(shared, &mut socket).await?;
            }
            Some(id) = handoffs.recv() => {
                let _ = socket.send(&json!({"type": "join", "conversation_id": id})).await;
            }
            _ = ticker.tick(), if Instant::now() < shared.stop_sending => {
                let due: Vec<String> = mine
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i as u32 % SLOTS == slot)
                    .map(|(_, id)| id.clone())
                    .collect();
                slot = (slot + 1) % SLOTS;
                for id in due {
                    traffic.send(shared, &mut socket, &id).await?;
                }
            }
            _ = done.changed() => break,
        }
    }
    socket.close().await;
    traffic.side.conversations = mine.len();
    Ok(traffic.side)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{GAP_GRACE, Gaps, View};

    #[test]
    fn resume_point_is_the_highest_seq_without_a_gap_below() {
        let mut view = View::default();
        assert_eq!(view.gap_free(), 0);
        for seq in [1, 2, 4] {
            view.held.insert(seq, format!("m{seq}"));
        }
        assert_eq!(view.gap_free(), 2);
        assert!(view.has_hole(), "4 is held above the missing 3");
        view.held.insert(3, "m3".into());
        assert_eq!(view.gap_free(), 4);
        assert!(!view.has_hole(), "3 filled the hole");
    }

    fn view(seqs: &[i64]) -> View {
        let mut view = View::default();
        for &seq in seqs {
            view.held.insert(seq, format!("m{seq}"));
        }
        view
    }

    #[test]
    fn a_live_message_that_skips_ahead_waits_for_its_grace_before_a_resume() {
        let start = Instant::now();
        let mut gaps = Gaps::default();
        assert!(!gaps.after_live("c", &view(&[1, 2]), 2, false, start));
        assert_eq!(gaps.due(), None, "in order: nothing to wait for");

        assert!(gaps.after_live("c", &view(&[1, 2, 4]), 4, false, start));
        assert_eq!(gaps.due(), Some(start + GAP_GRACE));
        // A second message above the same hole does not move the deadline.
        let later = start + Duration::from_millis(100);
        assert!(gaps.after_live("c", &view(&[1, 2, 4, 5]), 5, false, later));
        assert_eq!(gaps.due(), Some(start + GAP_GRACE));
        assert!(gaps.overdue(later).is_empty(), "still within its grace");
        assert_eq!(gaps.overdue(start + GAP_GRACE), vec!["c".to_string()]);
        assert_eq!(gaps.due(), None, "handed to the resume");
    }

    #[test]
    fn a_hole_left_after_a_resume_waits_only_if_the_resume_got_somewhere() {
        let view = View {
            held: [1, 2, 3, 5].map(|seq| (seq, format!("m{seq}"))).into(),
        };
        // Resumed from 1, now whole up to 3: the hole at 4 gets its grace.
        assert!(view.hole_worth_a_grace(1));
        // Resumed from 3 and nothing came: not asked again and again.
        assert!(!view.hole_worth_a_grace(3));
        let whole = View {
            held: [1, 2].map(|seq| (seq, format!("m{seq}"))).into(),
        };
        assert!(!whole.hole_worth_a_grace(0));
    }

    #[test]
    fn a_gap_filled_live_is_never_resumed() {
        let start = Instant::now();
        let mut gaps = Gaps::default();
        assert!(gaps.after_live("c", &view(&[1, 3]), 3, false, start));
        assert!(!gaps.after_live("c", &view(&[1, 2, 3]), 2, false, start));
        assert_eq!(gaps.due(), None);
        assert!(gaps.overdue(start + GAP_GRACE * 2).is_empty());
    }

    #[test]
    fn order_during_a_resume_is_not_a_gap() {
        let start = Instant::now();
        let mut gaps = Gaps::default();
        assert!(!gaps.after_live("c", &view(&[1, 3]), 3, true, start));
        assert_eq!(gaps.due(), None, "the resume will send what is missing");
    }
}
