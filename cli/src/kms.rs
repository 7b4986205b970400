//! `cybs3 admin kms key create|list|rotate|disable|enable`: the built-in KMS's keys,
//! which wrap the data keys of server-side encryption; `cybs3 admin kms rewrap`: every
//! stored data key wrapped again by its key's newest version. Asked of the running
//! server, which holds the KMS's master key (its key file, or `--kms-master-key-file`).

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use engine::{KeyInfo, RewrapJob};
use hyper::Method;
use serde::{Deserialize, Serialize};

#[derive(clap::Subcommand, Debug)]
pub enum KmsCmd {
    /// Manage the KMS's keys
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Wrap every stored data key again by its key's newest version (after `rotate`),
    /// without rewriting any data; the server does it in the background, resuming after
    /// a restart
    Rewrap {
        /// Only this bucket's objects
        #[arg(long)]
        bucket: Option<String>,
        /// Wait until it is done
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCmd {
    /// Make a key; S3 requests name it in x-amz-server-side-encryption-aws-kms-key-id
    /// (by NAME, or an ARN ending in :key/NAME)
    Create {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List the keys: state, version, history and use counts (never their material)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a version to a key: new objects use it, older objects stay readable
    Rotate {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn a key off: its objects cannot be read until it is enabled again
    Disable {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Turn a disabled key on again
    Enable {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// A KMS call, as the management socket takes it (`POST /kms`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum KmsCall {
    Create { name: String },
    List,
    Rotate { name: String },
    Enable { name: String, on: bool },
    Rewrap { bucket: Option<String> },
    RewrapStatus,
}

impl KmsCall {
    pub fn apply(self, store: &engine::Store) -> Result<serde_json::Value> {
        Ok(match self {
            KmsCall::Create { name } => serde_json::to_value(store.kms_create(&name)?)?,
            KmsCall::List => serde_json::to_value(store.kms_keys())?,
            KmsCall::Rotate { name } => serde_json::to_value(store.kms_rotate(&name)?)?,
            KmsCall::Enable { name, on } => serde_json::to_value(store.kms_enable(&name, on)?)?,
            KmsCall::Rewrap { bucket } => {
                serde_json::to_value(store.start_rewrap(bucket.as_deref())?)?
            }
            KmsCall::RewrapStatus => serde_json::to_value(store.rewrap_job()?)?,
        })
    }
}

/// Asks the running server.
fn ask(dir: &crate::storedir::StoreDir, call: &KmsCall) -> Result<serde_json::Value> {
    let body = serde_json::to_value(call)?;
    crate::block_on(admin::call(&dir.socket(), Method::POST, "/kms", Some(body)))
}

pub fn run(cmd: KmsCmd, data: DataArg) -> Result<()> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("the KMS is served by the running server, which holds its master key: start it with `cybs3 server start`");
    }
    let cmd = match cmd {
        KmsCmd::Key { cmd } => cmd,
        KmsCmd::Rewrap { bucket, wait, json } => return rewrap(&dir, bucket, wait, json),
    };
    let (call, json) = match cmd {
        KeyCmd::Create { name, json } => (KmsCall::Create { name }, json),
        KeyCmd::List { json } => (KmsCall::List, json),
        KeyCmd::Rotate { name, json } => (KmsCall::Rotate { name }, json),
        KeyCmd::Disable { name, json } => (KmsCall::Enable { name, on: false }, json),
        KeyCmd::Enable { name, json } => (KmsCall::Enable { name, on: true }, json),
    };
    let out = ask(&dir, &call)?;
    let keys: Vec<KeyInfo> = match out {
        serde_json::Value::Array(_) => serde_json::from_value(out)?,
        one => vec![serde_json::from_value(one)?],
    };
    if json {
        println!("{}", serde_json::to_string(&keys)?);
        return Ok(());
    }
    if keys.is_empty() {
        println!("no KMS key yet: SSE-S3 and SSE-KMS make theirs on first use");
    }
    for k in keys {
        println!(
            "{}  {}  version {}  wrapped {}  unwrapped {} (since the server started)",
            k.name,
            if k.enabled { "enabled" } else { "DISABLED" },
            k.version,
            k.wrapped,
            k.unwrapped
        );
    }
    Ok(())
}

fn rewrap(
    dir: &crate::storedir::StoreDir,
    bucket: Option<String>,
    wait: bool,
    json: bool,
) -> Result<()> {
    let mut job: RewrapJob = serde_json::from_value(ask(dir, &KmsCall::Rewrap { bucket })?)?;
    while wait && !job.done {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let status = ask(dir, &KmsCall::RewrapStatus)?;
        job = serde_json::from_value::<Option<RewrapJob>>(status)?.unwrap_or_default();
    }
    if json {
        println!("{}", serde_json::to_string(&job)?);
    } else if job.done {
        println!(
            "rewrapped the data keys of {} object versions ({} passed by: their key is disabled)",
            job.rewrapped, job.skipped
        );
    } else {
        println!("the server rewraps the data keys in the background; `cybs3 admin kms rewrap --wait` waits for it");
    }
    Ok(())
}
