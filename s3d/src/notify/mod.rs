//! Bucket notifications over S3: the targets events go to ([`targets`]), the bucket
//! configurations that choose them ([`config`]), AWS's event message ([`message`]),
//! and their delivery ([`deliver`]) through each target's protocol: [`webhook`],
//! [`amqp`], [`mqtt`], [`nats`], [`redis`], [`postgres`]. [`shipper`] sends the audit log's
//! lines to a target too.
//!
//! Which change raises which event, and its durability, are the engine's
//! (`engine/src/events.rs`): events are queued in the commit of their change, in the
//! engine's one work queue, and handed to [`deliver::Deliverer`] in order per target.

mod amqp;
pub(crate) mod config;
mod deliver;
mod message;
mod mqtt;
mod nats;
mod postgres;
mod redis;
pub(crate) mod shipper;
mod targets;
mod webhook;

pub(crate) use deliver::{Deliverer, Message};
pub(crate) use message::{event_time, form_encode};
pub use targets::{
    Kind, NewTarget, NotifyCall, Options, TargetError, TargetInfo, TargetStatus, Targets,
};

/// A delivery (or connection) that failed, and why; the work queue retries it.
#[derive(Debug)]
pub(crate) struct Failed(pub String);
