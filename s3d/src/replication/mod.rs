//! Bucket replication on the server's side: the rules' S3 API (`config`), the sending
//! of queued versions to remotes (`worker`), and the writing of replicas that other
//! servers send (`replica`).

pub(crate) mod config;
pub(crate) mod replica;
pub(crate) mod worker;

pub(crate) use worker::Worker;
