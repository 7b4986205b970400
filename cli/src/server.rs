//! `cybs3 server start|stop|status`.

use crate::admin;
use crate::settings::{ServerSettings, Switch};
use crate::storedir::{pid_alive, Runtime, StoreDir};
use anyhow::{anyhow, bail, Context, Result};
use engine::{Store, StoreConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds a client connection may send nothing before it is closed: long enough for
/// clients' pools (which reuse a connection within seconds), short enough that silent
/// connections cannot pile up.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 30;

#[derive(clap::Args, Debug, Clone)]
pub struct StartArgs {
    /// Data directory (layout, credentials, pid file, logs; default drive)
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Drive directories, one per disk, comma-separated (fixed at first start)
    #[arg(long, value_name = "DIR,DIR,…", value_delimiter = ',')]
    pub drives: Option<Vec<PathBuf>>,
    /// Erasure layout data+parity, e.g. 4+2 (default from the drive count; fixed at first start)
    #[arg(long, value_name = "K+M")]
    pub ec: Option<String>,
    /// Address to serve S3 on; 0.0.0.0:9000 serves the LAN
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// S3 region reported to clients
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Base domain for virtual-hosted-style requests (BUCKET.NAME, any port); repeatable.
    /// Path-style requests keep working either way.
    #[arg(long = "domain", value_name = "NAME")]
    pub domains: Vec<String>,
    /// Close a client connection that sends nothing for this many seconds, before its
    /// first request or between keep-alive requests (a request being served is never idle)
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_IDLE_TIMEOUT, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// The most open client connections; at the cap the longest-idle one is closed for
    /// a new one [default: half the open file limit, less a reserve for the store]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Run in the background; returns once the server answers
    #[arg(long)]
    pub detach: bool,
    /// Server config file (TOML, keys named like the flags) [default: DATA/server.toml if present]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ServerSettings,
}

pub fn store_dir(data: Option<PathBuf>) -> StoreDir {
    StoreDir::new(data.unwrap_or_else(crate::paths::default_store))
}

/// Start `cmd` in its own session (so a terminal's hangup does not reach it) with its
/// output going to `log`.
pub fn spawn_detached(
    cmd: &mut Command,
    log: std::fs::File,
) -> std::io::Result<std::process::Child> {
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe, called in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()
}

/// Open the store of a stopped server for maintenance (no background work).
pub fn open_stopped(dir: &StoreDir) -> Result<Store> {
    let Some(layout) = dir.layout()? else {
        bail!(
            "there is no store in {}; start one with `cybs3 server start` or pass --data",
            dir.root.display()
        );
    };
    let mut cfg = StoreConfig::new(layout.drives);
    cfg.background = false;
    Store::open(cfg).context("cannot open the store")
}

pub fn start(args: StartArgs) -> Result<()> {
    let dir = store_dir(args.data.clone());
    dir.create()?;
    if let Some(rt) = dir.running()? {
        bail!(
            "a server is already running on {} at {} (pid {}); stop it with `cybs3 server stop`",
            dir.root.display(),
            rt.endpoint(),
            rt.pid
        );
    }
    let settings = args.settings.merged(args.config.as_deref(), &dir.root)?;
    let ldap = settings.ldap()?;
    if let Some(level) = &settings.log_level {
        crate::logging::parse_filter(level)?;
    }
    let tls = settings.tls(&dir);
    if let Some(files) = &tls {
        files.check()?;
    }
    if args.detach {
        return detach(&dir, &args, tls.is_some());
    }
    crate::logging::to_file(&dir.logs())?;
    if let (Some(level), Err(_)) = (&settings.log_level, std::env::var("RUST_LOG")) {
        crate::logging::set_filter(level)?;
    }
    let layout = dir.resolve_layout(args.drives.clone(), args.ec.as_deref())?;
    let ec = layout.ec.parse().map_err(|e: String| anyhow!(e))?;
    let mut cfg = StoreConfig::new(layout.drives.clone());
    cfg.ec = Some(ec);
    cfg.move_bandwidth = settings.move_bandwidth.map(|mb| mb * 1_000_000);
    let store = Store::open(cfg).context("cannot open the store")?;
    dir.save_layout(&layout)?;
    let creds = dir.ensure_credentials()?;
    let server_key = dir.ensure_server_key()?;
    store
        .set_kms_master(&settings.kms_master(&server_key)?)
        .context("cannot load the KMS keys")?;
    let audit = match settings.audit() {
        Some(a) => Some(
            s3d::audit::Log::open(dir.audit(), s3d::audit::Chain::new(&server_key), a)
                .context("cannot open the audit log (or start the server with --audit off)")?,
        ),
        None => None,
    };
    let anomalies = s3d::Anomalies::open(
        store.clone(),
        s3d::anomaly::Clock::of_day(settings.lifecycle().day_secs),
    )
    .context("cannot read the anomaly detector's flags")?;
    // Off, requests are not counted, no alert is raised and no freeze holds; `admin
    // alerts` still lists the alerts kept.
    let watching = settings.anomalies != Some(Switch::Off);
    let rt = tokio::runtime::Runtime::new()?;
    let served = rt.block_on(async {
        let listener = listen(args.listen).with_context(|| {
            format!(
                "cannot listen on {}; is another server using it? choose another with --listen",
                args.listen
            )
        })?;
        let addr = listener.local_addr()?;
        let live = s3d::Live::new(
            settings.trusted_proxy.clone(),
            ldap,
            settings.lifecycle_interval(),
            settings.metrics_public,
        );
        let registries = admin::Registries {
            anomalies: anomalies.clone(),
            iam: s3d::Iam::new(store.clone(), &server_key),
            targets: s3d::Targets::new(store.clone(), &server_key, &args.region),
            remotes: s3d::Remotes::new(store.clone(), &server_key),
            sites: s3d::Sites::new(
                store.clone(),
                &server_key,
                (creds.access_key.clone(), creds.secret_key.clone()),
                &args.region,
                (addr, tls.is_some()),
            ),
            live: live.clone(),
            config: crate::server_config::Reload::new(
                dir.root.clone(),
                args.config.clone(),
                args.settings.clone(),
                settings.clone(),
            ),
        };
        admin::spawn(
            &dir.socket(),
            store.clone(),
            registries,
            addr.to_string(),
            audit.clone(),
        )?;
        let rt = Runtime {
            pid: std::process::id(),
            address: addr.to_string(),
            tls: tls.is_some(),
        };
        dir.save_runtime(&rt)?;
        tracing::info!(
            ec = %store.ec(),
            drives = layout.drives.len(),
            "serving S3 on {}, data in {}",
            rt.endpoint(),
            dir.root.display()
        );
        let cfg = s3d::ServerConfig {
            listen: addr,
            access_key: creds.access_key,
            secret_key: creds.secret_key,
            server_key,
            region: args.region.clone(),
            domains: args.domains.clone(),
            live,
            sts_min_duration: settings.sts_min_duration.unwrap_or(900),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_connections: args.max_connections.map(|n| n as usize),
            lifecycle: settings.lifecycle(),
            tls,
            allow_insecure_login: settings.allow_insecure_login,
            notify_backlog: settings
                .notify_backlog
                .unwrap_or(engine::DEFAULT_LANE_BOUND),
            audit_target: settings
                .audit_target
                .clone()
                .filter(|_| audit.is_some())
                .map(|t| (dir.audit(), t)),
            audit: audit.clone(),
            anomalies: watching.then_some(anomalies),
        };
        s3d::serve(cfg, store.clone(), listener, shutdown_signal()).await
    });
    // Drop every task's store handle before closing the store.
    rt.shutdown_timeout(Duration::from_secs(30));
    if let Some(log) = &audit {
        log.close();
    }
    drop(store);
    dir.clear_runtime();
    tracing::info!("server stopped");
    served
}

/// The S3 socket, with a long accept queue: in a burst of connections (a client pool
/// opening, a flood of idle ones being shed) a full queue drops SYNs, and each dropped
/// one costs its client a one-second retransmission.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    const BACKLOG: u32 = 4096;
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As TcpListener::bind does: a restarted server can bind over TIME_WAIT sockets.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("shutting down: draining requests");
}

/// Start a copy of ourselves in the background and wait until it answers.
fn detach(dir: &StoreDir, args: &StartArgs, tls: bool) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the cybs3 executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["server", "start", "--data"])
        .arg(&dir.root)
        .arg("--listen")
        .arg(args.listen.to_string())
        .arg("--region")
        .arg(&args.region)
        .arg("--idle-timeout")
        .arg(args.idle_timeout.to_string());
    if let Some(n) = args.max_connections {
        cmd.arg("--max-connections").arg(n.to_string());
    }
    if let Some(drives) = &args.drives {
        let list: Vec<String> = drives.iter().map(|d| d.display().to_string()).collect();
        cmd.arg("--drives").arg(list.join(","));
    }
    if let Some(ec) = &args.ec {
        cmd.arg("--ec").arg(ec);
    }
    for domain in &args.domains {
        cmd.arg("--domain").arg(domain);
    }
    // The flags as given: the child reads the config file itself, so that what is
    // changed there later (`server config set`) is not shadowed by flags.
    if let Some(config) = &args.config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(args.settings.to_args());
    if let Some(pw) = &args.settings.ldap_bind_password {
        cmd.env("CYBS3_LDAP_BIND_PASSWORD", pw);
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.log())
        .with_context(|| format!("cannot open {}", dir.log().display()))?;
    let mut child = spawn_detached(&mut cmd, log).context("cannot start the server process")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the server stopped during start-up ({status}):\n{}",
                log_tail(dir)
            );
        }
        if let Some(rt) = dir.running()? {
            // Over HTTPS the probe would need to trust the server's certificate; the
            // admin socket answers from the same process once the S3 port is bound.
            let answers = if tls {
                crate::block_on(admin::call(
                    &dir.socket(),
                    hyper::Method::GET,
                    "/status",
                    None,
                ))
                .is_ok()
            } else {
                health_live(&rt.address)
            };
            if rt.pid == child.id() && answers {
                println!(
                    "cybs3 server running at {} (pid {}), data in {}",
                    rt.endpoint(),
                    rt.pid,
                    dir.root.display()
                );
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    bail!(
        "the server did not answer within 60 s; see {}",
        dir.log().display()
    )
}

fn log_tail(dir: &StoreDir) -> String {
    let text = std::fs::read_to_string(dir.log()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Does `GET /health/live` answer 200?
fn health_live(address: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(address) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/live HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
}

pub fn stop(data: Option<PathBuf>) -> Result<()> {
    let dir = store_dir(data);
    let Some(rt) = dir.running()? else {
        println!("no server is running on {}", dir.root.display());
        return Ok(());
    };
    // SAFETY: a plain signal to the server pid recorded in server.json; no memory is passed.
    if unsafe { libc::kill(rt.pid as libc::pid_t, libc::SIGTERM) } != 0 {
        bail!(
            "cannot signal the server (pid {}): {}",
            rt.pid,
            std::io::Error::last_os_error()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if !pid_alive(rt.pid) {
            println!("stopped the server (pid {})", rt.pid);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server (pid {}) did not stop within 90 s", rt.pid)
}

pub fn status(data: Option<PathBuf>, json: bool) -> Result<()> {
    let dir = store_dir(data);
    let layout = dir.layout()?;
    let creds = dir.credentials().ok().flatten();
    let running = dir.running()?;
    let live = match &running {
        Some(_) => Some(crate::block_on(admin::call(
            &dir.socket(),
            hyper::Method::GET,
            "/status",
            None,
        ))?),
        None => None,
    };
    let store = live.as_ref().map(|v| v["store"].clone());
    if json {
        let mut out = serde_json::json!({
            "running": running.is_some(),
            "pid": running.as_ref().map(|r| r.pid),
            "address": running.as_ref().map(|r| r.address.clone()),
            "endpoint": running.as_ref().map(Runtime::endpoint),
            "data": dir.root,
            "ec": layout.as_ref().map(|l| l.ec.clone()),
            "drives": store.as_ref().map(|s| s["drives"].clone()).unwrap_or_else(|| {
                serde_json::json!(layout.as_ref().map(|l| l.drives.clone()).unwrap_or_default())
            }),
            "usage": store.as_ref().map(|s| serde_json::json!({
                "buckets": s["buckets"], "objects": s["objects"], "bytes": s["bytes"],
            })),
            "writable": store.as_ref().map(|s| s["writable"].clone()),
            "degraded": store.as_ref().map(|s| s["degraded"].clone()),
            "queue": store.as_ref().map(|s| s["queue"].clone()),
            "site": live.as_ref().map(|v| v["site"].clone()),
        });
        if let Some(c) = &creds {
            out["root_access_key"] = c.access_key.clone().into();
            out["root_secret_key"] = c.secret_key.clone().into();
        }
        println!("{out}");
        return Ok(());
    }
    match (&running, &store) {
        (Some(rt), Some(s)) => {
            println!("server:   running at {} (pid {})", rt.endpoint(), rt.pid);
            println!("data:     {}", dir.root.display());
            println!(
                "erasure:  {} ({})",
                s["ec"].as_str().unwrap_or("?"),
                match (s["writable"].as_bool(), s["degraded"].as_bool()) {
                    (Some(true), Some(true)) => {
                        "writable, DEGRADED: a drive is out, new objects have less redundancy"
                    }
                    (Some(true), _) => "writable",
                    _ => "NOT writable: too few drives online",
                }
            );
            println!("drives:");
            for d in s["drives"].as_array().into_iter().flatten() {
                let free = d["free_bytes"]
                    .as_u64()
                    .map(human_bytes)
                    .unwrap_or("?".into());
                let total = d["total_bytes"]
                    .as_u64()
                    .map(human_bytes)
                    .unwrap_or("?".into());
                println!(
                    "  {:>2} {:<7} {}  ({free} free of {total}){}",
                    d["index"],
                    d["state"].as_str().unwrap_or("?"),
                    d["path"].as_str().unwrap_or("?"),
                    d["problem"]
                        .as_str()
                        .map(|p| format!("  — {p}"))
                        .unwrap_or_default()
                );
            }
            println!(
                "usage:    {} buckets, {} objects, {}",
                s["buckets"],
                s["objects"],
                human_bytes(s["bytes"].as_u64().unwrap_or(0))
            );
            let q = &s["queue"];
            println!(
                "queue:    {} tasks waiting, {} dead",
                q["queued"], q["dead"]
            );
            for e in q["dead_errors"].as_array().into_iter().flatten() {
                println!("  dead:   {}", e.as_str().unwrap_or("?"));
            }
            let site = live.as_ref().map(|v| &v["site"]).filter(|s| !s.is_null());
            if let Some(site) = site {
                println!(
                    "site:     {} in a group of {}",
                    site["name"].as_str().unwrap_or("?"),
                    site["peers"].as_array().map_or(0, Vec::len) + 1
                );
                for p in site["peers"].as_array().into_iter().flatten() {
                    println!(
                        "  peer {}: backlog {}, lag {:.1} s",
                        p["name"].as_str().unwrap_or("?"),
                        p["backlog"],
                        p["lag_secs"].as_f64().unwrap_or(0.0)
                    );
                }
            }
        }
        _ => {
            println!("server:   not running (start it with `cybs3 server start --detach`)");
            println!("data:     {}", dir.root.display());
            if let Some(l) = &layout {
                println!("erasure:  {}", l.ec);
                for (i, d) in l.drives.iter().enumerate() {
                    println!("  {i:>2} {}", d.display());
                }
            }
        }
    }
    Ok(())
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
