//! GET and HEAD with a Range header that is not one valid byte range (`bytes=5-1`,
//! several ranges, garbage): RFC 9110 §14.2 has a server ignore such a header, and S3
//! then answers 200 with the whole object. s3s refuses the request with 400 instead.
//!
//! SDKs sign every header they send, Range included, so the header cannot simply be
//! dropped before s3s verifies the signature. Instead this route takes the request
//! after s3s has verified it (routes are matched after the signature check), removes
//! the Range header, and serves the rest through a second S3 service as an unsigned
//! request that carries the verified access key ([`Verified`]). The access check then
//! decides for that key exactly as it would have for the signed request.
//!
//! A valid range past the end is not matched here: GetObject answers it 416.

use crate::identity::auth::Verified;
use hyper::header::RANGE;
use hyper::http::Extensions;
use hyper::{HeaderMap, Method, Uri};
use s3s::dto::Range;
use s3s::route::S3Route;
use s3s::service::S3Service;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};

/// Query parameters that carry a presigned URL's signature (SigV4, then SigV2). The
/// session token stays: the access check still asks for it.
const SIGNATURE_PARAMS: [&str; 9] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

#[derive(Clone)]
pub(crate) struct IgnoredRange {
    /// The same service without this route, which serves the request once its Range is gone.
    pub plain: S3Service,
}

/// Whether a GET or HEAD carries Range headers that are not exactly one valid range.
fn is_unusable(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    match headers.get_all(RANGE).iter().collect::<Vec<_>>()[..] {
        [] => false,
        [one] => one.to_str().map_or(true, |v| Range::parse(v).is_err()),
        _ => true,
    }
}

/// `uri` without the presigned signature's query parameters.
fn unsigned(uri: &Uri) -> S3Result<Uri> {
    let Some(query) = uri.query() else {
        return Ok(uri.clone());
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !SIGNATURE_PARAMS.contains(&name)
        })
        .collect();
    let mut s = uri.path().to_string();
    if !kept.is_empty() {
        s.push('?');
        s.push_str(&kept.join("&"));
    }
    s.parse()
        .map_err(|_| s3_error!(InvalidURI, "the request URI could not be rebuilt"))
}

#[async_trait::async_trait]
impl S3Route for IgnoredRange {
    fn is_match(&self, method: &Method, _: &Uri, headers: &HeaderMap, _: &mut Extensions) -> bool {
        is_unusable(method, headers)
    }

    /// The plain service makes the access check, for the key s3s verified.
    async fn check_access(&self, _: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let S3Request {
            input,
            method,
            uri,
            mut headers,
            mut extensions,
            credentials,
            ..
        } = req;
        headers.remove(RANGE);
        headers.remove(hyper::header::AUTHORIZATION);
        if let Some(c) = credentials {
            extensions.insert(Verified(c.access_key));
        }
        let mut inner = hyper::Request::new(input);
        *inner.method_mut() = method;
        *inner.uri_mut() = unsigned(&uri)?;
        *inner.headers_mut() = headers;
        *inner.extensions_mut() = extensions;
        let resp = self
            .plain
            .call(inner)
            .await
            .map_err(|e| s3_error!(InternalError, "serving without the Range header: {e:?}"))?;
        let (parts, body) = resp.into_parts();
        let mut out = S3Response::new(body);
        out.status = Some(parts.status);
        out.headers = parts.headers;
        out.extensions = parts.extensions;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unusable(method: Method, values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(RANGE, v.parse().unwrap());
        }
        is_unusable(&method, &h)
    }

    #[test]
    fn invalid_ranges_on_get_and_head_are_matched() {
        for bad in [
            "bytes=5-1",
            "bytes=0-1,3-4",
            "bytes=abc",
            "items=0-1",
            "bytes=",
            "0-1",
        ] {
            assert!(unusable(Method::GET, &[bad]), "{bad}");
            assert!(unusable(Method::HEAD, &[bad]), "{bad}");
            assert!(!unusable(Method::PUT, &[bad]), "{bad}");
        }
        // Unsatisfiable but valid ranges are the operation's, for a 416.
        for good in [
            "bytes=0-1",
            "bytes=100-",
            "bytes=-5",
            "bytes=-0",
            "bytes=3-3",
        ] {
            assert!(!unusable(Method::GET, &[good]), "{good}");
        }
        assert!(!unusable(Method::GET, &[]));
        assert!(unusable(Method::GET, &["bytes=0-1", "bytes=2-3"]));
    }

    #[test]
    fn a_presigned_uri_loses_its_signature_only() {
        let uri: Uri = "/b/k?versionId=v1&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb\
                        &X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Brange\
                        &X-Amz-Security-Token=t&X-Amz-Signature=00"
            .parse()
            .unwrap();
        assert_eq!(
            unsigned(&uri).unwrap().to_string(),
            "/b/k?versionId=v1&X-Amz-Security-Token=t"
        );
        let v2: Uri = "/b/k?AWSAccessKeyId=a&Expires=1&Signature=x"
            .parse()
            .unwrap();
        assert_eq!(unsigned(&v2).unwrap().to_string(), "/b/k");
    }
}
