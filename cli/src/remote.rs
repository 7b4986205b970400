//! `cybs3 admin remote add|list|remove`: the S3 endpoints (other cybs3 servers, Ceph RGW,
//! Garage, MinIO, AWS) that tiers name, asked of the running server, which checks that
//! each answers and seals its secret.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Context, Result};
use hyper::Method;
use s3d::{NewRemote, RemoteCall, RemoteInfo};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum RemoteCmd {
    /// Register a remote S3 endpoint; it must answer ListBuckets with the keys given
    Add(Box<AddArgs>),
    /// List the remotes (never their secrets) and the storage classes on each
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a remote no storage class is on
    Remove { name: String },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The remote's name (letters, digits, '-', '_', '.')
    name: String,
    /// http(s)://HOST[:PORT]
    #[arg(long, value_name = "URL")]
    endpoint: String,
    #[arg(long, value_name = "KEY")]
    access_key: String,
    /// Kept sealed under the server's key
    #[arg(
        long,
        value_name = "SECRET",
        env = "CYBS3_REMOTE_SECRET_KEY",
        hide_env_values = true
    )]
    secret_key: String,
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    region: String,
    /// PEM certificates of the CA an https endpoint is signed by, when the system does
    /// not trust it (kept with the remote)
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Asks the running server (the remotes live in its records, sealed under its key).
pub(crate) fn ask(data: DataArg, call: &RemoteCall) -> Result<serde_json::Value> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("remotes are managed through the running server, which checks that each answers: start it with `cybs3 server start`");
    }
    let body = serde_json::to_value(call)?;
    crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/remote",
        Some(body),
    ))
}

pub fn run(cmd: RemoteCmd, data: DataArg) -> Result<()> {
    match cmd {
        RemoteCmd::Add(a) => {
            let ca_pem = a
                .ca_file
                .as_ref()
                .map(|f| {
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read the CA file {}", f.display()))
                })
                .transpose()?;
            let call = RemoteCall::Add(Box::new(NewRemote {
                name: a.name,
                endpoint: a.endpoint,
                region: a.region,
                access_key: a.access_key,
                secret_key: a.secret_key,
                ca_pem,
            }));
            let info: RemoteInfo = serde_json::from_value(ask(data, &call)?)?;
            match a.json {
                true => println!("{}", serde_json::to_string(&info)?),
                false => println!("added remote {} at {}", info.name, info.endpoint),
            }
        }
        RemoteCmd::List { json } => {
            let all: Vec<RemoteInfo> = serde_json::from_value(ask(data, &RemoteCall::List)?)?;
            if json {
                println!("{}", serde_json::to_string(&all)?);
                return Ok(());
            }
            if all.is_empty() {
                println!("no remote: add one with `cybs3 admin remote add NAME --endpoint URL --access-key K --secret-key S`");
            }
            for r in all {
                let ca = if r.private_ca { "  (own CA)" } else { "" };
                let tiers = match r.tiers.is_empty() {
                    true => String::new(),
                    false => format!("  tiers: {}", r.tiers.join(", ")),
                };
                println!(
                    "{}  {}  {}  {}{ca}{tiers}",
                    r.name, r.endpoint, r.region, r.access_key
                );
            }
        }
        RemoteCmd::Remove { name } => {
            ask(data, &RemoteCall::Remove { name: name.clone() })?;
            println!("removed remote {name}");
        }
    }
    Ok(())
}
