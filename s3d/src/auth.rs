//! Who signed a request (the secret s3s verifies against) and what they may do.
//!
//! Callers: the root credentials (everything, except what a bucket policy explicitly
//! denies), per-bucket keys (their bucket's objects and settings), users and sessions
//! (their IAM policies together with the bucket's policy), and anonymous requests
//! (only what a bucket policy grants to everyone). Every decision is a tracing event
//! under the `cybs3::auth` target with who, what, where from and the answer: denials
//! at info (in the server log by default), allows at debug.

use crate::iam::Iam;
use crate::keys::{now_unix, Owner, Session};
use crate::policy::{self, Context, Decision, Policy, Principal, Request};
use crate::PeerAddr;
use hyper::{HeaderMap, Uri};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3Request, S3Result};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Clone)]
pub(crate) struct Identities {
    root_access_key: String,
    root_secret_key: String,
    pub iam: Iam,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies); nobody else's is believed.
    trusted_proxies: Arc<Vec<IpAddr>>,
}

/// An authenticated (or anonymous) caller.
pub(crate) enum Caller {
    Root,
    Bucket(String),
    /// A local user (own key or an AssumeRole session) or a directory login.
    User {
        name: String,
        policies: Vec<Arc<Policy>>,
        session: bool,
    },
    Anonymous,
}

impl Caller {
    fn name(&self) -> &str {
        match self {
            Caller::Root => "root",
            Caller::Bucket(b) => b,
            Caller::User { name, .. } => name,
            Caller::Anonymous => "anonymous",
        }
    }

    fn principal(&self) -> Principal<'_> {
        match self {
            Caller::Root => Principal::Root,
            Caller::User { name, .. } => Principal::User(name),
            Caller::Bucket(_) | Caller::Anonymous => Principal::Anonymous,
        }
    }
}

/// What a request asks for, in IAM terms.
struct Ask<'a> {
    op: &'a str,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    query: Vec<(String, String)>,
    source: IpAddr,
}

impl Identities {
    pub(crate) fn new(
        root_access_key: &str,
        root_secret_key: &str,
        iam: Iam,
        trusted_proxies: Vec<IpAddr>,
    ) -> Self {
        Identities {
            root_access_key: root_access_key.to_string(),
            root_secret_key: root_secret_key.to_string(),
            iam,
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    /// Who signed a request whose signature s3s has verified.
    pub(crate) fn caller(
        &self,
        credentials: Option<&Credentials>,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> S3Result<Caller> {
        self.resolve(credentials, headers, uri).inspect_err(|e| {
            tracing::info!(
                target: "cybs3::auth",
                caller = credentials.map_or("anonymous", |c| &c.access_key),
                decision = "deny",
                why = ?e.code(),
            );
        })
    }

    fn resolve(
        &self,
        credentials: Option<&Credentials>,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> S3Result<Caller> {
        let Some(c) = credentials else {
            return Ok(Caller::Anonymous);
        };
        if c.access_key == self.root_access_key {
            return Ok(Caller::Root);
        }
        let owner = match self.iam.keyring().lookup(&c.access_key) {
            Ok(Some((_, owner))) => owner,
            Ok(None) => return Err(unknown_key()),
            Err(e) => return Err(store_failed(e)),
        };
        match owner {
            Owner::Bucket(b) => Ok(Caller::Bucket(b)),
            Owner::User(name) => self.user(name, false),
            Owner::Session(s) => {
                check_token(&s, headers, uri)?;
                match s.local_user() {
                    Some(u) => self.user(u.to_string(), true),
                    None => Ok(Caller::User {
                        name: s.principal.trim_start_matches("ldap:").to_string(),
                        policies: self.iam.policies(&s.policies).map_err(store_failed)?,
                        session: true,
                    }),
                }
            }
        }
    }

    fn user(&self, name: String, session: bool) -> S3Result<Caller> {
        match self.iam.user_policies(&name).map_err(store_failed)? {
            Some(policies) => Ok(Caller::User {
                name,
                policies,
                session,
            }),
            // Removed a moment ago: its keys are going or gone.
            None => Err(unknown_key()),
        }
    }

    /// The client's address: the TCP peer, or what a trusted proxy says it forwarded.
    fn source(&self, peer: Option<&PeerAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.ip());
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        // The nearest hop not itself a trusted proxy is the client.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        forwarded
            .into_iter()
            .rev()
            .find(|a| !self.trusted_proxies.contains(a))
            .unwrap_or(peer)
    }

    fn authorize(&self, caller: &Caller, ask: &Ask) -> S3Result<()> {
        let allowed = match caller {
            Caller::Bucket(own) => bucket_key_may(own, ask),
            _ => self.evaluate(caller, ask)?,
        };
        // Allows are the normal case and a line per request costs a quarter of the small
        // HEAD rate, so they are debug (`RUST_LOG=cybs3::auth=debug`); denials are info.
        // (Fields are evaluated only when the level is on.)
        let action = || policy::action_for(ask.op, has(&ask.query, "versionId"));
        if allowed {
            tracing::debug!(target: "cybs3::auth", caller = caller.name(), action = action(), resource = %resource(ask.bucket, ask.key), source = %ask.source, decision = "allow");
            Ok(())
        } else {
            tracing::info!(target: "cybs3::auth", caller = caller.name(), action = action(), resource = %resource(ask.bucket, ask.key), source = %ask.source, decision = "deny");
            Err(denied())
        }
    }

    /// IAM evaluation: explicit deny anywhere wins, then any allow; root is allowed
    /// unless the bucket policy denies it (but may always manage that policy).
    fn evaluate(&self, caller: &Caller, ask: &Ask) -> S3Result<bool> {
        let bucket_policy = match ask.bucket {
            Some(b) => self.iam.bucket_policy(b).map_err(store_failed)?,
            None => None,
        };
        if matches!(caller, Caller::Root) && bucket_policy.is_none() {
            return Ok(true);
        }
        let action = policy::action_for(ask.op, has(&ask.query, "versionId"));
        let resource = resource(ask.bucket, ask.key);
        let context = self.context(caller, ask);
        let request = Request {
            action,
            resource: &resource,
            principal: caller.principal(),
            context: &context,
        };
        if let Caller::Root = caller {
            let manages_policy = ask.op.ends_with("BucketPolicy");
            return Ok(manages_policy
                || bucket_policy.is_none_or(|p| p.evaluate(&request) != Decision::Deny));
        }
        let identity: &[Arc<Policy>] = match caller {
            Caller::User { policies, .. } => policies,
            _ => &[],
        };
        let all = identity.iter().chain(bucket_policy.iter()).map(|p| &**p);
        Ok(policy::evaluate_all(all, &request) == Decision::Allow)
    }

    fn context(&self, caller: &Caller, ask: &Ask) -> Context {
        let mut c = Context::default();
        c.set("aws:SourceIp", ask.source.to_string());
        c.set("aws:SecureTransport", "false");
        let now = now_unix();
        c.set("aws:EpochTime", now.to_string());
        c.set("aws:CurrentTime", iso8601(now));
        let kind = match caller {
            Caller::Root => "Account",
            Caller::User { session: true, .. } => "AssumedRole",
            Caller::User { .. } => "User",
            Caller::Bucket(_) | Caller::Anonymous => "Anonymous",
        };
        c.set("aws:PrincipalType", kind);
        if let Caller::User { name, .. } = caller {
            c.set("aws:username", name.clone());
            c.set("aws:userid", name.clone());
        }
        for (k, v) in &ask.query {
            let key = match k.as_str() {
                "prefix" => "s3:prefix",
                "delimiter" => "s3:delimiter",
                "max-keys" => "s3:max-keys",
                "versionId" => "s3:VersionId",
                _ => continue,
            };
            c.set(key, v.clone());
        }
        c
    }

    fn check_path(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let caller = self.caller(cx.credentials(), cx.headers(), cx.uri())?;
        let peer = cx.extensions_mut().get::<PeerAddr>().copied();
        let source = self.source(peer.as_ref(), cx.headers());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(&**bucket), None),
            S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        let ask = Ask {
            op: cx.s3_op().name(),
            bucket,
            key,
            query: query_pairs(cx.uri()),
            source,
        };
        self.authorize(&caller, &ask)
    }

    /// Copying also reads the source: the caller needs GetObject on it.
    fn check_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(denied());
        };
        let caller = self.caller(req.credentials.as_ref(), &req.headers, &req.uri)?;
        let mut query = Vec::new();
        if let Some(v) = version_id {
            query.push(("versionId".to_string(), v.to_string()));
        }
        let ask = Ask {
            op: "GetObject",
            bucket: Some(bucket),
            key: Some(key),
            query,
            source: self.source(req.extensions.get::<PeerAddr>(), &req.headers),
        };
        self.authorize(&caller, &ask)
    }
}

/// A bucket key reaches its own bucket's objects and settings, and lists only it.
fn bucket_key_may(own: &str, ask: &Ask) -> bool {
    match (ask.bucket, ask.key) {
        (None, _) => ask.op == "ListBuckets",
        (Some(b), None) => b == own && ask.op != "CreateBucket" && ask.op != "DeleteBucket",
        (Some(b), Some(_)) => b == own,
    }
}

fn resource(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (None, _) => "*".to_string(),
        (Some(b), None) => format!("arn:aws:s3:::{b}"),
        (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
    }
}

/// Sessions must present their token, in a header or (presigned) the query.
fn check_token(s: &Session, headers: &HeaderMap, uri: &Uri) -> S3Result<()> {
    if s.expired() {
        return Err(s3_error!(ExpiredToken, "The provided token has expired."));
    }
    let token = headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            query_pairs(uri)
                .into_iter()
                .find(|(k, _)| k == "X-Amz-Security-Token")
                .map(|(_, v)| v)
        });
    match token {
        Some(t) if token_sha256(&t) == s.token_sha256 => Ok(()),
        Some(_) => Err(s3_error!(
            InvalidToken,
            "The provided token is malformed or otherwise invalid."
        )),
        None => Err(s3_error!(
            InvalidToken,
            "These credentials are temporary: send their session token (x-amz-security-token)."
        )),
    }
}

pub(crate) fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn has(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(k, _)| k == name)
}

/// The decoded query parameters of a request URI.
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 2;
            }
            (b'+', _, _) => out.push(b' '),
            (c, _, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `2026-11-22T03:04:05Z` for a Unix time.
pub(crate) fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn denied() -> S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

fn unknown_key() -> S3Error {
    // What AWS answers for a key it does not know (s3s' SimpleAuth says NotSignedUp).
    s3_error!(
        InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records."
    )
}

fn store_failed(e: impl std::fmt::Display) -> S3Error {
    tracing::error!("identity lookup failed: {e}");
    crate::errors::internal("We encountered an internal error. Please try again.")
}

#[async_trait::async_trait]
impl S3Auth for Identities {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.root_access_key {
            return Ok(SecretKey::from(self.root_secret_key.as_str()));
        }
        let found = match self.iam.keyring().lookup(access_key) {
            Ok(Some((_, Owner::Session(s)))) if s.expired() => {
                Err(s3_error!(ExpiredToken, "The provided token has expired."))
            }
            Ok(Some((secret, _))) => Ok(SecretKey::from(secret)),
            Ok(None) => Err(unknown_key()),
            Err(e) => Err(store_failed(e)),
        };
        found.inspect_err(|e| {
            tracing::info!(target: "cybs3::auth", caller = access_key, decision = "deny", why = ?e.code());
        })
    }
}

#[async_trait::async_trait]
impl S3Access for Identities {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        self.check_path(cx)
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_of_known_times() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_316_645), "2026-11-22T03:04:05Z");
    }

    #[test]
    fn query_is_decoded() {
        let uri: Uri = "/b?prefix=a%2Fb+c&list-type=2&delimiter=%2F&x"
            .parse()
            .unwrap();
        let q = query_pairs(&uri);
        assert_eq!(q[0], ("prefix".into(), "a/b c".into()));
        assert_eq!(q[2], ("delimiter".into(), "/".into()));
        assert_eq!(q[3], ("x".into(), "".into()));
    }
}
