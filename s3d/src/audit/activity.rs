//! Who made requests since a time: the access keys and users the log's lines name, for
//! the access analyzer's unused users and keys. It reads the files of the days since
//! then, line by line, and keeps only the two names of each line.

use crate::audit::head;
use crate::audit::line::{format_time, Kind};
use crate::audit::{io, AuditError};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

/// The callers of the requests since a time.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    pub access_keys: HashSet<String>,
    /// User names (`root`, `bucket:NAME` for bucket keys, `uid:N` on the socket).
    pub users: HashSet<String>,
}

/// The fields of a line the activity needs.
#[derive(Deserialize)]
struct Caller {
    time: String,
    kind: Kind,
    #[serde(default)]
    access_key: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

/// The callers of the requests in the log in `dir` at or after `since`.
pub fn activity(dir: &Path, since: SystemTime) -> Result<Activity, AuditError> {
    let since = format_time(since);
    // A line sits in its own day's file or a later one (written just after midnight).
    let first_day = since.get(..10).unwrap_or("");
    let mut out = Activity::default();
    for path in head::files(dir)? {
        if head::name(&path).as_str() < first_day {
            continue;
        }
        let text = std::fs::read(&path).map_err(io(&path))?;
        for raw in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            // A line that does not read is verify's to report; it names nobody here.
            let Ok(line) = serde_json::from_slice::<Caller>(raw) else {
                continue;
            };
            if line.kind != Kind::Request || line.time < since {
                continue;
            }
            out.access_keys.extend(line.access_key);
            out.users.extend(line.user);
        }
    }
    Ok(out)
}
