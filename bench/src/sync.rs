//! `cybs3 bench sync`: `cybs3 sync` of large and of small files, up and down, with an
//! encrypted and a plain vault, next to references measured in the same run: the vault
//! crate's transfer engine moving the same files over raw S3 (no encryption, no sync
//! logic), the local disk writing them, and, when it is installed, rclone copying them
//! with the plain vault's server and bucket (plain, and through rclone crypt for the
//! encrypted vault), taking turns with the syncs.
//!
//! Each sync is the real command, this binary run as `cybs3 sync SRC DST --quiet --json`,
//! timed from spawn to exit (what a user waits for); its summary must show every file
//! transferred and none failed, and what comes down is compared with what went up.
//!
//! Everything lives under `cybs3-bench-<random>/` in the vaults, beside it under
//! `.cybs3/` in the encrypted vault's bucket (the raw reference, the temporary plain
//! vault), and in one temporary local directory; all removed at the end unless `--keep`,
//! also after an error or Ctrl-C.

mod child;
mod cleanup;
mod files;
mod raw;
mod sides;

use crate::machine::{loadavg, settle_disk};
use crate::rclone::{self, Rclone};
use crate::report::{also, print, row, Row};
use crate::timing::{median, parallel};
use crate::Cli;
use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use child::{rclone_copy, run_sync, Took};
use cleanup::{clean_up, scratch};
use files::{same_files, write_large, write_small, Tree};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use raw::{raw_get, raw_put};
use serde_json::{json, Value};
use sides::{probe, sides, Side};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::config::{write_private, Config, VaultConfig};
use vault::crypto::{FileSecrets, Identity, Opener, Sealer, CHUNK};
use vault::download_file::STAGE;
use vault::keystore;
use vault::transfer::Transfers;
use vault::vault::Vault;

const MIB: usize = 1 << 20;
/// Files in flight at once: `cybs3 sync`'s default `--jobs`, passed explicitly so the
/// raw reference and the syncs move files with the same concurrency.
const JOBS: usize = 8;
/// Small files are 1 to 8 KiB (random sizes): documents, configs, source code.
const SMALL_SIZES: std::ops::RangeInclusive<usize> = 1024..=8192;
const SMALL_PER_DIR: usize = 100;
/// The roadmap's targets: encryption costs under 5 % of large-file throughput, and
/// 10,000 small files sync in under 10 s.
const ENCRYPTION_COST_TARGET: f64 = 0.05;
const SMALL_SECONDS_TARGET: f64 = 10.0;

#[derive(clap::Args, Debug)]
pub struct SyncBenchArgs {
    /// Encrypted vault to sync with; default: the active vault
    #[arg(long, value_name = "NAME")]
    vault: Option<String>,
    /// Plain vault to compare with; default: a temporary one on the encrypted vault's
    /// endpoint, bucket and credentials
    #[arg(long, value_name = "NAME")]
    plain_vault: Option<String>,
    /// Total size of the large files, MiB
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    large_mib: u64,
    /// Number of files the large total is split into
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    large_files: u64,
    /// Number of small files (1 to 8 KiB each, 100 per directory)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    small_files: u64,
    /// Syncs of each kind (up or down, plain or encrypted, and rclone's copies when it is
    /// installed), taking turns, the first of a round last in the next (with the two
    /// vaults alone, an even number lets each go first as often); medians are reported,
    /// and the encryption cost is the median of each round's pair, so load that drifts
    /// during the run weighs on both vaults
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=20))]
    rounds: u64,
    /// Keep the bench files in the vaults and the local source trees (paths printed on stderr)
    #[arg(long)]
    keep: bool,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

/// What moves the trees in [`alternate`]: `cybs3 sync` with one of the vaults, or rclone
/// with one of its remotes.
#[derive(Clone, Copy)]
enum Tool<'a> {
    Cybs3(&'a Side),
    Rclone(&'a Rclone),
}

impl Tool<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Tool::Cybs3(side) => side.kind,
            Tool::Rclone(r) => r.kind,
        }
    }

    /// Where the copy `what` goes, below the bench directory `dir`.
    fn remote(&self, dir: &str, what: &str) -> String {
        match self {
            Tool::Cybs3(side) => side.remote(dir, what),
            Tool::Rclone(r) => r.remote(what),
        }
    }

    /// Moves `tree` from `src` to `dst`: up to the remote when `up`.
    async fn run(&self, src: &str, dst: &str, tree: &Tree, up: bool) -> Result<Took> {
        match self {
            Tool::Cybs3(side) => run_sync(side, src, dst, tree, up).await,
            Tool::Rclone(r) => rclone_copy(r, src, dst).await,
        }
    }
}

pub fn run(args: SyncBenchArgs, cli: &dyn Cli) -> Result<()> {
    if args.large_mib * MIB as u64 / args.large_files == 0 {
        bail!("--large-files must not exceed the bytes of --large-mib");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The S3 clients built while opening the vaults may look for the runtime.
    let _rt = rt.enter();
    let dir = format!(
        "cybs3-bench-{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_lowercase()
    );
    let tmp = tempfile::Builder::new()
        .prefix("cybs3-bench-sync-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let (enc, plain) = sides(&args, cli, &dir, tmp.path())?;
    // rclone is the outside reference when it is installed; without it its rows are left
    // out, and the report says why.
    let rclone_version = rclone::version();
    let rclone = rclone_version
        .is_some()
        .then(|| rclone::remotes(&plain.cfg, &plain.keys, tmp.path()))
        .transpose()?;
    let load_before = loadavg();
    let measured = rt.block_on(async {
        probe(&enc).await?;
        if plain.cfg.endpoint != enc.cfg.endpoint {
            probe(&plain).await?;
        }
        let measured = tokio::select! {
            r = measure(&args, &enc, &plain, rclone.as_ref(), &dir, tmp.path()) => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        };
        let cleaned = if args.keep {
            Ok(())
        } else {
            clean_up(&enc, &plain, &dir).await
        };
        let result = measured?;
        cleaned?;
        anyhow::Ok(result)
    });
    if args.keep {
        // The temporary plain vault is in no config the user has: name its objects.
        eprintln!(
            "kept: {}, s3://{}/{}, s3://{}/{}, local trees in {}",
            enc.remote(&dir, ""),
            plain.cfg.bucket,
            plain.keys,
            enc.cfg.bucket,
            scratch(&enc.cfg, &dir),
            tmp.keep().display()
        );
    }
    let (rows, targets) = measured?;
    let head = json!({
        "bench": "sync",
        "endpoint": enc.cfg.endpoint,
        "vault": enc.vault,
        "plain_vault": args.plain_vault,
        "dir": dir,
        "jobs": JOBS,
        "large_files": args.large_files,
        "large_mib": args.large_mib,
        "small_files": args.small_files,
        "rounds": args.rounds,
        "targets": {
            "encryption_cost_large_up": targets.encryption_cost.map(|c| c.0),
            "encryption_cost_large_down": targets.encryption_cost.map(|c| c.1),
            "encryption_cost_large_rounds": targets.encryption_cost_rounds.as_ref().map(|[up, down]| json!({"up": up, "down": down})),
            "encryption_cost_max": ENCRYPTION_COST_TARGET,
            "small_encrypted_up_seconds": targets.small_seconds.map(|s| s.0),
            "small_encrypted_down_seconds": targets.small_seconds.map(|s| s.1),
            "small_seconds_max": SMALL_SECONDS_TARGET,
            "added_cpu_large_down_s_per_gb": targets.added_cpu,
            "cipher_cpu_s_per_gb": targets.cipher_cpu,
            "least_encryption_cost_large_up": targets.least_cost.map(|c| c.0),
            "least_encryption_cost_large_down": targets.least_cost.map(|c| c.1),
        },
        "rclone": rclone_version,
        "load_before": load_before,
        "load_after": loadavg(),
    });
    print(head.clone(), &rows, args.json);
    if !args.json {
        if rclone_version.is_none() {
            println!("rclone is not installed: no rclone rows to compare with");
        }
        let verdict = |a: f64, b: f64, max: f64| if a < max && b < max { "met" } else { "missed" };
        if let Some((up, down)) = targets.encryption_cost {
            println!(
                "encryption cost (1 - encrypted/plain), large files: up {:.1} %, down {:.1} % (target < {:.0} %: {})",
                up * 100.0,
                down * 100.0,
                ENCRYPTION_COST_TARGET * 100.0,
                verdict(up, down, ENCRYPTION_COST_TARGET)
            );
        }
        if let Some([up, down]) = &targets.encryption_cost_rounds {
            let each = |costs: &[f64]| {
                let each: Vec<_> = costs.iter().map(|c| format!("{:.1}", c * 100.0)).collect();
                each.join(", ")
            };
            println!(
                "  each round's pair (median above): up {} %; down {} %",
                each(up),
                each(down)
            );
        }
        if let Some(added) = targets.added_cpu {
            println!(
                "encrypted large downloads used {added:.2} s more client CPU per GB than plain ones; the cipher alone needs {:.2} s per GB",
                targets.cipher_cpu
            );
        }
        if let Some((up, down)) = targets.least_cost {
            println!(
                "the cipher's CPU on top of what plain syncs kept busy, with every core busy all along, makes the least possible cost here: up {:.1} %, down {:.1} %",
                up * 100.0,
                down * 100.0
            );
        }
        if let Some((up, down)) = targets.small_seconds {
            println!(
                "{} small files, encrypted: up {up:.1} s, down {down:.1} s (target for 10,000: < {SMALL_SECONDS_TARGET:.0} s each: {})",
                args.small_files,
                verdict(up, down, SMALL_SECONDS_TARGET)
            );
        }
        println!(
            "load average: {} before, {} after",
            head["load_before"], head["load_after"]
        );
    }
    Ok(())
}

/// What the roadmap's targets are judged on: 1 - encrypted/plain for large files (up,
/// down; the median of the rounds' pairs), and the small files' encrypted sync wall times
/// (up, down).
#[derive(Default)]
struct Targets {
    encryption_cost: Option<(f64, f64)>,
    /// Each round's cost (up, down), of which `encryption_cost` is the median.
    encryption_cost_rounds: Option<[Vec<f64>; 2]>,
    small_seconds: Option<(f64, f64)>,
    /// Client CPU seconds per GB that encryption adds to a large download, and what the
    /// cipher alone needs on one core.
    added_cpu: Option<f64>,
    cipher_cpu: f64,
    /// The least encryption cost these cores allow large files (up, down; see
    /// [`least_cost`]).
    least_cost: Option<(f64, f64)>,
}

/// The least encryption cost the cores of this machine allow a transfer that took `plain`
/// without encryption and needs `cipher` more CPU seconds with it: even if every core
/// stayed busy all along, the CPU work of both together takes its share of the cores'
/// time. `None` when the system does not say how busy its cores were.
fn least_cost(plain: Took, cipher: f64) -> Option<f64> {
    let cores = std::thread::available_parallelism().ok()?.get() as f64;
    if plain.busy.is_zero() {
        return None;
    }
    let wall = plain.wall.as_secs_f64();
    let least_wall = wall.max((plain.busy.as_secs_f64() + cipher) / cores);
    Some(1.0 - wall / least_wall)
}

async fn measure(
    args: &SyncBenchArgs,
    enc: &Side,
    plain: &Side,
    rclone: Option<&[Rclone; 2]>,
    dir: &str,
    tmp: &Path,
) -> Result<(Vec<Row>, Targets)> {
    let say = |what: &str| {
        if !args.json {
            eprintln!("bench sync: {what}");
        }
    };
    let rclones: &[Rclone] = rclone.map_or(&[], |r| r.as_slice());
    let mut rows = Vec::new();
    let block = {
        let mut b = vec![0u8; MIB];
        rand::rng().fill_bytes(&mut b);
        Arc::new(b)
    };
    let (large_mib, large_files, small_files) =
        (args.large_mib, args.large_files, args.small_files as usize);
    let large_label = format!("{large_mib} MiB in {large_files} files");
    let small_label = format!("{small_files} files");

    say(&format!("writing {large_label} and {small_label} locally"));
    let (large, took) = blocking({
        let (root, block) = (tmp.join("src/large"), block.clone());
        move || write_large(&root, large_mib * MIB as u64, large_files, &block)
    })
    .await?;
    let disk_large = large.bytes as f64 / took.as_secs_f64() / 1e6;
    rows.push(row(
        &format!("disk write+fsync, {large_label} (ref)"),
        disk_large,
        "MB/s",
        None,
    ));
    let (small, took) = blocking({
        let (root, block) = (tmp.join("src/small"), block.clone());
        move || write_small(&root, small_files, &block)
    })
    .await?;
    let disk_small = small_files as f64 / took.as_secs_f64();
    rows.push(row(
        &format!("disk write+fsync, {small_label} (ref)"),
        disk_small,
        "files/s",
        None,
    ));

    let decrypt = blocking(move || decrypt_gbs(&block)).await?;
    rows.push(row(
        "age decrypt as a download does, one core (ref)",
        decrypt,
        "GB/s",
        None,
    ));

    // The raw reference: the same files through the same transfer engine (default part
    // size and parts in flight, as a vault uses it) and the same files in flight.
    let transfers = Transfers::new(enc.client.clone(), tmp.join("journals"));
    let raw = format!("{}raw/", scratch(&enc.cfg, dir));
    let mut targets = Targets {
        cipher_cpu: 1.0 / decrypt,
        ..Targets::default()
    };
    for (tree, what, label, disk) in [
        (&large, "large", &large_label, disk_large),
        (&small, "small", &small_label, disk_small),
    ] {
        // Large files are judged by bytes, small ones by files.
        let unit = if what == "large" { "MB/s" } else { "files/s" };
        let rate = |took: Duration| match what {
            "large" => tree.bytes as f64 / took.as_secs_f64() / 1e6,
            _ => tree.files.len() as f64 / took.as_secs_f64(),
        };
        let prefix = format!("{raw}{what}/");
        say(&format!("raw S3 PUT and GET, {label}"));
        settle(tree).await?;
        let put = rate(raw_put(&transfers, &enc.cfg.bucket, &prefix, tree).await?);
        settle(tree).await?;
        let raw_into = tmp.join(format!("down/raw-{what}"));
        let get = rate(raw_get(&transfers, &enc.cfg.bucket, &prefix, tree, &raw_into).await?);
        rows.push(row(
            &format!("raw S3 PUT, {label} (ref)"),
            put,
            unit,
            Some((put / disk, "disk write+fsync")),
        ));
        rows.push(row(
            &format!("raw S3 GET, {label} (ref)"),
            get,
            unit,
            Some((get / disk, "disk write+fsync")),
        ));

        say(&format!(
            "sync up and down, {label}, plain and encrypted alternately, {} rounds",
            args.rounds
        ));
        let mut tools = vec![Tool::Cybs3(plain), Tool::Cybs3(enc)];
        tools.extend(rclones.iter().map(Tool::Rclone));
        let Alternated { medians, costs } =
            alternate(args.rounds, &tools, dir, what, tree, tmp).await?;
        remove_dir(raw_into).await?;
        let [(plain_up, plain_down), (enc_up, enc_down)] = [medians[0], medians[1]];
        let (pu, pd, eu, ed) = (
            rate(plain_up.wall),
            rate(plain_down.wall),
            rate(enc_up.wall),
            rate(enc_down.wall),
        );
        // rclone's rates (up, down) with the plain and the crypt remote, when it ran.
        let rclone_rates: Vec<(f64, f64)> = medians[2..]
            .iter()
            .map(|(up, down)| (rate(up.wall), rate(down.wall)))
            .collect();
        for (r, (up, down)) in rclones.iter().zip(&rclone_rates) {
            for (dir, value) in [("up", up), ("down", down)] {
                rows.push(row(
                    &format!("{} copy {dir}, {label} (ref)", r.kind),
                    *value,
                    unit,
                    None,
                ));
            }
        }
        // Each sync row: against its own reference, and against rclone's same copy.
        let vs_rclone = |i: usize, up: bool, value: f64| {
            rclone_rates.get(i).map(|&(u, d)| {
                let name = match (i, up) {
                    (0, true) => "rclone copy up",
                    (0, false) => "rclone copy down",
                    (_, true) => "rclone crypt copy up",
                    (_, false) => "rclone crypt copy down",
                };
                (value / if up { u } else { d }, name)
            })
        };
        let with = |r: Row, i: usize, up: bool| {
            let vs = vs_rclone(i, up, r.value);
            also(r, vs)
        };
        rows.push(with(
            row(
                &format!("sync up, {label}, plain"),
                pu,
                unit,
                Some((pu / put, "raw S3 PUT")),
            ),
            0,
            true,
        ));
        rows.push(with(
            row(
                &format!("sync down, {label}, plain"),
                pd,
                unit,
                Some((pd / get, "raw S3 GET")),
            ),
            0,
            false,
        ));
        rows.push(with(
            row(
                &format!("sync up, {label}, encrypted"),
                eu,
                unit,
                Some((eu / pu, "plain sync up")),
            ),
            1,
            true,
        ));
        rows.push(with(
            row(
                &format!("sync down, {label}, encrypted"),
                ed,
                unit,
                Some((ed / pd, "plain sync down")),
            ),
            1,
            false,
        ));
        if what == "large" {
            let [up, down] = costs.clone().map(median);
            targets.encryption_cost = Some((up, down));
            targets.encryption_cost_rounds = Some(costs);
            // CPU per GB, the client's and all cores': what encryption adds must find the
            // cores free.
            let per_gb = |d: Duration| d.as_secs_f64() / (tree.bytes as f64 / 1e9);
            let cipher = targets.cipher_cpu * tree.bytes as f64 / 1e9;
            let mut least = Vec::new();
            for (dir, plain, enc) in [("up", plain_up, enc_up), ("down", plain_down, enc_down)] {
                for (kind, t) in [("plain", plain), ("encrypted", enc)] {
                    rows.push(row(
                        &format!("sync {dir}, {label}, {kind}: client CPU"),
                        per_gb(t.cpu),
                        "s/GB",
                        None,
                    ));
                    rows.push(row(
                        &format!("sync {dir}, {label}, {kind}: all cores busy"),
                        per_gb(t.busy),
                        "s/GB",
                        None,
                    ));
                }
                if dir == "down" {
                    targets.added_cpu = Some(per_gb(enc.cpu) - per_gb(plain.cpu));
                }
                least.push(least_cost(plain, cipher));
            }
            if let [Some(up), Some(down)] = least[..] {
                targets.least_cost = Some((up, down));
            }
        } else {
            let (up, down) = (enc_up.wall.as_secs_f64(), enc_down.wall.as_secs_f64());
            targets.small_seconds = Some((up, down));
            for (dir, secs) in [("up", up), ("down", down)] {
                rows.push(row(
                    &format!("sync {dir}, {label}, encrypted: time"),
                    secs,
                    "s",
                    Some((secs / SMALL_SECONDS_TARGET, "10 s target")),
                ));
            }
        }
    }
    Ok((rows, targets))
}

/// Each tool's copy of `tree` up into `dir/what-N` of its remote, `rounds` times taking
/// turns, then as many copies down into new local directories, each compared with the
/// source and removed. `tools` are the plain vault's sync, the encrypted one's, then the
/// references (rclone, when installed).
///
/// The tool that goes first changes every round (A B, B A, A B, ... for two; a rotation
/// for more), so none always gets the later, drifted seconds: on the project's VM the
/// second download of a pair was about 5 % slower on average, whichever vault it was (one
/// 5-round run, pairs' costs 14.2, -11.1, 7.2, 2.4 and -4.7 % with plain first in the 1st,
/// 3rd and 5th).
async fn alternate(
    rounds: u64,
    tools: &[Tool<'_>],
    dir: &str,
    what: &str,
    tree: &Tree,
    tmp: &Path,
) -> Result<Alternated> {
    let src = tree.root.display().to_string();
    let mut ups = vec![Vec::new(); tools.len()];
    for round in 0..rounds {
        for i in order(round, tools.len()) {
            let (tool, times) = (tools[i], &mut ups[i]);
            let remote = tool.remote(dir, &format!("{what}-{round}"));
            settle(tree).await?;
            times.push(tool.run(&src, &remote, tree, true).await?);
        }
    }
    let mut downs = vec![Vec::new(); tools.len()];
    // Removed only after the last round (as is the raw reference's): ext4 skips inodes
    // freed in the last minute when it creates files, so a tree of small files removed
    // just before a download would slow that download down several times over.
    let into = tmp.join(format!("down/{what}"));
    for round in 0..rounds {
        for i in order(round, tools.len()) {
            let (tool, times) = (tools[i], &mut downs[i]);
            let remote = tool.remote(dir, &format!("{what}-{round}"));
            let into = into.join(format!("{}-{round}", tool.kind().replace(' ', "-")));
            settle(tree).await?;
            times.push(
                tool.run(&remote, &into.display().to_string(), tree, false)
                    .await?,
            );
            let (root, files) = (tree.root.clone(), tree.files.clone());
            blocking(move || same_files(&root, &into, &files)).await?;
        }
    }
    remove_dir(into).await?;
    let median = |took: &[Took]| {
        let of = |f: fn(&Took) -> Duration| {
            let secs = took.iter().map(|t| f(t).as_secs_f64()).collect();
            Duration::from_secs_f64(median(secs))
        };
        Took {
            wall: of(|t| t.wall),
            cpu: of(|t| t.cpu),
            busy: of(|t| t.busy),
        }
    };
    // 1 - encrypted/plain throughput = 1 - plain/encrypted time, of one round's pair.
    let costs = |each: &[Vec<Took>]| {
        let pairs = each[0].iter().zip(&each[1]);
        pairs
            .map(|(p, e)| 1.0 - p.wall.as_secs_f64() / e.wall.as_secs_f64())
            .collect()
    };
    Ok(Alternated {
        medians: (0..tools.len())
            .map(|i| (median(&ups[i]), median(&downs[i])))
            .collect(),
        costs: [costs(&ups), costs(&downs)],
    })
}

/// What [`alternate`] measured of its tools.
struct Alternated {
    /// Each tool's median times (up, down), wall and CPU each the median of its own.
    medians: Vec<(Took, Took)>,
    /// 1 - second tool's throughput / first tool's, of each round's pair (up, down). The
    /// two syncs of a pair run seconds apart, so a round whose pair straddles a change in
    /// the disk's speed stands out instead of shifting a side's median.
    costs: [Vec<f64>; 2],
}

/// The order of `n` tools in round `round`: the first goes last in the next round, and
/// the others move up (for two: A B, B A, A B, ...). See [`alternate`].
fn order(round: u64, n: usize) -> impl Iterator<Item = usize> {
    let shift = (round % n as u64) as usize;
    (0..n).map(move |i| (i + shift) % n)
}

/// Plaintext GB/s of age decryption done as a download does it (a piece at a time into a
/// staging buffer), on one core: the CPU an encrypted download needs beyond a plain one.
fn decrypt_gbs(block: &[u8]) -> Result<f64> {
    const PASSES: usize = 4;
    let identity = Identity::generate();
    let plain_len = 64 * MIB as u64;
    let sealer = Sealer::new(
        &identity.to_public(),
        &FileSecrets::random(),
        plain_len,
        None,
    );
    let mut cipher = vec![0u8; sealer.cipher_len() as usize];
    sealer.read_cipher(0, &mut cipher, &mut |at, plain| {
        // Chunks are read whole, and the block holds a whole number of them.
        let from = at as usize % block.len();
        plain.copy_from_slice(&block[from..from + plain.len()]);
        Ok(())
    })?;
    let opener = Opener::parse(&cipher, &[identity])?.context("no age header")?;
    let cipher_len = cipher.len() as u64;
    let payload = &cipher[opener.payload_start() as usize..];
    let per_piece = (STAGE as u64 / CHUNK) as usize;
    let piece = per_piece * (CHUNK as usize + 16);
    let mut stage = vec![0u8; STAGE];
    let t = Instant::now();
    for _ in 0..PASSES {
        for (i, cipher) in payload.chunks(piece).enumerate() {
            let first = (i * per_piece) as u64;
            std::hint::black_box(opener.open_into(first, cipher, &mut stage, cipher_len)?);
        }
    }
    Ok((PASSES as u64 * plain_len) as f64 / t.elapsed().as_secs_f64() / 1e9)
}

/// Before each phase that moves `tree`: let earlier writes (ours and the server's) reach
/// the disk, so the phase pays only for its own; and for large trees, wait until memory
/// freed by the phase before has gone cold. Under a VM with free page reporting
/// (virtio-balloon, as on the project's machine) memory free for ~2 s goes back to the
/// host and costs a host fault per page when used again: one `cybs3 sync` down of 1 GiB
/// took 1.1-1.3 s right after the previous copy was deleted and 1.8-2.7 s after a 6 s
/// pause (client system time 1.0 s vs 2.5-3.4 s). Waiting makes every phase start as cold
/// as a user's transfer does, instead of favouring whichever follows a deletion.
async fn settle(tree: &Tree) -> Result<()> {
    blocking(|| {
        settle_disk();
        Ok(())
    })
    .await?;
    if tree.bytes >= 256 << 20 {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

/// Local disk work off the async workers, so Ctrl-C is noticed meanwhile: the bench's one
/// way onto a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn remove_dir(dir: PathBuf) -> Result<()> {
    blocking(move || {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))
    })
    .await
}
