//! The S3 Control job API on the S3 port (`/v20180820/jobs`): CreateJob, DescribeJob,
//! ListJobs, UpdateJobStatus and UpdateJobPriority, in AWS's XML, over the same jobs as
//! `cybs3 batch`. Requests are SigV4-signed like any other (boto3's `s3control` with
//! `inject_host_prefix=False`); `x-amz-account-id` is required as AWS requires it, and
//! not otherwise used (there is one account).
//!
//! Who may do what: root and local users make jobs that run with their own rights; a
//! user sees and changes only the jobs it made, root all of them. Jobs start at once:
//! `ConfirmationRequired` is accepted and ignored, and `requestedJobStatus=Ready` is a
//! no-op, so the status requests that change anything are `Cancelled`.

use super::control_xml::{job_xml, list_xml, spec_of, Node};
use super::{BatchError, JobView};
use crate::identity::auth::Identities;
use crate::notify::Targets;
use crate::xml::escape;
use hyper::http::Extensions;
use hyper::StatusCode;
use hyper::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// The largest CreateJob request body.
const MAX_BODY: usize = 1 << 20;
const PREFIX: &str = "/v20180820/jobs";

#[derive(Clone)]
pub(crate) struct Control {
    pub identities: Identities,
    pub targets: Targets,
}

/// What a request asks.
enum Call {
    Create,
    List,
    Describe(String),
    Status(String),
    Priority(String),
}

fn call_of(method: &Method, path: &str) -> Option<Call> {
    let rest = path.strip_prefix(PREFIX)?;
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match (method, parts.as_slice()) {
        (&Method::POST, []) => Some(Call::Create),
        (&Method::GET, []) => Some(Call::List),
        (&Method::GET, [id]) => Some(Call::Describe(id.to_string())),
        (&Method::POST, [id, "status"]) => Some(Call::Status(id.to_string())),
        (&Method::POST, [id, "priority"]) => Some(Call::Priority(id.to_string())),
        _ => None,
    }
}

fn query(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn error_of(e: BatchError) -> S3Error {
    match e {
        BatchError::NoSuchJob(id) => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("NoSuchJob".into()),
                format!("no job {id}"),
            );
            err.set_status_code(StatusCode::NOT_FOUND);
            err
        }
        BatchError::Invalid(msg) | BatchError::Report(msg) => {
            s3_error!(InvalidRequest, "{msg}")
        }
        BatchError::Finished(id) => s3_error!(InvalidRequest, "job {id} is finished"),
        BatchError::Store(e) => crate::errors::from_engine(e),
    }
}

fn xml(body: String) -> S3Response<Body> {
    let mut resp = S3Response::new(Body::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    )));
    resp.headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    resp
}

const NS: &str = "xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\"";

#[async_trait::async_trait]
impl S3Route for Control {
    fn is_match(&self, method: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        call_of(method, uri.path()).is_some()
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        if !req.headers.contains_key("x-amz-account-id") {
            return Err(s3_error!(
                InvalidRequest,
                "S3 Control requests need the x-amz-account-id header"
            ));
        }
        let ak = req.credentials.as_ref().map(|c| c.access_key.clone());
        let user = self
            .identities
            .job_creator(ak.as_deref(), &req.headers, &req.uri)
            .await?;
        req.extensions.insert(Creator(user));
        Ok(())
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let Some(Creator(user)) = req.extensions.get::<Creator>().cloned() else {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        };
        let call = call_of(&req.method, req.uri.path())
            .ok_or_else(|| s3_error!(InvalidRequest, "no such S3 Control call"))?;
        let store = self.identities.iam.store().clone();
        match call {
            Call::Create => {
                let body = req.input.store_all_limited(MAX_BODY).await.map_err(|_| {
                    s3_error!(EntityTooLarge, "a CreateJob request is at most 1 MiB")
                })?;
                let text = std::str::from_utf8(&body)
                    .map_err(|_| s3_error!(MalformedXML, "the request is not UTF-8"))?;
                let root = Node::parse(text).map_err(|e| s3_error!(MalformedXML, "{e}"))?;
                let spec = spec_of(&root).map_err(|e| s3_error!(InvalidRequest, "{e}"))?;
                let (iam, targets) = (self.identities.iam.clone(), self.targets.clone());
                let made =
                    blocking(move || super::make(&store, &iam, &targets, spec, &user)).await?;
                Ok(xml(format!(
                    "<CreateJobResult {NS}><JobId>{}</JobId></CreateJobResult>",
                    escape(&made.id)
                )))
            }
            Call::List => {
                let jobs = blocking(move || super::list(&store)).await?;
                let mine = jobs
                    .into_iter()
                    .filter(|j| user == "root" || j.creator == user);
                Ok(xml(format!(
                    "<ListJobsResult {NS}>{}</ListJobsResult>",
                    list_xml(mine)
                )))
            }
            Call::Describe(id) => {
                let (job, req) = blocking(move || super::load(&store, &id)).await?;
                owned(&user, &job.creator)?;
                let view = super::view(&job, &req);
                Ok(xml(format!(
                    "<DescribeJobResult {NS}>{}</DescribeJobResult>",
                    job_xml(&job, &view)
                )))
            }
            Call::Status(id) => {
                let asked = query(&req.uri, "requestedJobStatus").unwrap_or_default();
                let view = self.owned_view(&user, &id).await?;
                let view = match asked.as_str() {
                    "Cancelled" => {
                        blocking(move || super::request(&store, &id, |r| r.cancel = true)).await?
                    }
                    "Ready" => view,
                    other => {
                        return Err(s3_error!(
                            InvalidRequest,
                            "requestedJobStatus is Cancelled or Ready, not {other:?}"
                        ))
                    }
                };
                Ok(xml(format!(
                    "<UpdateJobStatusResult {NS}><JobId>{}</JobId><Status>{:?}</Status></UpdateJobStatusResult>",
                    escape(&view.id),
                    view.status
                )))
            }
            Call::Priority(id) => {
                let priority: i32 = query(&req.uri, "priority")
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| s3_error!(InvalidRequest, "priority must be an integer"))?;
                self.owned_view(&user, &id).await?;
                let view =
                    blocking(move || super::request(&store, &id, |r| r.priority = Some(priority)))
                        .await?;
                Ok(xml(format!(
                    "<UpdateJobPriorityResult {NS}><JobId>{}</JobId><Priority>{}</Priority></UpdateJobPriorityResult>",
                    escape(&view.id),
                    view.priority
                )))
            }
        }
    }
}

/// The job's creator, as the access check resolved it.
#[derive(Clone)]
struct Creator(String);

impl Control {
    async fn owned_view(&self, user: &str, id: &str) -> S3Result<JobView> {
        let (store, id) = (self.identities.iam.store().clone(), id.to_string());
        let view = blocking(move || super::status(&store, &id)).await?;
        owned(user, &view.creator)?;
        Ok(view)
    }
}

/// Users see and change only their own jobs.
fn owned(user: &str, creator: &str) -> S3Result<()> {
    match user == "root" || user == creator {
        true => Ok(()),
        false => Err(s3_error!(AccessDenied, "the job belongs to another user")),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BatchError> + Send + 'static,
) -> S3Result<T> {
    crate::ctx::spawn(f).await?.map_err(error_of)
}
