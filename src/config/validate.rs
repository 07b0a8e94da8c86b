//! From what the operator wrote to settings Careline can run with: every
//! value checked once, at start, and a bad one named with what to write.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{BlobConfig, Config, ConfigError, IpNet, LogFormat, MailConfig, RawConfig, invalid};

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
        if crate::store::Backend::from_url(&database_url).is_none() {
            return Err(invalid(
                "database_url",
                "use sqlite://PATH, postgres://USER@HOST/DB or mysql://USER@HOST/DB (also mariadb://)",
            ));
        }
        let redis_url = self.checked_redis_url()?;
        let redis_ca_file = self.checked_redis_ca_file(redis_url.as_deref())?;
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
        if !(1..=256).contains(&self.password_hashes_at_once) {
            return Err(invalid(
                "password_hashes_at_once",
                "must be 1 to 256 (each hash holds 19 MiB while it runs)",
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
            transport: self.mail_transport()?,
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
            reply_address: match self.mail_reply_address.trim() {
                "" => None,
                address => match crate::model::Email::parse(address) {
                    // The tag goes after the local part: one there already
                    // would make two.
                    Ok(parsed) if !parsed.as_str().contains('+') => {
                        Some(parsed.as_str().to_string())
                    }
                    _ => {
                        return Err(invalid(
                            "mail_reply_address",
                            "must be an email address without a +tag, like support@help.example.com (replies come to support+<tag>@help.example.com)",
                        ));
                    }
                },
            },
            inbound_secret: match self.mail_inbound_secret.trim() {
                "" => None,
                secret
                    if secret.len() >= 24
                        && secret
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    Some(secret.to_string())
                }
                _ => {
                    return Err(invalid(
                        "mail_inbound_secret",
                        "use at least 24 letters, digits, - or _ (e.g. openssl rand -hex 16): it is the password of the inbound email hooks",
                    ));
                }
            },
            imap_poll: std::time::Duration::from_millis(self.mail_imap_poll_ms),
            imap_timeout: std::time::Duration::from_millis(self.mail_imap_timeout_ms),
            imap_ca_file: match self.mail_imap_ca_file.trim() {
                "" => None,
                file => Some(ca_file("mail_imap_ca_file", file)?),
            },
        };
        if !(100..=3_600_000).contains(&self.mail_imap_poll_ms) {
            return Err(invalid(
                "mail_imap_poll_ms",
                "must be between 100 and 3600000 milliseconds (how often the support mailbox is read; 30000 is usual)",
            ));
        }
        // Below the mailbox lease's two minutes, so that one slow step
        // cannot outlast the lease it runs under.
        if !(100..=60_000).contains(&self.mail_imap_timeout_ms) {
            return Err(invalid(
                "mail_imap_timeout_ms",
                "must be between 100 and 60000 milliseconds (one step with the mail server)",
            ));
        }
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
        let egress = crate::egress::Policy::new(
            self.egress_allow_http,
            self.egress_allowed_hosts
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    crate::egress::Allowed::parse(s)
                        .map_err(|why| invalid("egress_allowed_hosts", why))
                })
                .collect::<Result<Vec<_>, _>>()?,
        );
        let webhooks = self.webhook_settings()?;
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
            redis_ca_file,
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
            password_hashes_at_once: self.password_hashes_at_once as usize,
            bot_timeout: std::time::Duration::from_millis(self.bot_timeout_ms),
            faq_threshold: self.faq_threshold,
            instance_name,
            mail,
            attachment_max_bytes: self.attachment_max_bytes,
            blobs,
            egress,
            webhooks,
            log: self.log,
            log_format,
        })
    }
}

impl RawConfig {
    fn webhook_settings(&self) -> Result<super::WebhookSettings, ConfigError> {
        use std::time::Duration;
        if !(50..=60_000).contains(&self.webhook_poll_ms) {
            return Err(invalid(
                "webhook_poll_ms",
                "must be between 50 and 60000 milliseconds (how often webhook events are looked for; 1000 is usual)",
            ));
        }
        if !(10..=3_600_000).contains(&self.webhook_retry_ms) {
            return Err(invalid(
                "webhook_retry_ms",
                "must be between 10 and 3600000 milliseconds (the first retry of a failed delivery; 10000 is usual)",
            ));
        }
        if !(500..=60_000).contains(&self.webhook_timeout_ms) {
            return Err(invalid(
                "webhook_timeout_ms",
                "must be between 500 and 60000 milliseconds (one delivery; 10000 is usual)",
            ));
        }
        if !(1..=1000).contains(&self.webhook_disable_after) {
            return Err(invalid(
                "webhook_disable_after",
                "must be between 1 and 1000 failed deliveries in a row (15 is usual)",
            ));
        }
        Ok(super::WebhookSettings {
            poll: Duration::from_millis(self.webhook_poll_ms),
            retry: Duration::from_millis(self.webhook_retry_ms),
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            disable_after: self.webhook_disable_after,
        })
    }

    /// `redis://` or `rediss://` (TLS, the certificate always checked), a
    /// URL the Redis client can read.
    fn checked_redis_url(&self) -> Result<Option<String>, ConfigError> {
        let url = self.redis_url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(invalid(
                "redis_url",
                "use redis://HOST:PORT, or rediss://HOST:PORT for TLS \
                 (or leave it empty for one instance)",
            ));
        }
        if url.contains("#insecure") {
            return Err(invalid(
                "redis_url",
                "#insecure would accept any certificate; to trust your provider's CA, \
                 name its certificate file in `redis_ca_file`",
            ));
        }
        redis::Client::open(url).map_err(|e| {
            invalid(
                "redis_url",
                crate::connect_failure::without_password(&e.to_string(), url),
            )
        })?;
        Ok(Some(url.to_string()))
    }

    /// The CA file for a `rediss://` Redis: readable, with a certificate.
    fn checked_redis_ca_file(
        &self,
        redis_url: Option<&str>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let file = self.redis_ca_file.trim();
        if file.is_empty() {
            return Ok(None);
        }
        if !redis_url.is_some_and(|url| url.starts_with("rediss://")) {
            return Err(invalid(
                "redis_ca_file",
                "applies to TLS only: `redis_url` must be rediss://HOST:PORT",
            ));
        }
        ca_file("redis_ca_file", file).map(Some)
    }

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

/// A CA file named by `setting`: readable, PEM, with a certificate in it.
pub(super) fn ca_file(setting: &'static str, file: &str) -> Result<PathBuf, ConfigError> {
    let pem =
        std::fs::read(file).map_err(|e| invalid(setting, format!("cannot read `{file}`: {e}")))?;
    crate::adapter::check_ca_pem(&pem)
        .map_err(|why| invalid(setting, format!("`{file}` {why}")))?;
    Ok(PathBuf::from(file))
}
