//! How a round of the work queue sends its lanes' events and replicas: one chain per
//! target (or destination) and key, the chains at once, each in order. Of each lane's
//! failures only the oldest is retried, and holds its lane until then (`queue.rs`).

use crate::queue::{key_seq, notify_lane, Queued, Task, Work};
use crate::replication::{ReplChain, Replicator};
use std::collections::HashMap;

/// Sends a round's events: one chain per target and key, the chains at once. The
/// delivered go to `done`; of each lane's failures only the oldest goes to `failed`
/// (retried later, and holding the lane until then): the others, not tried or cut off by
/// the same outage, stay queued as they were.
pub(crate) fn notify_round<'a>(
    notifier: &dyn crate::events::Notifier,
    events: &[&'a Queued],
    done: &mut Vec<Vec<u8>>,
    failed: &mut Vec<(Vec<u8>, &'a Task, String)>,
) {
    let event = |task: &'a Task| match &task.work {
        Work::Notify { target, event } => Some((target.as_str(), event)),
        _ => None,
    };
    let mut index = HashMap::new();
    let mut chains: Vec<(&str, Vec<&'a Queued>)> = Vec::new();
    for &queued in events {
        let Some((target, e)) = event(&queued.1) else {
            continue;
        };
        let at = *index
            .entry((target, e.bucket.as_str(), e.key.as_str()))
            .or_insert_with(|| {
                chains.push((target, Vec::new()));
                chains.len() - 1
            });
        chains[at].1.push(queued);
    }
    let asked: Vec<crate::events::Chain> = chains
        .iter()
        .map(|(target, c)| crate::events::Chain {
            target,
            events: c.iter().filter_map(|q| event(&q.1)).map(|e| e.1).collect(),
        })
        .collect();
    let sent = notifier.deliver(&asked);
    let mut failures = Vec::new();
    for ((target, chain), sent) in chains.iter().zip(sent) {
        done.extend(chain.iter().take(sent.delivered).map(|q| q.0.clone()));
        if let (Some(error), Some(&(key, task))) = (sent.error, chain.get(sent.delivered)) {
            failures.push((notify_lane(target), key, task, error));
        }
    }
    failed.extend(oldest_per_lane(failures));
}

/// Sends a round's replication tasks: one chain per destination and key, the chains at
/// once. The sent go to `done`, with those refused for good (and their errors); of each
/// lane's failures worth a retry, only the oldest goes to `failed`, as in [`notify_round`].
pub(crate) fn replication_round<'a>(
    replicator: &dyn Replicator,
    tasks: &[&'a Queued],
    done: &mut Vec<(Vec<u8>, Option<String>)>,
    failed: &mut Vec<(Vec<u8>, &'a Task, String)>,
) {
    let task_of = |task: &'a Task| match &task.work {
        Work::Replicate(t) => Some(t),
        _ => None,
    };
    let mut index = HashMap::new();
    let mut chains: Vec<(String, Vec<&'a Queued>)> = Vec::new();
    for &queued in tasks {
        let (Some(t), Some(lane)) = (task_of(&queued.1), queued.1.work.lane()) else {
            continue;
        };
        let at = *index
            .entry((lane.clone(), t.bucket.as_str(), t.key.as_str()))
            .or_insert_with(|| {
                chains.push((lane, Vec::new()));
                chains.len() - 1
            });
        chains[at].1.push(queued);
    }
    let asked: Vec<ReplChain> = chains
        .iter()
        .map(|(_, c)| ReplChain {
            tasks: c.iter().filter_map(|q| task_of(&q.1)).collect(),
        })
        .collect();
    let sent = replicator.replicate(&asked);
    let mut failures = Vec::new();
    for ((lane, chain), sent) in chains.iter().zip(sent) {
        let handled = sent.outcomes.len();
        done.extend(chain.iter().map(|q| q.0.clone()).zip(sent.outcomes));
        if let (Some(error), Some(&(key, task))) = (sent.stopped, chain.get(handled)) {
            failures.push((lane.clone(), key, task, error));
        }
    }
    failed.extend(oldest_per_lane(failures));
}

/// Of each lane's failures (lane, key, task, error), the oldest: it is retried later and
/// holds its lane until then; the others, not tried or cut off by the same outage, stay
/// queued as they were.
fn oldest_per_lane<'a>(
    failures: Vec<(String, &Vec<u8>, &'a Task, String)>,
) -> impl Iterator<Item = (Vec<u8>, &'a Task, String)> {
    let mut oldest: HashMap<String, (Vec<u8>, &'a Task, String)> = HashMap::new();
    for (lane, key, task, error) in failures {
        if oldest
            .get(&lane)
            .is_none_or(|o| key_seq(&o.0) > key_seq(key))
        {
            oldest.insert(lane, (key.clone(), task, error));
        }
    }
    oldest.into_values()
}
