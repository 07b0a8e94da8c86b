//! The `careline` command: serve (the default), migrate, and user management.

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use careline::App;
use careline::config::{Config, LogFormat};
use careline::domain::{Email, Role, accounts};
use careline::store::{Store, redact};
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
    /// Fill the database for load tests: `--agents N` creates agents
    /// load-agent-1@load.test … sharing one password (read like `user
    /// create`'s). Prints the default site's key as `site_key=…`.
    Seed {
        #[arg(long, default_value_t = 0)]
        agents: u32,
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

fn main() -> std::process::ExitCode {
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
            Store::open(&config.database_url, 1).await?;
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
            let store = Store::open(&config.database_url, 1).await?;
            let user = accounts::create_with_role(&store, &name, &email, &password, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} ({}) as {}", user.name, user.email, user.role);
            Ok(())
        }
        Command::Seed { agents } => {
            let store = Store::open(&config.database_url, 1).await?;
            let password = if agents > 0 {
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
