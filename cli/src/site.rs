//! `cybs3 admin site add|status|remove`: site replication, asked of the running server.
//! `add`, run once on any site of a group, links another site into it; every site then
//! learns every peer and replicates buckets, versions, settings and identity to each.

use crate::admin;
use crate::iam::DataArg;
use crate::server::store_dir;
use anyhow::{bail, Context, Result};
use hyper::Method;
use s3d::{SiteCall, SiteStatus};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum SiteCmd {
    /// Link the site at --endpoint into this site's group (every member learns it, and
    /// it learns every member); both must run cybs3 and share nothing yet but a network
    Add(Box<AddArgs>),
    /// Each peer: reachable or not, its backlog and lag, and its last sync
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop replicating to a peer (from this site only)
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddArgs {
    /// The new site's name in the group (letters, digits, '-', '_')
    name: String,
    /// Its S3 endpoint, http(s)://HOST[:PORT], as this site reaches it
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// Its root access key (in DATA/credentials.json there, or CYBS3_ROOT_USER)
    #[arg(long, value_name = "KEY")]
    access_key: String,
    /// Its root secret key; kept sealed under this server's key
    #[arg(
        long,
        value_name = "SECRET",
        env = "CYBS3_SITE_SECRET_KEY",
        hide_env_values = true
    )]
    secret_key: String,
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// PEM certificates of the CA its https endpoint is signed by, when the system does
    /// not trust it
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// This site's name in the group, when it starts one (default: the host name)
    #[arg(long = "as", value_name = "NAME")]
    me: Option<String>,
    /// Where the other sites reach this one (default: the address this site reaches
    /// the new one from, with this server's port)
    #[arg(long, value_name = "URL")]
    self_endpoint: Option<String>,
    #[arg(long)]
    json: bool,
}

fn ask(data: DataArg, call: &SiteCall) -> Result<SiteStatus> {
    let dir = store_dir(data.data);
    if dir.running()?.is_none() {
        bail!("sites are linked by the running server: start it with `cybs3 server start`");
    }
    let body = serde_json::to_value(call)?;
    let out = crate::block_on(admin::call(
        &dir.socket(),
        Method::POST,
        "/site",
        Some(body),
    ))?;
    Ok(serde_json::from_value(out)?)
}

pub fn run(cmd: SiteCmd, data: DataArg) -> Result<()> {
    let (call, json) = match cmd {
        SiteCmd::Add(a) => {
            let ca_pem = a
                .ca_file
                .as_ref()
                .map(|f| {
                    std::fs::read_to_string(f)
                        .with_context(|| format!("cannot read the CA file {}", f.display()))
                })
                .transpose()?;
            let call = SiteCall::Add {
                name: a.name,
                endpoint: a.endpoint,
                access_key: a.access_key,
                secret_key: a.secret_key,
                region: a.region,
                ca_pem,
                me: a.me,
                self_endpoint: a.self_endpoint,
            };
            (call, a.json)
        }
        SiteCmd::Status { json } => (SiteCall::Status, json),
        SiteCmd::Remove { name, json } => (SiteCall::Remove { name }, json),
    };
    let status = ask(data, &call)?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
        return Ok(());
    }
    let Some(name) = &status.name else {
        println!("this site is in no group: link one with `cybs3 admin site add NAME --endpoint URL --access-key K --secret-key S`");
        return Ok(());
    };
    println!("site {name}: {} peers", status.peers.len());
    for p in &status.peers {
        let q = &p.queue;
        let last = match q.last_sync_ns {
            Some(ns) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let ago = now.saturating_sub(ns) as f64 / 1e9;
                format!("{ago:.1} s ago")
            }
            None => "never".into(),
        };
        println!(
            "  {}  {}  {}  backlog {}  lag {:.1} s  sent {}  failed {}  last sync {last}",
            q.name,
            p.endpoint,
            if p.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            },
            q.backlog,
            q.lag_secs,
            q.delivered,
            q.dead,
        );
        if let Some(e) = p.error.as_ref().or(q.last_error.as_ref()) {
            println!("    last error: {e}");
        }
    }
    Ok(())
}
