//! Real message brokers for the notification tests, each started from its Debian
//! package on a free port of 127.0.0.1 with its data in a directory of its own, and
//! stopped (its whole process group killed) on drop: RabbitMQ, Mosquitto, NATS, Redis
//! and PostgreSQL.

use crate::free_port;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process (and its children) on `port`.
pub struct Broker {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        // SAFETY: kill(2) with the negated process group id the child leads.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A directory under /tmp that `user` owns (brokers that drop root need their own).
fn dir_for(name: &str, user: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cybs3-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("broker dir");
    if let Some(user) = user {
        let ok = Command::new("chown")
            .args([&format!("{user}:{user}"), dir.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {user} {}", dir.display());
    }
    dir
}

fn spawn(mut cmd: Command, dir: PathBuf, port: u16, what: &str, timeout: Duration) -> Broker {
    let log = std::fs::File::create(dir.with_extension("log")).expect("broker log");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!("start {what} (is its Debian package installed? tests/run.sh installs it): {e}")
    });
    let mut broker = Broker { port, child, dir };
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = broker.child.try_wait() {
            let log = std::fs::read_to_string(broker.dir.with_extension("log")).unwrap_or_default();
            panic!("{what} exited during start-up ({status}): {log}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} in {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    broker
}

/// RabbitMQ (user guest/guest, which it lets in from this machine).
pub fn rabbitmq() -> Broker {
    let dir = dir_for("rabbitmq", Some("rabbitmq"));
    let port = free_port();
    let mut cmd = Command::new("rabbitmq-server");
    let d = |sub: &str| dir.join(sub).display().to_string();
    cmd.current_dir(&dir)
        .env("HOME", &dir)
        .env("RABBITMQ_NODENAME", format!("cybs3-{port}@localhost"))
        .env("RABBITMQ_NODE_PORT", port.to_string())
        .env("RABBITMQ_DIST_PORT", free_port().to_string())
        .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
        .env("RABBITMQ_LOG_BASE", d("log"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("plugins"))
        .env("RABBITMQ_PID_FILE", d("pid"));
    spawn(cmd, dir, port, "rabbitmq-server", Duration::from_secs(90))
}

/// Mosquitto, anonymous clients allowed on 127.0.0.1.
pub fn mosquitto() -> Broker {
    let dir = dir_for("mosquitto", Some("mosquitto"));
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let mut cmd = Command::new("mosquitto");
    cmd.arg("-c").arg(&conf);
    spawn(cmd, dir, port, "mosquitto", Duration::from_secs(20))
}

pub fn nats() -> Broker {
    let dir = dir_for("nats", None);
    let port = free_port();
    let mut cmd = Command::new("nats-server");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
    spawn(cmd, dir, port, "nats-server", Duration::from_secs(20))
}

pub fn redis() -> Broker {
    let dir = dir_for("redis", None);
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.current_dir(&dir).args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    spawn(cmd, dir, port, "redis-server", Duration::from_secs(20))
}

/// The newest PostgreSQL server installed (`/usr/lib/postgresql/N/bin`).
fn postgres_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tests/run.sh installs it)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL version")
        .join("bin")
        .join(name)
}

/// PostgreSQL with trust authentication on 127.0.0.1, superuser `postgres`.
pub fn postgres() -> Broker {
    let dir = dir_for("postgres", Some("postgres"));
    let data = dir.join("data");
    let ok = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(postgres_bin("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "initdb failed");
    let port = free_port();
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(postgres_bin("postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-k",
        ])
        .arg(&dir);
    spawn(cmd, dir, port, "postgres", Duration::from_secs(30))
}

impl Broker {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
