//! A support mailbox over IMAP, what teams with support@ on their own mail
//! server, Microsoft 365 or Gmail use (as Zammad and FreeScout do): log in
//! over TLS, list the mail not yet taken, fetch each whole message without
//! marking it, and mark it taken (`\Seen`, then moved to a folder when one
//! is named) only once Careline has recorded what became of it. What the
//! mail becomes, and that one instance works the mailbox at a time, is the
//! domain's (`domain::mailbox`).
//!
//! The settings are an admin's (`/admin/inbound`), kept in `settings` with
//! the password sealed like the Watson key. Only TLS: implicit (993) or
//! STARTTLS (143), never a password in plain text.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::auth::Secret;
use crate::egress::Policy;
use crate::store::{Store, StoreResult};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    Tls,
    /// `STARTTLS` after the greeting, required (port 143).
    StartTls,
}

impl ImapSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            ImapSecurity::Tls => "tls",
            ImapSecurity::StartTls => "starttls",
        }
    }
}

/// The mailbox an admin configured (the password opened).
#[derive(Clone, PartialEq)]
pub struct ImapSettings {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub user: String,
    /// A secret: never printed, never shown back.
    pub password: String,
    /// The folder read (usually INBOX).
    pub folder: String,
    /// Where taken mail is moved; empty: it is only marked read.
    pub done_folder: String,
}

impl std::fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSettings")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &"***")
            .field("folder", &self.folder)
            .field("done_folder", &self.done_folder)
            .finish()
    }
}

impl Default for ImapSettings {
    fn default() -> Self {
        ImapSettings {
            enabled: false,
            host: String::new(),
            port: 993,
            security: ImapSecurity::Tls,
            user: String::new(),
            password: String::new(),
            folder: "INBOX".into(),
            done_folder: String::new(),
        }
    }
}

/// A setting that cannot be used: which field, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSetting {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> BadSetting {
    BadSetting {
        field,
        message: message.into(),
    }
}

impl ImapSettings {
    pub async fn load(store: &Store, secret: &Secret) -> StoreResult<ImapSettings> {
        let get = |name: &'static str| async move {
            store.setting(name).await.map(|v| v.unwrap_or_default())
        };
        let defaults = ImapSettings::default();
        let folder = get("mail.imap.folder").await?;
        Ok(ImapSettings {
            enabled: get("mail.imap.enabled").await? == "true",
            host: get("mail.imap.host").await?,
            port: get("mail.imap.port")
                .await?
                .parse()
                .unwrap_or(defaults.port),
            security: match get("mail.imap.security").await?.as_str() {
                "starttls" => ImapSecurity::StartTls,
                _ => ImapSecurity::Tls,
            },
            user: get("mail.imap.user").await?,
            password: secret
                .open(&get("mail.imap.password").await?)
                .unwrap_or_default(),
            folder: if folder.is_empty() {
                defaults.folder
            } else {
                folder
            },
            done_folder: get("mail.imap.done_folder").await?,
        })
    }

    /// Saves the settings; `new_password` empty keeps the stored one.
    pub async fn save(
        &self,
        store: &Store,
        secret: &Secret,
        new_password: &str,
    ) -> StoreResult<()> {
        let mut values = vec![
            ("mail.imap.enabled", self.enabled.to_string()),
            ("mail.imap.host", self.host.clone()),
            ("mail.imap.port", self.port.to_string()),
            ("mail.imap.security", self.security.as_str().to_string()),
            ("mail.imap.user", self.user.clone()),
            ("mail.imap.folder", self.folder.clone()),
            ("mail.imap.done_folder", self.done_folder.clone()),
        ];
        if !new_password.is_empty() {
            values.push(("mail.imap.password", secret.seal(new_password)));
        }
        store.save_settings(&values).await
    }

    /// Whether an enabled mailbox can be connected to as written (a
    /// password is checked by `has_password`, as it may be kept from
    /// before).
    pub fn check(&self) -> Result<(), BadSetting> {
        if !self.enabled {
            return Ok(());
        }
        let host = self.host.trim();
        if host.is_empty() {
            return Err(bad(
                "host",
                "is required: the mail server, like outlook.office365.com or imap.gmail.com",
            ));
        }
        if host.contains(['/', ':', ' ', '@']) {
            return Err(bad(
                "host",
                format!(
                    "`{host}` is not a host name: write the name alone (the port has its own field)"
                ),
            ));
        }
        if self.port == 0 {
            return Err(bad(
                "port",
                "must be 1 to 65535 (993 for TLS, 143 for STARTTLS)",
            ));
        }
        if self.user.trim().is_empty() {
            return Err(bad("user", "is required: usually the mailbox's address"));
        }
        for (field, name) in [("folder", &self.folder), ("done_folder", &self.done_folder)] {
            if name.chars().any(|c| c.is_control() || !c.is_ascii()) {
                return Err(bad(
                    field,
                    "must be a folder name in plain ASCII letters (like INBOX or Careline/Done)",
                ));
            }
        }
        if self.folder.trim().is_empty() {
            return Err(bad("folder", "is required (usually INBOX)"));
        }
        if self.done_folder.trim() == self.folder.trim() {
            return Err(bad(
                "done_folder",
                "must differ from the folder read, or be empty to only mark mail as read",
            ));
        }
        Ok(())
    }

    /// A label for logs and the admin page: `user@host:port/folder`.
    pub fn label(&self) -> String {
        format!(
            "{} at {}:{}/{}",
            self.user, self.host, self.port, self.folder
        )
    }
}

/// Why the mailbox could not be worked, in words an admin can act on.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("the IMAP server is not allowed: {0}")]
    Refused(String),
    #[error(
        "cannot reach {0}: {1}; check the host and port, and that this server may connect to it"
    )]
    Connect(String, String),
    #[error(
        "TLS with {0} failed: {1}; check the host name matches its certificate (or set `mail_imap_ca_file` for a private CA)"
    )]
    Tls(String, String),
    #[error(
        "the server refused the login for {0}: {1}; check the user and password (Gmail and Microsoft 365 need an app password)"
    )]
    Login(String, String),
    #[error("cannot open the folder `{0}`: {1}; check its name (folders are case-sensitive)")]
    Folder(String, String),
    #[error(
        "the server does not support MOVE, so mail cannot be moved to `{0}`; leave \"Move to\" empty to only mark mail as read"
    )]
    NoMove(String),
    #[error("the mail server did not answer within {0} s")]
    Timeout(u64),
    #[error("the mail server answered unexpectedly: {0}")]
    Protocol(String),
}

impl From<async_imap::error::Error> for ImapError {
    fn from(e: async_imap::error::Error) -> Self {
        ImapError::Protocol(e.to_string())
    }
}

/// A message found in the mailbox.
#[derive(Debug)]
pub enum Fetched {
    /// The whole message, as it was sent.
    Mail(Vec<u8>),
    /// Larger than the limit: not fetched.
    TooLarge(u64),
    /// Gone meanwhile (another client moved or deleted it).
    Gone,
}

type Stream = TlsStream<TcpStream>;

/// A logged-in connection with the folder selected.
pub struct Mailbox {
    session: Session<Stream>,
    done_folder: Option<String>,
    timeout: Duration,
}

/// Within `timeout`, or [`ImapError::Timeout`].
async fn within<T>(
    timeout: Duration,
    work: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(ImapError::Timeout(timeout.as_secs().max(1))))
}

/// What TLS trusts: the CAs of `ca_pem` when given, else the system's.
fn tls_connector(ca_pem: Option<&[u8]>) -> Result<TlsConnector, String> {
    crate::adapter::install_tls();
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the CA file is not PEM: {e}"))?;
                roots.add(cert).map_err(|e| format!("the CA file: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One unreadable system certificate does not stop the rest.
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Mailbox {
    /// Connects, logs in and selects the folder, within `timeout` for each
    /// step; `ca_pem` replaces the system's roots.
    pub async fn open(
        settings: &ImapSettings,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
        policy: &Policy,
    ) -> Result<Mailbox, ImapError> {
        let host = settings.host.trim().to_string();
        let address = format!("{host}:{}", settings.port);
        // An admin names the server: the egress policy decides where it
        // may be (no internal address unless the operator listed it), and
        // the connection goes to the very addresses it judged.
        let addresses = within(timeout, async {
            policy
                .socket_addresses(&host, settings.port)
                .await
                .map_err(|e| ImapError::Refused(e.to_string()))
        })
        .await?;
        let connector = tls_connector(ca_pem).map_err(|e| ImapError::Tls(address.clone(), e))?;
        let name = ServerName::try_from(host.clone())
            .map_err(|e| ImapError::Tls(address.clone(), e.to_string()))?;
        let tcp = within(timeout, async {
            TcpStream::connect(&addresses[..])
                .await
                .map_err(|e| ImapError::Connect(address.clone(), e.to_string()))
        })
        .await?;
        let tls = |tcp: TcpStream| {
            let connector = connector.clone();
            let name = name.clone();
            let address = address.clone();
            async move {
                connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ImapError::Tls(address, e.to_string()))
            }
        };
        let stream = match settings.security {
            ImapSecurity::Tls => within(timeout, tls(tcp)).await?,
            ImapSecurity::StartTls => {
                let mut plain = Client::new(tcp);
                within(timeout, async {
                    greeting(&mut plain, &address).await?;
                    plain
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| {
                            ImapError::Tls(address.clone(), format!("STARTTLS refused: {e}"))
                        })
                })
                .await?;
                within(timeout, tls(plain.into_inner())).await?
            }
        };
        let mut client = Client::new(stream);
        if settings.security == ImapSecurity::Tls {
            within(timeout, greeting(&mut client, &address)).await?;
        }
        let user = settings.user.trim();
        let mut session = within(timeout, async {
            client
                .login(user, &settings.password)
                .await
                .map_err(|(e, _)| ImapError::Login(user.to_string(), e.to_string()))
        })
        .await?;
        let folder = settings.folder.trim();
        within(timeout, async {
            session
                .select(folder)
                .await
                .map_err(|e| ImapError::Folder(folder.to_string(), e.to_string()))
        })
        .await?;
        let done_folder = Some(settings.done_folder.trim().to_string()).filter(|f| !f.is_empty());
        if let Some(done) = &done_folder {
            let capabilities = within(timeout, async { Ok(session.capabilities().await?) }).await?;
            if !capabilities.has_str("MOVE") {
                return Err(ImapError::NoMove(done.clone()));
            }
        }
        Ok(Mailbox {
            session,
            done_folder,
            timeout,
        })
    }

    /// The UIDs of mail not yet taken (not `\Seen`, not deleted), oldest
    /// first, at most `max`.
    pub async fn waiting(&mut self, max: usize) -> Result<Vec<u32>, ImapError> {
        let session = &mut self.session;
        let mut uids: Vec<u32> = within(self.timeout, async {
            Ok(session
                .uid_search("UNSEEN UNDELETED")
                .await?
                .into_iter()
                .collect())
        })
        .await?;
        uids.sort_unstable();
        uids.truncate(max);
        Ok(uids)
    }

    /// The whole message `uid`, unless it is larger than `limit` bytes;
    /// fetched with `BODY.PEEK[]` so it stays unread until taken.
    pub async fn fetch(&mut self, uid: u32, limit: u64) -> Result<Fetched, ImapError> {
        let session = &mut self.session;
        within(self.timeout, async {
            let sizes: Vec<_> = session
                .uid_fetch(uid.to_string(), "RFC822.SIZE")
                .await?
                .try_collect()
                .await?;
            let Some(size) = sizes
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.size)
            else {
                return Ok(Fetched::Gone);
            };
            if u64::from(size) > limit {
                return Ok(Fetched::TooLarge(u64::from(size)));
            }
            let bodies: Vec<_> = session
                .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                .await?
                .try_collect()
                .await?;
            Ok(bodies
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
                .map_or(Fetched::Gone, |body| Fetched::Mail(body.to_vec())))
        })
        .await
    }

    /// Marks `uid` taken: read, and moved to the done folder if there is one.
    pub async fn mark_taken(&mut self, uid: u32) -> Result<(), ImapError> {
        let session = &mut self.session;
        let done_folder = self.done_folder.as_deref();
        within(self.timeout, async {
            let _: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await?;
            if let Some(folder) = done_folder {
                session
                    .uid_mv(uid.to_string(), folder)
                    .await
                    .map_err(|e| ImapError::Folder(folder.to_string(), e.to_string()))?;
            }
            Ok(())
        })
        .await
    }

    /// Says goodbye; a server that does not answer is left as it is.
    pub async fn close(mut self) {
        let session = &mut self.session;
        let _ = within(self.timeout, async { Ok(session.logout().await?) }).await;
    }
}

/// Reads the server's greeting (`* OK …`).
async fn greeting<T>(client: &mut Client<T>, address: &str) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Connect(
            address.to_string(),
            "the server closed the connection before greeting".into(),
        )),
        Err(e) => Err(ImapError::Connect(address.to_string(), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> ImapSettings {
        ImapSettings {
            enabled: true,
            host: "outlook.office365.com".into(),
            user: "support@example.com".into(),
            password: "app password".into(),
            ..ImapSettings::default()
        }
    }

    #[test]
    fn a_usable_mailbox_passes_and_a_disabled_one_is_not_checked() {
        assert_eq!(enabled().check(), Ok(()));
        let off = ImapSettings {
            host: "not a host".into(),
            ..ImapSettings::default()
        };
        assert_eq!(off.check(), Ok(()));
    }

    #[test]
    fn each_bad_setting_names_its_field() {
        type Spoil = fn(&mut ImapSettings);
        let cases: Vec<(&str, Spoil)> = vec![
            ("host", |s| s.host = String::new()),
            ("host", |s| s.host = "imaps://mail.example.com".into()),
            ("host", |s| s.host = "mail.example.com:993".into()),
            ("port", |s| s.port = 0),
            ("user", |s| s.user = "  ".into()),
            ("folder", |s| s.folder = String::new()),
            ("folder", |s| s.folder = "Boîte".into()),
            ("done_folder", |s| s.done_folder = "INBOX".into()),
            ("done_folder", |s| {
                s.done_folder = "Done\r\nA1 LOGOUT".into()
            }),
        ];
        for (field, tweak) in cases {
            let mut settings = enabled();
            tweak(&mut settings);
            let refused = settings.check().expect_err(field);
            assert_eq!(refused.field, field, "{settings:?}");
            assert!(!refused.message.is_empty());
        }
    }

    #[test]
    fn the_password_never_prints() {
        let printed = format!("{:?}", enabled());
        assert!(!printed.contains("app password"), "{printed}");
    }
}
