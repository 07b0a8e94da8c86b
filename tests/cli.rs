//! The `careline` command itself: configuration errors, migrations, creating
//! users with the password on standard input, and serving on the default.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

fn careline(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_careline"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CARELINE_DATA_DIR", data_dir)
        .env("CARELINE_CONFIG", data_dir.join("careline.toml"))
        .current_dir(data_dir);
    cmd
}

#[test]
fn a_bad_setting_stops_the_start_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = careline(dir.path())
        .env("CARELINE_BIND", "not-an-address")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("setting `bind` is invalid"), "{stderr}");

    std::fs::write(
        dir.path().join("careline.toml"),
        "database_url = \"oracle://x\"\n",
    )
    .unwrap();
    let out = careline(dir.path()).arg("migrate").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("setting `database_url` is invalid"));

    // Environment wins over the file.
    let out = careline(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/env.db?mode=rwc", dir.path().display()),
        )
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("env.db").exists());

    // REDIS_URL is read too (a bad one names the setting).
    let out = careline(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/env.db?mode=rwc", dir.path().display()),
        )
        .env("REDIS_URL", "localhost:6379")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("setting `redis_url` is invalid"));

    std::fs::write(dir.path().join("careline.toml"), "colour = \"blue\"\n").unwrap();
    let out = careline(dir.path()).arg("migrate").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("colour"),
        "unknown settings are named"
    );
}

#[test]
fn the_tools_variables_are_passed_over_and_a_typo_is_answered_with_the_setting_meant() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}/tools.db?mode=rwc", dir.path().display());
    // A developer's shell with the test suites' and load tool's variables.
    let out = careline(dir.path())
        .env("DATABASE_URL", &database)
        .env(
            "CARELINE_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1/test",
        )
        .env("CARELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
        .env("CARELINE_SITE_KEY", "site-key")
        .env("CARELINE_UPDATE_SCREENSHOTS", "1")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A real typo still stops the start, and says what was meant.
    let out = careline(dir.path())
        .env("DATABASE_URL", &database)
        .env("CARELINE_BOT_MIS_LIMIT", "3")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did you mean `bot_miss_limit` (CARELINE_BOT_MISS_LIMIT"),
        "{stderr}"
    );
}

#[test]
fn user_create_reads_the_password_from_stdin_never_argv() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = careline(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
            "--name",
            "Ops",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a strong password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created Ops (ops@example.com) as admin")
    );

    // A short password is refused with the rule.
    let mut child = careline(dir.path())
        .args(["user", "create", "--email", "two@example.com"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));

    // There is no way to pass a password on the command line.
    let out = careline(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "x@example.com",
            "--password",
            "a long enough password",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--password'"));
}

#[test]
fn serve_prints_the_url_and_setup_link_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    // Find a free port, then let careline bind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = careline(dir.path())
        .env("CARELINE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        lines.push(line);
    }
    assert!(
        lines[0].contains(&format!("Careline is running at http://127.0.0.1:{port}")),
        "{lines:?}"
    );
    assert!(lines[1].contains("/setup?token="), "{lines:?}");
    assert!(
        dir.path().join("careline.db").exists(),
        "SQLite under the data directory"
    );

    let mut ok = false;
    for _ in 0..50 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Read;
            stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").unwrap();
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            ok = response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM: the server drains and exits cleanly.
    unsafe_kill_term(child.id());
    let status = child.wait().unwrap();
    assert!(ok, "healthz answered");
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}

fn unsafe_kill_term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}
