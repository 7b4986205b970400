//! The background loop that runs jobs, a chunk at a time.
//!
//! Each round takes the job to run next: the highest priority, then the oldest (strict
//! priority: a job runs while no job of a higher priority is waiting). It acts on what
//! was asked of it (a cancel), then does one step: `New` → `Preparing` (the creator's
//! rights to the manifest and the report checked, the manifest read through once to count
//! its tasks) → `Active` (chunks of [`CHUNK`] tasks, each with
//! the job's concurrency) → `Complete`, `Failed` or `Cancelled`, with the report.
//!
//! A chunk is marked in flight before its first task and its outcomes are committed with
//! the job's cursor in one commit, so a restart does again at most the chunk it cut
//! off, and knows which one: its tasks run again only where that is harmless (copies
//! are checked first, webhooks are reported failed instead of invoked twice).

use super::job::{Job, Source, Status, CHUNK};
use super::manifest::{Clock, ManifestError, Position, Reader};
use super::ops::{Exec, Outcome};
use super::report::{self, chunk_name, out_ns};
use super::{all, requests, save, BatchError, JOB_NS};
use crate::ctx::now_ns;
use futures::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// How often an idle runner looks for new jobs and requests.
const POLL: Duration = Duration::from_millis(200);

/// Start the runner on the current runtime.
pub(crate) fn spawn(exec: Exec) {
    tokio::spawn(async move {
        let mut readers = HashMap::new();
        loop {
            match step(&exec, &mut readers).await {
                Ok(true) => {}
                Ok(false) => tokio::time::sleep(POLL).await,
                Err(e) => {
                    tracing::warn!("batch jobs: {e}");
                    tokio::time::sleep(POLL * 5).await;
                }
            }
        }
    });
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BatchError> + Send + 'static,
) -> Result<T, BatchError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BatchError::Report(format!("a batch step panicked: {e}")))?
}

/// One step of the job to run next; whether there was one.
async fn step(exec: &Exec, readers: &mut HashMap<String, Reader>) -> Result<bool, BatchError> {
    let store = exec.ctx.store.clone();
    let jobs = blocking(move || all(&store)).await?;
    let next = jobs
        .into_iter()
        .filter(|(j, _)| !j.status.is_terminal())
        .max_by_key(|(j, r)| {
            (
                r.priority.unwrap_or(j.spec.priority),
                std::cmp::Reverse(j.created_ns),
            )
        });
    let Some((mut job, req)) = next else {
        readers.clear();
        return Ok(false);
    };
    if req.cancel {
        readers.remove(&job.id);
        finish(exec, job, Status::Cancelled, Some("cancelled".into())).await?;
        return Ok(true);
    }
    match job.status {
        Status::New => {
            job.status = Status::Preparing;
            persist(exec, &job).await?;
        }
        Status::Preparing => match preflight(exec, &job).await {
            Err(why) => finish(exec, job, Status::Failed, Some(why)).await?,
            Ok(()) => match count(exec, &job).await {
                Ok(total) => {
                    job.counts.total = total;
                    job.status = Status::Active;
                    persist(exec, &job).await?;
                }
                Err(e) => finish(exec, job, Status::Failed, Some(e.to_string())).await?,
            },
        },
        _ => chunk(exec, job, readers).await?,
    }
    Ok(true)
}

async fn persist(exec: &Exec, job: &Job) -> Result<(), BatchError> {
    let (store, job) = (exec.ctx.store.clone(), job.clone());
    blocking(move || save(&store, &job)).await
}

fn clock(exec: &Exec, job: &Job) -> Clock {
    Clock {
        snapshot_ns: job.created_ns,
        now_ns: now_ns(),
        day_secs: exec.ctx.lifecycle_day_secs,
    }
}

/// What the job reads and writes beside its tasks, checked against its creator's rights
/// before the manifest is read: the manifest object (or a listing of the generated
/// manifest's bucket) and the report's place. Without this a job would show its creator
/// keys it may not list, in its report.
async fn preflight(exec: &Exec, job: &Job) -> Result<(), String> {
    let (ids, job) = (exec.identities.clone(), job.clone());
    let checked = crate::ctx::spawn(move || -> s3s::S3Result<Option<String>> {
        let Some(caller) = ids.caller_named(&job.creator)? else {
            return Ok(Some(format!(
                "the job's creator {} no longer exists",
                job.creator
            )));
        };
        let mut asks = match job.spec.source() {
            Ok(Source::Object { bucket, key, .. }) => {
                vec![("GetObject", bucket.to_string(), Some(key.to_string()))]
            }
            Ok(Source::Generate(g)) => vec![("ListObjectsV2", g.bucket.clone(), None)],
            Err(e) => return Ok(Some(e)),
        };
        if let Some(r) = &job.spec.report {
            let key = format!("{}results.csv", report::folder(&r.prefix, &job.id));
            asks.push(("PutObject", r.bucket.clone(), Some(key)));
        }
        for (op, bucket, key) in asks {
            let target = (bucket.as_str(), key.as_deref(), None);
            if !ids.allows(&caller, op, target, &hyper::HeaderMap::new())? {
                let what = match key {
                    Some(k) => format!("{bucket}/{k}"),
                    None => bucket,
                };
                return Ok(Some(format!(
                    "AccessDenied: {} may not {op} s3://{what}",
                    job.creator
                )));
            }
        }
        Ok(None)
    })
    .await
    .and_then(|r| r)
    .map_err(|e| format!("cannot check the creator's rights: {e:?}"))?;
    checked.map_or(Ok(()), Err)
}

async fn count(exec: &Exec, job: &Job) -> Result<u64, ManifestError> {
    let (store, spec, clock) = (exec.ctx.store.clone(), job.spec.clone(), clock(exec, job));
    tokio::task::spawn_blocking(move || {
        let source = spec.source().expect("validated when made");
        Reader::open(&store, &source, clock, Position::default())?.count()
    })
    .await
    .expect("counting does not panic")
}

/// Run the next chunk of an active job.
async fn chunk(
    exec: &Exec,
    mut job: Job,
    readers: &mut HashMap<String, Reader>,
) -> Result<(), BatchError> {
    let at = Position {
        done: job.cursor,
        after: job.after.clone(),
    };
    let kept = readers.remove(&job.id).filter(|r| r.position == at);
    let (store, spec, clock) = (exec.ctx.store.clone(), job.spec.clone(), clock(exec, &job));
    let read = tokio::task::spawn_blocking(move || {
        let mut reader = match kept {
            Some(r) => r,
            None => {
                let source = spec.source().expect("validated when made");
                Reader::open(&store, &source, clock, at)?
            }
        };
        let tasks = reader.next_chunk(CHUNK)?;
        Ok::<_, ManifestError>((reader, tasks))
    })
    .await
    .expect("reading a manifest does not panic");
    let (reader, tasks) = match read {
        Ok(r) => r,
        Err(e) => return finish(exec, job, Status::Failed, Some(e.to_string())).await,
    };
    if tasks.is_empty() {
        let failed = job.counts.over_threshold();
        let (status, reason) = match failed {
            true => (Status::Failed, Some(threshold_reason())),
            false => (Status::Complete, None),
        };
        return finish(exec, job, status, reason).await;
    }
    let again = job.in_flight;
    if !again {
        job.in_flight = true;
        persist(exec, &job).await?;
    }
    let ids = exec.identities.clone();
    let creator = job.creator.clone();
    let caller = crate::ctx::spawn(move || ids.caller_named(&creator))
        .await
        .and_then(|r| r)
        .map_err(|e| BatchError::Report(format!("cannot read the creator's rights: {e:?}")))?;
    let results: Vec<(super::manifest::Task, Outcome)> = futures::stream::iter(tasks)
        .map(|t| {
            let (job, caller) = (&job, caller.as_ref());
            async move {
                let o = exec.run(job, caller, &t, again).await;
                (t, o)
            }
        })
        .buffered(job.spec.concurrency())
        .collect()
        .await;
    for (_, o) in &results {
        match o.ok {
            true => job.counts.succeeded += 1,
            false => job.counts.failed += 1,
        }
    }
    job.cursor = reader.position.done;
    job.after = reader.position.after.clone();
    job.in_flight = false;
    let n = job.chunks;
    job.chunks += 1;
    let over = job.counts.over_threshold();
    let lines = report::lines(&results);
    let (store, saved) = (exec.ctx.store.clone(), job.clone());
    blocking(move || {
        let bytes = serde_json::to_vec(&saved).expect("jobs serialize");
        Ok(store.set_server_records(vec![
            (out_ns(&saved.id), chunk_name(n), Some(lines)),
            (JOB_NS.to_string(), saved.id.clone(), Some(bytes)),
        ])?)
    })
    .await?;
    // A cancel asked while the chunk ran stops the job now, not after the next chunk.
    let (store, id) = (exec.ctx.store.clone(), job.id.clone());
    if blocking(move || requests(&store, &id)).await?.cancel {
        return finish(exec, job, Status::Cancelled, Some("cancelled".into())).await;
    }
    if over {
        return finish(exec, job, Status::Failed, Some(threshold_reason())).await;
    }
    readers.insert(job.id.clone(), reader);
    Ok(())
}

fn threshold_reason() -> String {
    format!(
        "more than {}% of the tasks failed (judged after {} tasks, or at the end of a smaller job)",
        super::job::THRESHOLD_PERCENT,
        super::job::THRESHOLD_SAMPLE
    )
}

/// End a job: its report, then its final status.
async fn finish(
    exec: &Exec,
    mut job: Job,
    status: Status,
    reason: Option<String>,
) -> Result<(), BatchError> {
    job.status = status;
    job.reason = reason;
    job.finished_ns = Some(now_ns());
    job.in_flight = false;
    let store = exec.ctx.store.clone();
    blocking(move || {
        match report::write(&store, &job) {
            Ok(keys) => job.report_keys = keys,
            Err(e) => {
                let why = job.reason.take();
                job.reason = Some(match why {
                    Some(w) => format!("{w}; no report: {e}"),
                    None => format!("no report: {e}"),
                });
            }
        }
        tracing::info!(job = %job.id, status = ?job.status, succeeded = job.counts.succeeded, failed = job.counts.failed, "batch job finished");
        save(&store, &job)
    })
    .await
}
