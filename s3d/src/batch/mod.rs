//! S3 Batch Operations: jobs that apply one operation to every object of a manifest,
//! in the background, with the rights of the user who made them.
//!
//! - [`job`]: the job file (strictly validated) and the job's record.
//! - [`manifest`]: the tasks, streamed from a CSV, an inventory or a listing.
//! - [`ops`]: one task, checked against the creator's rights and done by the code of
//!   its S3 request.
//! - [`runner`]: the background loop: priority, concurrency, cancel, the failure
//!   threshold, and progress that survives a restart.
//! - [`report`]: the completion report (CSV and summary JSON).
//! - [`control`], [`control_xml`]: the S3 Control job API on the S3 port, and its XML.
//!
//! Persistence: jobs are server records in the engine (`batch-job`), what users ask of
//! a running job in its own record (`batch-req`, so the runner and a request never
//! overwrite each other), and each chunk's outcomes (`batch-out/ID`) are committed
//! together with the job's cursor. Why not the engine's work queue: a job's tasks are
//! not caused by a change (the queue's tasks are committed with the change that causes
//! them), a manifest of 100,000 objects would be 100,000 queue records written before
//! the first task, and the queue runs its work on the engine's thread, which cannot
//! reach s3d's policies and handlers. The runner keeps the queue's guarantees itself:
//! progress committed with outcomes, resumption after a restart, and at most once for
//! what must not repeat (see [`runner`]).

mod control;
mod control_xml;
mod job;
mod manifest;
mod ops;
mod report;
mod runner;

pub(crate) use control::Control;
pub use job::{Counts, Job, JobSpec, Status};
pub(crate) use ops::Exec;
pub use report::Summary;
pub(crate) use runner::spawn;

use crate::identity::iam::Iam;
use crate::notify::Targets;
use engine::Store;
use job::{Requests, Source};
use serde::{Deserialize, Serialize};

/// Jobs, by id.
const JOB_NS: &str = "batch-job";
/// What users asked of jobs (cancel, a new priority), by id.
const REQ_NS: &str = "batch-req";
/// Outcomes, in `batch-out/ID`, a record per chunk.
const OUT_NS: &str = "batch-out";

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}")]
    Invalid(String),
    #[error("no batch job {0}")]
    NoSuchJob(String),
    #[error("job {0} is finished")]
    Finished(String),
    #[error(transparent)]
    Store(#[from] engine::Error),
    #[error("cannot write the report: {0}")]
    Report(String),
}

/// A management call (`cybs3 batch …` over the admin socket).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchCall {
    /// `job` is the job file as JSON; `user` the creator whose rights it runs with.
    Create {
        job: serde_json::Value,
        user: String,
    },
    List,
    Status {
        id: String,
    },
    Cancel {
        id: String,
    },
    Priority {
        id: String,
        priority: i32,
    },
    Report {
        id: String,
    },
}

/// A job as listings and `batch status` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    pub creator: String,
    /// `Cancelling` while a cancel waits for the runner.
    pub status: Status,
    pub operation: String,
    pub priority: i32,
    pub counts: Counts,
    pub created_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `s3://BUCKET/KEY` of the results, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
}

/// What `batch report` answers: the summary and the CSV.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportView {
    pub summary: Summary,
    pub csv: String,
}

/// Serve a management call.
pub fn apply(
    iam: &Iam,
    targets: &Targets,
    call: BatchCall,
) -> Result<serde_json::Value, BatchError> {
    let store = iam.store();
    Ok(match call {
        BatchCall::Create { job, user } => {
            let bytes = serde_json::to_vec(&job).expect("JSON values serialize");
            json(&create(store, iam, targets, &bytes, &user)?)
        }
        BatchCall::List => json(&list(store)?),
        BatchCall::Status { id } => json(&status(store, &id)?),
        BatchCall::Cancel { id } => json(&request(store, &id, |r| r.cancel = true)?),
        BatchCall::Priority { id, priority } => {
            json(&request(store, &id, |r| r.priority = Some(priority))?)
        }
        BatchCall::Report { id } => json(&report_of(store, &id)?),
    })
}

fn json(v: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("answers serialize")
}

/// Make a job from a job file, run by `user` (`root` or a local user).
pub(crate) fn create(
    store: &Store,
    iam: &Iam,
    targets: &Targets,
    file: &[u8],
    user: &str,
) -> Result<JobView, BatchError> {
    let spec = JobSpec::parse(file).map_err(BatchError::Invalid)?;
    make(store, iam, targets, spec, user)
}

/// Make a job of a valid job file, run by `user`, once what it names exists.
pub(crate) fn make(
    store: &Store,
    iam: &Iam,
    targets: &Targets,
    spec: JobSpec,
    user: &str,
) -> Result<JobView, BatchError> {
    if user != "root" && iam.user_policies(user).map_err(invalid)?.is_none() {
        return Err(BatchError::Invalid(format!("no user {user}")));
    }
    let bucket_exists = |b: &str| match store.bucket(b) {
        Ok(_) => Ok(()),
        Err(engine::Error::NoSuchBucket(_)) => Err(BatchError::Invalid(format!("no bucket {b}"))),
        Err(e) => Err(e.into()),
    };
    match spec.source().map_err(BatchError::Invalid)? {
        Source::Object { bucket, key, .. } => {
            bucket_exists(bucket)?;
            if store.head(bucket, key, None).is_err() {
                return Err(BatchError::Invalid(format!(
                    "no manifest s3://{bucket}/{key}"
                )));
            }
        }
        Source::Generate(g) => bucket_exists(&g.bucket)?,
    }
    if let Some(r) = &spec.report {
        bucket_exists(&r.bucket)?;
    }
    match &spec.operation {
        job::Operation::Copy(c) => bucket_exists(&c.bucket)?,
        job::Operation::Webhook(w) => {
            targets.open(&w.target).map_err(invalid)?;
        }
        _ => {}
    }
    // A UUID, as S3 Control's job ids are.
    let id = crate::inventory::report::uuid();
    let job = Job {
        id: id.clone(),
        creator: user.to_string(),
        spec,
        status: Status::New,
        counts: Counts::default(),
        created_ns: crate::ctx::now_ns(),
        finished_ns: None,
        reason: None,
        cursor: 0,
        after: None,
        chunks: 0,
        in_flight: false,
        report_keys: None,
    };
    save(store, &job)?;
    Ok(view(&job, &Requests::default()))
}

fn invalid(e: impl std::fmt::Display) -> BatchError {
    BatchError::Invalid(e.to_string())
}

pub(crate) fn save(store: &Store, job: &Job) -> Result<(), BatchError> {
    let bytes = serde_json::to_vec(job).expect("jobs serialize");
    Ok(store.set_server_record(JOB_NS, &job.id, Some(bytes))?)
}

pub(crate) fn load(store: &Store, id: &str) -> Result<(Job, Requests), BatchError> {
    let bytes = store
        .server_record(JOB_NS, id)?
        .ok_or_else(|| BatchError::NoSuchJob(id.to_string()))?;
    let job = decode(&bytes)?;
    Ok((job, requests(store, id)?))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, BatchError> {
    serde_json::from_slice(bytes).map_err(|e| BatchError::Invalid(format!("a stored job: {e}")))
}

fn requests(store: &Store, id: &str) -> Result<Requests, BatchError> {
    match store.server_record(REQ_NS, id)? {
        Some(b) => decode(&b),
        None => Ok(Requests::default()),
    }
}

/// Every job with what was asked of it, oldest first.
pub(crate) fn all(store: &Store) -> Result<Vec<(Job, Requests)>, BatchError> {
    let asked: std::collections::HashMap<String, Requests> = store
        .server_records(REQ_NS)?
        .into_iter()
        .filter_map(|(id, b)| Some((id, decode(&b).ok()?)))
        .collect();
    let mut jobs = store
        .server_records(JOB_NS)?
        .into_iter()
        .map(|(id, b)| {
            let job: Job = decode(&b)?;
            Ok((job, asked.get(&id).cloned().unwrap_or_default()))
        })
        .collect::<Result<Vec<_>, BatchError>>()?;
    jobs.sort_by_key(|(j, _)| j.created_ns);
    Ok(jobs)
}

pub(crate) fn view(job: &Job, req: &Requests) -> JobView {
    let summary = report::summary(job);
    JobView {
        id: job.id.clone(),
        creator: job.creator.clone(),
        status: match (job.status.is_terminal(), req.cancel) {
            (false, true) => Status::Cancelling,
            _ => job.status,
        },
        operation: summary.operation,
        priority: req.priority.unwrap_or(job.spec.priority),
        counts: job.counts,
        created_ns: job.created_ns,
        finished_ns: job.finished_ns,
        reason: job.reason.clone(),
        results: summary.results,
    }
}

pub fn list(store: &Store) -> Result<Vec<JobView>, BatchError> {
    Ok(all(store)?.iter().map(|(j, r)| view(j, r)).collect())
}

pub fn status(store: &Store, id: &str) -> Result<JobView, BatchError> {
    let (job, req) = load(store, id)?;
    Ok(view(&job, &req))
}

/// Record a request of a job (the runner acts on it between chunks).
pub(crate) fn request(
    store: &Store,
    id: &str,
    change: impl FnOnce(&mut Requests),
) -> Result<JobView, BatchError> {
    let (job, mut req) = load(store, id)?;
    if job.status.is_terminal() {
        return Err(BatchError::Finished(id.to_string()));
    }
    change(&mut req);
    let bytes = serde_json::to_vec(&req).expect("requests serialize");
    store.set_server_record(REQ_NS, id, Some(bytes))?;
    Ok(view(&job, &req))
}

/// The summary and the CSV of a job's outcomes so far.
pub fn report_of(store: &Store, id: &str) -> Result<ReportView, BatchError> {
    let (job, _) = load(store, id)?;
    let mut csv = Vec::new();
    report::each_chunk(store, &job, |b| {
        csv.extend_from_slice(b);
        Ok(())
    })?;
    Ok(ReportView {
        summary: report::summary(&job),
        csv: String::from_utf8_lossy(&csv).into_owned(),
    })
}
