//! Where the bench's own objects go, and their removal at the end: the bench directory in
//! both vaults, the scratch space, unfinished multipart uploads and resume journals.

use super::Side;
use anyhow::{bail, Context, Result};
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use serde_json::Value;
use vault::config::{config_dir, VaultConfig};

/// Where the bench's own objects go in the encrypted vault's bucket (the raw reference,
/// the temporary plain vault): under `.cybs3/`, which encrypted vaults leave out of their
/// listings, so a `cybs3 ls` meanwhile shows no names it cannot decrypt.
pub(super) fn scratch(cfg: &VaultConfig, dir: &str) -> String {
    format!("{}.cybs3/{dir}/", cfg.prefix)
}

/// Removes the bench objects from both vaults and the scratch space, unfinished multipart
/// uploads below them, and journals an interrupted upload left in our config.
pub(super) async fn clean_up(enc: &Side, plain: &Side, dir: &str) -> Result<()> {
    let raw = scratch(&enc.cfg, dir);
    let mut failed = Vec::new();
    for (client, bucket, prefix) in [
        (&enc.client, &enc.cfg.bucket, &enc.keys),
        (&plain.client, &plain.cfg.bucket, &plain.keys),
        (&enc.client, &enc.cfg.bucket, &raw),
    ] {
        if let Err(e) = delete_prefix(client, bucket, prefix).await {
            failed.push(format!("{bucket}/{prefix}: {e:#}"));
        }
    }
    remove_journals(&enc.cfg.bucket, &[&enc.keys, &raw]);
    if !failed.is_empty() {
        bail!("cannot remove the bench objects: {}", failed.join("; "));
    }
    Ok(())
}

async fn delete_prefix(client: &Client, bucket: &str, prefix: &str) -> Result<()> {
    // The bench starts at most `JOBS` multipart uploads at once, so one page finds them.
    let uploads = client
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .context("ListMultipartUploads")?;
    for u in uploads.uploads() {
        if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
            client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .context("AbortMultipartUpload")?;
        }
    }
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .max_keys(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let ids = page
            .context("listing")?
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            continue;
        }
        let out = client
            .delete_objects()
            .bucket(bucket)
            .delete(
                Delete::builder()
                    .set_objects(Some(ids))
                    .quiet(true)
                    .build()?,
            )
            .send()
            .await
            .context("DeleteObjects")?;
        if let Some(e) = out.errors().first() {
            bail!(
                "DeleteObjects: {} {}",
                e.key().unwrap_or("?"),
                e.message().unwrap_or("failed")
            );
        }
    }
    Ok(())
}

/// A large upload that a Ctrl-C interrupted leaves its resume journal in the config dir;
/// those of bench objects can never be resumed, so they go (best effort: a journal left
/// over only costs one ListParts if the same upload is ever retried).
fn remove_journals(bucket: &str, prefixes: &[&str]) {
    let Ok(entries) = std::fs::read_dir(config_dir().join("transfers")) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        let Some(journal) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let ours = journal["bucket"] == bucket
            && journal["key"]
                .as_str()
                .is_some_and(|k| prefixes.iter().any(|p| k.starts_with(p)));
        if ours {
            let _ = std::fs::remove_file(&path);
        }
    }
}
