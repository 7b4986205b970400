//! `cybs3 sync` (or a reference tool) run as a user runs it, a child process, and what it
//! cost: wall time, the child's CPU time and all cores' busy time meanwhile.

use super::{Side, Tree, JOBS};
use crate::rclone::Rclone;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What one sync cost: the wall time a user waits, and the CPU time of the `cybs3 sync`
/// process (user and system), the client's share of the machine.
#[derive(Clone, Copy)]
pub(super) struct Took {
    pub(super) wall: Duration,
    pub(super) cpu: Duration,
    /// CPU time all cores spent busy meanwhile (server and kernel included; `ZERO` where
    /// the system does not say).
    pub(super) busy: Duration,
}

/// CPU time all cores have spent busy since boot, from `/proc/stat` (zero elsewhere).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait. The kernel
    // reports in USER_HZ, 100 per second on Linux.
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Duration::from_millis(busy * 10)
}

/// CPU time of this process's waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: `rusage` is a C struct of integers, for which all-zero bytes are a value;
    // getrusage fills the one we pass and keeps no pointer to it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Runs `cmd` to its exit and returns its output and what it took. The bench runs no
/// other child meanwhile, so the children's CPU time grows by this one's alone.
pub(super) async fn timed(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(std::process::Output, Took)> {
    let (t, cpu, busy) = (Instant::now(), children_cpu(), machine_busy());
    let out = cmd.output().await?;
    let took = Took {
        wall: t.elapsed(),
        cpu: children_cpu().saturating_sub(cpu),
        busy: machine_busy().saturating_sub(busy),
    };
    Ok((out, took))
}

/// Runs `cybs3 sync SRC DST` as a user would and returns what it took, once its summary
/// shows every file of `tree` moved in the direction asked and nothing failed or skipped.
pub(super) async fn run_sync(
    side: &Side,
    src: &str,
    dst: &str,
    tree: &Tree,
    up: bool,
) -> Result<Took> {
    let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
    cmd.args([
        "sync",
        src,
        dst,
        "--quiet",
        "--json",
        "--jobs",
        &JOBS.to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Ctrl-C or an error elsewhere drops this future: the child goes with it.
    .kill_on_drop(true);
    if let Some(home) = &side.home {
        cmd.env("CYBS3_HOME", home);
    }
    if let Some(p) = &side.passphrase {
        cmd.env("CYBS3_PASSPHRASE", p);
    }
    let (out, took) = timed(&mut cmd).await.context("cannot run cybs3 sync")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let why = || {
        let first_error = records
            .iter()
            .find(|r| r["action"] == "error")
            .map(|r| format!("{}: {}", r["path"], r["error"]));
        first_error.unwrap_or_else(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no output")
                .to_string()
        })
    };
    let what = format!("cybs3 sync {src} {dst}");
    let Some(summary) = records.iter().rev().find_map(|r| r.get("summary")) else {
        bail!("{what} failed ({}): {}", out.status, why());
    };
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    let moved = n(if up { "uploaded" } else { "downloaded" });
    let files = tree.files.len() as u64;
    if !out.status.success() || n("failed") > 0 || moved != files || n("bytes") != tree.bytes {
        bail!(
            "{what} moved {moved} of {files} files, {} of {} bytes, {} failed: {}",
            n("bytes"),
            tree.bytes,
            n("failed"),
            why()
        );
    }
    Ok(took)
}

/// `rclone copy SRC DST` with as many files in flight as the syncs move; its exit status
/// says whether every file was copied (what comes down is also compared with what went up
/// by the caller).
pub(super) async fn rclone_copy(r: &Rclone, src: &str, dst: &str) -> Result<Took> {
    let jobs = JOBS.to_string();
    let mut cmd = tokio::process::Command::from(r.command(&[
        "copy",
        src,
        dst,
        "--transfers",
        &jobs,
        "--checkers",
        &jobs,
    ]));
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let (out, took) = timed(&mut cmd).await.context("cannot run rclone")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "rclone copy {src} {dst} failed ({}): {}",
            out.status,
            stderr.lines().last().unwrap_or("no output")
        );
    }
    Ok(took)
}
