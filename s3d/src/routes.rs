//! The requests s3s hands to us before resolving an S3 operation (it takes one route):
//! STS forms, GET/HEAD with an unusable Range, site peers' messages, and the S3 Control
//! job API (`/v20180820/jobs`). Each route's
//! `is_match` is asked in turn; the one that matched is remembered in the request's
//! extensions so that its own access check and handler serve it.

use crate::batch::Control;
use crate::identity::sts::Sts;
use crate::ignored_range::IgnoredRange;
use crate::site::api::SiteApi;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};

pub(crate) struct Routes {
    pub sts: Sts,
    pub range: IgnoredRange,
    pub site: SiteApi,
    pub control: Control,
}

/// Which route took a request.
#[derive(Clone, Copy)]
enum Which {
    Sts,
    Range,
    Site,
    Control,
}

impl Routes {
    fn route(&self, extensions: &Extensions) -> S3Result<&dyn S3Route> {
        match extensions.get::<Which>() {
            Some(Which::Sts) => Ok(&self.sts),
            Some(Which::Range) => Ok(&self.range),
            Some(Which::Site) => Ok(&self.site),
            Some(Which::Control) => Ok(&self.control),
            None => Err(s3_error!(InternalError, "a routed request lost its route")),
        }
    }
}

#[async_trait::async_trait]
impl S3Route for Routes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        ext: &mut Extensions,
    ) -> bool {
        let which = if self.sts.is_match(method, uri, headers, ext) {
            Which::Sts
        } else if self.range.is_match(method, uri, headers, ext) {
            Which::Range
        } else if self.site.is_match(method, uri, headers, ext) {
            Which::Site
        } else if self.control.is_match(method, uri, headers, ext) {
            Which::Control
        } else {
            return false;
        };
        ext.insert(which);
        true
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.route(&req.extensions)?.check_access(req).await
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        self.route(&req.extensions)?.call(req).await
    }
}
