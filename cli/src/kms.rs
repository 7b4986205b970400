//! `cybs3 admin kms key create|list|rotate|disable|enable`: the built-in KMS's keys,
//! which wrap the data keys of server-side encryption. Asked of the running server,
//! which holds the KMS's master key (its key file, or `--kms-master-key-file`).

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use engine::KeyInfo;
use hyper::Method;
use serde::{Deserialize, Serialize};

#[derive(clap::Subcommand, Debug)]
pub enum KmsCmd {
    /// Manage the KMS's keys
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
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
}

impl KmsCall {
    pub fn apply(self, store: &engine::Store) -> Result<serde_json::Value> {
        Ok(match self {
            KmsCall::Create { name } => serde_json::to_value(store.kms_create(&name)?)?,
            KmsCall::List => serde_json::to_value(store.kms_keys())?,
            KmsCall::Rotate { name } => serde_json::to_value(store.kms_rotate(&name)?)?,
            KmsCall::Enable { name, on } => serde_json::to_value(store.kms_enable(&name, on)?)?,
        })
    }
}

pub fn run(cmd: KmsCmd, data: DataArg) -> Result<()> {
    let KmsCmd::Key { cmd } = cmd;
    let (call, json) = match cmd {
        KeyCmd::Create { name, json } => (KmsCall::Create { name }, json),
        KeyCmd::List { json } => (KmsCall::List, json),
        KeyCmd::Rotate { name, json } => (KmsCall::Rotate { name }, json),
        KeyCmd::Disable { name, json } => (KmsCall::Enable { name, on: false }, json),
        KeyCmd::Enable { name, json } => (KmsCall::Enable { name, on: true }, json),
    };
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("the KMS is served by the running server, which holds its master key: start it with `cybs3 server start`");
    }
    let body = serde_json::to_value(&call)?;
    let out = crate::block_on(admin::call(&dir.socket(), Method::POST, "/kms", Some(body)))?;
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
