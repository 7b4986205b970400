//! `cybs3 admin key create|list|remove`: per-bucket access keys, through the running
//! server's management socket or, when it is stopped, on the store directly.

use crate::admin;
use crate::server::{open_stopped, store_dir};
use anyhow::{bail, Result};
use hyper::Method;
use s3d::{KeyInfo, Keyring, NewKey};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum KeyCmd {
    /// Create an access key that may use one bucket (and nothing else); prints its secret once
    Create {
        /// The bucket the key may use (it must exist)
        #[arg(long)]
        bucket: String,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List access keys (never their secrets)
    List {
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Remove an access key; requests signed with it fail from then on
    Remove {
        access_key: String,
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
    },
}

/// Create a key for `bucket` in the store at `data` (used by `vaults local` as well).
pub fn create(data: Option<PathBuf>, bucket: &str) -> Result<NewKey> {
    let v = call(data, Method::POST, &format!("/keys?bucket={bucket}"), |k| {
        Ok(serde_json::to_value(k.create(bucket)?)?)
    })?;
    Ok(serde_json::from_value(v)?)
}

pub fn run(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Create { bucket, data, json } => {
            let key = create(data, &bucket)?;
            if json {
                println!("{}", serde_json::to_string(&key)?);
            } else {
                println!("access key: {}", key.access_key);
                println!("secret key: {}", key.secret_key);
                println!("bucket:     {}", key.bucket);
                println!("(the secret is shown only now)");
            }
        }
        KeyCmd::List { data, json } => {
            let v = call(data, Method::GET, "/keys", |k| {
                Ok(serde_json::to_value(k.list()?)?)
            })?;
            let keys: Vec<KeyInfo> = serde_json::from_value(v)?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                for k in keys {
                    println!("{}  {}", k.access_key, k.bucket);
                }
            }
        }
        KeyCmd::Remove { access_key, data } => {
            let v = call(data, Method::DELETE, &format!("/keys/{access_key}"), |k| {
                Ok(serde_json::to_value(k.remove(&access_key)?)?)
            })?;
            if v != serde_json::Value::Bool(true) {
                bail!("there is no access key {access_key}; `cybs3 admin key list` shows them");
            }
        }
    }
    Ok(())
}

/// Ask the running server, or do `direct` on the stopped store.
fn call(
    data: Option<PathBuf>,
    method: Method,
    path: &str,
    direct: impl FnOnce(&Keyring) -> Result<serde_json::Value>,
) -> Result<serde_json::Value> {
    let dir = store_dir(data);
    if dir.running()?.is_some() {
        return crate::block_on(admin::call(&dir.socket(), method, path, None));
    }
    let store = open_stopped(&dir)?;
    direct(&Keyring::new(store, &dir.ensure_server_key()?))
}
