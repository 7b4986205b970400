//! Bucket replication: which versions go to which remote bucket, queued with the change.
//!
//! A bucket's replication rules ([`ReplicationConfig`], a bucket attribute) name
//! destinations: a bucket on a registered remote. Inside the commit of every new version
//! or delete marker (`commit.rs`), [`record`] picks, for each destination, the matching
//! rule with the highest priority and queues one [`ReplTask`] in that destination's
//! ordered lane of the durable work queue (`queue.rs`), and marks the version PENDING in
//! the same commit. So the replication of an acknowledged change survives any crash, and
//! a destination receives each key's versions in order.
//!
//! Sending is the server's ([`Replicator`], on the queue's thread): it knows the remote's
//! client. What it sends to a cybs3 destination carries the version's id and time, and the
//! destination writes it as a *replica* ([`as_replica`]): with that id and time, marked
//! REPLICA, and never replicated again. So two-way rules between two buckets never loop.

use crate::commit::Tx;
use crate::error::{Error, Result};
use crate::ops::{self, Op, Out};
use crate::queue::{self, Work};
use crate::record::{self, keys, ObjectVersion, SseMode};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

/// The bucket attribute holding a bucket's [`ReplicationConfig`].
pub(crate) const REPLICATION_ATTR: &str = "replication";

/// A bucket's replication rules (PutBucketReplication, parsed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationConfig {
    /// The IAM role the configuration names (kept for GET; cybs3 sends with the remote's
    /// keys).
    pub role: String,
    pub rules: Vec<ReplRule>,
}

impl record::Record for ReplicationConfig {}

/// How a rule's filter was written, so that GET gives it back the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterForm {
    /// The schema before filters: a `Prefix` element in the rule.
    #[default]
    RulePrefix,
    /// `<Filter/>` or `<Filter><Prefix>`.
    Prefix,
    /// `<Filter><Tag>`.
    Tag,
    /// `<Filter><And>`.
    And,
}

/// One replication rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplRule {
    pub id: String,
    /// Among the rules matching a key for one destination, the highest decides.
    pub priority: i32,
    pub enabled: bool,
    pub filter: FilterForm,
    pub prefix: String,
    /// Tags an object must all carry.
    pub tags: Vec<(String, String)>,
    /// Delete markers are replicated too.
    pub delete_markers: bool,
    /// Objects from before the rule are replicated too (a resync starts with the rule).
    pub existing: bool,
    /// Changes to replicas' metadata are replicated (kept for GET: a replica's metadata
    /// is changed only by its source here).
    pub replica_modifications: bool,
    /// The registered remote (`cybs3 admin remote add`) and its bucket.
    pub remote: String,
    pub bucket: String,
    /// The storage class replicas are written in (the source's when `None`).
    pub storage_class: Option<String>,
    /// SSE-KMS versions are replicated (SseKmsEncryptedObjects), encrypted at the
    /// destination under this key (ReplicaKmsKeyID).
    pub sse_kms: Option<String>,
    /// A site group's implicit rule (`site.rs`): SSE-KMS versions go too, and removed
    /// versions follow.
    pub site: bool,
}

impl ReplRule {
    /// The rule's filter takes an object with this key and these tags.
    pub fn matches(&self, key: &str, tags: &[(String, String)]) -> bool {
        key.starts_with(&self.prefix) && self.tags.iter().all(|t| tags.contains(t))
    }

    /// The destination, as `Destination/Bucket` names it.
    pub fn arn(&self) -> String {
        format!("arn:cybs3:s3:::{}/{}", self.remote, self.bucket)
    }

    fn lane(&self) -> String {
        lane(&self.remote, &self.bucket)
    }
}

impl ReplicationConfig {
    /// For each destination, the rule that decides for an object (the matching rule with
    /// the highest priority), if it is enabled.
    pub fn decide(&self, key: &str, tags: &[(String, String)]) -> Vec<&ReplRule> {
        let mut chosen: Vec<&ReplRule> = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(key, tags)) {
            match chosen
                .iter_mut()
                .find(|c| c.remote == rule.remote && c.bucket == rule.bucket)
            {
                Some(c) if c.priority < rule.priority => *c = rule,
                Some(_) => {}
                None => chosen.push(rule),
            }
        }
        chosen.retain(|r| r.enabled);
        chosen
    }
}

/// What the lanes of destinations' tasks begin with.
pub(crate) const LANE_PREFIX: &str = "repl/";

/// The lane of a destination's tasks.
pub(crate) fn lane(remote: &str, bucket: &str) -> String {
    format!("{LANE_PREFIX}{remote}/{bucket}")
}

/// One version or delete marker to send to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplTask {
    pub remote: String,
    /// The destination bucket.
    pub target: String,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub sort: [u8; 16],
    pub mtime_ns: u64,
    pub what: ReplWhat,
    /// The class the replica is written in (the rule's), else the source's.
    pub storage_class: Option<String>,
    /// The destination's KMS key for an SSE-KMS version (the rule's ReplicaKmsKeyID).
    pub kms_key: Option<String>,
}

/// What a task sends of its version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplWhat {
    /// The version, whole.
    Version,
    /// A delete marker.
    DeleteMarker,
    /// The version's tags, changed after it was sent.
    Tags,
    /// Its retention and legal hold, changed after it was sent.
    Lock,
    /// The version was removed (to site peers only).
    DeleteVersion,
    /// The bucket's state (to site peers; sent alone, before what follows it).
    Bucket,
    /// A server record's state, `NS/NAME` in the key (to site peers).
    Record,
}

impl ReplWhat {
    /// A task its lane sends alone, after what was queued before it and before what
    /// was queued after.
    pub fn is_barrier(self) -> bool {
        self == ReplWhat::Bucket
    }

    /// A task of a version's first sending, which its status follows.
    fn sends_version(self) -> bool {
        matches!(self, ReplWhat::Version | ReplWhat::DeleteMarker)
    }
}

/// A version's replication status, kept in its `replication` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplStatus {
    /// This many destinations have yet to take it.
    Pending(u32),
    Completed,
    /// A destination refused it for good.
    Failed,
    /// A replica written by a source.
    Replica,
}

impl ReplStatus {
    pub fn parse(s: &str) -> Option<ReplStatus> {
        Some(match s.split_once(' ') {
            Some(("PENDING", n)) => ReplStatus::Pending(n.parse().ok()?),
            _ => match s {
                "COMPLETED" => ReplStatus::Completed,
                "FAILED" => ReplStatus::Failed,
                "REPLICA" => ReplStatus::Replica,
                _ => return None,
            },
        })
    }

    fn encode(self) -> String {
        match self {
            ReplStatus::Pending(n) => format!("PENDING {n}"),
            other => other.name().to_string(),
        }
    }

    /// As `x-amz-replication-status` shows it.
    pub fn name(self) -> &'static str {
        match self {
            ReplStatus::Pending(_) => "PENDING",
            ReplStatus::Completed => "COMPLETED",
            ReplStatus::Failed => "FAILED",
            ReplStatus::Replica => "REPLICA",
        }
    }
}

/// A version's replication status, if it has one.
pub fn status_of(v: &ObjectVersion) -> Option<ReplStatus> {
    v.replication.as_deref().and_then(ReplStatus::parse)
}

/// The version and time a replica is written with: its source's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub version_id: String,
    pub mtime_ns: u64,
}

/// How a replica names a `null` version (a bucket's from before versioning): `null:`
/// and its sort key in hex, since its id does not carry it.
const NULL_REPLICA: &str = "null:";

impl Replica {
    /// How a replica names version `version_id` at `sort`.
    pub fn naming(version_id: &str, sort: &[u8; 16]) -> String {
        match version_id {
            "null" => format!("{NULL_REPLICA}{}", hex::encode(sort)),
            id => id.to_string(),
        }
    }

    /// The version id the replica is written with.
    pub(crate) fn version_id(&self) -> &str {
        match self.version_id.starts_with(NULL_REPLICA) {
            true => "null",
            false => &self.version_id,
        }
    }

    /// The sort key the source gave the version (version ids are the sort key in hex),
    /// which orders it among the others here exactly as there.
    pub(crate) fn sort(&self) -> Result<[u8; 16]> {
        let hex = self
            .version_id
            .strip_prefix(NULL_REPLICA)
            .unwrap_or(&self.version_id);
        ops::parse_version_id(hex).ok_or_else(|| {
            Error::InvalidReplica(format!(
                "version id {:?} is not a cybs3 version id",
                self.version_id
            ))
        })
    }
}

thread_local! {
    static REPLICA: RefCell<Option<Replica>> = const { RefCell::new(None) };
}

/// Runs `f` with the writes it submits on this thread made as `replica`.
pub fn as_replica<T>(replica: Option<Replica>, f: impl FnOnce() -> T) -> T {
    let before = REPLICA.with(|r| r.replace(replica));
    let out = f();
    REPLICA.with(|r| *r.borrow_mut() = before);
    out
}

/// The replica the writes submitted on this thread now make, if any.
pub(crate) fn current() -> Option<Replica> {
    REPLICA.with(|r| r.borrow().clone())
}

/// Queues the replication `op` (which did `out`) causes, in the same commit. The commit
/// calls it for writes that are not replicas (a replica's causes none); only the rules
/// are read when a bucket has any.
pub(crate) fn record(tx: &mut Tx, op: &Op, out: &Out) -> Result<()> {
    let (bucket, key, v) = match (op, out) {
        (Op::Put { bucket, key, .. } | Op::Complete { bucket, key, .. }, Out::Version(v, _)) => {
            (bucket, key, v.clone())
        }
        (
            Op::Delete {
                bucket,
                key,
                version_id: None,
                ..
            },
            Out::Deleted(d),
        ) if d.delete_marker => {
            let vid = d.version_id.as_deref().unwrap_or("null");
            match ops::find_version(tx, bucket, key, vid)? {
                Some(v) => (bucket, key, v),
                None => return Ok(()),
            }
        }
        (
            Op::Delete {
                bucket,
                key,
                version_id: Some(vid),
                ..
            },
            Out::Deleted(_),
        ) => return queue_removal(tx, bucket, key, vid),
        (
            Op::SetTags {
                bucket,
                key,
                version_id,
                ..
            },
            _,
        ) => return queue_change(tx, bucket, key, version_id.as_deref(), ReplWhat::Tags),
        (
            Op::SetRetention {
                bucket,
                key,
                version_id,
                ..
            }
            | Op::SetLegalHold {
                bucket,
                key,
                version_id,
                ..
            },
            _,
        ) => return queue_change(tx, bucket, key, version_id.as_deref(), ReplWhat::Lock),
        _ => return Ok(()),
    };
    let Some(config) = config_in(tx, bucket)? else {
        return Ok(());
    };
    queue_version(tx, &config, bucket, key, &v).map(drop)
}

/// Queues a change of a version's tags or lock for the destinations that have (or are
/// to get) the version: those of a version with a status; of a replica, only for rules
/// that replicate replicas' changes (ReplicaModifications).
fn queue_change(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    what: ReplWhat,
) -> Result<()> {
    let Some(config) = config_in(tx, bucket)? else {
        return Ok(());
    };
    let Some(v) = crate::events::version_now(tx, bucket, key, version_id)? else {
        return Ok(());
    };
    let replica = match status_of(&v) {
        None => return Ok(()),
        Some(s) => s == ReplStatus::Replica,
    };
    for rule in config.decide(key, &v.meta.tags) {
        if replica && !rule.replica_modifications {
            continue;
        }
        queue::push(tx, Work::Replicate(task(rule, bucket, key, &v, what)))?;
    }
    Ok(())
}

fn task(rule: &ReplRule, bucket: &str, key: &str, v: &ObjectVersion, what: ReplWhat) -> ReplTask {
    ReplTask {
        remote: rule.remote.clone(),
        target: rule.bucket.clone(),
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id: v.version_id.clone(),
        sort: v.sort,
        mtime_ns: v.mtime_ns,
        what,
        storage_class: rule.storage_class.clone(),
        kms_key: rule.sse_kms.clone(),
    }
}

/// A removed version follows to the site peers (bucket replication, as AWS's, leaves
/// removals alone).
fn queue_removal(tx: &mut Tx, bucket: &str, key: &str, version_id: &str) -> Result<()> {
    let Some(group) = crate::site::group_in(tx)? else {
        return Ok(());
    };
    let Some(sort) = ops::parse_version_id(version_id) else {
        return Ok(());
    };
    for rule in crate::site::rules(&group, bucket) {
        let t = ReplTask {
            remote: rule.remote,
            target: rule.bucket,
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: version_id.to_string(),
            sort,
            mtime_ns: 0,
            what: ReplWhat::DeleteVersion,
            storage_class: None,
            kms_key: None,
        };
        queue::push(tx, Work::Replicate(t))?;
    }
    Ok(())
}

/// A bucket's rules: its own, and its site group's.
fn config_in(tx: &mut Tx, bucket: &str) -> Result<Option<ReplicationConfig>> {
    let own: Option<ReplicationConfig> = tx
        .get(&keys::attr(bucket, REPLICATION_ATTR))
        .map(|b| record::decode(&b))
        .transpose()?;
    let Some(group) = crate::site::group_in(tx)? else {
        return Ok(own);
    };
    let mut config = own.unwrap_or_default();
    config.rules.extend(crate::site::rules(&group, bucket));
    Ok(Some(config))
}

/// Queues the version at `sort` for `rule` (a new peer's) unless it is a replica, which
/// its origin sends; how many tasks.
pub(crate) fn resend(
    tx: &mut Tx,
    rule: &ReplRule,
    bucket: &str,
    key: &str,
    sort: &[u8; 16],
) -> Result<u64> {
    let Some(bytes) = tx.get(&keys::version(bucket, key, sort)) else {
        return Ok(0);
    };
    let v: ObjectVersion = record::decode(&bytes)?;
    if status_of(&v) == Some(ReplStatus::Replica) {
        return Ok(0);
    }
    let what = match v.delete_marker {
        true => ReplWhat::DeleteMarker,
        false => ReplWhat::Version,
    };
    queue::push(tx, Work::Replicate(task(rule, bucket, key, &v, what)))?;
    set_status(tx, bucket, key, sort, |s| match s {
        Some(ReplStatus::Pending(n)) => ReplStatus::Pending(n + 1),
        _ => ReplStatus::Pending(1),
    })?;
    Ok(1)
}

/// Queues `v` for each destination whose rule takes it and marks it PENDING; how many.
fn queue_version(
    tx: &mut Tx,
    config: &ReplicationConfig,
    bucket: &str,
    key: &str,
    v: &ObjectVersion,
) -> Result<u32> {
    let mut queued = 0;
    for rule in config.decide(key, &v.meta.tags) {
        if v.delete_marker && !rule.delete_markers {
            continue;
        }
        // AWS replicates SSE-KMS versions only under a rule that says so.
        let kms = matches!(
            v.encryption.as_ref().map(|e| &e.mode),
            Some(SseMode::Kms { .. })
        );
        if kms && rule.sse_kms.is_none() && !rule.site {
            continue;
        }
        let what = match v.delete_marker {
            true => ReplWhat::DeleteMarker,
            false => ReplWhat::Version,
        };
        queue::push(tx, Work::Replicate(task(rule, bucket, key, v, what)))?;
        queued += 1;
    }
    if queued > 0 {
        set_status(tx, bucket, key, &v.sort, |_| ReplStatus::Pending(queued))?;
    }
    Ok(queued)
}

/// Changes the status of the version at `sort`, if it is still there.
fn set_status(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    sort: &[u8; 16],
    f: impl FnOnce(Option<ReplStatus>) -> ReplStatus,
) -> Result<()> {
    let at = keys::version(bucket, key, sort);
    let Some(bytes) = tx.get(&at) else {
        return Ok(());
    };
    let mut v: ObjectVersion = record::decode(&bytes)?;
    v.replication = Some(f(status_of(&v)).encode());
    let bytes = record::encode(&v)?;
    if ops::latest(tx, bucket, key)?.is_some_and(|l| l.sort == *sort) {
        tx.put(keys::latest(bucket, key), bytes.clone());
    }
    tx.put(at, bytes);
    Ok(())
}

/// A task sent (`error` `None`) or refused for good: it leaves the queue (a refused one
/// as a dead letter, with the event AWS raises for it) and its version's status follows.
pub(crate) fn finish(
    tx: &mut Tx,
    key: &[u8],
    error: Option<&str>,
    clock: &mut crate::commit::Clock,
) -> Result<()> {
    let Some(bytes) = tx.get(key) else {
        return Ok(());
    };
    let task: queue::Task = record::decode(&bytes)?;
    let Work::Replicate(t) = &task.work else {
        return queue::finish(tx, key);
    };
    let (bucket, k, sort) = (t.bucket.clone(), t.key.clone(), t.sort);
    if error.is_none() {
        crate::site::delivered(tx, &t.remote, clock.now());
    }
    if !t.what.sends_version() {
        // A later change, or a site's state: the version's status is its first
        // sending's.
        return match error {
            None => queue::finish(tx, key),
            Some(error) => queue::give_up(tx, key, error),
        };
    }
    match error {
        None => {
            queue::finish(tx, key)?;
            set_status(tx, &bucket, &k, &sort, |s| match s {
                Some(ReplStatus::Pending(n)) if n > 1 => ReplStatus::Pending(n - 1),
                Some(ReplStatus::Failed) => ReplStatus::Failed,
                _ => ReplStatus::Completed,
            })
        }
        Some(error) => {
            queue::give_up(tx, key, error)?;
            set_status(tx, &bucket, &k, &sort, |_| ReplStatus::Failed)?;
            match tx.get(&keys::version(&bucket, &k, &sort)) {
                Some(bytes) => {
                    let v: ObjectVersion = record::decode(&bytes)?;
                    let name = "Replication:OperationFailedReplication";
                    crate::events::raise(tx, &bucket, &v, name, clock)
                }
                None => Ok(()),
            }
        }
    }
}

/// Queues the versions at `versions` (key, sort) of `bucket` that no destination has
/// taken (no status, or FAILED), as a new rule would have; how many tasks.
pub(crate) fn resync(tx: &mut Tx, bucket: &str, versions: &[(String, [u8; 16])]) -> Result<u64> {
    let Some(config) = config_in(tx, bucket)? else {
        return Err(Error::NoReplication(bucket.to_string()));
    };
    let mut queued = 0;
    for (key, sort) in versions {
        let Some(bytes) = tx.get(&keys::version(bucket, key, sort)) else {
            continue;
        };
        let v: ObjectVersion = record::decode(&bytes)?;
        if matches!(status_of(&v), None | Some(ReplStatus::Failed)) {
            queued += queue_version(tx, &config, bucket, key, &v)? as u64;
        }
    }
    Ok(queued)
}

/// One destination's tasks for one key, in order.
pub struct ReplChain<'a> {
    pub tasks: Vec<&'a ReplTask>,
}

/// What became of a chain: each task sent or refused for good (`Some(error)`), in order,
/// and why the chain stopped short of its end, if it did (a failure worth retrying).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplSent {
    pub outcomes: Vec<Option<String>>,
    pub stopped: Option<String>,
}

/// The server's side of replication: sends versions to remotes.
pub trait Replicator: Send + Sync {
    /// Sends each chain's tasks in order, and the chains at once. One [`ReplSent`] per
    /// chain.
    fn replicate(&self, chains: &[ReplChain<'_>]) -> Vec<ReplSent>;
}

/// A destination's queue, as `cybs3 admin replication status` shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DestinationStatus {
    pub rule: String,
    pub destination: String,
    pub stats: queue::LaneStats,
    /// How long the oldest waiting task has waited (s).
    pub lag_secs: f64,
    pub dead_letters: Vec<queue::DeadLetter>,
}

impl crate::Store {
    /// A bucket's replication rules, if it has any.
    pub fn replication(&self, bucket: &str) -> Result<Option<ReplicationConfig>> {
        self.bucket_attr(bucket, REPLICATION_ATTR)?
            .map(|b| record::decode(&b))
            .transpose()
    }

    /// Sets (or, with `None`, removes) a bucket's replication rules. The bucket's
    /// versioning must be enabled, as the rules are set (AWS's rule).
    pub fn set_replication(&self, bucket: &str, config: Option<&ReplicationConfig>) -> Result<()> {
        let value = config.map(record::encode).transpose()?;
        self.submit(Op::SetReplication {
            bucket: bucket.to_string(),
            value,
        })
        .map(drop)
    }

    /// Queues every version of `bucket` no destination has taken (`resync`), a page of
    /// keys per commit; how many tasks.
    pub fn resync_replication(&self, bucket: &str) -> Result<u64> {
        let mut q = crate::VersionQuery {
            max: 500,
            ..Default::default()
        };
        let mut queued = 0;
        loop {
            let page = self.list_versions(bucket, &q)?;
            let versions = page
                .versions
                .iter()
                .map(|e| (e.version.key.clone(), e.version.sort))
                .collect();
            match self.submit(Op::Resync {
                bucket: bucket.to_string(),
                versions,
            })? {
                Out::Queued(n) => queued += n,
                _ => unreachable!("Resync answers Queued"),
            }
            if !page.truncated {
                return Ok(queued);
            }
            q.key_marker = page.next_key;
            q.version_marker = page.next_version;
        }
    }

    /// Queues these versions `(key, sort)` of `bucket` for each destination of its rules
    /// that has not taken them (a batch job's `replicate`); how many tasks.
    pub fn replicate_versions(
        &self,
        bucket: &str,
        versions: Vec<(String, [u8; 16])>,
    ) -> Result<u64> {
        match self.submit(Op::Resync {
            bucket: bucket.to_string(),
            versions,
        })? {
            Out::Queued(n) => Ok(n),
            _ => unreachable!("Resync answers Queued"),
        }
    }

    /// Each destination of `bucket`'s rules: its queue's counters, lag and dead letters.
    pub fn replication_status(&self, bucket: &str) -> Result<Vec<DestinationStatus>> {
        let config = self
            .replication(bucket)?
            .ok_or_else(|| Error::NoReplication(bucket.to_string()))?;
        let now = crate::commit::Clock::new().now();
        let mut all: Vec<DestinationStatus> = Vec::new();
        for rule in &config.rules {
            if all.iter().any(|d| d.destination == rule.arn()) {
                continue;
            }
            let lane = rule.lane();
            let status = self.lane_status(&lane)?;
            let head = self.lane_head_ns(&lane)?;
            all.push(DestinationStatus {
                rule: rule.id.clone(),
                destination: rule.arn(),
                stats: status.stats,
                lag_secs: head.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1e9),
                dead_letters: status.dead_letters,
            });
        }
        Ok(all)
    }

    /// Gives the store the client it replicates with.
    pub fn set_replicator(&self, replicator: std::sync::Arc<dyn Replicator>) {
        let _ = self.inner.replicator.set(replicator);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ObjectMeta, Versioning};
    use crate::{Store, StoreConfig};

    /// A store no thread works for, with versioned bucket `bkt` replicating `a/` to
    /// `r/dst`, markers too.
    fn replicating(dir: &std::path::Path) -> Store {
        let mut cfg = StoreConfig::new(vec![dir.join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        store.create_bucket("bkt").unwrap();
        let mut r = rule("a", 1, "a/", "dst");
        r.delete_markers = true;
        let config = ReplicationConfig {
            role: String::new(),
            rules: vec![r],
        };
        assert!(matches!(
            store.set_replication("bkt", Some(&config)),
            Err(Error::InvalidBucketState(_))
        ));
        store.set_versioning("bkt", Versioning::Enabled).unwrap();
        store.set_replication("bkt", Some(&config)).unwrap();
        store
    }

    fn put(store: &Store, key: &str, replica: Option<Replica>) -> ObjectVersion {
        as_replica(replica, || {
            let mut w = store.put("bkt", key).unwrap();
            w.write(b"hello").unwrap();
            w.finish(ObjectMeta::default()).unwrap().version
        })
    }

    fn queued(store: &Store) -> Vec<(Vec<u8>, ReplTask)> {
        let (rtxn, db) = store.read().unwrap();
        db.prefix_iter(&rtxn, &[keys::LANE])
            .unwrap()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                match record::decode::<queue::Task>(v).unwrap().work {
                    Work::Replicate(t) => (k.to_vec(), t),
                    w => panic!("not a replication: {w:?}"),
                }
            })
            .collect()
    }

    fn status(store: &Store, key: &str, vid: &str) -> Option<ReplStatus> {
        status_of(&store.head("bkt", key, Some(vid)).unwrap())
    }

    #[test]
    fn a_version_is_queued_pending_with_its_change_and_completes() {
        let dir = tempfile::tempdir().unwrap();
        let store = replicating(dir.path());
        let v = put(&store, "a/1", None);
        put(&store, "b/1", None);
        let marker = store.delete("bkt", "a/2", None, false).unwrap();
        let tasks = queued(&store);
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert_eq!(
            (tasks[0].1.key.as_str(), tasks[0].1.what),
            ("a/1", ReplWhat::Version)
        );
        assert_eq!(tasks[1].1.what, ReplWhat::DeleteMarker);
        assert_eq!(tasks[0].1.version_id, v.version_id);
        assert_eq!(tasks[1].1.version_id, marker.version_id.unwrap());
        assert_eq!(
            status(&store, "a/1", &v.version_id),
            Some(ReplStatus::Pending(1))
        );
        assert_eq!(
            status_of(&store.head("bkt", "a/1", None).unwrap()),
            Some(ReplStatus::Pending(1))
        );
        assert!(matches!(
            store.set_versioning("bkt", Versioning::Suspended),
            Err(Error::InvalidBucketState(_))
        ));
        let outcomes = vec![
            (tasks[0].0.clone(), None),
            (tasks[1].0.clone(), Some("refused".into())),
        ];
        store.submit(Op::FinishReplication(outcomes)).unwrap();
        assert_eq!(
            status(&store, "a/1", &v.version_id),
            Some(ReplStatus::Completed)
        );
        let dest = &store.replication_status("bkt").unwrap()[0];
        assert_eq!(
            (dest.stats.queued, dest.stats.delivered, dest.stats.dead),
            (0, 1, 1)
        );
        assert_eq!(dest.dead_letters.len(), 1);
        // A resync queues what no destination took: the refused marker again (b/1
        // matches no rule, a/1 is done).
        assert_eq!(store.resync_replication("bkt").unwrap(), 1);
        assert_eq!(queued(&store)[0].1.key, "a/2");
    }

    #[test]
    fn a_replica_keeps_its_sources_id_and_time_once_and_is_not_replicated() {
        let dir = tempfile::tempdir().unwrap();
        let store = replicating(dir.path());
        let older = Replica {
            version_id: hex::encode(ops_sort(1_000)),
            mtime_ns: 1_000,
        };
        let newer = put(&store, "a/k", None);
        let before = queued(&store).len();
        let r = put(&store, "a/k", Some(older.clone()));
        assert_eq!(
            (r.version_id.as_str(), r.mtime_ns),
            (older.version_id.as_str(), 1_000)
        );
        assert_eq!(status_of(&r), Some(ReplStatus::Replica));
        // Older than what is there: listed, but not the latest.
        assert_eq!(
            store.head("bkt", "a/k", None).unwrap().version_id,
            newer.version_id
        );
        // ReplWhat again (at least once): the same version, not a second one.
        put(&store, "a/k", Some(older));
        let q = crate::VersionQuery {
            max: 100,
            ..Default::default()
        };
        let page = store.list_versions("bkt", &q).unwrap();
        assert_eq!(page.versions.len(), 2);
        assert_eq!(
            queued(&store).len(),
            before,
            "a replica is never replicated"
        );
    }

    fn ops_sort(mtime: u64) -> [u8; 16] {
        let mut s = [7u8; 16];
        s[..8].copy_from_slice(&(u64::MAX - mtime).to_be_bytes());
        s
    }

    fn rule(id: &str, priority: i32, prefix: &str, bucket: &str) -> ReplRule {
        ReplRule {
            id: id.into(),
            priority,
            enabled: true,
            prefix: prefix.into(),
            remote: "r".into(),
            bucket: bucket.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_highest_priority_rule_decides_per_destination() {
        let mut off = rule("off", 9, "a/x", "b1");
        off.enabled = false;
        let config = ReplicationConfig {
            role: String::new(),
            rules: vec![rule("low", 1, "a/", "b1"), off, rule("other", 1, "", "b2")],
        };
        let ids = |key: &str| -> Vec<String> {
            config
                .decide(key, &[])
                .iter()
                .map(|r| r.id.clone())
                .collect()
        };
        assert_eq!(ids("a/1"), ["low", "other"]);
        // The disabled rule has the higher priority for a/x...: nothing goes to b1.
        assert_eq!(ids("a/x1"), ["other"]);
        assert_eq!(ids("c"), ["other"]);
    }

    #[test]
    fn tags_must_all_match() {
        let mut r = rule("t", 1, "", "b");
        r.tags = vec![("k".into(), "v".into()), ("a".into(), "b".into())];
        let tag = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert!(r.matches("x", &[tag("a", "b"), tag("k", "v"), tag("z", "z")]));
        assert!(!r.matches("x", &[tag("k", "v")]));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            ReplStatus::Pending(3),
            ReplStatus::Completed,
            ReplStatus::Failed,
            ReplStatus::Replica,
        ] {
            assert_eq!(ReplStatus::parse(&s.encode()), Some(s));
        }
        assert_eq!(ReplStatus::parse("PENDING x"), None);
    }
}
