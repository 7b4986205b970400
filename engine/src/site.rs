//! Site replication: a group of cybs3 servers ("sites") that each replicate everything
//! they are asked to write to every other one, active-active.
//!
//! A site keeps its group in a server record ([`SiteGroup`]): its own name and its
//! peers', each peer reached through a registered remote named [`remote_name`]. With a
//! group, every bucket has one implicit replication rule per peer ([`rules`]): every
//! version, delete marker, removed version and later change of tags or lock goes to the
//! bucket of the same name at every peer, through the same durable lanes as bucket
//! replication (`replication.rs`). Replicas are never replicated again, so a full mesh
//! needs no forwarding and never loops: the origin sends each change to each peer.
//!
//! Bucket settings and server records (IAM's users, groups, policies and keys) go as
//! *states*: the task names the bucket or record, and the sender reads its state when it
//! sends, so a burst of changes sends the last. Each state carries a [`Stamp`] (the
//! time of its last change at its origin and the origin's name): a site applies a state
//! only if its stamp is newer than the one it has, so concurrent changes at two sites
//! settle on the same winner everywhere. A bucket's state goes in the bucket's lane as a
//! barrier (`queue.rs` sends it alone), so a peer has the bucket, with its settings,
//! before the versions queued after it.
//!
//! Versions need no stamp: a replica keeps its source's version id, which is its sort key
//! (modification time, then random bytes), so every site orders a key's versions, and
//! picks its latest, the same way.

use crate::commit::{Clock, Tx};
use crate::error::{Error, Result};
use crate::ops::{self, Op, Out};
use crate::queue::{self, Work};
use crate::record::{self, keys, BucketRecord, BucketStats, Versioning};
use crate::replication::{self, ReplRule, ReplTask, ReplWhat, REPLICATION_ATTR};
use serde::{Deserialize, Serialize};

/// The server-record namespace of the group and the sites' last syncs.
const NS: &str = "site";
const GROUP: &str = "group";
/// The server-record namespace of stamps, by item (`b/BUCKET`, `r/NS/NAME`).
const STAMPS: &str = "site-stamp";
/// The server-record namespace of each peer's last delivered task (Unix ns).
const SYNCED: &str = "site-synced";
/// What the names of peers' remotes begin with; `admin remote add` keeps it for them.
pub const REMOTE_PREFIX: &str = "site.";

/// This site's group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteGroup {
    /// This site's name in the group.
    pub me: String,
    /// The other sites, by name.
    pub peers: Vec<String>,
    /// The server-record namespaces replicated with the group (the server's identity
    /// records).
    pub namespaces: Vec<String>,
}

impl record::Record for SiteGroup {}

/// When an item last changed at its origin, and where: the newer stamp wins, the site
/// name breaking a tie.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub time_ns: u64,
    pub site: String,
}

impl record::Record for Stamp {}

/// A bucket as a site sends it: its record (`None`: deleted) and settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    pub name: String,
    pub stamp: Stamp,
    pub record: Option<BucketRecord>,
    /// Every attribute but the bucket's own replication rules, which are the site's.
    pub attrs: Vec<(String, Vec<u8>)>,
}

/// A server record as a site sends it (`value` `None`: removed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordState {
    pub ns: String,
    pub name: String,
    pub stamp: Stamp,
    pub value: Option<Vec<u8>>,
}

/// The remote a peer is reached through.
pub fn remote_name(peer: &str) -> String {
    format!("{REMOTE_PREFIX}{peer}")
}

/// The peer a remote reaches, if it is a peer's.
pub fn peer_of(remote: &str) -> Option<&str> {
    remote.strip_prefix(REMOTE_PREFIX)
}

pub(crate) fn group_in(tx: &mut Tx) -> Result<Option<SiteGroup>> {
    tx.get(&keys::server(NS, GROUP))
        .map(|b| record::decode(&b))
        .transpose()
}

/// The implicit rules of `bucket`: one per peer, everything, highest priority.
pub(crate) fn rules(group: &SiteGroup, bucket: &str) -> Vec<ReplRule> {
    group
        .peers
        .iter()
        .map(|peer| ReplRule {
            id: format!("site:{peer}"),
            priority: i32::MAX,
            enabled: true,
            filter: replication::FilterForm::Prefix,
            delete_markers: true,
            existing: true,
            replica_modifications: true,
            remote: remote_name(peer),
            bucket: bucket.to_string(),
            site: true,
            ..Default::default()
        })
        .collect()
}

fn stamp_key(item: &str) -> Vec<u8> {
    keys::server(STAMPS, item)
}

fn bucket_item(bucket: &str) -> String {
    format!("b/{bucket}")
}

fn record_item(ns: &str, name: &str) -> String {
    format!("r/{ns}/{name}")
}

fn stamp_in(tx: &mut Tx, item: &str) -> Result<Stamp> {
    Ok(tx
        .get(&stamp_key(item))
        .map(|b| record::decode(&b))
        .transpose()?
        .unwrap_or_default())
}

/// Queues what a local change of settings (`op`, which succeeded) makes the peers do:
/// a bucket's state, or a server record's, stamped now.
pub(crate) fn record(tx: &mut Tx, op: &Op, clock: &mut Clock) -> Result<()> {
    let Some(group) = group_in(tx)? else {
        return Ok(());
    };
    match op {
        Op::CreateBucket { name, .. }
        | Op::DeleteBucket(name)
        | Op::SetVersioning(name, _)
        | Op::SetObjectLock { bucket: name, .. } => changed_bucket(tx, &group, name, clock),
        Op::SetBucketAttr { bucket, name, .. } if name != REPLICATION_ATTR => {
            changed_bucket(tx, &group, bucket, clock)
        }
        Op::SetServerRecord { ns, name, .. } if group.namespaces.contains(ns) => {
            changed_record(tx, &group, ns, name, clock)
        }
        _ => Ok(()),
    }
}

fn stamp_now(tx: &mut Tx, group: &SiteGroup, item: &str, clock: &mut Clock) -> Result<()> {
    let stamp = Stamp {
        time_ns: clock.now(),
        site: group.me.clone(),
    };
    tx.put(stamp_key(item), record::encode(&stamp)?);
    Ok(())
}

fn changed_bucket(tx: &mut Tx, group: &SiteGroup, bucket: &str, clock: &mut Clock) -> Result<()> {
    stamp_now(tx, group, &bucket_item(bucket), clock)?;
    for peer in &group.peers {
        queue::push(tx, Work::Replicate(bucket_task(peer, bucket)))?;
    }
    Ok(())
}

fn changed_record(
    tx: &mut Tx,
    group: &SiteGroup,
    ns: &str,
    name: &str,
    clock: &mut Clock,
) -> Result<()> {
    stamp_now(tx, group, &record_item(ns, name), clock)?;
    for peer in &group.peers {
        queue::push(tx, Work::Replicate(record_task(peer, ns, name)))?;
    }
    Ok(())
}

fn bucket_task(peer: &str, bucket: &str) -> ReplTask {
    ReplTask {
        remote: remote_name(peer),
        target: bucket.to_string(),
        bucket: bucket.to_string(),
        key: String::new(),
        version_id: String::new(),
        sort: [0; 16],
        mtime_ns: 0,
        what: ReplWhat::Bucket,
        storage_class: None,
        kms_key: None,
    }
}

/// A record's task, in the peer's lane of server-wide state (no bucket): its key is
/// `NS/NAME`.
fn record_task(peer: &str, ns: &str, name: &str) -> ReplTask {
    ReplTask {
        remote: remote_name(peer),
        target: String::new(),
        bucket: String::new(),
        key: format!("{ns}/{name}"),
        version_id: String::new(),
        sort: [0; 16],
        mtime_ns: 0,
        what: ReplWhat::Record,
        storage_class: None,
        kms_key: None,
    }
}

/// Applies a peer's bucket state if it is newer than this site's; whether it was.
fn apply_bucket(tx: &mut Tx, state: &BucketState, freed: &mut Vec<record::DataId>) -> Result<bool> {
    let item = bucket_item(&state.name);
    if state.stamp <= stamp_in(tx, &item)? {
        return Ok(false);
    }
    let name = &state.name;
    let exists = tx.get(&keys::bucket(name)).is_some();
    match &state.record {
        None if exists => ops::delete_bucket(tx, name, freed)?,
        None => {}
        Some(rec) => {
            let mut rec = rec.clone();
            rec.name = name.clone();
            if !exists {
                tx.put(keys::stats(name), record::encode(&BucketStats::default())?);
            }
            tx.put(keys::bucket(name), record::encode(&rec)?);
            for (k, _) in tx.scan(&keys::attr(name, "")) {
                if k != keys::attr(name, REPLICATION_ATTR) {
                    tx.del(k);
                }
            }
            for (attr, value) in &state.attrs {
                if attr != REPLICATION_ATTR {
                    tx.put(keys::attr(name, attr), value.clone());
                }
            }
        }
    }
    tx.put(stamp_key(&item), record::encode(&state.stamp)?);
    Ok(true)
}

/// Applies a peer's server record if it is newer than this site's; whether it was.
fn apply_record(tx: &mut Tx, state: &RecordState) -> Result<bool> {
    let item = record_item(&state.ns, &state.name);
    if state.stamp <= stamp_in(tx, &item)? {
        return Ok(false);
    }
    let at = keys::server(&state.ns, &state.name);
    match &state.value {
        Some(v) => tx.put(at, v.clone()),
        None => tx.del(at),
    }
    tx.put(stamp_key(&item), record::encode(&state.stamp)?);
    Ok(true)
}

/// A task to a peer left its queue delivered: the peer's last sync is now.
pub(crate) fn delivered(tx: &mut Tx, remote: &str, now_ns: u64) {
    if let Some(peer) = peer_of(remote) {
        tx.put(keys::server(SYNCED, peer), now_ns.to_be_bytes().to_vec());
    }
}

/// The operations of site replication.
pub(crate) enum SiteOp {
    SetGroup(Option<SiteGroup>),
    Bucket(BucketState),
    Record(RecordState),
    /// Queues everything this site has for a new peer: each bucket's state and each
    /// replicated record (`buckets`, `records`), and the versions at `versions`.
    Resync {
        peer: String,
        buckets: Vec<String>,
        records: Vec<(String, String)>,
        versions: Vec<(String, String, [u8; 16])>,
    },
}

pub(crate) fn apply(
    tx: &mut Tx,
    op: &SiteOp,
    clock: &mut Clock,
    freed: &mut Vec<record::DataId>,
) -> Result<Out> {
    match op {
        SiteOp::SetGroup(group) => {
            let at = keys::server(NS, GROUP);
            match group {
                Some(g) => {
                    tx.put(at, record::encode(g)?);
                    // Site replication needs every bucket versioned, as on MinIO: a
                    // version id is what lets sites agree on a key's history.
                    for (k, v) in tx.scan(&[keys::BUCKET]) {
                        let mut rec: BucketRecord = record::decode(&v)?;
                        if rec.versioning != Versioning::Enabled {
                            rec.versioning = Versioning::Enabled;
                            tx.put(k, record::encode(&rec)?);
                        }
                    }
                }
                None => tx.del(at),
            }
            Ok(Out::Done)
        }
        SiteOp::Bucket(state) => Ok(Out::Applied(apply_bucket(tx, state, freed)?)),
        SiteOp::Record(state) => Ok(Out::Applied(apply_record(tx, state)?)),
        SiteOp::Resync {
            peer,
            buckets,
            records,
            versions,
        } => {
            let Some(group) = group_in(tx)? else {
                return Ok(Out::Queued(0));
            };
            let mut queued = 0;
            for b in buckets {
                if tx.get(&stamp_key(&bucket_item(b))).is_none() {
                    stamp_now(tx, &group, &bucket_item(b), clock)?;
                }
                queue::push(tx, Work::Replicate(bucket_task(peer, b)))?;
                queued += 1;
            }
            for (ns, name) in records {
                if tx.get(&stamp_key(&record_item(ns, name))).is_none() {
                    stamp_now(tx, &group, &record_item(ns, name), clock)?;
                }
                queue::push(tx, Work::Replicate(record_task(peer, ns, name)))?;
                queued += 1;
            }
            let rule = rules(&group, "")
                .into_iter()
                .find(|r| r.remote == remote_name(peer));
            if let Some(mut rule) = rule {
                for (b, key, sort) in versions {
                    rule.bucket = b.clone();
                    queued += replication::resend(tx, &rule, b, key, sort)?;
                }
            }
            Ok(Out::Queued(queued))
        }
    }
}

/// A peer in `admin site status`: its queue, lag and last sync.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeerQueue {
    pub name: String,
    /// Tasks waiting for the peer, over all its lanes.
    pub backlog: u64,
    pub delivered: u64,
    pub failed_tries: u64,
    pub dead: u64,
    /// How long the oldest waiting task has waited (s).
    pub lag_secs: f64,
    /// When a task last reached the peer (Unix ns), if one did.
    pub last_sync_ns: Option<u64>,
    pub last_error: Option<String>,
}

/// A site's group as health checks and `server status` show it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SiteHealth {
    pub name: String,
    pub peers: Vec<PeerQueue>,
}

impl SiteHealth {
    /// The peers whose oldest waiting change is older than `max_lag_secs`: this site is
    /// out of touch with them.
    pub fn behind(&self, max_lag_secs: f64) -> Vec<&PeerQueue> {
        self.peers
            .iter()
            .filter(|p| p.lag_secs > max_lag_secs)
            .collect()
    }
}

impl crate::Store {
    /// This site's group and each peer's queue, if it is in a group.
    pub fn site_health(&self) -> Result<Option<SiteHealth>> {
        let Some(group) = self.site_group()? else {
            return Ok(None);
        };
        Ok(Some(SiteHealth {
            name: group.me,
            peers: self.site_queues()?,
        }))
    }

    /// This site's group, if it is in one.
    pub fn site_group(&self) -> Result<Option<SiteGroup>> {
        self.server_record(NS, GROUP)?
            .map(|b| record::decode(&b))
            .transpose()
    }

    /// Sets (or, with `None`, leaves) this site's group. Joining turns versioning on for
    /// every bucket.
    pub fn set_site_group(&self, group: Option<&SiteGroup>) -> Result<()> {
        self.submit(Op::Site(SiteOp::SetGroup(group.cloned())))
            .map(drop)
    }

    /// A bucket's state to send to a peer: what is here now.
    pub fn site_bucket_state(&self, bucket: &str) -> Result<BucketState> {
        let (rtxn, db) = self.read()?;
        let stamp = db
            .get(&rtxn, &stamp_key(&bucket_item(bucket)))?
            .map(record::decode)
            .transpose()?
            .unwrap_or_default();
        let record: Option<BucketRecord> = db
            .get(&rtxn, &keys::bucket(bucket))?
            .map(record::decode)
            .transpose()?;
        let mut attrs = Vec::new();
        if record.is_some() {
            let base = keys::attr(bucket, "");
            for kv in db.prefix_iter(&rtxn, &base)? {
                let (k, v) = kv?;
                let name = String::from_utf8_lossy(&k[base.len()..]).into_owned();
                if name != REPLICATION_ATTR {
                    attrs.push((name, v.to_vec()));
                }
            }
        }
        Ok(BucketState {
            name: bucket.to_string(),
            stamp,
            record,
            attrs,
        })
    }

    /// A server record's state to send to a peer.
    pub fn site_record_state(&self, ns: &str, name: &str) -> Result<RecordState> {
        let (rtxn, db) = self.read()?;
        let stamp = db
            .get(&rtxn, &stamp_key(&record_item(ns, name)))?
            .map(record::decode)
            .transpose()?
            .unwrap_or_default();
        let value = db.get(&rtxn, &keys::server(ns, name))?.map(<[u8]>::to_vec);
        Ok(RecordState {
            ns: ns.to_string(),
            name: name.to_string(),
            stamp,
            value,
        })
    }

    /// Applies a peer's bucket state if newer than this site's; whether it was. A
    /// deletion of a bucket that still has versions here is refused (BucketNotEmpty).
    pub fn apply_site_bucket(&self, state: BucketState) -> Result<bool> {
        crate::validate_bucket_name(&state.name)?;
        match self.submit(Op::Site(SiteOp::Bucket(state)))? {
            Out::Applied(applied) => Ok(applied),
            _ => unreachable!("a site state answers Applied"),
        }
    }

    /// Applies a peer's server record if newer than this site's; whether it was.
    pub fn apply_site_record(&self, state: RecordState) -> Result<bool> {
        if state.ns.is_empty() || state.name.is_empty() || state.ns.contains('\0') {
            return Err(Error::InvalidKey(
                "a server record needs a namespace and a name",
            ));
        }
        match self.submit(Op::Site(SiteOp::Record(state)))? {
            Out::Applied(applied) => Ok(applied),
            _ => unreachable!("a site state answers Applied"),
        }
    }

    /// Queues everything this site holds for `peer` (just joined): every bucket's state,
    /// every replicated record, and every version that is not a replica (the peer gets
    /// those from their origins), a page per commit; how many tasks.
    pub fn site_resync(&self, peer: &str) -> Result<u64> {
        let Some(group) = self.site_group()? else {
            return Ok(0);
        };
        let buckets: Vec<String> = self.list_buckets()?.into_iter().map(|b| b.name).collect();
        let mut records = Vec::new();
        for ns in &group.namespaces {
            for (name, _) in self.server_records(ns)? {
                records.push((ns.clone(), name));
            }
        }
        let mut queued = self.resync_page(peer, buckets.clone(), records, Vec::new())?;
        for bucket in &buckets {
            let mut q = crate::VersionQuery {
                max: 500,
                ..Default::default()
            };
            loop {
                let page = self.list_versions(bucket, &q)?;
                let versions = page
                    .versions
                    .iter()
                    .map(|e| (bucket.clone(), e.version.key.clone(), e.version.sort))
                    .collect();
                queued += self.resync_page(peer, Vec::new(), Vec::new(), versions)?;
                if !page.truncated {
                    break;
                }
                q.key_marker = page.next_key;
                q.version_marker = page.next_version;
            }
        }
        Ok(queued)
    }

    fn resync_page(
        &self,
        peer: &str,
        buckets: Vec<String>,
        records: Vec<(String, String)>,
        versions: Vec<(String, String, [u8; 16])>,
    ) -> Result<u64> {
        let op = SiteOp::Resync {
            peer: peer.to_string(),
            buckets,
            records,
            versions,
        };
        match self.submit(Op::Site(op))? {
            Out::Queued(n) => Ok(n),
            _ => unreachable!("a resync answers Queued"),
        }
    }

    /// Each peer's queue: its lanes' counters summed, the oldest task's wait, and the
    /// last delivery.
    pub fn site_queues(&self) -> Result<Vec<PeerQueue>> {
        let Some(group) = self.site_group()? else {
            return Ok(Vec::new());
        };
        let now = Clock::new().now();
        let mut all = Vec::new();
        for peer in &group.peers {
            let prefix = replication::lane(&remote_name(peer), "");
            let mut q = PeerQueue {
                name: peer.clone(),
                ..Default::default()
            };
            let mut oldest: Option<u64> = None;
            for lane in self.lanes_with_prefix(&prefix)? {
                let status = self.lane_status(&lane)?;
                q.backlog += status.stats.queued;
                q.delivered += status.stats.delivered;
                q.failed_tries += status.stats.failed;
                q.dead += status.stats.dead;
                if status.stats.last_error.is_some() {
                    q.last_error = status.stats.last_error.clone();
                }
                if let Some(head) = self.lane_head_ns(&lane)? {
                    oldest = Some(oldest.map_or(head, |o| o.min(head)));
                }
            }
            q.lag_secs = oldest.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1e9);
            q.last_sync_ns = self
                .server_record(SYNCED, peer)?
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes);
            all.push(q);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ObjectMeta;
    use crate::replication::as_replica;
    use crate::{Store, StoreConfig};

    /// A store no thread works for, in a group with peers `b` and `c`.
    fn grouped(dir: &std::path::Path) -> Store {
        let mut cfg = StoreConfig::new(vec![dir.join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        store.create_bucket("old").unwrap();
        let group = SiteGroup {
            me: "a".into(),
            peers: vec!["b".into(), "c".into()],
            namespaces: vec!["user".into()],
        };
        store.set_site_group(Some(&group)).unwrap();
        store
    }

    fn queued(store: &Store) -> Vec<ReplTask> {
        let (rtxn, db) = store.read().unwrap();
        db.prefix_iter(&rtxn, &[keys::LANE])
            .unwrap()
            .map(
                |kv| match record::decode::<queue::Task>(kv.unwrap().1).unwrap().work {
                    Work::Replicate(t) => t,
                    w => panic!("not a replication: {w:?}"),
                },
            )
            .collect()
    }

    fn whats(tasks: &[ReplTask]) -> Vec<(String, ReplWhat)> {
        tasks.iter().map(|t| (t.remote.clone(), t.what)).collect()
    }

    #[test]
    fn every_change_goes_to_every_peer_and_a_replica_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = grouped(dir.path());
        assert_eq!(
            store.bucket("old").unwrap().versioning,
            Versioning::Enabled,
            "joining versions every bucket"
        );
        store.create_bucket("new").unwrap();
        assert_eq!(store.bucket("new").unwrap().versioning, Versioning::Enabled);
        assert!(matches!(
            store.set_versioning("new", Versioning::Suspended),
            Err(Error::InvalidBucketState(_))
        ));
        let mut w = store.put("new", "k").unwrap();
        w.write(b"v").unwrap();
        let v = w.finish(ObjectMeta::default()).unwrap().version;
        store
            .delete("new", "k", Some(&v.version_id), false)
            .unwrap();
        store
            .set_server_record("user", "alice", Some(b"{}".to_vec()))
            .unwrap();
        store
            .set_server_record("other", "x", Some(b"{}".to_vec()))
            .unwrap();
        let tasks = queued(&store);
        let to = |peer: &str, what| (remote_name(peer), what);
        let mut expect = Vec::new();
        for what in [ReplWhat::Bucket, ReplWhat::Version, ReplWhat::DeleteVersion] {
            expect.extend([to("b", what), to("c", what)]);
        }
        // Lanes sort by name: the bucket's lane of each peer, then its records'.
        let mut got = whats(&tasks);
        got.sort();
        expect.extend([to("b", ReplWhat::Record), to("c", ReplWhat::Record)]);
        expect.sort();
        assert_eq!(got, expect);

        let before = queued(&store).len();
        let replica = crate::Replica {
            version_id: v.version_id.clone(),
            mtime_ns: v.mtime_ns,
        };
        as_replica(Some(replica), || {
            let mut w = store.put("new", "k").unwrap();
            w.write(b"v").unwrap();
            w.finish(ObjectMeta::default()).unwrap()
        });
        assert_eq!(queued(&store).len(), before, "a replica goes nowhere");
    }

    #[test]
    fn the_newer_state_wins_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let store = grouped(dir.path());
        let state = |time_ns, site: &str, versioning| BucketState {
            name: "shared".into(),
            stamp: Stamp {
                time_ns,
                site: site.into(),
            },
            record: Some(BucketRecord {
                name: "shared".into(),
                created_ns: 1,
                versioning,
                object_lock: false,
            }),
            attrs: vec![("tagging".into(), b"t".to_vec())],
        };
        assert!(store
            .apply_site_bucket(state(100, "b", Versioning::Enabled))
            .unwrap());
        assert_eq!(
            store.bucket_attr("shared", "tagging").unwrap(),
            Some(b"t".to_vec())
        );
        // Older, or as old from a site that sorts first: ignored.
        assert!(!store
            .apply_site_bucket(state(99, "c", Versioning::Suspended))
            .unwrap());
        assert!(!store
            .apply_site_bucket(state(100, "a", Versioning::Suspended))
            .unwrap());
        assert!(store
            .apply_site_bucket(state(100, "c", Versioning::Enabled))
            .unwrap());
        // A deletion of a bucket with versions here is refused, and changes nothing.
        let mut w = store.put("shared", "k").unwrap();
        w.write(b"v").unwrap();
        w.finish(ObjectMeta::default()).unwrap();
        let mut gone = state(200, "b", Versioning::Enabled);
        gone.record = None;
        assert!(matches!(
            store.apply_site_bucket(gone.clone()),
            Err(Error::BucketNotEmpty(_))
        ));
        assert!(store.bucket("shared").is_ok());
        // Records too.
        let rec = |time_ns, value: &[u8]| RecordState {
            ns: "user".into(),
            name: "alice".into(),
            stamp: Stamp {
                time_ns,
                site: "b".into(),
            },
            value: Some(value.to_vec()),
        };
        assert!(store.apply_site_record(rec(5, b"new")).unwrap());
        assert!(!store.apply_site_record(rec(4, b"old")).unwrap());
        assert_eq!(
            store.server_record("user", "alice").unwrap(),
            Some(b"new".to_vec())
        );
    }
}
