//! Harness for end-to-end tests: runs the real `cybs3` binary and talks to it with real clients.

pub mod brokers;
pub mod moto;
pub mod mount;
pub mod netns;
pub mod slapd;
pub mod tls;
pub mod webhook;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: `$CYBS3_BIN`, else the workspace's release build, else its debug build.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CYBS3_BIN") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for profile in ["release", "debug"] {
        let p = root.join("target").join(profile).join("cybs3");
        if p.exists() {
            return p;
        }
    }
    panic!("no cybs3 binary: run `cargo build --release` first or set CYBS3_BIN");
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Run `cybs3 args…` with `CYBS3_HOME=home`.
pub fn cybs3(home: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("CYBS3_HOME", home)
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("run cybs3")
}

/// A server process over its own home, data dir and drives.
pub struct Server {
    pub home: PathBuf,
    pub drives: Vec<PathBuf>,
    pub ec: Option<String>,
    pub port: u16,
    child: Option<Child>,
    pub access_key: String,
    pub secret_key: String,
    /// More `server start` flags (LDAP, proxies, …).
    pub args: Vec<String>,
    /// More environment for the server process (RUST_LOG, …).
    pub env: Vec<(String, String)>,
    /// A file for the server's stderr (its log) instead of the test's stderr.
    pub log: Option<PathBuf>,
    /// The address to listen on (127.0.0.1, or 0.0.0.0 to be reached on other addresses).
    pub bind: String,
    /// Set for a server that serves HTTPS: the CA its clients here trust.
    pub ca_file: Option<PathBuf>,
    /// Set to run the server inside this Linux network namespace (`ip netns exec NS`), as
    /// the sites of [`netns::Sites`] do; its admin socket stays reachable from here.
    pub netns: Option<String>,
    /// The address this test process reaches the server at: 127.0.0.1, or for a server in
    /// a network namespace an address of that namespace routed from here.
    pub host: String,
    /// A command the server is started under (`unshare …`), which must exec it in place,
    /// as `ip netns exec` does, so that kill() still reaches the server.
    pub under: Vec<String>,
}

impl Server {
    /// A new server with `n` drives under `home` (not started).
    pub fn new(home: &Path, n: usize, ec: Option<&str>) -> Server {
        Server {
            home: home.to_path_buf(),
            drives: (0..n).map(|i| home.join(format!("drive{i}"))).collect(),
            ec: ec.map(str::to_string),
            port: free_port(),
            child: None,
            access_key: String::new(),
            secret_key: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            log: None,
            bind: "127.0.0.1".into(),
            ca_file: None,
            netns: None,
            host: "127.0.0.1".into(),
            under: Vec::new(),
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    /// Start in the foreground as a child (so tests can SIGKILL it) and wait until it answers.
    pub fn start(&mut self) {
        let drives: Vec<String> = self
            .drives
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        // `ip netns exec` execs the server in place (no fork), so the child is still the
        // server itself and kill() reaches it.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin());
                c
            }
            None if !self.under.is_empty() => {
                let mut c = Command::new(&self.under[0]);
                c.args(&self.under[1..]).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.args(["server", "start", "--listen"])
            .arg(format!("{}:{}", self.bind, self.port))
            .arg("--drives")
            .arg(drives.join(","))
            .env("CYBS3_HOME", &self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(ec) = &self.ec {
            cmd.arg("--ec").arg(ec);
        }
        cmd.args(&self.args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(log) = &self.log {
            cmd.stderr(std::fs::File::create(log).expect("create the server log"));
        }
        let mut child = cmd.spawn().expect("spawn server");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("server exited during start-up: {status}");
            }
            let ready = match &self.ca_file {
                Some(ca) => tls::get(self.port, ca, "/health/ready").map(|r| r.status),
                None => http_get_at(&self.host, self.port, "/health/ready").map(|(c, _)| c),
            };
            if ready == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
        let status = self.status_json();
        self.access_key = status["root_access_key"].as_str().expect("root key").into();
        self.secret_key = status["root_secret_key"]
            .as_str()
            .expect("root secret")
            .into();
    }

    /// The server's process id while it runs as this test's child.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn status_json(&self) -> serde_json::Value {
        let out = cybs3(&self.home, &["server", "status", "--json"]);
        assert!(out.status.success(), "status failed: {out:?}");
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// Graceful stop through the CLI.
    pub fn stop(&mut self) {
        let out = cybs3(&self.home, &["server", "stop"]);
        assert!(out.status.success(), "stop failed: {out:?}");
        if let Some(mut c) = self.child.take() {
            c.wait().expect("reap server");
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill server");
            c.wait().expect("reap server");
        }
    }

    /// An S3 client with the SDK's default settings (checksums, aws-chunked trailers).
    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_as(&self.access_key, &self.secret_key)
    }

    /// The same client signing with other credentials.
    pub fn client_as(&self, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
        self.client_with(access_key, secret_key, None)
    }

    /// The same client with temporary credentials (and their session token).
    pub fn client_with(
        &self,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> aws_sdk_s3::Client {
        let config = sdk_config(&self.endpoint(), access_key, secret_key, session_token);
        let config = match &self.ca_file {
            Some(ca) => config.http_client(tls::sdk_http_client(ca)),
            None => config,
        };
        aws_sdk_s3::Client::from_conf(config.build())
    }
}

/// An aws-sdk-s3 client at its default settings for any S3 endpoint (another server
/// than cybs3, in the remote tier tests).
pub fn client_for(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(sdk_config(endpoint, access_key, secret_key, None).build())
}

fn sdk_config(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    session_token: Option<&str>,
) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            session_token.map(str::to_string),
            None,
            "cybs3-tests",
        ))
        .force_path_style(true)
}

impl Drop for Server {
    fn drop(&mut self) {
        // Under tests/coverage.sh the binary is instrumented and writes its coverage
        // profile (LLVM_PROFILE_FILE) only when it exits on its own: a server SIGKILLed here
        // would lose everything it ran. So a dropped server gets SIGTERM, its graceful
        // shutdown, first; SIGKILL stays for one that has not exited within 10 s.
        if std::env::var_os("LLVM_PROFILE_FILE").is_some() {
            self.terminate(Duration::from_secs(10));
        }
        self.kill();
    }
}

impl Server {
    /// SIGTERM, then wait up to `grace` for the server to exit (reaped if it did).
    fn terminate(&mut self, grace: Duration) {
        let Some(c) = self.child.as_mut() else { return };
        // SAFETY: a plain signal to our own child, not reaped yet, so its pid is still ours.
        unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Status code of a plain GET on the loopback port, if it answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(code, _)| code)
}

/// Status code and body of a plain GET on the loopback port, if it answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_get_at("127.0.0.1", port, path)
}

/// Status code and body of a plain GET on `host:port`, if it answers.
pub fn http_get_at(host: &str, port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((host, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = Vec::new();
    // Connection: close, so the body ends where the stream does.
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    let code = reply.get(9..12)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((code, body.to_string()))
}

/// Deterministic content for a name and length, so readers can verify without keeping copies.
pub fn content(name: &str, len: usize) -> Vec<u8> {
    let mut x: u64 = name.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

/// A fresh `CYBS3_HOME` set up with `cybs3 vaults local` (its own server on a free
/// port); the server is stopped when this is dropped (the fixture shared with the bench).
pub struct LocalVault {
    pub home: PathBuf,
    pub port: u16,
    pub(crate) local: fixtures::LocalVault,
}

impl LocalVault {
    pub fn new() -> LocalVault {
        let local = fixtures::LocalVault::start(&bin(), &std::env::temp_dir(), ".tmp", &[])
            .unwrap_or_else(|e| panic!("vaults local: {e}"));
        LocalVault {
            home: local.home.clone(),
            port: local.port,
            local,
        }
    }

    /// `cybs3 args…` in this home; panics unless it succeeds, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = cybs3(&self.home, args);
        assert!(out.status.success(), "cybs3 {args:?} failed: {out:?}");
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `vaults show NAME --json`.
    pub fn vault_json(&self, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["vaults", "show", name, "--json"])).expect("JSON")
    }

    /// The store's root credentials (`server status --json`).
    pub fn root_keys(&self) -> (String, String) {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["server", "status", "--json"])).expect("JSON");
        (
            v["root_access_key"].as_str().expect("root key").into(),
            v["root_secret_key"].as_str().expect("root secret").into(),
        )
    }

    pub fn endpoint(&self) -> String {
        self.local.endpoint()
    }
}

impl Default for LocalVault {
    fn default() -> Self {
        Self::new()
    }
}
