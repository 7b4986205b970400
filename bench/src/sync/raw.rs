//! The raw reference: the same files through the vault crate's transfer engine over plain
//! S3 (no encryption, no sync logic), as many in flight as the syncs move.

use super::{blocking, Tree, JOBS};
use anyhow::{ensure, Context, Result};
use futures::{StreamExt, TryStreamExt};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::download_file::DownloadFile;
use vault::transfer::{FileSource, Transfers};

/// Each file of `tree` uploaded to `prefix` + its path, `JOBS` at a time, each on its own
/// task as `cybs3 sync` runs them.
pub(super) async fn raw_put(
    transfers: &Transfers,
    bucket: &str,
    prefix: &str,
    tree: &Tree,
) -> Result<Duration> {
    let t = Instant::now();
    let uploads = tree.files.iter().map(|(rel, _)| {
        let (transfers, bucket) = (transfers.clone(), bucket.to_string());
        let (key, path) = (format!("{prefix}{rel}"), tree.root.join(rel));
        async move {
            tokio::spawn(async move {
                let source = FileSource::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                transfers
                    .upload(
                        &bucket,
                        &key,
                        Arc::new(source),
                        &[],
                        None,
                        None,
                        Arc::new(|_| {}),
                    )
                    .await?;
                anyhow::Ok(())
            })
            .await?
        }
    });
    futures::stream::iter(uploads)
        .buffer_unordered(JOBS)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(t.elapsed())
}

/// Each file `raw_put` stored, downloaded into `into`, `JOBS` at a time, and made durable
/// as `cybs3 sync` makes its downloads: together, with one `syncfs`, before the clock
/// stops.
pub(super) async fn raw_get(
    transfers: &Transfers,
    bucket: &str,
    prefix: &str,
    tree: &Tree,
    into: &Path,
) -> Result<Duration> {
    let t = Instant::now();
    let downloads = tree.files.iter().map(|(rel, size)| {
        let (transfers, bucket, size) = (transfers.clone(), bucket.to_string(), *size);
        let (key, path) = (format!("{prefix}{rel}"), into.join(rel));
        async move {
            tokio::spawn(async move {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                // Written the way `cybs3 sync` writes downloads.
                let file = Arc::new(DownloadFile::create(&path, size)?);
                let info = transfers
                    .download(&bucket, &key, 0, None, file.clone(), Arc::new(|_| {}))
                    .await?;
                ensure!(info.size == size, "{key}: {} of {size} bytes", info.size);
                anyhow::Ok(())
            })
            .await?
        }
    });
    futures::stream::iter(downloads)
        .buffer_unordered(JOBS)
        .try_collect::<Vec<()>>()
        .await?;
    let into = into.to_path_buf();
    blocking(move || {
        let dir = std::fs::File::open(&into)?;
        // SAFETY: syncfs on a descriptor we own, no memory passed.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    })
    .await?;
    Ok(t.elapsed())
}
