//! cybs3 S3 server: the S3 protocol (through s3s) over the engine.
//!
//! s3s parses requests, verifies signatures and serializes responses; this crate
//! maps each operation onto the synchronous engine, run on blocking threads so
//! the async executor never waits on disk or LMDB.
//!
//! The modules form layers; each imports only from the layers below it:
//!
//! 1. The base: [`errors`] (engine and body-stream failures as S3 errors, in one
//!    place), [`ctx`] (the service context, the client's address, the one blocking
//!    helper), [`xml`] (escaping for hand-written XML answers, references for control
//!    characters), [`vhost`] (which Host headers name a bucket, virtual-hosted style),
//!    [`config`] (the server's settings), [`live`] (those that change while it runs),
//!    [`conns`] (open connections: idle timeout, cap, shedding), [`tls`] (the HTTPS
//!    certificate pair, its SIGHUP reload, who may log in over plain HTTP), [`fdlimit`] (the
//!    descriptor budget), [`logs`] (what may reach the log), [`messages`] (a Message
//!    for every error document, a request id for every response), [`trail`] (the
//!    current request's audit record) and [`audit`] (the tamper-evident log it goes to).
//! 2. [`identity`]: who is calling and what they may do: access keys, users, groups,
//!    IAM and bucket policies, STS sessions and directory logins. It imports nothing
//!    from the operations.
//! 3. The operations:
//!    - [`server`]: accept loop, health probes, graceful shutdown, request logs.
//!    - [`metrics`]: the Prometheus metrics at `GET /metrics`, counted as requests finish.
//!    - [`precheck`]: what is settled before s3s parses a request (presigned expiry
//!      bounds).
//!    - [`routes`]: requests taken before s3s resolves an operation: STS forms, and
//!      GET/HEAD with an unusable Range ([`ignored_range`]).
//!    - [`service`]: the `S3` trait implementation, one thin method per operation.
//!    - [`buckets`], [`objects`], [`delete`], [`list`]: the operations themselves.
//!    - [`post`]: browser form uploads (POST Object) and their policy documents.
//!    - [`body`]: streaming request bodies into the engine, with digests.
//!    - [`versioning`]: bucket versioning, version ids and delete markers, ListObjectVersions.
//!    - [`multipart`], [`copy`]: multipart uploads and server-side copies.
//!    - [`attributes`]: GetObjectAttributes, with a multipart object's parts.
//!    - [`batch`]: S3 Batch Operations: jobs over a manifest's objects, run in the
//!      background with their creator's rights, and their S3 Control API.
//!    - [`archive`]: archive storage classes: reads refused until RestoreObject.
//!    - [`notify`]: bucket notifications: targets, configurations, AWS's event message
//!      and delivery through webhooks, AMQP, MQTT, NATS, Redis and PostgreSQL.
//!    - [`remote`]: the S3 client of remote tiers, which the engine calls to move data
//!      to another S3 system and read it back.
//!    - [`object_lock`]: object lock's configuration, retention and legal holds over S3
//!      (the rules are the engine's).
//!    - [`select`]: S3 Select: SQL over an object's CSV, JSON or Parquet records, streamed
//!      back as AWS's event stream.
//!    - [`inventory`]: inventory configurations and the CSV or Parquet reports they ask
//!      for, written into a destination bucket on a schedule or on demand.
//!    - [`tagging`]: object tags; [`bucket_config`], [`cors`]: bucket tagging and CORS
//!      (incl. preflight answers).
//!    - [`usage`]: the usage pass every interval (the counters are the engine's).
//!    - [`acl`]: bucket and object ACLs over S3, and the owner and ACL of new buckets and
//!      objects; [`ownership`]: object ownership controls; [`public_access`]: public
//!      access blocks (what is stored and how it decides access: `identity::grants`).
//!    - [`analyzer`]: the access analyzer: public buckets and objects, grants to others,
//!      wildcards, impossible conditions, unused users and keys, long sessions.

// The base.
pub mod audit;
mod config;
mod conns;
mod ctx;
mod errors;
mod fdlimit;
mod live;
mod logs;
mod messages;
pub mod metrics;
mod tls;
pub mod trail;
mod vhost;
mod xml;
// Who is calling and what they may do.
mod identity;
// The operations.
mod acl;
mod analyzer;
pub mod anomaly;
mod archive;
mod attributes;
pub mod batch;
mod body;
mod bucket_config;
mod buckets;
mod copy;
mod cors;
mod delete;
mod ignored_range;
mod inventory;
mod lifecycle;
mod list;
mod multipart;
pub mod notify;
mod object_lock;
mod objects;
mod ownership;
mod post;
mod precheck;
mod public_access;
mod remote;
pub mod remotes;
mod replication;
mod rfc2047;
mod routes;
mod sealed;
mod select;
mod server;
mod service;
mod sigv2;
pub mod site;
mod sse;
mod tagging;
#[cfg(test)]
mod testing;
mod usage;
mod versioning;

pub use analyzer::{
    analyze, Analysis, AnalyzerError, Finding, Kind as FindingKind, Options as AnalyzeOptions,
    Severity,
};
pub use anomaly::{AlertCall, Anomalies, AnomalyError};
pub use config::ServerConfig;
pub use ctx::PeerAddr;
pub use identity::iam::{GroupInfo, Iam, IamCall, IamError, NewUser, PolicyInfo, Target, UserInfo};
pub use identity::keys::{KeyInfo, Keyring, NewKey};
pub use identity::ldap;
pub use inventory::{run_now as run_inventory, InventoryError, InventoryRun};
pub use lifecycle::Settings as LifecycleSettings;
pub use live::Live;
pub use logs::loggable;
pub use notify::{NotifyCall, Targets};
pub use remote::seal_secret;
pub use remotes::{NewRemote, RemoteCall, RemoteError, RemoteInfo, Remotes};
pub use server::serve;
pub use site::{PeerStatus, SiteCall, SiteError, SiteStatus, Sites};
pub use tls::{TlsError, TlsFiles};
