//! Bucket CORS: Put/Get/DeleteBucketCors, preflight `OPTIONS` answered before s3s
//! (browsers send preflights without credentials), and the CORS headers an actual
//! request's response carries when a rule allows its origin.
//!
//! As S3 does: the first rule whose origin, method and requested headers all match
//! wins; `*` in an origin or header pattern stands for any run of characters; an
//! origin allowed only by a bare `*` is answered `*` (without credentials); an
//! actual request is never refused for CORS, it just gets no CORS headers.

use crate::bucket_config::{from_xml, to_xml};
use crate::ctx::{self, Cybs3};
use crate::vhost::Domains;
use crate::xml::error_document as refusal;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, VARY};
use hyper::{Method, Response, StatusCode};
use s3s::dto::*;
use s3s::{s3_error, Body, S3Result};

pub(crate) const ATTR_CORS: &str = "cors";

/// S3's limit on rules per configuration.
const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];
/// What S3 names in `Vary` on every CORS answer.
const VARY_VALUE: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";
const ACRM: &str = "access-control-request-method";
const ACRH: &str = "access-control-request-headers";
const MALFORMED: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

pub(crate) async fn put(s: &Cybs3, input: PutBucketCorsInput) -> S3Result<PutBucketCorsOutput> {
    check_rules(&input.cors_configuration.cors_rules)?;
    let bytes = to_xml(&input.cors_configuration)?;
    s.set_bucket_attr(&input.bucket, ATTR_CORS, Some(bytes))
        .await?;
    Ok(PutBucketCorsOutput {})
}

pub(crate) async fn get(s: &Cybs3, input: GetBucketCorsInput) -> S3Result<GetBucketCorsOutput> {
    let Some(bytes) = s.bucket_attr(&input.bucket, ATTR_CORS).await? else {
        return Err(s3_error!(
            NoSuchCORSConfiguration,
            "The CORS configuration does not exist"
        ));
    };
    let cfg: CORSConfiguration = from_xml(&bytes)?;
    Ok(GetBucketCorsOutput {
        cors_rules: Some(cfg.cors_rules),
    })
}

pub(crate) async fn delete(
    s: &Cybs3,
    input: DeleteBucketCorsInput,
) -> S3Result<DeleteBucketCorsOutput> {
    s.set_bucket_attr(&input.bucket, ATTR_CORS, None).await?;
    Ok(DeleteBucketCorsOutput {})
}

/// PutBucketCors' checks, with S3's codes and messages.
fn check_rules(rules: &[CORSRule]) -> S3Result<()> {
    if rules.is_empty() || rules.len() > MAX_RULES {
        return Err(s3_error!(MalformedXML, "{MALFORMED}"));
    }
    for rule in rules {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err(s3_error!(MalformedXML, "{MALFORMED}"));
        }
        if let Some(m) = rule
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(s3_error!(
                InvalidRequest,
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            ));
        }
        if let Some(o) = rule
            .allowed_origins
            .iter()
            .find(|o| o.matches('*').count() > 1)
        {
            return Err(s3_error!(
                InvalidRequest,
                "AllowedOrigin \"{o}\" can not have more than one wildcard."
            ));
        }
        let headers = rule.allowed_headers.iter().flatten();
        if let Some(h) = headers.clone().find(|h| h.matches('*').count() > 1) {
            return Err(s3_error!(
                InvalidRequest,
                "AllowedHeader \"{h}\" can not have more than one wildcard."
            ));
        }
        if rule.max_age_seconds.is_some_and(|a| a < 0) {
            return Err(s3_error!(MalformedXML, "{MALFORMED}"));
        }
    }
    Ok(())
}

/// The rule that allows a request, and how to answer it.
struct Allowed<'a> {
    rule: &'a CORSRule,
    origin: &'a str,
    /// Allowed only through a bare `*` origin: answer `*`, without credentials.
    any: bool,
    /// The requested header names, lowercase, in the order asked.
    requested: Vec<String>,
}

impl Allowed<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        let origin = if self.any { "*" } else { self.origin };
        let mut h = vec![
            ("access-control-allow-origin", origin.to_string()),
            (
                "access-control-allow-methods",
                self.rule
                    .allowed_methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ];
        if !self.requested.is_empty() {
            h.push(("access-control-allow-headers", self.requested.join(", ")));
        }
        if let Some(expose) = self.rule.expose_headers.as_ref().filter(|e| !e.is_empty()) {
            h.push(("access-control-expose-headers", expose.join(", ")));
        }
        if let Some(age) = self.rule.max_age_seconds {
            h.push(("access-control-max-age", age.to_string()));
        }
        if !self.any {
            h.push(("access-control-allow-credentials", "true".to_string()));
        }
        h.push(("vary", VARY_VALUE.to_string()));
        h
    }
}

/// The first rule allowing `origin` to use `method` with the `requested` headers
/// (an `Access-Control-Request-Headers` value).
fn allowing<'a>(
    rules: &'a [CORSRule],
    origin: &'a str,
    method: &str,
    requested: Option<&str>,
) -> Option<Allowed<'a>> {
    let requested: Vec<String> = requested
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    rules.iter().find_map(|rule| {
        let named = rule
            .allowed_origins
            .iter()
            .any(|p| p != "*" && wildcard(p, origin, false));
        let any = !named && rule.allowed_origins.iter().any(|p| p == "*");
        let headers_ok = requested.iter().all(|h| {
            rule.allowed_headers
                .iter()
                .flatten()
                .any(|p| wildcard(p, h, true))
        });
        let ok = (named || any)
            && rule.allowed_methods.iter().any(|m| m.as_str() == method)
            && headers_ok;
        ok.then(|| Allowed {
            rule,
            origin,
            any,
            requested: requested.clone(),
        })
    })
}

/// `pattern` with at most one `*` (any run of characters, possibly empty) against `text`.
fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let Some((head, tail)) = pattern.split_once('*') else {
        return eq(pattern, text);
    };
    text.len() >= head.len() + tail.len()
        && text.get(..head.len()).is_some_and(|h| eq(h, head))
        && text
            .get(text.len() - tail.len()..)
            .is_some_and(|t| eq(t, tail))
}

/// A bucket's rules, as far as a CORS answer is concerned.
enum Rules {
    NoBucket,
    NotEnabled,
    Some(Vec<CORSRule>),
}

async fn rules_of(store: &engine::Store, bucket: Option<String>) -> Rules {
    let Some(bucket) = bucket else {
        return Rules::NoBucket;
    };
    let store = store.clone();
    let found = ctx::spawn(move || store.bucket_attr(&bucket, ATTR_CORS)).await;
    match found {
        Ok(Ok(Some(bytes))) => match from_xml::<CORSConfiguration>(&bytes) {
            Ok(cfg) => Rules::Some(cfg.cors_rules),
            Err(_) => Rules::NotEnabled,
        },
        Ok(Ok(None)) => Rules::NotEnabled,
        Ok(Err(engine::Error::NoSuchBucket(_))) => Rules::NoBucket,
        Ok(Err(e)) => {
            tracing::warn!("CORS rules could not be read: {e}");
            Rules::NotEnabled
        }
        Err(_) => Rules::NotEnabled,
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Answer a preflight `OPTIONS` (no S3 auth: browsers send none).
pub(crate) async fn preflight(
    store: &engine::Store,
    domains: &Domains,
    headers: &HeaderMap,
    path: &str,
) -> Response<Body> {
    let host = header(headers, "host");
    let (bucket, key) = domains.locate(host, path);
    let Some(origin) = header(headers, "origin") else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
            None,
        );
    };
    let method = header(headers, ACRM);
    let shown = Some((method.unwrap_or("OPTIONS"), "BUCKET"));
    let rules = match rules_of(store, bucket).await {
        Rules::NoBucket => {
            return refusal(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: Bucket not found",
                shown,
            )
        }
        Rules::NotEnabled => {
            return refusal(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: CORS is not enabled for this bucket.",
                shown,
            )
        }
        Rules::Some(rules) => rules,
    };
    let Some(method) = method else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Access-Control-Request-Method request header needed.",
            None,
        );
    };
    match allowing(&rules, origin, method, header(headers, ACRH)) {
        Some(allowed) => {
            let mut resp = Response::new(Body::empty());
            resp.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            add(resp.headers_mut(), &allowed);
            resp
        }
        None => {
            let kind = if key.is_some() { "OBJECT" } else { "BUCKET" };
            refusal(
                StatusCode::FORBIDDEN,
                "AccessForbidden",
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
                Some((method, kind)),
            )
        }
    }
}

/// What an actual (non-OPTIONS) request needs for its response's CORS headers,
/// taken before the request goes to s3s.
pub(crate) struct Actual {
    origin: String,
    /// A request may name the method and headers to check, as a preflight does.
    method: String,
    requested: Option<String>,
    bucket: Option<String>,
}

impl Actual {
    /// `None` when the request has no `Origin` (not a CORS request).
    pub(crate) fn of(
        domains: &Domains,
        method: &Method,
        headers: &HeaderMap,
        path: &str,
    ) -> Option<Actual> {
        let origin = header(headers, "origin")?.to_string();
        let (bucket, _) = domains.locate(header(headers, "host"), path);
        Some(Actual {
            origin,
            method: header(headers, ACRM).unwrap_or(method.as_str()).to_string(),
            requested: header(headers, ACRH).map(str::to_string),
            bucket,
        })
    }

    /// Add the CORS headers when a rule allows this origin and method, whatever the status.
    pub(crate) async fn apply(self, store: &engine::Store, resp: &mut Response<Body>) {
        let Rules::Some(rules) = rules_of(store, self.bucket.clone()).await else {
            return;
        };
        if let Some(allowed) = allowing(
            &rules,
            &self.origin,
            &self.method,
            self.requested.as_deref(),
        ) {
            add(resp.headers_mut(), &allowed);
        }
    }
}

fn add(h: &mut HeaderMap, allowed: &Allowed) {
    for (name, value) in allowed.headers() {
        // Values come from the stored rules and request headers; skip any not valid in a header.
        if let Ok(v) = HeaderValue::from_str(&value) {
            let name = HeaderName::from_static(name);
            if name == VARY {
                h.append(name, v);
            } else {
                h.insert(name, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::CONTENT_TYPE;

    fn rule(methods: &[&str], origins: &[&str], headers: &[&str]) -> CORSRule {
        CORSRule {
            allowed_methods: methods.iter().map(|m| m.to_string()).collect(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_headers: (!headers.is_empty())
                .then(|| headers.iter().map(|h| h.to_string()).collect()),
            ..Default::default()
        }
    }

    fn allowed_origin(
        rules: &[CORSRule],
        origin: &str,
        method: &str,
        req: Option<&str>,
    ) -> Option<String> {
        allowing(rules, origin, method, req).map(|a| a.headers()[0].1.clone())
    }

    #[test]
    fn origins_match_exactly_or_by_one_wildcard() {
        let rules = vec![
            rule(&["GET"], &["*suffix"], &[]),
            rule(&["GET"], &["start*end"], &[]),
            rule(&["GET"], &["prefix*"], &[]),
            rule(&["PUT"], &["*.put"], &[]),
        ];
        for ok in [
            "foo.suffix",
            "startend",
            "start1end",
            "prefix",
            "prefix.suffix",
        ] {
            assert_eq!(
                allowed_origin(&rules, ok, "GET", None).as_deref(),
                Some(ok),
                "{ok}"
            );
        }
        for no in [
            "foo.bar",
            "foo.suffix.get",
            "0start12end",
            "bla.prefix",
            "foo.put",
        ] {
            assert_eq!(allowed_origin(&rules, no, "GET", None), None, "{no}");
        }
        assert_eq!(
            allowed_origin(&rules, "foo.put", "PUT", None).as_deref(),
            Some("foo.put")
        );
        assert_eq!(allowed_origin(&rules, "foo.suffix", "PUT", None), None);
    }

    #[test]
    fn a_bare_star_answers_star_without_credentials() {
        let rules = vec![rule(&["GET", "HEAD"], &["*"], &[])];
        let a = allowing(&rules, "http://x.example", "GET", None).unwrap();
        let h = a.headers();
        assert_eq!(h[0], ("access-control-allow-origin", "*".to_string()));
        assert_eq!(
            h[1],
            ("access-control-allow-methods", "GET, HEAD".to_string())
        );
        assert!(!h
            .iter()
            .any(|(n, _)| *n == "access-control-allow-credentials"));
        assert_eq!(h.last().unwrap().1, VARY_VALUE);

        let rules = vec![CORSRule {
            max_age_seconds: Some(3000),
            expose_headers: Some(vec!["ETag".into(), "x-amz-request-id".into()]),
            ..rule(&["PUT"], &["https://app.example"], &["*"])
        }];
        let a = allowing(
            &rules,
            "https://app.example",
            "PUT",
            Some("Content-Type, X-Amz-Date"),
        )
        .unwrap();
        let h: std::collections::HashMap<_, _> = a.headers().into_iter().collect();
        assert_eq!(h["access-control-allow-origin"], "https://app.example");
        assert_eq!(
            h["access-control-allow-headers"],
            "content-type, x-amz-date"
        );
        assert_eq!(h["access-control-expose-headers"], "ETag, x-amz-request-id");
        assert_eq!(h["access-control-max-age"], "3000");
        assert_eq!(h["access-control-allow-credentials"], "true");
    }

    #[test]
    fn requested_headers_must_all_be_allowed_case_insensitively() {
        let rules = vec![rule(&["PUT"], &["*"], &["Content-Type", "x-amz-meta-*"])];
        assert!(allowing(&rules, "o", "PUT", Some("content-type,X-AMZ-META-foo")).is_some());
        assert!(allowing(&rules, "o", "PUT", Some("content-type, authorization")).is_none());
        // No AllowedHeader: no requested header is allowed.
        let rules = vec![rule(&["GET"], &["*"], &[])];
        assert!(allowing(&rules, "o", "GET", Some("x-amz-meta-a")).is_none());
        assert!(allowing(&rules, "o", "GET", Some(" , ")).is_some());
    }

    #[test]
    fn configurations_are_checked_as_s3_does() {
        let code = |rules: Vec<CORSRule>| {
            check_rules(&rules)
                .err()
                .map(|e| e.code().as_str().to_string())
        };
        assert_eq!(code(vec![rule(&["GET"], &["*"], &["*"])]), None);
        assert_eq!(code(vec![]).as_deref(), Some("MalformedXML"));
        assert_eq!(
            code(vec![rule(&[], &["*"], &[])]).as_deref(),
            Some("MalformedXML")
        );
        assert_eq!(
            code(vec![rule(&["GET"], &[], &[])]).as_deref(),
            Some("MalformedXML")
        );
        for bad in ["OPTIONS", "get", "MYMETHOD", ""] {
            assert_eq!(
                code(vec![rule(&[bad], &["*"], &[])]).as_deref(),
                Some("InvalidRequest")
            );
        }
        assert_eq!(
            code(vec![rule(&["GET"], &["*example*.com"], &[])]).as_deref(),
            Some("InvalidRequest")
        );
        assert_eq!(
            code(vec![rule(&["GET"], &["*"], &["x-*-*"])]).as_deref(),
            Some("InvalidRequest")
        );
        let many = (0..101).map(|_| rule(&["GET"], &["*"], &[])).collect();
        assert_eq!(code(many).as_deref(), Some("MalformedXML"));
    }

    #[test]
    fn refusals_are_s3_error_documents() {
        let r = refusal(
            StatusCode::FORBIDDEN,
            "AccessForbidden",
            "m",
            Some(("P<T", "OBJECT")),
        );
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/xml");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn preflights_follow_s3s_order_of_checks() {
        let dir = tempfile::tempdir().unwrap();
        let store = engine::Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        store.create_bucket("bkt").unwrap();
        let d = Domains::default();
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        let status = |r: Response<Body>| r.status().as_u16();
        assert_eq!(status(preflight(&store, &d, &h(&[]), "/bkt/k").await), 400);
        let o = [("origin", "https://a.example"), (ACRM, "PUT")];
        assert_eq!(status(preflight(&store, &d, &h(&o), "/nope/k").await), 403);
        assert_eq!(status(preflight(&store, &d, &h(&o), "/bkt/k").await), 403);
        let cfg = CORSConfiguration {
            cors_rules: vec![rule(&["PUT"], &["https://*.example"], &[])],
        };
        store
            .set_bucket_attr("bkt", ATTR_CORS, Some(to_xml(&cfg).unwrap()))
            .unwrap();
        let ok = preflight(&store, &d, &h(&o), "/bkt/k").await;
        assert_eq!(ok.status(), 200);
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        assert_eq!(
            status(preflight(&store, &d, &h(&o[..1]), "/bkt/k").await),
            400
        );
        let get = [("origin", "https://a.example"), (ACRM, "GET")];
        assert_eq!(status(preflight(&store, &d, &h(&get), "/bkt/k").await), 403);

        let actual = Actual::of(&d, &Method::PUT, &h(&o[..1]), "/bkt/k").unwrap();
        let mut resp = Response::new(Body::empty());
        actual.apply(&store, &mut resp).await;
        assert_eq!(
            resp.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        let actual = Actual::of(&d, &Method::GET, &h(&o[..1]), "/bkt/k").unwrap();
        let mut resp = Response::new(Body::empty());
        actual.apply(&store, &mut resp).await;
        assert!(resp.headers().get("access-control-allow-origin").is_none());
        assert!(Actual::of(&d, &Method::GET, &h(&[]), "/bkt/k").is_none());
    }
}
