//! The learned prefetch's rows (`cybs3 mount --prefetch`): two realistic read workloads,
//! each run on the same files through a fresh mount with `--prefetch off` and one with
//! `--prefetch learn` (the default), in the same run, cold (remounted, page cache
//! dropped), with the ratio learn / off:
//!
//! - a photo library browsed in order: `--photos` files of 1–3 MiB in one directory,
//!   opened and read whole one after another in name order, `--think-ms` between them
//!   (a viewer showing each); two rows: the whole browse's rate (think time included,
//!   so at most 2× when fetching a photo takes as long as looking at it), and what the
//!   viewer waits per photo, from its open to its last byte;
//! - a source tree built twice: `--tree-files` files of 1–16 KiB in 20 directories, read
//!   whole one directory after another, each directory's files in one fixed order that is
//!   not their names' (a build's), twice, the listing TTL waited out between the passes.
//!
//! The files are uploaded with the vault's own client (no mount), once per vault kind.

use super::Bench;
use crate::report::{row, Row};
use anyhow::{ensure, Result};
use fixtures::LocalVault;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::vault::Vault;

/// Directories of the source tree.
const TREE_DIRS: usize = 20;

/// The two mounts compared, in the order they run.
const MODES: [&str; 2] = ["off", "learn"];

impl Bench<'_> {
    /// Uploads the workloads' files to `vault`, then runs each with and without the
    /// learned prefetch; its rows go to `rows`.
    pub(super) fn learned(
        &self,
        scratch: &LocalVault,
        rt: &tokio::runtime::Runtime,
        vault: &Vault,
        kind: &str,
        rows: &mut Vec<Row>,
        say: &dyn Fn(&str),
    ) -> Result<()> {
        let photos = self.args.photos as usize;
        let tree = self.args.tree_files as usize;
        say(&format!(
            "{kind}: uploading {photos} photos and a tree of {tree} files"
        ));
        let (photo_names, photo_bytes) =
            self.upload(rt, vault, "photos", photos, 1 << 20, 3 << 20, 1)?;
        let (tree_names, _) = self.upload(rt, vault, "src", tree, 1 << 10, 16 << 10, TREE_DIRS)?;
        // A build's order: each directory in turn, its files shuffled once.
        let mut build = tree_names.clone();
        let mut rng = rand::rng();
        for dir in build.chunk_by_mut(|a, b| parent(a) == parent(b)) {
            dir.shuffle(&mut rng);
        }
        let think = Duration::from_millis(self.args.think_ms);

        let mut browse = Vec::new();
        // What the viewer waits for each photo: from its open to its last byte.
        let mut waits = Vec::new();
        let mut passes = Vec::new();
        for mode in MODES {
            say(&format!(
                "{kind}: browse {photos} photos in order, prefetch {mode}"
            ));
            let mnt = self.mount_with(scratch, kind, &["--prefetch", mode])?;
            self.cold()?;
            let t = Instant::now();
            let mut waited = Duration::ZERO;
            for name in &photo_names {
                let opened = Instant::now();
                read_whole(&mnt.dir.join(name))?;
                waited += opened.elapsed();
                std::thread::sleep(think);
            }
            browse.push(photo_bytes as f64 / t.elapsed().as_secs_f64() / 1e6);
            waits.push(waited.as_secs_f64() * 1e3 / photos.max(1) as f64);
            mnt.unmount()?;

            say(&format!(
                "{kind}: build a tree of {tree} files twice, prefetch {mode}"
            ));
            let mnt = self.mount_with(scratch, kind, &["--prefetch", mode])?;
            let mut took = Vec::new();
            for _ in 0..2 {
                self.cold()?;
                self.expire();
                let t = Instant::now();
                for name in &build {
                    read_whole(&mnt.dir.join(name))?;
                }
                took.push(t.elapsed().as_secs_f64());
            }
            passes.push(took);
            mnt.unmount()?;
        }
        let think_label = format!("{} ms think", self.args.think_ms);
        for (mode, mbs) in MODES.iter().zip(&browse) {
            let vs = (*mode == "learn").then_some((mbs / browse[0], "prefetch off"));
            rows.push(row(
                &format!("browse {photos} photos 1-3 MiB in order, {think_label}, {kind}, prefetch {mode}"),
                *mbs,
                "MB/s",
                vs,
            ));
        }
        for (mode, ms) in MODES.iter().zip(&waits) {
            // Milliseconds: the ratio is off's wait over learn's, a speedup.
            let vs = (*mode == "learn").then_some((waits[0] / ms, "prefetch off"));
            rows.push(row(
                &format!("browse {photos} photos: wait per photo, open to last byte, {kind}, prefetch {mode}"),
                *ms,
                "ms",
                vs,
            ));
        }
        for pass in 0..2 {
            for (mode, took) in MODES.iter().zip(&passes) {
                // Seconds: the ratio is off's time over learn's, a speedup as for MB/s.
                let vs =
                    (*mode == "learn").then_some((passes[0][pass] / took[pass], "prefetch off"));
                rows.push(row(
                    &format!(
                        "build tree of {tree} files, pass {}, {kind}, prefetch {mode}",
                        pass + 1
                    ),
                    took[pass],
                    "s",
                    vs,
                ));
            }
        }
        for name in photo_names.iter().chain(&tree_names) {
            rt.block_on(vault.delete(name))?;
        }
        Ok(())
    }

    /// `count` files of `min..=max` random bytes under `top`, spread over `dirs`
    /// directories, uploaded; their paths, in name order, and their total size.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &self,
        rt: &tokio::runtime::Runtime,
        vault: &Vault,
        top: &str,
        count: usize,
        min: usize,
        max: usize,
        dirs: usize,
    ) -> Result<(Vec<String>, u64)> {
        let local = self.root.join("learned-upload");
        let mut rng = rand::rng();
        let mut buf = vec![0u8; max];
        let mut names = Vec::with_capacity(count);
        let mut total = 0;
        for i in 0..count {
            let name = match dirs {
                1 => format!("{top}/IMG_{i:04}.jpg"),
                _ => format!("{top}/d{:02}/f{i:05}.c", i % dirs),
            };
            let len = rng.random_range(min..=max);
            total += len as u64;
            rng.fill_bytes(&mut buf[..len]);
            std::fs::write(&local, &buf[..len])?;
            let attrs = vault::vault::UploadAttrs::of_file(&std::fs::metadata(&local)?);
            rt.block_on(vault.upload(&local, &name, &attrs, Arc::new(|_| {})))?;
            names.push(name);
        }
        std::fs::remove_file(&local)?;
        names.sort();
        Ok((names, total))
    }
}

/// A path's directory.
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Reads a file whole in 128 KiB reads, as an application does; its size.
fn read_whole(path: &Path) -> Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 128 << 10];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    ensure!(n > 0, "{} read back empty", path.display());
    Ok(n)
}
