//! The `careline` command: serve (the default), migrate, user and API
//! token management, and seeding.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use careline::App;
use careline::config::{Config, LogFormat};
use careline::domain::accounts;
use careline::domain::api_tokens::{self, Scope};
use careline::domain::password as passwords;
use careline::model::{Email, Role};
use careline::store::redact;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "careline",
    version,
    about = "Careline, the Customer Care Registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web application (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage personal API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Fill the database for load tests: `--agents N` creates agents
    /// load-agent-1@load.test … and `--tickets N` creates customers
    /// load-customer-1@load.test … with tickets, conversations, messages and
    /// timelines spread over `--days`, all sharing one password (read like
    /// `user create`'s). Prints what it made as `name=value` lines, the
    /// default site's key as `site_key=…`.
    Seed {
        #[arg(long, default_value_t = 0)]
        agents: u32,
        /// Tickets to create, assigned among the agents.
        #[arg(long, default_value_t = 0)]
        tickets: u32,
        /// Messages per ticket on average (threads vary from 1 to twice this).
        #[arg(long, default_value_t = 10)]
        messages_per_ticket: u32,
        /// Customers owning the tickets (default: one per 10 tickets).
        #[arg(long)]
        customers: Option<u32>,
        /// Tickets are opened over this many days before now.
        #[arg(long, default_value_t = 180)]
        days: u32,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from the terminal (hidden) or
    /// from the first line of standard input, never from the command line.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "agent")]
        role: String,
        /// Display name; defaults to the part of the email before the @.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a personal API token for an agent or admin, by the account
    /// page's rules, and print it: this once, as the page shows it (only
    /// its hash is kept). For scripts that set up an install (CI).
    Create {
        #[arg(long)]
        email: String,
        /// read, write or admin (admins only).
        #[arg(long, default_value = "read")]
        scope: String,
        /// What uses it, e.g. "CRM sync".
        #[arg(long)]
        name: String,
        /// Days until it expires (1 to 366).
        #[arg(long, default_value_t = 30)]
        days: i64,
    },
}

fn main() -> std::process::ExitCode {
    // One TLS stack (rustls with ring), installed before any connection.
    careline::install_tls();
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("careline: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config.log, config.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(run(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("careline: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // Logs go to stderr; stdout carries only what the operator must read.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().with_current_span(true).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            careline::open_store(&config, 1).await?;
            println!("migrations applied to {}", redact(&config.database_url));
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { email, role, name },
        } => {
            let role = Role::parse(&role).context("--role must be customer, agent or admin")?;
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
            let password = read_password()?;
            let store = careline::open_store(&config, 1).await?;
            let user = accounts::create_with_role(&store, &name, &email, &password, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} ({}) as {}", user.name, user.email, user.role);
            Ok(())
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    email,
                    scope,
                    name,
                    days,
                },
        } => {
            let scope = Scope::parse(&scope).context("--scope must be read, write or admin")?;
            let email = Email::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let store = careline::open_store(&config, 1).await?;
            let (owner, _) = store
                .user_with_hash(&email)
                .await?
                .with_context(|| format!("no account with the email {email}"))?;
            let token = api_tokens::issue(&store, &owner, &name, scope, days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{token}");
            Ok(())
        }
        Command::Seed {
            agents,
            tickets,
            messages_per_ticket,
            customers,
            days,
        } => {
            let customers = customers.unwrap_or(tickets.div_ceil(10));
            let store = careline::open_store(&config, 1).await?;
            let password = if agents > 0 || customers > 0 || tickets > 0 {
                read_password()?
            } else {
                String::new()
            };
            for i in 1..=agents {
                let email = format!("load-agent-{i}@load.test");
                let parsed = Email::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
                if store.user_with_hash(&parsed).await?.is_some() {
                    continue;
                }
                accounts::create_with_role(
                    &store,
                    &format!("Load agent {i}"),
                    &email,
                    &password,
                    Role::Agent,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{email}: {e}"))?;
            }
            println!("agents={agents}");
            if customers > 0 || tickets > 0 {
                passwords::check_new(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
                let hash = passwords::hash(&password)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let started = std::time::Instant::now();
                let seeded = store
                    .seed_tickets(customers, tickets, messages_per_ticket, days, &hash)
                    .await?;
                let seconds = started.elapsed().as_secs_f64();
                println!("customers={}", seeded.customers);
                if let Some(first) = &seeded.first_customer {
                    println!("first_customer={first}");
                }
                println!("tickets={}", seeded.tickets);
                println!("numbers={}-{}", seeded.first_number, seeded.last_number);
                println!("messages={}", seeded.messages);
                println!("events={}", seeded.events);
                println!("ratings={}", seeded.ratings);
                println!("seconds={seconds:.1}");
            }
            println!("site_key={}", store.default_site().await?.key);
            Ok(())
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(!password.is_empty(), "no password given on standard input");
    Ok(password)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {} (setting `bind`)", config.bind))?;
    let public_url = config.public_url.clone();
    let database = redact(&config.database_url);
    let app = App::build(config).await?;
    tracing::info!(%database, "storage ready");
    println!("Careline is running at {public_url}");
    if let Some(token) = &app.setup_token {
        println!("First start: create the admin account at {public_url}/setup?token={token}");
    }
    app.serve(listener, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
