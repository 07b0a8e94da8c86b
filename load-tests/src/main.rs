//! `careline-load`: the command line of the load generator. Scenarios and
//! how to run them: `load-tests/README.md`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use careline_load::chat::{self, ChatPlan};
use careline_load::idle::{self, IdlePlan};
use careline_load::storm::{self, StormPlan};
use careline_load::{Protocol, Setup, Target, http, local_ip};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Load generator for Careline (loopback only)")]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args)]
struct TargetArgs {
    /// Careline (or nginx in front of it), on a loopback address.
    #[arg(long, default_value = "127.0.0.1:8080", global = true)]
    addr: SocketAddr,
    /// Origin the widgets and consoles send; defaults to http://<addr>.
    #[arg(long, global = true)]
    origin: Option<String>,
    /// The site's key (`careline seed` prints it).
    #[arg(long, env = "CARELINE_SITE_KEY", global = true, default_value = "")]
    site_key: String,
    /// Agents log in and connect here (another instance, so that every
    /// message crosses the bus); defaults to --addr.
    #[arg(long, global = true)]
    agent_addr: Option<SocketAddr>,
    /// The server's process ids (comma separated, one per instance), to
    /// read their memory and CPU from /proc.
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Which server: Careline, or the Socket.IO peer in load-tests/peer.
    #[arg(long, value_enum, default_value_t = Server::Careline, global = true)]
    server: Server,
    /// Also write the figures as one JSON object to this file.
    #[arg(long, global = true)]
    json: Option<std::path::PathBuf>,
    /// Client source addresses 127.0.0.2 … 127.0.0.(1+N).
    #[arg(long, default_value_t = 50, global = true)]
    spread: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Server {
    Careline,
    Peer,
}

#[derive(Subcommand)]
enum Scenario {
    /// Customers and agents exchanging messages at a steady rate.
    Chat {
        #[arg(long, default_value_t = 200)]
        customers: usize,
        /// Agents load-agent-1@load.test … (created by `careline seed --agents`).
        #[arg(long, default_value_t = 20)]
        agents: usize,
        #[arg(long, env = "LOAD_AGENT_PASSWORD", hide_env_values = true)]
        agent_password: String,
        /// Messages per second each side sends in each conversation.
        #[arg(long, default_value_t = 0.5)]
        rate: f64,
        /// From the first connection until sending stops.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// The first seconds (arrivals, assignment) are not measured.
        #[arg(long, default_value_t = 0)]
        warmup_seconds: u64,
        /// Measure only messages sent once every conversation is live (the
        /// steady state, without the arrivals and assignments).
        #[arg(long)]
        steady: bool,
        #[arg(long, default_value_t = 100)]
        wave: usize,
        #[arg(long, default_value_t = 250)]
        wave_every_ms: u64,
    },
    /// Idle widget sockets: memory per socket and CPU at rest.
    Idle {
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        hold_seconds: u64,
    },
    /// Widget sockets in conversations, all cut at once and reconnecting
    /// with `resume` at once (Careline only).
    Storm {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// Connections opened at once while setting up.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// A client not back and resumed after this long has failed.
        #[arg(long, default_value_t = 60)]
        timeout_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let args = cli.target;
    if !args.addr.ip().is_loopback() {
        bail!(
            "--addr {} is not a loopback address: load is only ever sent to this machine",
            args.addr
        );
    }
    let protocol = match args.server {
        Server::Careline => Protocol::Careline,
        Server::Peer => Protocol::SocketIo,
    };
    if let Some(agent_addr) = args.agent_addr
        && !agent_addr.ip().is_loopback()
    {
        bail!("--agent-addr {agent_addr} is not a loopback address");
    }
    if args.site_key.is_empty() && protocol == Protocol::Careline {
        bail!("--site-key is missing: `careline seed` prints it");
    }
    let setup = Setup {
        agent_addr: args.agent_addr,
        protocol,
        server_pids: args.server_pid.clone(),
        warmup: Duration::ZERO,
        steady: false,
    };
    let server = match protocol {
        Protocol::Careline => "careline",
        Protocol::SocketIo => "peer",
    };
    let target = Target {
        origin: args
            .origin
            .unwrap_or_else(|| format!("http://{}", args.addr)),
        addr: args.addr,
        site_key: args.site_key,
    };
    match cli.scenario {
        Scenario::Chat {
            customers,
            agents,
            agent_password,
            rate,
            seconds,
            warmup_seconds,
            steady,
            wave,
            wave_every_ms,
        } => {
            // Routing and claims leave some agents with twice the average
            // share; the generator paces a console at 24 frames/s (the
            // server allows 30).
            let per_agent = customers.div_ceil(agents.max(1)) as f64 * rate;
            if per_agent * 2.0 > 24.0 {
                eprintln!(
                    "warning: each agent would send {per_agent:.1} frames/s on average, and some \
                     twice that, above a console's pace of 24/s: add agents or lower --rate"
                );
            }
            let mut agent_cookies = Vec::with_capacity(agents);
            let mut login = target.clone();
            login.addr = args.agent_addr.unwrap_or(target.addr);
            for i in 1..=agents {
                if protocol == Protocol::SocketIo {
                    // The peer has no accounts.
                    agent_cookies.push(String::new());
                    continue;
                }
                let email = format!("load-agent-{i}@load.test");
                // One source address per agent: logins are rate limited per address.
                let cookie =
                    http::agent_cookie(&login, &email, &agent_password, Some(local_ip(i, 250)))
                        .await
                        .with_context(|| {
                            format!(
                                "logging in {email} (did `careline seed --agents {agents}` run?)"
                            )
                        })?;
                agent_cookies.push(cookie);
            }
            let plan = ChatPlan {
                customers,
                agent_cookies,
                rate,
                duration: Duration::from_secs(seconds),
                wave,
                wave_every: Duration::from_millis(wave_every_ms),
                grace: Duration::from_secs(30),
                spread: args.spread,
                server_pid: None,
            };
            println!(
                "chat on {server}: {customers} customers, {agents} agents, {rate} msg/s per side per conversation, {seconds} s"
            );
            if warmup_seconds >= seconds {
                bail!("--warmup-seconds must be shorter than --seconds");
            }
            let setup = Setup {
                warmup: Duration::from_secs(warmup_seconds),
                steady,
                ..setup
            };
            let report = chat::run_with(target, plan, setup).await?;
            print!("{report}");
            if let Some(path) = &args.json {
                let mut figures = report.to_json();
                figures["server"] = server.into();
                figures["offered_per_second"] = (customers as f64 * 2.0 * rate).into();
                figures["customers"] = customers.into();
                figures["agents"] = agents.into();
                write_json(path, &figures)?;
            }
            Ok(
                if report.lost > 0 || report.duplicated > 0 || report.failed_clients > 0 {
                    eprintln!("FAILED: lost, duplicated or failed clients above");
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        Scenario::Storm {
            sockets,
            concurrency,
            timeout_seconds,
        } => {
            if protocol != Protocol::Careline {
                bail!("storm runs against Careline only");
            }
            let (soft, _) = careline_load::procfs::open_files_limit("self")?;
            if sockets as u64 + 100 > soft {
                bail!(
                    "{sockets} sockets need more open files than this process may have ({soft}): run `ulimit -n $(ulimit -Hn)` first"
                );
            }
            let plan = StormPlan {
                sockets,
                concurrency,
                timeout: Duration::from_secs(timeout_seconds),
                spread: args.spread,
                server_pid: args.server_pid.first().copied(),
            };
            println!("storm: {sockets} widget sockets in conversations, cut at once");
            let report = storm::run(target, plan).await?;
            print!("{report}");
            if let Some(path) = &args.json {
                let mut figures = report.to_json();
                figures["sockets"] = sockets.into();
                write_json(path, &figures)?;
            }
            Ok(
                if report.failed > 0 || report.setup_failed > 0 || report.all_back.is_none() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        Scenario::Idle {
            sockets,
            concurrency,
            hold_seconds,
        } => {
            let (soft, _) = careline_load::procfs::open_files_limit("self")?;
            if sockets as u64 + 100 > soft {
                bail!(
                    "{sockets} sockets need more open files than this process may have ({soft}): run `ulimit -n $(ulimit -Hn)` first"
                );
            }
            let plan = IdlePlan {
                sockets,
                concurrency,
                hold: Duration::from_secs(hold_seconds),
                spread: args.spread,
                server_pid: args.server_pid.first().copied(),
                protocol,
            };
            println!("idle on {server}: {sockets} widget sockets, held {hold_seconds} s");
            let report = idle::run(target, plan).await?;
            print!("{report}");
            if let Some(path) = &args.json {
                let figures = json!({
                    "server": server,
                    "sockets": sockets,
                    "opened": report.opened,
                    "failed": report.failed,
                    "open_at_end": report.open_at_end,
                    "connect_seconds": report.connect_time.as_secs_f64(),
                    "rss_kib_before": report.rss_kib_before,
                    "rss_kib_open": report.rss_kib_open,
                    "kib_per_socket": report.kib_per_socket(),
                    "cpu_percent_at_rest": report.cpu_percent_at_rest,
                });
                write_json(path, &figures)?;
            }
            Ok(if report.failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn write_json(path: &std::path::Path, figures: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::write(path, format!("{figures}\n"))
        .with_context(|| format!("writing {}", path.display()))
}
