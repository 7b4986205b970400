//! What the machine does besides the bench: its load, the disk's pending writes, and
//! its page cache.

/// Let earlier writes reach the disk first, so each measurement pays only for its own.
pub(crate) fn settle_disk() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// The 1-minute load average, so results can be judged against what else was running.
pub(crate) fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Drop the page cache (root only), so the next read comes from the disk; `false` when
/// this process may not.
pub(crate) fn drop_caches() -> std::io::Result<bool> {
    settle_disk();
    match std::fs::write("/proc/sys/vm/drop_caches", "3") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(false),
        Err(e) => Err(e),
    }
}
