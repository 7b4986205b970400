//! An alert: what was seen, compared with what, how bad it is and what to do; kept in
//! the index (server records `alerts`/ID, the newest [`KEEP`]) so that
//! `cybs3 admin alerts` lists them after a restart and the shipper can deliver them.

use serde::{Deserialize, Serialize};

/// Alerts kept; older ones are removed as new ones come.
pub const KEEP: usize = 1000;
/// The server records' namespace.
pub(crate) const NS: &str = "alerts";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A burst of overwrites and deletes (ransomware-like mass changes).
    Ransomware,
    /// Reads far above the usual volume (exfiltration-like).
    Exfiltration,
    /// An access key used from a network it was never used from.
    NewNetwork,
    /// Repeated failed logins or signatures from one source (password or key guessing).
    Guessing,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ransomware => "ransomware",
            Kind::Exfiltration => "exfiltration",
            Kind::NewNetwork => "new_network",
            Kind::Guessing => "guessing",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One alert. `saw` and `usual` are sentences a person reads; the numbers behind them
/// are fields of their own for scripts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Sortable by time: the raise time in nanoseconds, zero-padded, and a counter.
    pub id: String,
    pub time_ns: u64,
    pub kind: Kind,
    pub severity: Severity,
    /// Whom or what it is about: `user:NAME`, `bucket:NAME`, `key:AK`, `source:IP`.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What was seen, e.g. "512 overwrites and deletes in 60 s".
    pub saw: String,
    /// What it was compared with, e.g. "usually 0.4 ± 0.7 per 60 s at this hour".
    pub usual: String,
    /// The count (or bytes) seen in the window, the baseline's mean and standard
    /// deviation, and the limit it passed.
    pub observed: f64,
    pub mean: f64,
    pub sd: f64,
    pub limit: f64,
    pub window_secs: f64,
    /// What an admin should do about it.
    pub suggestion: String,
    /// When the alert froze the user's deletes and overwrites (a bucket's setting).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub froze: Vec<String>,
}

impl Alert {
    /// One line a person reads: severity, kind, what was seen and compared with what.
    pub fn summary(&self) -> String {
        format!(
            "{:?} {} alert on {}: {}; {}",
            self.severity,
            self.kind.name(),
            self.subject,
            self.saw,
            self.usual
        )
    }
}

/// Keep `alert`, dropping the oldest beyond [`KEEP`].
pub(crate) fn store(store: &engine::Store, alert: &Alert) -> engine::Result<()> {
    let bytes = serde_json::to_vec(alert).expect("an alert serializes");
    store.set_server_record(NS, &alert.id, Some(bytes))?;
    // Alerts are rare: reading them all to find the oldest costs nothing that matters.
    let kept = store.server_records(NS)?;
    for (old, _) in kept.iter().take(kept.len().saturating_sub(KEEP)) {
        store.set_server_record(NS, old, None)?;
    }
    Ok(())
}

/// The alerts kept, oldest first.
pub fn list(store: &engine::Store) -> engine::Result<Vec<Alert>> {
    Ok(store
        .server_records(NS)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect())
}
