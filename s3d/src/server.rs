//! HTTP side: accept loop, unauthenticated health probes, per-request logs and
//! graceful shutdown. Everything else goes to the s3s service.

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::service::S3Service;
use s3s::{Body, HttpError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long in-flight requests may run after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(30);

/// The client's address, put into every S3 request's extensions
/// (`S3Request::extensions`) for handlers and access checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

pub(crate) async fn run(
    s3: S3Service,
    store: engine::Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http = ConnBuilder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Typically EMFILE/ENFILE: back off instead of spinning on it.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // Small responses (errors, HEAD, lists) should not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let (s3, store) = (s3.clone(), store.clone());
        let svc = service_fn(move |req| handle(s3.clone(), store.clone(), peer, req));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), svc).into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("requests still running after {}s; stopping anyway", DRAIN.as_secs());
        }
    }
    Ok(())
}

async fn handle(
    s3: S3Service,
    store: engine::Store,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, HttpError> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = match health(&method, &path, &store).await {
        Some(resp) => resp,
        None => {
            req.extensions_mut().insert(PeerAddr(peer));
            match s3.call(req.map(Body::from)).await {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::warn!(%peer, %method, path, "response could not be produced: {e:?}");
                    return Err(e);
                }
            }
        }
    };
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_millis() as u64;
    if status >= 500 {
        tracing::warn!(%peer, %method, path, status, ms, "request failed");
    } else {
        tracing::debug!(%peer, %method, path, status, ms, "request");
    }
    Ok(resp)
}

/// `GET /health/live` and `/health/ready`, answered before any S3 parsing or auth
/// so that probes need no credentials.
async fn health(method: &Method, path: &str, store: &engine::Store) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let ready = match path {
        "/health/live" => true,
        "/health/ready" => {
            let store = store.clone();
            // status() reads drive states and metadata: keep it off the executor.
            tokio::task::spawn_blocking(move || store.status().writable)
                .await
                .unwrap_or(false)
        }
        _ => return None,
    };
    let (status, text) = match ready {
        true => (StatusCode::OK, "ok\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "store is not writable\n"),
    };
    let mut resp = Response::new(Body::from(text.to_string()));
    *resp.status_mut() = status;
    Some(resp)
}
