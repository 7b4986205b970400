//! Healing and checking: drives back in the set, shards verified and rebuilt, orphans swept.
//!
//! `check` only looks; `heal` also repairs. Both walk every piece of data the index
//! references (object versions and multipart parts) and verify every shard, data and
//! parity: block by block in shard files, whole in the records of inline data.

use crate::codec::reconstruct;
use crate::drive::{sync_dir, DriveState};
use crate::error::{Error, Result};
use crate::held::Owner;
use crate::ops::Op;
use crate::pool::{Pool, PoolState};
use crate::record::{self, keys, DataId, ObjectVersion, PartData, PartRecord};
use crate::shard::{read_block, verify, Geometry, ShardHeader, ShardWriter};
use crate::Store;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime};

/// What a check or heal found (and, for heal, fixed).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HealReport {
    /// Drives that were unformatted, damaged or behind, by index.
    pub drives_bad: Vec<usize>,
    /// Drives formatted and brought back in sync (heal only).
    pub drives_healed: Vec<usize>,
    /// Drives that could not be written: not brought back, or refusing rebuilt shards
    /// (read-only, full or failing; heal only).
    #[serde(default)]
    pub drives_unwritable: Vec<usize>,
    /// Pieces of data checked (shard files and inline), and shards checked across all drives.
    pub data_checked: u64,
    pub shards_checked: u64,
    /// Shards found missing or failing their checksums.
    pub shards_bad: u64,
    /// Shards rewritten (heal only).
    pub shards_healed: u64,
    /// Data readable (K good shards or more in every block) but not at full redundancy:
    /// for a check, all such data; for a heal, what it could not rewrite.
    #[serde(default)]
    pub degraded: Vec<String>,
    /// Data with fewer than K good shards: lost.
    pub unrecoverable: Vec<String>,
    /// Shard files nothing references.
    pub orphans: u64,
    pub orphans_removed: u64,
    /// Small objects found stored whole on every drive (written before inline data was
    /// erasure-coded); heal shards them.
    #[serde(default)]
    pub inline_whole: u64,
    /// The same three lists for the drives of pools added later, as `POOL:INDEX`.
    #[serde(default)]
    pub pool_drives_bad: Vec<String>,
    #[serde(default)]
    pub pool_drives_healed: Vec<String>,
    #[serde(default)]
    pub pool_drives_unwritable: Vec<String>,
}

impl HealReport {
    /// A drive that could not take rebuilt shards, once.
    fn unwritable(&mut self, pool: &Pool, index: usize) {
        if pool.id == 0 {
            if !self.drives_unwritable.contains(&index) {
                self.drives_unwritable.push(index);
            }
            return;
        }
        let name = format!("{}:{index}", pool.name);
        if !self.pool_drives_unwritable.contains(&name) {
            self.pool_drives_unwritable.push(name);
        }
    }

    /// After a heal: every drive back and every shard rewritten (nothing degraded, nothing lost).
    pub fn fully_redundant(&self) -> bool {
        self.unrecoverable.is_empty()
            && self.degraded.is_empty()
            && self.drives_unwritable.is_empty()
            && self.drives_healed.len() == self.drives_bad.len()
            && self.pool_drives_unwritable.is_empty()
            && self.pool_drives_healed.len() == self.pool_drives_bad.len()
    }

    pub fn clean(&self) -> bool {
        self.drives_bad.is_empty()
            && self.pool_drives_bad.is_empty()
            && self.shards_bad == 0
            && self.unrecoverable.is_empty()
            && self.orphans == self.orphans_removed
    }
}

/// Orphan files younger than this may belong to a write still in flight.
const ORPHAN_GRACE: Duration = Duration::from_secs(600);

/// A piece of data the index references, and the record that holds it.
pub(crate) struct Item {
    pub label: String,
    pub id: DataId,
    pub data: PartData,
    pub size: u64,
    pub owner: Owner,
}

/// The passes' counters, kept in memory since the store was opened.
#[derive(Default)]
pub(crate) struct Passes {
    passes: AtomicU64,
    /// When the pass under way started (Unix ns); 0 when none runs.
    running_since_ns: AtomicU64,
    last_end_ns: AtomicU64,
    last_ns: AtomicU64,
    last_data_checked: AtomicU64,
    shards_bad: AtomicU64,
    shards_healed: AtomicU64,
}

/// The passes over the store since it was opened ([`Store::scan_status`]).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ScanStatus {
    /// Passes finished.
    pub passes: u64,
    pub running: bool,
    pub running_since_ns: u64,
    /// When the last pass ended (Unix ns), how long it took (ns) and what it checked.
    pub last_end_ns: u64,
    pub last_ns: u64,
    pub last_data_checked: u64,
    /// Shards found bad and shards rewritten, over all passes.
    pub shards_bad: u64,
    pub shards_healed: u64,
    /// Data queued for healing by reads that found a shard bad.
    pub heal_backlog: u64,
}

/// Records read per look at the index while walking it.
const ITEMS_PAGE: usize = 1000;

impl Store {
    /// Verify everything; change nothing.
    pub fn check(&self) -> Result<HealReport> {
        self.walk(false)
    }

    /// Verify everything and repair what can be repaired.
    pub fn heal(&self) -> Result<HealReport> {
        self.walk(true)
    }

    /// The passes over the store so far (the scanner's, `heal` and `fsck`), and the
    /// data waiting to be healed.
    pub fn scan_status(&self) -> ScanStatus {
        let p = &self.inner.passes;
        ScanStatus {
            passes: p.passes.load(Relaxed),
            running: p.running_since_ns.load(Relaxed) != 0,
            running_since_ns: p.running_since_ns.load(Relaxed),
            last_end_ns: p.last_end_ns.load(Relaxed),
            last_ns: p.last_ns.load(Relaxed),
            last_data_checked: p.last_data_checked.load(Relaxed),
            shards_bad: p.shards_bad.load(Relaxed),
            shards_healed: p.shards_healed.load(Relaxed),
            heal_backlog: self.inner.heal_backlog() as u64,
        }
    }

    fn walk(&self, repair: bool) -> Result<HealReport> {
        let inner = &self.inner;
        let _one_at_a_time = inner.heal_lock.lock().unwrap();
        let started = std::time::Instant::now();
        inner
            .passes
            .running_since_ns
            .store(crate::commit::Clock::new().now(), Relaxed);
        let report = self.walk_locked(repair);
        let p = &inner.passes;
        p.running_since_ns.store(0, Relaxed);
        if let Ok(r) = &report {
            p.passes.fetch_add(1, Relaxed);
            p.last_end_ns
                .store(crate::commit::Clock::new().now(), Relaxed);
            p.last_ns.store(
                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
                Relaxed,
            );
            p.last_data_checked.store(r.data_checked, Relaxed);
            p.shards_bad.fetch_add(r.shards_bad, Relaxed);
            p.shards_healed.fetch_add(r.shards_healed, Relaxed);
        }
        report
    }

    fn walk_locked(&self, repair: bool) -> Result<HealReport> {
        let inner = &self.inner;
        let mut report = HealReport::default();
        for d in inner.drives.iter() {
            if d.state() != DriveState::Online {
                report.drives_bad.push(d.index);
            }
        }
        if repair {
            for &i in &report.drives_bad {
                match self.heal_drive(i) {
                    Ok(()) => report.drives_healed.push(i),
                    Err(e) => {
                        tracing::warn!(drive = i, "cannot heal drive: {e}");
                        report.drives_unwritable.push(i);
                    }
                }
            }
        }
        for pool in inner.pools.all().iter().skip(1) {
            if pool.state() == PoolState::Drained {
                continue;
            }
            for d in pool
                .drives
                .iter()
                .filter(|d| d.state() != DriveState::Online)
            {
                let name = format!("{}:{}", pool.name, d.index);
                report.pool_drives_bad.push(name.clone());
                if !repair {
                    continue;
                }
                match self.heal_pool_drive(pool, d.index) {
                    Ok(()) => report.pool_drives_healed.push(name),
                    Err(e) => {
                        tracing::warn!(pool = pool.name, drive = d.index, "cannot heal drive: {e}");
                        report.pool_drives_unwritable.push(name);
                    }
                }
            }
        }
        for item in self.items()? {
            report.data_checked += 1;
            self.check_item(&item, repair, &mut report);
        }
        // Back in the set but refusing its shards (full again): not healed.
        let unwritable = &report.drives_unwritable;
        report.drives_healed.retain(|d| !unwritable.contains(d));
        let unwritable = &report.pool_drives_unwritable;
        report
            .pool_drives_healed
            .retain(|d| !unwritable.contains(d));
        let grace = if inner.live {
            ORPHAN_GRACE
        } else {
            Duration::ZERO
        };
        let (orphans, removed) = self.sweep_orphans(repair, grace)?;
        report.orphans = orphans;
        report.orphans_removed = removed;
        Ok(report)
    }

    /// Format a missing, damaged or emptied drive, or resync one that fell behind or
    /// filled up; a drive that cannot take a write stays out.
    pub(crate) fn heal_drive(&self, index: usize) -> Result<()> {
        let d = &self.inner.drives[index];
        let format = self.inner.format_for(index);
        let needs_format = d.state() == DriveState::Faulty
            && (d.emptied()
                || !matches!(d.read_format(), Ok(Some(f)) if f == format && d.meta().is_some()));
        if needs_format {
            d.format(&format)?;
            d.open()?;
            d.set_state(DriveState::Stale, None);
        }
        d.probe()
            .map_err(|e| Error::from_io(e, &d.root.display().to_string()))?;
        self.sync_drive(index)
    }

    /// Every piece of data the index references.
    fn items(&self) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self.items_page(after.as_deref(), ITEMS_PAGE)?;
            out.extend(page);
            match next {
                Some(next) => after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Up to `limit` pieces of data the index references, in index order after the
    /// record key `after` (from the start when `None`): multipart parts, then object
    /// versions. The key to continue after comes with them, `None` at the end.
    pub(crate) fn items_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Vec<u8>>)> {
        let (rtxn, db) = self.read()?;
        let mut out = Vec::new();
        for tag in [keys::PART, keys::VERSION] {
            let table = [tag];
            let from = match after {
                Some(a) if a[0] > tag => continue,
                Some(a) if a[0] == tag => Bound::Excluded(a),
                _ => Bound::Included(&table[..]),
            };
            for kv in db.range(&rtxn, &(from, Bound::Unbounded))? {
                let (k, v) = kv?;
                if k.first() != Some(&tag) {
                    break;
                }
                if out.len() >= limit {
                    return Ok((out, Some(k.to_vec())));
                }
                if tag == keys::PART {
                    let p = record::decode::<PartRecord>(v)?;
                    // `P upload_id \0 number`.
                    let upload_id = k[1..].split(|&b| b == 0).next().unwrap_or_default();
                    out.push(Item {
                        label: format!("upload part {}", p.entry.number),
                        id: p.entry.data.id(),
                        data: p.entry.data,
                        size: p.entry.size,
                        owner: Owner::Part {
                            upload_id: String::from_utf8_lossy(upload_id).into_owned(),
                            number: p.entry.number,
                        },
                    });
                    continue;
                }
                let v: ObjectVersion = record::decode(v)?;
                // `V bucket \0 key \0 sort`: bucket names have no NUL.
                let bucket = k[1..].split(|&b| b == 0).next().unwrap_or_default();
                for p in &v.parts {
                    out.push(Item {
                        label: format!("{} (version {}, part {})", v.key, v.version_id, p.number),
                        id: p.data.id(),
                        data: p.data,
                        size: p.size,
                        owner: Owner::Version {
                            bucket: String::from_utf8_lossy(bucket).into_owned(),
                            key: v.key.clone(),
                            sort: v.sort,
                        },
                    });
                }
            }
        }
        Ok((out, None))
    }

    /// Verify one piece of data on every drive; with `repair`, rewrite the bad shards.
    pub(crate) fn heal_data(&self, id: DataId) -> Result<()> {
        let _one_at_a_time = self.inner.heal_lock.lock().unwrap();
        let item = self.items()?.into_iter().find(|i| i.id == id);
        if let Some(item) = item {
            let mut report = HealReport::default();
            self.check_item(&item, true, &mut report);
            if report.shards_healed > 0 {
                tracing::info!("healed {} shard(s) of {}", report.shards_healed, item.label);
            }
        }
        Ok(())
    }

    fn check_item(&self, item: &Item, repair: bool, report: &mut HealReport) {
        // Another S3 system keeps it, and checks it.
        if item.data.is_remote() {
            return;
        }
        let Some(layout) = item.data.shards() else {
            return self.check_inline(item, repair, report);
        };
        let Some(pool) = self.inner.pools.get(layout.pool) else {
            report.unrecoverable.push(format!(
                "{} (in pool {}, which the store does not have)",
                item.label, layout.pool
            ));
            return;
        };
        let (k, m, rot) = (layout.k as usize, layout.m as usize, layout.rot as usize);
        let geo = Geometry {
            k,
            block_size: layout.block_size as usize,
            size: item.size,
        };
        let files = pool.open_shards(&item.id, rot);
        let bad: Vec<usize> = (0..k + m)
            .filter(|&i| !files[i].as_ref().is_some_and(|f| verify(f, &geo, &item.id)))
            .collect();
        report.shards_checked += (k + m) as u64;
        report.shards_bad += bad.len() as u64;
        if bad.is_empty() {
            return;
        }
        if !repair {
            match self.recoverable(&files, &geo, k, m) {
                true => report.degraded.push(item.label.clone()),
                false => report.unrecoverable.push(item.label.clone()),
            }
            return;
        }
        match self.rebuild(item, &pool, &files, &bad, &geo, k, m, rot) {
            Ok(unwritable) => {
                report.shards_healed += (bad.len() - unwritable.len()) as u64;
                if !unwritable.is_empty() {
                    report.degraded.push(item.label.clone());
                }
                for d in unwritable {
                    report.unwritable(&pool, d);
                }
            }
            Err(e) => {
                tracing::error!("cannot heal {}: {e}", item.label);
                report.unrecoverable.push(item.label.clone());
            }
        }
    }

    /// Inline data: every drive's shard in its record. A repair gives every in-sync
    /// drive its shard again through a commit; a drive out of the set gets its shards
    /// when it is resynced.
    fn check_inline(&self, item: &Item, repair: bool, report: &mut HealReport) {
        let put = |shards| {
            self.submit(Op::PutInline {
                owner: item.owner.clone(),
                id: item.id,
                shards,
            })
        };
        match self.whole_inline(&item.id) {
            Ok(Some(whole)) => {
                report.inline_whole += 1;
                if repair {
                    let sharded = crate::inline::encode(self.inner.ec, &whole).and_then(put);
                    if let Err(e) = sharded {
                        tracing::warn!("cannot shard {}: {e}", item.label);
                    }
                }
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("cannot check {}: {e}", item.label);
                return;
            }
        }
        let found = self.inline_found(&item.id);
        report.shards_checked += self.inner.ec.total() as u64;
        report.shards_bad += found.bad.len() as u64;
        if found.bad.is_empty() {
            return;
        }
        let Some(values) = found.values else {
            report.unrecoverable.push(item.label.clone());
            return;
        };
        if !repair {
            report.degraded.push(item.label.clone());
            return;
        }
        let drives = &self.inner.drives;
        let (in_set, out): (Vec<usize>, Vec<usize>) = found
            .bad
            .iter()
            .partition(|&&i| drives[i].state() == DriveState::Online);
        if !out.is_empty() {
            report.degraded.push(item.label.clone());
        }
        // Only drives in the set take a commit; the others get theirs when resynced.
        if in_set.is_empty() {
            return;
        }
        match put(values) {
            Ok(_) => report.shards_healed += in_set.len() as u64,
            Err(e) => {
                tracing::warn!("cannot heal {}: {e}", item.label);
                if out.is_empty() {
                    report.degraded.push(item.label.clone());
                }
            }
        }
    }

    fn recoverable(&self, files: &[Option<File>], geo: &Geometry, k: usize, m: usize) -> bool {
        let mut buf = Vec::new();
        (0..geo.blocks()).all(|b| {
            (0..k + m)
                .filter(|&i| {
                    files[i]
                        .as_ref()
                        .is_some_and(|f| read_block(f, geo, b, &mut buf))
                })
                .count()
                >= k
        })
    }

    /// Rewrite the `bad` shards from the good ones, block by block, then swap them in.
    /// A shard whose drive cannot be written is left out: the answer lists those drives,
    /// one per shard not rewritten. An error means the data could not be rebuilt at all.
    #[allow(clippy::too_many_arguments)]
    fn rebuild(
        &self,
        item: &Item,
        pool: &Pool,
        files: &[Option<File>],
        bad: &[usize],
        geo: &Geometry,
        k: usize,
        m: usize,
        rot: usize,
    ) -> Result<Vec<usize>> {
        let drive_of = |i: usize| pool.drive_of(i, rot);
        let mut unwritable = Vec::new();
        let mut outs = Vec::new();
        for &i in bad {
            let d = drive_of(i);
            if !d.takes_shards() {
                unwritable.push(d.index);
                continue;
            }
            let tmp = d.tmp_dir().join(format!("{}.heal", hex::encode(item.id)));
            // Left by a heal that was cut off.
            let _ = fs::remove_file(&tmp);
            match ShardWriter::create(&tmp, geo.shard_len(0)) {
                Ok(w) => outs.push((i, tmp, w)),
                Err(e) => {
                    tracing::warn!(drive = d.index, "cannot rebuild {}: {e}", item.label);
                    // Out of the write set like a writer's drive (the watch brings it back);
                    // a drive the store cannot let go stays, and the data stays degraded.
                    let _ = self.lose_drive(pool, d.index, &item.id, e, "shard rebuild");
                    unwritable.push(d.index);
                }
            }
        }
        let mut give_up = |outs: &mut Vec<(usize, std::path::PathBuf, ShardWriter)>,
                           at: usize,
                           e: std::io::Error| {
            let (i, tmp, w) = outs.remove(at);
            drop(w);
            let _ = fs::remove_file(&tmp);
            let d = drive_of(i).index;
            tracing::warn!(drive = d, "cannot rebuild {}: {e}", item.label);
            let _ = self.lose_drive(pool, d, &item.id, e, "shard rebuild");
            unwritable.push(d);
        };
        for b in 0..geo.blocks() {
            let mut shards: Vec<Option<Vec<u8>>> = (0..k + m)
                .map(|i| {
                    // A bad shard may still have good blocks (damage elsewhere in the file):
                    // like reads, trust every block that passes its checksum.
                    let mut sb = Vec::new();
                    files[i]
                        .as_ref()
                        .is_some_and(|f| read_block(f, geo, b, &mut sb))
                        .then_some(sb)
                })
                .collect();
            reconstruct(k, m, &mut shards)?;
            let mut at = 0;
            while at < outs.len() {
                let (i, _, w) = &mut outs[at];
                match w.append_block(shards[*i].as_ref().expect("reconstructed")) {
                    Ok(()) => at += 1,
                    Err(e) => give_up(&mut outs, at, e),
                }
            }
        }
        // The header is copied from a good shard, with this shard's index.
        let template = (0..k + m)
            .filter(|i| !bad.contains(i))
            .find_map(|i| files[i].as_ref().and_then(|f| ShardHeader::read(f).ok()));
        while let Some((i, tmp, mut w)) = outs.pop() {
            let mut header = template.clone().unwrap_or(ShardHeader {
                store_id: self.inner.store_id.clone(),
                data_id: item.id,
                index: 0,
                k: k as u8,
                m: m as u8,
                block_size: geo.block_size as u32,
                size: geo.size,
                bucket: String::new(),
                key: String::new(),
                upload: None,
            });
            header.index = i as u8;
            let dest = drive_of(i).shard_path(&item.id);
            let swapped = w.finish(&header).and_then(|()| {
                fs::rename(&tmp, &dest)?;
                sync_dir(dest.parent().expect("shard dir")).map_err(std::io::Error::other)
            });
            if let Err(e) = swapped {
                outs.push((i, tmp, w));
                let last = outs.len() - 1;
                give_up(&mut outs, last, e);
            }
        }
        // Deleted while we rebuilt: the reclaimer may have run before our rename.
        if !self.is_referenced(&item.id)? {
            for d in pool.drives.iter() {
                let _ = fs::remove_file(d.shard_path(&item.id));
            }
        }
        Ok(unwritable)
    }

    pub(crate) fn is_referenced(&self, id: &DataId) -> Result<bool> {
        let (rtxn, db) = self.read()?;
        Ok(db.get(&rtxn, &keys::data_ref(id))?.is_some())
    }

    /// Count (and with `remove`, delete) shard files nothing references, and leftover tmp files.
    /// Files younger than `grace` are left alone: they may be a write in flight.
    pub(crate) fn sweep_orphans(&self, remove: bool, grace: Duration) -> Result<(u64, u64)> {
        let (mut found, mut removed) = (0, 0);
        let now = SystemTime::now();
        let old_enough = |p: &std::path::Path| {
            fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= grace)
                .unwrap_or(true)
        };
        let pools = self.inner.pools.all();
        for d in pools.iter().flat_map(|p| p.drives.iter()) {
            if d.state() == DriveState::Faulty {
                continue;
            }
            for e in fs::read_dir(d.tmp_dir()).into_iter().flatten().flatten() {
                if old_enough(&e.path()) {
                    found += 1;
                    if remove && fs::remove_file(e.path()).is_ok() {
                        removed += 1;
                    }
                }
            }
            for sub in fs::read_dir(d.data_dir()).into_iter().flatten().flatten() {
                for e in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
                    let name = e.file_name();
                    let id: Option<DataId> = hex::decode(name.as_encoded_bytes())
                        .ok()
                        .and_then(|v| v.try_into().ok());
                    let orphan = match id {
                        Some(id) => !self.is_referenced(&id)?,
                        None => true,
                    };
                    if orphan && old_enough(&e.path()) {
                        found += 1;
                        if remove && fs::remove_file(e.path()).is_ok() {
                            removed += 1;
                        }
                    }
                }
            }
        }
        Ok((found, removed))
    }
}
