//! The `idle` scenario: as many open widget sockets as one instance may
//! hold, doing nothing but answering pings. Measures the server's memory
//! per socket and its CPU at rest.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::socket::{Incoming, Socket};
use crate::{Protocol, Target, http, local_ip, procfs};

#[derive(Debug, Clone)]
pub struct IdlePlan {
    pub sockets: usize,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// How long to hold every socket open once all are connected.
    pub hold: Duration,
    pub spread: usize,
    /// The server process, to read its memory and CPU from /proc.
    pub server_pid: Option<u32>,
    pub protocol: Protocol,
}

#[derive(Debug, Default)]
pub struct IdleReport {
    pub opened: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Still open at the end of the hold (the server closes none at rest).
    pub open_at_end: u64,
    pub connect_time: Duration,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_open: Option<u64>,
    /// Server CPU during the hold, in percent of one core.
    pub cpu_percent_at_rest: Option<f64>,
}

impl IdleReport {
    pub fn kib_per_socket(&self) -> Option<f64> {
        let (before, open) = (self.rss_kib_before?, self.rss_kib_open?);
        (self.opened > 0).then(|| (open.saturating_sub(before)) as f64 / self.opened as f64)
    }
}

impl std::fmt::Display for IdleReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sockets              {} opened in {:.1} s, {} failed, {} still open after the hold",
            self.opened,
            self.connect_time.as_secs_f64(),
            self.failed,
            self.open_at_end
        )?;
        if let Some(failure) = &self.first_failure {
            writeln!(f, "first failure        {failure}")?;
        }
        if let (Some(before), Some(open), Some(per)) = (
            self.rss_kib_before,
            self.rss_kib_open,
            self.kib_per_socket(),
        ) {
            writeln!(
                f,
                "server RSS           {before} KiB before, {open} KiB open: {per:.2} KiB per socket"
            )?;
        }
        if let Some(cpu) = self.cpu_percent_at_rest {
            writeln!(f, "server CPU at rest   {cpu:.1} % of one core")?;
        }
        Ok(())
    }
}

pub async fn run(target: Target, plan: IdlePlan) -> anyhow::Result<IdleReport> {
    let rss_before = plan.server_pid.map(procfs::rss_kib).transpose()?;
    let target = Arc::new(target);
    let gate = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let open = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let mut opening = Vec::with_capacity(plan.sockets);
    for i in 0..plan.sockets {
        let (target, gate, open, mut done) =
            (target.clone(), gate.clone(), open.clone(), done_rx.clone());
        let (spread, protocol) = (plan.spread, plan.protocol);
        opening.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("the gate stays open");
            let mut socket = visitor(&target, protocol, local_ip(i, spread)).await?;
            drop(permit);
            // Hold: read (so pings are answered) until told to stop.
            tokio::spawn(async move {
                open.fetch_add(1, Ordering::Relaxed);
                loop {
                    tokio::select! {
                        incoming = socket.recv() => if let Incoming::Closed(_) = incoming { break },
                        _ = done.changed() => { socket.close().await; break }
                    }
                }
                open.fetch_sub(1, Ordering::Relaxed);
            });
            anyhow::Ok(())
        }));
    }
    let mut report = IdleReport {
        rss_kib_before: rss_before,
        ..Default::default()
    };
    for task in opening {
        match task.await.context("a connecting task panicked")? {
            Ok(()) => report.opened += 1,
            Err(e) => {
                report.failed += 1;
                report.first_failure.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    report.connect_time = started.elapsed();

    // Let the server settle, then measure memory and CPU over the hold.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(pid) = plan.server_pid {
        report.rss_kib_open = Some(procfs::rss_kib(pid)?);
        let ticks = procfs::cpu_ticks(pid)?;
        let hold_started = Instant::now();
        tokio::time::sleep(plan.hold).await;
        let used = procfs::cpu_ticks(pid)? - ticks;
        // Linux reports CPU time in 1/100 s ticks.
        report.cpu_percent_at_rest = Some(used as f64 / hold_started.elapsed().as_secs_f64());
    } else {
        tokio::time::sleep(plan.hold).await;
    }
    report.open_at_end = open.load(Ordering::Relaxed);
    let _ = done_tx.send(true);
    Ok(report)
}

async fn visitor(
    target: &Target,
    protocol: Protocol,
    local: std::net::IpAddr,
) -> anyhow::Result<Socket> {
    if protocol == Protocol::SocketIo {
        // The peer's widget: a Socket.IO connect, nothing before it.
        let auth = json!({"role": "customer"});
        return Socket::open_sio(target.addr, &target.origin, &auth, Some(local)).await;
    }
    let token = http::visitor_token(&http::client(Some(local)), target).await?;
    let path = format!("/ws?site={}", target.site_key);
    let mut socket = Socket::open(target.addr, &path, &target.origin, None, Some(local)).await?;
    socket
        .send(&json!({"type": "hello", "visitor_token": token}))
        .await?;
    socket.expect("welcome").await?;
    Ok(socket)
}
