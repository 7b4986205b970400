//! `cybs3 admin replication status|resync BUCKET`: a bucket's replication, asked of the
//! running server (the rules themselves are S3's PutBucketReplication).

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use engine::DestinationStatus;
use hyper::Method;
use serde::{Deserialize, Serialize};

#[derive(clap::Subcommand, Debug)]
pub enum ReplicationCmd {
    /// Each destination of a bucket's rules: backlog, lag, tasks done and failed, and
    /// the versions that failed for good
    Status {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
    /// Replicate the versions no destination has taken: those from before the rules,
    /// and those that failed
    Resync {
        bucket: String,
        #[arg(long)]
        json: bool,
    },
}

/// The management calls of replication, as the management socket takes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum ReplicationCall {
    Status { bucket: String },
    Resync { bucket: String },
}

/// Answers one call on the server's side.
pub(crate) fn apply(store: &engine::Store, call: ReplicationCall) -> Result<serde_json::Value> {
    Ok(match call {
        ReplicationCall::Status { bucket } => {
            serde_json::to_value(store.replication_status(&bucket)?)?
        }
        ReplicationCall::Resync { bucket } => {
            serde_json::json!({ "bucket": bucket, "queued": store.resync_replication(&bucket)? })
        }
    })
}

fn ask(data: DataArg, call: &ReplicationCall) -> Result<serde_json::Value> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("replication is run by the server: start it with `cybs3 server start`");
    }
    let body = serde_json::to_value(call)?;
    crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/replication",
        Some(body),
    ))
}

pub fn run(cmd: ReplicationCmd, data: DataArg) -> Result<()> {
    match cmd {
        ReplicationCmd::Status { bucket, json } => {
            let out = ask(data, &ReplicationCall::Status { bucket })?;
            if json {
                println!("{out}");
                return Ok(());
            }
            let all: Vec<DestinationStatus> = serde_json::from_value(out)?;
            for d in all {
                let s = &d.stats;
                println!(
                    "{}  rule {}  backlog {}  lag {:.1} s  replicated {}  failed tries {}  failed {}",
                    d.destination, d.rule, s.queued, d.lag_secs, s.delivered, s.failed, s.dead
                );
                if let Some(e) = &s.last_error {
                    println!("  last error: {e}");
                }
                for f in &d.dead_letters {
                    println!(
                        "  failed: {} ({})",
                        f.what,
                        f.error.as_deref().unwrap_or("no error kept")
                    );
                }
            }
        }
        ReplicationCmd::Resync { bucket, json } => {
            let out = ask(
                data,
                &ReplicationCall::Resync {
                    bucket: bucket.clone(),
                },
            )?;
            match json {
                true => println!("{out}"),
                false => println!(
                    "queued {} versions of {bucket} for replication",
                    out["queued"]
                ),
            }
        }
    }
    Ok(())
}
