//! GetObjectAttributes: what HEAD tells about a version, chosen attribute by attribute,
//! and a multipart object's parts with their sizes and checksums, in pages.

use crate::ctx::Cybs3;
use crate::objects::Described;
use crate::versioning;
use s3s::dto::*;
use s3s::{s3_error, S3Result};

/// Parts per page when the request names no MaxParts (AWS's default).
const DEFAULT_MAX_PARTS: i32 = 1000;

pub(crate) async fn get(
    s: &Cybs3,
    input: GetObjectAttributesInput,
) -> S3Result<GetObjectAttributesOutput> {
    let wanted = |name: &str| input.object_attributes.iter().any(|a| a.as_str() == name);
    if let Some(bad) = input.object_attributes.iter().find(|a| {
        ![
            ObjectAttributes::CHECKSUM,
            ObjectAttributes::ETAG,
            ObjectAttributes::OBJECT_PARTS,
            ObjectAttributes::OBJECT_SIZE,
            ObjectAttributes::STORAGE_CLASS,
        ]
        .contains(&a.as_str())
    }) {
        return Err(s3_error!(
            InvalidArgument,
            "Invalid attribute name specified: {}",
            bad.as_str()
        ));
    }
    let max_parts = match input.max_parts {
        None => DEFAULT_MAX_PARTS,
        Some(n) if n >= 0 => n.min(DEFAULT_MAX_PARTS),
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "Argument max-parts must be an integer between 0 and 2147483647"
            ))
        }
    };
    let marker = input.part_number_marker.unwrap_or(0).max(0);
    let versioning::Found {
        object: v,
        versioning: vstate,
        ..
    } = versioning::head(s, input.bucket, input.key, input.version_id).await?;
    let d = Described::new(&v, vstate, true);
    // Only an object assembled from uploaded parts has parts to show; its ETag says so.
    let multipart = v.meta.etag.contains('-');
    let object_parts = (wanted(ObjectAttributes::OBJECT_PARTS) && multipart).then(|| {
        let after: Vec<&engine::PartEntry> = v
            .parts
            .iter()
            .filter(|p| i64::from(p.number) > i64::from(marker))
            .collect();
        let page: Vec<ObjectPart> = after
            .iter()
            .take(max_parts as usize)
            .map(|p| {
                let i = v
                    .parts
                    .iter()
                    .position(|q| std::ptr::eq(q, *p))
                    .unwrap_or(0);
                let checksum = |name: &str| {
                    p.checksums
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, value)| value.clone())
                };
                ObjectPart {
                    part_number: Some(p.number as i32),
                    size: Some(engine::part_plain_size(&v, i) as i64),
                    checksum_crc32: checksum("crc32"),
                    checksum_crc32c: checksum("crc32c"),
                    checksum_crc64nvme: checksum("crc64nvme"),
                    checksum_sha1: checksum("sha1"),
                    checksum_sha256: checksum("sha256"),
                }
            })
            .collect();
        let truncated = after.len() > page.len();
        GetObjectAttributesParts {
            is_truncated: Some(truncated),
            max_parts: Some(max_parts),
            next_part_number_marker: page.last().and_then(|p| p.part_number),
            part_number_marker: Some(marker),
            total_parts_count: Some(v.parts.len() as i32),
            parts: Some(page),
        }
    });
    let has_checksum = [
        &d.checksums.checksum_crc32,
        &d.checksums.checksum_crc32c,
        &d.checksums.checksum_crc64nvme,
        &d.checksums.checksum_sha1,
        &d.checksums.checksum_sha256,
    ]
    .iter()
    .any(|c| c.is_some());
    Ok(GetObjectAttributesOutput {
        e_tag: d.e_tag.filter(|_| wanted(ObjectAttributes::ETAG)),
        last_modified: d.last_modified,
        version_id: d.version_id,
        object_size: wanted(ObjectAttributes::OBJECT_SIZE).then_some(v.size as i64),
        storage_class: wanted(ObjectAttributes::STORAGE_CLASS).then(|| {
            d.storage_class
                .unwrap_or_else(|| StorageClass::from_static(StorageClass::STANDARD))
        }),
        checksum: (wanted(ObjectAttributes::CHECKSUM) && has_checksum).then_some(d.checksums),
        object_parts,
        ..Default::default()
    })
}
