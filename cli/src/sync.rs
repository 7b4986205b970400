//! `cybs3 sync SRC DST`: make a vault prefix match a local directory, or a local directory
//! match a vault prefix, transferring only what differs (CONTRACT.md, "Objects and sync";
//! `aws s3 sync` and rclone habits).
//!
//! Files are compared by size from the two listings first; only when sizes are equal is
//! the object's metadata fetched (one HEAD) for its mtime or, with `--checksum`, its content
//! hash. So a first sync of many files makes no HEAD calls at all.
//!
//! Symbolic links are synced as links, never followed: stored as the mount stores them (an
//! object holding the target, marked by its mode), and made again as links. Downloads
//! never write through a link: links are made after every file, and a file whose
//! destination lies under a link is refused.
//!
//! FIFOs, devices and sockets are carried as rsync's `--specials --devices` do: stored
//! as the mount stores them (an empty object whose mode and `rdev` say what it is), and
//! made again with mknod(2). Only root may make devices, so a download by another user
//! skips them with a warning; it never writes one as an empty regular file.

mod filters;
mod local;
mod report;

use filters::Filters;
use local::{make_link, make_node, outside_links, walk, LocalFile, Node};
use report::Report;

use crate::location::{open_vault, Location};
use crate::progress::bytes_bar;
use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use indicatif::{HumanBytes, ProgressBar};
use serde_json::json;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use vault::attrs::Kind;
use vault::transfer::Progress;
use vault::vault::{clean_path, Landing, UploadAttrs, Vault};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Filters: each GLOB is matched against the file's path relative to \
    the sync root (e.g. `photos/2024/a.jpg`), and `*` also matches `/`, as in `aws s3 sync`: \
    `*.tmp` matches at any depth and `cache/**` (or `cache/*`) everything under cache/. \
    Everything is included by default; the filters apply in command-line order and the last \
    one that matches decides. Excluded files are neither transferred nor deleted.\n\n\
    Symbolic links are synced as links (never followed), and FIFOs, devices and sockets as \
    what they are, as `cybs3 mount` stores them; downloads make devices only when run as root \
    and skip them with a warning otherwise. Empty directories are not synced (S3 has no \
    directories)."
)]
pub struct SyncArgs {
    /// Source: a local directory, or VAULT:prefix (`:prefix` for the active vault)
    src: String,
    /// Destination: a vault prefix when SRC is local, a local directory when SRC is a vault
    dst: String,
    /// Delete files at DST that are absent at SRC (skipped when any transfer failed)
    #[arg(long)]
    delete: bool,
    /// Report what would be transferred or deleted, and change nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    filters: Filters,
    /// Compare content hashes instead of modification times (reads every same-size file)
    #[arg(long)]
    checksum: bool,
    /// Files transferred at once (large files also send their parts in parallel)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// One JSON object per file and a final summary object, on stdout
    #[arg(long)]
    json: bool,
    /// No progress bar and no per-file lines: only errors (--json records still print)
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// What a listing says about one vault file.
#[derive(Clone, Copy, Debug)]
struct RemoteFile {
    size: u64,
    link: bool,
    node: Option<Node>,
}

pub fn run(args: SyncArgs) -> Result<bool> {
    let (dir, local, vault_name, prefix) = match (Location::parse(&args.src), Location::parse(&args.dst)) {
        (Location::Local(l), Location::Vault(v, p)) => (Direction::Up, l, v, p),
        (Location::Vault(v, p), Location::Local(l)) => (Direction::Down, l, v, p),
        (Location::Local(_), Location::Local(_)) => bail!(
            "sync needs a vault on one side: {} and {} are both local (write VAULT:prefix, or :prefix for the active vault)",
            args.src,
            args.dst
        ),
        (Location::Vault(..), Location::Vault(..)) => bail!(
            "sync runs between a local directory and a vault: {} and {} are both vault paths",
            args.src,
            args.dst
        ),
    };
    let prefix = clean_path(&prefix)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let vault = Arc::new(open_vault(vault_name.as_deref())?);
    rt.block_on(sync(args, dir, local, vault, prefix))
}

async fn sync(
    args: SyncArgs,
    dir: Direction,
    root: PathBuf,
    vault: Arc<Vault>,
    prefix: String,
) -> Result<bool> {
    let started = Instant::now();
    let mut report = Report::new(&args);
    match fs::metadata(&root) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => bail!(
            "{} is not a directory (sync takes directories; `cybs3 cp` copies one file)",
            root.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == Direction::Down => {}
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", root.display()))),
    }
    let locals = walk(&root, &args.filters, dir == Direction::Up, &mut report);
    let remotes = list_vault(&vault, &prefix, &args.filters).await?;
    let vault_path = |rel: &str| match prefix.as_str() {
        "" => rel.to_string(),
        p => format!("{p}/{rel}"),
    };

    // Transfers (and skips), `jobs` files at a time, reported as they finish.
    let (src_names, dst_names): (Vec<&String>, Vec<&String>) = match dir {
        Direction::Up => (locals.keys().collect(), remotes.keys().collect()),
        Direction::Down => (remotes.keys().collect(), locals.keys().collect()),
    };
    let (progress, bar) = (report.progress.clone(), report.bar.clone());
    let job = |rel: &String| Job {
        dir,
        root: root.clone(),
        local_path: root.join(rel.as_str()),
        vault_path: vault_path(rel),
        local: locals.get(rel.as_str()).cloned(),
        remote: remotes.get(rel.as_str()).copied(),
        checksum: args.checksum,
        dry_run: args.dry_run,
        progress: progress.clone(),
        bar: bar.clone(),
        landing: None,
    };
    // Links after files, so no download goes through a link this sync made.
    let (links, mut files): (Vec<Job>, Vec<Job>) =
        src_names.iter().map(|rel| job(rel)).partition(Job::is_link);
    // Downloaded files land (made durable, renamed into place) together, and all of them
    // before the links are made.
    let (landing, landed) = Landing::new();
    for job in &mut files {
        job.landing = Some(landing.clone());
    }
    drop(landing);
    let mut landed = Some(landed);
    for phase in [files, links] {
        let checks = phase.into_iter().map(|job| {
            let vault = vault.clone();
            async move {
                let rel = job.rel().to_string();
                let outcome = match tokio::spawn(job.run(vault)).await {
                    Ok(r) => r,
                    Err(e) => Err(anyhow!("transfer task failed: {e}")),
                };
                (rel, outcome)
            }
        });
        let mut results = futures::stream::iter(checks).buffer_unordered(args.jobs as usize);
        while let Some((rel, outcome)) = results.next().await {
            match outcome {
                Ok(Outcome::Skipped(size)) => report.skipped(&rel, size),
                Ok(Outcome::Refused(why)) => report.warn(&format!("skipping {rel}: {why}")),
                Ok(Outcome::Transferred(t)) => report.transferred(dir, &rel, t),
                Err(e) => report.error(&rel, &e),
            }
        }
        if let Some(landed) = landed.take() {
            for (path, e) in landed.wait().await {
                let rel = path.strip_prefix(&root).unwrap_or(&path);
                let rel = rel.to_string_lossy();
                let size = remotes.get(rel.as_ref()).map_or(0, |r| r.size);
                report.unlanded(&rel, size, &anyhow!(e));
            }
        }
    }

    if args.delete {
        if report.counts.failed > 0 {
            report.warn(&format!(
                "not deleting: {} transfers failed",
                report.counts.failed
            ));
            report.counts.delete_skipped = true;
        } else {
            let extra = dst_names.into_iter().filter(|rel| match dir {
                Direction::Up => !locals.contains_key(rel.as_str()),
                Direction::Down => !remotes.contains_key(rel.as_str()),
            });
            let deletes = extra.map(|rel| {
                let (vault, root, path) = (vault.clone(), root.clone(), vault_path(rel));
                let size = match dir {
                    Direction::Up => remotes.get(rel.as_str()).map_or(0, |r| r.size),
                    Direction::Down => locals.get(rel.as_str()).map_or(0, |l| l.size),
                };
                let dry_run = args.dry_run;
                async move {
                    let r = match (dry_run, dir) {
                        (true, _) => Ok(()),
                        (false, Direction::Up) => vault.delete(&path).await.map_err(Into::into),
                        (false, Direction::Down) => {
                            let p = root.join(rel.as_str());
                            fs::remove_file(&p)
                                .with_context(|| format!("cannot delete {}", p.display()))
                        }
                    };
                    (rel, size, r)
                }
            });
            let mut done = futures::stream::iter(deletes).buffer_unordered(args.jobs as usize);
            while let Some((rel, size, r)) = done.next().await {
                match r {
                    Ok(()) => report.deleted(rel, size),
                    Err(e) => report.error(rel, &e),
                }
            }
        }
    }
    report.summary(started.elapsed().as_secs_f64());
    Ok(report.counts.failed == 0)
}

/// The vault's files below `prefix` by relative path, with their sizes, filtered.
async fn list_vault(
    vault: &Vault,
    prefix: &str,
    filters: &Filters,
) -> Result<BTreeMap<String, RemoteFile>> {
    let mut out = BTreeMap::new();
    for e in vault.list(prefix, true).await? {
        if e.is_dir {
            continue;
        }
        let rel = if prefix.is_empty() {
            e.path.as_str()
        } else {
            match e
                .path
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(r) => r,
                None => bail!(
                    "{}:{prefix} is a file; sync takes directories (`cybs3 cp` copies one file)",
                    vault.name
                ),
            }
        };
        if filters.allows(rel) {
            // Without listed attributes (other servers), a link shows as a file.
            let mode = e.meta.as_ref().and_then(|m| m.mode);
            let link = Kind::of(mode) == Kind::Symlink;
            let node = e.meta.as_ref().and_then(|m| {
                let mode = m.mode?;
                let rdev = m.rdev.unwrap_or(0);
                Kind::of(Some(mode))
                    .is_special()
                    .then_some(Node { mode, rdev })
            });
            out.insert(
                rel.to_string(),
                RemoteFile {
                    size: e.size,
                    link,
                    node,
                },
            );
        }
    }
    Ok(out)
}

/// One source file to bring over, unless the destination already has it.
struct Job {
    dir: Direction,
    root: PathBuf,
    local_path: PathBuf,
    vault_path: String,
    local: Option<LocalFile>,
    remote: Option<RemoteFile>,
    checksum: bool,
    dry_run: bool,
    progress: Progress,
    bar: ProgressBar,
    /// Where a downloaded file lands (a regular file's job only).
    landing: Option<Landing>,
}

enum Outcome {
    /// The destination already matches (the file's size).
    Skipped(u64),
    Transferred(Transfer),
    /// Not made here, for this reason (a device, by a user who may not make one).
    Refused(String),
}

struct Transfer {
    bytes: u64,
    /// (resumed, total) parts of an upload.
    parts: Option<(u32, u32)>,
}

impl Job {
    /// Whether the source is a symbolic link.
    fn is_link(&self) -> bool {
        match self.dir {
            Direction::Up => self.local.as_ref().is_some_and(|l| l.link.is_some()),
            Direction::Down => self.remote.is_some_and(|r| r.link),
        }
    }

    /// The path relative to the sync root.
    fn rel(&self) -> &str {
        let rel = self
            .local_path
            .strip_prefix(&self.root)
            .unwrap_or(&self.local_path);
        rel.to_str().unwrap_or_default()
    }

    async fn run(self, vault: Arc<Vault>) -> Result<Outcome> {
        // Listed paths are clean (`Vault::list` skips names with `..` or empty segments),
        // but a link on the way could still lead out of the destination.
        if self.dir == Direction::Down {
            outside_links(&self.root, &self.local_path)?;
        }
        if self.unchanged(&vault).await? {
            return Ok(Outcome::Skipped(self.local.map_or(0, |l| l.size)));
        }
        let size = match self.dir {
            Direction::Up => self.local.as_ref().map_or(0, |l| l.size),
            Direction::Down => self.remote.map_or(0, |r| r.size),
        };
        if self.dry_run {
            return Ok(Outcome::Transferred(Transfer {
                bytes: size,
                parts: None,
            }));
        }
        if let Some(node) = self.source_node() {
            if let Some(why) = self.make_node(&vault, node).await? {
                return Ok(Outcome::Refused(why));
            }
            return Ok(Outcome::Transferred(Transfer {
                bytes: 0,
                parts: None,
            }));
        }
        self.bar.inc_length(size);
        if self.is_link() {
            match self.dir {
                Direction::Up => {
                    let target = self.local.as_ref().and_then(|l| l.link.as_ref());
                    let target = target
                        .map(|t| t.as_os_str().as_encoded_bytes())
                        .unwrap_or_default();
                    let md = fs::symlink_metadata(&self.local_path)
                        .with_context(|| format!("cannot read {}", self.local_path.display()))?;
                    vault
                        .put_symlink(&self.vault_path, target, &UploadAttrs::of_file(&md))
                        .await?;
                }
                Direction::Down => {
                    let target = vault.read_range(&self.vault_path, 0, size).await?;
                    make_link(&self.local_path, &target)?;
                }
            }
            (self.progress)(size);
            return Ok(Outcome::Transferred(Transfer {
                bytes: size,
                parts: None,
            }));
        }
        Ok(Outcome::Transferred(match self.dir {
            Direction::Up => {
                // The local file's own mode, mtime and owner go with it.
                let md = fs::metadata(&self.local_path)
                    .with_context(|| format!("cannot read {}", self.local_path.display()))?;
                let attrs = UploadAttrs::of_file(&md);
                let up = vault
                    .upload(&self.local_path, &self.vault_path, &attrs, self.progress)
                    .await?;
                Transfer {
                    bytes: up.bytes,
                    parts: Some((up.resumed_parts, up.parts)),
                }
            }
            Direction::Down => Transfer {
                bytes: match &self.landing {
                    Some(landing) => {
                        vault
                            .download_landing(
                                &self.vault_path,
                                &self.local_path,
                                self.progress,
                                landing,
                            )
                            .await?
                    }
                    None => {
                        vault
                            .download(&self.vault_path, &self.local_path, self.progress)
                            .await?
                    }
                },
                parts: None,
            },
        }))
    }

    /// The source's FIFO, device or socket, if that is what it is.
    fn source_node(&self) -> Option<Node> {
        match self.dir {
            Direction::Up => self.local.as_ref().and_then(|l| l.node),
            Direction::Down => self.remote.and_then(|r| r.node),
        }
    }

    /// Stores `node` in the vault, or makes it here; `Some(why)` when it may not be made
    /// here (a device, and this user is not root: mknod(2) would refuse it).
    async fn make_node(&self, vault: &Vault, node: Node) -> Result<Option<String>> {
        match self.dir {
            Direction::Up => {
                let md = fs::symlink_metadata(&self.local_path)
                    .with_context(|| format!("cannot read {}", self.local_path.display()))?;
                vault
                    .put_node(&self.vault_path, &UploadAttrs::of_file(&md), node.rdev)
                    .await?;
            }
            Direction::Down => {
                let device = matches!(node.kind(), Kind::CharDevice | Kind::BlockDevice);
                // SAFETY: geteuid cannot fail and touches no memory.
                if device && unsafe { libc::geteuid() } != 0 {
                    return Ok(Some("only root may make devices".to_string()));
                }
                let meta = vault.stat(&self.vault_path).await?;
                let mtime = meta.and_then(|m| m.mtime);
                make_node(&self.local_path, node, mtime)?;
            }
        }
        Ok(None)
    }

    /// Whether both sides hold the same file: equal sizes, then (one HEAD) equal mtimes,
    /// or with `--checksum` equal content hashes (an object without a hash differs). Links
    /// are the same when both are links to the same target; FIFOs, devices and sockets
    /// when both are of the same kind, mode and number.
    async fn unchanged(&self, vault: &Vault) -> Result<bool> {
        let (Some(local), Some(remote)) = (&self.local, self.remote) else {
            return Ok(false);
        };
        if local.size != remote.size || local.link.is_some() != remote.link {
            return Ok(false);
        }
        if local.node.is_some() || remote.node.is_some() {
            return Ok(local.node == remote.node);
        }
        if let Some(target) = &local.link {
            let stored = vault.read_range(&self.vault_path, 0, remote.size).await?;
            return Ok(stored == target.as_os_str().as_encoded_bytes());
        }
        let Some(meta) = vault.stat(&self.vault_path).await? else {
            return Ok(false);
        };
        if meta.size != local.size {
            return Ok(false);
        }
        if !self.checksum {
            return Ok(meta.mtime == Some(local.mtime));
        }
        let Some(stored) = meta.hash else {
            return Ok(false);
        };
        // Hashing reads the whole file: keep it off the async workers' backs.
        let hash = tokio::task::block_in_place(|| vault.hash_file(&self.local_path))?;
        Ok(hash == stored)
    }
}

#[cfg(test)]
mod tests {
    use super::local::is_partial_download;
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SyncArgs,
    }

    fn filters(flags: &[&str]) -> Filters {
        let argv = ["sync", "src", "dst"].iter().chain(flags);
        Cli::try_parse_from(argv).unwrap().args.filters
    }

    #[test]
    fn the_last_matching_filter_decides() {
        let f = filters(&[
            "--exclude",
            "*.tmp",
            "--exclude",
            "cache/**",
            "--include",
            "cache/keep.txt",
        ]);
        assert!(f.allows("a.txt"));
        assert!(!f.allows("a.tmp"));
        assert!(!f.allows("deep/er/a.tmp"), "* spans directories");
        assert!(!f.allows("cache/x"));
        assert!(!f.allows("cache/sub/x"));
        assert!(f.allows("cache/keep.txt"));
        // Order matters: an exclude after the include wins again.
        let f = filters(&["--include", "cache/keep.txt", "--exclude", "cache/**"]);
        assert!(!f.allows("cache/keep.txt"));
        assert!(filters(&[]).allows("anything/at/all"));
    }

    #[test]
    fn bad_globs_and_zero_jobs_are_usage_errors() {
        assert!(Cli::try_parse_from(["sync", "a", "b", "--exclude", "a[b"]).is_err());
        assert!(Cli::try_parse_from(["sync", "a", "b", "--jobs", "0"]).is_err());
    }

    #[test]
    fn partial_downloads_are_recognised() {
        assert!(is_partial_download(".a.txt.cybs3-part"));
        assert!(!is_partial_download("a.txt.cybs3-part"));
        assert!(!is_partial_download(".a.txt"));
    }

    #[test]
    fn local_specials_are_walked_as_nodes_and_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir(&src).unwrap();
        let fifo = Node {
            mode: libc::S_IFIFO | 0o640,
            rdev: 0,
        };
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        make_node(&src.join("p"), fifo, Some(t)).unwrap();
        fs::write(src.join("f"), b"x").unwrap();
        let args = Cli::try_parse_from(["sync", "a", "b", "--quiet"])
            .unwrap()
            .args;
        let walked = walk(&src, &args.filters, true, &mut Report::new(&args));
        assert_eq!(
            walked["p"].node,
            Some(fifo),
            "mode, kind and number from lstat"
        );
        assert_eq!((walked["p"].size, walked["p"].mtime), (0, t));
        assert_eq!(walked["f"].node, None);

        // Made over a regular file in its place, whatever the umask.
        let dst = dir.path().join("dst/p");
        fs::create_dir(dir.path().join("dst")).unwrap();
        fs::write(&dst, b"not a FIFO").unwrap();
        let open = Node {
            mode: libc::S_IFIFO | 0o666,
            rdev: 0,
        };
        make_node(&dst, open, None).unwrap();
        let md = fs::symlink_metadata(&dst).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&md.file_type()));
        assert_eq!(md.mode() & 0o7777, 0o666);
        assert_eq!(
            fs::read_dir(dir.path().join("dst")).unwrap().count(),
            1,
            "no part file left"
        );
    }
}
