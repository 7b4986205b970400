//! The vault client library shared by `cybs3` (the CLI) and the mount: for now the one way
//! to build an S3 client for a target.

pub mod client;
pub mod crypto;

pub use client::S3Target;
