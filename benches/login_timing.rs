//! Login timing: can an attacker tell a registered email from an unknown one
//! by how long a wrong-password answer takes? Both paths run one argon2id
//! verification (a dummy hash for unknown emails), so the medians should
//! match within noise. Run with `cargo bench --bench login_timing`; results
//! go in docs/benchmarks.md and docs/security.md.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Database, TestApp};

const ROUNDS: usize = 60;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let app = TestApp::spawn_with(Database::Sqlite, |c| {
        c.auth_rate_limit_burst = 10_000;
    })
    .await;
    app.customer("Grace", "grace@example.com").await;
    let mut b = app.browser();
    b.get("/login").await;

    let mut attempt = async |email: &str| {
        let started = Instant::now();
        let page = b
            .submit(
                "/login",
                &[("email", email), ("password", "wrong password")],
            )
            .await;
        assert_eq!(page.status, 401, "a wrong password is refused");
        started.elapsed()
    };
    // Warm up both paths (connection, caches), then interleave so that any
    // drift in machine load falls on both equally.
    attempt("grace@example.com").await;
    attempt("nobody@example.com").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        known.push(attempt("grace@example.com").await);
        unknown.push(attempt("nobody@example.com").await);
    }
    known.sort();
    unknown.sort();
    let row = |name: &str, xs: &[Duration]| {
        println!(
            "{name:<28} median {:>7.1} ms   p10 {:>7.1} ms   p90 {:>7.1} ms",
            percentile(xs, 0.5).as_secs_f64() * 1e3,
            percentile(xs, 0.1).as_secs_f64() * 1e3,
            percentile(xs, 0.9).as_secs_f64() * 1e3,
        );
    };
    println!("login with a wrong password, {ROUNDS} rounds each, interleaved:");
    row("registered email", &known);
    row("unknown email", &unknown);
    let gap = percentile(&known, 0.5).as_secs_f64() - percentile(&unknown, 0.5).as_secs_f64();
    println!("median gap (registered - unknown): {:+.2} ms", gap * 1e3);
}
