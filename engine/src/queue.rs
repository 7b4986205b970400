//! The durable work queue: work a change causes is queued in the same commit as the
//! change (`Q seq` records), so a crash can neither lose the work of an acknowledged
//! change nor leave work for a change that did not happen.
//!
//! The healer's thread does the work that is due (`Store::run_work`), at least once:
//! a failure is retried with a growing delay, and after [`MAX_ATTEMPTS`] the task moves
//! to the dead letters (`D seq`), which `cybs3 server status` counts. The first users
//! are remote tiers (`remote.rs`): the delete of a remote object whose version is gone,
//! and the cleanup of an upload a crash cut off.

use crate::error::{Error, Result};
use crate::ops::Op;
use crate::record::{self, keys, DataId};
use crate::remote::RemoteRef;
use crate::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tries before a task becomes a dead letter.
pub const MAX_ATTEMPTS: u32 = 20;
/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(600);
/// Tasks looked at per round.
const ROUND: usize = 16;

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
    let task = Task {
        work,
        queued_ns: now_ns,
        attempts: 0,
        not_before_ns: 0,
        last_error: None,
    };
    tx.put(keys::task(seq), record::encode(&task)?);
    Ok(seq)
}

/// A failed try: the task waits longer, or becomes a dead letter.
pub(crate) fn retry(tx: &mut crate::commit::Tx, seq: u64, error: &str) -> Result<()> {
    let now_ns = crate::commit::Clock::new().now();
    let Some(bytes) = tx.get(&keys::task(seq)) else {
        return Ok(());
    };
    let mut task: Task = record::decode(&bytes)?;
    task.attempts += 1;
    task.last_error = Some(error.to_string());
    if task.attempts >= MAX_ATTEMPTS {
        tx.del(keys::task(seq));
        tx.put(keys::dead(seq), record::encode(&task)?);
        return Ok(());
    }
    let delay = Duration::from_secs(1 << task.attempts.min(10)).min(MAX_DELAY);
    task.not_before_ns = now_ns + delay.as_nanos() as u64;
    tx.put(keys::task(seq), record::encode(&task)?);
    Ok(())
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
        self.submit(Op::FinishWork(seq)).map(drop)
    }

    /// Does the work that is due, a round at a time; `true` when a round was full (more
    /// may be due at once).
    pub(crate) fn run_work(&self) -> Result<bool> {
        let Ok(remote) = self.remote_store() else {
            // No client for remote tiers (a store opened without a server): the work waits.
            return Ok(false);
        };
        let now = crate::commit::Clock::new().now();
        let due: Vec<(u64, Task)> = {
            let (rtxn, db) = self.read()?;
            let mut due = Vec::new();
            for kv in db.prefix_iter(&rtxn, &[keys::QUEUE])? {
                let (k, v) = kv?;
                let task: Task = record::decode(v)?;
                let mine = matches!(task.work, Work::Abandoned { .. })
                    && task.queued_ns >= self.inner.opened_ns;
                if task.not_before_ns <= now && !mine {
                    due.push((keys::task_seq(k), task));
                }
                if due.len() == ROUND {
                    break;
                }
            }
            due
        };
        let full = due.len() == ROUND;
        for (seq, task) in due {
            let done = match &task.work {
                Work::DeleteRemote { at } => remote.delete(&at.tier, &at.name),
                Work::Abandoned { id, at } => match self.is_referenced(id)? {
                    true => Ok(()),
                    false => remote.delete(&at.tier, &at.name),
                },
                Work::Transition {
                    bucket,
                    key,
                    version_id,
                    sort,
                    class,
                } => self.queued_transition(bucket, key, version_id, sort, class),
            };
            match done {
                Ok(()) => self.finish_work(seq)?,
                Err(e) => {
                    tracing::warn!(seq, attempts = task.attempts + 1, "queued work failed: {e}");
                    self.submit(Op::RetryWork {
                        seq,
                        error: e.to_string(),
                    })?;
                }
            }
        }
        Ok(full)
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
        store.submit(Op::RetryWork { seq, error }).unwrap();
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
