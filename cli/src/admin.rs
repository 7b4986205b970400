//! Management of a running server over its Unix socket (`<data>/admin.sock`, mode 0600).
//!
//! Access is the file's permission: whoever may read the store's directory may
//! manage it, with no credentials on the wire. Plain HTTP/1 with JSON bodies. Every
//! call goes into the audit log, under the caller's local account (`uid:N`) and an
//! action name (`iam:CreateUser`, `admin:KmsKeyCreate`; reads are `…List…`/`…Get…`).

use crate::inventory::InventoryCall;
use crate::replication::ReplicationCall;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use engine::Store;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use s3d::audit::Log;
use s3d::batch::BatchCall;
use s3d::trail::{Api, Record};
use s3d::{
    AlertCall, Iam, IamCall, NotifyCall, RemoteCall, Remotes, SiteCall, Sites, Target, Targets,
};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::net::{UnixListener, UnixStream};

/// What `GET /status` answers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerStatus {
    pub pid: u32,
    pub address: String,
    pub store: serde_json::Value,
    /// The site group and each peer's queue, if this site is in one.
    pub site: Option<engine::SiteHealth>,
}

/// The registries the socket manages, each kept by the server in its own records.
#[derive(Clone)]
pub struct Registries {
    pub iam: Iam,
    pub targets: Targets,
    pub remotes: Remotes,
    pub sites: Sites,
    /// The settings that change while the server runs, and how to reload them.
    pub live: s3d::Live,
    pub config: std::sync::Arc<crate::server_config::Reload>,
    pub anomalies: s3d::Anomalies,
}

/// Serve the management socket until the process ends.
pub fn spawn(
    path: &Path,
    store: Store,
    registries: Registries,
    address: String,
    audit: Option<Log>,
) -> Result<()> {
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
            let registries = registries.clone();
            let address = address.clone();
            let audit = audit.clone();
            let uid = conn.peer_cred().ok().map(|c| c.uid());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let audit_dir = audit.as_ref().map(|l| l.dir().to_path_buf());
                    let call = handle(
                        req,
                        store.clone(),
                        registries.clone(),
                        address.clone(),
                        audit_dir,
                    );
                    audited(call, audit.clone(), uid)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), svc)
                    .await;
            });
        }
    });
    Ok(())
}

/// Serve a call and append its audit line.
async fn audited(
    call: impl std::future::Future<Output = (Response<Full<Bytes>>, Record)>,
    audit: Option<Log>,
    uid: Option<u32>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let started = Instant::now();
    let (resp, mut record) = call.await;
    if let Some(log) = audit {
        record.user = uid.map(|u| format!("uid:{u}").into());
        record.status = resp.status().as_u16();
        if !resp.status().is_success() {
            record.error = Some(
                if resp.status() == StatusCode::NOT_FOUND {
                    "NoSuchCall"
                } else {
                    "Failed"
                }
                .into(),
            );
        }
        record.bytes_out = hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0);
        record.micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        log.append(record).await;
    }
    Ok(resp)
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    store: Store,
    Registries {
        iam,
        targets,
        remotes,
        sites,
        live,
        config,
        anomalies,
    }: Registries,
    address: String,
    audit_dir: Option<PathBuf>,
) -> (Response<Full<Bytes>>, Record) {
    let mut record = Record::new(Api::Admin, None);
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    // Calls are small JSON documents; read whole, so that the audit line can name them.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let msg = serde_json::json!({"error": format!("cannot read the call: {e}")});
            return (reply(StatusCode::BAD_REQUEST, msg), record);
        }
    };
    record.bytes_in = body.len() as u64;
    let keyring = iam.keyring().clone();
    let r = &mut record;
    let result = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/iam") => iam_call(&body, iam, r).await,
        (&Method::POST, "/placement") => placement_call(&body, store, r).await,
        (&Method::POST, "/kms") => kms_call(&body, store, r).await,
        (&Method::POST, "/notify") => notify_call(&body, targets, r).await,
        (&Method::POST, "/remote") => remote_call(&body, remotes, r).await,
        (&Method::POST, "/replication") => replication_call(&body, store, r).await,
        (&Method::POST, "/site") => site_call(&body, sites, r).await,
        (&Method::POST, "/inventory") => inventory_call(&body, store, r).await,
        (&Method::POST, "/batch") => batch_call(&body, iam, targets, r).await,
        (&Method::POST, "/alerts") => alerts_call(&body, anomalies, targets, r).await,
        (&Method::GET, "/analyze") => analyze_call(&query, iam, audit_dir, r).await,
        (&Method::GET, "/status") => {
            r.action = Some("admin:GetServerStatus".into());
            let site = store.site_health().ok().flatten();
            serde_json::to_value(ServerStatus {
                pid: std::process::id(),
                address,
                store: serde_json::to_value(store.status()).unwrap_or_default(),
                site,
            })
            .map_err(|e| anyhow!(e))
        }
        (&Method::POST, "/metrics/token") => {
            r.action = Some("admin:CreateMetricsToken".into());
            blocking(move || {
                s3d::metrics::new_token(&store).map(|token| serde_json::json!({ "token": token }))
            })
            .await
        }
        (&Method::GET, "/diag") => {
            r.action = Some("admin:GetDiagnostics".into());
            let metrics = live.metrics().clone();
            tokio::task::spawn_blocking(move || {
                crate::diag::server_part(&store, &metrics, &address)
            })
            .await
            .map_err(|e| anyhow!(e))
        }
        (&Method::POST, "/config/reload") => {
            r.action = Some("admin:ReloadServerConfig".into());
            config
                .reload(&live)
                .and_then(|out| Ok(serde_json::to_value(out)?))
        }
        (&Method::GET, "/usage") => {
            r.action = Some("admin:GetUsage".into());
            let ask = crate::usage::Ask::from_query(&query);
            r.bucket = ask.bucket.clone();
            tokio::task::spawn_blocking(move || crate::usage::answer(&store, ask))
                .await
                .map_err(|e| anyhow!(e))
                .and_then(|r| r)
        }
        (&Method::POST, "/heal") => {
            r.action = Some("admin:Heal".into());
            blocking(move || store.heal()).await
        }
        (&Method::GET, "/fsck") => {
            r.action = Some("admin:GetFsck".into());
            blocking(move || store.check()).await
        }
        (&Method::GET, "/keys") => {
            r.action = Some("admin:ListBucketKeys".into());
            blocking(move || keyring.list()).await
        }
        (&Method::POST, "/keys") => {
            r.action = Some("admin:CreateBucketKey".into());
            match query.strip_prefix("bucket=") {
                Some(bucket) => {
                    let bucket = bucket.to_string();
                    r.bucket = Some(bucket.clone());
                    blocking(move || keyring.create(&bucket)).await
                }
                None => Err(anyhow!("POST /keys needs ?bucket=NAME")),
            }
        }
        (&Method::DELETE, path) if path.starts_with("/keys/") => {
            let ak = path["/keys/".len()..].to_string();
            r.action = Some("admin:DeleteBucketKey".into());
            r.target = Some(ak.clone());
            blocking(move || keyring.remove(&ak)).await
        }
        _ => {
            r.action = Some("admin:Unknown".into());
            let msg = serde_json::json!({"error": "no such management call"});
            return (reply(StatusCode::NOT_FOUND, msg), record);
        }
    };
    let resp = match result {
        Ok(v) => reply(StatusCode::OK, v),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": e.to_string()}),
        ),
    };
    (resp, record)
}

/// One IAM management call (JSON [`IamCall`] in the body).
async fn iam_call(body: &[u8], iam: Iam, r: &mut Record) -> Result<serde_json::Value> {
    let call: IamCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        IamCall::UserAdd { name, .. } => ("iam:CreateUser", Some(name.clone())),
        IamCall::UserList => ("iam:ListUsers", None),
        IamCall::UserRemove { name } => ("iam:DeleteUser", Some(name.clone())),
        IamCall::PolicyAdd { name, .. } => ("iam:CreatePolicy", Some(name.clone())),
        IamCall::PolicyList => ("iam:ListPolicies", None),
        IamCall::PolicyRemove { name } => ("iam:DeletePolicy", Some(name.clone())),
        IamCall::PolicyAttach { policy, to } => ("iam:AttachPolicy", Some(on(policy, to))),
        IamCall::PolicyDetach { policy, to } => ("iam:DetachPolicy", Some(on(policy, to))),
        IamCall::GroupAdd { name, .. } => ("iam:CreateGroup", Some(name.clone())),
        IamCall::GroupList => ("iam:ListGroups", None),
        IamCall::GroupRemove { name } => ("iam:DeleteGroup", Some(name.clone())),
        IamCall::GroupAddUser { group, user } => (
            "iam:AddUserToGroup",
            Some(format!("user:{user} group:{group}")),
        ),
        IamCall::GroupRemoveUser { group, user } => (
            "iam:RemoveUserFromGroup",
            Some(format!("user:{user} group:{group}")),
        ),
    };
    r.action = Some(action.into());
    r.target = target;
    Ok(tokio::task::spawn_blocking(move || iam.apply(call)).await??)
}

/// One `cybs3 admin alerts` call (JSON [`AlertCall`] in the body).
async fn alerts_call(
    body: &[u8],
    anomalies: s3d::Anomalies,
    targets: Targets,
    r: &mut Record,
) -> Result<serde_json::Value> {
    let call: AlertCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        AlertCall::List => ("admin:ListAlerts", None),
        AlertCall::Clear { user } => ("admin:ClearAlertFlag", Some(user.clone())),
        AlertCall::Protect { bucket, .. } => {
            r.bucket = Some(bucket.clone());
            ("admin:PutAlertProtection", None)
        }
        AlertCall::Target { name } => ("admin:PutAlertTarget", name.clone()),
    };
    r.action = Some(action.into());
    r.target = target;
    tokio::task::spawn_blocking(move || {
        if let AlertCall::Target { name: Some(name) } = &call {
            if !targets.list()?.iter().any(|t| &t.name == name) {
                return Err(anyhow!(
                    "no notification target {name:?}: add it with `cybs3 admin notify add`"
                ));
            }
        }
        Ok(anomalies.apply(call)?)
    })
    .await?
}

/// The access analyzer (`?unused_days=N`, 90 when not given) over the store and its
/// audit log.
async fn analyze_call(
    query: &str,
    iam: Iam,
    audit_dir: Option<PathBuf>,
    r: &mut Record,
) -> Result<serde_json::Value> {
    r.action = Some("admin:GetAccessAnalysis".into());
    let unused_days = match query
        .split('&')
        .find_map(|p| p.strip_prefix("unused_days="))
    {
        Some(n) => n
            .parse()
            .map_err(|_| anyhow!("unused_days must be a whole number of days, not {n:?}"))?,
        None => 90,
    };
    let opts = s3d::AnalyzeOptions { unused_days };
    let analysis =
        tokio::task::spawn_blocking(move || s3d::analyze(&iam, audit_dir.as_deref(), opts))
            .await??;
    Ok(serde_json::to_value(analysis)?)
}

/// A policy and what it is attached to, as an audit line's target.
fn on(policy: &str, to: &Target) -> String {
    match to {
        Target::User(u) => format!("policy:{policy} user:{u}"),
        Target::Group(g) => format!("policy:{policy} group:{g}"),
    }
}

/// One pool or storage class call (JSON [`crate::placement::PlacementCall`] in the body).
async fn placement_call(body: &[u8], store: Store, r: &mut Record) -> Result<serde_json::Value> {
    use crate::placement::PlacementCall;
    let call: PlacementCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        PlacementCall::PoolAdd { name, .. } => ("admin:PoolAdd", Some(name.clone())),
        PlacementCall::PoolList => ("admin:ListPools", None),
        PlacementCall::PoolDrain { name } => ("admin:PoolDrain", Some(name.clone())),
        PlacementCall::TierAdd { class, .. } => ("admin:TierAdd", Some(class.clone())),
        PlacementCall::TierList => ("admin:ListTiers", None),
        PlacementCall::TierRemove { class } => ("admin:TierRemove", Some(class.clone())),
    };
    r.action = Some(action.into());
    r.target = target;
    tokio::task::spawn_blocking(move || call.apply(&store, true)).await?
}

/// One KMS call (JSON [`crate::kms::KmsCall`] in the body).
async fn kms_call(body: &[u8], store: Store, r: &mut Record) -> Result<serde_json::Value> {
    use crate::kms::KmsCall;
    let call: KmsCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        KmsCall::Create { name } => ("admin:KmsKeyCreate", Some(name.clone())),
        KmsCall::List => ("admin:ListKmsKeys", None),
        KmsCall::Rotate { name } => ("admin:KmsKeyRotate", Some(name.clone())),
        KmsCall::Enable { name, on: true } => ("admin:KmsKeyEnable", Some(name.clone())),
        KmsCall::Enable { name, on: false } => ("admin:KmsKeyDisable", Some(name.clone())),
        KmsCall::Rewrap { bucket } => {
            r.bucket.clone_from(bucket);
            ("admin:KmsRewrap", None)
        }
        KmsCall::RewrapStatus => ("admin:GetKmsRewrapStatus", None),
    };
    r.action = Some(action.into());
    r.target = target;
    tokio::task::spawn_blocking(move || call.apply(&store)).await?
}

/// One notification target call (JSON [`NotifyCall`] in the body).
async fn notify_call(body: &[u8], targets: Targets, r: &mut Record) -> Result<serde_json::Value> {
    let call: NotifyCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        NotifyCall::Add(t) => ("admin:NotifyTargetAdd", Some(t.name.clone())),
        NotifyCall::List => ("admin:ListNotifyTargets", None),
        NotifyCall::Remove { name } => ("admin:NotifyTargetRemove", Some(name.clone())),
        NotifyCall::Status => ("admin:GetNotifyStatus", None),
    };
    r.action = Some(action.into());
    r.target = target;
    Ok(tokio::task::spawn_blocking(move || targets.apply(call)).await??)
}

/// One remote call (JSON [`RemoteCall`]); a new remote must answer first.
async fn remote_call(body: &[u8], remotes: Remotes, r: &mut Record) -> Result<serde_json::Value> {
    let call: RemoteCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        RemoteCall::Add(new) => ("admin:RemoteAdd", new.name.clone()),
        RemoteCall::List => ("admin:ListRemotes", String::new()),
        RemoteCall::Remove { name } => ("admin:RemoteRemove", name.clone()),
        RemoteCall::Tier { name, .. } => ("admin:GetRemoteTier", name.clone()),
    };
    r.action = Some(action.into());
    r.target = Some(target).filter(|t| !t.is_empty());
    if let RemoteCall::Add(new) = &call {
        remotes.check(new).await?;
    }
    Ok(tokio::task::spawn_blocking(move || remotes.apply(call)).await??)
}

/// One site call (JSON [`SiteCall`]).
async fn site_call(body: &[u8], sites: Sites, r: &mut Record) -> Result<serde_json::Value> {
    let call: SiteCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        SiteCall::Add { name, .. } => ("admin:SiteAdd", Some(name.clone())),
        SiteCall::Status => ("admin:GetSiteStatus", None),
        SiteCall::Remove { name } => ("admin:SiteRemove", Some(name.clone())),
    };
    r.action = Some(action.into());
    r.target = target;
    Ok(sites.apply(call).await?)
}

/// One replication call (JSON [`ReplicationCall`]).
async fn replication_call(body: &[u8], store: Store, r: &mut Record) -> Result<serde_json::Value> {
    let call: ReplicationCall = serde_json::from_slice(body)?;
    let (action, bucket) = match &call {
        ReplicationCall::Status { bucket } => ("admin:GetReplicationStatus", bucket),
        ReplicationCall::Resync { bucket } => ("admin:ReplicationResync", bucket),
    };
    r.action = Some(action.into());
    r.target = Some(bucket.clone());
    tokio::task::spawn_blocking(move || crate::replication::apply(&store, call)).await?
}

/// One inventory run (JSON [`InventoryCall`]): the report is written before the answer.
async fn inventory_call(body: &[u8], store: Store, r: &mut Record) -> Result<serde_json::Value> {
    let call: InventoryCall = serde_json::from_slice(body)?;
    r.action = Some("admin:InventoryRun".into());
    r.bucket = Some(call.bucket.clone());
    r.target = Some(call.id.clone());
    tokio::task::spawn_blocking(move || crate::inventory::apply(&store, call)).await?
}

/// One `cybs3 batch` call (JSON [`BatchCall`]).
async fn batch_call(
    body: &[u8],
    iam: Iam,
    targets: Targets,
    r: &mut Record,
) -> Result<serde_json::Value> {
    let call: BatchCall = serde_json::from_slice(body)?;
    let (action, target) = match &call {
        BatchCall::Create { user, .. } => ("admin:CreateBatchJob", Some(user.clone())),
        BatchCall::List => ("admin:ListBatchJobs", None),
        BatchCall::Status { id } => ("admin:GetBatchJob", Some(id.clone())),
        BatchCall::Cancel { id } => ("admin:CancelBatchJob", Some(id.clone())),
        BatchCall::Priority { id, .. } => ("admin:UpdateBatchJobPriority", Some(id.clone())),
        BatchCall::Report { id } => ("admin:GetBatchJobReport", Some(id.clone())),
    };
    r.action = Some(action.into());
    r.target = target;
    tokio::task::spawn_blocking(move || -> Result<serde_json::Value> {
        Ok(s3d::batch::apply(&iam, &targets, call)?)
    })
    .await?
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
