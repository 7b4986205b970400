//! Management of a running server over its Unix socket (`<data>/admin.sock`, mode 0600).
//!
//! Access is the file's permission: whoever may read the store's directory may
//! manage it, with no credentials on the wire. Plain HTTP/1 with JSON bodies.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use engine::Store;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3d::{Iam, IamCall, NotifyCall, Targets};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tokio::net::{UnixListener, UnixStream};

/// What `GET /status` answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerStatus {
    pub pid: u32,
    pub address: String,
    pub store: serde_json::Value,
}

/// Serve the management socket until the process ends.
pub fn spawn(path: &Path, store: Store, iam: Iam, targets: Targets, address: String) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot create the management socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // Out of descriptors: back off instead of spinning on the error.
                    tracing::warn!("admin socket accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let store = store.clone();
            let iam = iam.clone();
            let targets = targets.clone();
            let address = address.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    handle(
                        req,
                        store.clone(),
                        iam.clone(),
                        targets.clone(),
                        address.clone(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    Ok(())
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    store: Store,
    iam: Iam,
    targets: Targets,
    address: String,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    let keyring = iam.keyring().clone();
    let result = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/iam") => iam_call(body, iam).await,
        (&Method::POST, "/placement") => placement_call(body, store).await,
        (&Method::POST, "/kms") => kms_call(body, store).await,
        (&Method::POST, "/notify") => notify_call(body, targets).await,
        (&Method::GET, "/status") => serde_json::to_value(ServerStatus {
            pid: std::process::id(),
            address,
            store: serde_json::to_value(store.status()).unwrap_or_default(),
        })
        .map_err(|e| anyhow!(e)),
        (&Method::POST, "/heal") => blocking(move || store.heal()).await,
        (&Method::GET, "/fsck") => blocking(move || store.check()).await,
        (&Method::GET, "/keys") => blocking(move || keyring.list()).await,
        (&Method::POST, "/keys") => match query.strip_prefix("bucket=") {
            Some(bucket) => {
                let bucket = bucket.to_string();
                blocking(move || keyring.create(&bucket)).await
            }
            None => Err(anyhow!("POST /keys needs ?bucket=NAME")),
        },
        (&Method::DELETE, path) if path.starts_with("/keys/") => {
            let ak = path["/keys/".len()..].to_string();
            blocking(move || keyring.remove(&ak)).await
        }
        _ => {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "no such management call"}),
            ))
        }
    };
    Ok(match result {
        Ok(v) => reply(StatusCode::OK, v),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": e.to_string()}),
        ),
    })
}

/// One IAM management call (JSON [`IamCall`] in the body).
async fn iam_call(body: hyper::body::Incoming, iam: Iam) -> Result<serde_json::Value> {
    let bytes = body.collect().await?.to_bytes();
    let call: IamCall = serde_json::from_slice(&bytes)?;
    Ok(tokio::task::spawn_blocking(move || iam.apply(call)).await??)
}

/// One pool or storage class call (JSON [`crate::placement::PlacementCall`] in the body).
async fn placement_call(body: hyper::body::Incoming, store: Store) -> Result<serde_json::Value> {
    let bytes = body.collect().await?.to_bytes();
    let call: crate::placement::PlacementCall = serde_json::from_slice(&bytes)?;
    tokio::task::spawn_blocking(move || call.apply(&store, true)).await?
}

/// One KMS call (JSON [`crate::kms::KmsCall`] in the body).
async fn kms_call(body: hyper::body::Incoming, store: Store) -> Result<serde_json::Value> {
    let bytes = body.collect().await?.to_bytes();
    let call: crate::kms::KmsCall = serde_json::from_slice(&bytes)?;
    tokio::task::spawn_blocking(move || call.apply(&store)).await?
}

/// One notification target call (JSON [`NotifyCall`] in the body).
async fn notify_call(body: hyper::body::Incoming, targets: Targets) -> Result<serde_json::Value> {
    let bytes = body.collect().await?.to_bytes();
    let call: NotifyCall = serde_json::from_slice(&bytes)?;
    Ok(tokio::task::spawn_blocking(move || targets.apply(call)).await??)
}

async fn blocking<T: Serialize + Send + 'static>(
    f: impl FnOnce() -> engine::Result<T> + Send + 'static,
) -> Result<serde_json::Value> {
    let out = tokio::task::spawn_blocking(f).await??;
    Ok(serde_json::to_value(out)?)
}

fn reply(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r
}

/// Call the running server's management socket (with a JSON body for POST /iam).
pub async fn call(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let stream = UnixStream::connect(socket).await.with_context(|| {
        format!(
            "cannot reach the server's management socket {}",
            socket.display()
        )
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(
            body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string())),
        ))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    if !status.is_success() {
        let msg = v["error"].as_str().unwrap_or("unknown error");
        return Err(anyhow!("the server says: {msg}"));
    }
    Ok(v)
}
