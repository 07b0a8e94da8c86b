//! The `storm` scenario: many widget sockets, each in a conversation, all
//! dropped at the same instant (as when a load balancer or a network blip
//! cuts them) and all reconnecting at once, each with `hello` and `resume`
//! from the last seq it holds. Measures the time until every one is back
//! and resumed, each one's reconnect time, the errors on the way, and the
//! server's CPU and peak memory during the storm.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::report::Latency;
use crate::socket::{Incoming, Socket};
use crate::{Target, http, local_ip, procfs};

#[derive(Debug, Clone)]
pub struct StormPlan {
    pub sockets: usize,
    /// Connections being opened at once while setting up (the storm
    /// itself has no such limit).
    pub concurrency: usize,
    /// A client still not resumed after this long counts as failed.
    pub timeout: Duration,
    pub spread: usize,
    pub server_pid: Option<u32>,
}

#[derive(Debug, Default)]
pub struct StormReport {
    pub opened: u64,
    pub setup_failed: u64,
    pub setup_time: Duration,
    /// Back and resumed after the drop.
    pub resumed: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Attempts beyond the first (refused or broken reconnects).
    pub retries: u64,
    pub errors: BTreeMap<String, u64>,
    /// From the drop until the last client resumed.
    pub all_back: Option<Duration>,
    /// Each client's drop → `resumed`.
    pub reconnect: Latency,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_peak: Option<u64>,
    /// Server CPU from the drop until all were back, in percent of a core.
    pub cpu_percent: Option<f64>,
}

impl std::fmt::Display for StormReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "set up               {} sockets in conversations in {:.1} s, {} failed",
            self.opened,
            self.setup_time.as_secs_f64(),
            self.setup_failed
        )?;
        match self.all_back {
            Some(all) => writeln!(
                f,
                "storm                all {} back and resumed {:.2} s after the drop",
                self.resumed,
                all.as_secs_f64()
            )?,
            None => writeln!(
                f,
                "storm                {} back and resumed, {} not within the timeout",
                self.resumed, self.failed
            )?,
        }
        writeln!(f, "drop → resumed       {}", self.reconnect)?;
        writeln!(
            f,
            "retries {}, errors {:?}, failed {}",
            self.retries, self.errors, self.failed
        )?;
        if let Some(failure) = &self.first_failure {
            writeln!(f, "first failure        {failure}")?;
        }
        if let (Some(before), Some(peak)) = (self.rss_kib_before, self.rss_kib_peak) {
            writeln!(
                f,
                "server RSS           {before} KiB before the drop, peak {peak} KiB during the storm"
            )?;
        }
        if let Some(cpu) = self.cpu_percent {
            writeln!(
                f,
                "server CPU           {cpu:.0} % of one core during the storm"
            )?;
        }
        Ok(())
    }
}

impl StormReport {
    pub fn to_json(&self) -> Value {
        json!({
            "opened": self.opened,
            "setup_failed": self.setup_failed,
            "setup_seconds": self.setup_time.as_secs_f64(),
            "resumed": self.resumed,
            "failed": self.failed,
            "retries": self.retries,
            "errors": self.errors,
            "all_back_seconds": self.all_back.map(|d| d.as_secs_f64()),
            "reconnect_ms": self.reconnect.to_json(),
            "rss_kib_before": self.rss_kib_before,
            "rss_kib_peak": self.rss_kib_peak,
            "cpu_percent": self.cpu_percent,
        })
    }
}

/// A widget in a conversation: its token, socket, conversation and the
/// highest seq it holds.
struct Widget {
    token: String,
    socket: Socket,
    conversation: String,
    held: i64,
}

struct Shared {
    target: Target,
    path: String,
    errors: Mutex<BTreeMap<String, u64>>,
    retries: AtomicU64,
    back: AtomicU64,
}

impl Shared {
    fn count_error(&self, frame: &Value) {
        let code = frame["code"].as_str().unwrap_or("?").to_string();
        *self.errors.lock().unwrap().entry(code).or_default() += 1;
    }

    async fn hello(&self, token: &str, local: std::net::IpAddr) -> anyhow::Result<Socket> {
        let mut socket = Socket::open(
            self.target.addr,
            &self.path,
            &self.target.origin,
            None,
            Some(local),
        )
        .await?;
        socket
            .send(&json!({"type": "hello", "visitor_token": token}))
            .await?;
        socket.expect("welcome").await?;
        Ok(socket)
    }
}

/// Keeps the highest seq held in `conversation`.
fn track(conversation: &str, held: &mut i64, frame: &Value) {
    if frame["type"] == "message" && frame["conversation_id"] == conversation {
        *held = (*held).max(frame["seq"].as_i64().unwrap_or(0));
    }
}

async fn setup(shared: &Shared, local: std::net::IpAddr) -> anyhow::Result<Widget> {
    let token = http::visitor_token(&http::client(Some(local)), &shared.target).await?;
    let mut socket = shared.hello(&token, local).await?;
    socket.send(&json!({"type": "start"})).await?;
    let conversation = socket.expect("conversation").await?["id"]
        .as_str()
        .context("conversation without id")?
        .to_string();
    Ok(Widget {
        token,
        socket,
        conversation,
        held: 0,
    })
}

/// Holds the socket until the drop, then reconnects and resumes; returns
/// the time from the drop until `resumed`.
async fn ride(
    shared: &Shared,
    widget: Widget,
    local: std::net::IpAddr,
    mut drop_rx: watch::Receiver<Option<Instant>>,
    timeout: Duration,
) -> anyhow::Result<(Duration, Socket)> {
    let Widget {
        token,
        mut socket,
        conversation,
        mut held,
    } = widget;
    let dropped_at = loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Incoming::Frame(frame) => track(&conversation, &mut held, &frame),
                Incoming::Closed(code) => anyhow::bail!("closed ({code:?}) before the storm"),
            },
            changed = drop_rx.changed() => {
                changed.context("the storm was called off")?;
                if let Some(at) = *drop_rx.borrow() {
                    break at;
                }
            }
        }
    };
    // Cut without a close handshake, as a network failure would.
    drop(socket);
    let give_up = dropped_at + timeout;
    let mut wait = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut socket = shared.hello(&token, local).await?;
            socket
                .send(&json!({"type": "resume", "conversation_id": conversation,
                              "after_seq": held}))
                .await?;
            loop {
                match socket.recv().await {
                    Incoming::Frame(frame) if frame["type"] == "resumed" => return Ok(socket),
                    Incoming::Frame(frame) if frame["type"] == "error" => {
                        shared.count_error(&frame);
                        anyhow::bail!("error while resuming: {frame}");
                    }
                    Incoming::Frame(frame) => track(&conversation, &mut held, &frame),
                    Incoming::Closed(code) => anyhow::bail!("closed ({code:?}) while resuming"),
                }
            }
        };
        match tokio::time::timeout_at(give_up, attempt).await {
            Ok(Ok(socket)) => {
                shared.back.fetch_add(1, Ordering::Relaxed);
                return Ok((dropped_at.elapsed(), socket));
            }
            Ok(Err(e)) if Instant::now() + wait < give_up => {
                let _ = e;
                shared.retries.fetch_add(1, Ordering::Relaxed);
                // Back off with jitter, as the widget does.
                let jitter = wait.mul_f64(fastrand_unit(&conversation));
                tokio::time::sleep(wait + jitter).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Ok(Err(e)) => return Err(e.context("reconnecting")),
            Err(_) => anyhow::bail!("not resumed within {} s", timeout.as_secs()),
        }
    }
}

/// A number in [0, 1) that differs between clients and attempts, without
/// a random number generator crate.
fn fastrand_unit(seed: &str) -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let hash = RandomState::new().hash_one(seed);
    (hash % 1000) as f64 / 1000.0
}

pub async fn run(target: Target, plan: StormPlan) -> anyhow::Result<StormReport> {
    let shared = Arc::new(Shared {
        path: format!("/ws?site={}", target.site_key),
        target,
        errors: Mutex::new(BTreeMap::new()),
        retries: AtomicU64::new(0),
        back: AtomicU64::new(0),
    });
    let gate = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let (drop_tx, drop_rx) = watch::channel(None);
    let (done_tx, done_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.sockets);
    for i in 0..plan.sockets {
        let (shared, gate, ready, drop_rx, mut done) = (
            shared.clone(),
            gate.clone(),
            ready_tx.clone(),
            drop_rx.clone(),
            done_rx.clone(),
        );
        let local = local_ip(i, plan.spread);
        let timeout = plan.timeout;
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("the gate stays open");
            let widget = match setup(&shared, local).await {
                Ok(widget) => widget,
                Err(e) => {
                    let message = format!("{e:#}");
                    let _ = ready.send(Err(e)).await;
                    return Err(anyhow::anyhow!("set up: {message}"));
                }
            };
            drop(permit);
            let _ = ready.send(Ok(())).await;
            drop(ready);
            let (took, mut socket) = ride(&shared, widget, local, drop_rx, timeout).await?;
            // Stay connected until the end, answering pings.
            loop {
                tokio::select! {
                    incoming = socket.recv() => if let Incoming::Closed(_) = incoming { break },
                    _ = done.changed() => { socket.close().await; break }
                }
            }
            anyhow::Ok(took)
        }));
    }
    drop(ready_tx);
    let mut report = StormReport::default();
    while let Some(result) = ready_rx.recv().await {
        match result {
            Ok(()) => report.opened += 1,
            Err(e) => {
                report.setup_failed += 1;
                report.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    report.setup_time = started.elapsed();

    // Settle (bot greetings, pings), then cut every socket at once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = plan.server_pid;
    report.rss_kib_before = pid.and_then(|p| procfs::rss_kib(p).ok());
    let ticks_before = pid.and_then(|p| procfs::cpu_ticks(p).ok());
    let dropped_at = Instant::now();
    let _ = drop_tx.send(Some(dropped_at));
    let mut peak = report.rss_kib_before;
    let deadline = dropped_at + plan.timeout + Duration::from_secs(1);
    let mut last_back = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(rss) = pid.and_then(|p| procfs::rss_kib(p).ok()) {
            peak = peak.max(Some(rss));
        }
        let back = shared.back.load(Ordering::Relaxed);
        if back >= report.opened {
            last_back = Some(dropped_at.elapsed());
            break;
        }
    }
    let storm = dropped_at.elapsed();
    if let (Some(p), Some(before)) = (pid, ticks_before)
        && let Ok(after) = procfs::cpu_ticks(p)
    {
        // Linux reports CPU time in 1/100 s ticks.
        report.cpu_percent = Some((after - before) as f64 / storm.as_secs_f64());
    }
    report.rss_kib_peak = peak;
    let _ = done_tx.send(true);
    for task in tasks {
        match task.await.context("a client task panicked")? {
            Ok(took) => {
                report.resumed += 1;
                report.reconnect.record(took);
            }
            Err(e) if e.to_string().starts_with("set up:") => {}
            Err(e) => {
                report.failed += 1;
                report.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    if report.failed == 0 && report.resumed == report.opened {
        // The last client's reconnect time is when all were back.
        report.all_back =
            last_back.map(|_| Duration::from_micros((report.reconnect.max_ms() * 1000.0) as u64));
    }
    report.retries = shared.retries.load(Ordering::Relaxed);
    report.errors = std::mem::take(&mut *shared.errors.lock().unwrap());
    Ok(report)
}
