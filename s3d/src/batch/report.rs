//! A job's completion report: a CSV line per task (`bucket,key,versionId,status,
//! httpStatus,errorCode,message`, keys URL-encoded as in manifests, so a report can be
//! the manifest of a job that retries its failures) and a summary JSON, written into
//! the report bucket under `PREFIX/job-ID/`.

use super::job::{Job, Status};
use super::manifest::Task;
use super::ops::Outcome;
use super::{BatchError, OUT_NS};
use crate::inventory::files::Sink;
use crate::notify::{event_time, form_encode};
use engine::Store;
use serde::{Deserialize, Serialize};

/// The report's first line.
pub const HEADER: &str = "bucket,key,versionId,status,httpStatus,errorCode,message\n";

/// The CSV lines of a chunk's outcomes.
pub(crate) fn lines(results: &[(Task, Outcome)]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(results.len() * 96));
    for (t, o) in results {
        let http = o.http.to_string();
        let key = form_encode(&t.key);
        let row = [
            t.bucket.as_str(),
            key.as_str(),
            t.version_id.as_deref().unwrap_or(""),
            if o.ok { "succeeded" } else { "failed" },
            http.as_str(),
            o.code.as_str(),
            o.message.as_str(),
        ];
        // Writing into a Vec cannot fail.
        let _ = w.write_record(row);
    }
    w.into_inner().unwrap_or_default()
}

/// What a finished job's `summary.json` says, and what `cybs3 batch report` shows first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub job_id: String,
    pub status: Status,
    pub operation: String,
    pub total: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `s3://BUCKET/KEY` of the results, when the job has a report bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<String>,
}

pub(crate) fn summary(job: &Job) -> Summary {
    Summary {
        job_id: job.id.clone(),
        status: job.status,
        operation: job.spec.operation.name().to_string(),
        total: job.counts.total,
        succeeded: job.counts.succeeded,
        failed: job.counts.failed,
        created: event_time(job.created_ns),
        finished: job.finished_ns.map(event_time),
        reason: job.reason.clone(),
        results: job.report_keys.as_ref().and_then(|(r, _)| {
            job.spec
                .report
                .as_ref()
                .map(|s| format!("s3://{}/{r}", s.bucket))
        }),
    }
}

/// The report's CSV, a chunk's lines at a time, into `out`.
pub(crate) fn each_chunk(
    store: &Store,
    job: &Job,
    mut out: impl FnMut(&[u8]) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    out(HEADER.as_bytes())?;
    let ns = out_ns(&job.id);
    for n in 0..job.chunks {
        if let Some(bytes) = store.server_record(&ns, &chunk_name(n))? {
            out(&bytes)?;
        }
    }
    Ok(())
}

/// Where a job's chunks' outcomes are kept (one record per chunk).
pub(crate) fn out_ns(id: &str) -> String {
    format!("{OUT_NS}/{id}")
}

pub(crate) fn chunk_name(n: u64) -> String {
    format!("{n:012}")
}

/// Where a job's report goes in the report bucket: `PREFIX/job-ID/`.
pub(crate) fn folder(prefix: &str, id: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => format!("job-{id}/"),
        p => format!("{p}/job-{id}/"),
    }
}

/// Write the results and the summary into the report bucket; their keys.
pub(crate) fn write(store: &Store, job: &Job) -> Result<Option<(String, String)>, BatchError> {
    let Some(spec) = &job.spec.report else {
        return Ok(None);
    };
    let base = folder(&spec.prefix, &job.id);
    let (results, summary_key) = (format!("{base}results.csv"), format!("{base}summary.json"));
    let mut sink = Sink::new(store.put(&spec.bucket, &results)?);
    each_chunk(store, job, |bytes| {
        std::io::Write::write_all(&mut sink, bytes).map_err(|e| BatchError::Report(e.to_string()))
    })?;
    sink.finish("text/csv")?;
    let mut done = job.clone();
    done.report_keys = Some((results.clone(), summary_key.clone()));
    let json = serde_json::to_vec_pretty(&summary(&done)).expect("summaries serialize");
    let mut sink = Sink::new(store.put(&spec.bucket, &summary_key)?);
    std::io::Write::write_all(&mut sink, &json).map_err(|e| BatchError::Report(e.to_string()))?;
    sink.finish("application/json")?;
    Ok(Some((results, summary_key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_quote_what_needs_it_and_encode_keys() {
        let t = |key: &str| Task {
            bucket: "b".into(),
            key: key.into(),
            version_id: Some("v1".into()),
        };
        let got = lines(&[
            (
                t("a b/c"),
                Outcome::failed(403, "AccessDenied", "Access, \"Denied\""),
            ),
            (
                t("x"),
                Outcome {
                    ok: true,
                    http: 200,
                    code: String::new(),
                    message: String::new(),
                },
            ),
        ]);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "b,a+b/c,v1,failed,403,AccessDenied,\"Access, \"\"Denied\"\"\"\nb,x,v1,succeeded,200,,\n"
        );
    }
}
