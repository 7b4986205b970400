//! Site replication on the server's side: linking sites into a group (`admin site add`,
//! run on any one site), the group's status, and the peers' messages (`api`, sealed as
//! `wire` says). What is replicated, and how conflicts settle, is the engine's
//! (`engine::site`); the sending is the replication worker's.
//!
//! `admin site add B …` on site A asks B who it is (B must not be in another group),
//! tells B every member of A's group (A itself, reached at the address A reaches B
//! from, with A's root keys), tells every other member about B, then adds B itself.
//! Each site that learns of a new peer queues everything it holds for it (buckets and
//! their settings, identity records, versions), so a new site catches up and its own
//! data reaches the group.

pub(crate) mod api;
pub(crate) mod proxy;
pub(crate) mod wire;

use crate::identity::keys::Keyring;
use crate::remotes::{NewRemote, RemoteError, Remotes};
use engine::{remote_name, PeerQueue, SiteGroup, Store};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;
use wire::{Hello, Join, Kind};

/// How long `add` and `status` wait for a peer's answer.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The management calls of sites, as the management socket takes them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum SiteCall {
    /// Links the site at `endpoint` (with its root keys) into this site's group.
    Add {
        name: String,
        endpoint: String,
        access_key: String,
        secret_key: String,
        region: Option<String>,
        ca_pem: Option<String>,
        /// This site's name in the group (its host name when it starts one).
        me: Option<String>,
        /// Where the peers reach this site (by default, the address it reaches the
        /// new site from, with its own port).
        self_endpoint: Option<String>,
    },
    Status,
    /// Leaves peer `name` out of this site's group (the other sites keep it).
    Remove {
        name: String,
    },
}

/// A peer as `admin site status` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    pub endpoint: String,
    pub reachable: bool,
    pub error: Option<String>,
    #[serde(flatten)]
    pub queue: PeerQueue,
}

/// What `admin site status` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SiteStatus {
    /// This site's name, if it is in a group.
    pub name: Option<String>,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("{0}")]
    Invalid(String),
    #[error("site {name} at {endpoint}: {error}")]
    Peer {
        name: String,
        endpoint: String,
        error: String,
    },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

/// This server as a site.
#[derive(Clone)]
pub struct Sites {
    store: Store,
    remotes: Remotes,
    keyring: Keyring,
    /// The root keys, which peers use to reach this site.
    root: (String, String),
    region: String,
    listen: SocketAddr,
    tls: bool,
}

impl Sites {
    pub fn new(
        store: Store,
        server_key: &[u8; 32],
        root: (String, String),
        region: &str,
        (listen, tls): (SocketAddr, bool),
    ) -> Sites {
        Sites {
            remotes: Remotes::new(store.clone(), server_key),
            keyring: Keyring::new(store.clone(), server_key),
            store,
            root,
            region: region.to_string(),
            listen,
            tls,
        }
    }

    pub async fn apply(&self, call: SiteCall) -> Result<serde_json::Value, SiteError> {
        let value = match call {
            SiteCall::Add {
                name,
                endpoint,
                access_key,
                secret_key,
                region,
                ca_pem,
                me,
                self_endpoint,
            } => {
                let peer = NewRemote {
                    name,
                    endpoint: endpoint.trim_end_matches('/').to_string(),
                    region: region.unwrap_or_else(|| self.region.clone()),
                    access_key,
                    secret_key,
                    ca_pem,
                };
                self.add(peer, me, self_endpoint).await?;
                serde_json::to_value(self.status().await?)
            }
            SiteCall::Status => serde_json::to_value(self.status().await?),
            SiteCall::Remove { name } => {
                self.remove(&name).await?;
                serde_json::to_value(self.status().await?)
            }
        };
        Ok(value.expect("a site status serializes"))
    }

    async fn add(
        &self,
        peer: NewRemote,
        me: Option<String>,
        self_endpoint: Option<String>,
    ) -> Result<(), SiteError> {
        let group = self.store.site_group()?;
        let me = match (&group, me) {
            (Some(g), Some(me)) if g.me != me => {
                return Err(SiteError::Invalid(format!(
                    "this site is {:?} in its group, not {me:?}",
                    g.me
                )))
            }
            (Some(g), _) => g.me.clone(),
            (None, Some(me)) => me,
            (None, None) => hostname(),
        };
        check_name(&me)?;
        check_name(&peer.name)?;
        let mut group = group.unwrap_or(SiteGroup {
            me: me.clone(),
            peers: Vec::new(),
            namespaces: crate::identity::replicated_namespaces(),
        });
        if peer.name == me || group.peers.contains(&peer.name) {
            return Err(SiteError::Invalid(format!(
                "the group has a site named {:?} already",
                peer.name
            )));
        }
        let at_peer = |error: String| SiteError::Peer {
            name: peer.name.clone(),
            endpoint: peer.endpoint.clone(),
            error,
        };
        let client = client_of(&peer);
        let hello = wire::hello(&client, &peer.secret_key, ASK_TIMEOUT)
            .await
            .map_err(|e| at_peer(format!("{e} (check the endpoint and its root keys)")))?;
        if !hello.peers.is_empty() {
            return Err(at_peer(format!(
                "it is in a group already (as {:?}, with {}): add this site from there, or remove its peers first",
                hello.name.unwrap_or_default(),
                hello.peers.join(", ")
            )));
        }
        let endpoint = match self_endpoint {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => self.endpoint_seen_from(&peer.endpoint).map_err(at_peer)?,
        };
        let mut members = vec![NewRemote {
            name: me.clone(),
            endpoint,
            region: self.region.clone(),
            access_key: self.root.0.clone(),
            secret_key: self.root.1.clone(),
            ca_pem: None,
        }];
        for p in &group.peers {
            members.push(self.member(p)?);
        }
        let join = Join {
            you: peer.name.clone(),
            members: members.clone(),
            namespaces: group.namespaces.clone(),
        };
        wire::send(&client, &peer.secret_key, Kind::Join, &join)
            .await
            .map_err(|e| at_peer(e.to_string()))?;
        for other in &members[1..] {
            let join = Join {
                you: other.name.clone(),
                members: vec![peer.clone()],
                namespaces: group.namespaces.clone(),
            };
            let sent = wire::send(&client_of(other), &other.secret_key, Kind::Join, &join).await;
            if let Err(e) = sent {
                // The new site knows it and sends to it; this peer learns of the new one
                // when it is told again (`admin site add` from it, or here once more).
                tracing::warn!(
                    peer = other.name,
                    "could not tell a peer of the new site: {e}"
                );
            }
        }
        group.peers.push(peer.name.clone());
        self.learn(group, &[peer]).await
    }

    /// Registers `new` peers' remotes, saves `group` (which lists them) and queues
    /// everything this site holds for each.
    async fn learn(&self, group: SiteGroup, new: &[NewRemote]) -> Result<(), SiteError> {
        for m in new {
            self.remotes.put_site(NewRemote {
                name: remote_name(&m.name),
                ..m.clone()
            })?;
        }
        let store = self.store.clone();
        let names: Vec<String> = new.iter().map(|m| m.name.clone()).collect();
        tokio::task::spawn_blocking(move || -> engine::Result<()> {
            store.set_site_group(Some(&group))?;
            for name in names {
                let queued = store.site_resync(&name)?;
                tracing::info!(peer = name, queued, "site joined: everything queued for it");
            }
            Ok(())
        })
        .await
        .map_err(|e| SiteError::Invalid(e.to_string()))??;
        Ok(())
    }

    /// A peer told this site of its group (`join`): it adds the members it lacks.
    pub(crate) async fn joined(&self, join: Join) -> Result<(), SiteError> {
        let mut group = match self.store.site_group()? {
            Some(g) if g.me != join.you => {
                return Err(SiteError::Invalid(format!(
                    "this site is {:?} in its group, not {:?}",
                    g.me, join.you
                )))
            }
            Some(g) => g,
            None => SiteGroup {
                me: join.you.clone(),
                peers: Vec::new(),
                namespaces: join.namespaces.clone(),
            },
        };
        let mut new = Vec::new();
        for m in join.members {
            check_name(&m.name)?;
            if m.name != group.me && !group.peers.contains(&m.name) {
                group.peers.push(m.name.clone());
                new.push(m);
            }
        }
        self.learn(group, &new).await
    }

    /// This site's name and peers, for a peer's `hello`.
    pub(crate) fn hello(&self) -> Result<Hello, SiteError> {
        Ok(match self.store.site_group()? {
            Some(g) => Hello {
                name: Some(g.me),
                peers: g.peers,
            },
            None => Hello::default(),
        })
    }

    async fn status(&self) -> Result<SiteStatus, SiteError> {
        let Some(group) = self.store.site_group()? else {
            return Ok(SiteStatus::default());
        };
        let store = self.store.clone();
        let queues = tokio::task::spawn_blocking(move || store.site_queues())
            .await
            .map_err(|e| SiteError::Invalid(e.to_string()))??;
        let asks = queues.into_iter().map(|queue| async move {
            let member = self.member(&queue.name);
            let (endpoint, reached) = match &member {
                Ok(m) => (
                    m.endpoint.clone(),
                    wire::hello(&client_of(m), &m.secret_key, ASK_TIMEOUT)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                ),
                Err(e) => (String::new(), Err(e.to_string())),
            };
            PeerStatus {
                endpoint,
                reachable: reached.is_ok(),
                error: reached.err(),
                queue,
            }
        });
        Ok(SiteStatus {
            name: Some(group.me),
            peers: futures::future::join_all(asks).await,
        })
    }

    async fn remove(&self, name: &str) -> Result<(), SiteError> {
        let Some(mut group) = self.store.site_group()? else {
            return Err(SiteError::Invalid("this site is in no group".into()));
        };
        if !group.peers.iter().any(|p| p == name) {
            return Err(SiteError::Invalid(format!("no peer named {name:?}")));
        }
        group.peers.retain(|p| p != name);
        let store = self.store.clone();
        let left = (!group.peers.is_empty()).then_some(group);
        tokio::task::spawn_blocking(move || store.set_site_group(left.as_ref()))
            .await
            .map_err(|e| SiteError::Invalid(e.to_string()))??;
        self.remotes.remove_site(&remote_name(name))?;
        Ok(())
    }

    /// A peer as members are told of it: its remote, secret opened, named after it.
    fn member(&self, peer: &str) -> Result<NewRemote, SiteError> {
        let r = self.remotes.opened(&remote_name(peer))?;
        Ok(NewRemote {
            name: peer.to_string(),
            ..r
        })
    }

    /// This site's endpoint as a peer at `peer_endpoint` reaches it: the local address
    /// of a connection to the peer, with this server's port and scheme.
    fn endpoint_seen_from(&self, peer_endpoint: &str) -> Result<String, String> {
        let uri: hyper::Uri = peer_endpoint
            .parse()
            .map_err(|e| format!("the endpoint is not a URL: {e}"))?;
        let host = uri.host().ok_or("the endpoint has no host")?;
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let addr = (host.trim_matches(['[', ']']), port)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("the endpoint's host has no address")?;
        let conn = TcpStream::connect_timeout(&addr, ASK_TIMEOUT).map_err(|e| e.to_string())?;
        let ip = conn.local_addr().map_err(|e| e.to_string())?.ip();
        let scheme = if self.tls { "https" } else { "http" };
        Ok(format!(
            "{scheme}://{}",
            SocketAddr::new(ip, self.listen.port())
        ))
    }

    /// An access key's record from a peer, resealed under this server's key.
    pub(crate) fn import_key(&self, access_key: &str, record: &[u8]) -> engine::Result<Vec<u8>> {
        self.keyring
            .reseal_in(access_key, record, &wire::secret_key_for(&self.root.1))
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn root(&self) -> &(String, String) {
        &self.root
    }
}

/// The client of a member, as remotes' are made.
fn client_of(m: &NewRemote) -> aws_sdk_s3::Client {
    crate::remote::client(
        &m.endpoint,
        &m.region,
        (&m.access_key, &m.secret_key),
        m.ca_pem.as_deref(),
    )
}

fn check_name(name: &str) -> Result<(), SiteError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    match ok {
        true => Ok(()),
        false => Err(SiteError::Invalid(format!(
            "site name {name:?}: use 1 to 32 letters, digits, '-' or '_'"
        ))),
    }
}

fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || c == '-' {
            true => c,
            false => '-',
        })
        .take(32)
        .collect();
    match name.is_empty() {
        true => "site".into(),
        false => name,
    }
}
