//! The durable queue's backlog by kind of work, as metrics and diagnostics show it: ordered
//! lanes counted from their counters, unordered tasks and dead letters one by one.

use crate::error::Result;
use crate::queue::{lane_kind, LaneStats, Task};
use crate::record::{self, keys};
use crate::Store;
use serde::Serialize;

/// The work of one kind waiting in the queue ([`Store::backlog`]).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Backlog {
    pub kind: &'static str,
    pub queued: u64,
    pub dead: u64,
}

impl Store {
    /// Tasks waiting and dead letters by kind of work (`events`, `replication`, `site`,
    /// `lifecycle`, `remote`), every kind listed. Lanes are counted from their
    /// counters; only unordered tasks and dead letters are read one by one.
    pub fn backlog(&self) -> Result<Vec<Backlog>> {
        const KINDS: [&str; 5] = ["events", "replication", "site", "lifecycle", "remote"];
        let mut out: Vec<Backlog> = KINDS
            .iter()
            .map(|&kind| Backlog {
                kind,
                ..Backlog::default()
            })
            .collect();
        let at = |kind: &str| KINDS.iter().position(|k| *k == kind).expect("a known kind");
        let (rtxn, db) = self.read()?;
        for kv in db.prefix_iter(&rtxn, &[keys::QUEUE])? {
            let task: Task = record::decode(kv?.1)?;
            out[at(task.work.kind())].queued += 1;
        }
        for kv in db.prefix_iter(&rtxn, &[keys::LANE_STATS])? {
            let (k, v) = kv?;
            let kind = lane_kind(&String::from_utf8_lossy(&k[1..]));
            out[at(kind)].queued += record::decode::<LaneStats>(v)?.queued;
        }
        for kv in db.prefix_iter(&rtxn, &[keys::DEAD])? {
            let task: Task = record::decode(kv?.1)?;
            out[at(task.work.kind())].dead += 1;
        }
        Ok(out)
    }
}
