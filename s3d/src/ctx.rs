//! What every handler shares: the service context ([`Cybs3`]), the client's
//! address ([`PeerAddr`]) and whether it came over TLS ([`SecureTransport`]), and the
//! one way s3d runs synchronous engine and LMDB work off the async executor ([`spawn`],
//! [`blocking`]).

use crate::errors;
use crate::identity::iam::Iam;
use s3s::S3Result;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// A success status other than the one s3s gives the operation's output (RestoreObject's
/// 202), set in the response's extensions and applied by the accept loop (s3s 0.14 does
/// not apply `S3Response::status` to every operation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Status(pub hyper::StatusCode);

/// What every operation needs: the store, the server's region, and its users (ACL
/// grants name them). Who the caller is travels with each request (see
/// `identity::auth::Caller`), not here.
#[derive(Clone)]
pub(crate) struct Cybs3 {
    pub store: engine::Store,
    pub region: String,
    pub iam: Iam,
    /// A lifecycle day, in seconds (`x-amz-expiration` dates are counted in them).
    pub lifecycle_day_secs: u64,
    /// Notification targets (bucket configurations name them by ARN).
    pub notify: crate::notify::Targets,
    /// Remote endpoints (replication rules name them in their destinations).
    pub remotes: crate::remotes::Remotes,
    /// The site group's peers, which answer reads this site misses (global namespace).
    pub peers: crate::site::proxy::Peers,
    /// The anomaly detector, whose freezes deletes and overwrites obey.
    pub anomalies: Option<crate::Anomalies>,
}

impl Cybs3 {
    /// A bucket setting stored as an engine bucket attribute.
    pub(crate) async fn bucket_attr(
        &self,
        bucket: &str,
        name: &'static str,
    ) -> S3Result<Option<Vec<u8>>> {
        let (store, bucket) = (self.store.clone(), bucket.to_string());
        blocking(move || store.bucket_attr(&bucket, name)).await
    }

    /// Set (`Some`) or remove (`None`) a bucket setting.
    pub(crate) async fn set_bucket_attr(
        &self,
        bucket: &str,
        name: &'static str,
        value: Option<Vec<u8>>,
    ) -> S3Result<()> {
        let (store, bucket) = (self.store.clone(), bucket.to_string());
        blocking(move || store.set_bucket_attr(&bucket, name, value)).await
    }
}

#[cfg(test)]
impl Cybs3 {
    /// A service context over `store`, for unit tests of the operations.
    pub(crate) fn for_tests(store: engine::Store) -> Cybs3 {
        Cybs3 {
            iam: Iam::new(store.clone(), &[7; 32]),
            notify: crate::notify::Targets::new(store.clone(), &[7; 32], "us-east-1"),
            remotes: crate::remotes::Remotes::new(store.clone(), &[7; 32]),
            peers: crate::site::proxy::Peers::new(
                store.clone(),
                crate::remotes::Remotes::new(store.clone(), &[7; 32]),
            ),
            store,
            region: "us-east-1".into(),
            lifecycle_day_secs: 86_400,
            anomalies: None,
        }
    }
}

/// The client's address, put into every S3 request's extensions
/// (`S3Request::extensions`) for handlers and access checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Whether the request came over TLS (`aws:SecureTransport`), next to [`PeerAddr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureTransport(pub bool);

/// Wall-clock time, Unix nanoseconds.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Start `f` on a blocking thread now; the returned future yields its result. A
/// task that panicked or was cancelled is an internal error (logged).
pub(crate) fn spawn<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> impl Future<Output = S3Result<T>> {
    // The engine learns who made a change, and whether it writes a replica, from the
    // thread that submits it.
    let origin = ORIGIN.try_with(|o| o.borrow().clone()).ok().flatten();
    let replica = REPLICA.try_with(|r| r.borrow().clone()).ok().flatten();
    let task = tokio::task::spawn_blocking(move || {
        engine::as_replica(replica, || engine::with_origin(origin, f))
    });
    async move {
        task.await.map_err(|e| {
            tracing::error!("blocking task failed: {e}");
            errors::internal("We encountered an internal error. Please try again.")
        })
    }
}

/// Run a synchronous engine call on a blocking thread and map its error.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> engine::Result<T> + Send + 'static,
) -> S3Result<T> {
    spawn(f).await?.map_err(errors::from_engine)
}

tokio::task_local! {
    /// Per request (set by the server around each S3 call): whether its body went
    /// idle. The timeout's typed error (`errors::BodyIdle`) reaches the handler
    /// only as text through s3s' body wrappers; this flag is how it is known.
    static BODY_IDLE: Cell<bool>;
    /// Per request: who is asking for what (set once the access check knows), the
    /// origin of the changes the request makes (bucket notification events).
    static ORIGIN: RefCell<Option<Arc<engine::Origin>>>;
    /// Per request: the replica it writes (set by the access check, which allowed it).
    static REPLICA: RefCell<Option<engine::Replica>>;
}

/// Serve one request inside its own request context.
pub(crate) async fn request_scope<F: Future>(f: F) -> F::Output {
    let f = REPLICA.scope(RefCell::new(None), f);
    ORIGIN
        .scope(RefCell::new(None), BODY_IDLE.scope(Cell::new(false), f))
        .await
}

/// This request writes `replica` (its caller may).
pub(crate) fn set_replica(replica: engine::Replica) {
    let _ = REPLICA.try_with(|r| *r.borrow_mut() = Some(replica));
}

/// Record who this request's caller is, for the changes it makes.
pub(crate) fn set_origin(origin: engine::Origin) {
    let _ = ORIGIN.try_with(|o| *o.borrow_mut() = Some(Arc::new(origin)));
}

/// Record that this request's body went idle.
pub(crate) fn mark_body_idle() {
    let _ = BODY_IDLE.try_with(|idle| idle.set(true));
}

/// Whether this request's body went idle (false outside a request context).
pub(crate) fn body_went_idle() -> bool {
    BODY_IDLE.try_with(Cell::get).unwrap_or(false)
}
