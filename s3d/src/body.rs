//! Request bodies into the engine: streamed, hashed and length-checked.
//!
//! The async side pulls chunks off the connection and hands them over a small
//! bounded channel to a blocking thread that hashes and writes them, so the
//! network and the disk work in parallel and memory stays at a few chunks
//! whatever the object size. Nothing here commits: the caller calls `finish`
//! only after every check passed; dropping the writer discards the bytes.

use crate::anomaly::entropy::Sample;
use crate::{ctx, errors};
use base64::{engine::general_purpose::STANDARD as B64, Engine as _};
use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Sha1, Sha256};
use s3s::dto::{Checksum, ChecksumAlgorithm, StreamingBlob};
use s3s::{s3_error, S3Result};

/// Chunks in flight between the connection and the writer thread.
const QUEUE: usize = 8;
/// The largest object a single PUT may carry, as in S3.
pub(crate) const MAX_PUT_SIZE: u64 = 5 << 30;

pub(crate) struct Received {
    pub writer: engine::ObjectWriter,
    pub md5: [u8; 16],
    /// Base64 values of the checksums that were asked for.
    pub checksums: Checksum,
    /// What the body's first bytes look like (the anomaly detector's entropy test).
    pub sample: Option<Sample>,
}

/// Stream `body` into `writer`, refusing anything but exactly `expected` bytes.
pub(crate) async fn receive(
    mut writer: engine::ObjectWriter,
    mut body: StreamingBlob,
    expected: Option<u64>,
    mut hasher: ChecksumHasher,
) -> S3Result<Received> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let sink = ctx::spawn(move || -> engine::Result<_> {
        let mut md5 = Md5::new();
        while let Some(chunk) = rx.blocking_recv() {
            md5.update(&chunk);
            hasher.update(&chunk);
            writer.write(&chunk)?;
        }
        Ok((writer, md5.finalize().into(), hasher.finalize()))
    });
    let limit = expected.unwrap_or(MAX_PUT_SIZE);
    let mut size = 0u64;
    let mut failed = None;
    let mut sample = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failed = Some(errors::from_body(&*e, ctx::body_went_idle()));
                break;
            }
        };
        if sample.is_none() {
            sample = Sample::of(&chunk);
        }
        size += chunk.len() as u64;
        if size > limit {
            failed = Some(too_long(expected));
            break;
        }
        if tx.send(chunk).await.is_err() {
            // The writer gave up; its error is reported below.
            break;
        }
    }
    drop(tx);
    let written = sink.await?;
    if let Some(e) = failed {
        return Err(e);
    }
    let (writer, md5, checksums) = written.map_err(errors::from_engine)?;
    if expected.is_some_and(|n| size < n) {
        return Err(s3_error!(
            IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header."
        ));
    }
    Ok(Received {
        writer,
        md5,
        checksums,
        sample,
    })
}

fn too_long(expected: Option<u64>) -> s3s::S3Error {
    match expected {
        Some(n) => s3_error!(
            IncompleteBody,
            "The request body is longer than the {n} bytes declared."
        ),
        None => s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size."
        ),
    }
}

/// Compare a `Content-MD5` header (base64 of the digest) with what was received.
pub(crate) fn check_content_md5(header: &str, md5: &[u8; 16]) -> S3Result<()> {
    let claimed = B64
        .decode(header.trim())
        .ok()
        .filter(|d| d.len() == 16)
        .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?;
    if claimed != md5 {
        return Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received."
        ));
    }
    Ok(())
}

/// A hasher for every algorithm named by the request or carrying a claimed value.
pub(crate) fn hasher_for(
    algorithm: Option<&ChecksumAlgorithm>,
    claimed: &Checksum,
) -> ChecksumHasher {
    let named = |name: &str| algorithm.is_some_and(|a| a.as_str().eq_ignore_ascii_case(name));
    ChecksumHasher {
        crc32: (named(ChecksumAlgorithm::CRC32) || claimed.checksum_crc32.is_some())
            .then(Crc32::new),
        crc32c: (named(ChecksumAlgorithm::CRC32C) || claimed.checksum_crc32c.is_some())
            .then(Crc32c::new),
        crc64nvme: (named(ChecksumAlgorithm::CRC64NVME) || claimed.checksum_crc64nvme.is_some())
            .then(Crc64Nvme::new),
        sha1: (named(ChecksumAlgorithm::SHA1) || claimed.checksum_sha1.is_some()).then(Sha1::new),
        sha256: (named(ChecksumAlgorithm::SHA256) || claimed.checksum_sha256.is_some())
            .then(Sha256::new),
    }
}

/// The `x-amz-checksum-*` values found in headers or trailers, by algorithm.
pub(crate) fn claimed_from(headers: &hyper::HeaderMap) -> Checksum {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Checksum {
        checksum_crc32: get("x-amz-checksum-crc32"),
        checksum_crc32c: get("x-amz-checksum-crc32c"),
        checksum_crc64nvme: get("x-amz-checksum-crc64nvme"),
        checksum_sha1: get("x-amz-checksum-sha1"),
        checksum_sha256: get("x-amz-checksum-sha256"),
        ..Default::default()
    }
}

/// Pairs of (algorithm name, value) for the set fields, in a fixed order.
pub(crate) fn checksum_pairs(c: &Checksum) -> Vec<(&'static str, &String)> {
    [
        ("crc32", &c.checksum_crc32),
        ("crc32c", &c.checksum_crc32c),
        ("crc64nvme", &c.checksum_crc64nvme),
        ("sha1", &c.checksum_sha1),
        ("sha256", &c.checksum_sha256),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
    .collect()
}

/// The set checksums as the engine stores them: (algorithm name, base64 value).
pub(crate) fn stored_checksums(c: &Checksum) -> Vec<(String, String)> {
    checksum_pairs(c)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.clone()))
        .collect()
}

/// Every claimed value must equal the computed one (BadDigest otherwise, as AWS).
pub(crate) fn check_checksums(claimed: &Checksum, computed: &Checksum) -> S3Result<()> {
    let computed = checksum_pairs(computed);
    for (name, want) in checksum_pairs(claimed) {
        let got = computed.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        if got != Some(want) {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                name.to_uppercase()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_md5_is_checked() {
        let md5: [u8; 16] = Md5::digest(b"hello").into();
        let good = B64.encode(md5);
        assert!(check_content_md5(&good, &md5).is_ok());
        let other = B64.encode(<[u8; 16]>::from(Md5::digest(b"world")));
        assert_eq!(
            check_content_md5(&other, &md5).unwrap_err().code().as_str(),
            "BadDigest"
        );
        assert_eq!(
            check_content_md5("not base64!", &md5)
                .unwrap_err()
                .code()
                .as_str(),
            "InvalidDigest"
        );
    }

    #[test]
    fn claimed_checksums_must_match_computed() {
        let mut headers = hyper::HeaderMap::new();
        // CRC32 of "hello" is 0x3610a686.
        headers.insert("x-amz-checksum-crc32", "NhCmhg==".parse().unwrap());
        let claimed = claimed_from(&headers);
        let mut h = hasher_for(None, &claimed);
        h.update(b"hello");
        let computed = h.finalize();
        assert_eq!(computed.checksum_crc32.as_deref(), Some("NhCmhg=="));
        assert!(computed.checksum_sha256.is_none());
        assert!(check_checksums(&claimed, &computed).is_ok());

        let mut h = hasher_for(None, &claimed);
        h.update(b"hellO");
        let e = check_checksums(&claimed, &h.finalize()).unwrap_err();
        assert_eq!(e.code().as_str(), "BadDigest");
    }

    #[test]
    fn named_algorithm_is_computed_without_a_claim() {
        let algo = ChecksumAlgorithm::from_static(ChecksumAlgorithm::SHA256);
        let mut h = hasher_for(Some(&algo), &Checksum::default());
        h.update(b"");
        let c = h.finalize();
        assert_eq!(
            c.checksum_sha256.as_deref(),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        );
        assert_eq!(checksum_pairs(&c).len(), 1);
    }
}
