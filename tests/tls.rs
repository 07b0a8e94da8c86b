//! TLS to every service Careline connects to, against real servers this
//! test starts on this machine (tests/support/tls.rs): PostgreSQL
//! (`sslmode`, `sslrootcert`), Redis (`rediss://`, `redis_ca_file`) and
//! MariaDB (`ssl-mode`, `ssl-ca`). Each connects when the server's
//! certificate is signed by the CA it trusts and names the host it dialled;
//! refuses another CA, the system's roots (which never signed the test CA)
//! and a wrong host name, each with a clear reason; and, when TLS is
//! required, refuses a server without TLS rather than falling back to
//! plain text. The servers accept only TLS logins, so a connection that
//! succeeds proves it was encrypted. At the command line, a failure is
//! one line naming the setting, without the password.

mod support;

use std::process::Command;
use std::time::Duration;

use careline::bus::{Bus, BusError, BusEvent, Envelope, RedisBus, Topic};
use careline::connect_failure::Failure;
use careline::model::ConversationId;
use careline::store::Store;
use support::tls::{Certs, PASSWORD, PrivatePostgres, start_mariadb, start_tls_redis};

/// Opens the store at `url`; the error in words when it cannot.
async fn open(url: &str) -> Result<(), String> {
    match Store::open(url, 2).await {
        Ok(store) => {
            store.ping().await.map_err(|e| e.to_string())?;
            store.close().await;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

fn refused(result: Result<(), String>, case: &str) -> String {
    let error = result.expect_err(case);
    assert!(
        !error.contains(PASSWORD),
        "{case}: the password leaked: {error}"
    );
    error
}

/// `careline migrate` or `serve` with `env`: its exit status and its
/// standard error.
fn careline(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careline"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CARELINE_DATA_DIR", dir.path())
        .env("CARELINE_CONFIG", dir.path().join("careline.toml"))
        .env("CARELINE_BIND", "127.0.0.1:0")
        .env("CARELINE_LOG", "warn")
        .current_dir(dir.path())
        .args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.output().expect("careline runs");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A start that fails says so in one line, naming `setting`, never the password.
fn one_clear_line(status: std::process::ExitStatus, stderr: &str, setting: &str, reason: &str) {
    assert!(!status.success(), "the start failed: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].starts_with("careline: "), "{stderr}");
    assert!(lines[0].contains(setting), "names {setting}: {stderr}");
    assert!(lines[0].contains(reason), "says {reason}: {stderr}");
    assert!(!stderr.contains(PASSWORD), "the password leaked: {stderr}");
}

#[tokio::test]
async fn postgres_checks_the_ca_and_the_host_and_never_falls_back_to_plain_text() {
    let test = "tls::postgres";
    let certs = Certs::make();
    let Some(pg) = PrivatePostgres::start(test, &certs) else {
        return;
    };
    let ca = certs.ca.display().to_string();
    let other_ca = certs.other_ca.display().to_string();

    // The right CA, the name on the certificate: connected (and over TLS,
    // the only way this server lets anyone in).
    let verify_full = format!("sslmode=verify-full&sslrootcert={ca}");
    open(&pg.url("localhost", &verify_full))
        .await
        .expect("verify-full with the right CA");
    // verify-ca checks the CA and not the name; require checks nothing
    // (as in libpq) unless a CA is named.
    open(&pg.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")))
        .await
        .expect("verify-ca by address");
    open(&pg.url("127.0.0.1", "sslmode=require"))
        .await
        .expect("require without a CA encrypts without checking");

    // Wrong CA, the system's roots, wrong host name: refused, each said so.
    let wrong_ca = format!("sslmode=verify-full&sslrootcert={other_ca}");
    let error = refused(open(&pg.url("localhost", &wrong_ca)).await, "wrong CA");
    assert!(error.contains("TLS: bad certificate"), "{error}");
    assert!(error.contains("sslrootcert="), "says what to set: {error}");
    let error = refused(
        open(&pg.url("localhost", "sslmode=verify-full")).await,
        "system roots",
    );
    assert!(
        error.contains("not signed by a CA Careline trusts"),
        "{error}"
    );
    let error = refused(open(&pg.url("127.0.0.1", &verify_full)).await, "wrong host");
    assert!(error.contains("TLS: wrong host name"), "{error}");
    // A CA named with `require` is checked, as libpq does.
    let error = refused(
        open(&pg.url(
            "localhost",
            &format!("sslmode=require&sslrootcert={other_ca}"),
        ))
        .await,
        "require with the wrong CA",
    );
    assert!(error.contains("TLS: bad certificate"), "{error}");

    // Not TLS problems, as clearly.
    let wrong_password = pg
        .url("localhost", &verify_full)
        .replace(PASSWORD, "not-the-password");
    let error = refused(open(&wrong_password).await, "wrong password");
    assert!(error.contains("authentication failed"), "{error}");
    let error = refused(
        open(&pg.url("localhost", "sslmode=allow")).await,
        "sslmode=allow",
    );
    assert!(error.contains("sslmode=allow is not supported"), "{error}");
    let error = refused(
        open(&pg.url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ))
        .await,
        "missing CA file",
    );
    assert!(error.contains("cannot read sslrootcert"), "{error}");
    let error = refused(
        open(&format!(
            "postgres://careline:{PASSWORD}@no-such-host.invalid/x?sslmode=require"
        ))
        .await,
        "unknown host",
    );
    assert!(error.contains("DNS"), "{error}");

    // At the command line: one line naming the setting.
    let (status, stderr) = careline(
        &["migrate"],
        &[("DATABASE_URL", &pg.url("127.0.0.1", &verify_full))],
    );
    one_clear_line(status, &stderr, "DATABASE_URL", "TLS: wrong host name");

    // The same server without TLS: whatever requires TLS is refused, and
    // nothing is sent in plain text; only prefer and disable connect.
    pg.restart_without_tls();
    for mode in ["require", "verify-ca", "verify-full"] {
        let error = refused(
            open(&pg.url("localhost", &format!("sslmode={mode}&sslrootcert={ca}"))).await,
            mode,
        );
        assert!(
            error.contains("TLS: the server has no TLS"),
            "{mode}: {error}"
        );
    }
    let error = refused(
        open(&pg.url("localhost", "sslmode=require")).await,
        "require without a CA",
    );
    assert!(error.contains("TLS: the server has no TLS"), "{error}");
    open(&pg.url("localhost", "sslmode=prefer"))
        .await
        .expect("prefer may use plain text");
    open(&pg.url("localhost", "sslmode=disable"))
        .await
        .expect("disable");
}

async fn redis(url: &str, ca: Option<&std::path::Path>) -> Result<RedisBus, BusError> {
    let pem = ca.map(|file| std::fs::read(file).unwrap());
    RedisBus::connect_trusting(url, pem.as_deref()).await
}

fn redis_refused(result: Result<RedisBus, BusError>, case: &str) -> Failure {
    match result {
        Ok(_) => panic!("{case}: connected"),
        Err(BusError::Unreachable(failure)) => {
            assert!(!failure.to_string().contains(PASSWORD), "{case}: {failure}");
            failure
        }
        Err(e) => panic!("{case}: not a connection failure: {e}"),
    }
}

#[tokio::test]
async fn redis_over_tls_checks_the_ca_and_the_host_for_publisher_and_subscriber() {
    let test = "tls::redis";
    let certs = Certs::make();
    let Some(server) = start_tls_redis(test, &certs) else {
        return;
    };
    let url = |host: &str| format!("rediss://:{PASSWORD}@{host}:{}", server.port);

    // Two instances over TLS: one subscribes, the other publishes, both
    // connections of each encrypted (the server has no plain port).
    let a = redis(&url("localhost"), Some(&certs.ca))
        .await
        .expect("rediss:// with the right CA");
    let b = redis(&url("localhost"), Some(&certs.ca))
        .await
        .expect("a second instance");
    let topic = Topic::Public(ConversationId(7));
    let mut events = a.events().unwrap();
    a.subscribe(topic).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.publish(topic, Envelope::frame("{\"type\":\"ping\"}".into()))
        .await
        .expect("published over TLS");
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("delivered over TLS")
        .unwrap();
    assert!(
        matches!(event, BusEvent::Message { topic: t, .. } if t == topic),
        "{event:?}"
    );
    assert_eq!(
        b.count_in_window("tls", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap()
            .0,
        1
    );

    let wrong_ca = redis_refused(
        redis(&url("localhost"), Some(&certs.other_ca)).await,
        "wrong CA",
    );
    assert_eq!(wrong_ca, Failure::UnknownCa);
    let system = redis_refused(redis(&url("localhost"), None).await, "system roots");
    assert_eq!(system, Failure::UnknownCa);
    let wrong_host = redis_refused(
        redis(&url("127.0.0.1"), Some(&certs.ca)).await,
        "wrong host",
    );
    assert!(
        matches!(wrong_host, Failure::WrongHost(_)),
        "{wrong_host:?}"
    );
    let password = redis_refused(
        redis(
            &url("localhost").replace(PASSWORD, "not-the-password"),
            Some(&certs.ca),
        )
        .await,
        "wrong password",
    );
    assert!(matches!(password, Failure::Auth(_)), "{password:?}");

    // rediss:// to a Redis without TLS fails; it is never tried in plain
    // text. (Such a server waits for the end of a line that a TLS hello
    // seldom holds, so this is mostly a time-out.)
    if let Some(plain) = support::redis::PrivateRedis::start(test).await {
        let no_tls = redis_refused(
            redis(
                &format!("rediss://localhost:{}", plain.port),
                Some(&certs.ca),
            )
            .await,
            "server without TLS",
        );
        assert!(no_tls.is_tls() || no_tls == Failure::Timeout, "{no_tls:?}");
    }

    // At the start of the server: one line naming the settings.
    let ca = certs.ca.display().to_string();
    let (status, stderr) = careline(
        &["serve"],
        &[
            ("REDIS_URL", &url("127.0.0.1")),
            ("CARELINE_REDIS_CA_FILE", &ca),
        ],
    );
    one_clear_line(status, &stderr, "REDIS_URL", "TLS: wrong host name");
    assert!(stderr.contains("redis_ca_file"), "{stderr}");
    let (status, stderr) = careline(&["serve"], &[("REDIS_URL", &url("localhost"))]);
    one_clear_line(
        status,
        &stderr,
        "REDIS_URL",
        "not signed by a CA Careline trusts",
    );
}

/// Opens a MariaDB URL through `Store::open` once the store has a MySQL
/// backend; until then at the pool level (sqlx through the same TLS stack),
/// the failure classified as `Store::open` does.
async fn open_mysql(url: &str) -> Result<(), String> {
    match open(url).await {
        Err(e) if e.contains("unsupported scheme") => {
            careline::install_tls();
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| careline::connect_failure::classify(&e).to_string())?;
            pool.close().await;
            Ok(())
        }
        other => other,
    }
}

#[tokio::test]
async fn mariadb_checks_the_ca_and_the_host_and_never_falls_back_to_plain_text() {
    let test = "tls::mariadb";
    let certs = Certs::make();
    // Two servers, started side by side: one with TLS, one without.
    let (with_tls, without_tls) = std::thread::scope(|s| {
        let with = s.spawn(|| start_mariadb(test, &certs, true));
        let without = s.spawn(|| start_mariadb(test, &certs, false));
        (with.join().unwrap(), without.join().unwrap())
    });
    let (Some(with_tls), Some(without_tls)) = (with_tls, without_tls) else {
        return;
    };
    let ca = certs.ca.display().to_string();
    let other_ca = certs.other_ca.display().to_string();
    let url = |host: &str, port: u16, query: &str| {
        format!("mysql://careline:{PASSWORD}@{host}:{port}/careline?{query}")
    };
    let port = with_tls.port;

    let identity = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}");
    open_mysql(&url("localhost", port, &identity))
        .await
        .expect("VERIFY_IDENTITY with the right CA");
    open_mysql(&url(
        "127.0.0.1",
        port,
        &format!("ssl-mode=VERIFY_CA&ssl-ca={ca}"),
    ))
    .await
    .expect("VERIFY_CA by address");

    let error = refused(
        open_mysql(&url(
            "localhost",
            port,
            &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={other_ca}"),
        ))
        .await,
        "wrong CA",
    );
    assert!(error.contains("TLS: bad certificate"), "{error}");
    let error = refused(
        open_mysql(&url("localhost", port, "ssl-mode=VERIFY_IDENTITY")).await,
        "system roots",
    );
    assert!(
        error.contains("not signed by a CA Careline trusts"),
        "{error}"
    );
    let error = refused(
        open_mysql(&url("127.0.0.1", port, &identity)).await,
        "wrong host",
    );
    assert!(error.contains("TLS: wrong host name"), "{error}");
    let error = refused(
        open_mysql(&url("localhost", port, &identity).replace(PASSWORD, "not-the-password")).await,
        "wrong password",
    );
    assert!(error.contains("authentication failed"), "{error}");

    // Through the store's own connection (once it has a MySQL backend):
    // a CA named with REQUIRED is checked, and at the command line a
    // failure is one line naming the setting.
    if careline::store::Backend::from_url("mysql://x").is_some() {
        let error = refused(
            open_mysql(&url(
                "localhost",
                port,
                &format!("ssl-mode=REQUIRED&ssl-ca={other_ca}"),
            ))
            .await,
            "REQUIRED with the wrong CA",
        );
        assert!(error.contains("TLS: bad certificate"), "{error}");
        let (status, stderr) = careline(
            &["migrate"],
            &[("DATABASE_URL", &url("127.0.0.1", port, &identity))],
        );
        one_clear_line(status, &stderr, "DATABASE_URL", "TLS: wrong host name");
    } else {
        eprintln!("{test}: no MySQL backend in the store yet; checked at the pool level");
    }

    let plain = without_tls.port;
    for mode in ["REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"] {
        let error = refused(
            open_mysql(&url(
                "localhost",
                plain,
                &format!("ssl-mode={mode}&ssl-ca={ca}"),
            ))
            .await,
            mode,
        );
        assert!(
            error.contains("TLS: the server has no TLS"),
            "{mode}: {error}"
        );
    }
    open_mysql(&url("localhost", plain, "ssl-mode=PREFERRED"))
        .await
        .expect("PREFERRED may use plain text");
}
