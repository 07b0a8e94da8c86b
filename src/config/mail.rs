//! Which service delivers email (`mail_transport`) and, for SMTP, where and
//! how: each setting checked at start, a bad one named with what to write.

use std::path::PathBuf;
use std::time::Duration;

use super::validate::ca_file;
use super::{ConfigError, RawConfig, invalid};

/// What sends the outbox's emails.
#[derive(Clone, Debug, PartialEq)]
pub enum MailTransport {
    /// Nothing: emails stay in the outbox for admins to read.
    Outbox,
    /// SendGrid's v3 API with `sendgrid_api_key`.
    SendGrid,
    /// An SMTP server.
    Smtp(SmtpConfig),
}

impl MailTransport {
    /// `outbox`, `sendgrid` or `smtp`, as the setting spells it.
    pub fn name(&self) -> &'static str {
        match self {
            MailTransport::Outbox => "outbox",
            MailTransport::SendGrid => "sendgrid",
            MailTransport::Smtp(_) => "smtp",
        }
    }
}

/// How the SMTP connection is protected (`smtp_tls`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `STARTTLS` after connecting, required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain text: a relay on this machine only.
    None,
}

#[derive(Clone, PartialEq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    /// A secret: never printed.
    pub password: Option<String>,
    /// Trusted instead of the system's roots (checked at start).
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A host this machine reaches without a network in between.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A DNS name or an IP address, nothing more (no scheme, no port).
fn is_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
}

impl RawConfig {
    pub(super) fn mail_transport(&self) -> Result<MailTransport, ConfigError> {
        let has_key = !self.sendgrid_api_key.trim().is_empty();
        let transport = match self.mail_transport.trim().to_ascii_lowercase().as_str() {
            "" if has_key => MailTransport::SendGrid,
            "" | "outbox" => MailTransport::Outbox,
            "sendgrid" if has_key => MailTransport::SendGrid,
            "sendgrid" => {
                return Err(invalid(
                    "sendgrid_api_key",
                    "is required when `mail_transport` is sendgrid (a SendGrid v3 API key, SG.…)",
                ));
            }
            "smtp" => MailTransport::Smtp(self.smtp()?),
            other => {
                return Err(invalid(
                    "mail_transport",
                    format!(
                        "`{other}` is not a transport: use outbox, sendgrid or smtp \
                         (empty: SendGrid when `sendgrid_api_key` is set, else the outbox)"
                    ),
                ));
            }
        };
        if !matches!(transport, MailTransport::Smtp(_)) && !self.smtp_host.trim().is_empty() {
            return Err(invalid(
                "mail_transport",
                format!(
                    "`smtp_host` is set but email goes to the {}: set `mail_transport` to smtp \
                     to send through {} (or remove `smtp_host`)",
                    transport.name(),
                    self.smtp_host.trim()
                ),
            ));
        }
        Ok(transport)
    }

    fn smtp(&self) -> Result<SmtpConfig, ConfigError> {
        let host = self.smtp_host.trim();
        if host.is_empty() {
            return Err(invalid(
                "smtp_host",
                "is required when `mail_transport` is smtp (e.g. smtp.office365.com)",
            ));
        }
        if !is_host(host) {
            return Err(invalid(
                "smtp_host",
                format!(
                    "`{host}` is not a host name: write the name alone, like smtp.office365.com \
                     (the port goes in `smtp_port`, TLS in `smtp_tls`)"
                ),
            ));
        }
        if self.smtp_port == 0 {
            return Err(invalid(
                "smtp_port",
                "must be a port, 1 to 65535 (587 for starttls, 465 for tls)",
            ));
        }
        let tls = match self.smtp_tls.trim().to_ascii_lowercase().as_str() {
            "starttls" => SmtpTls::StartTls,
            "tls" => SmtpTls::Tls,
            "none" if is_loopback(host) => SmtpTls::None,
            "none" => {
                return Err(invalid(
                    "smtp_tls",
                    format!(
                        "none would send the password and every email to `{host}` in plain text; \
                         it is allowed only for a relay on this machine (localhost, 127.0.0.1, ::1). \
                         Use starttls (port 587) or tls (port 465)"
                    ),
                ));
            }
            other => {
                return Err(invalid(
                    "smtp_tls",
                    format!(
                        "`{other}` is not a mode: use starttls (port 587), tls (port 465) \
                         or none (a relay on this machine only)"
                    ),
                ));
            }
        };
        let user = Some(self.smtp_user.trim().to_string()).filter(|u| !u.is_empty());
        // The password is taken as written: spaces may be part of it.
        let password = Some(self.smtp_password.clone()).filter(|p| !p.trim().is_empty());
        match (&user, &password) {
            (Some(_), None) => {
                return Err(invalid(
                    "smtp_password",
                    "is required with `smtp_user` (for Gmail, an app password)",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "smtp_user",
                    "is required with `smtp_password` (usually the mailbox's address)",
                ));
            }
            _ => {}
        }
        let ca_file = match self.smtp_ca_file.trim() {
            "" => None,
            _ if tls == SmtpTls::None => {
                return Err(invalid(
                    "smtp_ca_file",
                    "applies to TLS only: `smtp_tls` must be starttls or tls",
                ));
            }
            file => Some(ca_file("smtp_ca_file", file)?),
        };
        // Below the outbox's two-minute lease, so that no other worker takes
        // an email while this one is still sending it.
        if !(100..=60_000).contains(&self.smtp_timeout_ms) {
            return Err(invalid(
                "smtp_timeout_ms",
                "must be between 100 and 60000 milliseconds (one delivery, connecting to the last answer)",
            ));
        }
        Ok(SmtpConfig {
            host: host.to_string(),
            port: self.smtp_port,
            tls,
            user,
            password,
            ca_file,
            timeout: Duration::from_millis(self.smtp_timeout_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(tweak: impl FnOnce(&mut RawConfig)) -> Result<MailTransport, ConfigError> {
        let mut raw = RawConfig {
            mail_transport: "smtp".into(),
            smtp_host: "smtp.office365.com".into(),
            smtp_user: "support@example.com".into(),
            smtp_password: "pass word".into(),
            ..RawConfig::default()
        };
        tweak(&mut raw);
        raw.mail_transport()
    }

    fn setting_of(result: Result<MailTransport, ConfigError>) -> String {
        match result {
            Err(ConfigError::Invalid { setting, .. }) => setting.to_string(),
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn empty_keeps_sendgrid_with_a_key_and_the_outbox_without() {
        assert_eq!(
            RawConfig::default().mail_transport().unwrap(),
            MailTransport::Outbox
        );
        let with_key = RawConfig {
            sendgrid_api_key: "SG.x".into(),
            ..RawConfig::default()
        };
        assert_eq!(with_key.mail_transport().unwrap(), MailTransport::SendGrid);
        let outbox = RawConfig {
            mail_transport: "outbox".into(),
            ..with_key
        };
        assert_eq!(outbox.mail_transport().unwrap(), MailTransport::Outbox);
    }

    #[test]
    fn smtp_defaults_to_starttls_on_587_with_the_password_as_written() {
        let MailTransport::Smtp(config) = smtp(|_| {}).unwrap() else {
            panic!("smtp")
        };
        assert_eq!(config.port, 587);
        assert_eq!(config.tls, SmtpTls::StartTls);
        assert_eq!(config.password.as_deref(), Some("pass word"));
        assert_eq!(config.timeout, Duration::from_secs(30));
        let shown = format!("{config:?}");
        assert!(!shown.contains("pass word"), "{shown}");
    }

    #[test]
    fn plain_text_is_for_this_machine_only() {
        for host in ["127.0.0.1", "localhost", "::1", "127.0.0.2"] {
            let transport = smtp(|c| {
                c.smtp_host = host.into();
                c.smtp_tls = "none".into();
            });
            assert!(transport.is_ok(), "{host}: {transport:?}");
        }
        let err = smtp(|c| c.smtp_tls = "none".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`smtp_tls`") && err.contains("starttls"),
            "{err}"
        );
    }

    #[test]
    fn bad_smtp_values_name_the_setting() {
        type Spoil = fn(&mut RawConfig);
        let cases: &[(&str, Spoil)] = &[
            ("mail_transport", |c| c.mail_transport = "pigeon".into()),
            ("mail_transport", |c| c.mail_transport = String::new()),
            ("sendgrid_api_key", |c| c.mail_transport = "sendgrid".into()),
            ("smtp_host", |c| c.smtp_host = String::new()),
            ("smtp_host", |c| {
                c.smtp_host = "smtp.office365.com:587".into()
            }),
            ("smtp_host", |c| {
                c.smtp_host = "smtps://mail.example.com".into()
            }),
            ("smtp_port", |c| c.smtp_port = 0),
            ("smtp_tls", |c| c.smtp_tls = "ssl".into()),
            ("smtp_tls", |c| c.smtp_tls = "none".into()),
            ("smtp_password", |c| c.smtp_password = String::new()),
            ("smtp_user", |c| c.smtp_user = String::new()),
            ("smtp_ca_file", |c| {
                c.smtp_ca_file = "/nonexistent/ca.pem".into()
            }),
            ("smtp_ca_file", |c| c.smtp_ca_file = "Cargo.toml".into()),
            ("smtp_ca_file", |c| {
                c.smtp_host = "127.0.0.1".into();
                c.smtp_tls = "none".into();
                c.smtp_ca_file = "Cargo.toml".into();
            }),
            ("smtp_timeout_ms", |c| c.smtp_timeout_ms = 0),
            ("smtp_timeout_ms", |c| c.smtp_timeout_ms = 600_000),
        ];
        for &(setting, spoil) in cases {
            assert_eq!(setting_of(smtp(spoil)), setting);
        }
    }
}
