//! One line of the audit log and the chain that links the lines.
//!
//! A line is a JSON object whose first fields are `prev` (the link of the line before
//! it: HMAC-SHA256 of that line's bytes, in hex) and `seq` (its number in the whole
//! log, from 0). The HMAC key is derived from the server's key, so editing a line and
//! recomputing the links after it needs that key: without it, any change shows.

use crate::trail::Record;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::SystemTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

/// The link the first line of the log points at.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Times as lines hold them: UTC, milliseconds, fixed width (so they sort as text).
const TIME: &[FormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The keyed hash that links each line to the one before it.
#[derive(Clone)]
pub struct Chain(Hmac<Sha256>);

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Chain")
    }
}

impl Chain {
    /// The chain of a server with `server_key` (a key of its own, derived from it).
    pub fn new(server_key: &[u8; 32]) -> Chain {
        let mut derive =
            <Hmac<Sha256> as Mac>::new_from_slice(server_key).expect("HMAC takes any key length");
        derive.update(b"cybs3 audit chain v1");
        let key = derive.finalize().into_bytes();
        Chain(<Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length"))
    }

    /// The link of a line: what the next line's `prev` holds.
    pub fn link(&self, line: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(line);
        mac.finalize().into_bytes().into()
    }
}

/// What a line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Request,
    /// Lines dropped while the buffer was full (`--audit-when-full gap`).
    Gap,
    /// The server started writing; says whether the log ended where its head said.
    Start,
    /// An anomaly alert (`note` says what was seen; `target` is the alert's id).
    Alert,
}

/// One line of the audit log, as written and as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub prev: String,
    pub seq: u64,
    pub time: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `allow` or `deny`; absent when no access check ran (CORS preflights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// What decided: a policy, the ACL, root, a bucket key, or why the caller was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// How long the request took, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub us: Option<u64>,
    /// In a gap line: how many lines were dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// In a start line: whether the log ended where the head said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Line {
    /// A line of `kind` at `time`, its place in the chain and content still to fill.
    pub(crate) fn new(kind: Kind, time: SystemTime) -> Line {
        Line {
            prev: String::new(),
            seq: 0,
            time: format_time(time),
            kind,
            id: None,
            api: None,
            access_key: None,
            user: None,
            session: false,
            source: None,
            action: None,
            bucket: None,
            key: None,
            version: None,
            target: None,
            decision: None,
            by: None,
            status: None,
            error: None,
            bytes_in: None,
            bytes_out: None,
            us: None,
            dropped: None,
            head_ok: None,
            note: None,
        }
    }

    pub(crate) fn request(r: Record) -> Line {
        let (decision, by) = match r.decision {
            Some(d) => (Some(if d.allowed { "allow" } else { "deny" }), Some(d.by)),
            None => (None, None),
        };
        Line {
            id: Some(r.id.to_string()),
            api: Some(r.api.as_str().to_string()),
            access_key: r.access_key,
            user: r.user.map(|u| u.to_string()),
            session: r.session,
            source: r.source.map(|s| s.to_string()),
            action: r.action.map(|a| a.to_string()),
            bucket: r.bucket,
            key: r.key,
            version: r.version,
            target: r.target,
            decision: decision.map(str::to_string),
            by,
            status: Some(r.status),
            error: r.error,
            bytes_in: Some(r.bytes_in),
            bytes_out: Some(r.bytes_out),
            us: Some(r.micros),
            ..Line::new(Kind::Request, r.time)
        }
    }

    pub(crate) fn alert(a: &crate::anomaly::alert::Alert) -> Line {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(a.time_ns);
        Line {
            action: Some(format!("alert:{}", a.kind.name())),
            user: a.user.clone(),
            bucket: a.bucket.clone(),
            access_key: a.access_key.clone(),
            source: a.source.clone(),
            target: Some(a.id.clone()),
            note: Some(format!("{} Suggested: {}", a.summary(), a.suggestion)),
            ..Line::new(Kind::Alert, at)
        }
    }

    /// The UTC day (`YYYY-MM-DD`) the line belongs to.
    pub fn day(&self) -> &str {
        self.time.get(..10).unwrap_or("")
    }

    pub fn denied(&self) -> bool {
        self.decision.as_deref() == Some("deny")
    }
}

pub(crate) fn format_time(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(TIME)
        .expect("a UTC time formats")
}

/// A time as lines hold it (for comparing with their `time`).
pub(crate) fn format_offset(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TIME)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_depend_on_every_byte_and_on_the_key() {
        let chain = Chain::new(&[1; 32]);
        let a = chain.link(b"{\"seq\":1}");
        assert_eq!(a, chain.link(b"{\"seq\":1}"));
        assert_ne!(a, chain.link(b"{\"seq\":2}"));
        assert_ne!(a, Chain::new(&[2; 32]).link(b"{\"seq\":1}"));
        assert_eq!(
            format_time(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_500)),
            "1970-01-01T00:00:01.500Z"
        );
    }
}
