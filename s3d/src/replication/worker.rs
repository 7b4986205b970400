//! The engine's [`engine::Replicator`]: called on the work queue's thread with each
//! round's chains (one destination's tasks for one key, in order), it sends them with
//! aws-sdk-s3 through the remote's cached client, the chains at once, on the server's
//! runtime.
//!
//! A version goes with its metadata, tags, object lock settings, storage class and
//! encryption mode (re-encrypted by the destination under its own keys), and with its
//! version id and time in `x-cybs3-replica-*` headers: a cybs3 destination keeps both
//! and marks it REPLICA; any other S3 ignores them. A delete marker goes as a
//! DeleteObject of its key. Connection errors, timeouts and 5xx answers are retried by
//! the queue; other refusals (access, a missing bucket, an SSE-C version whose key is
//! never stored) fail the version for good: FAILED, a dead letter.

use crate::identity::keys::{self, Keyring};
use crate::remote::Remote;
use crate::remotes::{RemoteError, Remotes};
use crate::site::wire::{self, Kind, SendError};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
    ObjectLockRetention, ObjectLockRetentionMode, Tag, Tagging,
};
use aws_sdk_s3::Client;
use engine::{LockMode, ObjectVersion, ReplChain, ReplSent, ReplTask, ReplWhat, SseMode, Store};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

/// Chains sent at once: a destination keeps up with a source's small writes only with
/// about as many requests in flight as the source's clients have.
const IN_FLIGHT: usize = 64;
/// Versions up to this size go in one PutObject; larger ones in parts of this size, one
/// in memory at a time per chain.
const PART: u64 = 8 << 20;
/// The longest one call (a PutObject, a part) may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The headers that carry a replica's source version id and time.
pub(crate) const VERSION_HEADER: &str = "x-cybs3-replica-version-id";
pub(crate) const MTIME_HEADER: &str = "x-cybs3-replica-mtime-ns";
/// The standard headers a version keeps that go with it.
const KEPT_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];
/// Storage classes any S3 knows: a class of this server's own is not sent unless the
/// rule names it.
const AWS_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

/// Why a task was not sent.
enum Failure {
    /// Worth another try later (the destination is down, slow or busy).
    Retry(String),
    /// Refused for good: the version is FAILED.
    GiveUp(String),
}

pub(crate) struct Worker {
    rt: Handle,
    store: Store,
    remote: Arc<Remote>,
    remotes: Remotes,
    /// Opens access keys' records for site peers.
    keyring: Keyring,
}

impl Worker {
    pub(crate) fn new(
        rt: Handle,
        store: Store,
        remote: Arc<Remote>,
        remotes: Remotes,
        keyring: Keyring,
    ) -> Arc<Worker> {
        Arc::new(Worker {
            rt,
            store,
            remote,
            remotes,
            keyring,
        })
    }

    async fn chain(&self, chain: &ReplChain<'_>) -> ReplSent {
        let mut sent = ReplSent::default();
        for task in &chain.tasks {
            match self.send(task).await {
                Ok(()) => sent.outcomes.push(None),
                Err(Failure::GiveUp(e)) => {
                    tracing::warn!(
                        bucket = task.bucket,
                        key = task.key,
                        version = task.version_id,
                        remote = task.remote,
                        "replication failed for good: {e}"
                    );
                    sent.outcomes.push(Some(e));
                }
                Err(Failure::Retry(e)) => {
                    sent.stopped = Some(e);
                    break;
                }
            }
        }
        sent
    }

    async fn send(&self, t: &ReplTask) -> Result<(), Failure> {
        let tier = self
            .remotes
            .as_tier(&t.remote, &t.target)
            .map_err(|e| match e {
                RemoteError::NoSuchRemote(_) => Failure::GiveUp(e.to_string()),
                e => Failure::Retry(e.to_string()),
            })?;
        let client = self
            .remote
            .client(&tier)
            .map_err(|e| Failure::Retry(e.to_string()))?;
        let replica = vec![
            (
                VERSION_HEADER.to_string(),
                engine::Replica::naming(&t.version_id, &t.sort),
            ),
            (MTIME_HEADER.to_string(), t.mtime_ns.to_string()),
        ];
        match t.what {
            ReplWhat::Version => {}
            ReplWhat::DeleteMarker => {
                let asked = client
                    .delete_object()
                    .bucket(&t.target)
                    .key(&t.key)
                    .customize()
                    .mutate_request(with_headers(replica))
                    .send();
                return timed(asked).await.map(drop);
            }
            ReplWhat::Tags | ReplWhat::Lock => return self.change(&client, t, replica).await,
            ReplWhat::DeleteVersion => {
                let asked = client
                    .delete_object()
                    .bucket(&t.target)
                    .key(&t.key)
                    .version_id(&t.version_id)
                    .customize()
                    .mutate_request(with_headers(replica))
                    .send();
                return timed(asked).await.map(drop);
            }
            ReplWhat::Bucket | ReplWhat::Record => return self.site_state(&client, t).await,
        }
        let (store, b, k, vid, sort) = (
            self.store.clone(),
            t.bucket.clone(),
            t.key.clone(),
            t.version_id.clone(),
            t.sort,
        );
        // One read for a version sent whole: the record and, if small, its bytes.
        let found = tokio::task::spawn_blocking(move || -> engine::Result<_> {
            let r = store.open_object(&b, &k, Some(&vid))?;
            let v = r.version().clone();
            let sse_c = matches!(
                v.encryption.as_ref().map(|e| &e.mode),
                Some(SseMode::Customer { .. })
            );
            let whole = v.size <= PART && !sse_c;
            let mut body = Vec::new();
            if whole && v.sort == sort {
                let mut all = r.all();
                while let Some(chunk) = all.next_chunk()? {
                    body.extend_from_slice(&chunk);
                }
            }
            Ok((v, body))
        })
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
        let (v, body) = match found {
            Ok((v, body)) if v.sort == t.sort => (v, body),
            // Gone (or a `null` version replaced) meanwhile: nothing left to send.
            Ok(_)
            | Err(
                engine::Error::NoSuchKey(_)
                | engine::Error::NoSuchVersion(_)
                | engine::Error::NoSuchBucket(_)
                | engine::Error::DeleteMarker { .. },
            ) => return Ok(()),
            Err(e) => return Err(Failure::Retry(format!("reading the version: {e}"))),
        };
        let mut headers = headers_of(&v, t)?;
        headers.extend(replica);
        match v.size <= PART {
            true => {
                let asked = client
                    .put_object()
                    .bucket(&t.target)
                    .key(&t.key)
                    .body(ByteStream::from(body))
                    .customize()
                    .mutate_request(with_headers(headers))
                    .send();
                timed(asked).await.map(drop)
            }
            false => self.multipart(&client, t, v.size, headers).await,
        }
    }

    /// A later change of a sent version: its tags, or its retention and legal hold, as
    /// they are now. A cybs3 destination has the version under the same id; another S3
    /// has its own ids, so there the change goes to the key's current version, and only
    /// while this version is the source's latest (else it is not sent).
    async fn change(
        &self,
        c: &Client,
        t: &ReplTask,
        replica: Vec<(String, String)>,
    ) -> Result<(), Failure> {
        let (store, b, k) = (self.store.clone(), t.bucket.clone(), t.key.clone());
        let (vid, sort) = (t.version_id.clone(), t.sort);
        let found = tokio::task::spawn_blocking(move || -> engine::Result<_> {
            let v = store.head(&b, &k, Some(&vid))?;
            let latest = store.head(&b, &k, None).is_ok_and(|l| l.sort == sort);
            Ok((v, latest))
        })
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?;
        let (v, latest) = match found {
            Ok((v, latest)) if v.sort == t.sort => (v, latest),
            Ok(_) | Err(_) => return Ok(()),
        };
        match self
            .send_change(c, t, &v, Some(&t.version_id), &replica)
            .await
        {
            // Not under this id: a foreign destination's own ids.
            Err(Failure::GiveUp(e))
                if e.starts_with("NoSuchVersion") || e.starts_with("InvalidArgument") =>
            {
                match latest {
                    true => self.send_change(c, t, &v, None, &replica).await,
                    false => Ok(()),
                }
            }
            other => other,
        }
    }

    async fn send_change(
        &self,
        c: &Client,
        t: &ReplTask,
        v: &ObjectVersion,
        version_id: Option<&str>,
        replica: &[(String, String)],
    ) -> Result<(), Failure> {
        let vid = version_id.map(str::to_string);
        let headers = || with_headers(replica.to_vec());
        match t.what {
            ReplWhat::Tags if v.meta.tags.is_empty() => {
                let asked = c
                    .delete_object_tagging()
                    .bucket(&t.target)
                    .key(&t.key)
                    .set_version_id(vid)
                    .customize()
                    .mutate_request(headers())
                    .send();
                timed(asked).await.map(drop)
            }
            ReplWhat::Tags => {
                let tags = v
                    .meta
                    .tags
                    .iter()
                    .map(|(k, val)| Tag::builder().key(k).value(val).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Failure::GiveUp(e.to_string()))?;
                let tagging = Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(|e| Failure::GiveUp(e.to_string()))?;
                let asked = c
                    .put_object_tagging()
                    .bucket(&t.target)
                    .key(&t.key)
                    .set_version_id(vid)
                    .tagging(tagging)
                    .customize()
                    .mutate_request(headers())
                    .send();
                timed(asked).await.map(drop)
            }
            ReplWhat::Lock => {
                if let Some(r) = &v.retention {
                    let retention = ObjectLockRetention::builder()
                        .mode(match r.mode {
                            LockMode::Governance => ObjectLockRetentionMode::Governance,
                            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                        })
                        .retain_until_date(
                            aws_sdk_s3::primitives::DateTime::from_nanos(r.until_ns as i128)
                                .map_err(|e| Failure::GiveUp(e.to_string()))?,
                        )
                        .build();
                    let asked = c
                        .put_object_retention()
                        .bucket(&t.target)
                        .key(&t.key)
                        .set_version_id(vid.clone())
                        .retention(retention)
                        .customize()
                        .mutate_request(headers())
                        .send();
                    timed(asked).await?;
                }
                let hold = ObjectLockLegalHold::builder()
                    .status(match v.legal_hold {
                        true => ObjectLockLegalHoldStatus::On,
                        false => ObjectLockLegalHoldStatus::Off,
                    })
                    .build();
                let asked = c
                    .put_object_legal_hold()
                    .bucket(&t.target)
                    .key(&t.key)
                    .set_version_id(vid)
                    .legal_hold(hold)
                    .customize()
                    .mutate_request(headers())
                    .send();
                timed(asked).await.map(drop)
            }
            _ => unreachable!("not a change"),
        }
    }

    /// A bucket's or a server record's state, as it is now, to a site peer.
    async fn site_state(&self, c: &Client, t: &ReplTask) -> Result<(), Failure> {
        let secret = match self.remotes.opened(&t.remote) {
            Ok(r) => r.secret_key,
            Err(e) => return Err(Failure::GiveUp(e.to_string())),
        };
        let store = self.store.clone();
        let (what, bucket, key) = (t.what, t.bucket.clone(), t.key.clone());
        let state = tokio::task::spawn_blocking(move || -> engine::Result<_> {
            Ok(match what {
                ReplWhat::Bucket => (Some(store.site_bucket_state(&bucket)?), None),
                _ => {
                    let (ns, name) = key.split_once('/').unwrap_or((&key, ""));
                    (None, Some(store.site_record_state(ns, name)?))
                }
            })
        })
        .await
        .map_err(|e| Failure::Retry(e.to_string()))?
        .map_err(|e| Failure::Retry(format!("reading the state: {e}")))?;
        let sent = match state {
            (Some(bucket), _) => wire::send(c, &secret, Kind::Bucket, &bucket).await,
            (_, Some(mut record)) => {
                if let (keys::NS, Some(v)) = (record.ns.as_str(), &record.value) {
                    let to = wire::secret_key_for(&secret);
                    match self.keyring.reseal_out(&record.name, v, &to) {
                        Ok(Some(v)) => record.value = Some(v),
                        // A session's key stays where it was made.
                        Ok(None) => return Ok(()),
                        Err(e) => return Err(Failure::GiveUp(e.to_string())),
                    }
                }
                wire::send(c, &secret, Kind::Record, &record).await
            }
            (None, None) => unreachable!("a state was read"),
        };
        sent.map_err(|e| match e {
            SendError::Unreachable(e) => Failure::Retry(e),
            SendError::Refused(e) => Failure::GiveUp(e),
        })
    }

    /// Bytes `start..end` of the task's version.
    async fn read(&self, t: &ReplTask, start: u64, end: u64) -> Result<Vec<u8>, Failure> {
        let (store, b, k, vid) = (
            self.store.clone(),
            t.bucket.clone(),
            t.key.clone(),
            t.version_id.clone(),
        );
        let read = tokio::task::spawn_blocking(move || -> engine::Result<Vec<u8>> {
            let mut r = store.open_object(&b, &k, Some(&vid))?.range(start, end)?;
            let mut out = Vec::with_capacity((end - start) as usize);
            while let Some(chunk) = r.next_chunk()? {
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        });
        // A version removed meanwhile is found gone by the retry.
        match read.await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(Failure::Retry(format!("reading the version: {e}"))),
            Err(e) => Err(Failure::Retry(e.to_string())),
        }
    }

    async fn multipart(
        &self,
        c: &Client,
        t: &ReplTask,
        size: u64,
        headers: Vec<(String, String)>,
    ) -> Result<(), Failure> {
        let asked = c
            .create_multipart_upload()
            .bucket(&t.target)
            .key(&t.key)
            .customize()
            .mutate_request(with_headers(headers.clone()))
            .send();
        let up = timed(asked).await?;
        let upload_id = up.upload_id().unwrap_or_default().to_string();
        let parts = async {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < size {
                let end = (start + PART).min(size);
                let body = self.read(t, start, end).await?;
                let number = parts.len() as i32 + 1;
                let asked = c
                    .upload_part()
                    .bucket(&t.target)
                    .key(&t.key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send();
                let done = timed(asked).await?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(done.e_tag().map(str::to_string))
                        .build(),
                );
                start = end;
            }
            Ok(parts)
        };
        let completed = match parts.await {
            Ok(parts) => {
                let asked = c
                    .complete_multipart_upload()
                    .bucket(&t.target)
                    .key(&t.key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .customize()
                    .mutate_request(with_headers(headers))
                    .send();
                match tokio::time::timeout(TIMEOUT, asked).await {
                    Ok(Ok(_)) => Ok(()),
                    // Some S3 servers (moto, on a versioned bucket) name the answer's
                    // root element otherwise: the upload is complete all the same.
                    Ok(Err(e)) if crate::remote::answered_ok(&e) => Ok(()),
                    Ok(Err(e)) => Err(failure(&e)),
                    Err(_) => Err(Failure::Retry(format!("no answer within {TIMEOUT:?}"))),
                }
            }
            Err(e) => Err(e),
        };
        if completed.is_err() {
            let abort = c
                .abort_multipart_upload()
                .bucket(&t.target)
                .key(&t.key)
                .upload_id(&upload_id)
                .send();
            let _ = tokio::time::timeout(TIMEOUT, abort).await;
        }
        completed
    }
}

impl engine::Replicator for Worker {
    fn replicate(&self, chains: &[ReplChain<'_>]) -> Vec<ReplSent> {
        self.rt.block_on(
            futures::stream::iter(chains)
                .map(|c| self.chain(c))
                .buffered(IN_FLIGHT)
                .collect(),
        )
    }
}

/// The headers a version is written with at the destination.
fn headers_of(v: &ObjectVersion, t: &ReplTask) -> Result<Vec<(String, String)>, Failure> {
    let mut h: Vec<(String, String)> = Vec::new();
    if let Some(ct) = &v.meta.content_type {
        h.push(("content-type".into(), ct.clone()));
    }
    h.extend(
        (v.meta.headers.iter())
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
            .cloned(),
    );
    for (k, val) in &v.meta.user {
        h.push((format!("x-amz-meta-{k}"), val.clone()));
    }
    if !v.meta.tags.is_empty() {
        let tags = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&v.meta.tags)
            .finish();
        h.push(("x-amz-tagging".into(), tags));
    }
    let class = t.storage_class.clone().or_else(|| {
        v.meta
            .storage_class
            .clone()
            .filter(|c| AWS_CLASSES.contains(&c.as_str()))
    });
    if let Some(class) = class {
        h.push(("x-amz-storage-class".into(), class));
    }
    if let Some(r) = &v.retention {
        let mode = match r.mode {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        };
        let until = time::OffsetDateTime::from_unix_timestamp_nanos(r.until_ns as i128)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        h.push(("x-amz-object-lock-mode".into(), mode.into()));
        h.push(("x-amz-object-lock-retain-until-date".into(), until));
    }
    if v.legal_hold {
        h.push(("x-amz-object-lock-legal-hold".into(), "ON".into()));
    }
    match v.encryption.as_ref().map(|e| &e.mode) {
        None => {}
        Some(SseMode::S3) => h.push(("x-amz-server-side-encryption".into(), "AES256".into())),
        Some(SseMode::Kms { key, .. }) => {
            h.push(("x-amz-server-side-encryption".into(), "aws:kms".into()));
            let key = t.kms_key.clone().unwrap_or_else(|| key.clone());
            h.push(("x-amz-server-side-encryption-aws-kms-key-id".into(), key));
        }
        Some(SseMode::Customer { .. }) => {
            return Err(Failure::GiveUp(
                "an SSE-C version cannot be replicated: its key is never stored".into(),
            ))
        }
    }
    Ok(h)
}

/// A request customization adding `headers` (signed with the rest).
fn with_headers(
    headers: Vec<(String, String)>,
) -> impl Fn(&mut aws_sdk_s3::config::http::HttpRequest) + Send + Sync + 'static {
    move |req| {
        for (k, v) in &headers {
            req.headers_mut().insert(k.clone(), v.clone());
        }
    }
}

/// Runs one SDK call within [`TIMEOUT`], its error sorted.
async fn timed<T, E>(
    call: impl std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, Failure>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match tokio::time::timeout(TIMEOUT, call).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(failure(&e)),
        Err(_) => Err(Failure::Retry(format!("no answer within {TIMEOUT:?}"))),
    }
}

/// Server errors, throttling and no answer are retried; other refusals are final.
fn failure<E>(e: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let text = crate::remote::error_text(e);
    let SdkError::ServiceError(se) = e else {
        return Failure::Retry(text);
    };
    let status = se.raw().status().as_u16();
    let busy = matches!(
        e.code(),
        Some("SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable")
    );
    match status >= 500 || status == 429 || busy {
        true => Failure::Retry(text),
        false => Failure::GiveUp(text),
    }
}
