//! Configuration: read once at start from an optional `careline.toml` and the
//! environment (environment wins), validated before anything else runs. A bad
//! value stops the start with a message that names the setting.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod mail;
mod validate;

pub use crate::egress::IpNet;
pub use mail::{MailTransport, SmtpConfig, SmtpTls};

/// The settings as written by the operator, before validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub bind: String,
    pub public_url: String,
    pub data_dir: String,
    pub database_url: String,
    pub database_max_connections: u32,
    pub redis_url: String,
    /// A PEM file of the CA (or CAs) that signs a `rediss://` server's
    /// certificate, trusted instead of the system's roots.
    pub redis_ca_file: String,
    pub secret_key: String,
    pub trusted_proxies: String,
    pub metrics_token: String,
    pub session_ttl_hours: u64,
    pub auth_rate_limit_per_minute: u64,
    pub auth_rate_limit_burst: u32,
    pub widget_new_visitors_per_minute: u32,
    pub ws_frames_per_second: u32,
    pub ws_frame_burst: u32,
    pub ws_outbound_queue: usize,
    pub ws_hello_timeout_ms: u64,
    pub ws_idle_timeout_ms: u64,
    pub bot_miss_limit: i64,
    /// Password hashes (19 MiB each) allowed to run at once.
    pub password_hashes_at_once: i64,
    pub bot_timeout_ms: u64,
    pub faq_threshold: f64,
    pub instance_name: String,
    pub sendgrid_api_key: String,
    pub sendgrid_url: String,
    pub mail_from: String,
    pub mail_from_name: String,
    pub mail_poll_ms: u64,
    pub mail_max_attempts: i64,
    pub mail_retry_ms: u64,
    /// Where customers' replies to Careline's emails go: its `+tag`
    /// variants identify the conversation. Empty: emails carry no
    /// reply address, and replies are matched by their threading headers.
    pub mail_reply_address: String,
    /// The secret path segment of the inbound email hooks
    /// (`/hooks/email/sendgrid/<secret>`); empty turns them off.
    pub mail_inbound_secret: String,
    /// How often the support mailbox (IMAP, set on the admin page) is read.
    pub mail_imap_poll_ms: u64,
    /// Longest one step with the mail server may take (connect, log in,
    /// fetch one email).
    pub mail_imap_timeout_ms: u64,
    /// A PEM file of the CA that signs the IMAP server's certificate,
    /// trusted instead of the system's roots.
    pub mail_imap_ca_file: String,
    /// `outbox`, `sendgrid` or `smtp`; empty: SendGrid when
    /// `sendgrid_api_key` is set, else the outbox.
    pub mail_transport: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none` (a relay on this machine only).
    pub smtp_tls: String,
    pub smtp_user: String,
    /// A secret: never printed or logged.
    pub smtp_password: String,
    /// A PEM file of the CA that signs the SMTP server's certificate,
    /// trusted instead of the system's roots.
    pub smtp_ca_file: String,
    /// Longest one SMTP delivery may take (connecting to the last answer).
    pub smtp_timeout_ms: u64,
    pub attachment_max_bytes: u64,
    pub blob_store: String,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_prefix: String,
    /// Lets admin-given URLs (Watson, webhooks) be `http://`, not only
    /// `https://`.
    pub egress_allow_http: bool,
    /// Comma-separated hosts, addresses and ranges that admin-given URLs
    /// may reach although they are internal (`watson.internal:8443`,
    /// `10.20.0.0/16`).
    pub egress_allowed_hosts: String,
    /// How often each instance looks for webhook events and deliveries.
    pub webhook_poll_ms: u64,
    /// The first retry of a failed webhook delivery; later ones wait
    /// 3, 12, 60, 180, 360 and 720 times as long.
    pub webhook_retry_ms: u64,
    /// Longest one webhook delivery may take (connecting to the answer).
    pub webhook_timeout_ms: u64,
    /// Failed deliveries in a row after which an endpoint is turned off
    /// and the admins emailed.
    pub webhook_disable_after: i64,
    pub log: String,
    pub log_format: String,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            bind: "127.0.0.1:8080".into(),
            public_url: String::new(),
            data_dir: "./data".into(),
            database_url: String::new(),
            database_max_connections: 10,
            redis_url: String::new(),
            redis_ca_file: String::new(),
            secret_key: String::new(),
            trusted_proxies: String::new(),
            metrics_token: String::new(),
            session_ttl_hours: 24 * 14,
            auth_rate_limit_per_minute: 10,
            auth_rate_limit_burst: 10,
            widget_new_visitors_per_minute: 60,
            ws_frames_per_second: 10,
            ws_frame_burst: 30,
            ws_outbound_queue: 256,
            ws_hello_timeout_ms: 10_000,
            ws_idle_timeout_ms: 60_000,
            bot_miss_limit: 2,
            // As domain::password::DEFAULT_AT_ONCE: 4 × 19 MiB.
            password_hashes_at_once: 4,
            bot_timeout_ms: 5000,
            faq_threshold: 0.45,
            instance_name: String::new(),
            sendgrid_api_key: String::new(),
            sendgrid_url: "https://api.sendgrid.com".into(),
            mail_from: "support@example.com".into(),
            mail_from_name: "Careline Support".into(),
            mail_poll_ms: 1000,
            mail_max_attempts: 8,
            mail_retry_ms: 30_000,
            mail_reply_address: String::new(),
            mail_inbound_secret: String::new(),
            mail_imap_poll_ms: 30_000,
            mail_imap_timeout_ms: 30_000,
            mail_imap_ca_file: String::new(),
            mail_transport: String::new(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_user: String::new(),
            smtp_password: String::new(),
            smtp_ca_file: String::new(),
            smtp_timeout_ms: 30_000,
            attachment_max_bytes: 10 * 1024 * 1024,
            blob_store: "local".into(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_prefix: String::new(),
            egress_allow_http: false,
            egress_allowed_hosts: String::new(),
            webhook_poll_ms: 1000,
            webhook_retry_ms: 10_000,
            webhook_timeout_ms: 10_000,
            webhook_disable_after: 15,
            log: "info".into(),
            log_format: "text".into(),
        }
    }
}

/// How webhooks are delivered (`webhook_*`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub poll: std::time::Duration,
    pub retry: std::time::Duration,
    pub timeout: std::time::Duration,
    pub disable_after: i64,
}

/// Validated configuration: every field is usable as it is.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// The address people use to reach Careline, without a trailing slash.
    pub public_url: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    /// `redis://…` for several instances; `None` is the in-process bus.
    pub redis_url: Option<String>,
    /// With a `rediss://` URL: the CA file trusted for Redis instead of the
    /// system's roots (checked at start: readable, holding a certificate).
    pub redis_ca_file: Option<PathBuf>,
    /// Signs CSRF tokens. Empty means "generate one and keep it in the data dir".
    pub secret_key: Option<String>,
    pub trusted_proxies: Vec<IpNet>,
    /// Lets a scraper elsewhere read `/metrics` with `Authorization: Bearer
    /// <token>`; without it only the machine itself may (a loopback client,
    /// not forwarded by a proxy).
    pub metrics_token: Option<String>,
    pub session_ttl_hours: u64,
    pub auth_rate_limit_per_minute: u64,
    pub auth_rate_limit_burst: u32,
    /// New widget visitors one client address may create per minute (also
    /// the burst); returning visitors are never limited.
    pub widget_new_visitors_per_minute: u32,
    pub ws_frames_per_second: u32,
    pub ws_frame_burst: u32,
    /// Frames waiting for one socket before it counts as too slow (4000).
    pub ws_outbound_queue: usize,
    /// A socket must say `hello` within this time of the upgrade (else 1008).
    pub ws_hello_timeout: std::time::Duration,
    /// A socket that sends nothing, not even a pong, for this long is closed.
    pub ws_idle_timeout: std::time::Duration,
    pub bot_miss_limit: i64,
    pub password_hashes_at_once: usize,
    pub bot_timeout: std::time::Duration,
    pub faq_threshold: f64,
    /// Names this process in logs and the `X-Careline-Instance` header.
    pub instance_name: String,
    pub mail: MailConfig,
    /// The largest attachment accepted, checked while it streams in.
    pub attachment_max_bytes: u64,
    /// Where attachment bytes live.
    pub blobs: BlobConfig,
    /// The rules for HTTP calls made on an admin's say-so.
    pub egress: crate::egress::Policy,
    pub webhooks: WebhookSettings,
    pub log: String,
    /// `text` (for people) or `json` (for log collectors).
    pub log_format: LogFormat,
}

/// Where attachments are stored.
#[derive(Clone, Debug)]
pub enum BlobConfig {
    /// Files under `<data_dir>/blobs` (one node, or a shared volume).
    Local,
    /// An S3-compatible bucket (several instances).
    S3(crate::blobs::S3Settings),
}

/// Email delivery. Without a mail service emails stay in the outbox.
#[derive(Clone)]
pub struct MailConfig {
    /// What delivers the outbox's emails (SendGrid with
    /// `sendgrid_api_key`, or SMTP with its settings).
    pub transport: MailTransport,
    pub sendgrid_api_key: Option<String>,
    pub sendgrid_url: String,
    pub from: String,
    pub from_name: String,
    pub poll: std::time::Duration,
    pub max_attempts: i64,
    pub retry: std::time::Duration,
    /// `support@help.example.com`: replies go to `support+<token>@…`.
    pub reply_address: Option<String>,
    /// The inbound hooks' secret path segment; `None`: the hooks are off.
    pub inbound_secret: Option<String>,
    /// How often the support mailbox is read (`domain::mailbox`).
    pub imap_poll: std::time::Duration,
    pub imap_timeout: std::time::Duration,
    /// Trusted instead of the system's roots for IMAP (checked at start).
    pub imap_ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for MailConfig {
    // The API key is a secret: never printed, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("transport", &self.transport)
            .field(
                "sendgrid_api_key",
                &self.sendgrid_api_key.as_ref().map(|_| "***"),
            )
            .field("sendgrid_url", &self.sendgrid_url)
            .field("from", &self.from)
            .field("poll", &self.poll)
            .field("max_attempts", &self.max_attempts)
            .field("reply_address", &self.reply_address)
            .field(
                "inbound_secret",
                &self.inbound_secret.as_ref().map(|_| "***"),
            )
            .field("imap_poll", &self.imap_poll)
            .field("imap_ca_file", &self.imap_ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration: {0}")]
    Read(String),
    #[error("setting `{setting}` is invalid: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads `careline.toml` (or the file named by `CARELINE_CONFIG`) and the
    /// environment: `CARELINE_<SETTING>`, plus the conventional `DATABASE_URL`
    /// and `REDIS_URL`.
    pub fn load() -> Result<Config, ConfigError> {
        let file = std::env::var("CARELINE_CONFIG").unwrap_or_else(|_| "careline.toml".into());
        let figment = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::file(file))
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis_url".into()))
            .merge(
                Env::prefixed("CARELINE_")
                    .ignore(&["CONFIG"])
                    .filter(is_not_a_tool_variable),
            );
        let raw: RawConfig = figment.extract().map_err(read_error)?;
        raw.validate()
    }
}

/// Variables of Careline's own tools, not settings of the server: the
/// test suites' `CARELINE_TEST_*`, the load generator's
/// `CARELINE_SITE_KEY` and the browser test's `CARELINE_UPDATE_SCREENSHOTS`.
/// The server passes over them, so a developer who exports one for the
/// tests can still `cargo run`; any other unknown `CARELINE_` variable is a
/// typo and stops the start.
pub const TOOL_VARIABLE_PREFIXES: [&str; 3] = ["test_", "site_key", "update_screenshots"];

fn is_not_a_tool_variable(key: &figment::value::UncasedStr) -> bool {
    let key = key.as_str().to_ascii_lowercase();
    !TOOL_VARIABLE_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

/// A reading error, with the setting most likely meant when a name is
/// unknown (a typo in a file or a `CARELINE_` variable).
fn read_error(error: figment::Error) -> ConfigError {
    let mut message = error.to_string();
    if let figment::error::Kind::UnknownField(name, expected) = &error.kind
        && let Some(meant) = closest(name, expected)
    {
        message.push_str(&format!(
            "; did you mean `{meant}` (CARELINE_{} in the environment)?",
            meant.to_ascii_uppercase()
        ));
    }
    ConfigError::Read(message)
}

/// The name in `known` nearest to `name`, if it is near enough to be a typo
/// (at most a third of its letters differ).
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(previous + usize::from(ca != *cb));
            previous = above;
        }
    }
    row[b.len()]
}

impl std::fmt::Debug for Config {
    // Secrets (the secret key, passwords in URLs) never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field("database_url", &crate::store::redact(&self.database_url))
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(crate::store::redact),
            )
            .field("redis_ca_file", &self.redis_ca_file)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("instance_name", &self.instance_name)
            .field("mail", &self.mail)
            .field("blobs", &self.blobs)
            .field("egress", &self.egress)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Cookies get the `Secure` flag whenever people reach Careline over HTTPS.
    pub fn cookies_secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_point_at_sqlite_in_data() {
        let config = RawConfig::default().validate().expect("defaults validate");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://./data/careline.db?mode=rwc");
        assert!(!config.cookies_secure());
    }

    #[test]
    fn bad_values_name_the_setting() {
        type Spoil = fn(&mut RawConfig);
        let cases: &[(&str, Spoil)] = &[
            ("blob_store", |c| c.blob_store = "ftp".into()),
            ("s3_bucket", |c| c.blob_store = "s3".into()),
            ("attachment_max_bytes", |c| c.attachment_max_bytes = 10),
            ("bind", |c| c.bind = "localhost".into()),
            ("public_url", |c| c.public_url = "ftp://x".into()),
            ("database_url", |c| c.database_url = "oracle://x".into()),
            ("secret_key", |c| c.secret_key = "short".into()),
            ("trusted_proxies", |c| {
                c.trusted_proxies = "10.0.0.0/99".into()
            }),
            ("redis_url", |c| c.redis_url = "localhost:6379".into()),
            ("redis_url", |c| {
                c.redis_url = "rediss://redis.example.com:6380/#insecure".into()
            }),
            ("redis_ca_file", |c| {
                c.redis_url = "rediss://redis.example.com:6380".into();
                c.redis_ca_file = "/nonexistent/ca.pem".into();
            }),
            ("redis_ca_file", |c| {
                c.redis_url = "redis://redis.example.com:6379".into();
                c.redis_ca_file = "Cargo.toml".into();
            }),
            ("redis_ca_file", |c| {
                c.redis_url = "rediss://redis.example.com:6380".into();
                c.redis_ca_file = "Cargo.toml".into();
            }),
            ("metrics_token", |c| c.metrics_token = "guessable".into()),
            ("mail_reply_address", |c| {
                c.mail_reply_address = "not an address".into()
            }),
            ("mail_reply_address", |c| {
                c.mail_reply_address = "support+x@example.com".into()
            }),
            ("mail_inbound_secret", |c| {
                c.mail_inbound_secret = "short".into()
            }),
            ("mail_imap_poll_ms", |c| c.mail_imap_poll_ms = 0),
            ("mail_imap_timeout_ms", |c| c.mail_imap_timeout_ms = 600_000),
            ("mail_imap_ca_file", |c| {
                c.mail_imap_ca_file = "/nonexistent/ca.pem".into()
            }),
            ("mail_imap_ca_file", |c| {
                c.mail_imap_ca_file = "Cargo.toml".into()
            }),
            ("egress_allowed_hosts", |c| {
                c.egress_allowed_hosts = "watson.internal:8443, https://x".into()
            }),
        ];
        for &(setting, spoil) in cases {
            let mut raw = RawConfig::default();
            spoil(&mut raw);
            let err = raw.validate().expect_err(setting).to_string();
            assert!(err.contains(&format!("`{setting}`")), "{err}");
        }
    }

    #[test]
    fn a_typo_is_answered_with_the_setting_meant() {
        let known = ["bot_miss_limit", "bot_timeout_ms", "bind", "redis_url"];
        assert_eq!(closest("bot_mis_limit", &known), Some("bot_miss_limit"));
        assert_eq!(closest("REDIS_URI", &known), Some("redis_url"));
        assert_eq!(closest("colour", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let raw = RawConfig {
            secret_key: "a-very-secret-key-of-32-characters!!".into(),
            database_url: "postgres://careline:hunter2@db/careline".into(),
            sendgrid_api_key: "SG.secret".into(),
            blob_store: "s3".into(),
            s3_bucket: "careline".into(),
            s3_access_key_id: "AKIDEXAMPLE".into(),
            s3_secret_access_key: "s3-very-secret".into(),
            metrics_token: "metrics-very-secret".into(),
            mail_transport: "smtp".into(),
            smtp_host: "smtp.example.com".into(),
            smtp_user: "mailer@example.com".into(),
            smtp_password: "smtp-very-secret".into(),
            ..RawConfig::default()
        };
        let shown = format!("{:?}", raw.validate().unwrap());
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(shown.contains("mailer@example.com"), "{shown}");
        for secret in [
            "a-very-secret-key",
            "hunter2",
            "SG.secret",
            "s3-very-secret",
            "metrics-very-secret",
            "smtp-very-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }
}
