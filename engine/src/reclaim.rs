//! Removes shard files once the commit that dropped their last reference is durable.
//!
//! Runs on its own thread so deletes never stall the committer. Anything still
//! queued at a crash is unreferenced and swept at the next start.

use crate::pool::Pools;
use crate::record::DataId;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) struct Reclaimer {
    tx: Sender<DataId>,
}

impl Reclaimer {
    /// Data ids are unique across pools, so an id's files are looked for in every pool
    /// rather than carried with it.
    pub fn spawn(pools: Arc<Pools>) -> (Reclaimer, JoinHandle<()>) {
        let (tx, rx) = channel::<DataId>();
        let handle = std::thread::Builder::new()
            .name("cybs3-reclaim".into())
            .spawn(move || {
                for id in rx {
                    for d in pools.all().iter().flat_map(|p| p.drives.iter()) {
                        let _ = std::fs::remove_file(d.shard_path(&id));
                    }
                }
            })
            .expect("spawn reclaim thread");
        (Reclaimer { tx }, handle)
    }

    pub fn drop_data(&self, ids: Vec<DataId>) {
        for id in ids {
            let _ = self.tx.send(id);
        }
    }
}
