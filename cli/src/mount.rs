//! `cybs3 mount` and `cybs3 umount`: a vault as a POSIX filesystem (FUSE, crate `fs`).
//!
//! Without `--foreground`, `mount` starts itself again with `--foreground`, detached (own
//! session, output to `<config>/mounts/<id>.log`), and returns once the mountpoint's
//! device changed, i.e. the mount is ready. The serving process records its pid in
//! `<config>/mounts/<id>.pid`; `umount` sends it SIGTERM (flush, then unmount) and waits.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct MountArgs {
    /// An existing empty directory
    pub mountpoint: PathBuf,
    /// The vault to mount (default: the active one)
    #[arg(long, value_name = "NAME")]
    pub vault: Option<String>,
    /// Stay attached until unmounted or interrupted
    #[arg(long)]
    pub foreground: bool,
    /// Refuse every change (EROFS)
    #[arg(long)]
    pub read_only: bool,
    /// Let other users in (the kernel enforces modes and owners)
    #[arg(long)]
    pub allow_other: bool,
    /// Bound of the local copies of files open for writing, e.g. 512M or 10G; a write
    /// past it fails with ENOSPC (the cache never takes the disk's last 5 % either).
    /// The read cache (--prefetch learn) has a bound of its own, in memory: this size,
    /// or 256M without it, at most a quarter of the machine's memory
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_size: Option<u64>,
    /// learn: keep per-directory statistics of which files are read after which (in
    /// name order, or an order seen before) and prefetch the likely next files whole
    /// into a read cache in memory, served while the listing names the same object
    /// (ETag). off: no statistics and no read cache, only read-ahead within an open file
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Prefetch::Learn)]
    pub prefetch: Prefetch,
    /// How long listings and attributes are trusted, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub cache_ttl: f64,
    /// Where copies of files open for writing are kept (created 0700): a disk of your
    /// choice. Copies are unlinked while open, so a crash leaves none behind; uploads
    /// that failed are kept in its `unsaved/` [default: <config>/cache/mount-ID]
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// What the mount prefetches across files (`--prefetch`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    Learn,
    Off,
}

/// A size in bytes, with an optional binary suffix: `4096`, `512K`, `100M`, `10G`, `1T`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, ""),
    };
    let shift = match unit
        .trim_end_matches(['i', 'B', 'b'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?} is not a size: use e.g. 512M or 10G")),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{s:?} is not a size: use e.g. 512M or 10G"))
}

/// A stable name for a mountpoint's files under `<config>/mounts` and the cache.
fn mount_id(mountpoint: &Path) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in mountpoint.as_os_str().as_encoded_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn mounts_dir() -> PathBuf {
    vault::config::config_dir().join("mounts")
}

fn dev_of(p: &Path) -> Result<u64> {
    Ok(std::fs::metadata(p)
        .with_context(|| format!("cannot stat {}", p.display()))?
        .dev())
}

/// Whether something is mounted at `p` (its device differs from its parent's).
fn is_mounted(p: &Path) -> bool {
    let parent = p.parent().unwrap_or(Path::new("/"));
    match (dev_of(p), dev_of(parent)) {
        (Ok(a), Ok(b)) => a != b,
        // A FUSE mount whose server died answers ENOTCONN: still mounted.
        (Err(_), _) => true,
        _ => false,
    }
}

pub fn run(args: MountArgs) -> Result<()> {
    let mountpoint = std::fs::canonicalize(&args.mountpoint)
        .with_context(|| format!("no mountpoint {}", args.mountpoint.display()))?;
    if !mountpoint.is_dir() {
        bail!("{} is not a directory", mountpoint.display());
    }
    if !(args.cache_ttl.is_finite() && args.cache_ttl >= 0.0) {
        bail!("--cache-ttl must be a number of seconds");
    }
    let id = mount_id(&mountpoint);
    vault::config::private_dir(&mounts_dir())?;
    warn_if_the_session_ends(args.vault.as_deref());
    if args.foreground {
        return serve(&args, &mountpoint, &id);
    }
    if is_mounted(&mountpoint) {
        bail!("{} is already a mountpoint", mountpoint.display());
    }
    let before = dev_of(&mountpoint)?;
    let log_path = mounts_dir().join(format!("{id}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot write {}", log_path.display()))?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("mount")
        .arg(&mountpoint)
        .arg("--foreground")
        .arg("--cache-ttl")
        .arg(args.cache_ttl.to_string());
    if let Some(v) = &args.vault {
        cmd.arg("--vault").arg(v);
    }
    if args.read_only {
        cmd.arg("--read-only");
    }
    if args.allow_other {
        cmd.arg("--allow-other");
    }
    if let Some(s) = args.cache_size {
        cmd.arg("--cache-size").arg(s.to_string());
    }
    if args.prefetch == Prefetch::Off {
        cmd.arg("--prefetch").arg("off");
    }
    if let Some(d) = &args.cache_dir {
        cmd.arg("--cache-dir").arg(std::path::absolute(d)?);
    }
    let mut child =
        crate::server::spawn_detached(&mut cmd, log).context("cannot start the mount process")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the mount process exited ({status}): {}", log.trim());
        }
        if dev_of(&mountpoint).map(|d| d != before).unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("the mount did not become ready within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A mount outlives a directory login's session: without the password it cannot log in
/// again, and fails once the session ends.
fn warn_if_the_session_ends(vault: Option<&str>) {
    let Ok((name, cfg)) = vault::config::Config::load().and_then(|c| c.vault(vault)) else {
        return;
    };
    if cfg.login_user.is_some() && std::env::var_os("CYBS3_PASSWORD").is_none() {
        let left = cfg
            .session_expires_unix
            .map(|t| t.saturating_sub(crate::login::now()) / 60)
            .unwrap_or_default();
        eprintln!(
            "warning: vault {name} uses a directory login whose session ends in {left} minutes; set CYBS3_PASSWORD when mounting so the mount logs in again by itself"
        );
    }
}

fn serve(args: &MountArgs, mountpoint: &Path, id: &str) -> Result<()> {
    let vault = crate::location::open_vault(args.vault.as_deref())?;
    let opts = fs::MountOptions {
        read_only: args.read_only,
        allow_other: args.allow_other,
        cache_ttl: Duration::from_secs_f64(args.cache_ttl),
        cache_dir: match &args.cache_dir {
            Some(d) => std::path::absolute(d)?,
            None => vault::config::config_dir()
                .join("cache")
                .join(format!("mount-{id}")),
        },
        fs_name: format!("cybs3:{}", vault.name),
        cache_size: args.cache_size,
        learn: args.prefetch == Prefetch::Learn,
    };
    let filesystem = fs::VaultFs::new(vault, opts)?;
    let pid_path = mounts_dir().join(format!("{id}.pid"));
    std::fs::write(&pid_path, std::process::id().to_string())?;
    let served = fs::serve(filesystem, mountpoint);
    let _ = std::fs::remove_file(&pid_path);
    served
}

fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that `pid` exists and may be signalled; no memory is
    // passed and nothing is delivered.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// umount(2), for mounts without a live mount process.
fn plain_umount(mountpoint: &Path) -> Result<()> {
    let c = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes())?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; umount2 keeps no pointer.
    if unsafe { libc::umount2(c.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        bail!("cannot unmount {}: {e}", mountpoint.display());
    }
    Ok(())
}

pub fn umount(mountpoint: &Path) -> Result<()> {
    let mountpoint = std::path::absolute(mountpoint)?;
    let mountpoint = std::fs::canonicalize(&mountpoint).unwrap_or(mountpoint);
    let pid_path = mounts_dir().join(format!("{}.pid", mount_id(&mountpoint)));
    let pid: Option<libc::pid_t> = std::fs::read_to_string(&pid_path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&p| p > 0 && process_alive(p));
    let Some(pid) = pid else {
        return plain_umount(&mountpoint);
    };
    // SAFETY: a plain signal to the mount process recorded in the pid file, just seen
    // alive; no memory is passed.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        bail!(
            "cannot signal the mount process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    // Uploads of pending writes come first: allow them time.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let alive = process_alive(pid);
        if !alive || !is_mounted(&mountpoint) {
            // Let the process finish its exit (it removes its pid file).
            let until = Instant::now() + Duration::from_secs(10);
            while process_alive(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if is_mounted(&mountpoint) && !process_alive(pid) {
                // The mount process is gone but left its mount behind.
                let _ = plain_umount(&mountpoint);
            }
            if is_mounted(&mountpoint) {
                bail!(
                    "{} is still mounted (files open? see {})",
                    mountpoint.display(),
                    mounts_dir().display()
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} is still mounted after 600 s", mountpoint.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
