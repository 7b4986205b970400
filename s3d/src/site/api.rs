//! Peers' messages (`/?x-cybs3-site=KIND`, see `wire`): only this site's root keys may
//! send them, and each body must open under this site's transport key. A bucket's or a
//! record's state is applied if it is newer than this site's (`engine::site`).

use super::wire::{self, Join, Kind};
use super::Sites;
use crate::errors::from_engine;
use crate::identity::auth::query_pairs;
use engine::{BucketState, RecordState};
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};

/// The largest message: a bucket's settings, a policy.
const MAX_MESSAGE: usize = 16 << 20;

pub(crate) struct SiteApi {
    pub sites: Sites,
}

fn kind_of(uri: &Uri) -> Option<String> {
    query_pairs(uri)
        .into_iter()
        .find(|(k, _)| k == wire::QUERY)
        .map(|(_, v)| v)
}

#[async_trait::async_trait]
impl S3Route for SiteApi {
    fn is_match(&self, _: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        uri.path() == "/" && kind_of(uri).is_some()
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        match &req.credentials {
            Some(c) if c.access_key == self.sites.root().0 => Ok(()),
            _ => Err(s3_error!(
                AccessDenied,
                "site replication messages need this site's root keys"
            )),
        }
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let kind = kind_of(&req.uri).and_then(|k| Kind::parse(&k));
        let secret = self.sites.root().1.clone();
        let kind = match (&req.method, kind) {
            (&Method::GET, Some(Kind::Hello)) => {
                let hello = self.sites.hello().map_err(invalid)?;
                return Ok(S3Response::new(Body::from(wire::seal(&secret, &hello))));
            }
            (&Method::PUT, Some(k)) if k != Kind::Hello => k,
            _ => return Err(s3_error!(InvalidRequest, "no such site message")),
        };
        let body = req
            .input
            .store_all_limited(MAX_MESSAGE)
            .await
            .map_err(|_| s3_error!(EntityTooLarge, "a site message is at most 16 MiB"))?;
        let sealed = || s3_error!(AccessDenied, "the message is not sealed for this site");
        match kind {
            Kind::Join => {
                let join: Join = wire::open(&secret, &body).ok_or_else(sealed)?;
                self.sites.joined(join).await.map_err(invalid)?;
            }
            Kind::Bucket => {
                let state: BucketState = wire::open(&secret, &body).ok_or_else(sealed)?;
                let store = self.sites.store().clone();
                blocking(move || store.apply_site_bucket(state)).await?;
            }
            Kind::Record => {
                let mut state: RecordState = wire::open(&secret, &body).ok_or_else(sealed)?;
                if state.ns == crate::identity::keys::NS {
                    if let Some(v) = &state.value {
                        state.value =
                            Some((self.sites.import_key(&state.name, v)).map_err(from_engine)?);
                    }
                }
                let store = self.sites.store().clone();
                blocking(move || store.apply_site_record(state)).await?;
            }
            Kind::Hello => unreachable!("answered above"),
        }
        Ok(S3Response::new(Body::empty()))
    }
}

async fn blocking(f: impl FnOnce() -> engine::Result<bool> + Send + 'static) -> S3Result<()> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(from_engine(e)),
        Err(_) => Err(s3_error!(InternalError, "a site message's task failed")),
    }
}

fn invalid(e: super::SiteError) -> s3s::S3Error {
    match e {
        super::SiteError::Engine(e) => from_engine(e),
        e => s3_error!(InvalidRequest, "{e}"),
    }
}
