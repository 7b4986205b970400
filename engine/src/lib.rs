//! cybs3 engine: an erasure-coded object store on local drives, indexed in LMDB.
//!
//! No HTTP and no FUSE here: servers and the mount drive this API.
//!
//! - Every drive holds its own full copy of the metadata (LMDB), so losing any
//!   `M` drives loses neither data nor index.
//! - Object bytes are cut into blocks, each Reed-Solomon coded into `K + M`
//!   checksummed shards, one per drive; small objects are coded the same way into
//!   the metadata records, one shard per drive (`inline.rs`).
//! - All metadata writes go through one group-committing thread ([`commit`]), as
//!   operations (`ops.rs`) that check, inside the commit, what must hold before they
//!   change anything: object lock (`lock.rs`), conditional writes (`condition.rs`), a
//!   retried multipart completion (`completed.rs`), a lifecycle expiration
//!   (`expire.rs`).
//! - Usage is counted in the same commits (`usage.rs`), and by prefix and access in a
//!   background pass (`usage_scan.rs`, `access.rs`).

mod access;
mod backlog;
mod classes;
mod codec;
mod commit;
mod completed;
mod condition;
mod direct;
mod drain;
mod drive;
mod error;
mod events;
mod expire;
mod heal;
mod held;
mod inline;
mod inline_cache;
mod iostats;
mod kms;
mod layout;
mod list;
mod lock;
mod moves;
mod ops;
mod pool;
mod queue;
mod read;
mod reclaim;
mod record;
mod rejoin;
mod remote;
mod replication;
mod rewrap;
mod rounds;
mod shard;
mod site;
mod sse;
mod store;
mod trend;
mod usage;
mod usage_history;
mod usage_scan;
mod write;

pub use backlog::Backlog;
pub use classes::{StorageClass, Tier, STANDARD};
/// The block coder alone, for `cybs3 bench engine`'s encode rate; not part of the store's API.
#[cfg(feature = "bench-internals")]
pub use codec::Encoder;
pub use condition::{ETagMatch, WriteCondition};
pub use drive::DriveState;
pub use error::{Error, Result};
pub use events::{
    event_matches, with_origin, Chain, Event, Notifier, NotifyConfig, NotifyRule, Origin, Sent,
};
pub use expire::Expiry;
pub use heal::{HealReport, ScanStatus};
pub use iostats::IoCounts;
pub use kms::{KeyInfo, KeyService, DEFAULT_KEY, SSE_S3_KEY};
pub use layout::{Ec, BLOCK_SIZE, INLINE_MAX};
pub use list::{ListPage, ListQuery, VersionEntry, VersionPage, VersionQuery};
pub use ops::{Deleted, MIN_PART_SIZE};
pub use pool::{PoolInfo, PoolState, FIRST_POOL};
pub use queue::{DeadLetter, LaneStats, LaneStatus, QueueStatus, DEFAULT_LANE_BOUND};
pub use read::{check_customer, ObjectReader, RangeRead};
pub use record::{
    Acl, BucketRecord, BucketStats, CanonicalUser, DataId, DefaultRetention, Encryption, Grant,
    Grantee, LockMode, LockPeriod, LockRequest, ObjectMeta, ObjectVersion, PartData, PartEntry,
    PartRecord, Permission, Retention, ShardLayout, SseMode, UploadRecord, Versioning, WrappedKey,
    Written,
};
pub use remote::{RemoteStore, RemoteTier};
pub use replication::{
    as_replica, status_of, DestinationStatus, FilterForm, ReplChain, ReplRule, ReplSent,
    ReplStatus, ReplTask, ReplWhat, Replica, ReplicationConfig, Replicator,
};
pub use rewrap::RewrapJob;
pub use site::{
    peer_of, remote_name, BucketState, PeerQueue, RecordState, SiteGroup, SiteHealth, Stamp,
};
pub use sse::{customer_mode, part_plain_size};
pub use store::{validate_bucket_name, validate_key, DriveStatus, Status, Store, StoreConfig};
pub use trend::{crossing, Crossing, Line, HORIZON_DAYS, MIN_POINTS, WINDOW_DAYS};
pub use usage::{band, Tally, Usage, UsageRow, BANDS, BAND_FROM, DAY_SECS};
pub use usage_history::{BucketDay, FsDay, PoolDay, UsageDay, KEEP_DAYS};
pub use usage_scan::{PrefixUsage, UsageSnapshot, HOT_DAYS, MAX_DEPTH, WARM_DAYS};
pub use write::ObjectWriter;
