//! Removes shard files once the commit that dropped their last reference is durable.
//!
//! Runs on its own thread so deletes never stall the committer. Anything still
//! queued at a crash is unreferenced and swept at the next start.

use crate::drive::Drive;
use crate::record::DataId;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

pub(crate) struct Reclaimer {
    tx: Sender<DataId>,
}

impl Reclaimer {
    pub fn spawn(drives: Arc<Vec<Drive>>) -> (Reclaimer, JoinHandle<()>) {
        let (tx, rx) = channel::<DataId>();
        let handle = std::thread::Builder::new()
            .name("cybs3-reclaim".into())
            .spawn(move || {
                for id in rx {
                    for d in drives.iter() {
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
