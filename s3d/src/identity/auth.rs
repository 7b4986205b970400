//! Who signed a request (the secret s3s verifies against) and what they may do.
//!
//! Callers: the root credentials (everything, except what a bucket policy explicitly
//! denies), per-bucket keys (their bucket's objects and settings), users and sessions
//! (their IAM policies together with the bucket's policy, then the ACLs), and anonymous
//! requests (only what a bucket policy or an ACL grants to everyone). Every decision is
//! a tracing event under the `cybs3::auth` target with who, what, where from and the
//! answer: denials at info (in the server log by default), allows at debug.
//!
//! (Over 800 lines: the caller's resolution and each kind of caller's decision read the
//! same request context; the SigV4 key lookup and the per-kind decisions are the seams to
//! split along, left for the performance issue, which changes how the caller is resolved.)

use crate::ctx::{self, PeerAddr, SecureTransport};
use crate::errors;
use crate::identity::decide::{has, request_keys, resource};
use crate::identity::grants::BucketAccess;
use crate::identity::iam::Iam;
use crate::identity::keys::{now_unix, Owner, Session};
use crate::identity::owners;
use crate::identity::policy::{self, Context, Policy, Principal};
use crate::trail::{self, Trail};
use hyper::http::Extensions;
use hyper::{HeaderMap, Uri};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{
    CopyObjectInput, CopySource, DeleteObjectInput, DeleteObjectsInput, PutObjectLegalHoldInput,
    PutObjectRetentionInput, PutObjectTaggingInput, UploadPartCopyInput,
};
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Result};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// An access key's record as the keyring holds it: the secret and who owns it.
type KeyRecord = Option<(String, Owner)>;

tokio::task_local! {
    /// Per request (set by the server around each S3 call): the one lookup of the
    /// signing access key. s3s asks for the secret (`S3Auth::get_secret_key`) with
    /// no request at hand, and the access check that follows needs the key's owner;
    /// both read it from here, so LMDB is asked once.
    static KEY: RefCell<Option<(String, KeyRecord)>>;
}

/// Serve one request with its own access-key lookup.
pub(crate) async fn request_scope<F: Future>(f: F) -> F::Output {
    KEY.scope(RefCell::new(None), f).await
}

#[derive(Clone)]
pub(crate) struct Identities {
    root_access_key: String,
    root_secret_key: String,
    pub iam: Iam,
    /// Peers whose `X-Forwarded-For` names the client (reverse proxies); nobody else's is believed.
    /// The proxies believed for `aws:SourceIp`, as the server's settings say now.
    live: crate::Live,
}

/// An access key whose signature s3s has already verified, on a request served again
/// without its signature ([`crate::ignored_range`]). Only the server puts it in a
/// request's extensions; nothing a client sends becomes one.
#[derive(Clone)]
pub(crate) struct Verified(pub String);

/// An authenticated (or anonymous) caller. The access check resolves it once per
/// request and leaves it in the request's extensions for the handlers.
#[derive(Clone)]
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
    /// The caller the access check resolved for this request.
    pub(crate) fn of(extensions: &Extensions) -> S3Result<&Caller> {
        extensions.get::<Caller>().ok_or_else(|| {
            tracing::error!("request reached its handler without a resolved caller");
            errors::internal("We encountered an internal error. Please try again.")
        })
    }

    fn name(&self) -> &str {
        match self {
            Caller::Root => "root",
            Caller::Bucket(b) => b,
            Caller::User { name, .. } => name,
            Caller::Anonymous => "anonymous",
        }
    }

    /// Who the caller is in the audit log (a bucket key is `bucket:NAME`, apart from users).
    fn audited(&self) -> Arc<str> {
        match self {
            Caller::Bucket(b) => format!("bucket:{b}").into(),
            other => other.name().into(),
        }
    }

    /// Put the caller into the request's audit record.
    fn record(&self, r: &mut trail::Record) {
        r.user = Some(self.audited());
        r.session = matches!(self, Caller::User { session: true, .. });
    }

    pub(super) fn principal(&self) -> Principal<'_> {
        match self {
            Caller::Root => Principal::Root,
            Caller::User { name, .. } => Principal::User(name),
            Caller::Bucket(_) | Caller::Anonymous => Principal::Anonymous,
        }
    }
}

/// What a request asks for, in IAM terms.
#[derive(Clone)]
pub(super) struct Ask {
    pub op: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub source: IpAddr,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure: bool,
    /// The request's own condition keys (headers, body); [`Identities::context`]
    /// adds the global ones.
    pub keys: Context,
    /// The audit record the decision goes into (`None`: a side question, such as
    /// whether a bypass of retention is allowed, which decides nothing by itself).
    pub trail: Option<Trail>,
}

impl Ask {
    /// The version the request names (`versionId`), if any.
    pub(super) fn version(&self) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == "versionId")
            .map(|(_, v)| v.as_str())
    }
}

/// An access check left to the operation's hook: a policy tests condition keys
/// that only the parsed body holds (`policy::is_body_key`).
#[derive(Clone)]
struct Deferred(Ask);

/// Who signed, as far as the signature and the token tell; the rest of the caller
/// (its policies) is read on a blocking thread.
pub(super) enum Signer {
    Anonymous,
    Root,
    Key(Owner),
}

impl Identities {
    pub(crate) fn new(
        root_access_key: &str,
        root_secret_key: &str,
        iam: Iam,
        live: crate::Live,
    ) -> Self {
        Identities {
            root_access_key: root_access_key.to_string(),
            root_secret_key: root_secret_key.to_string(),
            iam,
            live,
        }
    }

    /// The signing key's record, looked up once per request on a blocking thread.
    pub(crate) async fn lookup_key(&self, access_key: &str) -> S3Result<KeyRecord> {
        let cached = KEY.try_with(|k| match &*k.borrow() {
            Some((key, record)) if key == access_key => Some(record.clone()),
            _ => None,
        });
        if let Ok(Some(record)) = cached {
            return Ok(record);
        }
        let (iam, key) = (self.iam.clone(), access_key.to_string());
        let record = ctx::spawn(move || iam.keyring().lookup(&key))
            .await?
            .map_err(store_failed)?;
        let _ = KEY.try_with(|k| *k.borrow_mut() = Some((access_key.to_string(), record.clone())));
        Ok(record)
    }

    /// Who signed a request whose signature s3s has verified.
    pub(super) async fn signer(
        &self,
        access_key: Option<&str>,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> S3Result<Signer> {
        let Some(access_key) = access_key else {
            return Ok(Signer::Anonymous);
        };
        if access_key == self.root_access_key {
            return Ok(Signer::Root);
        }
        let Some((_, owner)) = self.lookup_key(access_key).await? else {
            return Err(unknown_key());
        };
        if let Owner::Session(s) = &owner {
            check_token(s, headers, uri)?;
        }
        Ok(Signer::Key(owner))
    }

    /// The caller behind a signer, with its policies (reads the IAM store).
    fn caller(&self, signer: Signer) -> S3Result<Caller> {
        match signer {
            Signer::Anonymous => Ok(Caller::Anonymous),
            Signer::Root => Ok(Caller::Root),
            Signer::Key(Owner::Bucket(b)) => Ok(Caller::Bucket(b)),
            Signer::Key(Owner::User(name)) => self.user(name, false),
            Signer::Key(Owner::Session(s)) => match s.directory_user() {
                None => self.user(s.principal, true),
                Some(u) => Ok(Caller::User {
                    name: u.to_string(),
                    policies: self.iam.policies(&s.policies).map_err(store_failed)?,
                    session: true,
                }),
            },
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
        let trusted = self.live.trusted_proxies();
        if !trusted.contains(&peer) {
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
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer)
    }

    fn authorize(&self, caller: &Caller, ask: &Ask) -> S3Result<()> {
        let verdict = self.may(caller, ask)?;
        let allowed = verdict.allowed;
        if let Some(t) = &ask.trail {
            let mut r = t.lock();
            caller.record(&mut r);
            r.decided(allowed, verdict.by);
        }
        // Allows are the normal case and a line per request costs a quarter of the small
        // HEAD rate, so they are debug (`RUST_LOG=cybs3::auth=debug`); denials are info.
        // (Fields are evaluated only when the level is on.)
        let action = || policy::action_for(&ask.op, has(&ask.query, "versionId"));
        if allowed {
            tracing::debug!(target: "cybs3::auth", caller = caller.name(), action = action(), resource = %resource(ask.bucket.as_deref(), ask.key.as_deref()), source = %ask.source, decision = "allow");
            Ok(())
        } else {
            tracing::info!(target: "cybs3::auth", caller = caller.name(), action = action(), resource = %resource(ask.bucket.as_deref(), ask.key.as_deref()), source = %ask.source, decision = "deny");
            Err(denied())
        }
    }

    /// Decides a check [`Identities::check_path`] deferred, once `add` has set the
    /// body's keys. Requests whose check was not deferred pass through.
    async fn check_deferred<T>(
        &self,
        req: &mut S3Request<T>,
        add: impl FnOnce(&T, &mut Context),
    ) -> S3Result<()> {
        let Some(Deferred(mut ask)) = req.extensions.remove::<Deferred>() else {
            return Ok(());
        };
        add(&req.input, &mut ask.keys);
        let caller = Caller::of(&req.extensions)?.clone();
        let this = self.clone();
        ctx::spawn(move || this.authorize(&caller, &ask)).await?
    }

    /// Resolve the caller (once per request), decide, and leave the caller in the
    /// request's extensions for the handlers. The IAM reads run on a blocking thread.
    async fn check_path(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let who = match cx.credentials() {
            Some(c) => Some(c.access_key.clone()),
            None => cx.extensions_mut().get::<Verified>().map(|v| v.0.clone()),
        };
        trail::update(|r| r.access_key.clone_from(&who));
        let signer = self
            .signer(who.as_deref(), cx.headers(), cx.uri())
            .await
            .inspect_err(|e| log_refused(who.as_deref(), e))?;
        let peer = cx.extensions_mut().get::<PeerAddr>().copied();
        let source = self.source(peer.as_ref(), cx.headers());
        let secure = secure(cx.extensions_mut());
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let op = cx.s3_op().name();
        let (source_ip, api) = (source.to_string(), op.to_string());
        let ask = Ask {
            op: op.to_string(),
            bucket,
            key,
            query: query_pairs(cx.uri()),
            source,
            secure,
            keys: request_keys(op, cx.headers()),
            trail: trail::handle(),
        };
        trail::update(|r| {
            r.source = Some(source);
            r.action = Some(op.into());
            r.bucket.clone_from(&ask.bucket);
            r.key.clone_from(&ask.key);
            r.version = ask.version().map(str::to_string);
        });
        // A GET or HEAD may find its key missing, and ListBuckets shows the buckets the
        // caller may list: the listing question is kept for then.
        let reads = matches!(ask.op.as_str(), "GetObject" | "HeadObject" | "ListBuckets");
        let list = reads.then(|| Ask {
            op: "ListObjects".to_string(),
            key: None,
            query: Vec::new(),
            keys: Context::default(),
            ..ask.clone()
        });
        let this = self.clone();
        let (caller, deferred) = ctx::spawn(move || {
            let caller = this
                .caller(signer)
                .inspect_err(|e| log_refused(who.as_deref(), e))?;
            // A form's key and fields are known to its handler only ([`check_post`]).
            if ask.op == "PostObject" || this.waits_for_body(&caller, &ask)? {
                return Ok((caller, Some(Deferred(ask))));
            }
            this.authorize(&caller, &ask).map(|()| (caller, None))
        })
        .await??;
        trail::update(|r| caller.record(r));
        match deferred {
            Some(Deferred(ask)) if ask.op == "PostObject" => {
                cx.extensions_mut().insert(PostCheck {
                    identities: self.clone(),
                    caller: caller.clone(),
                    ask,
                });
            }
            Some(deferred) => {
                cx.extensions_mut().insert(deferred);
            }
            None => {}
        }
        if let Some(ask) = list {
            cx.extensions_mut().insert(ListCheck {
                identities: self.clone(),
                caller: caller.clone(),
                ask,
            });
        }
        ctx::set_origin(engine::Origin {
            principal: caller.name().to_string(),
            source_ip,
            request_id: crate::trail::current()
                .map(|t| t.request_id.to_string())
                .unwrap_or_default(),
            api,
        });
        cx.extensions_mut().insert(caller);
        Ok(())
    }

    /// Whether the caller may bypass GOVERNANCE retention (`s3:BypassGovernanceRetention`).
    /// A request that asks without the permission is served as if it had not asked, so
    /// object lock in the engine refuses what the bypass would have allowed.
    async fn may_bypass<T>(
        &self,
        req: &S3Request<T>,
        bucket: String,
        key: Option<String>,
    ) -> S3Result<bool> {
        self.may_also(req, "BypassGovernanceRetention", bucket, key)
            .await
    }

    /// A request that writes a replica (`replication::replica`) needs `op`'s permission
    /// (`ReplicateObject`, `ReplicateDelete`): refused without it, since written as a
    /// plain version it would be replicated back.
    async fn check_replica<T>(
        &self,
        req: &S3Request<T>,
        op: &str,
        bucket: String,
        key: String,
    ) -> S3Result<()> {
        let Some(replica) = crate::replication::replica::replica_of(&req.headers)? else {
            return Ok(());
        };
        if !self.may_also(req, op, bucket, Some(key)).await? {
            return Err(denied());
        }
        ctx::set_replica(replica);
        Ok(())
    }

    /// Whether the caller may do `op`, a permission a request asks for besides its
    /// operation's.
    async fn may_also<T>(
        &self,
        req: &S3Request<T>,
        op: &str,
        bucket: String,
        key: Option<String>,
    ) -> S3Result<bool> {
        let caller = Caller::of(&req.extensions)?.clone();
        let ask = Ask {
            op: op.to_string(),
            bucket: Some(bucket),
            key,
            query: Vec::new(),
            source: self.source(req.extensions.get::<PeerAddr>(), &req.headers),
            secure: secure(&req.extensions),
            keys: Context::default(),
            trail: None,
        };
        let this = self.clone();
        Ok(ctx::spawn(move || this.authorize(&caller, &ask))
            .await?
            .is_ok())
    }

    /// Copying also reads the source: the caller needs GetObject on it.
    async fn check_copy_source<T>(&self, req: &S3Request<T>, source: &CopySource) -> S3Result<()> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(denied());
        };
        let caller = Caller::of(&req.extensions)?.clone();
        let mut query = Vec::new();
        if let Some(v) = version_id {
            query.push(("versionId".to_string(), v.to_string()));
        }
        let ask = Ask {
            op: "GetObject".to_string(),
            bucket: Some(bucket.to_string()),
            key: Some(key.to_string()),
            query,
            source: self.source(req.extensions.get::<PeerAddr>(), &req.headers),
            secure: secure(&req.extensions),
            keys: Context::default(),
            trail: trail::handle(),
        };
        let this = self.clone();
        ctx::spawn(move || this.authorize(&caller, &ask)).await?
    }
}

/// Whether the caller may list a bucket (s3:ListBucket), asked only when the answer is
/// needed: for a GET or HEAD once the key turns out to be missing, and for each bucket
/// ListBuckets would show ([`listed_buckets`]). AWS tells a missing key (404
/// NoSuchKey) only to callers who could learn it from a listing; others get 403
/// AccessDenied, so keys cannot be probed for.
#[derive(Clone)]
pub(crate) struct ListCheck {
    identities: Identities,
    caller: Caller,
    ask: Ask,
}

impl ListCheck {
    /// The request's listing question, if its access check left one.
    fn of(extensions: &Extensions) -> Option<ListCheck> {
        extensions.get::<ListCheck>().cloned()
    }
}

/// The error a GET or HEAD answers with: NoSuchKey becomes AccessDenied for a caller
/// who may not list the bucket. Other errors, and requests without a [`ListCheck`],
/// keep theirs.
pub(crate) async fn missing_key(extensions: &Extensions, e: S3Error) -> S3Error {
    if *e.code() != S3ErrorCode::NoSuchKey {
        return e;
    }
    let Some(ListCheck {
        identities,
        caller,
        ask,
    }) = ListCheck::of(extensions)
    else {
        return e;
    };
    let may_list = ctx::spawn(move || {
        let may = identities.may(&caller, &ask).map(|v| v.allowed);
        if let Ok(may) = may {
            tracing::debug!(target: "cybs3::auth", caller = caller.name(), action = "s3:ListBucket", resource = %resource(ask.bucket.as_deref(), None), source = %ask.source, decision = if may { "allow" } else { "deny" }, "for a missing key");
            if let (false, Some(t)) = (may, &ask.trail) {
                t.lock().decided(false, "no s3:ListBucket to learn that the key is missing");
            }
        }
        may
    })
    .await;
    match may_list {
        Ok(Ok(true)) => e,
        Ok(Ok(false)) => denied(),
        Ok(Err(failed)) | Err(failed) => failed,
    }
}

/// Which of `buckets` ListBuckets shows the caller. Root sees all of them and a bucket
/// key its own (the handler filters those). A user sees the buckets they own and the
/// ones IAM lets them list (their policies or the bucket's), as MinIO shows a user the
/// buckets they can reach; in AWS every user of an account sees its buckets, but here
/// users are apart and a bucket's name alone should not reach those who cannot use it.
pub(crate) async fn listed_buckets(
    extensions: &Extensions,
    buckets: Vec<String>,
) -> S3Result<Vec<String>> {
    let Some(ListCheck {
        identities,
        caller,
        ask,
    }) = ListCheck::of(extensions)
    else {
        return Ok(buckets);
    };
    let Caller::User { name, .. } = &caller else {
        return Ok(buckets);
    };
    let me = owners::user(name);
    ctx::spawn(move || {
        let mut shown = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let owner = match BucketAccess::load(identities.iam.store(), &bucket) {
                Ok(access) => access.owner().clone(),
                // Deleted since it was listed.
                Err(engine::Error::NoSuchBucket(_)) => continue,
                Err(e) => return Err(store_failed(e)),
            };
            let ask = Ask {
                bucket: Some(bucket.clone()),
                ..ask.clone()
            };
            if owner == me || identities.may(&caller, &ask)?.allowed {
                shown.push(bucket);
            }
        }
        Ok(shown)
    })
    .await?
}

/// The access check of a POST form, left to its handler: s3s resolves a form's path
/// as its bucket alone, and the object's key (with `${filename}` filled in) and the
/// fields policies test (`acl`, grants, tags, object lock, encryption) come with the
/// parsed form. Only the server puts one in a request's extensions.
#[derive(Clone)]
pub(crate) struct PostCheck {
    identities: Identities,
    caller: Caller,
    ask: Ask,
}

/// Decides a POST form that stores `key`: `field` gives its fields under the header
/// names PutObject sends them as, `tags` its parsed `tagging`. A request the access
/// check did not see is refused.
pub(crate) async fn check_post(
    extensions: &Extensions,
    key: &str,
    field: impl Fn(&str) -> Option<String>,
    tags: &[(String, String)],
) -> S3Result<()> {
    let Some(PostCheck {
        identities,
        caller,
        mut ask,
    }) = extensions.get::<PostCheck>().cloned()
    else {
        return Err(denied());
    };
    ask.key = Some(key.to_string());
    policy::set_header_keys(&mut ask.keys, &ask.op, field, now_unix());
    if !tags.is_empty() {
        policy::set_request_tags(&mut ask.keys, tags);
    }
    ctx::spawn(move || identities.authorize(&caller, &ask)).await?
}

/// A refused caller, logged as every decision is.
/// Whether the server put a TLS mark in the request's extensions (absent: not TLS).
fn secure(extensions: &Extensions) -> bool {
    extensions.get::<SecureTransport>().is_some_and(|s| s.0)
}

fn log_refused(access_key: Option<&str>, e: &S3Error) {
    tracing::info!(
        target: "cybs3::auth",
        caller = access_key.unwrap_or("anonymous"),
        decision = "deny",
        why = ?e.code(),
    );
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

/// The decoded query parameters of a request URI (`+` is a space, as in forms).
pub(crate) fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `2026-11-22T03:04:05Z` for a Unix time (times past the year 9999 show as its end).
pub(crate) fn iso8601(unix: u64) -> String {
    const FORMAT: &[FormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    let when = i64::try_from(unix)
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or_else(|| {
            Date::MAX
                .with_hms(23, 59, 59)
                .expect("valid time")
                .assume_utc()
        });
    when.format(FORMAT)
        .expect("a UTC time within years 0-9999 formats")
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

pub(crate) fn store_failed(e: impl std::fmt::Display) -> S3Error {
    tracing::error!("identity lookup failed: {e}");
    errors::internal("We encountered an internal error. Please try again.")
}

#[async_trait::async_trait]
impl S3Auth for Identities {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        // s3s asks before it checks the signature: a request refused for a bad one is
        // still audited under the key it claimed.
        trail::update(|r| r.access_key = Some(access_key.to_string()));
        if access_key == self.root_access_key {
            return Ok(SecretKey::from(self.root_secret_key.as_str()));
        }
        let found = match self.lookup_key(access_key).await {
            Ok(Some((_, Owner::Session(s)))) if s.expired() => {
                Err(s3_error!(ExpiredToken, "The provided token has expired."))
            }
            Ok(Some((secret, _))) => Ok(SecretKey::from(secret)),
            Ok(None) => Err(unknown_key()),
            Err(e) => Err(e),
        };
        found.inspect_err(|e| {
            tracing::info!(target: "cybs3::auth", caller = access_key, decision = "deny", why = ?e.code());
        })
    }
}

#[async_trait::async_trait]
impl S3Access for Identities {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        self.check_path(cx).await
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        self.check_copy_source(req, &req.input.copy_source).await
    }

    async fn delete_object(&self, req: &mut S3Request<DeleteObjectInput>) -> S3Result<()> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        let asked = req.input.bypass_governance_retention == Some(true);
        if asked && !self.may_bypass(req, b.clone(), Some(k.clone())).await? {
            req.input.bypass_governance_retention = None;
        }
        self.check_replica(req, "ReplicateDelete", b, k).await
    }

    async fn put_object(&self, req: &mut S3Request<s3s::dto::PutObjectInput>) -> S3Result<()> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_replica(req, "ReplicateObject", b, k).await
    }

    async fn complete_multipart_upload(
        &self,
        req: &mut S3Request<s3s::dto::CompleteMultipartUploadInput>,
    ) -> S3Result<()> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_replica(req, "ReplicateObject", b, k).await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let b = req.input.bucket.clone();
        let asked = req.input.bypass_governance_retention == Some(true);
        if asked && !self.may_bypass(req, b, None).await? {
            req.input.bypass_governance_retention = None;
        }
        Ok(())
    }

    async fn put_object_tagging(&self, req: &mut S3Request<PutObjectTaggingInput>) -> S3Result<()> {
        self.check_deferred(req, |input, keys| {
            let tags: Vec<(String, String)> = (input.tagging.tag_set.iter())
                .map(|t| {
                    let k = t.key.clone().unwrap_or_default();
                    (k, t.value.clone().unwrap_or_default())
                })
                .collect();
            policy::set_request_tags(keys, &tags);
        })
        .await?;
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_replica(req, "ReplicateTags", b, k).await
    }

    async fn delete_object_tagging(
        &self,
        req: &mut S3Request<s3s::dto::DeleteObjectTaggingInput>,
    ) -> S3Result<()> {
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_replica(req, "ReplicateTags", b, k).await
    }

    async fn put_object_legal_hold(
        &self,
        req: &mut S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<()> {
        self.check_deferred(req, |input, keys| {
            let status = input.legal_hold.as_ref().and_then(|h| h.status.as_ref());
            if let Some(status) = status {
                policy::set_legal_hold(keys, status.as_str());
            }
        })
        .await?;
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        self.check_replica(req, "ReplicateObject", b, k).await
    }

    async fn put_object_retention(
        &self,
        req: &mut S3Request<PutObjectRetentionInput>,
    ) -> S3Result<()> {
        self.check_deferred(req, |input, keys| {
            let Some(retention) = &input.retention else {
                return;
            };
            let until = retention.retain_until_date.clone().map(|t| {
                let unix = time::OffsetDateTime::from(t).unix_timestamp();
                iso8601(u64::try_from(unix).unwrap_or(0))
            });
            let mode = retention.mode.as_ref().map(|m| m.as_str());
            policy::set_retention(keys, mode, until.as_deref(), now_unix());
        })
        .await?;
        let (b, k) = (req.input.bucket.clone(), req.input.key.clone());
        let asked = req.input.bypass_governance_retention == Some(true);
        if asked && !self.may_bypass(req, b.clone(), Some(k.clone())).await? {
            req.input.bypass_governance_retention = None;
        }
        self.check_replica(req, "ReplicateObject", b, k).await
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

    #[tokio::test]
    async fn the_signing_key_is_read_once_per_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = engine::Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        let iam = Iam::new(store, &[1; 32]);
        let ids = Identities::new("root", "root-secret", iam.clone(), crate::Live::default());
        let (key, secret) = iam.keyring().insert(Owner::Bucket("b".into())).unwrap();
        let expected = Some((secret, Owner::Bucket("b".into())));
        request_scope(async {
            assert_eq!(ids.lookup_key(&key).await.unwrap(), expected);
            // Gone from the store, yet this request still sees the record it read:
            // the second use (the access check after the signature) does not read again.
            assert!(iam.keyring().remove(&key).unwrap());
            assert_eq!(ids.lookup_key(&key).await.unwrap(), expected);
            // A different key in the same request is a lookup of its own.
            assert_eq!(ids.lookup_key("other").await.unwrap(), None);
        })
        .await;
        // The next request reads the store afresh.
        request_scope(async { assert_eq!(ids.lookup_key(&key).await.unwrap(), None) }).await;
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
