//! The durable work queue: work a change causes is queued in the same commit as the
//! change (`Q seq` records), so a crash can neither lose the work of an acknowledged
//! change nor leave work for a change that did not happen.
//!
//! The queue's own thread ([`work_loop`], woken by each commit that queued work) does
//! the work that is due (`Store::run_work`), at least once. Its users: remote tiers
//! (`remote.rs`: the delete of a remote object whose version is gone, the cleanup of an
//! upload a crash cut off, the move of a version written in a remote class) and bucket
//! notifications (`events.rs`: one task per event and target).
//!
//! Work in an ordered *lane* (a notification target's events) is kept under its lane
//! (`O lane \0 seq`; other work under `Q seq`), so that a round reads each lane from its
//! head and a lane that waits costs nothing, however long its backlog. A round sends a
//! lane's due events as one chain per key, the chains at once (`rounds.rs`); while a lane's oldest
//! task waits for its retry, the lane's later tasks wait too, so a target receives the
//! events of each key in order. A lane's failures are retried with
//! exponential backoff and jitter for as long as it takes; its backlog is bounded
//! ([`Store::set_lane_bound`]): past the bound, the oldest task becomes a dead letter
//! (`D seq`), counted in the lane's [`LaneStats`] and logged. Other work is retried with
//! a growing delay and becomes a dead letter after [`MAX_ATTEMPTS`] tries. `cybs3
//! server status` counts dead letters; `cybs3 admin notify status` lists a target's.

use crate::error::{Error, Result};
use crate::events::Event;
use crate::ops::Op;
use crate::record::{self, keys, DataId};
use crate::remote::RemoteRef;
use crate::replication::ReplTask;
use crate::Store;
use serde::{Deserialize, Serialize};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Tries before a task outside a lane becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 20;
/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(600);
/// A lane's first retry waits this long; each further one twice as long.
const LANE_FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two tries of a lane's task: a target that comes back is
/// caught up within this.
const LANE_MAX_DELAY: Duration = Duration::from_secs(10);
/// Tasks done per round (of each lane).
const ROUND: usize = 64;
/// Replication tasks sent per round of a destination's lane: each is a request to another
/// server, which keeps up only with many in flight, so a round takes more of them.
const REPLICATION_ROUND: usize = 512;
/// The shortest time between the starts of two rounds after a commit queued work: under
/// a stream of changes, one round (and one commit of what it finished) per this, not one
/// per change, at the cost of this much delay.
const GATHER: Duration = Duration::from_millis(50);
/// How often the queue's thread looks for work that became due (retries).
const POLL: Duration = Duration::from_millis(200);
/// A lane's default bound (`Store::set_lane_bound`).
pub const DEFAULT_LANE_BOUND: u64 = 100_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Work {
    /// Remove a remote object nothing points at any more.
    DeleteRemote { at: RemoteRef },
    /// A transition's upload under way: if the store stopped before its swap, and no
    /// record points at data `id`, the remote object is removed. Left alone while the
    /// process that queued it runs (the transition finishes it either way).
    Abandoned { id: DataId, at: RemoteRef },
    /// A version written in a remote tier's class (`ops::new_version`): its data moves
    /// there. Done when the version (`sort` tells a replaced `null` version apart) is gone.
    Transition {
        bucket: String,
        key: String,
        version_id: String,
        sort: [u8; 16],
        class: String,
    },
    /// An event for a notification target (`events.rs`), in the target's lane.
    Notify { target: String, event: Event },
    /// A version or delete marker for a replication destination (`replication.rs`), in
    /// the destination's lane. (Variants are only ever added last: queued tasks are
    /// stored by their variant's index.)
    Replicate(ReplTask),
}

impl Work {
    /// The ordered lane this work is done in, if any.
    pub(crate) fn lane(&self) -> Option<String> {
        match self {
            Work::Notify { target, .. } => Some(notify_lane(target)),
            Work::Replicate(t) => Some(crate::replication::lane(&t.remote, &t.target)),
            _ => None,
        }
    }

    /// What kind of work this is, as [`Backlog`] counts it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Work::DeleteRemote { .. } | Work::Abandoned { .. } => "remote",
            Work::Transition { .. } => "lifecycle",
            Work::Notify { target, .. } => lane_kind(&notify_lane(target)),
            Work::Replicate(t) => lane_kind(&crate::replication::lane(&t.remote, &t.target)),
        }
    }

    /// A line saying what the work is, for dead-letter listings.
    fn describe(&self) -> String {
        match self {
            Work::DeleteRemote { at } => format!("delete remote {}", at.name),
            Work::Abandoned { at, .. } => format!("clean up remote upload {}", at.name),
            Work::Transition {
                bucket, key, class, ..
            } => format!("move {bucket}/{key} to {class}"),
            Work::Notify { event, .. } => {
                format!("{} {}/{}", event.name, event.bucket, event.key)
            }
            Work::Replicate(t) => match t.what {
                crate::ReplWhat::Bucket => format!("send bucket {} to {}", t.bucket, t.remote),
                crate::ReplWhat::Record => format!("send record {} to {}", t.key, t.remote),
                _ => format!(
                    "replicate {}/{} version {} to {}/{}",
                    t.bucket, t.key, t.version_id, t.remote, t.target
                ),
            },
        }
    }
}

/// The lane of a notification target's events.
/// The kind of work an ordered lane holds: events, bucket replication, or a site peer's.
pub(crate) fn lane_kind(lane: &str) -> &'static str {
    match lane.strip_prefix(crate::replication::LANE_PREFIX) {
        Some(rest) if rest.starts_with(crate::site::REMOTE_PREFIX) => "site",
        Some(_) => "replication",
        None => "events",
    }
}

pub(crate) fn notify_lane(target: &str) -> String {
    format!("notify/{target}")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Task {
    pub work: Work,
    /// When it was queued (Unix ns).
    pub queued_ns: u64,
    pub attempts: u32,
    /// Not tried before this (Unix ns).
    pub not_before_ns: u64,
    pub last_error: Option<String>,
}

impl record::Record for Task {}

/// Queued and dead tasks, as `cybs3 server status` shows them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QueueStatus {
    pub queued: u64,
    pub dead: u64,
    /// The last error of each dead letter, newest last (at most 10).
    pub dead_errors: Vec<String>,
}

/// An ordered lane's counters, kept in the commits that change them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneStats {
    /// Tasks waiting.
    pub queued: u64,
    /// Tasks done.
    pub delivered: u64,
    /// Tries that failed (each is retried).
    pub failed: u64,
    /// Tasks that became dead letters (the backlog was full, or the lane was dropped).
    pub dead: u64,
    pub last_error: Option<String>,
    /// When the last error happened (Unix ns).
    pub last_error_ns: u64,
    /// The backlog reached its bound and has not shrunk since.
    pub full: bool,
}

impl record::Record for LaneStats {}

/// A lane's counters and its dead letters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LaneStatus {
    pub stats: LaneStats,
    pub dead_letters: Vec<DeadLetter>,
}

/// A task that will not be tried again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    pub seq: u64,
    /// When it was queued (Unix ns).
    pub queued_ns: u64,
    pub attempts: u32,
    /// What the work was.
    pub what: String,
    pub error: Option<String>,
}

fn lane_stats(tx: &mut crate::commit::Tx, lane: &str) -> Result<LaneStats> {
    tx.get(&keys::lane_stats(lane))
        .map(|b| record::decode(&b))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn put_lane_stats(tx: &mut crate::commit::Tx, lane: &str, stats: &LaneStats) -> Result<()> {
    tx.put(keys::lane_stats(lane), record::encode(stats)?);
    Ok(())
}

/// Queues `work` in the commit `tx` belongs to.
pub(crate) fn push(tx: &mut crate::commit::Tx, work: Work) -> Result<u64> {
    let now_ns = crate::commit::Clock::new().now();
    let seq = tx
        .get(keys::QUEUE_SEQ)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
        + 1;
    tx.put(keys::QUEUE_SEQ.to_vec(), seq.to_be_bytes().to_vec());
    let lane = work.lane();
    let task = Task {
        work,
        queued_ns: now_ns,
        attempts: 0,
        not_before_ns: 0,
        last_error: None,
    };
    tx.put(task_key(lane.as_deref(), seq), record::encode(&task)?);
    tx.queued = true;
    if let Some(lane) = lane {
        let mut stats = lane_stats(tx, &lane)?;
        stats.queued += 1;
        if stats.queued > tx.lane_bound {
            // The backlog is bounded by the setting, not by memory or disk: the oldest
            // task is set aside as a dead letter, counted and listed, never dropped.
            if let Some((oldest, _)) = tx.scan_first(&keys::lane_base(&lane), 1).pop() {
                bury(tx, &oldest, Some("the target's backlog was full"))?;
                stats.queued -= 1;
                stats.dead += 1;
            }
            if !stats.full {
                tracing::warn!(
                    lane,
                    bound = tx.lane_bound,
                    "the backlog is full: its oldest tasks become dead letters"
                );
                stats.full = true;
            }
        }
        put_lane_stats(tx, &lane, &stats)?;
    }
    Ok(seq)
}

/// Where a task is kept: an ordered lane's under its lane (`O lane \0 seq`), so that a
/// round reads each lane from its head and a lane that waits costs nothing to pass;
/// other work under `Q seq`. Both keys end with the sequence number.
pub(crate) fn task_key(lane: Option<&str>, seq: u64) -> Vec<u8> {
    match lane {
        Some(lane) => keys::lane_entry(lane, seq),
        None => keys::task(seq),
    }
}

/// The sequence number a task's key ends with.
pub(crate) fn key_seq(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[key.len() - 8..].try_into().expect("a task key"))
}

/// Moves the task at `key` to the dead letters (with `why` as its last error, if given).
fn bury(tx: &mut crate::commit::Tx, key: &[u8], why: Option<&str>) -> Result<()> {
    let Some(bytes) = tx.get(key) else {
        return Ok(());
    };
    let mut task: Task = record::decode(&bytes)?;
    if let Some(why) = why {
        task.last_error = Some(why.to_string());
    }
    tx.del(key.to_vec());
    tx.put(keys::dead(key_seq(key)), record::encode(&task)?);
    Ok(())
}

/// The task at `key` is done.
pub(crate) fn finish(tx: &mut crate::commit::Tx, key: &[u8]) -> Result<()> {
    let Some(bytes) = tx.get(key) else {
        return Ok(());
    };
    let task: Task = record::decode(&bytes)?;
    tx.del(key.to_vec());
    if let Some(lane) = task.work.lane() {
        let mut stats = lane_stats(tx, &lane)?;
        stats.queued = stats.queued.saturating_sub(1);
        stats.delivered += 1;
        stats.full = false;
        put_lane_stats(tx, &lane, &stats)?;
    }
    Ok(())
}

/// The task at `key`, in a lane, failed for good: it becomes a dead letter, counted.
pub(crate) fn give_up(tx: &mut crate::commit::Tx, key: &[u8], error: &str) -> Result<()> {
    let Some(bytes) = tx.get(key) else {
        return Ok(());
    };
    let task: Task = record::decode(&bytes)?;
    if let Some(lane) = task.work.lane() {
        let mut stats = lane_stats(tx, &lane)?;
        stats.queued = stats.queued.saturating_sub(1);
        stats.dead += 1;
        stats.last_error = Some(error.to_string());
        stats.last_error_ns = crate::commit::Clock::new().now();
        put_lane_stats(tx, &lane, &stats)?;
    }
    bury(tx, key, Some(error))
}

/// A failed try: the task at `key` waits longer, or becomes a dead letter.
pub(crate) fn retry(tx: &mut crate::commit::Tx, key: &[u8], error: &str) -> Result<()> {
    let now_ns = crate::commit::Clock::new().now();
    let Some(bytes) = tx.get(key) else {
        return Ok(());
    };
    let mut task: Task = record::decode(&bytes)?;
    task.attempts += 1;
    task.last_error = Some(error.to_string());
    let delay = match task.work.lane() {
        Some(lane) => {
            let mut stats = lane_stats(tx, &lane)?;
            stats.failed += 1;
            stats.last_error = Some(error.to_string());
            stats.last_error_ns = now_ns;
            put_lane_stats(tx, &lane, &stats)?;
            // Full jitter over the upper half, so that targets coming back are not hit
            // by every lane at once.
            let full = (LANE_FIRST_DELAY * (1 << task.attempts.min(8))).min(LANE_MAX_DELAY);
            full.mul_f64(0.5 + rand::random::<f64>() / 2.0)
        }
        None if task.attempts >= MAX_ATTEMPTS => {
            tx.del(key.to_vec());
            tx.put(keys::dead(key_seq(key)), record::encode(&task)?);
            return Ok(());
        }
        None => Duration::from_secs(1 << task.attempts.min(10)).min(MAX_DELAY),
    };
    task.not_before_ns = now_ns + delay.as_nanos() as u64;
    tx.put(key.to_vec(), record::encode(&task)?);
    Ok(())
}

/// Every queued task of `lane` becomes a dead letter (its target was removed).
pub(crate) fn drop_lane(tx: &mut crate::commit::Tx, lane: &str, why: &str) -> Result<()> {
    let mut stats = lane_stats(tx, lane)?;
    for (k, _) in tx.scan(&keys::lane_base(lane)) {
        bury(tx, &k, Some(why))?;
        stats.dead += 1;
    }
    stats.queued = 0;
    stats.full = false;
    put_lane_stats(tx, lane, &stats)
}

/// Files the lane tasks a store from before lanes kept under `Q seq` under their lanes
/// (at open; `Q` then holds only work outside lanes, which is little).
pub(crate) fn file_lanes(tx: &mut crate::commit::Tx) -> Result<()> {
    for (k, v) in tx.scan(&[keys::QUEUE]) {
        let task: Task = record::decode(&v)?;
        if let Some(lane) = task.work.lane() {
            tx.del(k.clone());
            tx.put(keys::lane_entry(&lane, key_seq(&k)), v);
        }
    }
    Ok(())
}

/// A queued task and its key (`task_key`).
pub(crate) type Queued = (Vec<u8>, Task);

/// Wakes the queue's thread when a commit queued work, and tells it to stop.
#[derive(Default)]
pub(crate) struct Kick {
    /// (work was queued since the thread last looked, the store is closing)
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Kick {
    pub fn wake(&self) {
        self.state.lock().unwrap().0 = true;
        self.cv.notify_one();
    }

    pub fn close(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_one();
    }

    fn is_closed(&self) -> bool {
        self.state.lock().unwrap().1
    }

    /// Waits until woken or `timeout`; false once closing.
    fn wait(&self, timeout: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (mut state, _) = self
            .cv
            .wait_timeout_while(state, timeout, |(kicked, closed)| !*kicked && !*closed)
            .unwrap();
        state.0 = false;
        !state.1
    }
}

/// The queue's thread: runs due work when a commit queued some, and every [`POLL`] while
/// work waits for a retry.
pub(crate) fn work_loop(store: std::sync::Weak<crate::store::Inner>, kick: std::sync::Arc<Kick>) {
    let mut waiting = true;
    let mut last = std::time::Instant::now();
    loop {
        let idle = match waiting {
            true => POLL,
            false => Duration::from_secs(5),
        };
        if !kick.wait(idle) {
            return;
        }
        // Work queued meanwhile goes in the same round, and its finish in one commit.
        if let Some(rest) = GATHER.checked_sub(last.elapsed()) {
            std::thread::sleep(rest);
        }
        let Some(inner) = store.upgrade() else { return };
        let s = Store::background(inner);
        loop {
            let round = s.run_work();
            last = std::time::Instant::now();
            match round {
                Ok(Round { full: true, .. }) if !kick.is_closed() => {}
                Ok(round) => {
                    waiting = round.waiting;
                    break;
                }
                Err(e) => {
                    tracing::warn!("queued work: {e}");
                    break;
                }
            }
        }
    }
}

/// What one round of [`Store::run_work`] saw.
pub(crate) struct Round {
    /// As many tasks as a round takes were done: more may be due at once.
    pub full: bool,
    /// Tasks are queued (due later, or waiting for a client).
    pub waiting: bool,
}

impl Store {
    /// Queues `work` in a commit of its own; its sequence number.
    pub(crate) fn add_work(&self, work: Work) -> Result<u64> {
        match self.submit(Op::AddWork(work))? {
            crate::ops::Out::Queued(seq) => Ok(seq),
            _ => unreachable!("AddWork answers Queued"),
        }
    }

    pub(crate) fn finish_work(&self, seq: u64) -> Result<()> {
        self.submit(Op::FinishWork(vec![keys::task(seq)])).map(drop)
    }

    /// Files lane tasks a store from before lanes kept with other work (`file_lanes`).
    pub(crate) fn file_lanes(&self) -> Result<()> {
        let legacy = {
            let (rtxn, db) = self.read()?;
            let mut found = false;
            for kv in db.prefix_iter(&rtxn, &[keys::QUEUE])? {
                found |= record::decode::<Task>(kv?.1)?.work.lane().is_some();
            }
            found
        };
        match legacy {
            true => self.submit(Op::FileLanes).map(drop),
            false => Ok(()),
        }
    }

    /// Does a round of the work that is due: the work outside lanes in queue order, and
    /// each lane from its head up to its first task that waits; at most [`ROUND`] tasks
    /// of each. A lane whose head failed before sends that task alone, as a probe: a
    /// target that is down gets one try per backoff, not a round's worth.
    pub(crate) fn run_work(&self) -> Result<Round> {
        let now = crate::commit::Clock::new().now();
        let remote = self.remote_store().ok();
        let notifier = self.inner.notifier.get();
        let replicator = self.inner.replicator.get();
        // Without a client (a store opened without a server) the work waits.
        let client = |work: &Work| match work {
            Work::Notify { .. } => notifier.is_some(),
            Work::Replicate(_) => replicator.is_some(),
            _ => remote.is_some(),
        };
        let (mut waiting, mut probes, mut full) = (false, false, false);
        let mut due: Vec<Queued> = Vec::new();
        {
            let (rtxn, db) = self.read()?;
            for kv in db.prefix_iter(&rtxn, &[keys::QUEUE])? {
                let (k, v) = kv?;
                let task: Task = record::decode(v)?;
                let mine = matches!(task.work, Work::Abandoned { .. })
                    && task.queued_ns >= self.inner.opened_ns;
                if task.not_before_ns > now || mine || !client(&task.work) {
                    waiting = true;
                    continue;
                }
                due.push((k.to_vec(), task));
                if due.len() == ROUND {
                    full = true;
                    break;
                }
            }
            let mut lanes = Vec::new();
            for kv in db.prefix_iter(&rtxn, &[keys::LANE_STATS])? {
                let (k, v) = kv?;
                if record::decode::<LaneStats>(v)?.queued > 0 {
                    lanes.push(String::from_utf8_lossy(&k[1..]).into_owned());
                }
            }
            for lane in lanes {
                let round = match lane.starts_with(crate::replication::LANE_PREFIX) {
                    true => REPLICATION_ROUND,
                    false => ROUND,
                };
                for (taken, kv) in db.prefix_iter(&rtxn, &keys::lane_base(&lane))?.enumerate() {
                    let (k, v) = kv?;
                    let task: Task = record::decode(v)?;
                    if task.not_before_ns > now || !client(&task.work) {
                        waiting = true;
                        break;
                    }
                    if taken == round {
                        full = true;
                        break;
                    }
                    // A barrier (a bucket's state for a peer) goes alone: after what
                    // was queued before it, before what was queued after.
                    let barrier = matches!(&task.work, Work::Replicate(t) if t.what.is_barrier());
                    if barrier && taken > 0 {
                        full = true;
                        break;
                    }
                    let probe = task.attempts > 0 || barrier;
                    due.push((k.to_vec(), task));
                    if probe {
                        probes = true;
                        break;
                    }
                }
            }
        }
        let (events, other): (Vec<_>, Vec<_>) = due
            .iter()
            .partition(|(_, t)| matches!(t.work, Work::Notify { .. }));
        let (replications, other): (Vec<_>, Vec<_>) = other
            .into_iter()
            .partition(|(_, t)| matches!(t.work, Work::Replicate(_)));
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut replicated = Vec::new();
        // Notifications and replication go at once: a slow destination does not hold
        // back the events, nor a slow target the replicas.
        std::thread::scope(|scope| {
            let events = scope.spawn(|| {
                let (mut done, mut failed) = (Vec::new(), Vec::new());
                if let Some(notifier) = notifier {
                    crate::rounds::notify_round(notifier.as_ref(), &events, &mut done, &mut failed);
                }
                (done, failed)
            });
            if let Some(replicator) = replicator {
                crate::rounds::replication_round(
                    replicator.as_ref(),
                    &replications,
                    &mut replicated,
                    &mut failed,
                );
            }
            let (d, f) = events.join().expect("the notification round panicked");
            done.extend(d);
            failed.extend(f);
        });
        if !replicated.is_empty() {
            self.submit(Op::FinishReplication(replicated))?;
        }
        for (key, task) in other {
            match self.remote_work(remote.expect("checked above"), &task.work) {
                Ok(()) => done.push(key.clone()),
                Err(e) => failed.push((key.clone(), task, e.to_string())),
            }
        }
        if !done.is_empty() {
            self.submit(Op::FinishWork(done))?;
        }
        for (key, task, error) in &failed {
            let seq = key_seq(key);
            tracing::warn!(
                seq,
                attempts = task.attempts + 1,
                "queued work failed: {error}"
            );
            self.submit(Op::RetryWork {
                key: key.clone(),
                error: error.clone(),
            })?;
        }
        Ok(Round {
            // A probe that went through lets the rest of its lane go at once.
            full: full || (probes && failed.is_empty()),
            waiting: waiting || !failed.is_empty(),
        })
    }

    fn remote_work(
        &self,
        remote: &std::sync::Arc<dyn crate::remote::RemoteStore>,
        work: &Work,
    ) -> std::io::Result<()> {
        match work {
            Work::DeleteRemote { at } => remote.delete(&at.tier, &at.name),
            Work::Abandoned { id, at } => match self.is_referenced(id) {
                Ok(true) => Ok(()),
                Ok(false) => remote.delete(&at.tier, &at.name),
                Err(e) => Err(std::io::Error::other(e.to_string())),
            },
            Work::Transition {
                bucket,
                key,
                version_id,
                sort,
                class,
            } => self.queued_transition(bucket, key, version_id, sort, class),
            Work::Notify { .. } | Work::Replicate(_) => {
                unreachable!("sent by the notifier or the replicator")
            }
        }
    }

    /// A queued [`Work::Transition`]: done when moved, or when the version is gone.
    fn queued_transition(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        sort: &[u8; 16],
        class: &str,
    ) -> std::io::Result<()> {
        match self.head(bucket, key, Some(version_id)) {
            Ok(v) if v.sort == *sort => {}
            Ok(_) | Err(Error::NoSuchKey(_) | Error::NoSuchVersion(_) | Error::NoSuchBucket(_)) => {
                return Ok(())
            }
            Err(Error::DeleteMarker { .. }) => return Ok(()),
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
        match self.transition_asked(bucket, key, version_id, class) {
            // Replaced or deleted meanwhile: the new version has its own task, if any.
            Ok(_) | Err(Error::PreconditionFailed) => Ok(()),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }

    /// Tasks queued, and dead letters.
    pub fn queue_status(&self) -> Result<QueueStatus> {
        let (rtxn, db) = self.read()?;
        let mut status = QueueStatus::default();
        for kv in db.prefix_iter(&rtxn, &[keys::QUEUE])? {
            kv?;
            status.queued += 1;
        }
        for kv in db.prefix_iter(&rtxn, &[keys::LANE_STATS])? {
            status.queued += record::decode::<LaneStats>(kv?.1)?.queued;
        }
        for kv in db.prefix_iter(&rtxn, &[keys::DEAD])? {
            let task: Task = record::decode(kv?.1)?;
            status.dead += 1;
            status
                .dead_errors
                .push(task.last_error.unwrap_or_else(|| "no error kept".into()));
        }
        let keep = status.dead_errors.len().saturating_sub(10);
        status.dead_errors.drain(..keep);
        Ok(status)
    }

    /// The lanes, with or without tasks, whose names begin with `prefix`.
    pub(crate) fn lanes_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let (rtxn, db) = self.read()?;
        let mut base = vec![keys::LANE_STATS];
        base.extend_from_slice(prefix.as_bytes());
        let mut lanes = Vec::new();
        for kv in db.prefix_iter(&rtxn, &base)? {
            lanes.push(String::from_utf8_lossy(&kv?.0[1..]).into_owned());
        }
        Ok(lanes)
    }

    /// A notification target's counters and dead letters.
    pub fn notify_status(&self, target: &str) -> Result<LaneStatus> {
        self.lane_status(&notify_lane(target))
    }

    /// When the oldest task waiting in `lane` was queued (Unix ns), if one waits.
    pub(crate) fn lane_head_ns(&self, lane: &str) -> Result<Option<u64>> {
        let (rtxn, db) = self.read()?;
        let head = db.prefix_iter(&rtxn, &keys::lane_base(lane))?.next();
        head.map(|kv| Ok(record::decode::<Task>(kv?.1)?.queued_ns))
            .transpose()
    }

    /// A lane's counters and dead letters.
    pub(crate) fn lane_status(&self, lane: &str) -> Result<LaneStatus> {
        let lane = lane.to_string();
        let (rtxn, db) = self.read()?;
        let stats = db
            .get(&rtxn, &keys::lane_stats(&lane))?
            .map(record::decode)
            .transpose()?
            .unwrap_or_default();
        let mut dead_letters = Vec::new();
        for kv in db.prefix_iter(&rtxn, &[keys::DEAD])? {
            let (k, v) = kv?;
            let task: Task = record::decode(v)?;
            if task.work.lane().as_deref() == Some(lane.as_str()) {
                dead_letters.push(DeadLetter {
                    seq: keys::task_seq(k),
                    queued_ns: task.queued_ns,
                    attempts: task.attempts,
                    what: task.work.describe(),
                    error: task.last_error,
                });
            }
        }
        Ok(LaneStatus {
            stats,
            dead_letters,
        })
    }

    /// A notification target is gone: its queued events become dead letters.
    pub fn drop_notify_target(&self, target: &str) -> Result<()> {
        self.submit(Op::DropLane(notify_lane(target))).map(drop)
    }

    /// How many tasks a lane (a notification target) may hold before its oldest become
    /// dead letters.
    pub fn set_lane_bound(&self, bound: u64) {
        self.inner
            .lane_bound
            .store(bound.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Gives the store the client it delivers notifications with.
    pub fn set_notifier(&self, notifier: std::sync::Arc<dyn crate::events::Notifier>) {
        let _ = self.inner.notifier.set(notifier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::RemoteTier;
    use crate::StoreConfig;

    /// A store no server runs (so no work is done) with one remote delete queued.
    fn queued_delete(dir: &std::path::Path) -> (Store, u64) {
        let mut cfg = StoreConfig::new(vec![dir.join("d0")]);
        cfg.background = false;
        let store = Store::open(cfg).unwrap();
        let at = RemoteRef {
            tier: RemoteTier {
                endpoint: "http://127.0.0.1:1".into(),
                bucket: "b".into(),
                prefix: String::new(),
                region: "us-east-1".into(),
                access_key: "k".into(),
                sealed_secret: Vec::new(),
            },
            name: "b/k/id".into(),
        };
        let seq = store.add_work(Work::DeleteRemote { at }).unwrap();
        (store, seq)
    }

    fn retry(store: &Store, seq: u64, error: &str) {
        let error = error.to_string();
        let key = keys::task(seq);
        store.submit(Op::RetryWork { key, error }).unwrap();
    }

    #[test]
    fn work_failing_again_and_again_becomes_a_dead_letter() {
        let dir = tempfile::tempdir().unwrap();
        let (store, seq) = queued_delete(dir.path());
        let status = store.queue_status().unwrap();
        assert_eq!((status.queued, status.dead), (1, 0));
        for i in 0..MAX_ATTEMPTS {
            retry(&store, seq, &format!("refused {i}"));
        }
        let status = store.queue_status().unwrap();
        assert_eq!((status.queued, status.dead), (0, 1));
        assert_eq!(
            status.dead_errors,
            [format!("refused {}", MAX_ATTEMPTS - 1)]
        );
    }

    #[test]
    fn a_retry_waits_longer_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let (store, seq) = queued_delete(dir.path());
        let not_before = |store: &Store| {
            let (rtxn, db) = store.read().unwrap();
            let bytes = db.get(&rtxn, &keys::task(seq)).unwrap().unwrap();
            record::decode::<Task>(bytes).unwrap().not_before_ns
        };
        let now = crate::commit::Clock::new().now();
        retry(&store, seq, "a");
        let first = not_before(&store) - now;
        retry(&store, seq, "b");
        let second = not_before(&store) - now;
        assert!(
            first >= 2_000_000_000 && second >= 4_000_000_000,
            "{first} {second}"
        );
    }
}
