//! Storage usage: the server counts in its lifecycle day, runs the engine's usage pass
//! (prefixes, access classes: `engine/src/usage_scan.rs`) every interval, so that
//! `admin usage` answers from the counters and the last pass without scanning, and takes
//! the day's totals for the capacity forecast as each usage day begins
//! (`engine/src/usage_history.rs`).

use crate::ctx;
use engine::Store;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Counts usage in `day_secs` days (the counters are rebuilt once if they were kept in
/// other days) and starts the passes: one now, then every hour (every day, if a day is
/// shorter), so that ages and access classes are at most that old.
pub(crate) async fn start(store: Store, day_secs: u64) -> anyhow::Result<()> {
    let day = store.clone();
    ctx::spawn(move || day.set_usage_day(day_secs))
        .await
        .map_err(|e| anyhow::anyhow!("cannot start usage counting: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot start usage counting: {e}"))?;
    tokio::spawn(history(store.clone(), day_secs));
    let every = Duration::from_secs(day_secs.clamp(1, 3600));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            let started = Instant::now();
            match ctx::spawn(move || store.scan_usage()).await {
                Ok(Ok(s)) => tracing::debug!(
                    target: "cybs3::usage",
                    versions = s.scanned,
                    prefixes = s.prefixes.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "usage pass"
                ),
                Ok(Err(e)) => tracing::warn!(target: "cybs3::usage", "usage pass failed: {e}"),
                Err(e) => tracing::warn!(target: "cybs3::usage", "usage pass failed: {e}"),
            }
        }
    });
    Ok(())
}

/// Takes today's totals now (a server started mid-day has none yet), then each day's as
/// it begins: sleeps to the next boundary of the wall clock's usage days rather than
/// ticking every day, so that restarts and slow passes never shift the time of day the
/// records are taken at. A wake-up a little early finds its day recorded and sleeps again
/// to the boundary.
async fn history(store: Store, day_secs: u64) {
    let day = Duration::from_secs(day_secs.max(1));
    loop {
        let s = store.clone();
        match ctx::spawn(move || s.record_usage_day()).await {
            Ok(Ok(written)) => {
                tracing::debug!(target: "cybs3::usage", written, "usage day recorded")
            }
            Ok(Err(e)) => tracing::warn!(target: "cybs3::usage", "usage history: {e}"),
            Err(e) => tracing::warn!(target: "cybs3::usage", "usage history: {e}"),
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let into_day = Duration::from_nanos((now.as_nanos() % day.as_nanos()) as u64);
        // A few milliseconds past the boundary, so the clock reads the new day.
        tokio::time::sleep(day - into_day + Duration::from_millis(5)).await;
    }
}
