//! The `chat` scenario: customers on widgets and agents on consoles, each
//! conversation a customer and an agent exchanging messages at a set rate.
//!
//! Every message carries its send time, so the other side measures
//! end-to-end latency (send → `message`). A ledger keyed by the server's
//! message id finds lost messages (acked, never delivered to the other
//! side); each client remembers the ids it was shown, to count duplicates
//! (the same message shown to the same person twice).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};

use crate::report::Latency;
use crate::socket::{Incoming, Socket};
use crate::{Target, http, local_ip, procfs};

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
    /// How long to wait for the last deliveries after sending stops.
    pub grace: Duration,
    /// Client source addresses to spread over (127.0.0.2 …).
    pub spread: usize,
    /// The server process, to read its memory (single node only).
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
    pub reconnects: u64,
    pub error_frames: u64,
    pub failed_clients: u64,
    pub first_failure: Option<String>,
    pub send_window: Duration,
    pub delivery: Latency,
    pub ack: Latency,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_after: Option<u64>,
}

impl ChatReport {
    pub fn delivered_per_second(&self) -> f64 {
        self.delivered as f64 / self.send_window.as_secs_f64().max(0.001)
    }
}

impl std::fmt::Display for ChatReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "conversations live   {}", self.conversations)?;
        writeln!(
            f,
            "messages             sent {}, acked {}, delivered {}, lost {}, duplicated {}",
            self.sent, self.acked, self.delivered, self.lost, self.duplicated
        )?;
        writeln!(
            f,
            "throughput           {:.0} delivered/s over {:.1} s",
            self.delivered_per_second(),
            self.send_window.as_secs_f64()
        )?;
        writeln!(f, "send → message       {}", self.delivery)?;
        writeln!(f, "send → ack           {}", self.ack)?;
        writeln!(
            f,
            "reconnects {}, error frames {}, failed clients {}",
            self.reconnects, self.error_frames, self.failed_clients
        )?;
        if let Some(failure) = &self.first_failure {
            writeln!(f, "first failure        {failure}")?;
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

/// What both sides share: the clock in message bodies and the ledger.
struct Shared {
    target: Target,
    plan: ChatPlan,
    start: Instant,
    stop_sending: Instant,
    end: Instant,
    ledger: Mutex<HashMap<String, Entry>>,
    sent: AtomicU64,
    duplicated: AtomicU64,
    live: AtomicU64,
}

#[derive(Default)]
struct Entry {
    acked: bool,
    delivered: bool,
}

impl Shared {
    fn body(&self) -> String {
        // Realistic size: a timestamp and a sentence.
        format!(
            "L {} Hello, I have a question about my order and its delivery.",
            self.start.elapsed().as_micros()
        )
    }

    fn sent_at(&self, body: &str) -> Option<Duration> {
        let micros: u64 = body.strip_prefix("L ")?.split(' ').next()?.parse().ok()?;
        Some(
            self.start
                .elapsed()
                .saturating_sub(Duration::from_micros(micros)),
        )
    }

    fn acked(&self, id: &str) {
        self.ledger
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .acked = true;
    }

    fn delivered(&self, id: &str) {
        self.ledger
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .delivered = true;
    }
}

/// One side's figures, merged at the end.
#[derive(Default)]
struct Side {
    delivery: Latency,
    ack: Latency,
    reconnects: u64,
    error_frames: u64,
}

/// Sends, acks and deliveries of one socket.
struct Traffic {
    pending: HashMap<String, Instant>,
    /// Message ids this client was shown (across reconnects).
    seen: HashSet<String>,
    next: u64,
    side: Side,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            pending: HashMap::new(),
            seen: HashSet::new(),
            next: 0,
            side: Side::default(),
        }
    }

    async fn send(
        &mut self,
        shared: &Shared,
        socket: &mut Socket,
        tag: &str,
        conversation: &str,
    ) -> anyhow::Result<()> {
        self.next += 1;
        let client_msg_id = format!("{tag}-{}", self.next);
        self.pending.insert(client_msg_id.clone(), Instant::now());
        shared.sent.fetch_add(1, Ordering::Relaxed);
        socket
            .send(&json!({"type": "send", "conversation_id": conversation,
                          "client_msg_id": client_msg_id, "body": shared.body()}))
            .await
    }

    /// Accounts for a frame; `from_other` is the sender kind that counts as
    /// a delivery to this side.
    fn observe(&mut self, shared: &Shared, frame: &Value, from_other: &str) {
        match frame["type"].as_str() {
            Some("ack") => {
                if let Some(sent) = frame["client_msg_id"]
                    .as_str()
                    .and_then(|c| self.pending.remove(c))
                {
                    self.side.ack.record(sent.elapsed());
                    if let Some(id) = frame["id"].as_str() {
                        shared.acked(id);
                    }
                }
            }
            Some("message") if frame["sender"]["kind"] == from_other => {
                if let (Some(body), Some(id)) = (frame["body"].as_str(), frame["id"].as_str())
                    && let Some(latency) = shared.sent_at(body)
                {
                    self.side.delivery.record(latency);
                    if self.seen.insert(id.to_string()) {
                        shared.delivered(id);
                    } else {
                        // The same person shown the same message twice.
                        shared.duplicated.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Some("error") => self.side.error_frames += 1,
            _ => {}
        }
    }
}

/// Runs the scenario: agents first, online; then customers in waves.
pub async fn run(target: Target, plan: ChatPlan) -> anyhow::Result<ChatReport> {
    if plan.agent_cookies.is_empty() {
        bail!("the chat scenario needs at least one agent");
    }
    if plan.rate.is_nan() || plan.rate <= 0.0 {
        bail!("--rate must be above 0");
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        target,
        start,
        stop_sending: start + plan.duration,
        end: start + plan.duration + plan.grace,
        plan,
        ledger: Mutex::new(HashMap::new()),
        sent: AtomicU64::new(0),
        duplicated: AtomicU64::new(0),
        live: AtomicU64::new(0),
    });
    let rss_before = shared
        .plan
        .server_pid
        .and_then(|pid| procfs::rss_kib(pid).ok());

    let agents = shared.plan.agent_cookies.len();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(agents);
    for (i, cookie) in shared.plan.agent_cookies.iter().enumerate() {
        let (shared, cookie, ready) = (shared.clone(), cookie.clone(), ready_tx.clone());
        tasks.push(tokio::spawn(async move {
            agent(&shared, i, &cookie, ready).await
        }));
    }
    drop(ready_tx);
    for _ in 0..agents {
        ready_rx
            .recv()
            .await
            .context("an agent failed to come online")?;
    }

    let mut waves = tokio::time::interval(shared.plan.wave_every);
    for first in (0..shared.plan.customers).step_by(shared.plan.wave.max(1)) {
        waves.tick().await;
        for i in first..(first + shared.plan.wave.max(1)).min(shared.plan.customers) {
            let shared = shared.clone();
            tasks.push(tokio::spawn(async move { customer(&shared, i).await }));
        }
    }

    // Memory with every socket open, just before sending stops.
    tokio::time::sleep_until(
        shared.stop_sending - Duration::from_millis(200).min(shared.plan.duration),
    )
    .await;
    let rss_after = shared
        .plan
        .server_pid
        .and_then(|pid| procfs::rss_kib(pid).ok());

    let mut report = ChatReport {
        rss_kib_before: rss_before,
        rss_kib_after: rss_after,
        ..Default::default()
    };
    for task in tasks {
        match task.await.context("a client task panicked")? {
            Ok(side) => {
                report.delivery.merge(&side.delivery);
                report.ack.merge(&side.ack);
                report.reconnects += side.reconnects;
                report.error_frames += side.error_frames;
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
    report.duplicated = shared.duplicated.load(Ordering::Relaxed);
    report.send_window = shared.plan.duration;
    Ok(report)
}

async fn hello(socket: &mut Socket, frame: Value) -> anyhow::Result<Value> {
    socket.send(&frame).await?;
    socket.expect("welcome").await
}

/// A widget: bootstrap, hello, start, ask for a person, then chat.
async fn customer(shared: &Shared, i: usize) -> anyhow::Result<Side> {
    let local = Some(local_ip(i, shared.plan.spread));
    let target = &shared.target;
    let token = http::visitor_token(&http::client(local), target).await?;
    let path = format!("/ws?site={}", target.site_key);
    let connect = async || -> anyhow::Result<Socket> {
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
    socket
        .send(&json!({"type": "handoff", "conversation_id": conversation}))
        .await?;

    let mut traffic = Traffic::new();
    let mut last_seq = 0;
    let mut live = false;
    let period = Duration::from_secs_f64(1.0 / shared.plan.rate);
    // Spread first sends over one period so that conversations do not tick together.
    let offset = period.mul_f64((i % 97) as f64 / 97.0);
    let mut ticker = tokio::time::interval_at(Instant::now() + offset, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let tag = format!("c{i}");
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Incoming::Frame(frame) => {
                    if frame["conversation_id"] == conversation.as_str() {
                        last_seq = last_seq.max(frame["seq"].as_i64().unwrap_or(0));
                    }
                    if frame["type"] == "conversation" && frame["id"] == conversation.as_str()
                        && frame["status"] == "live" && !live {
                        live = true;
                        shared.live.fetch_add(1, Ordering::Relaxed);
                    }
                    traffic.observe(shared, &frame, "agent");
                }
                Incoming::Closed => {
                    if Instant::now() >= shared.end {
                        break;
                    }
                    traffic.side.reconnects += 1;
                    socket = connect().await?;
                    socket.send(&json!({"type": "resume", "conversation_id": conversation, "after_seq": last_seq})).await?;
                }
            },
            _ = ticker.tick(), if live && Instant::now() < shared.stop_sending => {
                traffic.send(shared, &mut socket, &tag, &conversation).await?;
            }
            _ = tokio::time::sleep_until(shared.end) => break,
        }
    }
    socket.close().await;
    Ok(traffic.side)
}

/// An agent's console: online, watching the queue, claiming its share of
/// the waiting conversations and answering in every one it owns.
async fn agent(
    shared: &Shared,
    index: usize,
    cookie: &str,
    ready: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<Side> {
    let agents = shared.plan.agent_cookies.len() as u64;
    let local = Some(local_ip(index, shared.plan.spread));
    let target = &shared.target;
    let connect = async || -> anyhow::Result<(Socket, String)> {
        let mut socket =
            Socket::open(target.addr, "/ws", &target.origin, Some(cookie), local).await?;
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

    let mut traffic = Traffic::new();
    // Conversation id → last staff seq seen.
    let mut mine: HashMap<String, i64> = HashMap::new();
    let mut claimed = HashSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / shared.plan.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let tag = format!("a{index}");
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Incoming::Frame(frame) => {
                    match frame["type"].as_str() {
                        Some("queue") => {
                            for waiting in frame["waiting"].as_array().into_iter().flatten() {
                                let Some(id) = waiting["conversation_id"].as_str() else { continue };
                                let share = id.parse::<u64>().unwrap_or(0) % agents == index as u64;
                                if share && claimed.insert(id.to_string()) {
                                    socket.send(&json!({"type": "claim", "conversation_id": id})).await?;
                                }
                            }
                        }
                        Some("conversation") => {
                            let id = frame["id"].as_str().unwrap_or_default().to_string();
                            if frame["status"] == "live" && frame["assignee"]["id"] == me.as_str() {
                                mine.entry(id).or_insert(0);
                            } else {
                                mine.remove(&id);
                            }
                        }
                        Some("message") => {
                            if let (Some(id), Some(seq)) = (frame["conversation_id"].as_str(), frame["seq"].as_i64())
                                && let Some(last) = mine.get_mut(id)
                            {
                                *last = (*last).max(seq);
                            }
                        }
                        _ => {}
                    }
                    traffic.observe(shared, &frame, "customer");
                }
                Incoming::Closed => {
                    if Instant::now() >= shared.end {
                        break;
                    }
                    traffic.side.reconnects += 1;
                    socket = connect().await?.0;
                    for (id, last) in &mine {
                        socket.send(&json!({"type": "resume", "conversation_id": id, "after_seq": last})).await?;
                    }
                }
            },
            _ = ticker.tick(), if Instant::now() < shared.stop_sending => {
                let ids: Vec<String> = mine.keys().cloned().collect();
                for id in ids {
                    traffic.send(shared, &mut socket, &tag, &id).await?;
                }
            }
            _ = tokio::time::sleep_until(shared.end) => break,
        }
    }
    socket.close().await;
    Ok(traffic.side)
}
