//! Configuration: read once at start from an optional `careline.toml` and the
//! environment (environment wins), validated before anything else runs. A bad
//! value stops the start with a message that names the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

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
    pub attachment_max_bytes: u64,
    pub blob_store: String,
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
    pub s3_prefix: String,
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
            attachment_max_bytes: 10 * 1024 * 1024,
            blob_store: "local".into(),
            s3_endpoint: String::new(),
            s3_bucket: String::new(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_prefix: String::new(),
            log: "info".into(),
            log_format: "text".into(),
        }
    }
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
    pub bot_timeout: std::time::Duration,
    pub faq_threshold: f64,
    /// Names this process in logs and the `X-Careline-Instance` header.
    pub instance_name: String,
    pub mail: MailConfig,
    /// The largest attachment accepted, checked while it streams in.
    pub attachment_max_bytes: u64,
    /// Where attachment bytes live.
    pub blobs: BlobConfig,
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

/// Email delivery. Without a SendGrid key emails stay in the outbox.
#[derive(Clone)]
pub struct MailConfig {
    pub sendgrid_api_key: Option<String>,
    pub sendgrid_url: String,
    pub from: String,
    pub from_name: String,
    pub poll: std::time::Duration,
    pub max_attempts: i64,
    pub retry: std::time::Duration,
}

impl std::fmt::Debug for MailConfig {
    // The API key is a secret: never printed, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field(
                "sendgrid_api_key",
                &self.sendgrid_api_key.as_ref().map(|_| "***"),
            )
            .field("sendgrid_url", &self.sendgrid_url)
            .field("from", &self.from)
            .field("poll", &self.poll)
            .field("max_attempts", &self.max_attempts)
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
            .merge(Env::prefixed("CARELINE_").ignore(&["CONFIG"]));
        let raw: RawConfig = figment
            .extract()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        raw.validate()
    }
}

impl RawConfig {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            invalid(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8080", self.bind),
            )
        })?;
        let public_url = if self.public_url.is_empty() {
            format!("http://{bind}")
        } else {
            self.public_url.trim_end_matches('/').to_string()
        };
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(invalid(
                "public_url",
                format!("`{public_url}` must start with http:// or https://"),
            ));
        }
        if self.data_dir.trim().is_empty() {
            return Err(invalid("data_dir", "must name a directory"));
        }
        let data_dir = PathBuf::from(&self.data_dir);
        let database_url = if self.database_url.is_empty() {
            format!("sqlite://{}/careline.db?mode=rwc", self.data_dir)
        } else {
            self.database_url.clone()
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database_url",
                "use sqlite://PATH or postgres://USER@HOST/DB (MySQL is not supported yet)",
            ));
        }
        let redis_url = match self.redis_url.trim() {
            "" => None,
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                Some(url.to_string())
            }
            _ => {
                return Err(invalid(
                    "redis_url",
                    "use redis://HOST:PORT (or leave it empty for one instance)",
                ));
            }
        };
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        let secret_key = match self.secret_key.trim() {
            "" => None,
            key if key.len() < 32 => {
                return Err(invalid(
                    "secret_key",
                    "must be at least 32 characters (try `openssl rand -hex 32`)",
                ));
            }
            key => Some(key.to_string()),
        };
        let trusted_proxies = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::parse(s).ok_or_else(|| {
                    invalid(
                        "trusted_proxies",
                        format!("`{s}` is not an IP address or CIDR range like 10.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.session_ttl_hours == 0 {
            return Err(invalid("session_ttl_hours", "must be at least 1"));
        }
        if !(1..=60_000).contains(&self.auth_rate_limit_per_minute) {
            return Err(invalid(
                "auth_rate_limit_per_minute",
                "must be between 1 and 60000",
            ));
        }
        if !(1..=1_000_000).contains(&self.widget_new_visitors_per_minute) {
            return Err(invalid(
                "widget_new_visitors_per_minute",
                "must be between 1 and 1000000",
            ));
        }
        if self.auth_rate_limit_burst == 0 {
            return Err(invalid("auth_rate_limit_burst", "must be at least 1"));
        }
        if self.ws_frames_per_second == 0 || self.ws_frame_burst == 0 {
            return Err(invalid(
                "ws_frames_per_second",
                "socket rate limits must be at least 1 (rate and burst)",
            ));
        }
        if !(8..=100_000).contains(&self.ws_outbound_queue) {
            return Err(invalid(
                "ws_outbound_queue",
                "must be between 8 and 100000 frames",
            ));
        }
        if !(100..=120_000).contains(&self.ws_hello_timeout_ms) {
            return Err(invalid(
                "ws_hello_timeout_ms",
                "must be between 100 and 120000 milliseconds",
            ));
        }
        if !(300..=3_600_000).contains(&self.ws_idle_timeout_ms) {
            return Err(invalid(
                "ws_idle_timeout_ms",
                "must be between 300 and 3600000 milliseconds",
            ));
        }
        if self.bot_miss_limit < 1 {
            return Err(invalid("bot_miss_limit", "must be at least 1"));
        }
        if !(100..=60_000).contains(&self.bot_timeout_ms) {
            return Err(invalid(
                "bot_timeout_ms",
                "must be between 100 and 60000 milliseconds",
            ));
        }
        if !(0.0..=1.0).contains(&self.faq_threshold) {
            return Err(invalid("faq_threshold", "must be between 0 and 1"));
        }
        let log_format = match self.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(invalid("log_format", "use text or json")),
        };
        let instance_name = match self.instance_name.trim() {
            "" => bind.to_string(),
            name if name.len() <= 64 && name.chars().all(|c| c.is_ascii_graphic()) => {
                name.to_string()
            }
            _ => {
                return Err(invalid(
                    "instance_name",
                    "use up to 64 visible ASCII characters",
                ));
            }
        };
        let mail = MailConfig {
            sendgrid_api_key: Some(self.sendgrid_api_key.trim().to_string())
                .filter(|k| !k.is_empty()),
            sendgrid_url: {
                let url = self.sendgrid_url.trim().trim_end_matches('/').to_string();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(invalid("sendgrid_url", "must start with https://"));
                }
                url
            },
            from: crate::model::Email::parse(&self.mail_from)
                .map_err(|_| {
                    invalid(
                        "mail_from",
                        "must be an email address like support@example.com",
                    )
                })?
                .as_str()
                .to_string(),
            from_name: self.mail_from_name.trim().to_string(),
            poll: std::time::Duration::from_millis(self.mail_poll_ms.clamp(50, 60_000)),
            max_attempts: self.mail_max_attempts,
            retry: std::time::Duration::from_millis(self.mail_retry_ms),
        };
        if !(1..=100).contains(&mail.max_attempts) {
            return Err(invalid("mail_max_attempts", "must be between 1 and 100"));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.attachment_max_bytes) {
            return Err(invalid(
                "attachment_max_bytes",
                "must be between 1024 and 1073741824 bytes",
            ));
        }
        let blobs = self.blob_config()?;
        let metrics_token = Some(self.metrics_token.trim().to_string()).filter(|t| !t.is_empty());
        if metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(invalid(
                "metrics_token",
                "use at least 16 characters (e.g. `openssl rand -hex 16`), or leave it empty",
            ));
        }
        Ok(Config {
            bind,
            public_url,
            data_dir,
            database_url,
            database_max_connections: self.database_max_connections,
            redis_url,
            secret_key,
            trusted_proxies,
            metrics_token,
            session_ttl_hours: self.session_ttl_hours,
            auth_rate_limit_per_minute: self.auth_rate_limit_per_minute,
            auth_rate_limit_burst: self.auth_rate_limit_burst,
            widget_new_visitors_per_minute: self.widget_new_visitors_per_minute,
            ws_frames_per_second: self.ws_frames_per_second,
            ws_frame_burst: self.ws_frame_burst,
            ws_outbound_queue: self.ws_outbound_queue,
            ws_hello_timeout: std::time::Duration::from_millis(self.ws_hello_timeout_ms),
            ws_idle_timeout: std::time::Duration::from_millis(self.ws_idle_timeout_ms),
            bot_miss_limit: self.bot_miss_limit,
            bot_timeout: std::time::Duration::from_millis(self.bot_timeout_ms),
            faq_threshold: self.faq_threshold,
            instance_name,
            mail,
            attachment_max_bytes: self.attachment_max_bytes,
            blobs,
            log: self.log,
            log_format,
        })
    }
}

impl RawConfig {
    fn blob_config(&self) -> Result<BlobConfig, ConfigError> {
        match self.blob_store.trim() {
            "local" => Ok(BlobConfig::Local),
            "s3" => {
                let required = [
                    ("s3_bucket", &self.s3_bucket),
                    ("s3_region", &self.s3_region),
                    ("s3_access_key_id", &self.s3_access_key_id),
                    ("s3_secret_access_key", &self.s3_secret_access_key),
                ];
                for (name, value) in required {
                    if value.trim().is_empty() {
                        return Err(invalid(name, "is required when `blob_store` is s3"));
                    }
                }
                let endpoint = self.s3_endpoint.trim().trim_end_matches('/').to_string();
                if !(endpoint.is_empty()
                    || endpoint.starts_with("https://")
                    || endpoint.starts_with("http://"))
                {
                    return Err(invalid(
                        "s3_endpoint",
                        "must start with https:// (or be empty for AWS itself)",
                    ));
                }
                let prefix = self.s3_prefix.trim().trim_matches('/');
                Ok(BlobConfig::S3(crate::blobs::S3Settings {
                    endpoint,
                    bucket: self.s3_bucket.trim().to_string(),
                    region: self.s3_region.trim().to_string(),
                    access_key_id: self.s3_access_key_id.trim().to_string(),
                    secret_access_key: self.s3_secret_access_key.trim().to_string(),
                    prefix: if prefix.is_empty() {
                        String::new()
                    } else {
                        format!("{prefix}/")
                    },
                }))
            }
            _ => Err(invalid("blob_store", "use local or s3")),
        }
    }
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
            .field("secret_key", &self.secret_key.as_ref().map(|_| "***"))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .field("instance_name", &self.instance_name)
            .field("mail", &self.mail)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Cookies get the `Secure` flag whenever people reach Careline over HTTPS.
    pub fn cookies_secure(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// An IP address or CIDR range, for the trusted proxy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
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
        let cases: [(&str, Spoil); 10] = [
            ("blob_store", |c| c.blob_store = "ftp".into()),
            ("s3_bucket", |c| c.blob_store = "s3".into()),
            ("attachment_max_bytes", |c| c.attachment_max_bytes = 10),
            ("bind", |c| c.bind = "localhost".into()),
            ("public_url", |c| c.public_url = "ftp://x".into()),
            ("database_url", |c| c.database_url = "mysql://x".into()),
            ("secret_key", |c| c.secret_key = "short".into()),
            ("trusted_proxies", |c| {
                c.trusted_proxies = "10.0.0.0/99".into()
            }),
            ("redis_url", |c| c.redis_url = "localhost:6379".into()),
            ("metrics_token", |c| c.metrics_token = "guessable".into()),
        ];
        for (setting, spoil) in cases {
            let mut raw = RawConfig::default();
            spoil(&mut raw);
            let err = raw.validate().expect_err(setting).to_string();
            assert!(err.contains(&format!("`{setting}`")), "{err}");
        }
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
            ..RawConfig::default()
        };
        let shown = format!("{:?}", raw.validate().unwrap());
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        for secret in [
            "a-very-secret-key",
            "hunter2",
            "SG.secret",
            "s3-very-secret",
            "metrics-very-secret",
        ] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
    }

    #[test]
    fn cidr_ranges_match_only_their_addresses() {
        let net = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpNet::parse("::1/128")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(IpNet::parse("nonsense").is_none());
    }
}
