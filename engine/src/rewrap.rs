//! Rewrapping data keys after a KMS key rotates (`cybs3 admin kms rewrap [--bucket B]`):
//! every stored version's data keys are wrapped again by their key's newest version,
//! and no byte of data is rewritten.
//!
//! The healer's thread does it a page of the index at a time ([`Store::rewrap_step`]).
//! The job and where it is are a server record, so a restarted server resumes it. Each
//! version changes in its own commit (`Op::Rewrap`), which checks that the version still
//! holds the keys that were read; a version deleted or replaced meanwhile is passed by.
//! A version whose key is disabled is passed by too, and counted. Multipart uploads in
//! progress keep their parts' keys: they are completed or aborted soon enough.

use crate::error::{Error, Result};
use crate::held::Owner;
use crate::kms::KeyService;
use crate::ops::Op;
use crate::record::{self, keys, Encryption, ObjectVersion, SseMode, WrappedKey};
use crate::Store;
use serde::{Deserialize, Serialize};
use std::ops::Bound;

/// Versions looked at per step.
const PAGE: usize = 64;
/// The job's server record.
const NS: &str = "engine.rewrap";
const NAME: &str = "job";

/// A rewrap in progress, as `cybs3 admin kms rewrap` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapJob {
    /// Only this bucket's versions; all when `None`.
    pub bucket: Option<String>,
    /// The version record the walk goes on after.
    cursor: Option<Vec<u8>>,
    /// Versions whose keys were wrapped again so far.
    pub rewrapped: u64,
    /// Versions passed by because their key is disabled.
    pub skipped: u64,
    pub done: bool,
}

impl record::Record for RewrapJob {}

/// A version found by the walk, and its bucket.
type Found = (String, ObjectVersion);

impl Store {
    /// Starts rewrapping the data keys of every version (of `bucket` only, if given),
    /// in the background; a job under way starts over.
    pub fn start_rewrap(&self, bucket: Option<&str>) -> Result<RewrapJob> {
        if let Some(b) = bucket {
            self.bucket(b)?;
        }
        let job = RewrapJob {
            bucket: bucket.map(str::to_string),
            ..RewrapJob::default()
        };
        self.save_job(&job)?;
        Ok(job)
    }

    /// The last rewrap job: under way, or `done`; `None` if there never was one.
    pub fn rewrap_job(&self) -> Result<Option<RewrapJob>> {
        self.server_record(NS, NAME)?
            .map(|b| record::decode(&b))
            .transpose()
    }

    fn save_job(&self, job: &RewrapJob) -> Result<()> {
        self.set_server_record(NS, NAME, Some(record::encode(job)?))
    }

    /// Rewraps one page of versions of the job under way; `true` when there is more.
    pub(crate) fn rewrap_step(&self) -> Result<bool> {
        let Some(mut job) = self.rewrap_job()?.filter(|j| !j.done) else {
            return Ok(false);
        };
        if !self.kms_ready() {
            return Ok(false);
        }
        let (page, next) = self.versions_page(&job)?;
        for (bucket, v) in page {
            match self.rewrap_version(&bucket, &v) {
                Ok(true) => job.rewrapped += 1,
                Ok(false) | Err(Error::PreconditionFailed) => {}
                Err(Error::KmsDisabled(_)) => job.skipped += 1,
                Err(e) => return Err(e),
            }
        }
        job.cursor = next;
        job.done = job.cursor.is_none();
        if job.done {
            tracing::info!(
                rewrapped = job.rewrapped,
                skipped = job.skipped,
                "kms rewrap done"
            );
        }
        self.save_job(&job)?;
        Ok(!job.done)
    }

    /// Up to [`PAGE`] versions after the job's cursor, with their buckets, and the
    /// cursor to go on after (`None` at the end).
    fn versions_page(&self, job: &RewrapJob) -> Result<(Vec<Found>, Option<Vec<u8>>)> {
        let mut base = vec![keys::VERSION];
        if let Some(b) = &job.bucket {
            base.extend_from_slice(b.as_bytes());
            base.push(0);
        }
        let from = match &job.cursor {
            Some(c) => Bound::Excluded(c.as_slice()),
            None => Bound::Included(base.as_slice()),
        };
        let (rtxn, db) = self.read()?;
        let mut out = Vec::new();
        let mut last = None;
        for kv in db.range(&rtxn, &(from, Bound::Unbounded))? {
            let (k, v) = kv?;
            if !k.starts_with(&base) {
                break;
            }
            if out.len() == PAGE {
                return Ok((out, last));
            }
            // `V bucket \0 key \0 sort`: bucket names have no NUL.
            let bucket = k[1..].split(|&b| b == 0).next().unwrap_or_default();
            let bucket = String::from_utf8_lossy(bucket).into_owned();
            out.push((bucket, record::decode::<ObjectVersion>(v)?));
            last = Some(k.to_vec());
        }
        Ok((out, None))
    }

    /// Wraps version `v`'s data keys again by their keys' newest versions, if any is
    /// older; `false` when none is (or the server does not keep its keys: SSE-C).
    fn rewrap_version(&self, bucket: &str, v: &ObjectVersion) -> Result<bool> {
        let Some(enc) = &v.encryption else {
            return Ok(false);
        };
        if matches!(enc.mode, SseMode::Customer { .. }) {
            return Ok(false);
        }
        let context = Encryption::context(&enc.mode);
        let mut fresh: Vec<WrappedKey> = Vec::with_capacity(enc.keys.len());
        for w in &enc.keys {
            match w.version < self.kms_newest(&w.key)? {
                true => fresh.push(self.wrap(&w.key, context, &self.unwrap(w, context)?)?),
                false => fresh.push(w.clone()),
            }
        }
        if fresh == enc.keys {
            return Ok(false);
        }
        self.submit(Op::Rewrap {
            owner: Owner::Version {
                bucket: bucket.to_string(),
                key: v.key.clone(),
                sort: v.sort,
            },
            from: enc.keys.clone(),
            to: fresh,
        })?;
        Ok(true)
    }
}
