//! A server of the bench's own: the same binary, one drive, a fresh temporary data
//! directory, so that rows comparing two servers hold for any endpoint.

use crate::Cli;
use anyhow::{Context, Result};
use aws_sdk_s3::Client;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A server of the bench's own in a temporary data directory; stopped when dropped.
pub(crate) struct Spare {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) client: Client,
    pub(crate) endpoint: String,
    pub(crate) keys: (String, String),
}

impl Spare {
    /// Starts one with `server start` flags `flags` (e.g. `--audit off`).
    pub(crate) fn start(cli: &dyn Cli, flags: &[&str]) -> Result<Spare> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let status = Command::new(std::env::current_exe()?)
            .args(["server", "start", "--detach", "--data"])
            .arg(dir.path())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("cannot start the bench's own server")?;
        anyhow::ensure!(status.success(), "the bench's own server did not start");
        let (access, secret) = cli
            .root_keys(dir.path())
            .context("the bench's own server wrote no root keys")?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = vault::S3Target::new(&endpoint, &access, &secret).client();
        Ok(Spare {
            dir,
            client,
            endpoint,
            keys: (access, secret),
        })
    }

    /// The CPU time (user and system) the server process has spent so far, from
    /// `/proc/PID/stat` (in clock ticks, 100 per second on Linux); `None` elsewhere.
    pub(crate) fn cpu(&self) -> Option<Duration> {
        let state = std::fs::read(self.dir.path().join("server.json")).ok()?;
        let pid = serde_json::from_slice::<serde_json::Value>(&state).ok()?["pid"].as_u64()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields 14 and 15, counted after the command name, which may hold spaces.
        let mut after = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let ticks: u64 = after.next()?.parse::<u64>().ok()? + after.next()?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10))
    }

    /// `cybs3 ARGS… --data DIR` against this server, which must succeed: its output.
    pub(crate) fn admin(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new(std::env::current_exe()?)
            .args(args)
            .arg("--data")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "cybs3 {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(out.stdout)
    }

    /// [`Spare::admin`] of a command with `--json`: its document.
    pub(crate) fn admin_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.admin(args)?)?)
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        let _ = Command::new(std::env::current_exe().expect("the running binary"))
            .args(["server", "stop", "--data"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
