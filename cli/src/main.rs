//! `cybs3`: the erasure-coded local object store, its S3 server, and its tools.

mod access;
mod admin;
mod alerts;
mod analyze;
mod audit;
mod batch;
mod bench;
mod diag;
mod forecast;
mod iam;
mod inventory;
mod keys;
mod kms;
mod location;
mod logging;
mod login;
mod maint;
mod mount;
mod notify;
mod objects;
mod paths;
mod placement;
mod prices;
mod progress;
mod remote;
mod replication;
mod selftest;
mod server;
mod server_cert;
mod server_config;
mod settings;
mod site;
mod storedir;
mod sync;
mod usage;
mod vaults;

use clap::{CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "cybs3",
    version,
    about = "Erasure-coded local object store with an S3 endpoint and age-encrypted vaults",
    long_about = "cybs3 keeps objects erasure-coded across local drives, indexed in LMDB, \
                  serves them over S3, and encrypts vaults client-side with age.\n\n\
                  Start here: `cybs3 vaults local` (a local server, a bucket, credentials and \
                  an encrypted vault in one command), then `cybs3 cp FILE :` and `cybs3 ls :`.",
    after_help = "Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more. Signatures and \
                  secrets never reach them (s3s's own debug and trace lines are dropped). \
                  CYBS3_HOME relocates config and data."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Named vaults: S3 targets, encrypted with age unless plain
    #[command(subcommand)]
    Vaults(vaults::VaultsCmd),
    /// List a vault directory (plaintext names)
    Ls(objects::LsArgs),
    /// Copy files between local paths and vaults (-r for trees)
    Cp(objects::CpArgs),
    /// Print a vault file to stdout
    Cat {
        /// VAULT:path
        path: String,
    },
    /// Remove vault files (-r for trees)
    Rm(objects::RmArgs),
    /// Make DST match SRC (local dir ↔ vault prefix)
    Sync(sync::SyncArgs),
    /// Mount a vault as a POSIX filesystem (FUSE)
    Mount(mount::MountArgs),
    /// Flush pending writes, then unmount
    Umount {
        /// Where the vault is mounted
        mountpoint: PathBuf,
    },
    /// Check the active vault end to end: write, list, read back, verify, delete
    Test(selftest::TestArgs),
    /// A vault's age identities: export, recovery phrases, restore, import
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Run and manage the S3 server
    #[command(subcommand)]
    Server(ServerCmd),
    /// Verify every shard and rebuild missing or damaged ones (and replaced drives)
    #[command(after_help = "Exit status: 0 full redundancy restored; \
                            3 degraded: every object is readable, but some drives or shards \
                            could not be written (read-only, full or failing drives); \
                            4 data lost: some objects have fewer than K good shards; \
                            1 the heal could not run; 2 usage error.")]
    Heal {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Report inconsistencies without changing anything (exit 1 when any are found)
    Fsck {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Get temporary credentials for a vault with a directory (LDAP) login
    Login(login::LoginArgs),
    /// Manage who may use the server
    #[command(subcommand)]
    Admin(AdminCmd),
    /// S3 Batch Operations: one operation over every object of a manifest, in the
    /// background (copy, tags, delete, object lock, restore, replicate, webhook)
    Batch(batch::BatchArgs),
    /// Measure performance against physical references (memcpy, raw disk writes)
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Print shell completions, e.g. `cybs3 completions bash > /etc/bash_completion.d/cybs3`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (cybs3.1, and one per subcommand) into DIR
    Man { dir: PathBuf },
}

#[derive(Subcommand, Debug)]
enum AdminCmd {
    /// Access keys limited to one bucket
    #[command(subcommand)]
    Key(access::KeyCmd),
    /// Users: each has an access key and gets the policies of its own and of its groups
    User {
        #[command(subcommand)]
        cmd: iam::UserCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// IAM policies (AWS JSON) and what they are attached to
    Policy {
        #[command(subcommand)]
        cmd: iam::PolicyCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Groups of users that share policies
    Group {
        #[command(subcommand)]
        cmd: iam::GroupCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Pools of drives: grow the store online, or drain a pool to take its drives away
    Pool {
        #[command(subcommand)]
        cmd: placement::PoolCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Storage classes: which pool holds each S3 class's data
    Tier {
        #[command(subcommand)]
        cmd: placement::TierCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// The built-in KMS: keys for server-side encryption (SSE-S3, SSE-KMS)
    Kms {
        #[command(subcommand)]
        cmd: kms::KmsCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// The tamper-evident audit log (DATA/audit/): verify its chain, export reports
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Bucket notification targets: webhooks, AMQP, MQTT, NATS, Redis, PostgreSQL
    Notify {
        #[command(subcommand)]
        cmd: notify::NotifyCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Remote S3 endpoints (other cybs3 servers or any S3 system) that tiers and
    /// replication rules name
    Remote {
        #[command(subcommand)]
        cmd: remote::RemoteCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Bucket replication to remotes: its backlog, lag and failures, and resyncs
    Replication {
        #[command(subcommand)]
        cmd: replication::ReplicationCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// S3 Inventory reports: make one now (the server also makes them on schedule)
    Inventory {
        #[command(subcommand)]
        cmd: inventory::InventoryCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Site replication: link cybs3 servers into an active-active group, and its status
    Site {
        #[command(subcommand)]
        cmd: site::SiteCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Prometheus metrics (GET /metrics on the S3 port): the bearer token scrapes need
    Metrics {
        #[command(subcommand)]
        cmd: diag::MetricsCmd,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Write a support bundle (plain text, no secrets): version, config, drives, pools,
    /// queues, recent warnings and errors, metrics
    Diag(diag::DiagArgs),
    /// The access analyzer: public buckets and objects, grants to others, wildcard
    /// actions, `s3:*` on `*`, conditions that never hold, unused users and keys, long
    /// sessions; each finding with its severity, evidence and fix (exit 0 either way)
    Analyze {
        #[command(flatten)]
        args: analyze::AnalyzeArgs,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Anomaly alerts (mass overwrites and deletes, read spikes, keys from new networks,
    /// guessing): what was seen, compared with what, and what to do; the users flagged,
    /// per-bucket freezes and the notification target alerts go to
    Alerts {
        #[command(flatten)]
        args: alerts::AlertsArgs,
        #[command(flatten)]
        data: iam::DataArg,
    },
    /// Storage used: objects, versions, markers, uploads and bytes by bucket, class and
    /// age; prefixes and hot/warm/cold from the last pass; monthly cost and savings
    Usage {
        #[command(flatten)]
        args: usage::UsageArgs,
        #[command(flatten)]
        data: iam::DataArg,
    },
}

#[derive(Subcommand, Debug)]
enum ServerCmd {
    /// Start the server (in the foreground unless --detach)
    Start(Box<server::StartArgs>),
    /// Stop the server gracefully: drain requests, then exit
    Stop {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
    /// Make a local CA and a server certificate for HTTPS (DATA/tls/), which `server
    /// start` then serves; prints how clients trust the CA
    Cert(server_cert::CertArgs),
    /// Read and change the server config file (DATA/server.toml); a running server takes
    /// live settings at once and says which need a restart
    Config(server_config::ConfigArgs),
    /// Print the server's log (DATA/logs/server.jsonl) as text, or as JSON lines
    Logs(diag::LogsArgs),
    /// Show whether the server runs, its address, drives and usage
    Status {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// Print one JSON document (with root keys when the store's config is readable)
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // s3s logs every client mistake (NoSuchKey, ...) as an error; our server logs
    // the requests that fail on our side, so its own lines are off unless asked for.
    let default_log = match &cli.command {
        Command::Server(ServerCmd::Start(_)) => "info,s3s=off",
        _ => "warn,s3s=off",
    };
    logging::init(default_log);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cybs3: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// A command's `Ok(false)` means it ran but reports failure (e.g. fsck found problems): exit 1.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ok = match cli.command {
        Command::Server(ServerCmd::Start(args)) => server::start(*args).map(|()| true),
        Command::Server(ServerCmd::Stop { data }) => server::stop(data).map(|()| true),
        Command::Server(ServerCmd::Cert(args)) => server_cert::run(args).map(|()| true),
        Command::Server(ServerCmd::Config(args)) => server_config::run(args),
        Command::Server(ServerCmd::Logs(args)) => diag::logs(args).map(|()| true),
        Command::Server(ServerCmd::Status { data, json }) => {
            server::status(data, json).map(|()| true)
        }
        Command::Heal { data, json } => return maint::heal(data, json),
        Command::Fsck { data, json } => maint::fsck(data, json),
        Command::Vaults(cmd) => vaults::run(cmd).map(|()| true),
        Command::Keys(cmd) => keys::run(cmd).map(|()| true),
        Command::Ls(args) => objects::ls(args).map(|()| true),
        Command::Cp(args) => objects::cp(args),
        Command::Cat { path } => objects::cat(&path).map(|()| true),
        Command::Rm(args) => objects::rm(args).map(|()| true),
        Command::Sync(a) => sync::run(a),
        Command::Test(args) => selftest::run(args),
        Command::Admin(AdminCmd::Key(cmd)) => access::run(cmd).map(|()| true),
        Command::Admin(AdminCmd::User { cmd, data }) => iam::user(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Policy { cmd, data }) => iam::policy(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Group { cmd, data }) => iam::group(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Pool { cmd, data }) => placement::pool(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Tier { cmd, data }) => placement::tier(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Kms { cmd, data }) => kms::run(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Audit { cmd, data }) => audit::run(cmd, data),
        Command::Admin(AdminCmd::Notify { cmd, data }) => notify::run(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Remote { cmd, data }) => remote::run(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Replication { cmd, data }) => {
            replication::run(cmd, data).map(|()| true)
        }
        Command::Admin(AdminCmd::Inventory { cmd, data }) => {
            inventory::run(cmd, data).map(|()| true)
        }
        Command::Admin(AdminCmd::Site { cmd, data }) => site::run(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Metrics { cmd, data }) => diag::metrics(cmd, data).map(|()| true),
        Command::Admin(AdminCmd::Diag(args)) => diag::diag(args).map(|()| true),
        Command::Admin(AdminCmd::Analyze { args, data }) => analyze::run(args, data).map(|()| true),
        Command::Admin(AdminCmd::Usage { args, data }) => usage::run(args, data).map(|()| true),
        Command::Admin(AdminCmd::Alerts { args, data }) => alerts::run(args, data).map(|()| true),
        Command::Login(args) => login::run(args).map(|()| true),
        Command::Batch(args) => batch::run(args),
        Command::Bench(cmd) => bench::run(cmd).map(|()| true),
        Command::Mount(args) => mount::run(args).map(|()| true),
        Command::Umount { mountpoint } => mount::umount(&mountpoint).map(|()| true),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cybs3", &mut std::io::stdout());
            Ok(true)
        }
        Command::Man { dir } => clap_mangen::generate_to(Cli::command(), &dir)
            .map_err(|e| anyhow::anyhow!("cannot write the man pages into {}: {e}", dir.display()))
            .map(|()| true),
    }?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// An error and its causes on one line: "what failed: why".
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// Run one future to completion (client-side calls; transfers use every core).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}
