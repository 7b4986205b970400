//! The detector's task: it closes windows that end without requests, saves baselines,
//! and takes each raised alert to where people see it: the index (`cybs3 admin
//! alerts`), the audit log (a line of kind `alert`), and the notification target chosen
//! with `cybs3 admin alerts target NAME`. Delivery to the target resumes from a cursor
//! (server record `anomaly`/`shipped`: the last alert delivered), so an alert raised
//! while the target is down arrives once it is back, and a restart loses none.

use super::alert::{self, Alert};
use super::Anomalies;
use crate::audit::Log;
use crate::notify::Deliverer;
use std::sync::Arc;
use std::time::{Duration, Instant};

const NS: &str = "anomaly";
const TARGET: &str = "target";
const SHIPPED: &str = "shipped";
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Runs until the server stops.
pub(crate) async fn run(anomalies: Anomalies, audit: Option<Log>, deliverer: Arc<Deliverer>) {
    let window = anomalies.clock().window;
    let mut saved = Instant::now();
    let mut delay = window;
    loop {
        tokio::select! {
            () = anomalies.wait_raised() => {}
            () = tokio::time::sleep(delay) => {}
        }
        let save = saved.elapsed() >= super::SAVE_EVERY;
        if save {
            saved = Instant::now();
        }
        let a = anomalies.clone();
        let pending = tokio::task::spawn_blocking(move || {
            if let Err(e) = a.tick(save) {
                tracing::warn!("cannot save the anomaly baselines: {e}");
            }
            let pending = a.take_pending();
            for alert in &pending {
                if let Err(e) = alert::store(a.store(), alert) {
                    tracing::error!("cannot keep alert {}: {e}", alert.id);
                }
            }
            pending
        })
        .await
        .unwrap_or_default();
        if let Some(log) = &audit {
            for a in &pending {
                log.append_alert(a).await;
            }
        }
        delay = match deliver(&anomalies, &deliverer).await {
            Ok(()) => window,
            Err(e) => {
                tracing::warn!("delivering alerts: {e}");
                (delay * 2).clamp(window, MAX_DELAY)
            }
        };
    }
}

/// Sends the alerts after the cursor to the target, if one is chosen.
async fn deliver(anomalies: &Anomalies, deliverer: &Deliverer) -> Result<(), String> {
    let store = anomalies.store().clone();
    let targets = deliverer.targets().clone();
    let found = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let Some(name) = target(&store).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let cursor = store
            .server_record(NS, SHIPPED)
            .map_err(|e| e.to_string())?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let due: Vec<Alert> = (alert::list(&store).map_err(|e| e.to_string())?)
            .into_iter()
            .filter(|a| a.id > cursor)
            .collect();
        if due.is_empty() {
            return Ok(None);
        }
        let opened = targets.open(&name).map_err(|e| e.to_string())?;
        Ok(Some((opened, due)))
    })
    .await
    .map_err(|e| e.to_string())??;
    let Some((opened, due)) = found else {
        return Ok(());
    };
    for a in due {
        let body = serde_json::to_vec(&a).expect("an alert serializes");
        let m = crate::notify::Message {
            name: "Alert",
            time_ns: a.time_ns,
            bucket: a.bucket.as_deref().unwrap_or(""),
            key: "",
            body: &body,
        };
        deliverer.send(&opened, &m).await.map_err(|e| e.0)?;
        let store = anomalies.store().clone();
        tokio::task::spawn_blocking(move || {
            store.set_server_record(NS, SHIPPED, Some(a.id.into_bytes()))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The notification target alerts go to, if one is chosen.
pub(crate) fn target(store: &engine::Store) -> engine::Result<Option<String>> {
    Ok(store
        .server_record(NS, TARGET)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Choose (or with `None`, stop) the target; alerts raised before it was chosen are
/// not sent to it.
pub(crate) fn set_target(store: &engine::Store, name: Option<&str>) -> engine::Result<()> {
    if name.is_some() {
        if let Some(last) = alert::list(store)?.last() {
            store.set_server_record(NS, SHIPPED, Some(last.id.clone().into_bytes()))?;
        }
    }
    store.set_server_record(NS, TARGET, name.map(|n| n.as_bytes().to_vec()))
}
