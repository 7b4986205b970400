//! `cybs3 admin alerts`: the anomaly detector's alerts (what it saw, compared with
//! what, and what to do), the users a ransomware-like alert flagged, the optional
//! freeze of a flagged user's deletes and overwrites per bucket, and the notification
//! target alerts go to. All through the running server, which does the detecting.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Result};
use hyper::Method;
use s3d::anomaly::alert::Alert;
use s3d::AlertCall;

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    #[command(subcommand)]
    cmd: Option<AlertsCmd>,
    /// Print one JSON document
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum AlertsCmd {
    /// Lift the freeze of a user flagged by a ransomware-like alert
    Clear { user: String },
    /// Freeze a flagged user's deletes and overwrites in BUCKET for N minutes after a
    /// ransomware-like alert (0: until `alerts clear`); off by default
    Protect {
        bucket: String,
        #[arg(long, value_name = "N", required_unless_present = "off")]
        freeze_minutes: Option<u64>,
        /// Turn the freeze off for the bucket
        #[arg(long, conflicts_with = "freeze_minutes")]
        off: bool,
    },
    /// Send each new alert to a notification target (`cybs3 admin notify add`)
    Target {
        #[arg(required_unless_present = "none")]
        name: Option<String>,
        /// Send alerts to no target
        #[arg(long, conflicts_with = "name")]
        none: bool,
    },
}

pub fn run(args: AlertsArgs, data: DataArg) -> Result<()> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("alerts are raised and kept by the server: start it with `cybs3 server start`");
    }
    let call = match args.cmd {
        None => AlertCall::List,
        Some(AlertsCmd::Clear { user }) => AlertCall::Clear { user },
        Some(AlertsCmd::Protect {
            bucket,
            freeze_minutes,
            ..
        }) => AlertCall::Protect {
            bucket,
            minutes: freeze_minutes,
        },
        Some(AlertsCmd::Target { name, .. }) => AlertCall::Target { name },
    };
    let listing = matches!(call, AlertCall::List);
    let out = crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/alerts",
        Some(serde_json::to_value(&call)?),
    ))?;
    if args.json {
        println!("{out}");
        return Ok(());
    }
    if !listing {
        println!("{}", said(&call, &out));
        return Ok(());
    }
    let alerts: Vec<Alert> = serde_json::from_value(out["alerts"].clone())?;
    if alerts.is_empty() {
        println!("no alerts");
    }
    for a in &alerts {
        let time = time::OffsetDateTime::from_unix_timestamp_nanos(a.time_ns as i128)
            .map(|t| t.to_string())
            .unwrap_or_default();
        println!("{time}  {}", a.summary());
        println!("    suggested: {}", a.suggestion);
    }
    if let Some(flagged) = out["flagged"].as_array().filter(|f| !f.is_empty()) {
        let names: Vec<_> = flagged.iter().filter_map(|f| f["user"].as_str()).collect();
        println!(
            "flagged users (frozen where a bucket's protection is on): {}",
            names.join(", ")
        );
    }
    Ok(())
}

/// What a change call did, in one line.
fn said(call: &AlertCall, out: &serde_json::Value) -> String {
    match call {
        AlertCall::Clear { user } if out["was_flagged"] == true => {
            format!("{user} is no longer flagged: its deletes and overwrites are allowed again")
        }
        AlertCall::Clear { user } => format!("{user} was not flagged"),
        AlertCall::Protect {
            bucket,
            minutes: Some(0),
        } => format!("{bucket}: a flagged user's deletes and overwrites are frozen until cleared"),
        AlertCall::Protect {
            bucket,
            minutes: Some(m),
        } => {
            format!("{bucket}: a flagged user's deletes and overwrites are frozen for {m} minutes")
        }
        AlertCall::Protect { bucket, .. } => format!("{bucket}: no freeze after alerts"),
        AlertCall::Target { name: Some(n) } => format!("new alerts go to target {n}"),
        AlertCall::Target { name: None } => "alerts go to no target".into(),
        AlertCall::List => String::new(),
    }
}
