//! Server-side encryption on the S3 surface: what a write asks for (its headers, else
//! the bucket's default encryption), SSE-C customer keys, the headers a response
//! carries, and Put/Get/DeleteBucketEncryption. The engine does the encrypting
//! (`engine/src/sse.rs`).

use crate::bucket_config::{from_xml, to_xml};
use crate::ctx::{Cybs3, PeerAddr, SecureTransport};
use base64::Engine as _;
use engine::SseMode;
use hyper::http::Extensions;
use hyper::StatusCode;
use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

/// The bucket attribute that keeps the default encryption (its S3 XML).
pub(crate) const ATTR_ENCRYPTION: &str = "encryption";

/// What a write's headers say about encryption.
#[derive(Default)]
pub(crate) struct Asked<'a> {
    pub sse: Option<&'a ServerSideEncryption>,
    pub key_id: Option<&'a str>,
    pub context: Option<&'a str>,
    pub bucket_key: Option<bool>,
    pub customer: Option<&'a CustomerKey>,
}

/// What a write request's SSE headers ask: every S3 input that stores an object has
/// the same fields.
macro_rules! asked {
    ($input:expr, $customer:expr) => {
        $crate::sse::Asked {
            sse: $input.server_side_encryption.as_ref(),
            key_id: $input.ssekms_key_id.as_deref(),
            context: $input.ssekms_encryption_context.as_deref(),
            bucket_key: $input.bucket_key_enabled,
            customer: $customer,
        }
    };
}

/// The customer key of a request's SSE-C headers ([`customer_key`]).
macro_rules! customer_of {
    ($input:expr, $may_travel:expr) => {
        $crate::sse::customer_key(
            (
                $input.sse_customer_algorithm.as_deref(),
                $input.sse_customer_key.as_deref(),
                $input.sse_customer_key_md5.as_deref(),
            ),
            $may_travel,
        )
    };
}

pub(crate) use {asked, customer_of};

/// An SSE-C customer key as a request gives it, checked.
pub(crate) struct CustomerKey {
    pub key: [u8; 32],
    /// Its MD5, base64, as the request gave it and responses repeat it.
    pub md5: String,
}

/// Whether a customer key may come over this request's connection: over TLS, or from
/// this machine (a key is a secret, and never crosses the network in clear).
pub(crate) fn key_may_travel(extensions: &Extensions) -> bool {
    let secure = extensions.get::<SecureTransport>().is_some_and(|s| s.0);
    let local = extensions
        .get::<PeerAddr>()
        .is_some_and(|p| p.0.ip().to_canonical().is_loopback());
    secure || local
}

/// The customer key of a request's SSE-C headers (algorithm, key, key MD5), or `None`
/// when it has none; `may_travel` from [`key_may_travel`].
pub(crate) fn customer_key(
    (algorithm, key, md5): (Option<&str>, Option<&str>, Option<&str>),
    may_travel: bool,
) -> S3Result<Option<CustomerKey>> {
    let (algorithm, key, md5) = match (algorithm, key, md5) {
        (None, None, None) => return Ok(None),
        (Some(a), Some(k), Some(m)) => (a, k, m),
        _ => {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide the algorithm, the key and its MD5"
            ))
        }
    };
    if !may_travel {
        return Err(s3_error!(
            InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
        ));
    }
    if algorithm != ServerSideEncryption::AES256 {
        return Err(s3_error!(
            InvalidEncryptionAlgorithmError,
            "The encryption request you specified is not valid. The valid value is AES256."
        ));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64
        .decode(key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    let Some(bytes) = bytes else {
        return Err(s3_error!(
            InvalidArgument,
            "The secret key was invalid for the specified algorithm."
        ));
    };
    use md5::Digest as _;
    if b64.encode(md5::Md5::digest(bytes)) != md5 {
        return Err(s3_error!(
            InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided."
        ));
    }
    Ok(Some(CustomerKey {
        key: bytes,
        md5: md5.to_string(),
    }))
}

/// The key a request names, by NAME or by an ARN ending in `:key/NAME`.
fn key_name(id: &str) -> &str {
    id.rsplit_once(":key/").map_or(id, |(_, name)| name)
}

/// The ARN responses name a key by.
pub(crate) fn key_arn(s: &Cybs3, name: &str) -> String {
    format!("arn:cybs3:kms:{}::key/{name}", s.region)
}

fn kms_error(code: &str, status: StatusCode, msg: String) -> S3Error {
    let mut e = S3Error::with_message(S3ErrorCode::Custom(code.to_string().into()), msg);
    e.set_status_code(status);
    e
}

/// The mode `algorithm` with `key_id` names, checked: the key must exist.
fn mode(
    s: &Cybs3,
    algorithm: &str,
    key_id: Option<&str>,
    context: Option<&str>,
    bucket_key: bool,
) -> S3Result<SseMode> {
    match algorithm {
        ServerSideEncryption::AES256 => {
            if key_id.is_some() || context.is_some() {
                return Err(s3_error!(
                    InvalidArgument,
                    "x-amz-server-side-encryption-aws-kms-key-id and the encryption context need x-amz-server-side-encryption: aws:kms"
                ));
            }
            Ok(SseMode::S3)
        }
        ServerSideEncryption::AWS_KMS => {
            let key = key_id.map_or(engine::DEFAULT_KEY, key_name).to_string();
            if !s.store.kms_has(&key) {
                return Err(kms_error(
                    "KMS.NotFoundException",
                    StatusCode::BAD_REQUEST,
                    format!("Invalid keyId {key}: `cybs3 admin kms key create {key}` makes it"),
                ));
            }
            if let Some(c) = context {
                let json = base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
                if !json.is_some_and(|j| j.is_object()) {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The encryption context must be a base64-encoded JSON object"
                    ));
                }
            }
            Ok(SseMode::Kms {
                key,
                context: context.map(str::to_string),
                bucket_key,
            })
        }
        other => Err(s3_error!(
            InvalidArgument,
            "The encryption method specified is not supported: {other}"
        )),
    }
}

/// The encryption of a new object or upload in `bucket`: what its headers ask, else the
/// bucket's default encryption, else none.
pub(crate) async fn for_write(
    s: &Cybs3,
    bucket: &str,
    asked: Asked<'_>,
) -> S3Result<Option<SseMode>> {
    if let Some(c) = asked.customer {
        if asked.sse.is_some() || asked.key_id.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "Server Side Encryption with Customer provided keys cannot be combined with x-amz-server-side-encryption"
            ));
        }
        return Ok(Some(engine::customer_mode(&c.key, &c.md5)));
    }
    if let Some(sse) = asked.sse {
        let bucket_key = asked.bucket_key.unwrap_or(false);
        return mode(s, sse.as_str(), asked.key_id, asked.context, bucket_key).map(Some);
    }
    if asked.key_id.is_some() || asked.context.is_some() {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption-aws-kms-key-id and the encryption context need x-amz-server-side-encryption: aws:kms"
        ));
    }
    let Some(bytes) = s.bucket_attr(bucket, ATTR_ENCRYPTION).await? else {
        return Ok(None);
    };
    let config: ServerSideEncryptionConfiguration = from_xml(&bytes)?;
    let Some(rule) = config.rules.first() else {
        return Ok(None);
    };
    let Some(default) = &rule.apply_server_side_encryption_by_default else {
        return Ok(None);
    };
    let bucket_key = rule.bucket_key_enabled.unwrap_or(false);
    let key = default.kms_master_key_id.as_deref();
    mode(s, default.sse_algorithm.as_str(), key, None, bucket_key).map(Some)
}

/// A writer of a new version of `bucket/key`, encrypted as `asked` (else the bucket's
/// default encryption) says, and the headers its response carries. A bad request, a bad
/// key or a missing bucket is refused before any byte of the body is read.
pub(crate) async fn writer(
    s: &Cybs3,
    bucket: &str,
    key: &str,
    asked: Asked<'_>,
) -> S3Result<(engine::ObjectWriter, Headers)> {
    let customer = asked.customer.map(|c| c.key);
    let mode = for_write(s, bucket, asked).await?;
    let enc = headers(s, mode.as_ref());
    let (store, bucket, key) = (s.store.clone(), bucket.to_string(), key.to_string());
    let writer = crate::ctx::blocking(move || {
        let mut writer = store.put(&bucket, &key)?;
        writer.set_encryption(mode, customer.as_ref())?;
        Ok(writer)
    })
    .await?;
    Ok((writer, enc))
}

/// The encryption headers of a response about an object.
#[derive(Default)]
pub(crate) struct Headers {
    pub sse: Option<ServerSideEncryption>,
    /// The KMS key's ARN.
    pub kms_key: Option<String>,
    pub bucket_key: Option<bool>,
    /// SSE-C: the algorithm and the key's MD5.
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

/// The response headers of an object in `mode`.
pub(crate) fn headers(s: &Cybs3, mode: Option<&SseMode>) -> Headers {
    let named = ServerSideEncryption::from_static;
    match mode {
        None => Headers::default(),
        Some(SseMode::S3) => Headers {
            sse: Some(named(ServerSideEncryption::AES256)),
            ..Headers::default()
        },
        Some(SseMode::Kms {
            key, bucket_key, ..
        }) => Headers {
            sse: Some(named(ServerSideEncryption::AWS_KMS)),
            kms_key: Some(key_arn(s, key)),
            bucket_key: bucket_key.then_some(true),
            ..Headers::default()
        },
        Some(SseMode::Customer { key_md5, .. }) => Headers {
            customer_algorithm: Some(ServerSideEncryption::AES256.to_string()),
            customer_key_md5: Some(key_md5.clone()),
            ..Headers::default()
        },
    }
}

/// The mode of a stored version.
pub(crate) fn of(v: &engine::ObjectVersion) -> Option<&SseMode> {
    v.encryption.as_ref().map(|e| &e.mode)
}

pub(crate) async fn put_bucket_encryption(
    s: &Cybs3,
    input: PutBucketEncryptionInput,
) -> S3Result<PutBucketEncryptionOutput> {
    let config = input.server_side_encryption_configuration;
    let [rule] = config.rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "The encryption configuration must have exactly one rule"
        ));
    };
    let Some(default) = &rule.apply_server_side_encryption_by_default else {
        return Err(s3_error!(
            MalformedXML,
            "The rule needs ApplyServerSideEncryptionByDefault"
        ));
    };
    // Checked as a write would use it: the algorithm is known, the key exists.
    mode(
        s,
        default.sse_algorithm.as_str(),
        default.kms_master_key_id.as_deref(),
        None,
        false,
    )?;
    s.set_bucket_attr(&input.bucket, ATTR_ENCRYPTION, Some(to_xml(&config)?))
        .await?;
    Ok(PutBucketEncryptionOutput {})
}

pub(crate) async fn get_bucket_encryption(
    s: &Cybs3,
    input: GetBucketEncryptionInput,
) -> S3Result<GetBucketEncryptionOutput> {
    let Some(bytes) = s.bucket_attr(&input.bucket, ATTR_ENCRYPTION).await? else {
        return Err(s3_error!(
            ServerSideEncryptionConfigurationNotFoundError,
            "The server side encryption configuration was not found"
        ));
    };
    Ok(GetBucketEncryptionOutput {
        server_side_encryption_configuration: Some(from_xml(&bytes)?),
    })
}

pub(crate) async fn delete_bucket_encryption(
    s: &Cybs3,
    input: DeleteBucketEncryptionInput,
) -> S3Result<DeleteBucketEncryptionOutput> {
    s.bucket_attr(&input.bucket, ATTR_ENCRYPTION).await?;
    s.set_bucket_attr(&input.bucket, ATTR_ENCRYPTION, None)
        .await?;
    Ok(DeleteBucketEncryptionOutput {})
}
