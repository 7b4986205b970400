//! `rclone mount` of one of [`crate::rclone`]'s remotes, the mount `cybs3 mount` is
//! compared with: run as a child process with `--vfs-cache-mode writes` (how rclone users
//! mount for writes and untar), on a mountpoint and a VFS cache of its own in the scratch
//! directory. It is unmounted (`fusermount -u`, else detached) and the child ended when
//! dropped, also after an error.

use crate::rclone::Rclone;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long rclone gets to mount, and to land the files closed on its mount.
const MOUNT_WAIT: Duration = Duration::from_secs(30);
const UPLOAD_WAIT: Duration = Duration::from_secs(600);

pub(super) struct RcloneMount {
    pub(super) dir: PathBuf,
    cache: PathBuf,
    child: Child,
    /// Cleared once unmounted, so dropping has nothing left to do.
    mounted: bool,
}

/// Whether `fusermount` (which `rclone mount` runs to mount and is unmounted with) is
/// installed.
pub(super) fn fusermount() -> bool {
    std::process::Command::new("fusermount")
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl RcloneMount {
    /// `rclone mount REMOTE DIR` with the bench's cache TTL for attributes and listings, as
    /// `cybs3 mount` gets it; `dir` and a fresh VFS cache `cache` are made here.
    pub(super) fn new(
        r: &Rclone,
        remote: &str,
        dir: &Path,
        cache: &Path,
        ttl: f64,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        // A fresh cache each time: a file written earlier must not be read back from it.
        let _ = std::fs::remove_dir_all(cache);
        std::fs::create_dir_all(cache)?;
        let ttl = format!("{ttl}s");
        let d = dir.to_str().context("mountpoint is not UTF-8")?;
        let c = cache.to_str().context("cache directory is not UTF-8")?;
        let log = std::fs::File::create(cache.with_extension("log"))?;
        let mut cmd = r.command(&[
            "mount",
            remote,
            d,
            "--vfs-cache-mode",
            "writes",
            "--cache-dir",
            c,
            "--dir-cache-time",
            &ttl,
            "--attr-timeout",
            &ttl,
            // Uploads start at close rather than 5 s later: the bench times until the data
            // is in S3, and rclone's default delay would only be idle time on its side.
            "--vfs-write-back",
            "0s",
        ]);
        cmd.stdout(Stdio::null()).stderr(log);
        let child = cmd.spawn().context("cannot run rclone mount")?;
        let mut mount = RcloneMount {
            dir: dir.to_path_buf(),
            cache: cache.to_path_buf(),
            child,
            mounted: true,
        };
        let parent = std::fs::metadata(dir.parent().unwrap_or(Path::new("/")))?.dev();
        let t = Instant::now();
        // Mounted once the mountpoint is on another device than its parent.
        while std::fs::metadata(dir)?.dev() == parent {
            if let Some(status) = mount.child.try_wait()? {
                let log = std::fs::read_to_string(cache.with_extension("log")).unwrap_or_default();
                mount.mounted = false;
                bail!(
                    "rclone mount {remote} exited ({status}): {}",
                    log.lines().last().unwrap_or("no output")
                );
            }
            if t.elapsed() > MOUNT_WAIT {
                bail!("rclone mount {remote} did not mount within {MOUNT_WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(mount)
    }

    /// `fusermount -u DIR`, then the child's exit awaited.
    pub(super) fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        let status = std::process::Command::new("fusermount")
            .arg("-u")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status()
            .context("cannot run fusermount")?;
        if !status.success() {
            bail!("fusermount -u {} failed ({status})", self.dir.display());
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for RcloneMount {
    fn drop(&mut self) {
        if self.mounted {
            let unmounted = std::process::Command::new("fusermount")
                .arg("-u")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                eprintln!("fusermount -u failed; detaching {}", self.dir.display());
                if let Ok(c) = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()) {
                    // SAFETY: `c` is a NUL-terminated path that outlives the call, and
                    // umount2 keeps no pointer to it.
                    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                }
            }
        }
        // After an unmount the child exits by itself; after an error it may not have.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

/// Waits until `rclone size PATH` of the remote counts `count` files of `bytes` bytes in
/// all: what was closed on the mount is then in S3 (a multipart upload shows no object
/// before it completes). How long that took is the caller's to time.
pub(super) fn wait_uploaded(r: &Rclone, path: &str, count: u64, bytes: u64) -> Result<()> {
    let t = Instant::now();
    loop {
        let out = r
            .command(&["size", "--json", path])
            .stderr(Stdio::null())
            .output()
            .context("cannot run rclone size")?;
        // A path not there yet is an error to rclone: not landed, as a count short is.
        if out.status.success() {
            let size: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            if size["count"] == count && size["bytes"] == bytes {
                return Ok(());
            }
        }
        if t.elapsed() > UPLOAD_WAIT {
            bail!("{path}: rclone did not upload {count} files of {bytes} bytes within {UPLOAD_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
