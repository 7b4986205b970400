//! Monitoring from the command line: `cybs3 admin metrics token` (the bearer token for
//! `GET /metrics`), `cybs3 server logs [--follow] [--json] [--since T]` (the server's
//! JSON log), and `cybs3 admin diag [--out FILE]`, a plain-text support bundle: version,
//! config with secrets removed, drives and pools, scanner and queue states, recent
//! warnings and errors, and a metrics snapshot. Keys and secrets never go into it.

use crate::admin;
use crate::iam::DataArg;
use crate::logging::{self, Line};
use crate::server::store_dir;
use anyhow::{bail, Context, Result};
use hyper::Method;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Subcommand, Debug)]
pub enum MetricsCmd {
    /// Make a new bearer token for GET /metrics (the one before stops working); it is
    /// shown once: put it in Prometheus' scrape config (`authorization: credentials`)
    Token {
        #[arg(long)]
        json: bool,
    },
}

pub fn metrics(cmd: MetricsCmd, data: DataArg) -> Result<()> {
    let MetricsCmd::Token { json } = cmd;
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("the token is made by the running server: start it with `cybs3 server start`");
    }
    let v = crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/metrics/token",
        None,
    ))?;
    let token = v["token"].as_str().unwrap_or_default();
    if json {
        println!("{}", serde_json::json!({ "token": token }));
    } else {
        println!("{token}");
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Keep printing lines as the server writes them
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Print the JSON lines as written
    #[arg(long)]
    pub json: bool,
    /// Only lines from this time on: RFC 3339 (2026-12-06T10:00:00Z) or an age (30s, 15m, 2h, 1d)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

pub fn logs(args: LogsArgs) -> Result<()> {
    let dir = store_dir(args.data);
    let since = args.since.as_deref().map(since).transpose()?;
    let files = logging::files(&dir.logs());
    if files.is_empty() && !args.follow {
        bail!(
            "no server log in {}: the server writes it once started (`cybs3 server start`)",
            dir.logs().display()
        );
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let show = |raw: &str, out: &mut dyn Write| -> std::io::Result<()> {
        let line: Option<Line> = serde_json::from_str(raw).ok();
        if let (Some(since), Some(t)) = (since, line.as_ref().and_then(Line::time)) {
            if t < since {
                return Ok(());
            }
        }
        match (&line, args.json) {
            (Some(l), false) => writeln!(out, "{}", l.text()),
            _ => writeln!(out, "{raw}"),
        }
    };
    for f in &files {
        let file =
            std::fs::File::open(f).with_context(|| format!("cannot read {}", f.display()))?;
        for raw in BufReader::new(file).lines() {
            show(&raw?, &mut out)?;
        }
    }
    if !args.follow {
        return Ok(());
    }
    out.flush()?;
    // Follow the current file; when it rotates (or appears), start on the new one.
    let path = dir.logs().join("server.jsonl");
    let mut pos = std::fs::metadata(&path).map_or(0, |m| m.len());
    let mut pending = String::new();
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let Ok(mut file) = std::fs::File::open(&path) else {
            continue;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < pos {
            pos = 0;
        }
        if len == pos {
            continue;
        }
        file.seek(std::io::SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(file);
        loop {
            let n = reader.read_line(&mut pending)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            if pending.ends_with('\n') {
                show(pending.trim_end(), &mut out)?;
                pending.clear();
            }
        }
        out.flush()?;
    }
}

/// `--since`: a time, or an age before now.
fn since(text: &str) -> Result<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let (n, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = n.parse().ok().filter(|_| !unit.is_empty()).with_context(|| {
        format!("--since {text:?}: give an RFC 3339 time (2026-12-06T10:00:00Z) or an age (30s, 15m, 2h, 1d)")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--since {text:?}: the unit is s, m, h or d"),
    };
    Ok(time::OffsetDateTime::now_utc() - Duration::from_secs(secs))
}

#[derive(clap::Args, Debug)]
pub struct DiagArgs {
    /// Where to write the bundle [default: cybs3-diag-TIME.txt here]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArg,
}

/// The server's part of a bundle (`GET /diag` on the management socket).
pub fn server_part(
    store: &engine::Store,
    metrics: &s3d::metrics::Metrics,
    address: &str,
) -> serde_json::Value {
    let keys: Vec<serde_json::Value> = store
        .kms_keys()
        .iter()
        .map(|k| serde_json::json!({ "name": k.name, "enabled": k.enabled, "version": k.version }))
        .collect();
    serde_json::json!({
        "pid": std::process::id(),
        "address": address,
        "store": store.status(),
        "pools": store.pools(),
        "scan": store.scan_status(),
        "backlog": store.backlog().ok(),
        "kms_keys": keys,
        "metrics": metrics.render(store),
    })
}

/// Warnings and errors kept in a bundle, the newest.
const RECENT: usize = 200;

pub fn diag(args: DiagArgs) -> Result<()> {
    let dir = store_dir(args.data.data);
    let now = time::OffsetDateTime::now_utc();
    let mut text = format!(
        "cybs3 diagnostics\nversion: {}\nmade: {now}\ndata: {}\n",
        env!("CARGO_PKG_VERSION"),
        dir.root.display()
    );
    section(&mut text, "server");
    let server = match dir.running()? {
        Some(_) => crate::block_on(admin::call(&dir.socket(), Method::GET, "/diag", None)).ok(),
        None => None,
    };
    let metrics = match &server {
        Some(v) => {
            let mut v = v.clone();
            let metrics = v["metrics"].as_str().unwrap_or_default().to_string();
            v.as_object_mut().map(|o| o.remove("metrics"));
            text.push_str(&serde_json::to_string_pretty(&v)?);
            text.push('\n');
            metrics
        }
        None => {
            text.push_str("not running\n");
            String::new()
        }
    };
    section(&mut text, "config (secrets removed)");
    text.push_str(&config(&dir.root.join("server.toml")));
    section(&mut text, "layout");
    text.push_str(
        &std::fs::read_to_string(dir.root.join("layout.json")).unwrap_or_else(|_| "none\n".into()),
    );
    section(
        &mut text,
        &format!("recent warnings and errors (newest {RECENT})"),
    );
    for line in recent_problems(&dir.logs()) {
        text.push_str(&line);
        text.push('\n');
    }
    section(&mut text, "metrics");
    text.push_str(if metrics.is_empty() {
        "none (the server is not running)\n"
    } else {
        &metrics
    });
    let out = args.out.unwrap_or_else(|| {
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        PathBuf::from(format!("cybs3-diag-{stamp}.txt"))
    });
    std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

fn section(text: &mut String, name: &str) {
    text.push_str(&format!("\n== {name}\n"));
}

/// The config file with secret values replaced.
fn config(path: &std::path::Path) -> String {
    let Ok(raw) = std::fs::read_to_string(path) else {
        return "none (defaults and flags only)\n".into();
    };
    let Ok(mut doc) = raw.parse::<toml_edit::DocumentMut>() else {
        return "present but not valid TOML (not copied)\n".into();
    };
    for key in crate::server_config::SECRET {
        if doc.contains_key(key) {
            doc[*key] = toml_edit::value("(removed)");
        }
    }
    doc.to_string()
}

/// The newest WARN and ERROR lines of the server's log, as text.
fn recent_problems(logs: &std::path::Path) -> Vec<String> {
    let mut kept = std::collections::VecDeque::with_capacity(RECENT);
    for f in logging::files(logs) {
        let Ok(file) = std::fs::File::open(&f) else {
            continue;
        };
        for raw in BufReader::new(file).lines().map_while(Result::ok) {
            let Ok(line) = serde_json::from_str::<Line>(&raw) else {
                continue;
            };
            if line.level == "WARN" || line.level == "ERROR" {
                if kept.len() == RECENT {
                    kept.pop_front();
                }
                kept.push_back(line.text());
            }
        }
    }
    kept.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_ages() {
        let t = since("2026-12-06T10:00:00Z").unwrap();
        assert_eq!(t.hour(), 10);
        let age = time::OffsetDateTime::now_utc() - since("2h").unwrap();
        assert!((age.whole_seconds() - 7200).abs() < 5);
        for bad in ["", "2", "2w", "yesterday"] {
            assert!(since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_leave_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "# a comment\nldap-bind-password = \"hunter2\"\nldap-url = \"ldap://x\"\n",
        )
        .unwrap();
        let text = config(&path);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("(removed)") && text.contains("ldap://x") && text.contains("# a comment")
        );
    }
}
