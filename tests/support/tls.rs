//! TLS servers for tests, started by the test on this machine: test
//! certificates made with rcgen (a CA and a leaf for `localhost` only, so
//! that `127.0.0.1` is a wrong host name, and a second CA that signed
//! nothing), a private PostgreSQL cluster, a `redis-server` with a TLS
//! port and a private MariaDB, each on a free port and in a temporary
//! directory. PostgreSQL and MariaDB refuse to run as root: when the tests
//! do, they run as the `postgres` and `mysql` users.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The password of every test server's user.
pub const PASSWORD: &str = "tls-test-pass-7Qx";

/// Certificate files in a temporary directory.
pub struct Certs {
    _dir: tempfile::TempDir,
    /// The CA that signed the servers' certificate.
    pub ca: PathBuf,
    /// Another CA, which signed nothing the servers show.
    pub other_ca: PathBuf,
    /// The servers' certificate (for `localhost` only) and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Certs {
    pub fn make() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let (ca_params, ca_key, ca_pem) = ca("Careline test CA");
        let (_, _, other_pem) = ca("Somebody else's CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Certs {
            ca: write("ca.pem", &ca_pem),
            other_ca: write("other-ca.pem", &other_pem),
            cert: write("server.pem", &leaf_pem),
            key: write("server.key", &leaf_key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// Whether this process runs as root (then servers run as their own user).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program` run as `user` when the tests run as root, else as they do.
fn command_as(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", user, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Gives `path` (recursively) to `user` when running as root.
fn give_to(user: &str, path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", &format!("{user}:")])
            .arg(path)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown {user} {}", path.display());
    }
}

/// A temporary directory others can enter (the servers' users).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Copies the server's certificate and key into `dir` (the key private).
fn install_server_cert(certs: &Certs, dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    let ca = dir.join("ca.pem");
    std::fs::copy(&certs.cert, &cert).unwrap();
    std::fs::copy(&certs.key, &key).unwrap();
    std::fs::copy(&certs.ca, &ca).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    (cert, key)
}

/// Waits until something listens on `port` of 127.0.0.1.
pub fn wait_for_port(port: u16, what: &str, log: &Path) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not listen on port {port}:\n{log}");
}

/// The newest PostgreSQL's `bin` directory, if one is installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

/// A private PostgreSQL cluster with TLS (or, after
/// [`PrivatePostgres::restart_without_tls`], without).
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivatePostgres {
    /// Starts one, or says why not (None); under CI=true that is a failure.
    pub fn start(test: &str, certs: &Certs) -> Option<PrivatePostgres> {
        let Some(bin) = postgres_bin() else {
            super::cannot_run(test, "PostgreSQL's initdb is not installed");
            return None;
        };
        if is_root() && Command::new("id").arg("postgres").output().is_err() {
            super::cannot_run(test, "running as root and there is no `postgres` user");
            return None;
        }
        let dir = shared_tempdir();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("password");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        give_to("postgres", dir.path());
        let out = command_as("postgres", &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "careline",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        install_server_cert(certs, &data);
        write_hba(&data, true);
        give_to("postgres", dir.path());
        let postgres = PrivatePostgres {
            dir,
            bin,
            port: super::free_port(),
        };
        postgres.pg_ctl("start", true);
        Some(postgres)
    }

    fn pg_ctl(&self, action: &str, tls: bool) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let options = format!(
            "-c port={} -c listen_addresses=localhost -c unix_socket_directories={} \
             -c fsync=off -c ssl={} -c ssl_cert_file=server.pem -c ssl_key_file=server.key",
            self.port,
            self.dir.path().display(),
            if tls { "on" } else { "off" },
        );
        let out = command_as("postgres", &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "-m", "immediate", "-o", &options, action])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The URL of its `postgres` database as `host`, with `query`.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://careline:{PASSWORD}@{host}:{}/postgres?{query}",
            self.port
        )
    }

    /// Restarts it with TLS off: a server that answers "no TLS".
    pub fn restart_without_tls(&self) {
        write_hba(&self.dir.path().join("data"), false);
        self.pg_ctl("restart", false);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = command_as("postgres", &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Lets in password logins over TCP: over TLS only when `tls_only`.
fn write_hba(data: &Path, tls_only: bool) {
    let kind = if tls_only { "hostssl" } else { "host" };
    std::fs::write(
        data.join("pg_hba.conf"),
        format!(
            "local all all trust\n\
             {kind} all all 127.0.0.1/32 scram-sha-256\n\
             {kind} all all ::1/128 scram-sha-256\n"
        ),
    )
    .unwrap();
}

/// A child process killed when dropped.
pub struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-server` with only a TLS port, requiring [`PASSWORD`].
pub fn start_tls_redis(test: &str, certs: &Certs) -> Option<Server> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        super::cannot_run(test, "redis-server is not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = super::free_port();
    let log = dir.path().join("log");
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(&certs.cert)
        .arg("--tls-key-file")
        .arg(&certs.key)
        .arg("--tls-ca-cert-file")
        .arg(&certs.ca)
        .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--logfile")
        .arg(&log)
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let server = Server {
        child,
        _dir: dir,
        port,
    };
    wait_for_port(port, "redis-server (TLS)", &log);
    Some(server)
}

/// A private MariaDB with a `careline` user (password [`PASSWORD`]) and
/// database, TLS on when `tls`.
pub fn start_mariadb(test: &str, certs: &Certs, tls: bool) -> Option<Server> {
    let found = |name: &str| {
        Command::new("which")
            .arg(name)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let (Some(install), Some(server)) = (found("mariadb-install-db"), found("mariadbd")) else {
        super::cannot_run(
            test,
            "MariaDB (mariadb-install-db, mariadbd) is not installed",
        );
        return None;
    };
    let install = PathBuf::from(String::from_utf8_lossy(&install.stdout).trim());
    let server = PathBuf::from(String::from_utf8_lossy(&server.stdout).trim());
    let dir = shared_tempdir();
    let data = dir.path().join("data");
    // Its own temporary directory: two installs side by side in /tmp
    // can pick the same name for a temporary table.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    give_to("mysql", &tmp);
    let tmpdir = format!("--tmpdir={}", tmp.display());
    let user: &[&str] = if is_root() { &["--user=mysql"] } else { &[] };
    let out = Command::new(install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=socket", "--skip-test-db"])
        .arg(&tmpdir)
        .args(user)
        .output()
        .expect("mariadb-install-db runs");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    install_server_cert(certs, dir.path());
    let init = dir.path().join("init.sql");
    std::fs::write(
        &init,
        format!(
            "CREATE DATABASE IF NOT EXISTS careline;\n\
             CREATE USER IF NOT EXISTS 'careline'@'%' IDENTIFIED BY '{PASSWORD}'{};\n\
             GRANT ALL ON careline.* TO 'careline'@'%';\n",
            // With TLS on, only TLS logins are let in.
            if tls { " REQUIRE SSL" } else { "" }
        ),
    )
    .unwrap();
    if is_root() {
        give_to("mysql", dir.path());
    }
    let port = super::free_port();
    let log = dir.path().join("error.log");
    let mut cmd = Command::new(server);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.path().join("sock").display()))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .arg(format!("--log-error={}", log.display()))
        .arg(format!("--init-file={}", init.display()))
        .arg(format!("--port={port}"))
        .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
        .args(["--innodb-buffer-pool-size=16M", "--skip-log-bin"])
        .arg(&tmpdir)
        .args(user);
    if tls {
        cmd.arg(format!(
            "--ssl-cert={}",
            dir.path().join("server.pem").display()
        ))
        .arg(format!(
            "--ssl-key={}",
            dir.path().join("server.key").display()
        ))
        .arg(format!("--ssl-ca={}", dir.path().join("ca.pem").display()));
    } else {
        cmd.arg("--skip-ssl");
    }
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd starts");
    let server = Server {
        child,
        _dir: dir,
        port,
    };
    wait_for_port(port, "mariadbd", &log);
    Some(server)
}
