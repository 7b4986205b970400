//! What the machine does besides the bench: its load, and the disk's pending writes.

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
