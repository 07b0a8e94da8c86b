//! A real S3-compatible server for tests: moto's `moto_server` (PyPI
//! `moto[server]`, installed by `.ci/run` into ~/.cache/careline-moto),
//! started on a free port with a fresh bucket, stopped on drop.
//!
//! Found at `CARELINE_TEST_MOTO_SERVER`, on PATH, or in that venv. Tests say
//! why they skip when it is missing; under `CI=true` that is a failure.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use careline::blobs::S3Settings;

pub const MOTO_VAR: &str = "CARELINE_TEST_MOTO_SERVER";

fn find_moto() -> Option<PathBuf> {
    if let Ok(path) = std::env::var(MOTO_VAR) {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let venv =
            PathBuf::from(std::env::var_os("HOME")?).join(".cache/careline-moto/bin/moto_server");
        venv.is_file().then_some(venv)
    })
}

pub struct Moto {
    pub endpoint: String,
    pub bucket: String,
    child: Child,
}

impl Moto {
    pub async fn start(test: &str) -> Option<Moto> {
        let Some(binary) = find_moto() else {
            let why = format!(
                "moto_server not found (set {MOTO_VAR}, or `python3 -m venv ~/.cache/careline-moto && ~/.cache/careline-moto/bin/pip install 'moto[server]'`)"
            );
            super::cannot_run(&format!("{test} on S3"), &why);
            return None;
        };
        let port = super::free_port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let endpoint = format!("http://127.0.0.1:{port}");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let bucket = format!("careline-{}-{nanos}", std::process::id());
        let moto = Moto {
            endpoint,
            bucket,
            child,
        };
        let client = careline::http_client(Duration::from_secs(5));
        for _ in 0..150 {
            // Creating the bucket is also the readiness probe. moto accepts
            // unsigned requests; the adapter under test signs its own.
            let created = client
                .put(format!("{}/{}", moto.endpoint, moto.bucket))
                .send()
                .await;
            if created.is_ok_and(|r| r.status().is_success()) {
                return Some(moto);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not answer on {}", moto.endpoint);
    }

    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            region: "us-east-1".into(),
            access_key_id: "careline-test".into(),
            secret_access_key: "careline-test-secret".into(),
            prefix: "test/".into(),
        }
    }

    /// Every key in the bucket (ListObjectsV2).
    pub async fn keys(&self) -> Vec<String> {
        let listing = careline::http_client(Duration::from_secs(5))
            .get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .send()
            .await
            .expect("moto answers")
            .text()
            .await
            .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Settings for a bucket nobody serves (a closed port), to see errors.
pub fn unreachable_settings() -> S3Settings {
    let port = super::free_port();
    S3Settings {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "nobody".into(),
        region: "us-east-1".into(),
        access_key_id: "x".into(),
        secret_access_key: "y".into(),
        prefix: String::new(),
    }
}
