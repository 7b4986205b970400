//! `cybs3 bench mount`: a vault mounted with the real `cybs3 mount`, measured against
//! the local disk and against the CLI's own S3 client moving the same bytes, for a plain
//! and an encrypted vault.
//!
//! The bench starts everything it needs in one scratch directory (under `--dir`): a
//! `CYBS3_HOME` with its own local server on a free port (`cybs3 vaults local`), an
//! encrypted vault and a plain one on its bucket, the mountpoints (mounted by this binary
//! run as `cybs3 mount DIR --vault NAME`), and the local reference directory. All of it is
//! unmounted, stopped and removed at the end, also after an error.
//!
//! Per vault: a sequential write of one large file through the mount (write + close; the
//! close uploads), then read back cold (remounted, page cache dropped); 4 KiB reads at
//! random offsets of it; and create, `stat`, `ls -l` and unlink of many 1 KiB files in one
//! directory. The references: the same on the local disk, and the vault's own upload and
//! download of the same bytes (no FUSE in between).
//!
//! When rclone is installed (with `fusermount`), the same measures run on `rclone mount`
//! of the plain vault's server and bucket, and of an rclone crypt remote over it for the
//! encrypted vault (see [`crate::rclone`]); each cybs3 mount row also gives its ratio to
//! rclone's same row. rclone's writes are timed until its upload has landed in S3, as the
//! cybs3 mount's close uploads; its small-file creates are timed to close, upload pending
//! (so labelled), and how long the upload took after them is its own row.
//!
//! (Just over 800 lines: the per-vault rows share one `Bench` and its mount helpers; the
//! learned-prefetch rows already live in `mount/learned.rs`, the rclone ones in
//! `mount/rclone_mount.rs`; the small-file rows are the next to move.)

mod learned;
mod rclone_mount;

use crate::machine::{drop_caches, loadavg, settle_disk};
use crate::rclone::{self, Rclone};
use crate::report::{named, print, row, timed_row, Row};
use crate::timing::{median, parallel, Timing};
use crate::Cli;
use anyhow::{bail, ensure, Context, Result};
use fixtures::{LocalVault, Mounted};
use rand::{Rng, RngCore};
use rclone_mount::{fusermount, wait_uploaded, RcloneMount};
use serde_json::json;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::config::Config;
use vault::vault::Vault;

const MIB: usize = 1 << 20;
const SMALL: usize = 1024;
const RANDOM: usize = 4096;
/// Cold reads of the large file by `vault cat` and by the mount, each.
const READ_ROUNDS: usize = 3;
/// The roadmap's targets for the mount.
const READ_RATIO_TARGET: f64 = 0.8;
const CREATE_RATE_TARGET: f64 = 1000.0;
const LS_SECONDS_TARGET: f64 = 1.0;

#[derive(clap::Args, Debug)]
pub struct MountBenchArgs {
    /// Directory for the scratch server, mountpoints and local reference files (on the
    /// disk you want to measure); default: the system temporary directory
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Size of the large file, MiB
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    size_mib: u64,
    /// Number of small (1 KiB) files, all in one directory
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    small_files: u64,
    /// Processes' worth of threads creating the small files at once, as mdtest runs
    /// ranks (the mount serves that many requests in parallel)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=256))]
    writers: u64,
    /// Number of 4 KiB reads at random offsets of the large file
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    random_reads: u64,
    /// Photos (1-3 MiB) browsed in order, with and without the learned prefetch (0 here
    /// or in --tree-files: no learned-prefetch rows)
    #[arg(long, default_value_t = 200)]
    photos: u64,
    /// Pause after each photo, milliseconds (a viewer showing it)
    #[arg(long, default_value_t = 10)]
    think_ms: u64,
    /// Files (1-16 KiB, in 20 directories) of the source tree built twice, with and
    /// without the learned prefetch (0 here or in --photos: no learned-prefetch rows)
    #[arg(long, default_value_t = 1000)]
    tree_files: u64,
    /// The mount's `--cache-ttl`, seconds; the metadata phases wait it out first
    #[arg(long, default_value_t = 1.0)]
    cache_ttl: f64,
    /// Only the plain vault
    #[arg(long, conflicts_with = "encrypted")]
    plain: bool,
    /// Only the encrypted vault
    #[arg(long)]
    encrypted: bool,
    /// No progress lines on stderr
    #[arg(long)]
    quiet: bool,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

/// The scratch world, in a new directory under `base`: a local server on a free port in
/// its own `CYBS3_HOME` (the fixture the end-to-end tests use) with the encrypted vault
/// `encrypted` (`cybs3 vaults local`), and the plain vault `plain` on the same bucket and
/// key, each under its own prefix. Dropping it stops the server and removes the directory.
fn scratch(base: &Path) -> Result<LocalVault> {
    let exe = std::env::current_exe()?;
    let local = LocalVault::start(&exe, base, "cybs3-bench-mount-", &["--name", "encrypted"])?;
    // Everything in-process (config, identities, the vault clients) goes by this home, as
    // every child does. Set before any thread of ours exists.
    std::env::set_var("CYBS3_HOME", &local.home);
    let mut config = Config::load()?;
    let enc = config
        .vaults
        .get_mut("encrypted")
        .context("vaults local made no vault")?;
    enc.prefix = "encrypted/".into();
    let plain = vault::config::VaultConfig {
        encrypted: false,
        prefix: "plain/".into(),
        ..enc.clone()
    };
    config.vaults.insert("plain".into(), plain);
    config.save()?;
    Ok(local)
}

/// What the targets are judged on, per vault kind.
#[derive(Default, Clone, serde::Serialize)]
struct Targets {
    kind: &'static str,
    read_ratio: f64,
    create_rate: f64,
    ls_seconds: f64,
}

pub fn run(args: MountBenchArgs, cli: &dyn Cli) -> Result<()> {
    if !(args.cache_ttl.is_finite() && args.cache_ttl >= 0.0) {
        bail!("--cache-ttl must be a number of seconds");
    }
    let kinds: Vec<&'static str> = match (args.plain, args.encrypted) {
        (true, _) => vec!["plain"],
        (_, true) => vec!["encrypted"],
        _ => vec!["plain", "encrypted"],
    };
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let load_before = loadavg();
    let scratch = scratch(&base)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let say = |what: &str| {
        if !args.quiet && !args.json {
            eprintln!("bench mount: {what}");
        }
    };
    // rclone is the outside reference when it can mount; without it its rows are left out,
    // and the report says why. Its objects go below `rclone/` in the scratch server's
    // bucket, which goes with the server.
    let rclone_version = rclone::version();
    let rclone_note = match (&rclone_version, fusermount()) {
        (None, _) => Some("rclone is not installed: no rclone mount rows to compare with"),
        (_, false) => Some("fusermount is not installed: no rclone mount rows to compare with"),
        _ => None,
    };
    let remotes = if rclone_note.is_none() {
        let config = Config::load()?;
        let plain = config.vaults.get("plain").context("no plain vault")?;
        Some(rclone::remotes(plain, "rclone/", scratch.root())?)
    } else {
        None
    };
    let bench = Bench::new(&args, scratch.root())?;
    let mut rows = Vec::new();
    say(&format!(
        "local disk, {} MiB and {} files",
        args.size_mib, args.small_files
    ));
    let disk = bench.disk(&mut rows)?;
    let mut targets = Vec::new();
    for kind in kinds {
        let vault = {
            let _rt = rt.enter();
            cli.open_vault(Some(kind))?
        };
        let mine = bench.vault(&scratch, &rt, &vault, kind, &disk, &mut rows, &say)?;
        if let Some(remotes) = &remotes {
            let r = &remotes[usize::from(kind == "encrypted")];
            let theirs = bench.rclone(r, &mut rows, &say)?;
            let name = if kind == "encrypted" {
                "rclone crypt mount"
            } else {
                "rclone mount"
            };
            // Each of the cybs3 mount's rows against rclone's same one.
            for (m, t) in mine.rows.iter().zip(theirs) {
                rows[*m].also_ratio = Some(rows[*m].value / rows[t].value);
                rows[*m].also_reference = Some(name);
            }
        }
        targets.push(mine.targets);
    }
    let endpoint = scratch.endpoint();
    drop(scratch);
    let head = json!({
        "bench": "mount",
        "endpoint": endpoint,
        "size_mib": args.size_mib,
        "small_files": args.small_files,
        "random_reads": args.random_reads,
        "cache_ttl": args.cache_ttl,
        "rclone": if rclone_note.is_none() { rclone_version } else { None },
        "cold_cache": if bench.drop_caches { "remount + drop_caches" } else { "remount only (drop_caches not writable)" },
        "targets": {
            "read_ratio_min": READ_RATIO_TARGET,
            "create_files_per_s_min": CREATE_RATE_TARGET,
            "ls_seconds_max": LS_SECONDS_TARGET,
            "measured": targets,
        },
        "load_before": load_before,
        "load_after": loadavg(),
    });
    print(head.clone(), &rows, args.json);
    if !args.json {
        let verdict = |ok: bool| if ok { "met" } else { "missed" };
        for t in &targets {
            println!(
                "{}: mount read {:.0} % of the faster direct GET (target >= {:.0} %: {}); create {:.0} files/s (target >= {CREATE_RATE_TARGET:.0}: {}); cold ls -l of {} files {:.2} s (target < {LS_SECONDS_TARGET:.0} s: {})",
                t.kind,
                t.read_ratio * 100.0,
                READ_RATIO_TARGET * 100.0,
                verdict(t.read_ratio >= READ_RATIO_TARGET),
                t.create_rate,
                verdict(t.create_rate >= CREATE_RATE_TARGET),
                args.small_files,
                t.ls_seconds,
                verdict(t.ls_seconds < LS_SECONDS_TARGET),
            );
        }
        if let Some(note) = rclone_note {
            println!("{note}");
        }
        println!(
            "load average: {} before, {} after",
            head["load_before"], head["load_after"]
        );
    }
    Ok(())
}

/// The local disk's large-file numbers the S3 references are compared with.
struct Disk {
    write: f64,
    read: f64,
}

struct Bench<'a> {
    args: &'a MountBenchArgs,
    root: PathBuf,
    size: u64,
    block: Vec<u8>,
    ttl: Duration,
    /// Whether /proc/sys/vm/drop_caches could be written (root).
    drop_caches: bool,
}

impl<'a> Bench<'a> {
    fn new(args: &'a MountBenchArgs, root: &Path) -> Result<Bench<'a>> {
        let mut block = vec![0u8; MIB];
        rand::rng().fill_bytes(&mut block);
        let drop_caches = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/vm/drop_caches")
            .is_ok();
        Ok(Bench {
            args,
            root: root.to_path_buf(),
            size: args.size_mib * MIB as u64,
            block,
            ttl: Duration::from_secs_f64(args.cache_ttl),
            drop_caches,
        })
    }

    /// Makes the next read cold: dirty pages written, clean ones dropped (when root).
    fn cold(&self) -> Result<()> {
        if self.drop_caches {
            drop_caches().context("cannot write /proc/sys/vm/drop_caches")?;
        } else {
            settle_disk();
        }
        // Under a VM with free page reporting, memory freed just now costs a host fault per
        // page when used again; let it go cold first (see bench sync's `settle`).
        if self.size >= 256 << 20 {
            std::thread::sleep(Duration::from_secs(3));
        }
        Ok(())
    }

    /// Waits out the attribute, entry and listing caches (ours and the kernel's).
    fn expire(&self) {
        std::thread::sleep(self.ttl + Duration::from_millis(300));
    }

    fn disk(&self, rows: &mut Vec<Row>) -> Result<Disk> {
        let dir = self.root.join("local");
        std::fs::create_dir_all(&dir)?;
        let big = dir.join("big");
        let label = format!("{} MiB", self.args.size_mib);
        self.cold()?;
        let t = Instant::now();
        let mut f = File::create(&big)?;
        self.write_big(&mut f)?;
        f.sync_all()?;
        drop(f);
        let write = self.mbs(t.elapsed());
        rows.push(row(
            &format!("disk write+fsync, {label} (ref)"),
            write,
            "MB/s",
            None,
        ));
        self.cold()?;
        let t = Instant::now();
        self.read_big(&mut File::open(&big)?)?;
        let read = self.mbs(t.elapsed());
        rows.push(row(
            &format!("disk read, {label}, cold (ref)"),
            read,
            "MB/s",
            None,
        ));
        self.cold()?;
        let random = self.random_reads(&big)?;
        rows.push(named(
            timed_row("disk 4 KiB random read, cold (ref)", &random),
            None,
        ));
        self.small_files(&dir.join("small"), "disk", Whose::Disk, rows)?;
        // The big file stays: it is what the vault uploads as the S3 PUT reference.
        Ok(Disk { write, read })
    }

    #[allow(clippy::too_many_arguments)]
    fn vault(
        &self,
        scratch: &LocalVault,
        rt: &tokio::runtime::Runtime,
        vault: &Vault,
        kind: &'static str,
        disk: &Disk,
        rows: &mut Vec<Row>,
        say: &dyn Fn(&str),
    ) -> Result<Measured> {
        let label = format!("{} MiB, {kind}", self.args.size_mib);
        let local = self.root.join("local/big");

        say(&format!("{kind}: vault upload (S3 PUT), {label}"));
        self.cold()?;
        let t = Instant::now();
        let attrs = vault::vault::UploadAttrs::of_file(&std::fs::metadata(&local)?);
        rt.block_on(vault.upload(&local, "direct-big", &attrs, Arc::new(|_| {})))?;
        let put = self.mbs(t.elapsed());
        rows.push(row(
            &format!("vault upload (S3 PUT), {label} (ref)"),
            put,
            "MB/s",
            Some((put / disk.write, "disk write+fsync")),
        ));
        rt.block_on(vault.delete("direct-big"))?;

        say(&format!("{kind}: mount write, {label}"));
        let mnt = self.mount(scratch, kind)?;
        let big = mnt.dir.join("big");
        self.cold()?;
        let t = Instant::now();
        let mut f = File::create(&big)?;
        self.write_big(&mut f)?;
        let written = t.elapsed();
        drop(f);
        let took = t.elapsed();
        let write = self.mbs(took);
        rows.push(row(
            &format!("mount write+close, {label}"),
            write,
            "MB/s",
            Some((write / put, "vault upload")),
        ));
        let write_row = rows.len() - 1;
        rows.push(row(
            &format!("  of which close (upload), {kind}"),
            (took - written).as_secs_f64(),
            "s",
            None,
        ));

        say(&format!("{kind}: vault download (S3 GET), {label}"));
        let into = self.root.join("download");
        self.cold()?;
        let t = Instant::now();
        let n = rt.block_on(vault.download("big", &into, Arc::new(|_| {})))?;
        let get = self.mbs(t.elapsed());
        ensure!(n == self.size, "vault download: {n} of {} bytes", self.size);
        std::fs::remove_file(&into)?;
        rows.push(row(
            &format!("vault download (S3 GET), {label} (ref)"),
            get,
            "MB/s",
            Some((get / disk.read, "disk read")),
        ));
        // One GET stream and the mount, cold, taking turns: load that drifts during the
        // run weighs on both, and the medians are compared.
        say(&format!(
            "{kind}: vault cat and mount read, cold, {label}, {READ_ROUNDS} rounds"
        ));
        mnt.unmount()?;
        let mnt = self.mount(scratch, kind)?;
        let big = mnt.dir.join("big");
        let (mut cats, mut reads) = (Vec::new(), Vec::new());
        for _ in 0..READ_ROUNDS {
            self.cold()?;
            let t = Instant::now();
            let n = rt.block_on(vault.cat("big", &mut std::io::sink()))?;
            cats.push(self.mbs(t.elapsed()));
            ensure!(n == self.size, "vault cat: {n} of {} bytes", self.size);
            self.cold()?;
            let t = Instant::now();
            self.read_big(&mut File::open(&big)?)?;
            reads.push(self.mbs(t.elapsed()));
        }
        let (cat, read) = (median(cats), median(reads));
        rows.push(row(
            &format!("vault cat (one GET stream), {label}, median (ref)"),
            cat,
            "MB/s",
            Some((cat / get, "vault download")),
        ));
        // The mount is judged against the faster of the two direct reads.
        let (direct, direct_name) = if cat > get {
            (cat, "vault cat")
        } else {
            (get, "vault download")
        };
        rows.push(row(
            &format!("mount read, cold, {label}, median"),
            read,
            "MB/s",
            Some((read / direct, direct_name)),
        ));
        let read_row = rows.len() - 1;

        // Learning must not slow random reads: the same reads through a mount with
        // `--prefetch off`, each kind of mount twice, in the order learn, off, off, learn,
        // so that neither is always the first after a remount.
        say(&format!(
            "{kind}: mount 4 KiB random reads, prefetch learn and off"
        ));
        mnt.unmount()?;
        let (mut random, mut random_off) = (Timing::default(), Timing::default());
        for learn in [true, false, false, true] {
            let m = match learn {
                true => self.mount(scratch, kind)?,
                false => self.mount_with(scratch, kind, &["--prefetch", "off"])?,
            };
            self.cold()?;
            let t = self.random_reads(&m.dir.join("big"))?;
            m.unmount()?;
            match learn {
                true => random.add(t),
                false => random_off.add(t),
            }
        }
        rows.push(named(
            timed_row(&format!("mount 4 KiB random read, cold, {kind}"), &random),
            None,
        ));
        let random_row = rows.len() - 1;
        rows.push(named(
            timed_row(
                &format!("mount 4 KiB random read, cold, {kind}, prefetch off"),
                &random_off,
            ),
            None,
        ));
        rows[random_row].ratio = Some(random.rate() / random_off.rate());
        rows[random_row].reference = Some("prefetch off");
        let mnt = self.mount(scratch, kind)?;
        let big = mnt.dir.join("big");
        std::fs::remove_file(&big)?;

        say(&format!(
            "{kind}: mount, {} small files",
            self.args.small_files
        ));
        let small = self.small_files(&mnt.dir.join("small"), kind, Whose::Cybs3, rows)?;
        mnt.unmount()?;
        if self.args.photos > 0 && self.args.tree_files > 0 {
            self.learned(scratch, rt, vault, kind, rows, say)?;
        }
        let [create, stat, ls, unlink] = small.rows;
        Ok(Measured {
            targets: Targets {
                kind,
                read_ratio: read / direct,
                create_rate: small.create_rate,
                ls_seconds: small.ls_seconds,
            },
            rows: [write_row, read_row, random_row, create, stat, ls, unlink],
        })
    }

    /// What [`Bench::vault`] measures through the cybs3 mount, through `rclone mount` of
    /// `r`: the rows' indices, in the order of [`Measured::rows`].
    fn rclone(&self, r: &Rclone, rows: &mut Vec<Row>, say: &dyn Fn(&str)) -> Result<[usize; 7]> {
        let kind = r.kind;
        let label = format!("{} MiB, {kind}", self.args.size_mib);
        let remote = r.remote("mount");
        let slug = kind.replace(' ', "-");
        let mount = || {
            RcloneMount::new(
                r,
                &remote,
                &self.root.join(format!("mnt-{slug}")),
                &self.root.join(format!("cache-{slug}")),
                self.args.cache_ttl,
            )
        };

        say(&format!("{kind}: rclone mount write, {label}"));
        let mnt = mount()?;
        self.cold()?;
        let t = Instant::now();
        let mut f = File::create(mnt.dir.join("big"))?;
        self.write_big(&mut f)?;
        drop(f);
        let closed = t.elapsed();
        wait_uploaded(r, &format!("{remote}/big"), 1, self.size)?;
        let took = t.elapsed();
        let write = self.mbs(took);
        rows.push(row(
            &format!("rclone mount write+close+upload, {label} (ref)"),
            write,
            "MB/s",
            None,
        ));
        let write_row = rows.len() - 1;
        rows.push(row(
            &format!("  of which after close (upload), {kind}"),
            (took - closed).as_secs_f64(),
            "s",
            None,
        ));

        say(&format!(
            "{kind}: rclone mount read, cold, {label}, {READ_ROUNDS} rounds"
        ));
        mnt.unmount()?;
        let mnt = mount()?;
        let big = mnt.dir.join("big");
        let mut reads = Vec::new();
        for _ in 0..READ_ROUNDS {
            self.cold()?;
            let t = Instant::now();
            self.read_big(&mut File::open(&big)?)?;
            reads.push(self.mbs(t.elapsed()));
        }
        rows.push(row(
            &format!("rclone mount read, cold, {label}, median (ref)"),
            median(reads),
            "MB/s",
            None,
        ));
        let read_row = rows.len() - 1;

        say(&format!("{kind}: rclone mount 4 KiB random reads"));
        mnt.unmount()?;
        let mnt = mount()?;
        let big = mnt.dir.join("big");
        self.cold()?;
        let random = self.random_reads(&big)?;
        rows.push(named(
            timed_row(
                &format!("rclone mount 4 KiB random read, cold, {kind} (ref)"),
                &random,
            ),
            None,
        ));
        let random_row = rows.len() - 1;
        std::fs::remove_file(&big)?;

        say(&format!(
            "{kind}: rclone mount, {} small files",
            self.args.small_files
        ));
        let small = self.small_files(
            &mnt.dir.join("small"),
            kind,
            Whose::Rclone(r, &format!("{remote}/small")),
            rows,
        )?;
        mnt.unmount()?;
        let [create, stat, ls, unlink] = small.rows;
        Ok([write_row, read_row, random_row, create, stat, ls, unlink])
    }

    /// `cybs3 mount DIR --vault KIND` with the bench's cache TTL, on `DIR` = `mnt-KIND`
    /// under the scratch root (made on first use).
    fn mount(&self, scratch: &LocalVault, kind: &str) -> Result<Mounted> {
        self.mount_with(scratch, kind, &[])
    }

    /// [`Bench::mount`] with `extra` arguments.
    fn mount_with(&self, scratch: &LocalVault, kind: &str, extra: &[&str]) -> Result<Mounted> {
        let dir = self.root.join(format!("mnt-{kind}"));
        std::fs::create_dir_all(&dir)?;
        let ttl = self.args.cache_ttl.to_string();
        let mut args = vec!["--cache-ttl", &ttl];
        args.extend_from_slice(extra);
        Ok(Mounted::new(scratch, &dir, kind, &args)?)
    }

    fn mbs(&self, took: Duration) -> f64 {
        self.size as f64 / took.as_secs_f64() / 1e6
    }

    /// `size` bytes in 1 MiB writes, every block distinct (its number up front).
    fn write_big(&self, f: &mut File) -> Result<()> {
        let mut buf = self.block.clone();
        for n in 0..self.args.size_mib {
            buf[..8].copy_from_slice(&n.to_le_bytes());
            f.write_all(&buf)?;
        }
        Ok(())
    }

    /// Reads the file in 1 MiB reads and checks every block is the one written.
    fn read_big(&self, f: &mut File) -> Result<()> {
        let mut buf = vec![0u8; MIB];
        let mut expected = self.block.clone();
        for n in 0..self.args.size_mib {
            f.read_exact(&mut buf)
                .with_context(|| format!("short read at block {n}"))?;
            expected[..8].copy_from_slice(&n.to_le_bytes());
            ensure!(buf == expected, "block {n} read back with other content");
        }
        ensure!(f.read(&mut buf)? == 0, "the file came back longer");
        Ok(())
    }

    /// `--random-reads` preads of 4 KiB at random 4 KiB-aligned offsets, one at a time.
    fn random_reads(&self, path: &Path) -> Result<Timing> {
        let f = File::open(path)?;
        let blocks = self.size / RANDOM as u64;
        let mut rng = rand::rng();
        let mut buf = vec![0u8; RANDOM];
        let mut latencies = Vec::with_capacity(self.args.random_reads as usize);
        let t = Instant::now();
        for _ in 0..self.args.random_reads {
            let at = rng.random_range(0..blocks) * RANDOM as u64;
            let start = Instant::now();
            f.read_exact_at(&mut buf, at)?;
            latencies.push(start.elapsed());
            let (n, within) = (at / MIB as u64, (at % MIB as u64) as usize);
            let mut want = self.block[within..within + RANDOM].to_vec();
            // The block number's bytes, where this read covers them.
            if within < 8 {
                want[..8 - within].copy_from_slice(&n.to_le_bytes()[within..]);
            }
            ensure!(buf == want, "4 KiB at {at} read back with other content");
        }
        Ok(Timing {
            elapsed: t.elapsed(),
            latencies,
        })
    }

    /// Create (create + write 1 KiB + close) by `--writers` threads, then after the caches
    /// expired `stat` of each, then a cold `ls -l` (readdir + lstat of every entry), then
    /// unlink of each, one at a time; all in one directory. On rclone's mount the files
    /// are in S3 only some time after their close: that wait is a row of its own, and the
    /// next phase starts after it.
    fn small_files(
        &self,
        dir: &Path,
        kind: &str,
        whose: Whose,
        rows: &mut Vec<Row>,
    ) -> Result<Small> {
        let count = self.args.small_files as usize;
        let label = format!("{count} files, {kind}");
        let writers = self.args.writers as usize;
        let mount = matches!(whose, Whose::Cybs3);
        let (reference, pending) = match whose {
            Whose::Cybs3 => ("", ""),
            Whose::Disk => (" (ref)", ""),
            Whose::Rclone(..) => (" (ref)", " (close, upload pending)"),
        };
        std::fs::create_dir_all(dir)?;
        let names: Vec<PathBuf> = (0..count).map(|i| dir.join(format!("f{i:06}"))).collect();
        settle_disk();
        let create = parallel(writers, count, |i| {
            let mut f = File::create(&names[i]).with_context(|| names[i].display().to_string())?;
            f.write_all(&self.block[..SMALL])?;
            Ok(())
        })?;
        let create_rate = create.rate();
        rows.push(Row {
            unit: "files/s",
            ..named(
                timed_row(
                    &format!("create 1 KiB, {writers} writers, {label}{pending}{reference}"),
                    &create,
                ),
                mount.then_some((create_rate / CREATE_RATE_TARGET, "1,000/s target")),
            )
        });
        let create_row = rows.len() - 1;
        if let Whose::Rclone(r, remote) = whose {
            let t = Instant::now();
            wait_uploaded(r, remote, count as u64, (count * SMALL) as u64)?;
            rows.push(row(
                &format!("  upload landed after the creates, {kind}"),
                t.elapsed().as_secs_f64(),
                "s",
                None,
            ));
        }

        self.expire();
        let stat = timed(&names, |p| {
            let md = std::fs::metadata(p)?;
            ensure!(
                md.len() == SMALL as u64,
                "{} is {} bytes",
                p.display(),
                md.len()
            );
            Ok(())
        })?;
        rows.push(named(
            timed_row(&format!("stat after TTL, {label}{reference}"), &stat),
            None,
        ));
        let stat_row = rows.len() - 1;

        self.expire();
        let t = Instant::now();
        let mut listed = 0usize;
        for e in std::fs::read_dir(dir)? {
            let md = std::fs::symlink_metadata(e?.path())?;
            ensure!(
                md.len() == SMALL as u64,
                "a listed file is {} bytes",
                md.len()
            );
            listed += 1;
        }
        let ls_seconds = t.elapsed().as_secs_f64();
        ensure!(listed == count, "ls -l found {listed} of {count} files");
        rows.push(row(
            &format!("ls -l cold, {label}{reference}"),
            ls_seconds,
            "s",
            mount.then_some((ls_seconds / LS_SECONDS_TARGET, "1 s target")),
        ));
        let ls_row = rows.len() - 1;

        let unlink = timed(&names, |p| Ok(std::fs::remove_file(p)?))?;
        rows.push(named(
            timed_row(&format!("unlink, {label}{reference}"), &unlink),
            None,
        ));
        let unlink_row = rows.len() - 1;
        std::fs::remove_dir(dir)?;
        Ok(Small {
            create_rate,
            ls_seconds,
            rows: [create_row, stat_row, ls_row, unlink_row],
        })
    }
}

/// Whose small files [`Bench::small_files`] measures: the local disk's, the cybs3 mount's
/// (judged on the targets), or rclone's mount's (with the remote path they land below).
#[derive(Clone, Copy)]
enum Whose<'a> {
    Disk,
    Cybs3,
    Rclone(&'a Rclone, &'a str),
}

struct Small {
    create_rate: f64,
    ls_seconds: f64,
    /// Indices of the create, stat, `ls -l` and unlink rows.
    rows: [usize; 4],
}

/// What one vault's mount measured: its targets, and the indices of its write, read,
/// random read, create, stat, `ls -l` and unlink rows (rclone's are in the same order).
struct Measured {
    targets: Targets,
    rows: [usize; 7],
}

/// `op` on each path in turn, each timed.
fn timed(paths: &[PathBuf], op: impl Fn(&Path) -> Result<()>) -> Result<Timing> {
    let mut latencies = Vec::with_capacity(paths.len());
    let t = Instant::now();
    for p in paths {
        let start = Instant::now();
        op(p).with_context(|| format!("{}", p.display()))?;
        latencies.push(start.elapsed());
    }
    Ok(Timing {
        elapsed: t.elapsed(),
        latencies,
    })
}
