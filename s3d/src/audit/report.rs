//! The compliance export: the requests of a period (optionally one user's, one bucket's,
//! or only the denied ones), with totals per user and per action, the denials, and the
//! changes made through the management socket (admin and IAM).

use crate::audit::head;
use crate::audit::line::{format_offset, Kind, Line};
use crate::audit::{io, AuditError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, Time};

/// Which lines a report takes.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// From this time (as lines hold times: see [`Query::time`]), inclusive.
    pub from: String,
    /// Up to this time, inclusive.
    pub to: String,
    /// The caller, by user name or access key.
    pub user: Option<String>,
    pub bucket: Option<String>,
    pub denied: bool,
}

impl Query {
    /// A bound given as RFC 3339 (`2026-12-05T10:00:00Z`, any offset) or a date
    /// (`2026-12-05`: its first moment as a start, its last as an end), in UTC.
    pub fn time(given: &str, end: bool) -> Result<String, AuditError> {
        if let Ok(t) = OffsetDateTime::parse(given, &Rfc3339) {
            return Ok(format_offset(t));
        }
        let date = Date::parse(given, format_description!("[year]-[month]-[day]")).map_err(|_| {
            AuditError::BadTime(format!(
                "{given:?} is not a time: give RFC 3339 (2026-12-05T10:00:00Z) or a date (2026-12-05)"
            ))
        })?;
        let time = if end {
            Time::from_hms_milli(23, 59, 59, 999).expect("a valid time")
        } else {
            Time::MIDNIGHT
        };
        Ok(format_offset(date.with_time(time).assume_utc()))
    }

    fn takes(&self, l: &Line) -> bool {
        l.kind == Kind::Request
            && self.from.as_str() <= l.time.as_str()
            && l.time.as_str() <= self.to.as_str()
            && self
                .user
                .as_ref()
                .is_none_or(|u| l.user.as_ref() == Some(u) || l.access_key.as_ref() == Some(u))
            && self
                .bucket
                .as_ref()
                .is_none_or(|b| l.bucket.as_ref() == Some(b))
            && (!self.denied || l.denied())
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub denied: u64,
    pub per_user: BTreeMap<String, u64>,
    pub per_action: BTreeMap<String, u64>,
    /// Changes made through the management socket, other than to users and policies.
    pub admin_changes: u64,
    /// Users, groups, policies and their attachments changed.
    pub iam_changes: u64,
    /// Lines the writer dropped in the period (gap lines), which the report cannot show.
    pub dropped: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub lines: Vec<Line>,
    pub totals: Totals,
}

/// The report of `query` over the log in `dir` (the lines as written: verify says
/// whether they can be trusted).
pub fn report(dir: &Path, query: &Query) -> Result<Report, AuditError> {
    let mut out = Report {
        from: query.from.clone(),
        to: query.to.clone(),
        lines: Vec::new(),
        totals: Totals::default(),
    };
    // A line sits in its own day's file or a later one (written just after midnight).
    let first_day = query.from.get(..10).unwrap_or("");
    for path in head::files(dir)? {
        let name = head::name(&path);
        if name.as_str() < first_day {
            continue;
        }
        let text = std::fs::read(&path).map_err(io(&path))?;
        for raw in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            // Edited lines are verify's to report; the report shows what reads.
            let Ok(line) = serde_json::from_slice::<Line>(raw) else {
                continue;
            };
            if line.kind == Kind::Gap && query.from <= line.time && line.time <= query.to {
                out.totals.dropped += line.dropped.unwrap_or(0);
            }
            if !query.takes(&line) {
                continue;
            }
            count(&mut out.totals, &line);
            out.lines.push(line);
        }
    }
    Ok(out)
}

fn count(t: &mut Totals, l: &Line) {
    t.requests += 1;
    if l.denied() {
        t.denied += 1;
    }
    let user = l.user.clone().unwrap_or_else(|| "unknown".into());
    *t.per_user.entry(user).or_default() += 1;
    let action = l.action.clone().unwrap_or_else(|| "unknown".into());
    let succeeded = l.status.is_some_and(|s| s < 300);
    if l.api.as_deref() == Some("admin") && succeeded && is_change(&action) {
        if action.starts_with("iam:") {
            t.iam_changes += 1;
        } else {
            t.admin_changes += 1;
        }
    }
    *t.per_action.entry(action).or_default() += 1;
}

/// Management calls that only read are named `…:List…`, `…:Get…` or `…:Status`.
fn is_change(action: &str) -> bool {
    let name = action.split_once(':').map_or(action, |(_, n)| n);
    !(name.starts_with("List") || name.starts_with("Get") || name.ends_with("Status"))
}
