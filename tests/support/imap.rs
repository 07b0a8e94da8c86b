//! A real IMAP server for tests: Dovecot (Debian's `dovecot-imapd`) with a
//! throw-away configuration in a temporary directory, on two free loopback
//! ports (STARTTLS and implicit TLS) with the test certificates of
//! `support::tls`, and one mailbox user whose Maildir lives there too. Mail
//! is delivered with IMAP APPEND, as a mail client or a delivery agent
//! would put it there; the test reads flags and folders back the same way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use async_imap::Session;
use futures_util::TryStreamExt;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::tls::Certs;

/// The mailbox's user and password.
pub const USER: &str = "support@shop.example";
pub const PASSWORD: &str = "imap-test-pass 4Kv";

pub struct ImapServer {
    child: Child,
    dir: tempfile::TempDir,
    pub starttls_port: u16,
    pub tls_port: u16,
    ca: PathBuf,
}

impl Drop for ImapServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot() -> Option<PathBuf> {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The uid and gid mail is stored as: this user's, or `nobody`'s when the
/// tests run as root (Dovecot refuses to store mail as root).
fn mail_owner() -> (u32, u32, Option<String>) {
    let id = |flag: &str| {
        Command::new("id")
            .arg(flag)
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(0)
    };
    let (uid, gid) = (id("-u"), id("-g"));
    if uid == 0 {
        (65534, 65534, None)
    } else {
        let name = Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        (uid, gid, name)
    }
}

impl ImapServer {
    /// Starts Dovecot, or says why it cannot (a failure under `CI=true`).
    pub fn start(test: &str, certs: &Certs) -> Option<ImapServer> {
        let Some(dovecot) = dovecot() else {
            super::cannot_run(
                test,
                "Dovecot is not installed (apt-get install dovecot-imapd; .ci/run does)",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // The mail process runs as the mail owner: it must reach the home.
        set_mode(root, 0o755);
        let home = root.join("home");
        std::fs::create_dir(&home).unwrap();
        set_mode(&home, 0o777);
        std::fs::write(root.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        let (uid, gid, user) = mail_owner();
        // Not root: every Dovecot process runs as this user.
        let unprivileged = match &user {
            Some(name) => format!("default_internal_user = {name}\ndefault_login_user = {name}\n"),
            None => String::new(),
        };
        let starttls_port = super::free_port();
        let tls_port = super::free_port();
        let r = root.display();
        let config = format!(
            "base_dir = {r}/run\n\
             state_dir = {r}/state\n\
             instance_name = careline-test-{tls_port}\n\
             log_path = {r}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             {unprivileged}\
             ssl = required\n\
             ssl_cert = <{cert}\n\
             ssl_key = <{key}\n\
             auth_mechanisms = plain login\n\
             disable_plaintext_auth = yes\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={r}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
             service imap-login {{\n  chroot =\n  \
               inet_listener imap {{\n    address = 127.0.0.1\n    port = {starttls_port}\n  }}\n  \
               inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n",
            cert = certs.cert.display(),
            key = certs.key.display(),
        );
        let config_file = root.join("dovecot.conf");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        let server = ImapServer {
            child,
            starttls_port,
            tls_port,
            ca: certs.ca.clone(),
            dir,
        };
        let log = server.dir.path().join("dovecot.log");
        super::tls::wait_for_port(tls_port, "dovecot (IMAPS)", &log);
        super::tls::wait_for_port(starttls_port, "dovecot (IMAP)", &log);
        Some(server)
    }

    /// What Dovecot logged (to explain a failure).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// A session of the mailbox's user over implicit TLS, as a mail client.
    pub async fn session(&self) -> Session<TlsStream<TcpStream>> {
        careline::adapter::install_tls();
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&self.ca).unwrap();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(("127.0.0.1", self.tls_port))
            .await
            .unwrap();
        let tls = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tls);
        client.read_response().await.unwrap().expect("a greeting");
        client
            .login(USER, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap_or_else(|e| panic!("login: {e}\n{}", self.log()))
    }

    /// Delivers `raw` into `folder` (made if missing), unread.
    pub async fn deliver(&self, folder: &str, raw: &str) {
        let mut session = self.session().await;
        let _ = session.create(folder).await;
        session
            .append(
                folder,
                None,
                None,
                raw.replace('\n', "\r\n").replace("\r\r\n", "\r\n"),
            )
            .await
            .unwrap_or_else(|e| panic!("append: {e}\n{}", self.log()));
        session.logout().await.unwrap();
    }

    /// Makes `folder` (for taken mail to move to).
    pub async fn create_folder(&self, folder: &str) {
        let mut session = self.session().await;
        session.create(folder).await.unwrap();
        session.logout().await.unwrap();
    }

    /// Each message in `folder`: its flags, and its Message-ID.
    pub async fn messages(&self, folder: &str) -> Vec<(Vec<String>, String)> {
        let mut session = self.session().await;
        let selected = session.select(folder).await.unwrap();
        let mut found = Vec::new();
        if selected.exists > 0 {
            let fetched: Vec<_> = session
                .fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            for f in &fetched {
                let flags = f.flags().map(|flag| format!("{flag:?}")).collect();
                let header = String::from_utf8_lossy(f.header().unwrap_or_default()).into_owned();
                let id = header
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Message-ID:")
                            .or_else(|| l.strip_prefix("Message-Id:"))
                    })
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                found.push((flags, id));
            }
        }
        session.logout().await.unwrap();
        found
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
