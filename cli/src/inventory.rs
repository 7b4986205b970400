//! `cybs3 admin inventory run BUCKET ID`: make an inventory report now, through the
//! running server (the configurations themselves are S3's PutBucketInventoryConfiguration,
//! and the server makes them on their schedule too).

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use hyper::Method;
use s3d::InventoryRun;
use serde::{Deserialize, Serialize};

#[derive(clap::Subcommand, Debug)]
pub enum InventoryCmd {
    /// Write the report of a bucket's inventory configuration now, and say where its
    /// manifest went
    Run {
        bucket: String,
        /// The configuration's Id
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// The management call, as the management socket takes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InventoryCall {
    pub bucket: String,
    pub id: String,
}

/// Answers the call on the server's side.
pub(crate) fn apply(store: &engine::Store, call: InventoryCall) -> Result<serde_json::Value> {
    let run = s3d::run_inventory(store, &call.bucket, &call.id)?;
    Ok(serde_json::to_value(run)?)
}

pub fn run(cmd: InventoryCmd, data: DataArg) -> Result<()> {
    let InventoryCmd::Run { bucket, id, json } = cmd;
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("inventory reports are written by the server: start it with `cybs3 server start`");
    }
    let body = serde_json::to_value(InventoryCall { bucket, id })?;
    let out = crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/inventory",
        Some(body),
    ))?;
    if json {
        println!("{out}");
        return Ok(());
    }
    let r: InventoryRun = serde_json::from_value(out)?;
    println!(
        "inventory {} of {}: {} rows in {} data files; manifest s3://{}/{}",
        r.id,
        r.bucket,
        r.rows,
        r.data_files.len(),
        r.destination_bucket,
        r.manifest_key
    );
    Ok(())
}
