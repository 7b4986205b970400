//! One task: the creator's rights checked as if the creator made the request, then the
//! operation done by the same code as its S3 request (so object lock, archive classes,
//! encryption defaults and anomaly freezes apply as they do there), and its outcome as
//! the report shows it.

use super::job::{parse_time, CopyOp, Job, Operation};
use super::manifest::Task;
use crate::acl::AclRequest;
use crate::ctx::{blocking, now_ns, Cybs3};
use crate::identity::auth::{Caller, Identities};
use crate::notify::{Deliverer, Message};
use crate::{acl, archive, copy, delete, tagging};
use engine::{LockMode, Retention};
use hyper::header::{HeaderMap, HeaderValue};
use s3s::dto::{
    CopyObjectInput, CopySource, DeleteObjectInput, DeleteObjectTaggingInput, MetadataDirective,
    PutObjectTaggingInput, RestoreObjectInput, RestoreRequest, ServerSideEncryption, StorageClass,
    Tag, Tagging, TaggingDirective,
};
use s3s::{s3_error, S3Error, S3Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What became of a task, as a report line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub ok: bool,
    pub http: u16,
    pub code: String,
    pub message: String,
}

impl Outcome {
    fn done(message: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            http: 200,
            code: String::new(),
            message: message.into(),
        }
    }

    pub(crate) fn failed(http: u16, code: &str, message: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            http,
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn from_error(e: &S3Error) -> Outcome {
        Outcome::failed(
            e.status_code().map_or(500, |s| s.as_u16()),
            e.code().as_str(),
            e.message().unwrap_or_default(),
        )
    }
}

/// A copy's tags as an `x-amz-tagging` header (URL query syntax).
fn tagging_header(tags: &BTreeMap<String, String>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(tags)
        .finish()
}

/// The headers of the CopyObject request a copy task stands for: what policy conditions
/// on CopyObject test (`s3:x-amz-server-side-encryption`, `…-aws-kms-key-id`,
/// `s3:x-amz-copy-source`, `s3:x-amz-metadata-directive`, `s3:RequestObjectTag/…`).
fn copy_headers(c: &CopyOp, t: &Task) -> S3Result<HeaderMap> {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let mut source = format!(
        "{}/{}",
        t.bucket,
        utf8_percent_encode(&t.key, NON_ALPHANUMERIC)
    );
    if let Some(v) = &t.version_id {
        source.push_str(&format!("?versionId={v}"));
    }
    let mut pairs = vec![("x-amz-copy-source", source)];
    if let Some(sse) = &c.sse {
        pairs.push(("x-amz-server-side-encryption", sse.clone()));
    }
    if let Some(key) = &c.sse_kms_key_id {
        pairs.push(("x-amz-server-side-encryption-aws-kms-key-id", key.clone()));
    }
    if c.replaces_metadata() {
        pairs.push(("x-amz-metadata-directive", "REPLACE".to_string()));
    }
    if let Some(tags) = &c.tags {
        pairs.push(("x-amz-tagging", tagging_header(tags)));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let value = HeaderValue::from_str(&value)
            .map_err(|_| s3_error!(InvalidArgument, "{name} {value:?} is no header value"))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// What tasks run with: the service the S3 requests go through, the rights of users,
/// and the senders of notification targets (for `webhook`).
#[derive(Clone)]
pub(crate) struct Exec {
    pub ctx: Cybs3,
    pub identities: Identities,
    pub deliverer: Arc<Deliverer>,
}

impl Exec {
    /// Runs one task of `job` as `caller` (`None`: the creator is gone, so nothing is
    /// allowed). `again`: the task's chunk was cut off by a restart, so the task may
    /// have been done already.
    pub(crate) async fn run(
        &self,
        job: &Job,
        caller: Option<&Caller>,
        task: &Task,
        again: bool,
    ) -> Outcome {
        match self.dispatch(job, caller, task, again).await {
            Ok(o) => o,
            Err(e) => Outcome::from_error(&e),
        }
    }

    async fn may(
        &self,
        caller: Option<&Caller>,
        op: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<()> {
        let no_headers = HeaderMap::new();
        self.may_with(caller, op, (bucket, key, version), no_headers)
            .await
    }

    /// [`Exec::may`] of a request with `headers` (a copy's encryption, metadata
    /// directive, tags and source), which policy conditions may test.
    async fn may_with(
        &self,
        caller: Option<&Caller>,
        op: &str,
        (bucket, key, version): (&str, &str, Option<&str>),
        headers: HeaderMap,
    ) -> S3Result<()> {
        let Some(caller) = caller.cloned() else {
            return Err(s3_error!(
                AccessDenied,
                "the job's creator no longer exists"
            ));
        };
        let ids = self.identities.clone();
        let (op, bucket, key, version) = (
            op.to_string(),
            bucket.to_string(),
            key.to_string(),
            version.map(str::to_string),
        );
        let allowed = crate::ctx::spawn(move || {
            let target = (bucket.as_str(), Some(key.as_str()), version.as_deref());
            ids.allows(&caller, &op, target, &headers)
        })
        .await??;
        match allowed {
            true => Ok(()),
            false => Err(s3_error!(AccessDenied, "Access Denied")),
        }
    }

    async fn dispatch(
        &self,
        job: &Job,
        caller: Option<&Caller>,
        t: &Task,
        again: bool,
    ) -> S3Result<Outcome> {
        let (b, k, v) = (&t.bucket, &t.key, t.version_id.as_deref());
        let s = &self.ctx;
        match &job.spec.operation {
            Operation::Copy(c) => {
                let dest = format!("{}{k}", c.prefix);
                self.may(caller, "GetObject", b, k, v).await?;
                let headers = copy_headers(c, t)?;
                self.may_with(caller, "CopyObject", (&c.bucket, &dest, None), headers)
                    .await?;
                if again && self.copied(t, &c.bucket, &dest, job.created_ns).await? {
                    return Ok(Outcome::done("copied before a restart"));
                }
                let mut ext = hyper::http::Extensions::new();
                ext.insert(caller.cloned().expect("checked by may"));
                let acl = acl::for_new_object(s, &ext, &c.bucket, &AclRequest::default()).await?;
                let mut input = CopyObjectInput::builder();
                input.set_bucket(c.bucket.clone());
                input.set_key(dest);
                input.set_copy_source(CopySource::Bucket {
                    bucket: b.as_str().into(),
                    key: k.as_str().into(),
                    version_id: v.map(Into::into),
                });
                input.set_storage_class(c.storage_class.clone().map(StorageClass::from));
                // Encryption goes through CopyObject's own path (`sse::writer`): the key
                // must exist and be enabled, else the task fails with KMS's error.
                input.set_server_side_encryption(c.sse.clone().map(ServerSideEncryption::from));
                input.set_ssekms_key_id(c.sse_kms_key_id.clone());
                input.set_bucket_key_enabled(c.bucket_key_enabled);
                if c.replaces_metadata() {
                    input.set_metadata_directive(Some(MetadataDirective::from_static(
                        MetadataDirective::REPLACE,
                    )));
                    input.set_metadata(c.metadata.clone().map(|m| m.into_iter().collect()));
                    input.set_content_type(c.content_type.clone());
                }
                if let Some(tags) = &c.tags {
                    input.set_tagging_directive(Some(TaggingDirective::from_static(
                        TaggingDirective::REPLACE,
                    )));
                    input.set_tagging(Some(tagging_header(tags)));
                }
                let input = input
                    .build()
                    .map_err(|e| s3_error!(InvalidRequest, "{e}"))?;
                let out = copy::copy_object(s, input, acl, false).await?;
                Ok(Outcome::done(out.version_id.unwrap_or_default()))
            }
            Operation::ReplaceTags(tags) => {
                self.may(caller, "PutObjectTagging", b, k, v).await?;
                let tag_set = tags
                    .tags
                    .iter()
                    .map(|(k, v)| Tag {
                        key: Some(k.clone()),
                        value: Some(v.clone()),
                    })
                    .collect();
                let mut input = PutObjectTaggingInput::builder();
                input.set_bucket(b.clone());
                input.set_key(k.clone());
                input.set_version_id(t.version_id.clone());
                input.set_tagging(Tagging { tag_set });
                let input = input
                    .build()
                    .map_err(|e| s3_error!(InvalidRequest, "{e}"))?;
                tagging::put(s, input).await?;
                Ok(Outcome::done(""))
            }
            Operation::DeleteTags(_) => {
                self.may(caller, "DeleteObjectTagging", b, k, v).await?;
                let input = DeleteObjectTaggingInput {
                    bucket: b.clone(),
                    key: k.clone(),
                    version_id: t.version_id.clone(),
                    ..Default::default()
                };
                tagging::delete(s, input).await?;
                Ok(Outcome::done(""))
            }
            Operation::Delete(_) => {
                self.may(caller, "DeleteObject", b, k, v).await?;
                let input = DeleteObjectInput {
                    bucket: b.clone(),
                    key: k.clone(),
                    version_id: t.version_id.clone(),
                    ..Default::default()
                };
                let out = delete::one(s, input).await?;
                Ok(Outcome::done(match out.delete_marker {
                    Some(true) => "delete marker",
                    _ => "",
                }))
            }
            Operation::Retention(r) => {
                self.may(caller, "PutObjectRetention", b, k, v).await?;
                let mode = match r.mode.as_str() {
                    "COMPLIANCE" => LockMode::Compliance,
                    _ => LockMode::Governance,
                };
                let until_ns =
                    parse_time(&r.until).map_err(|e| s3_error!(InvalidArgument, "{e}"))?;
                if until_ns <= now_ns() {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The retain until date must be in the future!"
                    ));
                }
                let (store, b, k, v) =
                    (s.store.clone(), b.clone(), k.clone(), t.version_id.clone());
                let retention = Some(Retention { mode, until_ns });
                blocking(move || store.set_retention(&b, &k, v.as_deref(), retention, false))
                    .await?;
                Ok(Outcome::done(""))
            }
            Operation::LegalHold(h) => {
                self.may(caller, "PutObjectLegalHold", b, k, v).await?;
                let on = h.status == "ON";
                let (store, b, k, v) =
                    (s.store.clone(), b.clone(), k.clone(), t.version_id.clone());
                blocking(move || store.set_legal_hold(&b, &k, v.as_deref(), on)).await?;
                Ok(Outcome::done(""))
            }
            Operation::Restore(r) => {
                self.may(caller, "RestoreObject", b, k, v).await?;
                let input = RestoreObjectInput {
                    bucket: b.clone(),
                    key: k.clone(),
                    version_id: t.version_id.clone(),
                    restore_request: Some(RestoreRequest {
                        days: Some(i32::try_from(r.days).unwrap_or(i32::MAX)),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                archive::restore(s, input).await?;
                Ok(Outcome::done(""))
            }
            Operation::Replicate(_) => {
                // Replication sends what the creator could read, to the bucket's own
                // destinations: reading the version is the right it takes.
                self.may(caller, "GetObject", b, k, v).await?;
                let (store, b, k, v) =
                    (s.store.clone(), b.clone(), k.clone(), t.version_id.clone());
                let queued = blocking(move || {
                    let version = store.head(&b, &k, v.as_deref())?;
                    store.replicate_versions(&b, vec![(k, version.sort)])
                })
                .await?;
                Ok(Outcome::done(match queued {
                    0 => "already replicated or in the queue".to_string(),
                    n => format!("queued for {n} destinations"),
                }))
            }
            Operation::Webhook(w) => {
                self.may(caller, "GetObject", b, k, v).await?;
                if again {
                    return Ok(Outcome::failed(
                        500,
                        "Interrupted",
                        "the server stopped during this task; a webhook is not invoked twice",
                    ));
                }
                self.invoke(job, &w.target, t).await
            }
        }
    }

    /// Whether a copy's destination already holds its source (a restart cut off the
    /// chunk after the copy): written since the job began, with the source's ETag and size.
    async fn copied(&self, t: &Task, bucket: &str, key: &str, since_ns: u64) -> S3Result<bool> {
        let store = self.ctx.store.clone();
        let (src_b, src_k, v) = (t.bucket.clone(), t.key.clone(), t.version_id.clone());
        let (b, k) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let src = store.head(&src_b, &src_k, v.as_deref())?;
            Ok(match store.head(&b, &k, None) {
                Ok(d) => {
                    d.mtime_ns >= since_ns && d.meta.etag == src.meta.etag && d.size == src.size
                }
                Err(_) => false,
            })
        })
        .await
    }

    /// A Lambda-style invocation (AWS's schema 1.0) of a notification target for one object.
    async fn invoke(&self, job: &Job, target: &str, t: &Task) -> S3Result<Outcome> {
        let targets = self.ctx.notify.clone();
        let name = target.to_string();
        let target = crate::ctx::spawn(move || targets.open(&name))
            .await?
            .map_err(|e| s3_error!(InvalidRequest, "{e}"))?;
        let body = serde_json::json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": format!("{}-{}", job.id, now_ns()),
            "job": {"id": job.id},
            "tasks": [{
                "taskId": format!("{}/{}", t.bucket, t.key),
                "s3BucketArn": format!("arn:aws:s3:::{}", t.bucket),
                "s3Key": t.key,
                "s3VersionId": t.version_id,
            }],
        })
        .to_string();
        let m = Message {
            name: "Batch:Invoke",
            time_ns: now_ns(),
            bucket: &t.bucket,
            key: &t.key,
            body: body.as_bytes(),
        };
        match self.deliverer.send(&target, &m).await {
            Ok(()) => Ok(Outcome::done("")),
            Err(e) => Ok(Outcome::failed(502, "WebhookFailed", e.0)),
        }
    }
}
