//! The session: building the filesystem for a vault, mounting it, and serving it until
//! it is unmounted; SIGTERM, SIGINT and SIGHUP flush pending writes, then unmount.

use crate::adapter::VaultFs;
use crate::filesystem::Core;
use crate::MountOptions;
use anyhow::Context;
use fuser::{MountOption, SessionACL};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use vault::vault::Vault;

/// Uploads every file with pending writes (`cybs3 umount` does this before unmounting).
#[derive(Clone)]
pub struct Flusher {
    core: Arc<Core<Vault>>,
}

impl Flusher {
    pub fn flush_all(&self) -> anyhow::Result<()> {
        let _tree = self.core.tree.read().unwrap_or_else(|e| e.into_inner());
        let failed = self.core.flush_all();
        if failed > 0 {
            anyhow::bail!("{failed} files could not be uploaded");
        }
        Ok(())
    }
}

impl VaultFs {
    /// Call it before starting other threads: it blocks the exit signals, which
    /// [`serve`] handles, in this thread and the runtime's.
    pub fn new(vault: Vault, opts: MountOptions) -> anyhow::Result<VaultFs> {
        exit_signals();
        vault::config::private_dir(&opts.cache_dir)?;
        let unsaved = crate::writeback::clean_leftovers(&opts.cache_dir)?;
        if !unsaved.is_empty() {
            let dir = opts.cache_dir.join(crate::writeback::UNSAVED);
            let msg = format!(
                "{} file(s) whose upload failed in an earlier mount are kept in {}: copy what \
                 you need back into the mount, then delete them",
                unsaved.len(),
                dir.display()
            );
            eprintln!("warning: {msg}");
            tracing::warn!("{msg}");
        }
        Ok(VaultFs {
            core: Arc::new(Core::new(vault, opts)?),
        })
    }

    pub fn flusher(&self) -> Flusher {
        Flusher {
            core: self.core.clone(),
        }
    }

    /// The fuser configuration for these options.
    pub fn config(&self) -> fuser::Config {
        let o = &self.core.opts;
        let mut c = fuser::Config::default();
        c.mount_options = vec![
            MountOption::FSName(o.fs_name.clone()),
            MountOption::Subtype("cybs3".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            if o.read_only {
                MountOption::RO
            } else {
                MountOption::RW
            },
        ];
        if o.allow_other {
            c.mount_options.push(MountOption::DefaultPermissions);
            c.acl = SessionACL::All;
        }
        // Uploads on close block their thread: enough of them for many writers at once.
        c.n_threads = Some(16);
        c.clone_fd = true;
        c
    }
}

/// SIGTERM, SIGINT and SIGHUP, blocked in the calling thread (and so in every thread it
/// starts afterwards), to be taken by `sigwait` in one.
fn exit_signals() -> libc::sigset_t {
    // SAFETY: `sigset_t` is plain old data, for which all-zero bytes are a valid value
    // (and `sigemptyset` initialises it right after).
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `sigset_t` for each call; `pthread_sigmask`
    // reads it and takes a null pointer for the old mask it is not asked for.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Mounts `fs` at `mountpoint` and serves it until it is unmounted. SIGTERM, SIGINT and
/// SIGHUP flush pending writes, then unmount.
pub fn serve(fs: VaultFs, mountpoint: &Path) -> anyhow::Result<()> {
    let set = exit_signals();
    let flusher = fs.flusher();
    let config = fs.config();
    let mut session = fuser::Session::new(fs, mountpoint, &config)
        .with_context(|| format!("cannot mount {}", mountpoint.display()))?;
    let mut unmounter = session.unmount_callable();
    let where_ = mountpoint.display().to_string();
    std::thread::Builder::new()
        .name("cybs3-signals".into())
        .spawn(move || loop {
            let mut sig = 0;
            // SAFETY: `set` and `sig` are valid for the call; sigwait only reads the one
            // and writes the other.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            tracing::info!("signal {sig}: flushing, then unmounting {where_}");
            if let Err(e) = flusher.flush_all() {
                tracing::error!("flush before unmount: {e:#}");
            }
            // A close's RELEASE may still be in flight: retry briefly, then detach
            // lazily; files still open keep working and are uploaded when closed, and
            // the session ends after the last one.
            let Ok(c) = std::ffi::CString::new(where_.as_bytes()) else {
                return;
            };
            // fuser's own unmount first (it then knows), retries with umount(2).
            if unmounter.unmount().is_ok() {
                return;
            }
            let mut tries = 0;
            loop {
                // SAFETY: `c` is a NUL-terminated path that outlives the call.
                if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
                    return;
                }
                let e = std::io::Error::last_os_error();
                if tries < 40 && e.raw_os_error() == Some(libc::EBUSY) {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                tracing::warn!("cannot unmount {where_} ({e}): detaching it lazily");
                // SAFETY: as above.
                if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
                    return;
                }
                tracing::error!(
                    "cannot unmount {where_}: {}",
                    std::io::Error::last_os_error()
                );
                break;
            }
        })?;
    let at = mountpoint.to_path_buf();
    std::thread::Builder::new()
        .name("cybs3-readahead".into())
        .spawn(move || crate::readahead::widen(&at))?;
    session.run()?;
    Ok(())
}
