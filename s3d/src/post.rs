//! POST Object: browser form uploads authorized by a signed policy document.
//! (Over 800 lines: the policy rules and their 220 lines of tests stay together.)
//!
//! s3s does the HTTP side before `post_object` runs: it parses the
//! multipart/form-data body, verifies the form signature (SigV4 `x-amz-signature`
//! or SigV2 `signature`, both over the base64 policy), reads the file part into
//! memory (capped by the policy's `content-length-range` and
//! `S3Config::post_object_max_file_size`) and makes a first pass over the policy.
//! Its verdicts do not use AWS's codes, and it loses two things we need: the
//! file part's name (for `${filename}`) and control over the success response
//! (it echoes the key as sent, before substitution). So this module:
//!
//! - evaluates the policy itself, per the AWS spec ([`evaluate`], [`check_size`]);
//! - learns the file name by watching the request body go by ([`Tap`]);
//! - stores the file through the same body path as PutObject ([`object`]);
//! - fixes up the final response ([`finish`]): the real key in the 201 body and
//!   in the redirect, and s3s' policy verdicts as AWS reports them (403 AccessDenied).

use crate::acl::{self, object_acl_requested};
use crate::body::{self, Received};
use crate::ctx::Cybs3;
use crate::identity::auth::check_post;
use crate::object_lock::lock_requested;
use crate::objects::{self, meta_fields, object_meta};
use crate::xml::escape;
use crate::{sse, versioning};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper::{header, HeaderMap, Method, Request, Response, StatusCode};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use s3s::dto::{ETag, PostObjectInput, PostObjectOutput, Timestamp, TimestampFormat};
use s3s::post_policy::{PostPolicy, PostPolicyCondition};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Largest file a POST form may carry (see `service::build`: s3s buffers it whole).
pub(crate) const MAX_FILE_SIZE: u64 = 64 << 20;

/// The placeholder a form's key may carry for the uploaded file's name.
const FILENAME_VAR: &str = "${filename}";
/// Fields that never need a policy condition (AWS, plus SigV2's two and `submit`,
/// which HTML forms add for their button).
const EXEMPT: [&str; 7] = [
    "x-amz-signature",
    "signature",
    "awsaccesskeyid",
    "file",
    "policy",
    "submit",
    "bucket",
];
/// Signature fields the handler no longer sees; s3s required each to equal the
/// policy's `eq` value before it verified the signature, so that value stands in.
const SIGNATURE_FIELDS: [&str; 4] = [
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-security-token",
];
/// s3s limits the form fields before the file to this much (`form_max_fields_size`);
/// the tap gives up looking for the file part beyond it.
const MAX_SCAN: usize = (20 << 20) + 64 * 1024;

/// Why a form does not satisfy its policy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    Expired,
    /// The condition, rendered as in the policy (AWS quotes it back).
    Condition(String),
    ExtraFields(Vec<String>),
    TooSmall,
    TooLarge,
}

impl From<Violation> for S3Error {
    fn from(v: Violation) -> S3Error {
        const PREFIX: &str = "Invalid according to Policy: ";
        match v {
            Violation::Expired => S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("{PREFIX}Policy expired."),
            ),
            Violation::Condition(c) => S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("{PREFIX}Policy Condition failed: {c}"),
            ),
            Violation::ExtraFields(f) => S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("{PREFIX}Extra input fields: {}", f.join(", ")),
            ),
            Violation::TooSmall => s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed size"
            ),
            Violation::TooLarge => s3_error!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed size"
            ),
        }
    }
}

/// Seconds since the epoch of a policy timestamp.
fn epoch_seconds(t: &Timestamp) -> Option<f64> {
    let mut out = Vec::new();
    t.format(TimestampFormat::EpochSeconds, &mut out).ok()?;
    std::str::from_utf8(&out).ok()?.parse().ok()
}

fn render(c: &PostPolicyCondition) -> String {
    match c {
        PostPolicyCondition::Eq { field, value } => format!("[\"eq\", \"${field}\", \"{value}\"]"),
        PostPolicyCondition::StartsWith { field, prefix } => {
            format!("[\"starts-with\", \"${field}\", \"{prefix}\"]")
        }
        PostPolicyCondition::ContentLengthRange { min, max } => {
            format!("[\"content-length-range\", {min}, {max}]")
        }
    }
}

/// Checks `policy` against a form (lowercase field names to values; `bucket` is the
/// bucket the form was posted to) at `now` (seconds since the epoch). The file's
/// size is checked separately, once known ([`check_size`]).
pub(crate) fn evaluate(
    policy: &PostPolicy,
    now: f64,
    bucket: &str,
    fields: &BTreeMap<String, String>,
) -> Result<(), Violation> {
    // A timestamp we cannot read cannot be honoured either.
    if epoch_seconds(&policy.expiration).is_none_or(|exp| now >= exp) {
        return Err(Violation::Expired);
    }
    let value = |field: &str| -> Option<&str> {
        if field == "bucket" {
            return Some(bucket);
        }
        fields.get(field).map(String::as_str)
    };
    for c in &policy.conditions {
        let ok = match c {
            PostPolicyCondition::Eq { field, value: want } => value(field) == Some(want.as_str()),
            // An absent field matches only the "anything" prefix, as AWS does for
            // optional fields such as success_action_redirect.
            PostPolicyCondition::StartsWith { field, prefix } => match value(field) {
                // Content-Type may list several types; each must match (AWS).
                Some(v) if field == "content-type" => v
                    .split(',')
                    .all(|t| t.trim_start().starts_with(prefix.as_str())),
                Some(v) => v.starts_with(prefix.as_str()),
                None => prefix.is_empty(),
            },
            PostPolicyCondition::ContentLengthRange { .. } => true,
        };
        if !ok {
            return Err(Violation::Condition(render(c)));
        }
    }
    let covered = |name: &str| {
        policy.conditions.iter().any(|c| match c {
            PostPolicyCondition::Eq { field, .. }
            | PostPolicyCondition::StartsWith { field, .. } => field == name,
            PostPolicyCondition::ContentLengthRange { .. } => false,
        })
    };
    let extra: Vec<String> = fields
        .keys()
        .filter(|n| !EXEMPT.contains(&n.as_str()) && !n.starts_with("x-ignore-"))
        .filter(|n| !covered(n))
        .cloned()
        .collect();
    if !extra.is_empty() {
        return Err(Violation::ExtraFields(extra));
    }
    Ok(())
}

/// The policy's `content-length-range`, against the bytes actually received.
pub(crate) fn check_size(policy: &PostPolicy, size: u64) -> Result<(), Violation> {
    for c in &policy.conditions {
        if let PostPolicyCondition::ContentLengthRange { min, max } = c {
            if size < *min {
                return Err(Violation::TooSmall);
            }
            if size > *max {
                return Err(Violation::TooLarge);
            }
        }
    }
    Ok(())
}

/// The form's fields that policies test as condition keys, under the header names
/// PutObject sends them as (`policy::set_header_keys`).
fn as_header(input: &PostObjectInput, name: &str) -> Option<String> {
    let date = |t: &Timestamp| {
        let mut out = Vec::new();
        t.format(TimestampFormat::DateTime, &mut out).ok()?;
        String::from_utf8(out).ok()
    };
    match name {
        "x-amz-acl" => input.acl.as_ref().map(|a| a.as_str().to_string()),
        "x-amz-grant-full-control" => input.grant_full_control.clone(),
        "x-amz-grant-read" => input.grant_read.clone(),
        "x-amz-grant-read-acp" => input.grant_read_acp.clone(),
        "x-amz-grant-write-acp" => input.grant_write_acp.clone(),
        "x-amz-server-side-encryption" => input
            .server_side_encryption
            .as_ref()
            .map(|e| e.as_str().to_string()),
        "x-amz-server-side-encryption-aws-kms-key-id" => input.ssekms_key_id.clone(),
        "x-amz-object-lock-mode" => input
            .object_lock_mode
            .as_ref()
            .map(|m| m.as_str().to_string()),
        "x-amz-object-lock-retain-until-date" => {
            input.object_lock_retain_until_date.as_ref().and_then(date)
        }
        "x-amz-object-lock-legal-hold" => input
            .object_lock_legal_hold_status
            .as_ref()
            .map(|h| h.as_str().to_string()),
        _ => None,
    }
}

/// The form fields s3s mapped into the input, back under their form names.
fn form_fields(input: &PostObjectInput, policy: &PostPolicy) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    let mut put = |name: &str, v: Option<&String>| {
        if let Some(v) = v {
            f.insert(name.to_string(), v.clone());
        }
    };
    put("key", Some(&input.key));
    put("content-type", input.content_type.as_ref());
    put("cache-control", input.cache_control.as_ref());
    put("content-disposition", input.content_disposition.as_ref());
    put("content-encoding", input.content_encoding.as_ref());
    put("content-language", input.content_language.as_ref());
    put("content-md5", input.content_md5.as_ref());
    put("x-amz-tagging", input.tagging.as_ref());
    put(
        "success_action_redirect",
        input.success_action_redirect.as_ref(),
    );
    let status = input.success_action_status.map(|s| s.to_string());
    put("success_action_status", status.as_ref());
    let class = input.storage_class.as_ref().map(|c| c.as_str().to_string());
    put("x-amz-storage-class", class.as_ref());
    for (k, v) in input.metadata.iter().flatten() {
        f.insert(format!("x-amz-meta-{}", k.to_ascii_lowercase()), v.clone());
    }
    for name in SIGNATURE_FIELDS {
        let eq = policy.conditions.iter().find_map(|c| match c {
            PostPolicyCondition::Eq { field, value } if field == name => Some(value),
            _ => None,
        });
        if let Some(v) = eq {
            f.insert(name.to_string(), v.clone());
        }
    }
    f
}

/// What `finish` needs to write the success response: the key after substitution.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    bucket: String,
    key: String,
    etag: String,
    /// The encryption response headers (s3s writes none for POST Object).
    encryption: Vec<(&'static str, String)>,
}

pub(crate) async fn object(
    s: &Cybs3,
    req: S3Request<PostObjectInput>,
) -> S3Result<S3Response<PostObjectOutput>> {
    // s3s only lets a form through without a verified signature when it is anonymous,
    // and anonymous requests are refused by the access check; this keeps it that way.
    if req.credentials.is_none() {
        return Err(s3_error!(AccessDenied, "Signature is required"));
    }
    let seen = req
        .extensions
        .get::<Seen>()
        .map(Seen::get)
        .unwrap_or_default();
    let mut input = req.input;
    // s3s 0.14.1 drops the parsed policy on its way to this handler (its PutObject
    // round trip resets `policy`), so it is read again from the form as sent. With
    // two policy fields it would be unclear which one s3s verified: refuse.
    let policy = match seen.policies.as_slice() {
        [one] => PostPolicy::from_base64(one.trim())
            .map_err(|e| s3_error!(e, InvalidPolicyDocument, "Invalid Policy: Invalid JSON."))?,
        [] => {
            return Err(s3_error!(
                AccessDenied,
                "Invalid according to Policy: Policy missing."
            ))
        }
        _ => {
            return Err(s3_error!(
                InvalidPolicyDocument,
                "The form has more than one policy field."
            ))
        }
    };
    // Whatever s3s passed on is ignored: only what the signature covers counts.
    input.policy = None;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    evaluate(&policy, now, &input.bucket, &form_fields(&input, &policy))?;

    // The policy constrains the key as sent; the file name is filled in afterwards.
    let key = if input.key.contains(FILENAME_VAR) {
        let name = seen.file_name.filter(|n| !n.is_empty()).ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The file part has no filename to put in the key."
            )
        })?;
        input.key.replace(FILENAME_VAR, &name)
    } else {
        input.key.clone()
    };

    let mut meta = object_meta(meta_fields!(input), &s.store)?;
    if let Some(header) = &input.tagging {
        meta.tags = crate::tagging::parse_header(header)?;
    }
    check_post(
        &req.extensions,
        &key,
        |name| as_header(&input, name),
        &meta.tags,
    )
    .await?;
    let asked = object_acl_requested!(input);
    meta.acl = Some(acl::for_new_object(s, &req.extensions, &input.bucket, &asked).await?);
    let lock = lock_requested!(input)?;
    let customer = sse::customer_of!(input, sse::key_may_travel(&req.extensions))?;
    let asked = sse::asked!(input, customer.as_ref());
    let (mut writer, enc) = sse::writer(s, &input.bucket, &key, asked).await?;
    writer.set_class(meta.storage_class.as_deref());
    writer.set_lock(lock);
    let mut condition = engine::WriteCondition::default();
    let freeze = crate::anomaly::ops::guard_write(s, &input.bucket, &mut condition)?;
    writer.set_condition(condition);
    let payload = input
        .body
        .take()
        .unwrap_or_else(|| s3s::Body::empty().into());
    // s3s read the whole file before calling us and gives its exact length, with an
    // empty file reported as no length; `receive` enforces exactly that many bytes.
    let size = input.content_length.map_or(0, |n| n.max(0) as u64);
    let hasher = body::hasher_for(None, &Default::default());
    let Received {
        writer,
        md5,
        sample,
        ..
    } = body::receive(writer, payload, Some(size), hasher).await?;
    check_size(&policy, size)?;
    if let Some(header) = &input.content_md5 {
        body::check_content_md5(header, &md5)?;
    }
    meta.etag = hex::encode(md5);
    let etag = meta.etag.clone();
    let (version, vstate) = objects::commit(s, &input.bucket, writer, meta, sample)
        .await
        .map_err(|e| crate::anomaly::ops::refused(e, freeze))?;
    let mut resp = S3Response::new(PostObjectOutput {
        e_tag: Some(ETag::Strong(etag.clone())),
        size: Some(version.size as i64),
        version_id: versioning::shown_version_id(vstate, &version.version_id),
        ..Default::default()
    });
    let encryption = [
        (
            "x-amz-server-side-encryption",
            enc.sse.map(|e| e.as_str().to_string()),
        ),
        ("x-amz-server-side-encryption-aws-kms-key-id", enc.kms_key),
        (
            "x-amz-server-side-encryption-bucket-key-enabled",
            enc.bucket_key.map(|b| b.to_string()),
        ),
        (
            "x-amz-server-side-encryption-customer-algorithm",
            enc.customer_algorithm,
        ),
        (
            "x-amz-server-side-encryption-customer-key-md5",
            enc.customer_key_md5,
        ),
    ];
    resp.extensions.insert(Stored {
        bucket: input.bucket,
        key,
        etag,
        encryption: encryption
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| (name, v)))
            .collect(),
    });
    Ok(resp)
}

/// What the tap saw of the form, for the handler (request extensions).
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen(Arc<Mutex<SeenForm>>);

#[derive(Clone, Debug, Default)]
pub(crate) struct SeenForm {
    /// The file part's `filename` ("" when it had none); None if never reached.
    file_name: Option<String>,
    /// Every `policy` field, as sent (s3s verified the signature over one of them).
    policies: Vec<String>,
}

impl Seen {
    fn get(&self) -> SeenForm {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut SeenForm)) {
        if let Ok(mut g) = self.0.lock() {
            f(&mut g);
        }
    }
}

/// A POST Object request seen by the server, before s3s takes it.
pub(crate) struct Upload {
    boundary: Vec<u8>,
    seen: Seen,
}

impl Upload {
    /// A multipart/form-data POST (the only shape s3s treats as POST Object).
    pub(crate) fn detect<B>(req: &Request<B>) -> Option<Upload> {
        if req.method() != Method::POST {
            return None;
        }
        let ct = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let (mime, params) = ct.split_once(';')?;
        if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
            return None;
        }
        let boundary = params.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.trim().trim_matches('"').to_string())
        })?;
        Some(Upload {
            boundary: format!("\r\n--{boundary}").into_bytes(),
            seen: Seen::default(),
        })
    }

    pub(crate) fn seen(&self) -> Seen {
        self.seen.clone()
    }

    pub(crate) fn tap<B>(&self, inner: B) -> Tap<B> {
        Tap {
            inner,
            delimiter: self.boundary.clone(),
            // The body starts with the first delimiter, without the CRLF before it.
            buf: b"\r\n".to_vec(),
            scanned: 0,
            in_policy: false,
            seen: Some(self.seen.clone()),
        }
    }
}

/// Passes a form body through unchanged while reading what the handler needs and
/// s3s does not hand over: the `policy` field(s) and the `file` part's `filename`.
/// Parts are found by their delimiter, which no field value can contain, so a
/// value cannot fake a part header. Nothing after the file part's header is kept.
pub(crate) struct Tap<B> {
    inner: B,
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    scanned: usize,
    /// `buf` starts with the value of a `policy` field.
    in_policy: bool,
    /// None once the file part was reached (or the search was abandoned).
    seen: Option<Seen>,
}

impl<B> Tap<B> {
    fn scan(&mut self, data: &[u8]) {
        let Some(seen) = self.seen.clone() else {
            return;
        };
        self.scanned += data.len();
        if self.scanned > MAX_SCAN {
            // Past what s3s accepts before the file: it will refuse the form anyway.
            self.seen = None;
            self.buf = Vec::new();
            return;
        }
        self.buf.extend_from_slice(data);
        loop {
            let Some(at) = find(&self.buf, &self.delimiter) else {
                if !self.in_policy {
                    // Keep what could be the start of a delimiter split across chunks.
                    let keep = self.delimiter.len().saturating_sub(1).min(self.buf.len());
                    self.buf.drain(..self.buf.len() - keep);
                }
                return;
            };
            if std::mem::take(&mut self.in_policy) {
                let value = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                seen.update(|s| s.policies.push(value));
            }
            let head_start = at + self.delimiter.len();
            let Some(len) = find(&self.buf[head_start..], b"\r\n\r\n") else {
                self.buf.drain(..at);
                return;
            };
            let head =
                String::from_utf8_lossy(&self.buf[head_start..head_start + len]).into_owned();
            if let Some((name, filename)) = disposition(&head) {
                if name.eq_ignore_ascii_case("file") {
                    seen.update(|s| s.file_name = Some(filename.unwrap_or_default()));
                    self.seen = None;
                    self.buf = Vec::new();
                    return;
                }
                self.in_policy = name.eq_ignore_ascii_case("policy");
            }
            self.buf.drain(..head_start + len + 4);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `name` and `filename` of a part's Content-Disposition header.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let line = head.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    let param = |want: &str| {
        line.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(want)
                .then(|| v.trim().trim_matches('"').to_string())
        })
    };
    Some((param("name")?, param("filename")))
}

impl<B> hyper::body::Body for Tap<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.scan(data);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Error bodies larger than this are not s3s' policy verdicts; left alone.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The response to a POST Object request, as AWS gives it.
pub(crate) async fn finish(resp: Response<s3s::Body>) -> Response<s3s::Body> {
    if let Some(stored) = resp.extensions().get::<Stored>().cloned() {
        return success(resp, &stored);
    }
    let status = resp.status();
    if !matches!(status, StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN) {
        return resp;
    }
    use hyper::body::Body as _;
    if resp
        .body()
        .size_hint()
        .upper()
        .is_none_or(|n| n > MAX_ERROR_BODY)
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|c| c.to_bytes()) else {
        return Response::from_parts(parts, s3s::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let tag = |t: &str| {
        let start = text.find(&format!("<{t}>"))? + t.len() + 2;
        let end = text[start..].find(&format!("</{t}>"))? + start;
        Some(text[start..end].to_string())
    };
    let rewritten = match (tag("Code").as_deref(), tag("Message")) {
        // s3s' condition failures ("Policy condition 'eq' for field 'key' failed: ...").
        (Some("InvalidPolicyDocument"), Some(m)) if m.starts_with("Policy condition") => {
            Some(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("Invalid according to Policy: Policy Condition failed: {m}"),
            ))
        }
        // s3s' expiry check, made before the file is read.
        (Some("AccessDenied"), Some(m)) if m == "Request has expired" => {
            Some(Violation::Expired.into())
        }
        _ => None,
    };
    match rewritten.map(S3Error::to_http_response) {
        Some(Ok(mut r)) => {
            // Keep what the server added (CORS, Connection), minus the old length.
            let mut headers = parts.headers;
            headers.remove(header::CONTENT_LENGTH);
            for (k, v) in r.headers() {
                headers.insert(k.clone(), v.clone());
            }
            *r.headers_mut() = headers;
            r
        }
        _ => Response::from_parts(parts, s3s::Body::from(bytes)),
    }
}

/// s3s built the success response from the key as sent; rebuild the parts that
/// carry the key with the one actually stored.
fn success(mut resp: Response<s3s::Body>, stored: &Stored) -> Response<s3s::Body> {
    let location = format!("/{}/{}", stored.bucket, encode_path(&stored.key));
    match resp.status() {
        StatusCode::CREATED => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><PostResponse><Location>{}</Location>\
                 <Bucket>{}</Bucket><Key>{}</Key><ETag>\"{}\"</ETag></PostResponse>",
                escape(&location),
                escape(&stored.bucket),
                escape(&stored.key),
                escape(&stored.etag),
            );
            let headers: &mut HeaderMap = resp.headers_mut();
            headers.insert(header::CONTENT_LENGTH, xml.len().into());
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/xml"),
            );
            *resp.body_mut() = s3s::Body::from(xml);
        }
        StatusCode::SEE_OTHER => {
            let fixed = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| redirect_with_key(l, &stored.key))
                .and_then(|l| header::HeaderValue::from_str(&l).ok());
            if let Some(l) = fixed {
                resp.headers_mut().insert(header::LOCATION, l);
            }
        }
        _ => {}
    }
    for (name, value) in &stored.encryption {
        if let Ok(v) = header::HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    // AWS names the object in ETag and Location headers too (a redirect keeps its own).
    if let Ok(v) = header::HeaderValue::from_str(&format!("\"{}\"", stored.etag)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if resp.status() != StatusCode::SEE_OTHER {
        if let Ok(v) = header::HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
    }
    resp
}

/// The redirect s3s built, with its trailing `key=` parameter replaced by the stored key.
/// s3s appends `bucket`, `key` and `etag` last, in that order.
fn redirect_with_key(location: &str, key: &str) -> Option<String> {
    let at = location.rfind("&key=")?;
    let etag_at = location[at..].find("&etag=")? + at;
    Some(format!(
        "{}&key={}{}",
        &location[..at],
        encode_query(key),
        &location[etag_at..]
    ))
}

/// Unreserved characters stay as they are; everything else is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As in a query value, but a path keeps its `/`.
const PATH: &AsciiSet = &QUERY_VALUE.remove(b'/');

pub(crate) fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

fn encode_query(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_700_000_000.0;

    fn policy(conditions: &str) -> PostPolicy {
        // 2030: far after NOW.
        let json =
            format!(r#"{{"expiration":"2030-01-01T00:00:00.000Z","conditions":[{conditions}]}}"#);
        PostPolicy::from_json(&json).unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn condition_failed(r: Result<(), Violation>) -> String {
        match r {
            Err(Violation::Condition(c)) => c,
            other => panic!("expected a failed condition, got {other:?}"),
        }
    }

    #[test]
    fn exact_and_prefix_matches() {
        let p = policy(
            r#"{"bucket":"bkt"},["eq","$key","a/b.txt"],["starts-with","$x-amz-meta-tag",""],
               ["starts-with","$Content-Type","image/"]"#,
        );
        let ok = form(&[
            ("key", "a/b.txt"),
            ("content-type", "image/png"),
            ("x-amz-meta-tag", "x"),
        ]);
        assert_eq!(evaluate(&p, NOW, "bkt", &ok), Ok(()));
        // The bucket comes from the URL, not from a field.
        let c = condition_failed(evaluate(&p, NOW, "other", &ok));
        assert_eq!(c, r#"["eq", "$bucket", "bkt"]"#);
        let mut bad = ok.clone();
        bad.insert("key".into(), "a/c.txt".into());
        assert_eq!(
            condition_failed(evaluate(&p, NOW, "bkt", &bad)),
            r#"["eq", "$key", "a/b.txt"]"#
        );
        let mut bad = ok.clone();
        bad.insert("content-type".into(), "text/plain".into());
        assert!(condition_failed(evaluate(&p, NOW, "bkt", &bad)).contains("$content-type"));
        // Every listed content type must match the prefix.
        let mut bad = ok.clone();
        bad.insert("content-type".into(), "image/png, text/html".into());
        assert!(evaluate(&p, NOW, "bkt", &bad).is_err());
        // An absent field fails an exact match; an empty prefix admits it.
        let missing = form(&[("content-type", "image/png")]);
        assert!(evaluate(&p, NOW, "bkt", &missing).is_err());
        let p2 =
            policy(r#"["starts-with","$key",""],["starts-with","$success_action_redirect",""]"#);
        assert_eq!(evaluate(&p2, NOW, "bkt", &form(&[("key", "k")])), Ok(()));
        let p3 = policy(r#"["starts-with","$key","up/"]"#);
        assert!(evaluate(&p3, NOW, "bkt", &form(&[])).is_err());
        assert!(evaluate(&p3, NOW, "bkt", &form(&[("key", "down/x")])).is_err());
        assert_eq!(evaluate(&p3, NOW, "bkt", &form(&[("key", "up/x")])), Ok(()));
    }

    #[test]
    fn expired_policies_are_refused() {
        let p = PostPolicy::from_json(
            r#"{"expiration":"2020-01-01T00:00:00Z","conditions":[["starts-with","$key",""]]}"#,
        )
        .unwrap();
        assert_eq!(
            evaluate(&p, NOW, "b", &form(&[("key", "k")])),
            Err(Violation::Expired)
        );
        let e = S3Error::from(Violation::Expired);
        assert_eq!(e.code().as_str(), "AccessDenied");
        assert_eq!(
            e.message(),
            Some("Invalid according to Policy: Policy expired.")
        );
    }

    #[test]
    fn every_field_needs_a_condition() {
        let p = policy(r#"["starts-with","$key",""]"#);
        let f = form(&[
            ("key", "k"),
            ("x-amz-signature", "s"),
            ("policy", "p"),
            ("file", "f"),
            ("x-ignore-me", "1"),
            ("bucket", "b"),
        ]);
        assert_eq!(evaluate(&p, NOW, "b", &f), Ok(()));
        let mut f2 = f.clone();
        f2.insert("x-amz-meta-a".into(), "1".into());
        f2.insert("content-type".into(), "t".into());
        assert_eq!(
            evaluate(&p, NOW, "b", &f2),
            Err(Violation::ExtraFields(vec![
                "content-type".into(),
                "x-amz-meta-a".into()
            ]))
        );
        let e = S3Error::from(Violation::ExtraFields(vec!["content-type".into()]));
        assert_eq!(e.code().as_str(), "AccessDenied");
        assert_eq!(e.status_code(), Some(StatusCode::FORBIDDEN));
        assert!(e
            .message()
            .unwrap()
            .contains("Extra input fields: content-type"));
    }

    #[test]
    fn content_length_range_is_inclusive() {
        let p = policy(r#"["content-length-range", 2, 5]"#);
        assert_eq!(check_size(&p, 1), Err(Violation::TooSmall));
        assert_eq!(check_size(&p, 2), Ok(()));
        assert_eq!(check_size(&p, 5), Ok(()));
        assert_eq!(check_size(&p, 6), Err(Violation::TooLarge));
        assert_eq!(
            S3Error::from(Violation::TooLarge).code().as_str(),
            "EntityTooLarge"
        );
        assert_eq!(
            S3Error::from(Violation::TooSmall).code().as_str(),
            "EntityTooSmall"
        );
        // No range: any size.
        assert_eq!(
            check_size(&policy(r#"["starts-with","$key",""]"#), 1 << 40),
            Ok(())
        );
    }

    #[test]
    fn signature_fields_stand_in_from_the_policy() {
        let p = policy(r#"["eq","$x-amz-date","20250101T000000Z"],["starts-with","$key",""]"#);
        let input = PostObjectInput {
            key: "k".into(),
            bucket: "b".into(),
            success_action_status: Some(201),
            ..Default::default()
        };
        let f = form_fields(&input, &p);
        assert_eq!(
            f.get("x-amz-date").map(String::as_str),
            Some("20250101T000000Z")
        );
        assert_eq!(
            f.get("success_action_status").map(String::as_str),
            Some("201")
        );
        // success_action_status has no condition here.
        assert!(matches!(
            evaluate(&p, NOW, "b", &f),
            Err(Violation::ExtraFields(_))
        ));
    }

    fn tap_seen(body: &[u8], chunk: usize) -> SeenForm {
        let mut req = Request::new(());
        *req.method_mut() = Method::POST;
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XyZ".parse().unwrap(),
        );
        let up = Upload::detect(&req).unwrap();
        let mut t = up.tap(());
        for c in body.chunks(chunk) {
            t.scan(c);
        }
        up.seen().get()
    }

    #[test]
    fn tap_finds_the_file_name_across_chunks() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n\
up/${filename}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"Policy\"\r\n\r\n\
eyJhIjoxfQ==\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"fake\"\r\n\r\n\
\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo 1.jpg\"\r\n\
Content-Type: image/jpeg\r\n\r\nDATA\r\n--XyZ--\r\n";
        for chunk in [1, 3, 7, 64, body.len()] {
            let seen = tap_seen(body, chunk);
            assert_eq!(
                seen.file_name.as_deref(),
                Some("photo 1.jpg"),
                "chunk {chunk}"
            );
            assert_eq!(seen.policies, ["eyJhIjoxfQ=="], "chunk {chunk}");
        }
        let partial = tap_seen(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk",
            5,
        );
        assert_eq!(partial.file_name, None);
        assert!(partial.policies.is_empty());
    }

    #[test]
    fn only_multipart_posts_are_uploads() {
        let mut req = Request::new(());
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=a".parse().unwrap(),
        );
        assert!(Upload::detect(&req).is_none());
        *req.method_mut() = Method::POST;
        assert!(Upload::detect(&req).is_some());
        req.headers_mut()
            .insert(header::CONTENT_TYPE, "application/xml".parse().unwrap());
        assert!(Upload::detect(&req).is_none());
    }

    #[test]
    fn redirect_gets_the_stored_key() {
        let l = "https://x.test/done?a=1&bucket=b&key=up%2F%24%7Bfilename%7D&etag=%22e%22";
        assert_eq!(
            redirect_with_key(l, "up/a b.txt").as_deref(),
            Some("https://x.test/done?a=1&bucket=b&key=up%2Fa%20b.txt&etag=%22e%22")
        );
    }
}
