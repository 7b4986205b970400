//! `cybs3 bench engine|s3|sync|mount`: throughput next to references measured in the same
//! run. The CLI parses [`BenchCmd`] and calls [`run`] with what only it knows ([`Cli`]).
//!
//! Errors are `anyhow`'s, as in the binary: each one ends as the message of a failed
//! `cybs3 bench` and is matched by nothing.

mod anomaly;
mod batch;
mod engine;
mod hook;
mod machine;
mod mount;
mod rclone;
mod replication;
mod report;
mod s3;
mod scrape;
mod select;
mod spare;
mod sync;
mod timing;

use anyhow::Result;
use std::path::{Path, PathBuf};
use vault::vault::Vault;

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// The storage engine in-process: erasure coding, PUT/GET, small objects, listing
    Engine(engine::EngineArgs),
    /// An S3 endpoint over the network with the CLI's S3 client: large and small objects,
    /// latencies, listing; the engine's own GET measured alongside as the reference
    S3(s3::S3Args),
    /// `cybs3 sync` of large and of small files, up and down, encrypted and plain, with the
    /// transfer engine's raw S3 throughput and the local disk measured alongside
    Sync(sync::SyncBenchArgs),
    /// `cybs3 mount` of a plain and an encrypted vault on a scratch local server: large
    /// file write and read, 4 KiB random reads, and create/stat/ls/unlink of many small
    /// files, with the local disk, the vault's own upload and download and (when installed)
    /// `rclone mount` alongside
    Mount(mount::MountBenchArgs),
}

/// What the bench takes from the CLI it runs in: the local server's record, and vaults
/// and passphrases got the way every other command gets them. (The syncs and mounts it
/// measures are the CLI itself, run as a child: the current executable.)
pub trait Cli {
    /// The local server's data directory: `data`, else the default one.
    fn store_dir(&self, data: Option<PathBuf>) -> PathBuf;
    /// The address of the server running on the data directory `dir`, if one is.
    fn running_address(&self, dir: &Path) -> Result<Option<String>>;
    /// The root access and secret key kept in the data directory `dir`, if readable.
    fn root_keys(&self, dir: &Path) -> Option<(String, String)>;
    /// The vault `name` (the active one for `None`), with its identity when encrypted.
    fn open_vault(&self, name: Option<&str>) -> Result<Vault>;
    /// The passphrase of a sealed identity.
    fn passphrase(&self) -> Result<String>;
    /// Adds (with a URL; its ARN) or removes (without) a webhook notification target of the
    /// server running on `dir`.
    fn webhook_target(&self, dir: &Path, name: &str, url: Option<&str>) -> Result<Option<String>>;
}

pub fn run(cmd: BenchCmd, cli: &dyn Cli) -> Result<()> {
    match cmd {
        BenchCmd::Engine(args) => engine::run(args),
        BenchCmd::S3(args) => s3::run(args, cli),
        BenchCmd::Sync(args) => sync::run(args, cli),
        BenchCmd::Mount(args) => mount::run(args, cli),
    }
}
