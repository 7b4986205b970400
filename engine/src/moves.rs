//! Moving data between pools without changing what it is: for drains (`drain.rs`) and
//! lifecycle transitions ([`Store::transition`]).
//!
//! A move copies the data (read block by block, each block checked and rebuilt from
//! parity where a shard is bad) into shard files in the target pool, then swaps the
//! copies into the record that holds the data in one operation (`Op::Move`), which
//! hands the originals to the reclaimer. The version id, ETag, metadata, tags,
//! checksums and lock state stay as they were. A client that deletes or overwrites the
//! data meanwhile makes the swap refuse, and the copies are removed. A crash leaves
//! either the originals referenced and the copies orphans (swept at the next start), or
//! the copies referenced and the originals orphans: never both, never neither.

use crate::classes::Tier;
use crate::error::{Error, Result};
use crate::held::Owner;
use crate::ops::Op;
use crate::pool::{Pool, Writing};
use crate::read::ObjectReader;
use crate::record::{PartData, PartEntry};
use crate::remote::LockRule;
use crate::shard::ShardHeader;
use crate::write::{part_version, ObjectWriter, Target};
use crate::Store;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Store {
    /// What the shard files of `data` say they hold (bucket, key, upload): a copy of
    /// them describes itself the same way.
    pub(crate) fn origin(&self, data: &PartData) -> Result<Origin> {
        let layout = data
            .shards()
            .ok_or_else(|| Error::Meta("only data in shard files has shard headers".into()))?;
        let from = self
            .inner
            .pools
            .get(layout.pool)
            .ok_or_else(|| Error::Pool(format!("pool {} is unknown", layout.pool)))?;
        let header = from
            .open_shards(&layout.id, layout.rot as usize)
            .iter()
            .flatten()
            .find_map(|f| ShardHeader::read(f).ok())
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "data {}: no readable shard",
                    hex::encode(layout.id)
                ))
            })?;
        Ok(Origin {
            bucket: header.bucket,
            key: header.key,
            upload: header.upload,
        })
    }

    /// Copies one piece of data (in shard files, or a range of a remote object) into
    /// shard files of `to`: the copy, referenced by nothing yet, and the hold that keeps
    /// a drain of `to` waiting for its swap.
    pub(crate) fn copy_data(
        &self,
        data: PartData,
        size: u64,
        origin: &Origin,
        to: &Arc<Pool>,
        pace: &mut Pace,
    ) -> Result<(PartData, Writing)> {
        let part = PartEntry {
            number: 0,
            size,
            etag: String::new(),
            checksums: Vec::new(),
            data,
        };
        let reader = ObjectReader::new(self.clone(), part_version(&origin.key, part), vec![None]);
        let mut reader = reader.all();
        let target = Target::Copy {
            upload: origin.upload.clone(),
        };
        let mut writer = ObjectWriter::new(self.clone(), &origin.bucket, &origin.key, target);
        writer.set_pool(to.clone());
        let mut buf = vec![0; self.inner.block_size];
        loop {
            if self.inner.closing() {
                return Err(Error::Meta("store is closing".into()));
            }
            let n = read_full(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n])?;
            pace.took(n);
        }
        writer.seal_copy()
    }

    /// Swaps copies into `owner`'s record (and with `class`, sets its storage class);
    /// refused copies are removed.
    pub(crate) fn swap_data(
        &self,
        owner: &Owner,
        moves: Vec<(PartData, PartData)>,
        class: Option<String>,
    ) -> Result<()> {
        let copies: Vec<PartData> = moves.iter().map(|(_, to)| *to).collect();
        let result = self.submit(Op::Move {
            owner: owner.clone(),
            moves,
            class,
        });
        if let Err(e) = &result {
            // Refused before any drive changed: the copies are ours to remove. Other
            // failures may have reached some drives; start-up sweeps what is unreferenced.
            if matches!(e, Error::PreconditionFailed | Error::ObjectLocked(_)) {
                for copy in copies {
                    self.remove_shards(&copy);
                }
            }
        }
        result.map(drop)
    }

    fn remove_shards(&self, data: &PartData) {
        let Some(layout) = data.shards() else { return };
        if let Some(pool) = self.inner.pools.get(layout.pool) {
            for d in pool.drives.iter() {
                let _ = std::fs::remove_file(d.shard_path(&layout.id));
            }
        }
    }

    /// A lifecycle transition: version `version_id` of `key` takes storage class `class`,
    /// its data in shard files moved into the class's pool (inline data stays in the index, where
    /// every class keeps small objects). `false` when there was nothing to do (a delete
    /// marker, or the version is in that class and pool already). A version under object
    /// lock is refused (`ObjectLocked`); a version changed meanwhile is left alone
    /// (`PreconditionFailed`).
    pub fn transition(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        class: &str,
    ) -> Result<bool> {
        let binding = self
            .storage_class(class)
            .ok_or_else(|| Error::Tier(format!("storage class {class} is not bound to a tier")))?;
        let v = match self.head(bucket, key, Some(version_id)) {
            Ok(v) => v,
            Err(Error::DeleteMarker { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        let pool = match &binding.tier {
            Tier::Pool(pool) => pool,
            Tier::Remote(remote) => {
                return self.transition_remote(bucket, &v, class, remote, LockRule::Respect)
            }
        };
        let to = self.inner.pools.named(pool)?;
        if to.state() != crate::pool::PoolState::Active {
            return Err(Error::Tier(format!(
                "storage class {class}: its pool {} takes no data now",
                to.name
            )));
        }
        // Parts in shard files of another pool, and every part on a remote tier.
        let elsewhere: Vec<&PartEntry> = v
            .parts
            .iter()
            .filter(|p| p.data.is_remote() || p.data.shards().is_some_and(|l| l.pool != to.id))
            .collect();
        let same_class = v.meta.storage_class.as_deref().unwrap_or("STANDARD") == class;
        if same_class && elsewhere.is_empty() {
            return Ok(false);
        }
        // Checked again inside the commit; here it spares copying data that cannot move.
        crate::lock::check_removable(&v, crate::commit::Clock::new().now(), false)?;
        let mut pace = Pace::new(self.inner.move_bandwidth);
        let mut moves = Vec::new();
        let mut holds = Vec::new();
        let from_remote = Origin {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload: None,
        };
        for p in elsewhere {
            let copied = match p.data.is_remote() {
                true => Ok(from_remote.clone()),
                false => self.origin(&p.data),
            }
            .and_then(|origin| self.copy_data(p.data, p.size, &origin, &to, &mut pace));
            match copied {
                Ok((copy, hold)) => {
                    moves.push((p.data, copy));
                    holds.push(hold);
                }
                Err(e) => {
                    for (_, copy) in &moves {
                        self.remove_shards(copy);
                    }
                    return Err(e);
                }
            }
        }
        let owner = Owner::Version {
            bucket: bucket.to_string(),
            key: key.to_string(),
            sort: v.sort,
        };
        self.swap_data(&owner, moves, Some(class.to_string()))?;
        Ok(true)
    }
}

/// Whose data a copy holds, as its shard headers name it.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub bucket: String,
    pub key: String,
    /// Multipart upload id and part number, for an upload's parts.
    pub upload: Option<(String, u32)>,
}

/// Fills `buf` as far as the reader goes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Corrupt(e.to_string())),
        }
    }
    Ok(n)
}

/// Holds moving to a rate (`StoreConfig::move_bandwidth`) by sleeping as it goes.
pub(crate) struct Pace {
    rate: Option<u64>,
    start: Instant,
    bytes: u64,
}

impl Pace {
    pub fn new(rate: Option<u64>) -> Pace {
        Pace {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    fn took(&mut self, n: usize) {
        let Some(rate) = self.rate.filter(|&r| r > 0) else {
            return;
        };
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}
