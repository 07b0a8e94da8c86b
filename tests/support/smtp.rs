//! A real SMTP server for tests: Python's aiosmtpd (PyPI, installed by
//! `.ci/run` into ~/.cache/careline-aiosmtpd) running
//! `tests/support/smtp_server.py` on a free loopback port, saving every
//! message it accepts; stopped on drop.
//!
//! The interpreter is `CARELINE_TEST_AIOSMTPD` (the venv's `python`), or
//! that venv's. Tests say why they skip when it is missing; under
//! `CI=true` that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const AIOSMTPD_VAR: &str = "CARELINE_TEST_AIOSMTPD";

fn find_python() -> Option<PathBuf> {
    if let Ok(path) = std::env::var(AIOSMTPD_VAR) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let venv = PathBuf::from(std::env::var_os("HOME")?).join(".cache/careline-aiosmtpd/bin/python");
    venv.is_file().then_some(venv)
}

/// How the server is set up.
#[derive(Default)]
pub struct Options<'a> {
    /// The certificate and key it shows: STARTTLS offered and required,
    /// or TLS from the first byte with `implicit_tls`.
    pub tls: Option<(&'a Path, &'a Path)>,
    pub implicit_tls: bool,
    /// AUTH required with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
    /// Its answers to the first DATA commands ("451 4.3.0 …"); then 250.
    pub replies: &'a [&'a str],
}

/// A message the server accepted.
#[derive(Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// Who logged in with AUTH, if anyone.
    pub login: Option<String>,
    /// The message as it came over the wire.
    pub raw: Vec<u8>,
}

impl Received {
    /// The header lines (before the first empty line), unfolded.
    pub fn header_lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => lines.push(line.to_string()),
            }
        }
        lines
    }

    /// The raw values of every header named `name` (any case).
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.header_lines()
            .into_iter()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
            .collect()
    }
}

pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpServer {
    pub async fn start(test: &str, options: Options<'_>) -> Option<SmtpServer> {
        let Some(python) = find_python() else {
            let why = format!(
                "aiosmtpd not found (set {AIOSMTPD_VAR} to a python with aiosmtpd, or \
                 `python3 -m venv ~/.cache/careline-aiosmtpd && ~/.cache/careline-aiosmtpd/bin/pip install aiosmtpd`)"
            );
            super::cannot_run(test, &why);
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path().join("out"));
        if let Some((cert, key)) = options.tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
            if options.implicit_tls {
                command.arg("--implicit-tls");
            }
        }
        if let Some((user, password)) = options.auth {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        for reply in options.replies {
            command.args(["--reply", reply]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let server = SmtpServer { port, dir, child };
        for _ in 0..150 {
            if server.out().join("ready").exists()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the SMTP server ({} {}) did not listen on {port}",
            python.display(),
            script.display()
        );
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The server's answers to DATA so far, in order ("250 …", "451 …").
    pub fn attempts(&self) -> Vec<String> {
        std::fs::read_to_string(self.out().join("attempts"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The messages accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out())
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .into_iter()
            .map(|json| {
                let meta: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
                Received {
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_string(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    tls: meta["tls"].as_bool().unwrap_or(false),
                    login: meta["login"].as_str().map(str::to_string),
                    raw: std::fs::read(json.with_extension("eml")).unwrap(),
                }
            })
            .collect()
    }

    /// Waits until `n` messages were accepted.
    pub async fn wait_received(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the SMTP server accepted {} messages, not {n}; it answered {:?}",
            self.received().len(),
            self.attempts()
        );
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
