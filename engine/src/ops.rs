//! Metadata operations, applied inside a group-commit transaction.
//!
//! Each operation validates first and mutates after, so a refused operation
//! leaves nothing behind in the shared transaction.
//!
//! (Over 800 lines: every metadata change the store makes is one arm of `apply`, kept
//! together so that each can be read against the others; the rules they check live in
//! their own modules: `lock.rs`, `condition.rs`, `expire.rs`, `queue.rs`, `held.rs`.)

use crate::commit::{Clock, Tx};
use crate::completed;
use crate::condition::{self, WriteCondition};
use crate::error::{Error, Result};
use crate::expire::{self, Expiry};
use crate::held::{held_by, Held, Owner};
use crate::inline::Shards;
use crate::lock::{self, LOCK_DEFAULT_ATTR};
use crate::queue;
use crate::record::{
    self, keys, Acl, BucketRecord, BucketStats, DataId, DefaultRetention, Encryption, LockRequest,
    ObjectMeta, ObjectVersion, PartData, PartEntry, PartRecord, Retention, SseMode, UploadRecord,
    Versioning, WrappedKey,
};
use crate::replication;
use crate::usage;

/// Smallest allowed multipart part, except the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;

pub(crate) enum Op {
    CreateBucket {
        name: String,
        /// Object lock from the start (and so versioning, for good).
        object_lock: bool,
        /// Settings the bucket is born with (its owner and ACL), in the same commit so
        /// that no moment shows the bucket without them.
        attrs: Vec<(String, Vec<u8>)>,
    },
    DeleteBucket(String),
    SetVersioning(String, Versioning),
    /// Turn object lock on (for good) with this default retention, or none.
    SetObjectLock {
        bucket: String,
        default: Option<DefaultRetention>,
    },
    SetBucketAttr {
        bucket: String,
        name: String,
        value: Option<Vec<u8>>,
    },
    SetServerRecord {
        ns: String,
        name: String,
        value: Option<Vec<u8>>,
    },
    /// Several server records in one commit (`None` deletes), as `(ns, name, value)`:
    /// a batch job's outcomes and its cursor go together (`Store::set_server_records`).
    SetServerRecords(Vec<(String, String, Option<Vec<u8>>)>),
    Put {
        bucket: String,
        key: String,
        meta: ObjectMeta,
        part: PartEntry,
        inline: Option<Shards>,
        lock: LockRequest,
        condition: WriteCondition,
        encryption: Option<Encryption>,
    },
    Delete {
        bucket: String,
        key: String,
        version_id: Option<String>,
        /// The caller may bypass GOVERNANCE retention.
        bypass: bool,
    },
    SetRetention {
        bucket: String,
        key: String,
        version_id: Option<String>,
        retention: Option<Retention>,
        bypass: bool,
    },
    SetLegalHold {
        bucket: String,
        key: String,
        version_id: Option<String>,
        on: bool,
    },
    SetTags {
        bucket: String,
        key: String,
        version_id: Option<String>,
        tags: Vec<(String, String)>,
    },
    SetAcl {
        bucket: String,
        key: String,
        version_id: Option<String>,
        acl: Acl,
    },
    CreateUpload {
        bucket: String,
        key: String,
        meta: ObjectMeta,
        lock: LockRequest,
        sse: Option<SseMode>,
    },
    PutPart {
        bucket: String,
        key: String,
        upload_id: String,
        part: PartEntry,
        inline: Option<Shards>,
        /// When this upload of the part began (`PartRecord::started_ns`).
        started_ns: u64,
        /// Its data key, wrapped, when the upload is encrypted.
        sealed: Option<WrappedKey>,
    },
    Complete {
        bucket: String,
        key: String,
        upload_id: String,
        parts: Vec<(u32, String)>,
        etag: String,
        checksums: Vec<(String, String)>,
        condition: WriteCondition,
        /// The store's block size, which the parts of an encrypted upload are sealed in.
        block: u32,
    },
    Abort {
        bucket: String,
        key: String,
        upload_id: String,
    },
    /// A lifecycle expiration (`expire.rs`), if the version is still where it was seen.
    Expire {
        bucket: String,
        key: String,
        version_id: String,
        expiry: Expiry,
    },
    /// Heal: give every drive its shard of inline data (and drop the whole copies of a
    /// store from before inline erasure coding), if `owner` still holds that data.
    PutInline {
        owner: Owner,
        id: DataId,
        shards: Shards,
    },
    /// Data moved into a pool (`moves.rs`): each `(from, to)` of `owner`'s data was
    /// copied to `to`; the record takes the copies and the originals go to the
    /// reclaimer (a remote original's delete is queued). With `class`, a lifecycle transition: the version's storage class
    /// becomes it, and a version under object lock is refused. Refused
    /// (`PreconditionFailed`) when `owner` no longer holds every `from`: the copies are
    /// then the mover's to remove.
    Move {
        owner: Owner,
        moves: Vec<(PartData, PartData)>,
        class: Option<String>,
    },
    /// A transition to a remote tier (`remote.rs`): `owner`'s parts, still the data
    /// `from`, become ranges of the remote object `id` at `at`; the class is recorded,
    /// the local data reclaimed and the upload's intent (`intent`) dropped. Refused
    /// (`PreconditionFailed`) when the version changed, or under object lock.
    ToRemote {
        owner: Owner,
        from: Vec<DataId>,
        id: DataId,
        at: crate::remote::RemoteRef,
        class: String,
        intent: u64,
        /// Whether object lock refuses the move (lifecycle) or not (a write in the class).
        lock: crate::remote::LockRule,
    },
    /// A version's data keys wrapped again (`rewrap.rs`), if it still holds `from`.
    Rewrap {
        owner: Owner,
        from: Vec<WrappedKey>,
        to: Vec<WrappedKey>,
    },
    /// Queue work on its own (`queue.rs`).
    AddWork(crate::queue::Work),
    /// Queued work done, by its keys (`queue::task_key`).
    FinishWork(Vec<Vec<u8>>),
    /// Lane tasks of a store from before lanes go under their lanes (`queue.rs`).
    FileLanes,
    /// Replication tasks sent (`None`) or refused for good (`replication.rs`), by key.
    FinishReplication(Vec<(Vec<u8>, Option<String>)>),
    /// A bucket's replication rules (encoded), or none.
    SetReplication {
        bucket: String,
        value: Option<Vec<u8>>,
    },
    /// Queue these versions (key, sort) of a bucket no destination has taken.
    Resync {
        bucket: String,
        versions: Vec<(String, [u8; 16])>,
    },
    /// Raw puts (`None` deletes): tests lay out records as older stores did.
    #[cfg(test)]
    Raw(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    /// Every queued task of a lane becomes a dead letter (`queue.rs`).
    DropLane(String),
    /// Site replication's group, peers' states and resyncs (`site.rs`).
    Site(crate::site::SiteOp),
    /// Queued work failed this time.
    RetryWork {
        key: Vec<u8>,
        error: String,
    },
    /// Count usage in days of this many seconds (`usage.rs`): the counters are built
    /// again if they were kept in other days, or not yet.
    UsageDay(u64),
    /// A usage day's totals (`usage_history.rs`), unless the day has them already.
    UsageHistory(Box<crate::usage_history::UsageDay>),
    /// Reads sampled on GET (`access.rs`).
    NoteReads(Vec<crate::access::Read>),
    /// RestoreObject: an archived version is readable until `until_ns`.
    Restore {
        bucket: String,
        key: String,
        version_id: Option<String>,
        until_ns: u64,
    },
}

pub(crate) enum Out {
    Done,
    /// A new version, and whether it took the place of a current object.
    Version(ObjectVersion, bool),
    Deleted(Deleted),
    Expired(Option<Deleted>),
    Upload(UploadRecord),
    Queued(u64),
    /// A peer's state was newer and applied (`true`), or older and ignored.
    Applied(bool),
}

/// What a delete did, as S3 reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    pub version_id: Option<String>,
    pub delete_marker: bool,
}

pub(crate) fn apply(
    tx: &mut Tx,
    op: &Op,
    clock: &mut Clock,
    freed: &mut Vec<DataId>,
) -> Result<Out> {
    match op {
        Op::CreateBucket {
            name,
            object_lock,
            attrs,
        } => {
            let k = keys::bucket(name);
            if tx.get(&k).is_some() {
                return Err(Error::BucketExists(name.clone()));
            }
            // In a site group every bucket is versioned (`site.rs`).
            let grouped = crate::site::group_in(tx)?.is_some();
            let rec = BucketRecord {
                name: name.clone(),
                created_ns: clock.now(),
                versioning: match *object_lock || grouped {
                    true => Versioning::Enabled,
                    false => Versioning::Unversioned,
                },
                object_lock: *object_lock,
            };
            tx.put(k, record::encode(&rec)?);
            tx.put(keys::stats(name), record::encode(&BucketStats::default())?);
            for (attr, value) in attrs {
                tx.put(keys::attr(name, attr), value.clone());
            }
            Ok(Out::Done)
        }
        Op::DeleteBucket(name) => {
            bucket(tx, name)?;
            delete_bucket(tx, name, freed)?;
            Ok(Out::Done)
        }
        Op::SetVersioning(name, state) => {
            let mut rec = bucket(tx, name)?;
            if rec.object_lock && *state != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
                ));
            }
            let replicated = tx.get(&keys::attr(name, replication::REPLICATION_ATTR));
            if replicated.is_some() && *state != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "A replication configuration is present on this bucket, so the versioning state cannot be changed.",
                ));
            }
            if crate::site::group_in(tx)?.is_some() && *state != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "This server is in a site replication group, so the versioning state cannot be changed.",
                ));
            }
            rec.versioning = *state;
            tx.put(keys::bucket(name), record::encode(&rec)?);
            Ok(Out::Done)
        }
        Op::SetObjectLock { bucket: b, default } => {
            let mut rec = bucket(tx, b)?;
            if rec.versioning != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
                ));
            }
            rec.object_lock = true;
            tx.put(keys::bucket(b), record::encode(&rec)?);
            match default {
                Some(d) => tx.put(keys::attr(b, LOCK_DEFAULT_ATTR), record::encode(d)?),
                None => tx.del(keys::attr(b, LOCK_DEFAULT_ATTR)),
            }
            Ok(Out::Done)
        }
        Op::SetBucketAttr {
            bucket: b,
            name,
            value,
        } => {
            bucket(tx, b)?;
            match value {
                Some(v) => tx.put(keys::attr(b, name), v.clone()),
                None => tx.del(keys::attr(b, name)),
            }
            Ok(Out::Done)
        }
        Op::SetServerRecord { ns, name, value } => {
            match value {
                Some(v) => tx.put(keys::server(ns, name), v.clone()),
                None => tx.del(keys::server(ns, name)),
            }
            Ok(Out::Done)
        }
        Op::SetServerRecords(records) => {
            for (ns, name, value) in records {
                match value {
                    Some(v) => tx.put(keys::server(ns, name), v.clone()),
                    None => tx.del(keys::server(ns, name)),
                }
            }
            Ok(Out::Done)
        }
        Op::Put {
            bucket: b,
            key,
            meta,
            part,
            inline,
            lock,
            condition,
            encryption,
        } => {
            let rec = bucket(tx, b)?;
            condition::check(tx, b, key, condition)?;
            let lock = lock::lock_for(tx, &rec, lock, clock.now())?;
            if let Some(shards) = inline {
                tx.put_each(keys::inline_shard(&part.data.id()), shards.clone());
            }
            let replaced = has_current(tx, b, key);
            let v = new_version(
                tx,
                clock,
                &rec,
                key,
                (meta.clone(), lock, encryption.clone()),
                vec![part.clone()],
                freed,
            )?;
            Ok(Out::Version(v, replaced))
        }
        Op::Delete {
            bucket: b,
            key,
            version_id,
            bypass,
        } => {
            let rec = bucket(tx, b)?;
            match version_id {
                Some(vid) => {
                    let Some(found) = find_version(tx, b, key, vid)? else {
                        return Ok(Out::Deleted(Deleted {
                            version_id: Some(vid.clone()),
                            delete_marker: false,
                        }));
                    };
                    lock::check_removable(&found, clock.now(), *bypass)?;
                    remove_version(tx, b, &found, freed)?;
                    refresh_latest(tx, b, key)?;
                    Ok(Out::Deleted(Deleted {
                        version_id: Some(vid.clone()),
                        delete_marker: found.delete_marker,
                    }))
                }
                None if rec.versioning == Versioning::Unversioned => {
                    if let Some(found) = find_version(tx, b, key, "null")? {
                        lock::check_removable(&found, clock.now(), *bypass)?;
                        remove_version(tx, b, &found, freed)?;
                    }
                    refresh_latest(tx, b, key)?;
                    Ok(Out::Deleted(Deleted {
                        version_id: None,
                        delete_marker: false,
                    }))
                }
                None => {
                    let marker = new_marker(tx, clock, &rec, key, freed)?;
                    Ok(Out::Deleted(Deleted {
                        version_id: Some(marker.version_id),
                        delete_marker: true,
                    }))
                }
            }
        }
        Op::SetTags {
            bucket: b,
            key,
            version_id,
            tags,
        } => {
            bucket(tx, b)?;
            update_version(tx, b, key, version_id.as_deref(), |v| {
                v.meta.tags = tags.clone();
                Ok(())
            })
        }
        Op::SetAcl {
            bucket: b,
            key,
            version_id,
            acl,
        } => {
            bucket(tx, b)?;
            update_version(tx, b, key, version_id.as_deref(), |v| {
                v.meta.acl = Some(acl.clone());
                Ok(())
            })
        }
        Op::SetRetention {
            bucket: b,
            key,
            version_id,
            retention,
            bypass,
        } => {
            lock::locked_bucket(tx, b)?;
            let now = clock.now();
            update_version(tx, b, key, version_id.as_deref(), |v| {
                lock::check_retention_change(v, retention.as_ref(), now, *bypass)?;
                v.retention = *retention;
                Ok(())
            })
        }
        Op::SetLegalHold {
            bucket: b,
            key,
            version_id,
            on,
        } => {
            lock::locked_bucket(tx, b)?;
            update_version(tx, b, key, version_id.as_deref(), |v| {
                v.legal_hold = *on;
                Ok(())
            })
        }
        Op::CreateUpload {
            bucket: b,
            key,
            meta,
            lock,
            sse,
        } => {
            let rec = bucket(tx, b)?;
            if !lock.is_empty() && !rec.object_lock {
                return Err(Error::NoObjectLock(b.clone()));
            }
            let now = clock.now();
            let upload_id = format!("{}{}", hex::encode(now.to_be_bytes()), random_hex(8));
            let up = UploadRecord {
                key: key.clone(),
                upload_id: upload_id.clone(),
                initiated_ns: now,
                meta: meta.clone(),
                lock: *lock,
                sse: sse.clone(),
            };
            tx.put(keys::upload(b, key, &upload_id), record::encode(&up)?);
            usage::count_upload(tx, b, &up, 1, 0);
            Ok(Out::Upload(up))
        }
        Op::PutPart {
            bucket: b,
            key,
            upload_id,
            part,
            inline,
            started_ns,
            sealed,
        } => {
            bucket(tx, b)?;
            let up = upload(tx, b, key, upload_id)?;
            let pk = keys::part(upload_id, part.number);
            if let Some(old) = tx.get(&pk) {
                let old = record::decode::<PartRecord>(&old)?;
                if old.started_ns > *started_ns {
                    // A later-started upload of this number is already stored and stays:
                    // this slower one succeeds (as on AWS) but its data is never referenced.
                    if let Some(layout) = part.data.shards() {
                        freed.push(layout.id);
                    }
                    return Ok(Out::Done);
                }
                drop_data(tx, &old.entry.data, freed)?;
                usage::count_upload(tx, b, &up, 0, -(old.entry.size as i64));
            }
            usage::count_upload(tx, b, &up, 0, part.size as i64);
            if let Some(shards) = inline {
                tx.put_each(keys::inline_shard(&part.data.id()), shards.clone());
            }
            add_ref(tx, &part.data);
            let rec = PartRecord {
                entry: part.clone(),
                mtime_ns: clock.now(),
                started_ns: *started_ns,
                sealed: sealed.clone(),
            };
            tx.put(pk, record::encode(&rec)?);
            Ok(Out::Done)
        }
        Op::Complete {
            bucket: b,
            key,
            upload_id,
            parts,
            etag,
            checksums,
            condition,
            block,
        } => {
            let rec = bucket(tx, b)?;
            let up = match upload(tx, b, key, upload_id) {
                Err(Error::NoSuchUpload(_)) => {
                    return completed::answer_again(tx, b, key, upload_id)
                }
                found => found?,
            };
            condition::check(tx, b, key, condition)?;
            if parts.is_empty() {
                return Err(Error::InvalidPart(0));
            }
            let mut entries = Vec::with_capacity(parts.len());
            let mut keys = Vec::new();
            for (i, (number, want_etag)) in parts.iter().enumerate() {
                if i > 0 && *number <= parts[i - 1].0 {
                    return Err(Error::InvalidPartOrder);
                }
                let stored = tx
                    .get(&keys::part(upload_id, *number))
                    .ok_or(Error::InvalidPart(*number))?;
                let stored = record::decode::<PartRecord>(&stored)?;
                if stored.entry.etag.trim_matches('"') != want_etag.trim_matches('"') {
                    return Err(Error::InvalidPart(*number));
                }
                if i + 1 < parts.len() && stored.entry.size < MIN_PART_SIZE {
                    return Err(Error::EntityTooSmall(*number));
                }
                keys.extend(stored.sealed);
                entries.push(stored.entry);
            }
            let lock = lock::lock_for(tx, &rec, &up.lock, clock.now())?;
            let used: Vec<u32> = parts.iter().map(|p| p.0).collect();
            end_upload(tx, b, &up, &used, freed)?;
            let meta = ObjectMeta {
                etag: etag.clone(),
                checksums: checksums.clone(),
                ..up.meta
            };
            // Every part of an encrypted upload was sealed with a key of its own.
            let encryption = match up.sse {
                Some(mode) if keys.len() == entries.len() => Some(Encryption {
                    mode,
                    block: *block,
                    keys,
                }),
                None if keys.is_empty() => None,
                _ => {
                    return Err(Error::Meta(format!(
                        "upload {upload_id}: parts sealed unlike their upload"
                    )))
                }
            };
            let replaced = has_current(tx, b, key);
            let v = new_version(
                tx,
                clock,
                &rec,
                key,
                (meta, lock, encryption),
                entries,
                freed,
            )?;
            completed::remember(tx, b, upload_id, &v)?;
            Ok(Out::Version(v, replaced))
        }
        Op::Abort {
            bucket: b,
            key,
            upload_id,
        } => {
            bucket(tx, b)?;
            let up = upload(tx, b, key, upload_id)?;
            end_upload(tx, b, &up, &[], freed)?;
            Ok(Out::Done)
        }
        Op::Expire {
            bucket: b,
            key,
            version_id,
            expiry,
        } => Ok(Out::Expired(expire::apply(
            tx, clock, b, key, version_id, *expiry, freed,
        )?)),
        Op::PutInline { owner, id, shards } => {
            if held_by(tx, owner)?.is_some_and(|held| held.holds(id)) {
                tx.put_each(keys::inline_shard(id), shards.clone());
                tx.del(keys::inline(id));
            }
            Ok(Out::Done)
        }
        Op::Move {
            owner,
            moves,
            class,
        } => {
            let held = held_by(tx, owner)?
                .filter(|held| moves.iter().all(|(from, _)| held.holds_data(from)));
            let Some(mut held) = held else {
                return Err(Error::PreconditionFailed);
            };
            if let (Some(class), Held::Version(v)) = (class, &mut held) {
                // Lifecycle leaves a locked version where it is.
                lock::check_removable(v, clock.now(), false)?;
                v.meta.storage_class = (class != "STANDARD").then(|| class.clone());
            }
            for (from, to) in moves {
                let old = held.swap(from, *to);
                add_ref(tx, to);
                drop_data(tx, &old, freed)?;
            }
            held.store(tx, owner)?;
            Ok(Out::Done)
        }
        Op::ToRemote {
            owner,
            from,
            id,
            at,
            class,
            intent,
            lock,
        } => {
            let held = held_by(tx, owner)?;
            let Some(Held::Version(mut v)) = held else {
                return Err(Error::PreconditionFailed);
            };
            let now: Vec<DataId> = v.parts.iter().map(|p| p.data.id()).collect();
            if now != *from {
                return Err(Error::PreconditionFailed);
            }
            if *lock == crate::remote::LockRule::Respect {
                lock::check_removable(&v, clock.now(), false)?;
            }
            let mut offset = 0;
            for p in v.parts.iter_mut() {
                let old = std::mem::replace(&mut p.data, PartData::Remote { id: *id, offset });
                offset += p.size;
                drop_data(tx, &old, freed)?;
            }
            v.meta.storage_class = Some(class.clone());
            tx.put(keys::data_ref(id), record::encode(at)?);
            tx.del(keys::task(*intent));
            Held::Version(v).store(tx, owner)?;
            Ok(Out::Done)
        }
        Op::Rewrap { owner, from, to } => {
            let Some(Held::Version(mut v)) = held_by(tx, owner)? else {
                return Err(Error::PreconditionFailed);
            };
            match v.encryption.as_mut() {
                Some(e) if e.keys == *from => e.keys = to.clone(),
                _ => return Err(Error::PreconditionFailed),
            }
            Held::Version(v).store(tx, owner)?;
            Ok(Out::Done)
        }
        Op::AddWork(work) => Ok(Out::Queued(queue::push(tx, work.clone())?)),
        Op::FinishWork(keys) => {
            for key in keys {
                queue::finish(tx, key)?;
            }
            Ok(Out::Done)
        }
        Op::DropLane(lane) => {
            queue::drop_lane(tx, lane, "the target was removed")?;
            Ok(Out::Done)
        }
        Op::RetryWork { key, error } => {
            queue::retry(tx, key, error)?;
            Ok(Out::Done)
        }
        Op::FileLanes => {
            queue::file_lanes(tx)?;
            Ok(Out::Done)
        }
        Op::FinishReplication(outcomes) => {
            for (key, error) in outcomes {
                replication::finish(tx, key, error.as_deref(), clock)?;
            }
            Ok(Out::Done)
        }
        Op::SetReplication { bucket: b, value } => {
            let rec = bucket(tx, b)?;
            if value.is_some() && rec.versioning != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
                ));
            }
            let at = keys::attr(b, replication::REPLICATION_ATTR);
            match value {
                Some(v) => tx.put(at, v.clone()),
                None => tx.del(at),
            }
            Ok(Out::Done)
        }
        Op::Resync {
            bucket: b,
            versions,
        } => Ok(Out::Queued(replication::resync(tx, b, versions)?)),
        Op::Site(op) => crate::site::apply(tx, op, clock, freed),
        #[cfg(test)]
        Op::Raw(records) => {
            for (k, v) in records {
                match v {
                    Some(v) => tx.put(k.clone(), v.clone()),
                    None => tx.del(k.clone()),
                }
            }
            Ok(Out::Done)
        }
        Op::UsageDay(secs) => {
            usage::set_day(tx, *secs)?;
            Ok(Out::Done)
        }
        Op::UsageHistory(day) => Ok(Out::Applied(crate::usage_history::apply(tx, day)?)),
        Op::NoteReads(reads) => {
            crate::access::apply(tx, reads)?;
            Ok(Out::Done)
        }
        Op::Restore {
            bucket: b,
            key,
            version_id,
            until_ns,
        } => update_version(tx, b, key, version_id.as_deref(), |v| {
            v.restored_until_ns = Some(*until_ns);
            Ok(())
        }),
    }
}

/// Removes bucket `name` if it holds no version: its uploads, settings and records.
pub(crate) fn delete_bucket(tx: &mut Tx, name: &str, freed: &mut Vec<DataId>) -> Result<()> {
    if tx.has_prefix(&keys::version_base(name)) {
        return Err(Error::BucketNotEmpty(name.to_string()));
    }
    for (_, v) in tx.scan(&keys::upload_base(name)) {
        let up = record::decode::<UploadRecord>(&v)?;
        end_upload(tx, name, &up, &[], freed)?;
    }
    for (k, _) in tx.scan(&keys::attr(name, "")) {
        tx.del(k);
    }
    tx.del(keys::bucket(name));
    tx.del(keys::stats(name));
    usage::forget(tx, name);
    Ok(())
}

pub(crate) fn bucket(tx: &mut Tx, name: &str) -> Result<BucketRecord> {
    let bytes = tx
        .get(&keys::bucket(name))
        .ok_or_else(|| Error::NoSuchBucket(name.to_string()))?;
    record::decode(&bytes)
}

fn upload(tx: &mut Tx, b: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
    let bytes = tx
        .get(&keys::upload(b, key, upload_id))
        .ok_or_else(|| Error::NoSuchUpload(upload_id.to_string()))?;
    record::decode::<UploadRecord>(&bytes)
}

/// Change one version in place (the given one, else the current): `change` may refuse.
fn update_version(
    tx: &mut Tx,
    b: &str,
    key: &str,
    version_id: Option<&str>,
    change: impl FnOnce(&mut ObjectVersion) -> Result<()>,
) -> Result<Out> {
    let mut v = match version_id {
        Some(vid) => {
            find_version(tx, b, key, vid)?.ok_or_else(|| Error::NoSuchVersion(vid.to_string()))?
        }
        None => latest(tx, b, key)?.ok_or_else(|| Error::NoSuchKey(key.to_string()))?,
    };
    if v.delete_marker {
        return Err(Error::DeleteMarker {
            key: key.to_string(),
            version_id: v.version_id,
        });
    }
    change(&mut v)?;
    let bytes = record::encode(&v)?;
    if latest(tx, b, key)?.is_some_and(|l| l.sort == v.sort) {
        tx.put(keys::latest(b, key), bytes.clone());
    }
    tx.put(keys::version(b, key, &v.sort), bytes);
    Ok(Out::Done)
}

pub(crate) fn latest(tx: &mut Tx, b: &str, key: &str) -> Result<Option<ObjectVersion>> {
    tx.get(&keys::latest(b, key))
        .map(|v| record::decode(&v))
        .transpose()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// A new sort key: newer versions sort first.
fn sort_key(now: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&(u64::MAX - now).to_be_bytes());
    s[8..].copy_from_slice(&rand::random::<[u8; 8]>());
    s
}

/// A new version's sort key, id and time: now's, or, for a replica, its source's.
fn identity(tx: &Tx, clock: &mut Clock, rec: &BucketRecord) -> Result<([u8; 16], String, u64)> {
    let Some(replica) = &tx.replica else {
        let now = clock.now();
        let sort = sort_key(now);
        return Ok((sort, version_id_for(rec, &sort), now));
    };
    if rec.versioning != Versioning::Enabled {
        return Err(Error::InvalidReplica(format!(
            "bucket {:?} must have versioning enabled to take replicas",
            rec.name
        )));
    }
    Ok((
        replica.sort()?,
        replica.version_id().to_string(),
        replica.mtime_ns,
    ))
}

/// A replica already written (its source sent it again): the new copy's data goes.
fn written_replica(
    tx: &mut Tx,
    b: &str,
    key: &str,
    sort: &[u8; 16],
    parts: &[PartEntry],
    freed: &mut Vec<DataId>,
) -> Result<Option<ObjectVersion>> {
    if tx.replica.is_none() {
        return Ok(None);
    }
    let Some(bytes) = tx.get(&keys::version(b, key, sort)) else {
        return Ok(None);
    };
    for p in parts {
        drop_data(tx, &p.data, freed)?;
    }
    Ok(Some(record::decode(&bytes)?))
}

/// Makes `v` the latest version: a new one is; a replica only if it is the newest (it
/// may arrive after a newer version).
/// Whether `key` has a current object (a delete marker is not one): its latest record
/// exists exactly then (`set_latest`).
fn has_current(tx: &mut Tx, b: &str, key: &str) -> bool {
    tx.has(&keys::latest(b, key))
}

fn set_latest(tx: &mut Tx, b: &str, v: &ObjectVersion, bytes: Vec<u8>) -> Result<()> {
    match (tx.replica.is_some(), v.delete_marker) {
        (true, _) => refresh_latest(tx, b, &v.key),
        (false, false) => {
            tx.put(keys::latest(b, &v.key), bytes);
            Ok(())
        }
        (false, true) => {
            tx.del(keys::latest(b, &v.key));
            Ok(())
        }
    }
}

fn new_version(
    tx: &mut Tx,
    clock: &mut Clock,
    rec: &BucketRecord,
    key: &str,
    (meta, lock, encryption): (ObjectMeta, LockRequest, Option<Encryption>),
    parts: Vec<PartEntry>,
    freed: &mut Vec<DataId>,
) -> Result<ObjectVersion> {
    let (sort, version_id, now) = identity(tx, clock, rec)?;
    if let Some(v) = written_replica(tx, &rec.name, key, &sort, &parts, freed)? {
        return Ok(v);
    }
    if let Some(kept) = replace_null(tx, rec, key, (&version_id, &sort, now), &parts, freed)? {
        return Ok(kept);
    }
    let v = ObjectVersion {
        key: key.to_string(),
        version_id,
        sort,
        delete_marker: false,
        mtime_ns: now,
        size: parts
            .iter()
            .map(|p| match &encryption {
                Some(e) => crate::sse::plain_len(p.size, e.block as usize),
                None => p.size,
            })
            .sum(),
        meta,
        parts,
        retention: lock.retention,
        legal_hold: lock.legal_hold,
        encryption,
        replication: tx.replica.as_ref().map(|_| "REPLICA".to_string()),
        restored_until_ns: None,
    };
    for p in &v.parts {
        add_ref(tx, &p.data);
    }
    // Written in a remote tier's class: stored here, and moved there by the queue; the
    // task is durable with the version, so a crash cannot leave it behind.
    if let Some(class) = &v.meta.storage_class {
        if crate::classes::is_remote(tx, class)? {
            queue::push(
                tx,
                queue::Work::Transition {
                    bucket: rec.name.clone(),
                    key: key.to_string(),
                    version_id: v.version_id.clone(),
                    sort: v.sort,
                    class: class.clone(),
                },
            )?;
        }
    }
    let bytes = record::encode(&v)?;
    tx.put(keys::version(&rec.name, key, &sort), bytes.clone());
    set_latest(tx, &rec.name, &v, bytes)?;
    adjust_stats(tx, &rec.name, 1, v.size as i64)?;
    Ok(v)
}

pub(crate) fn new_marker(
    tx: &mut Tx,
    clock: &mut Clock,
    rec: &BucketRecord,
    key: &str,
    freed: &mut Vec<DataId>,
) -> Result<ObjectVersion> {
    let (sort, version_id, now) = identity(tx, clock, rec)?;
    if let Some(v) = written_replica(tx, &rec.name, key, &sort, &[], freed)? {
        return Ok(v);
    }
    if let Some(kept) = replace_null(tx, rec, key, (&version_id, &sort, now), &[], freed)? {
        return Ok(kept);
    }
    let v = ObjectVersion {
        key: key.to_string(),
        version_id,
        sort,
        delete_marker: true,
        mtime_ns: now,
        size: 0,
        meta: ObjectMeta::default(),
        parts: Vec::new(),
        retention: None,
        legal_hold: false,
        encryption: None,
        replication: None,
        restored_until_ns: None,
    };
    let bytes = record::encode(&v)?;
    tx.put(keys::version(&rec.name, key, &sort), bytes.clone());
    set_latest(tx, &rec.name, &v, bytes)?;
    Ok(v)
}

/// A new `null` version replaces the key's `null` version, if any (unless locked). A
/// replica's does only if it is newer: two sites that each had a `null` version keep
/// the newer, both; the older replica's data goes and the kept version answers.
fn replace_null(
    tx: &mut Tx,
    rec: &BucketRecord,
    key: &str,
    (version_id, sort, now): (&str, &[u8; 16], u64),
    parts: &[PartEntry],
    freed: &mut Vec<DataId>,
) -> Result<Option<ObjectVersion>> {
    if version_id != "null" {
        return Ok(None);
    }
    let Some(old) = find_version(tx, &rec.name, key, "null")? else {
        return Ok(None);
    };
    if tx.replica.is_some() && old.sort < *sort {
        for p in parts {
            drop_data(tx, &p.data, freed)?;
        }
        return Ok(Some(old));
    }
    lock::check_removable(&old, now, false)?;
    remove_version(tx, &rec.name, &old, freed)?;
    Ok(None)
}

fn version_id_for(rec: &BucketRecord, sort: &[u8; 16]) -> String {
    match rec.versioning {
        Versioning::Enabled => hex::encode(sort),
        Versioning::Unversioned | Versioning::Suspended => "null".to_string(),
    }
}

/// The version with this id, if any. `null` is found by scanning the key's versions.
pub(crate) fn find_version(
    tx: &mut Tx,
    b: &str,
    key: &str,
    version_id: &str,
) -> Result<Option<ObjectVersion>> {
    if version_id == "null" {
        for (_, v) in tx.scan(&keys::versions_of(b, key)) {
            let v: ObjectVersion = record::decode(&v)?;
            if v.version_id == "null" {
                return Ok(Some(v));
            }
        }
        return Ok(None);
    }
    let Some(sort) = parse_version_id(version_id) else {
        return Ok(None);
    };
    tx.get(&keys::version(b, key, &sort))
        .map(|v| record::decode(&v))
        .transpose()
}

pub(crate) fn parse_version_id(version_id: &str) -> Option<[u8; 16]> {
    let bytes = hex::decode(version_id).ok()?;
    bytes.try_into().ok()
}

pub(crate) fn remove_version(
    tx: &mut Tx,
    b: &str,
    v: &ObjectVersion,
    freed: &mut Vec<DataId>,
) -> Result<()> {
    tx.del(keys::version(b, &v.key, &v.sort));
    for p in &v.parts {
        drop_data(tx, &p.data, freed)?;
    }
    if !v.delete_marker {
        adjust_stats(tx, b, -1, -(v.size as i64))?;
    }
    Ok(())
}

/// Point `latest` at the newest remaining version, unless that is a delete marker.
pub(crate) fn refresh_latest(tx: &mut Tx, b: &str, key: &str) -> Result<()> {
    let newest = tx.scan(&keys::versions_of(b, key)).into_iter().next();
    match newest {
        Some((_, bytes)) => {
            let v: ObjectVersion = record::decode(&bytes)?;
            if v.delete_marker {
                tx.del(keys::latest(b, key));
            } else {
                tx.put(keys::latest(b, key), bytes);
            }
        }
        None => tx.del(keys::latest(b, key)),
    }
    Ok(())
}

/// An upload ends (completed, aborted, or its bucket deleted): its record and parts go,
/// and their data, except the parts `keep` (which a completed object now owns).
fn end_upload(
    tx: &mut Tx,
    b: &str,
    up: &UploadRecord,
    keep: &[u32],
    freed: &mut Vec<DataId>,
) -> Result<()> {
    let mut bytes = 0;
    for (k, v) in tx.scan(&keys::parts_of(&up.upload_id)) {
        let p = record::decode::<PartRecord>(&v)?;
        if !keep.contains(&p.entry.number) {
            drop_data(tx, &p.entry.data, freed)?;
        }
        bytes += p.entry.size as i64;
        tx.del(k);
    }
    tx.del(keys::upload(b, &up.key, &up.upload_id));
    usage::count_upload(tx, b, up, -1, -bytes);
    Ok(())
}

fn add_ref(tx: &mut Tx, data: &PartData) {
    if let Some(layout) = data.shards() {
        tx.put(keys::data_ref(&layout.id), Vec::new());
    }
}

/// Data no record holds any more: shard files go to the reclaimer once the commit is
/// durable, inline shards go with the commit, and a remote object's delete is queued in
/// it (once, by the first of its parts).
fn drop_data(tx: &mut Tx, data: &PartData, freed: &mut Vec<DataId>) -> Result<()> {
    match data {
        PartData::Inline { id } => {
            tx.del(keys::inline_shard(id));
            tx.del(keys::inline(id));
        }
        PartData::Sharded { id, .. } | PartData::Pooled { id, .. } => {
            tx.del(keys::data_ref(id));
            freed.push(*id);
        }
        PartData::Remote { id, .. } => {
            if let Some(bytes) = tx.get(&keys::data_ref(id)) {
                let at: crate::remote::RemoteRef = record::decode(&bytes)?;
                queue::push(tx, queue::Work::DeleteRemote { at })?;
                tx.del(keys::data_ref(id));
            }
        }
    }
    Ok(())
}

fn adjust_stats(tx: &mut Tx, b: &str, objects: i64, bytes: i64) -> Result<()> {
    let k = keys::stats(b);
    let mut s: BucketStats = match tx.get(&k) {
        Some(v) => record::decode(&v)?,
        None => BucketStats::default(),
    };
    s.objects = s.objects.saturating_add_signed(objects);
    s.bytes = s.bytes.saturating_add_signed(bytes);
    tx.put(k, record::encode(&s)?);
    Ok(())
}
