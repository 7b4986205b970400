//! Storage usage: the server counts in its lifecycle day and runs the engine's usage pass
//! (prefixes, access classes: `engine/src/usage_scan.rs`) every interval, so that
//! `admin usage` answers from the counters and the last pass without scanning.

use crate::ctx;
use engine::Store;
use std::time::{Duration, Instant};

/// Counts usage in `day_secs` days (the counters are rebuilt once if they were kept in
/// other days) and starts the passes: one now, then every hour (every day, if a day is
/// shorter), so that ages and access classes are at most that old.
pub(crate) async fn start(store: Store, day_secs: u64) -> anyhow::Result<()> {
    let day = store.clone();
    ctx::spawn(move || day.set_usage_day(day_secs))
        .await
        .map_err(|e| anyhow::anyhow!("cannot start usage counting: {e}"))?
        .map_err(|e| anyhow::anyhow!("cannot start usage counting: {e}"))?;
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
