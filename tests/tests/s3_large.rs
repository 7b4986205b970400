//! Large objects over an erasure-coded store: a 100 MiB multipart upload with parts sent
//! concurrently, ranged and full reads verified byte-exact, and the SDK's own default
//! behaviour (streamed aws-chunked PUTs with CRC32 trailers, validated GETs, per-part
//! checksums in multipart uploads).

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
};
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::{content, Server};
use std::sync::Arc;

const PART: usize = 8 * MIB;
const TOTAL: usize = 100 * MIB;

/// Streams an object's body and returns (length, sha256) without holding it all twice.
async fn fetch_hash(c: &Client, bucket: &str, key: &str, mode: bool) -> (usize, [u8; 32]) {
    let mut req = c.get_object().bucket(bucket).key(key);
    if mode {
        req = req.checksum_mode(ChecksumMode::Enabled);
    }
    let mut out = req.send().await.expect("get");
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    let mut n = 0;
    while let Some(chunk) = out.body.try_next().await.expect("body chunk") {
        n += chunk.len();
        sha2::Digest::update(&mut h, &chunk);
    }
    (n, sha2::Digest::finalize(h).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_parallel_multipart_upload_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 4, Some("2+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("big").send().await.unwrap();

    let data = Arc::new(content("hundred-mib", TOTAL));
    let id = c
        .create_multipart_upload()
        .bucket("big")
        .key("blob")
        .content_type("application/x-test")
        .send()
        .await
        .expect("create multipart upload")
        .upload_id()
        .unwrap()
        .to_string();

    // All parts concurrently.
    let n_parts = TOTAL.div_ceil(PART);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n_parts {
        let (c, data, id) = (c.clone(), data.clone(), id.clone());
        tasks.spawn(async move {
            let part = data[i * PART..((i + 1) * PART).min(TOTAL)].to_vec();
            let want = format!("\"{}\"", md5_hex(&part));
            let out = c
                .upload_part()
                .bucket("big")
                .key("blob")
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(ByteStream::from(part))
                .send()
                .await
                .unwrap_or_else(|e| panic!("part {}: {e:?}", i + 1));
            let etag = out.e_tag().expect("part ETag").to_string();
            assert_eq!(etag, want, "part {} ETag", i + 1);
            (i as i32 + 1, etag)
        });
    }
    let mut parts = tasks.join_all().await;
    parts.sort();
    assert_eq!(parts.len(), 13);

    let done = c
        .complete_multipart_upload()
        .bucket("big")
        .key("blob")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(
                    parts
                        .iter()
                        .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e).build())
                        .collect(),
                ))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let slices: Vec<&[u8]> = data.chunks(PART).collect();
    let etag = multipart_etag(&slices);
    assert_eq!(done.e_tag(), Some(etag.as_str()));

    let h = c
        .head_object()
        .bucket("big")
        .key("blob")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(TOTAL as i64));
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    assert_eq!(h.content_type(), Some("application/x-test"));

    // A range in the middle, across the boundary between parts 6 and 7.
    let (from, to) = (6 * PART - 12_345, 6 * PART + 3 * MIB);
    let r = c
        .get_object()
        .bucket("big")
        .key("blob")
        .range(format!("bytes={from}-{to}"))
        .send()
        .await
        .expect("ranged get");
    assert_eq!(
        r.content_range(),
        Some(format!("bytes {from}-{to}/{TOTAL}").as_str())
    );
    let body = r.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &data[from..=to], "middle range differs");

    // The whole object, hashed while streaming.
    let (n, hash) = fetch_hash(&c, "big", "blob", false).await;
    assert_eq!(n, TOTAL);
    assert_eq!(hex::encode(hash), sha256_hex(&data), "full read differs");

    // Survives a restart.
    srv.stop();
    srv.start();
    let c = srv.client();
    let (n, hash) = fetch_hash(&c, "big", "blob", true).await;
    assert_eq!(n, TOTAL);
    assert_eq!(hex::encode(hash), sha256_hex(&data), "read after restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_default_streaming_put_and_checksummed_multipart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 3, None);
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("sdk").send().await.unwrap();

    // ByteStream::from_path: the SDK streams the file as aws-chunked with a CRC32 trailer.
    let len = 24 * MIB + 5;
    let data = content("from-path", len);
    let file = tmp.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let out = c
        .put_object()
        .bucket("sdk")
        .key("streamed")
        .body(ByteStream::from_path(&file).await.unwrap())
        .send()
        .await
        .expect("streamed put");
    let crc = b64(&crc32(&data).to_be_bytes());
    assert_eq!(
        out.e_tag(),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    assert_eq!(out.checksum_crc32(), Some(crc.as_str()), "default CRC32");
    // GET with checksum mode: the SDK validates the whole body against the CRC32.
    let (n, hash) = fetch_hash(&c, "sdk", "streamed", true).await;
    assert_eq!(n, len);
    assert_eq!(hex::encode(hash), sha256_hex(&data));
    let h = c
        .head_object()
        .bucket("sdk")
        .key("streamed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc32(), Some(crc.as_str()));

    // Multipart with CRC32 part checksums (composite): the SDK computes each part's
    // checksum, the completion lists them, the object's checksum is the CRC32 of the
    // concatenated part checksums, suffixed "-N".
    let id = c
        .create_multipart_upload()
        .bucket("sdk")
        .key("composite")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .checksum_type(ChecksumType::Composite)
        .send()
        .await
        .expect("create (CRC32, composite)")
        .upload_id()
        .unwrap()
        .to_string();
    let pieces: Vec<&[u8]> = data.chunks(10 * MIB).collect();
    let mut completed = Vec::new();
    let mut raw_sums = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let out = c
            .upload_part()
            .bucket("sdk")
            .key("composite")
            .upload_id(&id)
            .part_number(i as i32 + 1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(p.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("part {}: {e:?}", i + 1));
        let sum = out.checksum_crc32().expect("part CRC32").to_string();
        assert_eq!(sum, b64(&crc32(p).to_be_bytes()), "part {} CRC32", i + 1);
        raw_sums.extend_from_slice(&crc32(p).to_be_bytes());
        completed.push(
            CompletedPart::builder()
                .part_number(i as i32 + 1)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(sum)
                .build(),
        );
    }
    let done = c
        .complete_multipart_upload()
        .bucket("sdk")
        .key("composite")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .expect("complete with checksums");
    let composite = format!("{}-{}", b64(&crc32(&raw_sums).to_be_bytes()), pieces.len());
    assert_eq!(done.e_tag(), Some(multipart_etag(&pieces).as_str()));
    assert_eq!(done.checksum_crc32(), Some(composite.as_str()));
    let h = c
        .head_object()
        .bucket("sdk")
        .key("composite")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc32(), Some(composite.as_str()));
    assert_eq!(h.checksum_type(), Some(&ChecksumType::Composite));
    let (n, hash) = fetch_hash(&c, "sdk", "composite", true).await;
    assert_eq!(n, len);
    assert_eq!(hex::encode(hash), sha256_hex(&data));
}
