//! SigV2 (`Authorization: AWS KEY:SIGNATURE`, and presigned `Signature` URLs), checked by
//! s3s: what it needs from us first. Clients sign a path-style request for a bucket
//! (`/bucket`) over `/bucket/`, the resource as AWS canonicalizes it, while s3s signs the
//! path as sent; so such a path gets its slash before s3s sees it. s3s routes `/bucket/`
//! to the bucket as it does `/bucket`.

use crate::vhost::Domains;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::http::uri::{PathAndQuery, Uri};
use hyper::Request;

/// Signed with SigV2: in the header, or as a presigned URL (`Signature`, not SigV4's
/// `X-Amz-Signature`).
fn is_v2<B>(req: &Request<B>) -> bool {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS "));
    let query = req
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "Signature"));
    header || query
}

/// `/bucket` → `/bucket/` for a SigV2 path-style request to a bucket; anything else is
/// left as it is.
pub(crate) fn bucket_path_with_slash<B>(req: &mut Request<B>, domains: &Domains) {
    let path = req.uri().path();
    let one_segment = path.len() > 1 && !path[1..].contains('/');
    if !one_segment || !is_v2(req) {
        return;
    }
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| domains.bucket_of(h).is_some()) {
        return; // virtual-hosted: the segment is a key
    }
    let with_slash = match req.uri().query() {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    let mut parts = req.uri().clone().into_parts();
    let Ok(pq) = PathAndQuery::try_from(with_slash) else {
        return;
    };
    parts.path_and_query = Some(pq);
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_after(uri: &str, auth: Option<&str>, host: &str) -> String {
        let mut b = Request::builder().uri(uri).header(HOST, host);
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        let mut req = b.body(()).unwrap();
        let domains = Domains::new(&["s3.test".to_string()]).unwrap();
        bucket_path_with_slash(&mut req, &domains);
        req.uri().to_string()
    }

    #[test]
    fn only_sigv2_path_style_bucket_requests_get_the_slash() {
        let v2 = Some("AWS AK:c2ln");
        assert_eq!(path_after("/bkt", v2, "localhost:9000"), "/bkt/");
        assert_eq!(path_after("/bkt?acl", v2, "localhost:9000"), "/bkt/?acl");
        assert_eq!(
            path_after("/bkt?AWSAccessKeyId=AK&Signature=x&Expires=1", None, "h"),
            "/bkt/?AWSAccessKeyId=AK&Signature=x&Expires=1"
        );
        assert_eq!(path_after("/bkt/", v2, "h"), "/bkt/");
        assert_eq!(path_after("/bkt/key", v2, "h"), "/bkt/key");
        assert_eq!(path_after("/", v2, "h"), "/");
        assert_eq!(
            path_after("/key", v2, "bkt.s3.test"),
            "/key",
            "virtual-hosted"
        );
        let v4 = Some("AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/s3/aws4_request");
        assert_eq!(path_after("/bkt", v4, "h"), "/bkt");
        assert_eq!(
            path_after("/bkt?X-Amz-Signature=x", None, "h"),
            "/bkt?X-Amz-Signature=x"
        );
        assert_eq!(path_after("/bkt", None, "h"), "/bkt");
    }
}
