//! The local trees the bench syncs: large and small files written as a download writes
//! them, and compared byte for byte after their round trip.

use super::{parallel, JOBS, MIB, SMALL_PER_DIR, SMALL_SIZES};
use anyhow::{ensure, Context, Result};
use rand::Rng;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files generated under `root`: relative paths and sizes.
pub(super) struct Tree {
    pub(super) root: PathBuf,
    pub(super) files: Vec<(String, u64)>,
    pub(super) bytes: u64,
}

/// `count` files of `total` bytes together (the last takes the remainder), written
/// and fsynced in parallel, one thread each, as a download writes them. Returns the tree
/// and the time the writes took.
pub(super) fn write_large(
    root: &Path,
    total: u64,
    count: u64,
    block: &[u8],
) -> Result<(Tree, Duration)> {
    std::fs::create_dir_all(root)?;
    let each = total / count;
    let files: Vec<(String, u64)> = (0..count)
        .map(|i| {
            let size = if i == count - 1 {
                total - each * i
            } else {
                each
            };
            (format!("f{i:03}"), size)
        })
        .collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        let writers: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, (name, size))| {
                let path = root.join(name);
                s.spawn(move || -> Result<()> {
                    let mut f = File::create(&path)?;
                    let mut buf = block.to_vec();
                    let mut left = *size;
                    let mut n = 0u64;
                    while left > 0 {
                        // Every block distinct (file and block number up front), so no
                        // layer could take a shortcut on repeated content.
                        buf[..16].copy_from_slice(&((i as u128) << 64 | n as u128).to_le_bytes());
                        let len = left.min(buf.len() as u64) as usize;
                        f.write_all(&buf[..len])?;
                        left -= len as u64;
                        n += 1;
                    }
                    f.sync_all()?;
                    Ok(())
                })
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|h| h.join().expect("large file writer"))
    })?;
    let took = t.elapsed();
    Ok((tree(root, files), took))
}

/// `count` files of random sizes with random content, 100 per directory, each created,
/// written and fsynced by one of `JOBS` threads, as a download of them does. Returns the
/// tree and the time the files took (the directories are made first, untimed).
pub(super) fn write_small(root: &Path, count: usize, block: &[u8]) -> Result<(Tree, Duration)> {
    let mut rng = rand::rng();
    let files: Vec<(String, u64)> = (0..count)
        .map(|i| {
            let name = format!("d{:03}/f{i:05}", i / SMALL_PER_DIR);
            (name, rng.random_range(SMALL_SIZES) as u64)
        })
        .collect();
    let offsets: Vec<usize> = files
        .iter()
        .map(|(_, size)| rng.random_range(0..=block.len() - *size as usize))
        .collect();
    for d in 0..count.div_ceil(SMALL_PER_DIR) {
        std::fs::create_dir_all(root.join(format!("d{d:03}")))?;
    }
    let timing = parallel(JOBS, count, |i| {
        let (name, size) = &files[i];
        let mut f = File::create(root.join(name))?;
        f.write_all(&block[offsets[i]..offsets[i] + *size as usize])?;
        f.sync_all()?;
        Ok(())
    })?;
    Ok((tree(root, files), timing.elapsed))
}

fn tree(root: &Path, files: Vec<(String, u64)>) -> Tree {
    Tree {
        root: root.to_path_buf(),
        bytes: files.iter().map(|f| f.1).sum(),
        files,
    }
}

/// Every file of `files` under `b` has the bytes it has under `a`.
pub(super) fn same_files(a: &Path, b: &Path, files: &[(String, u64)]) -> Result<()> {
    let (mut x, mut y) = (vec![0u8; MIB], vec![0u8; MIB]);
    for (rel, size) in files {
        let open = |root: &Path| {
            let p = root.join(rel);
            File::open(&p).with_context(|| format!("cannot read {}", p.display()))
        };
        let (mut fa, mut fb) = (open(a)?, open(b)?);
        let mut left = *size as usize;
        while left > 0 {
            let n = left.min(MIB);
            fa.read_exact(&mut x[..n])?;
            fb.read_exact(&mut y[..n])
                .with_context(|| format!("{rel} came back short"))?;
            ensure!(x[..n] == y[..n], "{rel} came back with other content");
            left -= n;
        }
        ensure!(fb.read(&mut y)? == 0, "{rel} came back longer");
    }
    Ok(())
}
