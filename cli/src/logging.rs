//! Logs: text on stderr for whoever runs a command, and for a server also JSON lines in
//! `DATA/logs/server.jsonl` (rotated to `server.jsonl.1` at 32 MiB), which `cybs3
//! server logs` reads whether the server runs in a terminal, detached or under
//! systemd. The level filter (`RUST_LOG`, else `--log-level`/`log-level`) can be
//! replaced while the server runs (`cybs3 server config set log-level …`).

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{reload, EnvFilter, Layer as _, Registry};

/// A log file rotates past this size; one older file is kept.
const ROTATE_AT: u64 = 32 << 20;

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);

struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
}

/// Start logging to stderr with `default` as the filter unless `RUST_LOG` says otherwise.
pub fn init(default: &str) {
    let asked = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(asked);
    let _ = FILTER.set(handle);
    // Whatever the filter asks, lines that would carry signatures or secrets stay out.
    let safe = || tracing_subscriber::filter::filter_fn(s3d::loggable);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(safe()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(|| FileWriter)
                .with_filter(safe().and(tracing_subscriber::filter::filter_fn(|_| {
                    FILE.lock().is_ok_and(|f| f.is_some())
                }))),
        )
        .init();
}

/// From now on, also write JSON lines into `dir/server.jsonl`.
pub fn to_file(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("server.jsonl");
    let file = open(&path)?;
    let size = file.metadata().map_or(0, |m| m.len());
    *FILE.lock().unwrap() = Some(LogFile { path, file, size });
    Ok(())
}

fn open(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))
}

/// Replace the level filter (a `RUST_LOG`-style directive list) at once.
pub fn set_filter(directives: &str) -> Result<()> {
    let filter = parse_filter(directives)?;
    FILTER
        .get()
        .ok_or_else(|| anyhow!("logging is not set up"))?
        .reload(filter)
        .map_err(|e| anyhow!("cannot change the log level: {e}"))
}

/// A `RUST_LOG`-style filter, checked.
pub fn parse_filter(directives: &str) -> Result<EnvFilter> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| anyhow!("log-level {directives:?}: {e} (e.g. info, or warn,cybs3=debug)"))
}

struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = FILE.lock().unwrap();
        let Some(f) = guard.as_mut() else {
            return Ok(buf.len());
        };
        if f.size + buf.len() as u64 > ROTATE_AT {
            let old = f.path.with_extension("jsonl.1");
            if std::fs::rename(&f.path, &old).is_ok() {
                if let Ok(file) = open(&f.path) {
                    (f.file, f.size) = (file, 0);
                }
            }
        }
        f.file.write_all(buf)?;
        f.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One line of the JSON log, as tracing-subscriber writes it.
#[derive(Deserialize)]
pub struct Line {
    pub timestamp: String,
    pub level: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub message: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Line {
    /// The line as a person reads it: time, level, target, message, then the fields.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} {:>5} {}: {}",
            self.timestamp, self.level, self.target, self.message
        );
        for (k, v) in &self.fields {
            match v {
                serde_json::Value::String(s) => out.push_str(&format!(" {k}={s}")),
                v => out.push_str(&format!(" {k}={v}")),
            }
        }
        out
    }

    /// When it was written.
    pub fn time(&self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::parse(
            &self.timestamp,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()
    }
}

/// The log files of a store, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let now = dir.join("server.jsonl");
    [now.with_extension("jsonl.1"), now]
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}
