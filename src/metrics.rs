//! Counters and histograms for `/metrics` (Prometheus text format).
//! Careline's own figures of the chat (sockets, messages, the bus, the bot,
//! group commits) are a few atomics on the hot path, printed by hand under
//! the names they have always had. Around them, what any service reports
//! (HTTP requests and their latency, the process's CPU, memory and open
//! files, the database pool) goes through the `metrics` crate and its
//! Prometheus exporter ([`exporter`]), rendered after them.

use std::fmt::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The process's recorder for the `metrics` crate, installed on first use.
/// If another one was installed first (a test harness), this one still
/// renders, with nothing recorded.
pub fn exporter() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        metrics::describe_counter!(
            "careline_http_requests_total",
            "HTTP requests answered, by method, matched route and status"
        );
        metrics::describe_histogram!(
            "careline_http_request_duration_seconds",
            "Time to answer an HTTP request (to the start of the response), by method and route"
        );
        metrics::describe_gauge!("careline_db_pool_connections", "Database connections open");
        metrics::describe_gauge!("careline_db_pool_idle", "Database connections idle");
        metrics::describe_gauge!("careline_db_pool_max", "Database connections allowed");
        metrics_process::Collector::default().describe();
        handle
    })
}

/// One answered HTTP request.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    metrics::counter!(
        "careline_http_requests_total",
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "careline_http_request_duration_seconds",
        "method" => method.to_owned(),
        "route" => route.to_owned()
    )
    .record(elapsed.as_secs_f64());
}

/// What the exporter renders now: the process and the database pool read
/// at this moment, then every HTTP figure so far.
pub fn render_exported(pool: crate::store::PoolStats) -> String {
    let handle = exporter();
    metrics_process::Collector::default().collect();
    metrics::gauge!("careline_db_pool_connections").set(f64::from(pool.open));
    metrics::gauge!("careline_db_pool_idle").set(pool.idle as f64);
    metrics::gauge!("careline_db_pool_max").set(f64::from(pool.max));
    handle.render()
}

/// Upper bounds (seconds) shared by the latency histograms.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (integer atomics; printed as seconds).
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {total}");
    }
}

#[derive(Default)]
pub struct Metrics {
    pub messages_in: AtomicU64,
    /// Agents' messages written without reading their conversation first,
    /// and those that read it first (see `Chat::send_as_owner`).
    pub agent_writes_direct: AtomicU64,
    pub agent_writes_read_first: AtomicU64,
    pub frames_out: AtomicU64,
    pub publish_latency: Histogram,
    pub bot_latency: Histogram,
    pub bot_failures: AtomicU64,
}

/// Values read at scrape time from their owners.
pub struct Gauges {
    pub sockets_open: u64,
    pub slow_socket_closes: u64,
    pub bus_reconnects: u64,
    pub bus_connected: bool,
    pub outbox_pending: i64,
    /// Group commit (PostgreSQL), and the messages waiting for it.
    pub append_batches: Option<crate::store::BatchStats>,
    pub append_queued: usize,
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

impl Metrics {
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        gauge(
            &mut out,
            "careline_sockets_open",
            "Open WebSocket connections on this instance.",
            gauges.sockets_open as i64,
        );
        counter(
            &mut out,
            "careline_messages_in_total",
            "Chat messages stored from this instance's sockets.",
            self.messages_in.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "careline_agent_writes_direct_total",
            "Agents' messages written without reading their conversation first.",
            self.agent_writes_direct.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "careline_agent_writes_read_first_total",
            "Agents' messages that read their conversation first: not followed by the console, with a file, or refused by the direct write's conditions (a claim, a conflict, an away customer).",
            self.agent_writes_read_first.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "careline_frames_out_total",
            "Frames handed to this instance's sockets by the bus.",
            self.frames_out.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "careline_slow_socket_closes_total",
            "Sockets closed (4000) because they could not keep up.",
            gauges.slow_socket_closes,
        );
        self.publish_latency.render(
            &mut out,
            "careline_delivery_publish_seconds",
            "From a message's commit to its publication on the bus.",
        );
        gauge(
            &mut out,
            "careline_bus_connected",
            "1 while the bus is connected.",
            i64::from(gauges.bus_connected),
        );
        counter(
            &mut out,
            "careline_bus_reconnects_total",
            "Times the bus connection was re-established.",
            gauges.bus_reconnects,
        );
        self.bot_latency.render(
            &mut out,
            "careline_bot_seconds",
            "Time the bot took to answer.",
        );
        counter(
            &mut out,
            "careline_bot_failures_total",
            "Bot turns that failed or timed out (handed to a person).",
            self.bot_failures.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "careline_email_outbox_pending",
            "Emails waiting in the outbox.",
            gauges.outbox_pending,
        );
        if let Some(stats) = gauges.append_batches {
            counter(
                &mut out,
                "careline_append_batches_total",
                "Group commits of chat messages (one statement each).",
                stats.batches,
            );
            counter(
                &mut out,
                "careline_append_batched_messages_total",
                "Chat messages stored by group commits.",
                stats.messages,
            );
            counter(
                &mut out,
                "careline_append_batch_failures_total",
                "Group commits that failed as a whole (their messages then written one by one).",
                stats.failures,
            );
            gauge(
                &mut out,
                "careline_append_queued",
                "Chat messages waiting for a group commit.",
                gauges.append_queued as i64,
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_into_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(800));
        h.observe(Duration::from_millis(30));
        let mut out = String::new();
        h.render(&mut out, "x", "test");
        assert!(out.contains("x_bucket{le=\"0.001\"} 1"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.05\"} 2"));
        assert!(out.contains("x_bucket{le=\"+Inf\"} 2"));
        assert!(out.contains("x_count 2"));
    }
}
