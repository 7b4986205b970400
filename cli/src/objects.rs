//! `cybs3 ls|cp|cat|rm`: objects of a vault by their plaintext paths.

use crate::location::{open_vault, Location};
use crate::progress::bytes_bar;
use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vault::attrs::Kind;
use vault::vault::{Entry, Lock, UploadAttrs, Vault};

/// Files in flight for `cp -r` and `rm -r`.
const JOBS: usize = 8;

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// `VAULT:dir` (`:` alone is the active vault's root)
    #[arg(default_value = ":")]
    pub path: String,
    /// Every file below, not just the directory's entries
    #[arg(short, long)]
    pub recursive: bool,
    /// The versions of one file, newest first, with their object lock
    /// (read one with `cybs3 cp VAULT:path@VERSION DEST`)
    #[arg(long, conflicts_with = "recursive")]
    pub versions: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct CpArgs {
    /// Local path or VAULT:path
    pub src: String,
    /// Local path or VAULT:path; a trailing `/` (or an existing directory) means "into"
    pub dst: String,
    /// Copy a directory tree
    #[arg(short, long)]
    pub recursive: bool,
    /// One JSON object per copied file
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// VAULT:path
    pub path: String,
    /// Remove a directory and everything below it
    #[arg(short, long)]
    pub recursive: bool,
}

fn vault_path(s: &str) -> Result<(Option<String>, String)> {
    match Location::parse(s) {
        Location::Vault(v, p) => Ok((v, p)),
        Location::Local(_) => {
            bail!("{s:?} is not a vault path; write VAULT:path, or :path for the active vault")
        }
    }
}

pub fn ls(args: LsArgs) -> Result<()> {
    let (name, path) = vault_path(&args.path)?;
    let vault = open_vault(name.as_deref())?;
    if args.versions {
        return ls_versions(&vault, &path, args.json);
    }
    let entries = crate::block_on(vault.list(&path, args.recursive))?;
    if args.json {
        let v: Vec<_> = entries
            .iter()
            .map(|e| {
                json!({
                    "path": e.path,
                    "size": e.size,
                    "dir": e.is_dir,
                    "stored": e.stored.map(humantime),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for e in &entries {
        if e.is_dir {
            println!("{:>12}  {:<19}  {}/", "DIR", "", e.path);
        } else {
            println!(
                "{:>12}  {:<19}  {}",
                e.size,
                e.stored.map(humantime).unwrap_or_default(),
                e.path
            );
        }
    }
    Ok(())
}

fn ls_versions(vault: &Vault, path: &str, json: bool) -> Result<()> {
    let versions = crate::block_on(vault.versions(path))?;
    if versions.is_empty() {
        return Err(crate::block_on(vault.missing(path)).into());
    }
    let lock_text = |l: &Lock| {
        let mut parts = Vec::new();
        if let Some((mode, until)) = &l.retention {
            parts.push(format!(
                "{mode} until {}",
                until.map(humantime).unwrap_or_default()
            ));
        }
        if l.legal_hold {
            parts.push("legal hold".to_string());
        }
        parts.join(", ")
    };
    if json {
        let v: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.id,
                    "size": v.size,
                    "stored": v.stored.map(humantime),
                    "latest": v.latest,
                    "deleted": v.deleted,
                    "retention": v.lock.retention.as_ref().map(|(mode, until)| json!({
                        "mode": mode,
                        "until": until.map(humantime),
                    })),
                    "legal_hold": v.lock.legal_hold,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    for v in &versions {
        let what = match (v.deleted, v.latest) {
            (true, _) => "deleted",
            (false, true) => "latest",
            (false, false) => "",
        };
        println!(
            "{:<32}  {:>12}  {:<19}  {:<7}  {}",
            v.id,
            v.size,
            v.stored.map(humantime).unwrap_or_default(),
            what,
            lock_text(&v.lock)
        );
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
fn humantime(t: std::time::SystemTime) -> String {
    let dt = aws_sdk_s3::primitives::DateTime::from(t);
    dt.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
        .map(|s| {
            s.replace('T', " ")
                .trim_end_matches('Z')
                .chars()
                .take(19)
                .collect()
        })
        .unwrap_or_default()
}

pub fn cat(path: &str) -> Result<()> {
    let (name, path) = vault_path(path)?;
    let vault = open_vault(name.as_deref())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
    crate::block_on(vault.cat(&path, &mut out))?;
    Ok(())
}

pub fn rm(args: RmArgs) -> Result<()> {
    let (name, path) = vault_path(&args.path)?;
    let vault = open_vault(name.as_deref())?;
    crate::block_on(async {
        if vault.stat(&path).await?.is_some() {
            return Ok(vault.delete(&path).await?);
        }
        let below = vault.list(&path, true).await?;
        if below.is_empty() {
            return Err(vault.missing(&path).await.into());
        }
        if !args.recursive {
            bail!(
                "{}:{path} is a directory; use -r to remove it and everything below",
                vault.name
            );
        }
        stream::iter(below)
            .map(|e| {
                let vault = &vault;
                async move { vault.delete(&e.path).await }
            })
            .buffer_unordered(JOBS)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    })
}

/// One file to copy: source and destination.
enum Job {
    Up(PathBuf, String),
    /// A vault path (and a version of it, `VAULT:path@VERSION`) to a local file.
    Down(String, Option<String>, PathBuf),
}

pub fn cp(args: CpArgs) -> Result<bool> {
    let (src, dst) = (Location::parse(&args.src), Location::parse(&args.dst));
    let into = args.dst.ends_with('/') || args.dst.ends_with(':');
    let (vault, jobs) = match (&src, &dst) {
        (Location::Local(from), Location::Vault(name, to)) => {
            let vault = open_vault(name.as_deref())?;
            let jobs = if from.is_dir() {
                if !args.recursive {
                    bail!("{} is a directory; use -r to copy it", from.display());
                }
                local_files(from)?
                    .into_iter()
                    .map(|(rel, p)| Job::Up(p, join(to, &rel)))
                    .collect()
            } else {
                let base = file_name(from)?;
                let to = if into || to.is_empty() { join(to, &base) } else { to.clone() };
                vec![Job::Up(from.clone(), to)]
            };
            (vault, jobs)
        }
        (Location::Vault(name, from), Location::Local(to)) => {
            let vault = open_vault(name.as_deref())?;
            let jobs = crate::block_on(remote_jobs(&vault, from, to, into, args.recursive))?;
            (vault, jobs)
        }
        _ => bail!("cp copies between a local path and a vault path (VAULT:path); for local copies use cp(1)"),
    };
    let ok = crate::block_on(run_jobs(&vault, jobs, args.json, args.quiet));
    Ok(ok)
}

async fn remote_jobs(
    vault: &Vault,
    from: &str,
    to: &Path,
    into: bool,
    recursive: bool,
) -> Result<Vec<Job>> {
    let one = |path: &str, version: Option<&str>| {
        let base = path.rsplit('/').next().unwrap_or(path).to_string();
        let to = if into || to.is_dir() {
            to.join(base)
        } else {
            to.to_path_buf()
        };
        vec![Job::Down(path.to_string(), version.map(str::to_string), to)]
    };
    if vault.stat(from).await?.is_some() {
        return Ok(one(from, None));
    }
    // `path@VERSION`, unless a file is named so (checked above).
    if let Some((path, version)) = from.rsplit_once('@').filter(|(_, v)| !v.contains('/')) {
        if vault
            .versions(path)
            .await?
            .iter()
            .any(|v| v.id == version && !v.deleted)
        {
            return Ok(one(path, Some(version)));
        }
    }
    let below: Vec<Entry> = vault.list(from, true).await?;
    if below.is_empty() {
        return Err(vault.missing(from).await.into());
    }
    if !recursive {
        bail!("{}:{from} is a directory; use -r to copy it", vault.name);
    }
    let root = vault::vault::clean_path(from)?;
    Ok(below
        .into_iter()
        .map(|e| {
            let rel = e
                .path
                .strip_prefix(&root)
                .unwrap_or(&e.path)
                .trim_start_matches('/')
                .to_string();
            let local = to.join(&rel);
            Job::Down(e.path, None, local)
        })
        .collect())
}

/// Run the copies, `JOBS` at a time; each failure is reported and the rest go on.
async fn run_jobs(vault: &Vault, jobs: Vec<Job>, json: bool, quiet: bool) -> bool {
    let total = jobs.len();
    let results: Vec<bool> = stream::iter(jobs)
        .map(|job| async move {
            let (action, shown, r) = match &job {
                Job::Up(local, path) => {
                    let md = std::fs::metadata(local).ok();
                    let kind = Kind::of(md.as_ref().map(|m| m.mode()));
                    if kind.is_special() {
                        eprintln!("cybs3: {}", not_copied(&local.display().to_string(), kind));
                        return true;
                    }
                    let size = md.map_or(0, |m| m.len());
                    let (bar, progress) = bytes_bar(
                        size,
                        quiet || json || total > 1,
                        &format!("{} → {}:{path}", local.display(), vault.name),
                    );
                    // The local file's own mode, mtime and owner go with it.
                    let r = match std::fs::metadata(local) {
                        Ok(md) => vault
                            .upload(local, path, &UploadAttrs::of_file(&md), progress)
                            .await
                            .map(|u| u.bytes)
                            .map_err(anyhow::Error::from),
                        Err(e) => Err(anyhow::Error::from(e)
                            .context(format!("cannot read {}", local.display()))),
                    };
                    bar.finish_and_clear();
                    ("upload", format!("{}:{path}", vault.name), r)
                }
                Job::Down(path, version, local) => {
                    let meta = vault.stat(path).await.ok().flatten();
                    let kind = Kind::of(meta.as_ref().and_then(|m| m.mode));
                    if kind.is_special() {
                        let shown = format!("{}:{path}", vault.name);
                        eprintln!("cybs3: {}", not_copied(&shown, kind));
                        return true;
                    }
                    let size = meta.map_or(0, |m| m.size);
                    let (bar, progress) = bytes_bar(
                        size,
                        quiet || json || total > 1,
                        &format!("{}:{path} → {}", vault.name, local.display()),
                    );
                    let r = vault
                        .download_version(path, version.as_deref(), local, progress)
                        .await
                        .map_err(Into::into);
                    bar.finish_and_clear();
                    ("download", local.display().to_string(), r)
                }
            };
            match r {
                Ok(bytes) => {
                    if json {
                        println!(
                            "{}",
                            json!({"action": action, "path": shown, "bytes": bytes})
                        );
                    } else if !quiet {
                        println!("{action}: {shown} ({bytes} bytes)");
                    }
                    true
                }
                Err(e) => {
                    let msg = crate::one_line(&e);
                    if json {
                        println!(
                            "{}",
                            json!({"action": "error", "path": shown, "error": msg})
                        );
                    }
                    eprintln!("cybs3: {msg}");
                    false
                }
            }
        })
        .buffer_unordered(JOBS)
        .collect()
        .await;
    results.iter().all(|ok| *ok)
}

fn join(dir: &str, rel: &str) -> String {
    let dir = dir.trim_end_matches('/');
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

/// The warning for a FIFO, device or socket `cp` leaves out: it copies contents, and
/// these have none (`cybs3 sync` carries them, as rsync's `--specials` does).
fn not_copied(shown: &str, kind: Kind) -> String {
    let what = match kind {
        Kind::Fifo => "a FIFO",
        Kind::CharDevice => "a character device",
        Kind::BlockDevice => "a block device",
        Kind::Socket => "a socket",
        Kind::File | Kind::Dir | Kind::Symlink => "not a regular file",
    };
    format!("skipping {shown}: {what} (cp copies contents; `cybs3 sync` carries special files)")
}

fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| anyhow!("{} has no file name", p.display()))
}

/// Regular files below `root` with their `/`-separated relative paths, sorted; symlinks
/// are not followed or copied, special files are left out with a warning.
pub fn local_files(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let e = e?;
            let t = e.file_type()?;
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if !t.is_file() && !t.is_symlink() {
                let kind = Kind::of(Some(e.metadata()?.mode()));
                eprintln!("cybs3: {}", not_copied(&p.display().to_string(), kind));
            } else if t.is_file() {
                let rel = p.strip_prefix(root).expect("below root");
                let rel = rel.to_str().ok_or_else(|| {
                    anyhow!("{} is not valid UTF-8; S3 keys must be", p.display())
                })?;
                out.push((rel.to_string(), p));
            }
        }
    }
    out.sort();
    Ok(out)
}
