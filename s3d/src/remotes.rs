//! Remote S3 endpoints (`cybs3 admin remote add|list|remove`): other cybs3 servers, or
//! any S3 system (Ceph RGW, Garage, MinIO, AWS), that storage tiers name (`admin tier add
//! CLASS --remote NAME`). Kept as server records (`remote` namespace); the secret key is
//! sealed under the server's key with the tiers' sealing, so a tier takes it as it is,
//! and the CA certificates a private endpoint is signed by are kept with it (PEM) and
//! trusted by every client of that endpoint.

use engine::{RemoteTier, Store, Tier};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The server records' namespace.
const NS: &str = "remote";
/// How long `add` waits for the endpoint to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A remote as `admin remote add` gives it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewRemote {
    pub name: String,
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    /// PEM certificates of the CA the endpoint's certificate is signed by.
    pub ca_pem: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Stored {
    name: String,
    endpoint: String,
    region: String,
    access_key: String,
    sealed_secret: Vec<u8>,
    ca_pem: Option<String>,
    added_ns: u64,
}

/// A remote as `admin remote list` shows it: never the secret, not even sealed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteInfo {
    pub name: String,
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    /// It is trusted through a CA of its own (`--ca-file`).
    pub private_ca: bool,
    /// The storage classes whose tier is on it.
    pub tiers: Vec<String>,
}

/// The management calls of remotes, as the management socket takes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum RemoteCall {
    Add(Box<NewRemote>),
    List,
    Remove {
        name: String,
    },
    /// The remote as a tier in `bucket` under `prefix` (its secret sealed).
    Tier {
        name: String,
        bucket: String,
        prefix: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Invalid(String),
    #[error("no remote named {0:?}: see `cybs3 admin remote list`")]
    NoSuchRemote(String),
    #[error("a remote named {0:?} exists: remove it first")]
    Exists(String),
    #[error("remote {name:?} holds the tier of storage class {class}: remove that first (`cybs3 admin tier remove {class}`)")]
    InUse { name: String, class: String },
    #[error("bucket {bucket} replicates to remote {name:?}: remove that rule first (DeleteBucketReplication)")]
    Replicated { name: String, bucket: String },
    #[error("remote {name:?} did not answer ListBuckets at {endpoint}: {error} (check the endpoint, the keys and, for https with a private CA, --ca-file)")]
    Unreachable {
        name: String,
        endpoint: String,
        error: String,
    },
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

/// The remotes of one server.
#[derive(Clone)]
pub struct Remotes {
    store: Store,
    server_key: [u8; 32],
}

impl Remotes {
    pub fn new(store: Store, server_key: &[u8; 32]) -> Remotes {
        Remotes {
            store,
            server_key: *server_key,
        }
    }

    /// Checks a new remote before it is added: a valid name and endpoint, and an answer
    /// to ListBuckets with its keys.
    pub async fn check(&self, new: &NewRemote) -> Result<(), RemoteError> {
        check_name(&new.name)?;
        let host = ["http://", "https://"]
            .iter()
            .find_map(|scheme| new.endpoint.strip_prefix(scheme))
            .map(|rest| rest.split('/').next().unwrap_or(""));
        if host.is_none_or(str::is_empty) {
            return Err(RemoteError::Invalid(format!(
                "endpoint {:?}: give http://HOST[:PORT] or https://HOST[:PORT]",
                new.endpoint
            )));
        }
        if let Some(pem) = &new.ca_pem {
            crate::remote::trust_store(pem).map_err(RemoteError::Invalid)?;
        }
        let client = crate::remote::client(
            &new.endpoint,
            &new.region,
            (&new.access_key, &new.secret_key),
            new.ca_pem.as_deref(),
        );
        let unreachable = |error: String| RemoteError::Unreachable {
            name: new.name.clone(),
            endpoint: new.endpoint.clone(),
            error,
        };
        match tokio::time::timeout(CHECK_TIMEOUT, client.list_buckets().send()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(crate::remote::error_text(&e))),
            Err(_) => Err(unreachable(format!("no answer within {CHECK_TIMEOUT:?}"))),
        }
    }

    /// Answers one management call (JSON out); `Add` after [`Remotes::check`].
    pub fn apply(&self, call: RemoteCall) -> Result<serde_json::Value, RemoteError> {
        let json = |v: serde_json::Result<serde_json::Value>| v.unwrap_or_default();
        Ok(match call {
            RemoteCall::Add(new) => json(serde_json::to_value(self.add(*new)?)),
            RemoteCall::List => json(serde_json::to_value(self.list()?)),
            RemoteCall::Remove { name } => {
                self.remove(&name)?;
                serde_json::json!({ "removed": name })
            }
            RemoteCall::Tier {
                name,
                bucket,
                prefix,
            } => json(serde_json::to_value(self.tier(&name, bucket, prefix)?)),
        })
    }

    fn add(&self, new: NewRemote) -> Result<RemoteInfo, RemoteError> {
        check_name(&new.name)?;
        if self.stored(&new.name)?.is_some() {
            return Err(RemoteError::Exists(new.name));
        }
        Ok(self.info(&self.write(new)?))
    }

    /// Adds or replaces a site peer's remote (`site.NAME`, a name users cannot take).
    pub(crate) fn put_site(&self, new: NewRemote) -> Result<(), RemoteError> {
        self.write(new).map(drop)
    }

    /// Keeps `new`, its secret sealed.
    fn write(&self, new: NewRemote) -> Result<Stored, RemoteError> {
        let stored = Stored {
            name: new.name.clone(),
            endpoint: new.endpoint.trim_end_matches('/').to_string(),
            region: new.region,
            access_key: new.access_key,
            sealed_secret: crate::remote::seal_secret(&self.server_key, &new.secret_key),
            ca_pem: new.ca_pem,
            added_ns: crate::ctx::now_ns(),
        };
        let bytes = serde_json::to_vec(&stored).expect("a remote serializes");
        self.store.set_server_record(NS, &new.name, Some(bytes))?;
        Ok(stored)
    }

    /// Removes a site peer's remote.
    pub(crate) fn remove_site(&self, name: &str) -> Result<(), RemoteError> {
        self.store.set_server_record(NS, name, None)?;
        Ok(())
    }

    /// Remote `name` with its secret opened.
    pub(crate) fn opened(&self, name: &str) -> Result<NewRemote, RemoteError> {
        let r = self
            .stored(name)?
            .ok_or_else(|| RemoteError::NoSuchRemote(name.to_string()))?;
        let secret_key =
            crate::sealed::open(&self.server_key, crate::remote::AAD, &r.sealed_secret)
                .ok_or_else(|| {
                    RemoteError::Invalid(format!(
                        "the secret of remote {name:?} cannot be opened with this server's key"
                    ))
                })?;
        Ok(NewRemote {
            name: r.name,
            endpoint: r.endpoint,
            region: r.region,
            access_key: r.access_key,
            secret_key,
            ca_pem: r.ca_pem,
        })
    }

    fn list(&self) -> Result<Vec<RemoteInfo>, RemoteError> {
        let mut all = Vec::new();
        for (_, bytes) in self.store.server_records(NS)? {
            all.push(self.info(&decode(&bytes)?));
        }
        Ok(all)
    }

    /// Removes a remote no tier is on and no replication rule names.
    fn remove(&self, name: &str) -> Result<(), RemoteError> {
        check_name(name)?;
        let r = self
            .stored(name)?
            .ok_or_else(|| RemoteError::NoSuchRemote(name.to_string()))?;
        if let Some(class) = self.tiers_on(&r).into_iter().next() {
            return Err(RemoteError::InUse {
                name: name.to_string(),
                class,
            });
        }
        for b in self.store.list_buckets()? {
            let config = self.store.replication(&b.name)?.unwrap_or_default();
            if config.rules.iter().any(|rule| rule.remote == name) {
                return Err(RemoteError::Replicated {
                    name: name.to_string(),
                    bucket: b.name,
                });
            }
        }
        self.store.set_server_record(NS, name, None)?;
        Ok(())
    }

    fn tier(&self, name: &str, bucket: String, prefix: String) -> Result<Tier, RemoteError> {
        let r = self
            .stored(name)?
            .ok_or_else(|| RemoteError::NoSuchRemote(name.to_string()))?;
        Ok(Tier::Remote(RemoteTier {
            endpoint: r.endpoint,
            bucket,
            prefix,
            region: r.region,
            access_key: r.access_key,
            sealed_secret: r.sealed_secret,
        }))
    }

    /// Remote `name` as a tier in `bucket` (its secret sealed), for its cached client.
    pub(crate) fn as_tier(&self, name: &str, bucket: &str) -> Result<RemoteTier, RemoteError> {
        match self.tier(name, bucket.to_string(), String::new())? {
            Tier::Remote(t) => Ok(t),
            Tier::Pool(_) => unreachable!("a remote is a remote tier"),
        }
    }

    /// Checks that `bucket` on remote `name` exists with versioning enabled, as a
    /// replication destination must.
    pub(crate) async fn versioned(
        &self,
        name: &str,
        bucket: &str,
        timeout: Duration,
    ) -> Result<(), RemoteError> {
        let r = self.opened(name)?;
        let client = crate::remote::client(
            &r.endpoint,
            &r.region,
            (&r.access_key, &r.secret_key),
            r.ca_pem.as_deref(),
        );
        let asked = client.get_bucket_versioning().bucket(bucket).send();
        let status = match tokio::time::timeout(timeout, asked).await {
            Ok(Ok(out)) => out.status().map(|s| s.as_str().to_string()),
            // Some S3 servers (moto) name the answer's root element otherwise, which
            // the SDK refuses to parse: the status is read from the answer itself.
            Ok(Err(e)) if crate::remote::answered_ok(&e) => {
                let body = e.raw_response().and_then(|r| r.body().bytes());
                let enabled = body.is_some_and(|b| {
                    String::from_utf8_lossy(b).contains("<Status>Enabled</Status>")
                });
                enabled.then(|| "Enabled".to_string())
            }
            Ok(Err(e)) => {
                return Err(RemoteError::Invalid(format!(
                    "Destination bucket must exist: {name}/{bucket} answered {}",
                    crate::remote::error_text(&e)
                )))
            }
            Err(_) => {
                return Err(RemoteError::Unreachable {
                    name: name.to_string(),
                    endpoint: r.endpoint,
                    error: format!("no answer within {timeout:?}"),
                })
            }
        };
        match status.as_deref() {
            Some("Enabled") => Ok(()),
            _ => Err(RemoteError::Invalid(format!(
                "Destination bucket must have versioning enabled: {name}/{bucket} has not"
            ))),
        }
    }

    /// The CA certificates a registered remote at `endpoint` is trusted through.
    pub(crate) fn ca_for(&self, endpoint: &str) -> Option<String> {
        let records = self.store.server_records(NS).ok()?;
        records
            .iter()
            .filter_map(|(_, bytes)| decode(bytes).ok())
            .find(|r| r.endpoint == endpoint.trim_end_matches('/'))
            .and_then(|r| r.ca_pem)
    }

    /// The storage classes whose tier is on remote `r` (same endpoint and key).
    fn tiers_on(&self, r: &Stored) -> Vec<String> {
        self.store
            .storage_classes()
            .into_iter()
            .filter(|c| {
                matches!(&c.tier, Tier::Remote(t) if t.endpoint == r.endpoint && t.access_key == r.access_key)
            })
            .map(|c| c.class)
            .collect()
    }

    fn info(&self, r: &Stored) -> RemoteInfo {
        RemoteInfo {
            name: r.name.clone(),
            endpoint: r.endpoint.clone(),
            region: r.region.clone(),
            access_key: r.access_key.clone(),
            private_ca: r.ca_pem.is_some(),
            tiers: self.tiers_on(r),
        }
    }

    fn stored(&self, name: &str) -> Result<Option<Stored>, RemoteError> {
        self.store
            .server_record(NS, name)?
            .map(|b| decode(&b))
            .transpose()
    }
}

fn decode(bytes: &[u8]) -> Result<Stored, RemoteError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RemoteError::Invalid(format!("a remote record is damaged: {e}")))
}

/// Names appear in ARNs and lanes: letters, digits, '-', '_', '.', at most 64.
fn check_name(name: &str) -> Result<(), RemoteError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if engine::peer_of(name).is_some() {
        return Err(RemoteError::Invalid(format!(
            "remote name {name:?}: names beginning with \"site.\" are site peers' (`cybs3 admin site`)"
        )));
    }
    match ok {
        true => Ok(()),
        false => Err(RemoteError::Invalid(format!(
            "remote name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ))),
    }
}
