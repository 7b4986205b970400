//! Bucket notifications: which changes become events, and for which targets.
//!
//! A bucket's notification configuration ([`NotifyConfig`], a bucket attribute) names
//! targets and filters. Inside the commit of every change (`commit.rs`), [`record`] turns
//! the operation and its outcome into S3 event names (`ObjectCreated:Put`,
//! `ObjectRemoved:DeleteMarkerCreated`, ...) and queues one [`Work::Notify`] per matching
//! rule in the durable work queue, in the target's lane (`queue.rs`). So an event is
//! durable exactly when its change is: a crash can neither lose the event of an
//! acknowledged change nor emit one for a change that never happened.
//!
//! Who caused a change travels with the operation as its [`Origin`], which the server
//! sets around each request ([`with_origin`]); changes the store makes itself
//! (lifecycle) have none. Delivery is the server's ([`Notifier`]): it knows the
//! targets' protocols and formats AWS's event JSON.

use crate::commit::Tx;
use crate::error::Result;
use crate::ops::{self, Deleted, Op, Out};
use crate::queue::{self, Work};
use crate::record::{self, keys, ObjectVersion};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// The bucket attribute holding a bucket's [`NotifyConfig`].
pub(crate) const NOTIFY_ATTR: &str = "notification";

/// Who made a change, as the request that made it tells.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The caller's principal (user name or access key).
    pub principal: String,
    pub source_ip: String,
    pub request_id: String,
    /// The S3 operation (`PutObject`, `CopyObject`, `PostObject`, ...): it tells a copy or
    /// a form upload from a PUT.
    pub api: String,
}

/// A bucket's notification rules (PutBucketNotificationConfiguration, parsed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyConfig {
    pub rules: Vec<NotifyRule>,
}

impl record::Record for NotifyConfig {}

/// One configuration of a notification: events matching `events` on keys with `prefix`
/// and `suffix` go to `target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRule {
    /// The configuration's id (`configurationId` in the event).
    pub id: String,
    /// The target's name (the `NAME` of `arn:cybs3:sqs:REGION:NAME:TYPE`).
    pub target: String,
    /// The ARN as the configuration gave it.
    pub arn: String,
    /// Which configuration element named it: `Queue`, `Topic` or `CloudFunction`.
    pub kind: String,
    /// Event patterns as S3 writes them: `s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`.
    pub events: Vec<String>,
    pub prefix: String,
    pub suffix: String,
}

impl NotifyRule {
    /// Whether `event` (`ObjectCreated:Put`) on `key` is this rule's.
    pub fn matches(&self, event: &str, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.iter().any(|p| event_matches(p, event))
    }
}

/// Whether the pattern `s3:ObjectCreated:*` (or `s3:ObjectCreated:Put`) covers `event`.
pub fn event_matches(pattern: &str, event: &str) -> bool {
    let pattern = pattern.strip_prefix("s3:").unwrap_or(pattern);
    match pattern.strip_suffix('*') {
        Some(head) => event.starts_with(head),
        None => pattern == event,
    }
}

/// One event, as queued for a target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The S3 event name without `s3:` (`ObjectCreated:Put`).
    pub name: String,
    /// When the change was committed (Unix ns).
    pub time_ns: u64,
    pub bucket: String,
    pub key: String,
    /// None for an unversioned bucket's object.
    pub version_id: Option<String>,
    pub size: u64,
    pub etag: String,
    /// Orders the events of one key: later changes have greater sequencers.
    pub sequencer: u64,
    /// The rule's configuration id.
    pub rule: String,
    /// Who made the change; `None` for the store's own (lifecycle).
    pub origin: Option<Origin>,
}

/// One target's queued events for one key, oldest first: sent in this order.
pub struct Chain<'a> {
    pub target: &'a str,
    pub events: Vec<&'a Event>,
}

/// How a [`Chain`] went: its first `delivered` events were delivered; `error` says why
/// the next one was not (the later ones were not tried).
#[derive(Debug, PartialEq, Eq)]
pub struct Sent {
    pub delivered: usize,
    pub error: Option<String>,
}

/// Delivers events to targets; the server gives the store one (`Store::set_notifier`).
pub trait Notifier: Send + Sync {
    /// Sends each chain's events in order, and the chains at once (they are independent:
    /// different keys or targets). One [`Sent`] per chain; failures are retried later.
    fn deliver(&self, chains: &[Chain<'_>]) -> Vec<Sent>;
}

impl crate::Store {
    /// A bucket's notification rules, if it has any.
    pub fn notification(&self, bucket: &str) -> Result<Option<NotifyConfig>> {
        self.bucket_attr(bucket, NOTIFY_ATTR)?
            .map(|b| record::decode(&b))
            .transpose()
    }

    /// Sets (or, with `None` or no rules, removes) a bucket's notification rules.
    pub fn set_notification(&self, bucket: &str, config: Option<&NotifyConfig>) -> Result<()> {
        let value = match config.filter(|c| !c.rules.is_empty()) {
            Some(c) => Some(record::encode(c)?),
            None => None,
        };
        self.set_bucket_attr(bucket, NOTIFY_ATTR, value)
    }
}

thread_local! {
    static ORIGIN: RefCell<Option<Arc<Origin>>> = const { RefCell::new(None) };
}

/// Runs `f` with `origin` as the origin of the changes it submits on this thread.
pub fn with_origin<T>(origin: Option<Arc<Origin>>, f: impl FnOnce() -> T) -> T {
    let before = ORIGIN.with(|o| o.replace(origin));
    let out = f();
    ORIGIN.with(|o| *o.borrow_mut() = before);
    out
}

/// The origin of the changes submitted on this thread now.
pub(crate) fn current() -> Option<Arc<Origin>> {
    ORIGIN.with(|o| o.borrow().clone())
}

/// What a change did to which version, before the bucket's rules are asked.
struct Change<'a> {
    bucket: &'a str,
    key: &'a str,
    names: Vec<&'static str>,
    version: Option<ObjectVersion>,
    /// A removal's version id (the version itself is gone).
    removed: Option<&'a Deleted>,
}

/// Queues the events `op` (which did `out`) raises, in the same commit, stamped with the
/// commit clock's time. Only the bucket's rules are read when it has none.
pub(crate) fn record(
    tx: &mut Tx,
    op: &Op,
    out: &Out,
    origin: Option<&Arc<Origin>>,
    clock: &mut crate::commit::Clock,
) -> Result<()> {
    let Some(bucket) = bucket_of(op) else {
        return Ok(());
    };
    let Some(config) = tx.get(&keys::attr(bucket, NOTIFY_ATTR)) else {
        return Ok(());
    };
    let config: NotifyConfig = record::decode(&config)?;
    let Some(change) = change_of(tx, op, out, origin)? else {
        return Ok(());
    };
    let (version_id, size, etag) = match (&change.version, change.removed) {
        (Some(v), _) => (
            Some(v.version_id.clone()),
            v.size,
            (!v.delete_marker).then(|| v.meta.etag.clone()),
        ),
        (None, Some(d)) => (d.version_id.clone(), 0, None),
        (None, None) => (None, 0, None),
    };
    let what = Described {
        bucket: change.bucket,
        key: change.key,
        version_id: version_id.filter(|v| v != "null"),
        size,
        etag: etag.unwrap_or_default(),
    };
    for name in &change.names {
        // One stamp per event: a change that raises two (a restore's Post and Completed)
        // gives them two sequencers, in order.
        queue_events(tx, &config, name, clock.now(), &what, origin)?;
    }
    Ok(())
}

/// What an event says of its object.
struct Described<'a> {
    bucket: &'a str,
    key: &'a str,
    version_id: Option<String>,
    size: u64,
    etag: String,
}

/// Queues event `name`, stamped `now`, for each of the bucket's rules that match it.
fn queue_events(
    tx: &mut Tx,
    config: &NotifyConfig,
    name: &str,
    now: u64,
    what: &Described,
    origin: Option<&Arc<Origin>>,
) -> Result<()> {
    for rule in config.rules.iter().filter(|r| r.matches(name, what.key)) {
        let event = Event {
            name: name.to_string(),
            time_ns: now,
            bucket: what.bucket.to_string(),
            key: what.key.to_string(),
            version_id: what.version_id.clone(),
            size: what.size,
            etag: what.etag.clone(),
            sequencer: now,
            rule: rule.id.clone(),
            origin: origin.map(|o| (**o).clone()),
        };
        queue::push(
            tx,
            Work::Notify {
                target: rule.target.clone(),
                event,
            },
        )?;
    }
    Ok(())
}

/// Queues event `name` of version `v`, an outcome of the store's own work (replication's
/// `Replication:OperationFailedReplication`), if the bucket's rules ask for it.
pub(crate) fn raise(
    tx: &mut Tx,
    bucket: &str,
    v: &ObjectVersion,
    name: &str,
    clock: &mut crate::commit::Clock,
) -> Result<()> {
    let Some(config) = tx.get(&keys::attr(bucket, NOTIFY_ATTR)) else {
        return Ok(());
    };
    let config: NotifyConfig = record::decode(&config)?;
    let what = Described {
        bucket,
        key: &v.key,
        version_id: Some(v.version_id.clone()).filter(|v| v != "null"),
        size: v.size,
        etag: match v.delete_marker {
            true => String::new(),
            false => v.meta.etag.clone(),
        },
    };
    queue_events(tx, &config, name, clock.now(), &what, None)
}

fn bucket_of(op: &Op) -> Option<&str> {
    match op {
        Op::Put { bucket, .. }
        | Op::Complete { bucket, .. }
        | Op::Delete { bucket, .. }
        | Op::Expire { bucket, .. }
        | Op::SetTags { bucket, .. }
        | Op::SetAcl { bucket, .. }
        | Op::Restore { bucket, .. } => Some(bucket),
        Op::Move {
            owner: crate::held::Owner::Version { bucket, .. },
            class: Some(_),
            ..
        }
        | Op::ToRemote {
            owner: crate::held::Owner::Version { bucket, .. },
            lock: crate::remote::LockRule::Respect,
            ..
        } => Some(bucket),
        _ => None,
    }
}

fn change_of<'a>(
    tx: &mut Tx,
    op: &'a Op,
    out: &'a Out,
    origin: Option<&Arc<Origin>>,
) -> Result<Option<Change<'a>>> {
    let api = origin.map_or("", |o| o.api.as_str());
    let change = |bucket: &'a str, key: &'a str, names: Vec<&'static str>| Change {
        bucket,
        key,
        names,
        version: None,
        removed: None,
    };
    Ok(Some(match (op, out) {
        (Op::Put { bucket, key, .. }, Out::Version(v, _)) => {
            let name = match api {
                "CopyObject" => "ObjectCreated:Copy",
                "PostObject" => "ObjectCreated:Post",
                _ => "ObjectCreated:Put",
            };
            Change {
                version: Some(v.clone()),
                ..change(bucket, key, vec![name])
            }
        }
        (Op::Complete { bucket, key, .. }, Out::Version(v, _)) => Change {
            version: Some(v.clone()),
            ..change(bucket, key, vec!["ObjectCreated:CompleteMultipartUpload"])
        },
        (Op::Delete { bucket, key, .. }, Out::Deleted(d)) => {
            let name = match d.delete_marker && api_created_marker(op) {
                true => "ObjectRemoved:DeleteMarkerCreated",
                false => "ObjectRemoved:Delete",
            };
            Change {
                removed: Some(d),
                ..change(bucket, key, vec![name])
            }
        }
        (Op::Expire { bucket, key, .. }, Out::Expired(Some(d))) => {
            let name = match d.delete_marker {
                true => "LifecycleExpiration:DeleteMarkerCreated",
                false => "LifecycleExpiration:Delete",
            };
            Change {
                removed: Some(d),
                ..change(bucket, key, vec![name])
            }
        }
        (
            Op::SetTags {
                bucket,
                key,
                version_id,
                tags,
            },
            _,
        ) => Change {
            version: version_now(tx, bucket, key, version_id.as_deref())?,
            ..change(
                bucket,
                key,
                vec![match tags.is_empty() {
                    true => "ObjectTagging:Delete",
                    false => "ObjectTagging:Put",
                }],
            )
        },
        (
            Op::SetAcl {
                bucket,
                key,
                version_id,
                ..
            },
            _,
        ) => Change {
            version: version_now(tx, bucket, key, version_id.as_deref())?,
            ..change(bucket, key, vec!["ObjectAcl:Put"])
        },
        // An archived version is readable at once here: the restore starts and completes
        // in the same commit.
        (
            Op::Restore {
                bucket,
                key,
                version_id,
                ..
            },
            _,
        ) => Change {
            version: version_now(tx, bucket, key, version_id.as_deref())?,
            ..change(
                bucket,
                key,
                vec!["ObjectRestore:Post", "ObjectRestore:Completed"],
            )
        },
        (
            Op::Move {
                owner: crate::held::Owner::Version { bucket, key, sort },
                ..
            }
            | Op::ToRemote {
                owner: crate::held::Owner::Version { bucket, key, sort },
                ..
            },
            _,
        ) => Change {
            version: version_at(tx, bucket, key, sort)?,
            ..change(bucket, key, vec!["LifecycleTransition"])
        },
        _ => return Ok(None),
    }))
}

/// A DELETE without a version id in a versioned bucket adds a marker; one naming the
/// marker's version id removes it (an `ObjectRemoved:Delete`).
fn api_created_marker(op: &Op) -> bool {
    matches!(
        op,
        Op::Delete {
            version_id: None,
            ..
        }
    )
}

pub(crate) fn version_now(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<ObjectVersion>> {
    match version_id {
        Some(vid) => ops::find_version(tx, bucket, key, vid),
        None => tx
            .get(&keys::latest(bucket, key))
            .map(|v| record::decode(&v))
            .transpose(),
    }
}

fn version_at(
    tx: &mut Tx,
    bucket: &str,
    key: &str,
    sort: &[u8; 16],
) -> Result<Option<ObjectVersion>> {
    tx.get(&keys::version(bucket, key, sort))
        .map(|v| record::decode(&v))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ObjectMeta, Versioning};
    use crate::{Store, StoreConfig};
    use std::sync::Mutex;

    /// A store no thread works for, with bucket `bkt` notifying target `t` of everything.
    fn notifying(dir: &std::path::Path) -> Store {
        let mut cfg = StoreConfig::new(vec![dir.join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        store.create_bucket("bkt").unwrap();
        let config = NotifyConfig {
            rules: vec![rule(&["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "", "")],
        };
        let config = record::encode(&config).unwrap();
        store
            .set_bucket_attr("bkt", NOTIFY_ATTR, Some(config))
            .unwrap();
        store
    }

    fn put(store: &Store, key: &str, origin: Option<Arc<Origin>>) {
        with_origin(origin, || {
            let mut w = store.put("bkt", key).unwrap();
            w.write(b"hello").unwrap();
            w.finish(ObjectMeta::default()).unwrap();
        });
    }

    fn queued(store: &Store) -> Vec<(String, Event)> {
        let (rtxn, db) = store.read().unwrap();
        db.prefix_iter(&rtxn, &[keys::LANE])
            .unwrap()
            .map(
                |kv| match record::decode::<queue::Task>(kv.unwrap().1).unwrap().work {
                    Work::Notify { target, event } => (target, event),
                    w => panic!("not an event: {w:?}"),
                },
            )
            .collect()
    }

    #[test]
    fn changes_queue_their_events_in_the_same_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = notifying(dir.path());
        let copy = Arc::new(Origin {
            principal: "alice".into(),
            source_ip: "127.0.0.1".into(),
            request_id: "req1".into(),
            api: "CopyObject".into(),
        });
        put(&store, "a", None);
        put(&store, "c", Some(copy.clone()));
        store.set_versioning("bkt", Versioning::Enabled).unwrap();
        let marker = store.delete("bkt", "a", None, false).unwrap();
        store
            .delete("bkt", "a", marker.version_id.as_deref(), false)
            .unwrap();
        let events = queued(&store);
        let names: Vec<_> = events.iter().map(|(_, e)| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ObjectCreated:Put",
                "ObjectCreated:Copy",
                "ObjectRemoved:DeleteMarkerCreated",
                "ObjectRemoved:Delete"
            ]
        );
        let (target, copied) = &events[1];
        assert_eq!((target.as_str(), copied.key.as_str()), ("t", "c"));
        assert_eq!((copied.size, copied.origin.as_ref()), (5, Some(&*copy)));
        assert_eq!(copied.version_id, None);
        assert_eq!(events[2].1.version_id, marker.version_id);
        let seqs: Vec<u64> = events.iter().map(|(_, e)| e.sequencer).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let stats = store.notify_status("t").unwrap().stats;
        assert_eq!((stats.queued, stats.delivered), (4, 0));
    }

    #[test]
    fn a_refused_change_and_a_bucket_without_rules_raise_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = notifying(dir.path());
        store.create_bucket("quiet").unwrap();
        let mut w = store.put("quiet", "k").unwrap();
        w.write(b"x").unwrap();
        w.finish(ObjectMeta::default()).unwrap();
        assert!(store.delete("nope", "k", None, false).is_err());
        assert!(queued(&store).is_empty());
    }

    /// Records what it delivers; fails the first `fail` tries.
    struct Recorder {
        fail: Mutex<u32>,
        got: Mutex<Vec<String>>,
    }

    impl Notifier for Recorder {
        fn deliver(&self, chains: &[Chain<'_>]) -> Vec<Sent> {
            chains
                .iter()
                .map(|chain| {
                    let mut delivered = 0;
                    for event in &chain.events {
                        let mut fail = self.fail.lock().unwrap();
                        if *fail > 0 {
                            *fail -= 1;
                            let error = Some("connection refused".into());
                            return Sent { delivered, error };
                        }
                        self.got.lock().unwrap().push(event.key.clone());
                        delivered += 1;
                    }
                    Sent {
                        delivered,
                        error: None,
                    }
                })
                .collect()
        }
    }

    #[test]
    fn a_lane_waits_for_its_failed_event_so_order_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = notifying(dir.path());
        let recorder = Arc::new(Recorder {
            fail: Mutex::new(1),
            got: Mutex::new(Vec::new()),
        });
        store.set_notifier(recorder.clone());
        for key in ["k1", "k2", "k1"] {
            put(&store, key, None);
        }
        // k1's first event fails: its second is not tried; k2, another key, goes out.
        store.run_work().unwrap();
        assert_eq!(*recorder.got.lock().unwrap(), ["k2"]);
        let stats = store.notify_status("t").unwrap().stats;
        assert_eq!((stats.queued, stats.failed), (2, 1));
        assert_eq!(stats.last_error.as_deref(), Some("connection refused"));
        // Nothing of the lane goes out while the failed one waits for its retry.
        put(&store, "k3", None);
        store.run_work().unwrap();
        assert_eq!(*recorder.got.lock().unwrap(), ["k2"]);
        std::thread::sleep(queue_first_retry());
        // The failed event goes alone, as a probe; then the rest.
        let round = store.run_work().unwrap();
        assert!(round.full);
        assert_eq!(*recorder.got.lock().unwrap(), ["k2", "k1"]);
        store.run_work().unwrap();
        assert_eq!(*recorder.got.lock().unwrap(), ["k2", "k1", "k1", "k3"]);
        let stats = store.notify_status("t").unwrap().stats;
        assert_eq!((stats.queued, stats.delivered), (0, 4));
    }

    #[test]
    fn lane_tasks_of_a_store_from_before_lanes_are_filed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = notifying(dir.path());
            for key in ["k1", "k2"] {
                put(&store, key, None);
            }
            // Laid out as before lanes: the task under `Q seq`, an empty lane entry.
            let (rtxn, db) = store.read().unwrap();
            let mut raw = Vec::new();
            for kv in db.prefix_iter(&rtxn, &[keys::LANE]).unwrap() {
                let (k, v) = kv.unwrap();
                let seq = u64::from_be_bytes(k[k.len() - 8..].try_into().unwrap());
                raw.push((keys::task(seq), Some(v.to_vec())));
                raw.push((k.to_vec(), Some(Vec::new())));
            }
            drop(rtxn);
            store.submit(crate::ops::Op::Raw(raw)).unwrap();
        }
        let mut cfg = StoreConfig::new(vec![dir.path().join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        let keys: Vec<_> = queued(&store).into_iter().map(|(_, e)| e.key).collect();
        assert_eq!(keys, ["k1", "k2"]);
        let (rtxn, db) = store.read().unwrap();
        assert_eq!(db.prefix_iter(&rtxn, &[keys::QUEUE]).unwrap().count(), 0);
        drop(rtxn);
        assert_eq!(store.notify_status("t").unwrap().stats.queued, 2);
    }

    fn queue_first_retry() -> std::time::Duration {
        std::time::Duration::from_millis(600)
    }

    #[test]
    fn past_its_bound_a_lane_sets_its_oldest_events_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = notifying(dir.path());
        store.set_lane_bound(2);
        for key in ["k1", "k2", "k3", "k4"] {
            put(&store, key, None);
        }
        let keys: Vec<_> = queued(&store).into_iter().map(|(_, e)| e.key).collect();
        assert_eq!(keys, ["k3", "k4"]);
        let status = store.notify_status("t").unwrap();
        assert_eq!((status.stats.queued, status.stats.dead), (2, 2));
        assert!(status.stats.full);
        let dead: Vec<_> = status
            .dead_letters
            .iter()
            .map(|d| d.what.as_str())
            .collect();
        assert_eq!(
            dead,
            ["ObjectCreated:Put bkt/k1", "ObjectCreated:Put bkt/k2"]
        );
        store.drop_notify_target("t").unwrap();
        let status = store.notify_status("t").unwrap();
        assert_eq!((status.stats.queued, status.stats.dead), (0, 4));
        assert!(queued(&store).is_empty());
    }

    fn rule(events: &[&str], prefix: &str, suffix: &str) -> NotifyRule {
        NotifyRule {
            id: "r".into(),
            target: "t".into(),
            arn: "arn:cybs3:sqs:us-east-1:t:webhook".into(),
            kind: "Queue".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn wildcards_cover_their_family_only() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Copy"));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Put", "ObjectCreated:Post"));
        assert!(!event_matches("s3:ObjectCreated:*", "ObjectRemoved:Delete"));
        assert!(event_matches(
            "s3:ObjectRemoved:*",
            "ObjectRemoved:DeleteMarkerCreated"
        ));
    }

    #[test]
    fn prefix_and_suffix_both_filter() {
        let r = rule(&["s3:ObjectCreated:*"], "img/", ".jpg");
        assert!(r.matches("ObjectCreated:Put", "img/a.jpg"));
        assert!(!r.matches("ObjectCreated:Put", "img/a.png"));
        assert!(!r.matches("ObjectCreated:Put", "doc/a.jpg"));
        assert!(!r.matches("ObjectRemoved:Delete", "img/a.jpg"));
    }

    #[test]
    fn the_origin_is_scoped_to_the_call() {
        let o = Arc::new(Origin {
            api: "CopyObject".into(),
            ..Default::default()
        });
        assert_eq!(current(), None);
        let inside = with_origin(Some(o.clone()), current);
        assert_eq!(inside, Some(o));
        assert_eq!(current(), None);
    }
}
