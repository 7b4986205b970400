//! The S3 condition keys a request carries (`s3:x-amz-acl`, `s3:RequestObjectTag/…`,
//! `s3:object-lock-…`, `s3:ExistingObjectTag/…`…), and which operations carry each.
//!
//! AWS defines every key for a set of actions only; for any other action the key is
//! absent, so a `Deny … StringNotEquals` on it does not reach requests it was never
//! meant for. These functions take plain values (a header lookup, a tag list) so the
//! policy crate stays free of HTTP types; `auth` feeds them.

use super::request::Context;

/// Condition keys named after a request header, and the header each comes from.
const HEADER_KEYS: &[(&str, &str)] = &[
    ("s3:x-amz-acl", "x-amz-acl"),
    ("s3:x-amz-grant-read", "x-amz-grant-read"),
    ("s3:x-amz-grant-write", "x-amz-grant-write"),
    ("s3:x-amz-grant-read-acp", "x-amz-grant-read-acp"),
    ("s3:x-amz-grant-write-acp", "x-amz-grant-write-acp"),
    ("s3:x-amz-grant-full-control", "x-amz-grant-full-control"),
    ("s3:x-amz-metadata-directive", "x-amz-metadata-directive"),
    (
        "s3:x-amz-server-side-encryption",
        "x-amz-server-side-encryption",
    ),
    (
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-aws-kms-key-id",
    ),
    ("s3:object-lock-mode", "x-amz-object-lock-mode"),
    ("s3:object-lock-legal-hold", "x-amz-object-lock-legal-hold"),
];

/// The ACL keys alone: the only header keys of the ACL and bucket-creation operations.
const ACL_KEYS: &[&str] = &[
    "s3:x-amz-acl",
    "s3:x-amz-grant-read",
    "s3:x-amz-grant-write",
    "s3:x-amz-grant-read-acp",
    "s3:x-amz-grant-write-acp",
    "s3:x-amz-grant-full-control",
];

/// Operations that write a new object (IAM `s3:PutObject`) and so carry its
/// headers' keys.
fn writes_object(op: &str) -> bool {
    matches!(
        op,
        "PutObject" | "CopyObject" | "CreateMultipartUpload" | "PostObject"
    )
}

/// Sets the keys taken from the request's headers that the operation `op` carries.
/// `header` returns a header's value; `now` (Unix seconds) dates the remaining
/// retention. The request's tags (`x-amz-tagging`) are given separately, parsed,
/// to [`set_request_tags`].
pub fn set_header_keys(
    ctx: &mut Context,
    op: &str,
    header: impl Fn(&str) -> Option<String>,
    now: u64,
) {
    let acl_only = matches!(op, "PutObjectAcl" | "PutBucketAcl" | "CreateBucket");
    if !writes_object(op) && !acl_only {
        if op == "UploadPartCopy" {
            set_copy_source(ctx, header("x-amz-copy-source"));
        }
        return;
    }
    for (key, name) in HEADER_KEYS {
        if acl_only && !ACL_KEYS.contains(key) {
            continue;
        }
        if let Some(v) = header(name) {
            ctx.set(key, v.trim());
        }
    }
    if acl_only {
        return;
    }
    if op == "CopyObject" {
        set_copy_source(ctx, header("x-amz-copy-source"));
    }
    if let Some(until) = header("x-amz-object-lock-retain-until-date") {
        set_retain_until(ctx, until.trim(), now);
    }
}

/// `s3:x-amz-copy-source` is `bucket/key` (with `?versionId=…` when given) as policies
/// write it: without a leading slash and percent-decoded, however the client encoded it.
fn set_copy_source(ctx: &mut Context, value: Option<String>) {
    let Some(value) = value else { return };
    let (path, version) = match value.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (value.as_str(), None),
    };
    let path = percent_decode(path.trim_start_matches('/'));
    let shown = match version {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    ctx.set("s3:x-amz-copy-source", shown);
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `s3:object-lock-retain-until-date` as sent, and `s3:object-lock-remaining-retention-days`:
/// whole days left, rounded up, so a retention asked for "N days from now" counts as N
/// days however long the request took to arrive.
fn set_retain_until(ctx: &mut Context, until: &str, now: u64) {
    ctx.set("s3:object-lock-retain-until-date", until);
    if let Some(millis) = super::dates::parse_date(until) {
        let left = millis - i64::try_from(now).unwrap_or(i64::MAX).saturating_mul(1000);
        let days = (left.max(0) + 86_400_000 - 1) / 86_400_000;
        ctx.set("s3:object-lock-remaining-retention-days", days.to_string());
    }
}

/// The keys of a PutObjectRetention body (its Mode and RetainUntilDate).
pub fn set_retention(ctx: &mut Context, mode: Option<&str>, until: Option<&str>, now: u64) {
    if let Some(mode) = mode {
        ctx.set("s3:object-lock-mode", mode);
    }
    if let Some(until) = until {
        set_retain_until(ctx, until, now);
    }
}

/// The key of a PutObjectLegalHold body (its Status, `ON` or `OFF`).
pub fn set_legal_hold(ctx: &mut Context, status: &str) {
    ctx.set("s3:object-lock-legal-hold", status);
}

/// `s3:RequestObjectTag/<key>` for each tag and the multi-valued
/// `s3:RequestObjectTagKeys`, from `x-amz-tagging` or a PutObjectTagging body.
pub fn set_request_tags(ctx: &mut Context, tags: &[(String, String)]) {
    for (k, v) in tags {
        ctx.set(&format!("s3:RequestObjectTag/{k}"), v.clone());
    }
    ctx.set_all(
        "s3:RequestObjectTagKeys",
        tags.iter().map(|(k, _)| k.clone()),
    );
}

/// Whether `op` carries tags in its request: from the `x-amz-tagging` header.
pub fn takes_tagging_header(op: &str) -> bool {
    writes_object(op)
}

/// `s3:ExistingObjectTag/<key>` for each tag of the object version the request names.
pub fn set_existing_tags(ctx: &mut Context, tags: &[(String, String)]) {
    for (k, v) in tags {
        ctx.set(&format!("s3:ExistingObjectTag/{k}"), v.clone());
    }
}

/// Whether AWS gives `op` the `s3:ExistingObjectTag/…` keys: reads and the
/// sub-resource writes of an existing object; never PutObject or DeleteObject, which
/// may not depend on the tags of what they replace or remove.
pub fn reads_existing_tags(op: &str) -> bool {
    matches!(
        op,
        "GetObject"
            | "HeadObject"
            | "GetObjectAttributes"
            | "GetObjectAcl"
            | "PutObjectAcl"
            | "GetObjectTagging"
            | "PutObjectTagging"
            | "DeleteObjectTagging"
            | "GetObjectRetention"
            | "PutObjectRetention"
            | "GetObjectLegalHold"
            | "PutObjectLegalHold"
            | "RestoreObject"
            | "GetObjectTorrent"
    )
}

/// Whether a condition on `key` (case-insensitive) reads the stored tags.
pub fn is_existing_tag_key(key: &str) -> bool {
    starts_with_ignore_case(key, "s3:ExistingObjectTag/")
}

/// Whether `op` has condition keys in its body (see [`is_body_key`]).
pub fn has_body_keys(op: &str) -> bool {
    matches!(
        op,
        "PutObjectTagging" | "PutObjectRetention" | "PutObjectLegalHold"
    )
}

/// Whether a condition on `key` can only be answered from the body of `op`: those
/// operations are decided after s3s has parsed it.
pub fn is_body_key(op: &str, key: &str) -> bool {
    match op {
        "PutObjectTagging" => starts_with_ignore_case(key, "s3:RequestObjectTag"),
        "PutObjectRetention" => [
            "s3:object-lock-mode",
            "s3:object-lock-retain-until-date",
            "s3:object-lock-remaining-retention-days",
        ]
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k)),
        "PutObjectLegalHold" => key.eq_ignore_ascii_case("s3:object-lock-legal-hold"),
        _ => false,
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}
