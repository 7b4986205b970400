//! A batch job: the job file a user submits ([`JobSpec`], validated strictly: unknown
//! fields are errors) and the record the engine keeps of it ([`Job`]): its status,
//! counts and its cursor into the manifest.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tasks per chunk: the unit of progress that is recorded (outcomes and cursor in one
/// commit), and so the most a restart does again.
pub(crate) const CHUNK: usize = 1000;
/// Tasks in flight per job when the job file does not say.
pub(crate) const DEFAULT_CONCURRENCY: u32 = 64;
/// The most tasks in flight a job may ask for.
pub(crate) const MAX_CONCURRENCY: u32 = 1024;
/// Failure threshold (AWS's rule): a job fails once more than half of its tasks failed,
/// judged when at least [`THRESHOLD_SAMPLE`] tasks are done, or at its end when it has
/// fewer.
pub(crate) const THRESHOLD_PERCENT: u64 = 50;
pub(crate) const THRESHOLD_SAMPLE: u64 = 1000;

/// A job file, as `cybs3 batch create` takes it (CONTRACT.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub manifest: ManifestSpec,
    pub operation: Operation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSpec>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// Where the list of objects comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ManifestFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<Generate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ManifestFormat {
    /// `bucket,key[,versionId]` lines, keys URL-encoded as AWS writes them.
    Csv,
    /// An S3 Inventory `manifest.json` pointing at its CSV data files.
    Inventory,
}

/// A manifest made from a listing of the objects that existed when the job was made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than_days: Option<u64>,
    /// Only objects written after this time (RFC 3339; S3 Control's `CreatedAfter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    /// Only objects written before this time (RFC 3339; S3 Control's `CreatedBefore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tag: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// What each task does to its object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    Copy(CopyOp),
    ReplaceTags(TagsOp),
    DeleteTags(Empty),
    Delete(Empty),
    Retention(RetentionOp),
    LegalHold(LegalHoldOp),
    Restore(RestoreOp),
    Replicate(Empty),
    Webhook(WebhookOp),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyOp {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// How each copy is encrypted (`AES256` or `aws:kms`), as CopyObject's
    /// `x-amz-server-side-encryption` asks; without it, the destination bucket's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<String>,
    /// The KMS key of `aws:kms` (a name, or an ARN ending in `:key/NAME`); without it,
    /// the server's default key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse_kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
    /// User metadata replacing the source's (CopyObject's `REPLACE` directive, so
    /// Content-Type and the other headers are the job's too); without it, the source's
    /// are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The copies' Content-Type, which also replaces the source's metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Tags replacing the source's; without them, the source's are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl CopyOp {
    fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("copy needs a bucket".into());
        }
        let kms = match self.sse.as_deref() {
            None => false,
            Some("AES256") => false,
            Some("aws:kms") => true,
            Some(other) => return Err(format!("copy sse is AES256 or aws:kms, not {other:?}")),
        };
        if !kms && (self.sse_kms_key_id.is_some() || self.bucket_key_enabled.is_some()) {
            return Err("copy sse_kms_key_id and bucket_key_enabled need sse \"aws:kms\"".into());
        }
        if self.tags.as_ref().is_some_and(|t| t.len() > 10) {
            return Err("an object has at most 10 tags".into());
        }
        Ok(())
    }

    /// Whether the copies' metadata is the job's rather than the source's.
    pub(crate) fn replaces_metadata(&self) -> bool {
        self.metadata.is_some() || self.content_type.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsOp {
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOp {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    /// RFC 3339.
    pub until: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHoldOp {
    /// `ON` or `OFF`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreOp {
    pub days: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookOp {
    /// A notification target's name (`cybs3 admin notify add`).
    pub target: String,
}

/// Where the completion report goes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
}

/// Where a manifest is read from, once validated.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source<'a> {
    Object {
        bucket: &'a str,
        key: &'a str,
        format: ManifestFormat,
    },
    Generate(&'a Generate),
}

impl Operation {
    /// The name reports and listings show (the job file's own).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Copy(_) => "copy",
            Operation::ReplaceTags(_) => "replace_tags",
            Operation::DeleteTags(_) => "delete_tags",
            Operation::Delete(_) => "delete",
            Operation::Retention(_) => "retention",
            Operation::LegalHold(_) => "legal_hold",
            Operation::Restore(_) => "restore",
            Operation::Replicate(_) => "replicate",
            Operation::Webhook(_) => "webhook",
        }
    }
}

impl JobSpec {
    /// Parse and check a job file; every error says what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<JobSpec, String> {
        let spec: JobSpec =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid job file: {e}"))?;
        spec.validate()?;
        Ok(spec)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        self.source()?;
        if let Some(c) = self.concurrency {
            if c == 0 || c > MAX_CONCURRENCY {
                return Err(format!("concurrency must be from 1 to {MAX_CONCURRENCY}"));
            }
        }
        match &self.operation {
            Operation::Copy(c) => c.validate(),
            Operation::ReplaceTags(t) if t.tags.len() > 10 => {
                Err("an object has at most 10 tags".into())
            }
            Operation::Retention(r) => {
                if r.mode != "GOVERNANCE" && r.mode != "COMPLIANCE" {
                    return Err("retention mode is GOVERNANCE or COMPLIANCE".into());
                }
                parse_time(&r.until).map(drop)
            }
            Operation::LegalHold(h) if h.status != "ON" && h.status != "OFF" => {
                Err("legal_hold status is ON or OFF".into())
            }
            Operation::Restore(r) if r.days == 0 => Err("restore days must be at least 1".into()),
            Operation::Webhook(w) if w.target.is_empty() => Err("webhook needs a target".into()),
            _ => Ok(()),
        }
    }

    pub(crate) fn source(&self) -> Result<Source<'_>, String> {
        let m = &self.manifest;
        match (&m.generate, &m.bucket, &m.key) {
            (Some(g), None, None) if m.format.is_none() => {
                if g.bucket.is_empty() {
                    return Err("manifest.generate needs a bucket".into());
                }
                for t in [&g.created_after, &g.created_before].into_iter().flatten() {
                    parse_time(t)?;
                }
                Ok(Source::Generate(g))
            }
            (Some(_), _, _) => Err(
                "manifest is either {\"bucket\", \"key\", \"format\"} or {\"generate\": {...}}, not both"
                    .into(),
            ),
            (None, Some(bucket), Some(key)) if !bucket.is_empty() && !key.is_empty() => {
                Ok(Source::Object {
                    bucket,
                    key,
                    format: m.format.unwrap_or(ManifestFormat::Csv),
                })
            }
            _ => Err("manifest needs a bucket and a key (or generate)".into()),
        }
    }

    pub(crate) fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY) as usize
    }
}

/// An RFC 3339 time as Unix nanoseconds.
pub(crate) fn parse_time(s: &str) -> Result<u64, String> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    u64::try_from(t.unix_timestamp_nanos()).map_err(|_| format!("{s:?} is before 1970"))
}

/// S3 Control's job statuses (those this server goes through).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    New,
    Preparing,
    Active,
    Cancelling,
    Cancelled,
    Complete,
    Failed,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Cancelled | Status::Complete | Status::Failed)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Tasks in the manifest (known once it was read through).
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
}

impl Counts {
    pub fn done(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Whether the failure threshold is passed: more than [`THRESHOLD_PERCENT`] of the
    /// tasks done failed, once [`THRESHOLD_SAMPLE`] are done (or all, for a smaller job).
    pub(crate) fn over_threshold(&self) -> bool {
        let done = self.done();
        let judged = done >= THRESHOLD_SAMPLE || (done > 0 && done >= self.total);
        judged && self.failed * 100 > done * THRESHOLD_PERCENT
    }
}

/// The engine's record of a job. Only the runner writes it once the job exists; requests
/// (cancel, priority) go into their own record, so the two never overwrite each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// Who made it: `root` or a local user, whose rights each task is checked against.
    pub creator: String,
    pub spec: JobSpec,
    pub status: Status,
    pub counts: Counts,
    pub created_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ns: Option<u64>,
    /// Why a job failed, or what stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Manifest entries done (their outcomes are recorded).
    pub cursor: u64,
    /// For a listing: the last key done (a listing resumes after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Outcome records written (`batch-out/ID`, one per chunk).
    pub chunks: u64,
    /// A chunk was started at `cursor` and its outcomes are not recorded: after a
    /// restart its tasks are done again only where that is harmless.
    pub in_flight: bool,
    /// Where the report went, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_keys: Option<(String, String)>,
}

/// What a user may ask of a job after it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Requests {
    pub cancel: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<JobSpec, String> {
        JobSpec::parse(s.as_bytes())
    }

    #[test]
    fn job_files_of_the_contract_parse() {
        let j = parse(
            r#"{"manifest": {"bucket": "m", "key": "list.csv", "format": "csv"},
                "operation": {"copy": {"bucket": "dst", "prefix": "p/", "storage_class": "STANDARD"}},
                "report": {"bucket": "r", "prefix": "rep"}, "priority": 5, "concurrency": 8}"#,
        )
        .unwrap();
        assert_eq!(j.priority, 5);
        assert_eq!(j.concurrency(), 8);
        assert!(matches!(
            j.source().unwrap(),
            Source::Object {
                format: ManifestFormat::Csv,
                ..
            }
        ));
        let g = parse(
            r#"{"manifest": {"generate": {"bucket": "b", "prefix": "x/", "older_than_days": 3,
                "created_after": "2020-01-01T00:00:00Z", "created_before": "2030-01-01T00:00:00.5Z",
                "tag": {"k": "v"}, "storage_class": "GLACIER"}}, "operation": {"delete_tags": {}}}"#,
        )
        .unwrap();
        assert!(matches!(g.source().unwrap(), Source::Generate(x) if x.tag["k"] == "v"));
        for op in [
            r#"{"copy": {"bucket": "d", "sse": "aws:kms", "sse_kms_key_id": "team", "bucket_key_enabled": true,
                "metadata": {"a": "b"}, "content_type": "text/plain", "tags": {"t": "1"}}}"#,
            r#"{"copy": {"bucket": "d", "sse": "AES256"}}"#,
            r#"{"replace_tags": {"tags": {"a": "b"}}}"#,
            r#"{"delete": {}}"#,
            r#"{"retention": {"mode": "GOVERNANCE", "until": "2030-01-01T00:00:00Z"}}"#,
            r#"{"legal_hold": {"status": "ON"}}"#,
            r#"{"restore": {"days": 2}}"#,
            r#"{"replicate": {}}"#,
            r#"{"webhook": {"target": "hook"}}"#,
        ] {
            let s = format!(r#"{{"manifest": {{"bucket": "m", "key": "k"}}, "operation": {op}}}"#);
            parse(&s).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let bad = [
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"delete": {}}, "colour": 1}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k", "fmt": "csv"}, "operation": {"delete": {}}}"#,
                "unknown field `fmt`",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"delete": {"force": true}}}"#,
                "unknown field `force`",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"shred": {}}}"#,
                "unknown variant `shred`",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k", "format": "xml"}, "operation": {"delete": {}}}"#,
                "unknown variant `xml`",
            ),
            (
                r#"{"manifest": {"bucket": "m"}, "operation": {"delete": {}}}"#,
                "needs a bucket and a key",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k", "generate": {"bucket": "b"}}, "operation": {"delete": {}}}"#,
                "not both",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"retention": {"mode": "X", "until": "2030-01-01T00:00:00Z"}}}"#,
                "GOVERNANCE or COMPLIANCE",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"retention": {"mode": "GOVERNANCE", "until": "soon"}}}"#,
                "RFC 3339",
            ),
            (
                r#"{"manifest": {"generate": {"bucket": "b", "created_before": "yesterday"}}, "operation": {"delete": {}}}"#,
                "RFC 3339",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"legal_hold": {"status": "on"}}}"#,
                "ON or OFF",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"delete": {}}, "concurrency": 0}"#,
                "concurrency",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"copy": {"bucket": "d", "sse": "aws:kms:dsse"}}}"#,
                "AES256 or aws:kms",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"copy": {"bucket": "d", "sse": "AES256", "sse_kms_key_id": "k"}}}"#,
                "need sse \"aws:kms\"",
            ),
            (
                r#"{"manifest": {"bucket": "m", "key": "k"}, "operation": {"copy": {"bucket": "d", "bucket_key_enabled": true}}}"#,
                "need sse \"aws:kms\"",
            ),
        ];
        for (s, want) in bad {
            let e = parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn the_failure_threshold_is_half_of_the_first_thousand_or_of_a_small_job() {
        let c = |total, succeeded, failed| Counts {
            total,
            succeeded,
            failed,
        };
        // Not judged before a thousand tasks of a large job are done.
        assert!(!c(100_000, 0, 999).over_threshold());
        assert!(c(100_000, 499, 501).over_threshold());
        assert!(!c(100_000, 500, 500).over_threshold());
        // A small job is judged at its end.
        assert!(!c(10, 0, 9).over_threshold());
        assert!(c(10, 0, 10).over_threshold());
        assert!(!c(10, 5, 5).over_threshold());
        assert!(!c(0, 0, 0).over_threshold());
    }
}
