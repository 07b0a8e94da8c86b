//! A local cluster, the same topology as docker-compose.yml: three
//! `careline` processes on PostgreSQL and a private Redis, behind nginx
//! rendered from `nginx/careline.conf`. Processes, so that a test can
//! SIGKILL or SIGTERM one of them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use careline::store::Store;

use super::databases::{Database, TestDb, mysql_available, postgres_available};
use super::redis::PrivateRedis;

pub const SECRET: &str = "cluster-test-secret-of-at-least-32-characters";

pub struct Instance {
    pub name: String,
    pub port: u16,
    child: Option<Child>,
}

pub struct Cluster {
    pub base: String,
    pub nginx_port: u16,
    pub instances: Vec<Instance>,
    pub redis: PrivateRedis,
    pub store: Store,
    db: TestDb,
    nginx: Child,
    dir: tempfile::TempDir,
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `nginx/careline.conf` with the compose host names replaced by loopback
/// ports, wrapped in a minimal main configuration rooted in `dir`.
fn render_nginx(dir: &Path, listen: u16, ports: &[u16]) -> PathBuf {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/nginx/careline.conf"))
            .expect("nginx/careline.conf");
    let mut site = template.replace("listen 80;", &format!("listen 127.0.0.1:{listen};"));
    for (i, port) in ports.iter().enumerate() {
        site = site.replace(
            &format!("server app{}:8080", i + 1),
            &format!("server 127.0.0.1:{port}"),
        );
    }
    assert!(!site.contains("app1:8080"), "every upstream was replaced");
    std::fs::write(dir.join("careline.conf"), site).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("tmp").join(sub)).unwrap();
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let d = dir.display();
    let main = format!(
        "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
           fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\
           include {d}/careline.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, main).unwrap();
    path
}

async fn wait_for_http(port: u16, path: &str) -> bool {
    let client = careline::http_client(std::time::Duration::from_secs(30));
    for _ in 0..150 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            && r.status().is_success()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

impl Cluster {
    /// Starts the cluster on PostgreSQL, or says why it cannot here
    /// (None); under CI=true a missing PostgreSQL, Redis or nginx is a
    /// failure.
    pub async fn start(test: &str) -> Option<Cluster> {
        Cluster::start_on(test, Database::Postgres).await
    }

    /// [`Cluster::start`] on the database server `db` (PostgreSQL or
    /// MariaDB/MySQL).
    pub async fn start_on(test: &str, db: Database) -> Option<Cluster> {
        let reachable = match db {
            Database::Postgres => postgres_available(test).await,
            Database::Mysql => mysql_available(test).await,
            Database::Sqlite => panic!("a cluster shares one database server"),
        };
        if !reachable {
            return None;
        }
        let redis = PrivateRedis::start(test).await?;
        let Some(nginx_bin) = nginx_binary() else {
            super::cannot_run(test, "nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::create(db, dir.path()).await;
        let store = Store::open(&db.url, 3).await.expect("cluster database");
        let nginx_port = super::free_port();
        let base = format!("http://127.0.0.1:{nginx_port}");
        let ports: Vec<u16> = (0..3).map(|_| super::free_port()).collect();
        let mut cluster_instances = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            cluster_instances.push(Instance {
                name: format!("app{}", i + 1),
                port: *port,
                child: None,
            });
        }
        let conf = render_nginx(dir.path(), nginx_port, &ports);
        let check = Command::new(&nginx_bin)
            .arg("-t")
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("nginx -t runs");
        assert!(
            check.status.success(),
            "nginx rejects the rendered config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let nginx = Command::new(&nginx_bin)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut cluster = Cluster {
            base,
            nginx_port,
            instances: cluster_instances,
            redis,
            store,
            db,
            nginx,
            dir,
        };
        for i in 0..3 {
            cluster.launch(i).await;
        }
        assert!(
            wait_for_http(nginx_port, "/readyz").await,
            "nginx serves the cluster"
        );
        Some(cluster)
    }

    fn command(&self, i: usize) -> Command {
        let instance = &self.instances[i];
        let data = self.dir.path().join(&instance.name);
        std::fs::create_dir_all(&data).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_careline"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.db.url)
            .env("REDIS_URL", self.redis.url())
            .env("CARELINE_CONFIG", data.join("none.toml"))
            .env("CARELINE_BIND", format!("127.0.0.1:{}", instance.port))
            .env("CARELINE_PUBLIC_URL", &self.base)
            .env("CARELINE_SECRET_KEY", SECRET)
            .env("CARELINE_TRUSTED_PROXIES", "127.0.0.1")
            .env("CARELINE_INSTANCE_NAME", &instance.name)
            .env("CARELINE_DATA_DIR", &data)
            .env("CARELINE_AUTH_RATE_LIMIT_BURST", "1000")
            .env("CARELINE_WS_FRAMES_PER_SECOND", "1000")
            .env("CARELINE_WS_FRAME_BURST", "1000")
            .env("CARELINE_LOG", "warn")
            .current_dir(&data);
        cmd
    }

    async fn launch(&mut self, i: usize) {
        let child = self
            .command(i)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("careline starts");
        self.instances[i].child = Some(child);
        let port = self.instances[i].port;
        assert!(
            wait_for_http(port, "/readyz").await,
            "instance {} became ready",
            self.instances[i].name
        );
    }

    /// Creates an account with the command line (as an operator would).
    pub fn create_user(&self, email: &str, role: &str, name: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .command(0)
            .args([
                "user", "create", "--email", email, "--role", role, "--name", name,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        assert!(child.wait().unwrap().success(), "user create {email}");
    }

    fn index(&self, name: &str) -> usize {
        self.instances
            .iter()
            .position(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    /// SIGKILL: the process vanishes without closing anything.
    pub fn kill(&mut self, name: &str) {
        let i = self.index(name);
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: graceful stop; returns once the process has exited.
    pub async fn terminate(&mut self, name: &str) {
        let i = self.index(name);
        if let Some(mut child) = self.instances[i].child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let waited = tokio::task::spawn_blocking(move || child.wait()).await;
            assert!(
                matches!(waited, Ok(Ok(status)) if status.success()),
                "graceful exit: {waited:?}"
            );
        }
    }

    /// How many instances are still running.
    pub fn running(&self) -> usize {
        self.instances.iter().filter(|i| i.child.is_some()).count()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // SIGTERM, not SIGKILL: nginx's master stops its workers on the way
        // out; killed outright, it would leave them running.
        let _ = Command::new("kill")
            .args(["-TERM", &self.nginx.id().to_string()])
            .status();
        for _ in 0..50 {
            if matches!(self.nginx.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
    }
}
