//! The kernel's read-ahead window for the mount. FUSE takes the kernel's default of
//! 128 KiB at INIT and cannot ask for more there, so a file read sequentially reaches
//! the mount as one READ per 128 KiB: a round trip each, which for a file already in
//! the read cache (`warm.rs`) costs more than the copy. With a window of [`WINDOW_KB`]
//! the kernel asks for up to 1 MiB per READ (FUSE's request limit, `max_pages`), ahead
//! of the application. The window is the mount's backing device's `read_ahead_kb` in
//! sysfs, which only root may write; for other users the default stays, and a debug
//! log says so.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The read-ahead window set, KiB: FUSE's largest request (256 pages).
pub(crate) const WINDOW_KB: u32 = 1024;

/// Sets the window of the filesystem mounted at `mountpoint`. It must be called once
/// the session serves requests: INIT sets the window, and this stat is answered only
/// after INIT.
pub(crate) fn widen(mountpoint: &Path) {
    let dev = match std::fs::metadata(mountpoint) {
        Ok(m) => m.dev(),
        Err(e) => {
            tracing::debug!("read-ahead left at the default: {e}");
            return;
        }
    };
    let knob = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    match std::fs::write(&knob, format!("{WINDOW_KB}\n")) {
        Ok(()) => tracing::debug!("read-ahead of {} KiB ({knob})", WINDOW_KB),
        Err(e) => tracing::debug!("read-ahead left at the default ({knob}: {e})"),
    }
}
