//! Where data goes: `cybs3 admin pool add|list|drain` (the store's pools of drives) and
//! `cybs3 admin tier add|list|remove` (storage classes bound to pools), through the
//! running server's management socket or, when it is stopped, on the store directly.

use crate::admin;
use crate::iam::DataArg;
use crate::server::{human_bytes, open_stopped, store_dir};
use anyhow::{Context, Result};
use engine::{Ec, PoolInfo, PoolState, RemoteTier, StorageClass, Tier};
use hyper::Method;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum PoolCmd {
    /// Add a pool of empty drives; new objects may go to it at once, with no restart
    Add {
        /// A name for the pool (lowercase letters, digits, '-' and '_')
        name: String,
        /// The pool's drive directories, comma-separated (empty or not yet there)
        #[arg(long, value_delimiter = ',', required = true, value_name = "DIR,DIR,…")]
        drives: Vec<PathBuf>,
        /// Data+parity split [default: from the drive count, as for `server start`]
        #[arg(long, value_name = "K+M")]
        ec: Option<Ec>,
        #[arg(long)]
        json: bool,
    },
    /// List the pools: drives, erasure layout, capacity, used space and state
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move every object off a pool while the server serves, then mark it drained so
    /// that its drives can be removed (a restart in the middle resumes it)
    Drain {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum TierCmd {
    /// Bind a storage class to a pool (objects written in the class and lifecycle
    /// transitions to it put their data there) or to a bucket of another S3 system
    /// (lifecycle transitions move objects there)
    Add {
        /// STANDARD, STANDARD_IA, GLACIER, DEEP_ARCHIVE, or any upper-case name
        class: String,
        /// The pool that holds the class's data
        #[arg(
            long,
            value_name = "NAME",
            required_unless_present_any = ["endpoint", "remote"],
            conflicts_with_all = ["endpoint", "remote"]
        )]
        pool: Option<String>,
        /// A registered remote (`cybs3 admin remote add`) that holds the class's data,
        /// in --bucket under --prefix
        #[arg(
            long,
            value_name = "NAME",
            conflicts_with = "endpoint",
            requires = "bucket"
        )]
        remote: Option<String>,
        #[command(flatten)]
        at: RemoteArgs,
        /// Objects in the class cannot be read until restored (RestoreObject), as in
        /// GLACIER and DEEP_ARCHIVE, which are archives anyway
        #[arg(long)]
        archive: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the storage classes and their pools
    List {
        #[arg(long)]
        json: bool,
    },
    /// Unbind a storage class; refused while any object is in it
    Remove { class: String },
}

/// A remote tier: where in which S3 system a class keeps its objects.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// The remote S3 endpoint, e.g. https://s3.example.org
    #[arg(long, value_name = "URL", requires_all = ["bucket", "access_key", "secret_key"])]
    endpoint: Option<String>,
    /// Its bucket (it must exist)
    #[arg(long, value_name = "BUCKET")]
    bucket: Option<String>,
    /// Put in front of every object name there, ending in '/'
    #[arg(long, value_name = "PREFIX", default_value = "")]
    prefix: String,
    #[arg(long, value_name = "KEY")]
    access_key: Option<String>,
    /// Kept sealed under the server's key
    #[arg(
        long,
        value_name = "SECRET",
        env = "CYBS3_TIER_SECRET_KEY",
        hide_env_values = true
    )]
    secret_key: Option<String>,
    #[arg(long, value_name = "REGION", default_value = "us-east-1")]
    region: String,
}

/// A class as `admin tier list` shows it: never the secret, not even sealed.
#[derive(Debug, Serialize, Deserialize)]
struct ClassView {
    class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<serde_json::Value>,
    archive: bool,
}

impl From<StorageClass> for ClassView {
    fn from(c: StorageClass) -> ClassView {
        let (pool, remote) = match c.tier {
            Tier::Pool(p) => (Some(p), None),
            Tier::Remote(r) => (
                None,
                Some(serde_json::json!({
                    "endpoint": r.endpoint,
                    "bucket": r.bucket,
                    "prefix": r.prefix,
                    "region": r.region,
                    "access_key": r.access_key,
                })),
            ),
        };
        ClassView {
            class: c.class,
            pool,
            remote,
            archive: c.archive,
        }
    }
}

/// A management call about pools and classes, as the socket takes it (`POST /placement`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PlacementCall {
    PoolAdd {
        name: String,
        drives: Vec<PathBuf>,
        ec: Option<Ec>,
    },
    PoolList,
    PoolDrain {
        name: String,
    },
    TierAdd {
        class: String,
        tier: Tier,
        archive: bool,
    },
    TierList,
    TierRemove {
        class: String,
    },
}

impl PlacementCall {
    /// Applies the call to an open store. A drain on a store no server runs is done
    /// here and now; a server's drain goes on in its background.
    pub fn apply(self, store: &engine::Store, serving: bool) -> Result<serde_json::Value> {
        Ok(match self {
            PlacementCall::PoolAdd { name, drives, ec } => {
                serde_json::to_value(store.add_pool(&name, drives, ec)?)?
            }
            PlacementCall::PoolList => serde_json::to_value(store.pools())?,
            PlacementCall::TierAdd {
                class,
                tier,
                archive,
            } => serde_json::to_value(store.add_storage_class(&class, tier, archive)?)?,
            PlacementCall::TierList => serde_json::to_value(store.storage_classes())?,
            PlacementCall::TierRemove { class } => {
                store.remove_storage_class(&class)?;
                serde_json::Value::Null
            }
            PlacementCall::PoolDrain { name } => {
                store.drain_pool(&name)?;
                if !serving {
                    store.run_drains()?;
                }
                let pool = store.pools().into_iter().find(|p| p.name == name);
                serde_json::to_value(pool)?
            }
        })
    }
}

pub fn tier(cmd: TierCmd, data: DataArg) -> Result<()> {
    match cmd {
        TierCmd::Add {
            class,
            pool,
            remote,
            at: remote_at,
            archive,
            json,
        } => {
            let remote_named = remote.map(|name| s3d::RemoteCall::Tier {
                name,
                bucket: remote_at.bucket.clone().unwrap_or_default(),
                prefix: remote_at.prefix.clone(),
            });
            let tier = match (pool, remote_named, remote_at.endpoint) {
                (Some(pool), _, _) => Tier::Pool(pool),
                (None, Some(call), _) => {
                    serde_json::from_value(crate::remote::ask(data.clone(), &call)?)?
                }
                (None, None, Some(endpoint)) => {
                    let key = store_dir(data.data.clone()).ensure_server_key()?;
                    let secret = remote_at.secret_key.unwrap_or_default();
                    Tier::Remote(RemoteTier {
                        endpoint: endpoint.trim_end_matches('/').to_string(),
                        bucket: remote_at.bucket.unwrap_or_default(),
                        prefix: remote_at.prefix,
                        region: remote_at.region,
                        access_key: remote_at.access_key.unwrap_or_default(),
                        sealed_secret: s3d::seal_secret(&key, &secret),
                    })
                }
                (None, None, None) => unreachable!("clap requires --pool, --remote or --endpoint"),
            };
            let call = PlacementCall::TierAdd {
                class,
                tier,
                archive,
            };
            let c: StorageClass = serde_json::from_value(self::call(data, call)?)?;
            show_classes(&[c], json)
        }
        TierCmd::List { json } => {
            let classes: Vec<StorageClass> =
                serde_json::from_value(call(data, PlacementCall::TierList)?)?;
            show_classes(&classes, json)
        }
        TierCmd::Remove { class } => call(data, PlacementCall::TierRemove { class }).map(drop),
    }
}

fn show_classes(classes: &[StorageClass], json: bool) -> Result<()> {
    let views: Vec<ClassView> = classes.iter().cloned().map(ClassView::from).collect();
    if json {
        println!("{}", serde_json::to_string(&views)?);
        return Ok(());
    }
    if classes.is_empty() {
        println!("no storage class is bound: everything is STANDARD, placed by free space over the pools");
    }
    for c in classes {
        let archive = if c.archive {
            "  (archive: restore before reading)"
        } else {
            ""
        };
        match &c.tier {
            Tier::Pool(pool) => println!("{}  pool {pool}{archive}", c.class),
            Tier::Remote(r) => println!(
                "{}  remote {}/{}/{}{archive}",
                c.class, r.endpoint, r.bucket, r.prefix
            ),
        }
    }
    Ok(())
}

pub fn pool(cmd: PoolCmd, data: DataArg) -> Result<()> {
    match cmd {
        PoolCmd::Add {
            name,
            drives,
            ec,
            json,
        } => {
            // The server resolves paths from its own directory: send them whole.
            let drives = drives
                .iter()
                .map(std::path::absolute)
                .collect::<std::io::Result<Vec<_>>>()
                .context("cannot resolve a drive path")?;
            let call = PlacementCall::PoolAdd { name, drives, ec };
            let pool: PoolInfo = serde_json::from_value(self::call(data, call)?)?;
            show(&[pool], json)
        }
        PoolCmd::List { json } => {
            let pools: Vec<PoolInfo> =
                serde_json::from_value(call(data, PlacementCall::PoolList)?)?;
            show(&pools, json)
        }
        PoolCmd::Drain { name, json } => {
            let pool: PoolInfo =
                serde_json::from_value(call(data, PlacementCall::PoolDrain { name })?)?;
            show(std::slice::from_ref(&pool), json)?;
            if pool.state == PoolState::Draining && !json {
                println!(
                    "the server moves its objects in the background; `cybs3 admin pool list` shows when it is drained"
                );
            }
            Ok(())
        }
    }
}

fn show(pools: &[PoolInfo], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(pools)?);
        return Ok(());
    }
    for p in pools {
        let online = p
            .drives
            .iter()
            .filter(|d| d.state == engine::DriveState::Online)
            .count();
        let state = serde_json::to_value(p.state)?;
        println!(
            "{}  {}  {}{}  drives {}/{} online  used {} in {} shard files  free {} of {}",
            p.name,
            p.ec,
            state.as_str().unwrap_or_default(),
            if p.holds_index {
                "  (holds the index)"
            } else {
                ""
            },
            online,
            p.drives.len(),
            human_bytes(p.used_bytes),
            p.shard_files,
            human_bytes(p.free_bytes),
            human_bytes(p.total_bytes),
        );
        for d in &p.drives {
            let problem = d
                .problem
                .as_deref()
                .map(|m| format!("  ({m})"))
                .unwrap_or_default();
            println!("    {}  {:?}{problem}", d.path, d.state);
        }
    }
    Ok(())
}

/// Ask the running server, or apply the call to the stopped store.
fn call(data: DataArg, call: PlacementCall) -> Result<serde_json::Value> {
    let dir = store_dir(data.data);
    if dir.running()?.is_some() {
        let body = serde_json::to_value(&call)?;
        return crate::block_on(admin::call(
            &dir.socket(),
            Method::POST,
            "/placement",
            Some(body),
        ));
    }
    let store = open_stopped(&dir)?;
    call.apply(&store, false)
}
