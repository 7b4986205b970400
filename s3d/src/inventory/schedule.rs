//! The inventory schedule: a task started with the server looks, every tick, for the
//! enabled configurations whose period (one day or seven, counted in the lifecycle day
//! of `--lifecycle-day-secs`) has passed since their last run, and runs them one at a
//! time on a blocking thread. Each configuration's last run is kept in a bucket
//! attribute, written once the run is complete: a restart neither runs one again nor
//! skips one, and a run cut short by a stop is made again.

use super::report::{self, InventoryError, FILE_ROWS};
use crate::ctx;
use crate::lifecycle::Settings;
use engine::Store;
use std::collections::BTreeMap;
use std::time::Duration;

/// The bucket attribute holding each configuration's last run (JSON: id → Unix ns).
const RUNS_ATTR: &str = "inventory-runs";
/// The longest wait between two looks: a due report starts within it.
const MAX_TICK_SECS: u64 = 60;

/// Run due inventories until the runtime stops.
pub(crate) async fn run(store: Store, settings: Settings) {
    // A tenth of a day, so that a shortened test day still sees its reports on time.
    let tick = Duration::from_secs((settings.day_secs / 10).clamp(1, MAX_TICK_SECS));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let store = store.clone();
        let day_secs = settings.day_secs;
        match ctx::spawn(move || due(&store, day_secs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(target: "cybs3::inventory", "inventory schedule: {e}; looking again at the next tick")
            }
            Err(e) => tracing::warn!(target: "cybs3::inventory", "inventory schedule: {e}"),
        }
    }
}

/// Make every report that is due.
fn due(store: &Store, day_secs: u64) -> Result<(), InventoryError> {
    for bucket in store.list_buckets()? {
        let b = bucket.name;
        let configs = match super::load(store, &b) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(target: "cybs3::inventory", bucket = %b, "skipped: {e}");
                continue;
            }
        };
        if !configs.iter().any(|c| c.enabled) {
            continue;
        }
        let mut runs: BTreeMap<String, u64> = match store.bucket_attr(&b, RUNS_ATTR) {
            Ok(stored) => stored
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default(),
            // Removed since it was listed.
            Err(engine::Error::NoSuchBucket(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        for inv in configs.iter().filter(|c| c.enabled) {
            let days = if inv.weekly { 7 } else { 1 };
            let period_ns = day_secs.saturating_mul(days).saturating_mul(1_000_000_000);
            let now = ctx::now_ns();
            if runs
                .get(&inv.id)
                .is_some_and(|last| now < last.saturating_add(period_ns))
            {
                continue;
            }
            match report::run(store, &b, inv, now, FILE_ROWS) {
                Ok(r) => tracing::info!(
                    target: "cybs3::inventory",
                    bucket = %b,
                    id = %inv.id,
                    rows = r.rows,
                    manifest = %format!("{}/{}", r.destination_bucket, r.manifest_key),
                    "inventory report written"
                ),
                // A configuration problem: said once per period, not at every tick.
                Err(e @ InventoryError::NoDestination(_)) => {
                    tracing::warn!(target: "cybs3::inventory", bucket = %b, id = %inv.id, "no report: {e}")
                }
                Err(e) => return Err(e),
            }
            runs.insert(inv.id.clone(), now);
            // Configurations removed since their last run are forgotten.
            runs.retain(|id, _| configs.iter().any(|c| &c.id == id));
            let bytes = serde_json::to_vec(&runs).expect("run times serialize");
            match store.set_bucket_attr(&b, RUNS_ATTR, Some(bytes)) {
                Err(engine::Error::NoSuchBucket(_)) => break,
                other => other?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::config::{Destination, Format, Inventory};

    #[test]
    fn a_report_is_made_once_per_period() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = engine::StoreConfig::new(vec![dir.path().join("d0")]);
        cfg.background = false;
        let s = Store::open(cfg).unwrap();
        s.create_bucket("src").unwrap();
        s.create_bucket("dest").unwrap();
        let mut w = s.put("src", "k").unwrap();
        w.write(b"k").unwrap();
        w.finish(engine::ObjectMeta::default()).unwrap();
        let inv = Inventory {
            id: "i".into(),
            enabled: true,
            prefix: None,
            all_versions: false,
            fields: vec![],
            weekly: false,
            format: Format::Csv,
            destination: Destination {
                bucket: "dest".into(),
                prefix: None,
                account_id: None,
            },
        };
        super::super::save(&s, "src", &[inv]).unwrap();
        let reports = |s: &Store| {
            let q = engine::ListQuery {
                prefix: "src/i/".into(),
                max: 1000,
                ..Default::default()
            };
            let page = s.list("dest", &q).unwrap();
            page.objects
                .iter()
                .filter(|v| v.key.starts_with("src/i/data/"))
                .count()
        };
        due(&s, 3600).unwrap();
        assert_eq!(reports(&s), 1);
        // Within the day (and after a restart, since the time is stored): nothing.
        due(&s, 3600).unwrap();
        assert_eq!(reports(&s), 1);
        // Two one-second days later: the next one.
        let mut runs: BTreeMap<String, u64> =
            serde_json::from_slice(&s.bucket_attr("src", RUNS_ATTR).unwrap().unwrap()).unwrap();
        *runs.get_mut("i").unwrap() -= 2_000_000_000;
        s.set_bucket_attr("src", RUNS_ATTR, Some(serde_json::to_vec(&runs).unwrap()))
            .unwrap();
        due(&s, 1).unwrap();
        assert_eq!(reports(&s), 2);
    }
}
