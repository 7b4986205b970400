//! The record that holds a piece of data (an object version, or a multipart upload's
//! part), named by [`Owner`] and read and written back whole by the operations that
//! replace data in place: heal's inline shards, moves between pools and tiers.

use crate::commit::Tx;
use crate::error::Result;
use crate::ops::latest;
use crate::record::{self, keys, DataId, ObjectVersion, PartData, PartEntry, PartRecord};

/// The record that holds a piece of data, checked again when heal writes it back.
#[derive(Clone, Debug)]
pub(crate) enum Owner {
    Version {
        bucket: String,
        key: String,
        sort: [u8; 16],
    },
    Part {
        upload_id: String,
        number: u32,
    },
}

/// The record that holds a piece of data, as [`Owner`] names it.
pub(crate) enum Held {
    Version(Box<ObjectVersion>),
    Part(PartRecord),
}

pub(crate) fn held_by(tx: &mut Tx, owner: &Owner) -> Result<Option<Held>> {
    Ok(match owner {
        Owner::Version { bucket, key, sort } => tx
            .get(&keys::version(bucket, key, sort))
            .map(|v| record::decode::<ObjectVersion>(&v))
            .transpose()?
            .map(|v| Held::Version(Box::new(v))),
        Owner::Part { upload_id, number } => tx
            .get(&keys::part(upload_id, *number))
            .map(|v| record::decode::<PartRecord>(&v))
            .transpose()?
            .map(Held::Part),
    })
}

impl Held {
    fn entries(&mut self) -> Vec<&mut PartEntry> {
        match self {
            Held::Version(v) => v.parts.iter_mut().collect(),
            Held::Part(p) => vec![&mut p.entry],
        }
    }

    pub(crate) fn holds(&self, id: &DataId) -> bool {
        match self {
            Held::Version(v) => v.parts.iter().any(|p| p.data.id() == *id),
            Held::Part(p) => p.entry.data.id() == *id,
        }
    }

    /// Whether it holds exactly `data` (a range of a remote object: at its offset).
    pub(crate) fn holds_data(&self, data: &PartData) -> bool {
        match self {
            Held::Version(v) => v.parts.iter().any(|p| p.data == *data),
            Held::Part(p) => p.entry.data == *data,
        }
    }

    /// Puts `to` where `from` was; the data it replaced.
    pub(crate) fn swap(&mut self, from: &PartData, to: PartData) -> PartData {
        let entry = self
            .entries()
            .into_iter()
            .find(|p| p.data == *from)
            .expect("checked by holds_data");
        std::mem::replace(&mut entry.data, to)
    }

    /// Writes the record back where it was (and a version's copy as its key's latest).
    pub(crate) fn store(&self, tx: &mut Tx, owner: &Owner) -> Result<()> {
        match (self, owner) {
            (Held::Version(v), Owner::Version { bucket, key, sort }) => {
                let bytes = record::encode(v.as_ref())?;
                if latest(tx, bucket, key)?.is_some_and(|l| l.sort == *sort) {
                    tx.put(keys::latest(bucket, key), bytes.clone());
                }
                tx.put(keys::version(bucket, key, sort), bytes);
            }
            (Held::Part(p), Owner::Part { upload_id, number }) => {
                tx.put(keys::part(upload_id, *number), record::encode(p)?);
            }
            _ => unreachable!("held_by reads the record its owner names"),
        }
        Ok(())
    }
}
