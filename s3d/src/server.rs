//! HTTP side: accept loop, unauthenticated health probes, per-request logs and
//! graceful shutdown. Everything else goes to the s3s service.

use crate::config::ServerConfig;
use crate::conns::{Closed, Conns, Tracked, Watched};
use crate::ctx::{self, PeerAddr, SecureTransport};
use crate::identity::auth;
use crate::metrics::{Finished, Metrics};
use crate::tls::Certs;
use crate::trail::{self, Api, Record, Trail};
use crate::vhost::Domains;
use crate::{
    audit, cors, errors, fdlimit, lifecycle, list, messages, notify, post, precheck, remote,
    rfc2047, service, sigv2, xml,
};
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::service::S3Service;
use s3s::{Body, HttpError};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests may run after shutdown was asked for.
const DRAIN: Duration = Duration::from_secs(30);
/// Request line plus headers. hyper answers 431 beyond it; S3 allows ~8 KiB of
/// user metadata, so 64 KiB leaves room for long presigned query strings.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// A client must send its whole request head within this time (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must finish its TLS handshake within this time (the same guard, one step earlier).
const HANDSHAKE_TIMEOUT: Duration = HEADER_READ_TIMEOUT;
/// A request body that sends nothing for this long is abandoned (S3's RequestTimeout).
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serve S3 + health on `listener` (over TLS when `cfg.tls` names a certificate pair,
/// reloaded on SIGHUP) until `shutdown` resolves; then stop accepting, let in-flight
/// requests finish (graceful drain, up to ~30 s), and return.
pub async fn serve(
    cfg: ServerConfig,
    store: engine::Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let domains = Domains::new(&cfg.domains)?;
    let s3 = service::build(&cfg, store.clone(), &domains)?;
    let fd_limit = fdlimit::raise()?;
    let ceiling = fdlimit::max_connections(fd_limit);
    let cap = cfg.max_connections.map_or(ceiling, |n| n.min(ceiling));
    if cfg.max_connections.is_some_and(|n| n > ceiling) {
        tracing::warn!("--max-connections lowered to {ceiling}: the open file limit is {fd_limit}");
    }
    let conns = Conns::new(cap, cfg.idle_timeout);
    let tls = match &cfg.tls {
        Some(files) => {
            let certs = Certs::load(files.clone())?;
            certs.clone().reload_on_hangup()?;
            Some(certs.acceptor()?)
        }
        None => None,
    };
    tracing::info!(
        listen = %cfg.listen,
        tls = tls.is_some(),
        region = %cfg.region,
        max_connections = cap,
        idle_timeout_s = cfg.idle_timeout.as_secs_f64(),
        "S3 server ready"
    );
    let region: Arc<str> = cfg.region.as_str().into();
    let remotes = crate::remotes::Remotes::new(store.clone(), &cfg.server_key);
    let remote = remote::Remote::new(
        tokio::runtime::Handle::current(),
        &cfg.server_key,
        remotes.clone(),
    );
    store.set_remote_store(remote.clone());
    store.set_replicator(crate::replication::Worker::new(
        tokio::runtime::Handle::current(),
        store.clone(),
        remote,
        remotes,
        crate::identity::keys::Keyring::new(store.clone(), &cfg.server_key),
    ));
    store.set_lane_bound(cfg.notify_backlog);
    let targets = notify::Targets::new(store.clone(), &cfg.server_key, &cfg.region);
    let deliverer = notify::Deliverer::new(tokio::runtime::Handle::current(), targets, &cfg.region)
        .map_err(|e| anyhow::anyhow!("cannot start notification delivery: {}", e.0))?;
    store.set_notifier(deliverer.clone());
    let alert_deliverer = deliverer.clone();
    if let Some((dir, target)) = cfg.audit_target.clone() {
        tokio::spawn(notify::shipper::run(store.clone(), dir, deliverer, target));
    }
    tokio::spawn(lifecycle::run(
        store.clone(),
        cfg.lifecycle,
        cfg.live.clone(),
    ));
    tokio::spawn(crate::inventory::run(store.clone(), cfg.lifecycle));
    crate::usage::start(store.clone(), cfg.lifecycle.day_secs).await?;
    if let Some(a) = &cfg.anomalies {
        tokio::spawn(crate::anomaly::ship(
            a.clone(),
            cfg.audit.clone(),
            alert_deliverer,
        ));
    }
    run(
        s3,
        store,
        Shared {
            domains: Arc::new(domains),
            region,
            audit: cfg.audit.clone(),
            metrics: cfg.live.metrics().clone(),
            anomalies: cfg.anomalies.clone(),
        },
        conns,
        (listener, tls),
        shutdown,
    )
    .await
}

async fn run(
    s3: S3Service,
    store: engine::Store,
    site: Shared,
    conns: Arc<Conns>,
    (listener, tls): (TcpListener, Option<TlsAcceptor>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http = conn_builder();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Typically EMFILE/ENFILE (descriptors used elsewhere than by
                    // connections): free one if a connection is idle, and back off
                    // instead of spinning on the error.
                    let shed = conns.shed_one();
                    tracing::warn!("accept failed: {e}{}", if shed { "; closed the longest-idle connection" } else { "" });
                    tokio::time::sleep(Duration::from_millis(if shed { 10 } else { 100 })).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        let Some(slot) = conns.admit() else {
            tracing::warn!(%peer, "connection refused: every connection is serving a request");
            continue;
        };
        // Small responses (errors, HEAD, lists) should not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let (s3, store, busy) = (s3.clone(), store.clone(), slot.clone());
        let site = site.clone();
        let secure = SecureTransport(tls.is_some());
        let svc = service_fn(move |req| {
            let busy = busy.busy();
            let call = handle(s3.clone(), store.clone(), site.clone(), (peer, secure), req);
            async move { Ok::<_, HttpError>(call.await?.map(|b| Tracked::new(b, busy))) }
        });
        let io = Watched::new(tcp, slot.clone());
        let (http, watcher, tls) = (http.clone(), graceful.watcher(), tls.clone());
        // The handshake runs in the connection's task, under its idle timeout and cap,
        // so a slow client holds up no one else.
        let conn = async move {
            match tls {
                None => {
                    let conn = http.serve_connection(TokioIo::new(io), svc);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io))
                        .await
                        .map_err(|_| "the TLS handshake timed out")??;
                    let conn = http.serve_connection(TokioIo::new(stream), svc);
                    watcher.watch(conn.into_owned()).await
                }
            }
        };
        let conns = conns.clone();
        tokio::spawn(async move {
            match conns.run(&slot, conn).await {
                Closed::Ended(Err(e)) => tracing::debug!(%peer, "connection ended: {e}"),
                Closed::Ended(Ok(())) => {}
                Closed::Idle => tracing::debug!(%peer, "closed an idle connection"),
                Closed::Shed => {
                    tracing::debug!(%peer, "closed the longest-idle connection for a new one");
                }
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

/// HTTP/1 and HTTP/2 limits against oversized and slow request heads. hyper
/// needs a timer for the header read timeout; keep-alive stays on (the default).
fn conn_builder() -> ConnBuilder<TokioExecutor> {
    let mut http = ConnBuilder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    http
}

/// What the handling of every request shares, besides the service and the store.
#[derive(Clone)]
struct Shared {
    domains: Arc<Domains>,
    region: Arc<str>,
    audit: Option<audit::Log>,
    metrics: Metrics,
    anomalies: Option<crate::Anomalies>,
}

async fn handle(
    s3: S3Service,
    store: engine::Store,
    Shared {
        domains,
        region,
        audit,
        metrics,
        anomalies,
    }: Shared,
    (peer, secure): (SocketAddr, SecureTransport),
    mut req: Request<Incoming>,
) -> Result<Response<Body>, HttpError> {
    let started = Instant::now();
    let _in_flight = metrics.start();
    // The id is chosen now so that everything the request does (and its audit line)
    // knows it; the response's x-amz-request-id repeats it.
    let trail = Trail::new(Record::new(Api::S3, Some(peer.ip())));
    let bytes_in = declared_length(req.headers());
    // HTTP/2 carries the host as :authority; CORS lookups read it from Host, as s3s does.
    if req.version() == hyper::Version::HTTP_2 && !req.headers().contains_key(hyper::header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| hyper::header::HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(hyper::header::HOST, v);
        }
    }
    sigv2::bucket_path_with_slash(&mut req, &domains);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let close_after = expects_continue_without_body(&req);
    // Health probes come every few seconds from load balancers and carry no caller:
    // they are not audited.
    let probe = health(&method, &path, &store).await;
    let probed = probe.is_some();
    let scrape = !probed && metrics.is_scrape(&store, &method, req.uri(), req.headers());
    let resp = if let Some(resp) = probe {
        resp
    } else if scrape {
        trail.lock().action = Some("GetMetrics".into());
        metrics.scrape(&store, req.headers()).await
    } else if method == Method::OPTIONS {
        // CORS preflights carry no credentials: answer them before s3s' auth.
        cors::preflight(&store, &domains, req.headers(), &path).await
    } else if let Err(r) = precheck::check(req.headers(), req.uri().query(), &region) {
        match &r.region {
            Some(right) => xml::wrong_region_document(r.status, r.code, &r.message, right),
            None => xml::error_document(r.status, r.code, &r.message, None),
        }
    } else {
        let cors = cors::Actual::of(&domains, &method, req.headers(), &path);
        req.extensions_mut().insert(PeerAddr(peer));
        req.extensions_mut().insert(secure);
        // POST Object: the handler needs the file part's name, which s3s drops.
        let upload = post::Upload::detect(&req);
        if let Some(u) = &upload {
            req.extensions_mut().insert(u.seen());
        }
        let req = req.map(|b| {
            let b = IdleBody::new(b, BODY_IDLE_TIMEOUT);
            match &upload {
                Some(u) => Body::http_body(u.tap(b)),
                None => Body::http_body(b),
            }
        });
        let call = auth::request_scope(ctx::request_scope(s3.call(req)));
        let call = trail::request_scope(trail.clone(), call);
        let mut resp = match call.await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::warn!(%peer, %method, path, "response could not be produced: {e:?}");
                return Err(e);
            }
        };
        if let Some(ctx::Status(status)) = resp.extensions_mut().remove::<ctx::Status>() {
            *resp.status_mut() = status;
        }
        if upload.is_some() {
            resp = post::finish(resp).await;
        }
        resp = list::add_user_metadata(resp);
        rfc2047::reencode_user_metadata(&mut resp);
        resp = xml::reference_controls(resp);
        messages::fill(&mut resp);
        if let Some(cors) = cors {
            cors.apply(&store, &mut resp).await;
        }
        resp
    };
    let mut resp = resp;
    if close_after {
        resp.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    let id = trail.lock().id.clone();
    let request_id = messages::identify(&mut resp, &id);
    let status = resp.status().as_u16();
    let ms = started.elapsed().as_millis() as u64;
    let bytes_out = body_length(&resp);
    if !probed {
        let api = trail.lock().action.clone();
        metrics.record(&Finished {
            api: api.as_deref().unwrap_or("unknown"),
            status,
            took: started.elapsed(),
            bytes_in,
            bytes_out,
        });
    }
    // Scrapes come every few seconds: only refused ones go into the audit log.
    let audited = !(probed || scrape && status == 200);
    let watched = anomalies.filter(|_| !probed && !scrape);
    if audited && audit.is_some() || watched.is_some() {
        // Finished in place: the detector reads it under the lock, the log takes a copy.
        let record = {
            let mut r = trail.lock();
            finish(&mut r, &resp, bytes_in, started);
            if let Some(a) = watched {
                a.observe(&r);
            }
            audited.then(|| r.clone())
        };
        if let (Some(log), Some(record)) = (audit, record) {
            log.append(record).await;
        }
    }
    if status >= 500 {
        tracing::warn!(%peer, %method, path, status, ms, request_id, "request failed");
    } else {
        tracing::debug!(%peer, %method, path, status, ms, request_id, "request");
    }
    Ok(resp)
}

/// The end of a request in its audit record: status, error code, sizes and duration,
/// and a refusal that no access check recorded (a bad signature, an unknown key).
fn finish(r: &mut Record, resp: &Response<Body>, bytes_in: u64, started: Instant) {
    r.status = resp.status().as_u16();
    r.error = messages::error_code(resp);
    r.bytes_in = bytes_in;
    r.bytes_out = body_length(resp);
    r.micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let refused =
        r.status == 403 || matches!(r.error.as_deref(), Some("ExpiredToken" | "InvalidToken"));
    if refused && r.decision.as_ref().is_none_or(|d| d.allowed) {
        let why = r.error.clone().unwrap_or_else(|| "refused".into());
        r.decided(false, format!("refused: {why}"));
    }
}

/// The bytes a response's body holds, as declared or known.
fn body_length(resp: &Response<Body>) -> u64 {
    declared_length(resp.headers()).max(
        hyper::body::Body::size_hint(resp.body())
            .exact()
            .unwrap_or(0),
    )
}

/// The size a message declares: its decoded length for aws-chunked uploads, else its
/// Content-Length (0 when neither is given).
fn declared_length(headers: &hyper::HeaderMap) -> u64 {
    ["x-amz-decoded-content-length", "content-length"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// `Expect: 100-continue` on an empty body: hyper answers with the final status
/// and no `100 Continue` (as RFC 9110 allows). botocore (aws CLI, boto3) then
/// keeps that status for the next expect-request on the same connection and
/// misreads its response, so such connections are closed after the answer.
fn expects_continue_without_body(req: &Request<Incoming>) -> bool {
    use hyper::body::Body as _;
    req.headers()
        .get(hyper::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
        && req.body().size_hint().exact() == Some(0)
}

/// `GET /health/live`, `/health/ready` and `/health/site`, answered before any S3
/// parsing or auth so that probes need no credentials.
async fn health(method: &Method, path: &str, store: &engine::Store) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (status, text) = match path {
        "/health/live" => (StatusCode::OK, "ok\n".to_string()),
        "/health/ready" => {
            let store = store.clone();
            // status() reads drive states and metadata: keep it off the executor.
            let status = ctx::spawn(move || store.status()).await.ok();
            match status {
                Some(s) if s.writable && s.degraded => {
                    let out: Vec<String> = s
                        .drives
                        .iter()
                        .filter(|d| d.state != engine::DriveState::Online)
                        .map(|d| format!("drive {} {:?}", d.index, d.state).to_lowercase())
                        .collect();
                    // Still ready: taking it out of a balancer would refuse writes that
                    // the store takes. The body says what is missing.
                    let text = format!(
                        "degraded: {}; writes go on with less redundancy\n",
                        out.join(", ")
                    );
                    (StatusCode::OK, text)
                }
                Some(s) if s.writable => (StatusCode::OK, "ok\n".to_string()),
                _ => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store is not writable\n".to_string(),
                ),
            }
        }
        "/health/site" => {
            let store = store.clone();
            match ctx::spawn(move || store.site_health()).await {
                Ok(Ok(None)) => (StatusCode::OK, "no site group\n".to_string()),
                Ok(Ok(Some(h))) => site_health(&h),
                _ => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the site group cannot be read\n".to_string(),
                ),
            }
        }
        _ => return None,
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    Some(resp)
}

/// `/health/site`: one line per peer; 503 while a peer has waited longer than
/// [`SITE_MAX_LAG_SECS`] for this site's changes (a cut link, a peer down), so that a
/// balancer can prefer the sites in touch with the group.
fn site_health(h: &engine::SiteHealth) -> (StatusCode, String) {
    let mut text = format!("site {}: {} peers\n", h.name, h.peers.len());
    for p in &h.peers {
        text += &format!("{} backlog {} lag {:.1} s\n", p.name, p.backlog, p.lag_secs);
    }
    match h.behind(SITE_MAX_LAG_SECS).is_empty() {
        true => (StatusCode::OK, text),
        false => (StatusCode::SERVICE_UNAVAILABLE, text),
    }
}

/// How long a peer may wait for this site's changes before `/health/site` says this
/// site is out of touch.
const SITE_MAX_LAG_SECS: f64 = 60.0;

/// A request body that fails once the client has sent nothing for `idle`, so a
/// stalled upload frees its connection and temporary data instead of waiting forever.
/// The clock runs only while the handler is waiting for data.
struct IdleBody {
    inner: Incoming,
    idle: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleBody {
    fn new(inner: Incoming, idle: Duration) -> IdleBody {
        IdleBody {
            inner,
            idle,
            waiting: None,
        }
    }
}

impl hyper::body::Body for IdleBody {
    type Data = Bytes;
    type Error = s3s::StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        ctx::mark_body_idle();
                        Poll::Ready(Some(Err(Box::new(errors::BodyIdle))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use crate::bucket_config::to_xml;
    use crate::cors::ATTR_CORS;
    use s3s::dto::{CORSConfiguration, CORSRule};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    /// One HTTP/1.1 exchange on `conn`: the status line, the lowercased head, the body.
    async fn exchange(conn: &mut BufReader<TcpStream>, request: &str) -> (u16, String, String) {
        conn.get_mut().write_all(request.as_bytes()).await.unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if conn.read_line(&mut line).await.unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0; len];
        conn.read_exact(&mut body).await.unwrap();
        (status, head, String::from_utf8(body).unwrap())
    }

    async fn connect(addr: std::net::SocketAddr) -> BufReader<TcpStream> {
        BufReader::new(TcpStream::connect(addr).await.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn preflights_limits_and_keep_alive_through_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let store = engine::Store::open(engine::StoreConfig::new(vec![dir.path().into()])).unwrap();
        store.create_bucket("bkt").unwrap();
        let cors = CORSConfiguration {
            cors_rules: vec![CORSRule {
                allowed_methods: vec!["GET".into()],
                allowed_origins: vec!["https://*.example".into()],
                ..Default::default()
            }],
        };
        store
            .set_bucket_attr("bkt", ATTR_CORS, Some(to_xml(&cors).unwrap()))
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = crate::config::ServerConfig {
            idle_timeout: std::time::Duration::from_secs(30),
            max_connections: None,
            lifecycle: Default::default(),
            listen: addr,
            access_key: "ak".into(),
            secret_key: "sk".into(),
            server_key: [7; 32],
            region: "us-east-1".into(),
            domains: vec!["s3.test".into()],
            live: crate::Live::default(),
            sts_min_duration: 900,
            tls: None,
            allow_insecure_login: false,
            notify_backlog: 1000,
            audit_target: None,
            audit: None,
            anomalies: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(super::serve(cfg, store, listener, async {
            let _ = stopped.await;
        }));

        let mut conn = connect(addr).await;
        let preflight =
            "OPTIONS /bkt/k HTTP/1.1\r\nHost: localhost:1\r\nOrigin: https://a.example\r\n\
                         Access-Control-Request-Method: GET\r\n\r\n";
        let (status, head, _) = exchange(&mut conn, preflight).await;
        assert_eq!(status, 200, "{head}");
        assert!(head.contains("access-control-allow-origin: https://a.example"));
        // Same connection: keep-alive works, and path-style still works with domains set.
        let (status, _, body) = exchange(
            &mut conn,
            "GET /health/live HTTP/1.1\r\nHost: localhost:1\r\n\r\n",
        )
        .await;
        assert_eq!((status, body.as_str()), (200, "ok\n"));
        // Virtual-hosted style, port ignored.
        let vhost =
            "OPTIONS /k HTTP/1.1\r\nHost: bkt.s3.test:9000\r\nOrigin: https://a.example\r\n\
                     Access-Control-Request-Method: GET\r\n\r\n";
        assert_eq!(exchange(&mut conn, vhost).await.0, 200);
        let denied = "OPTIONS /bkt/k HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\
                      Access-Control-Request-Method: PUT\r\n\r\n";
        let (status, _, body) = exchange(&mut conn, denied).await;
        assert_eq!(status, 403);
        assert!(body.contains(
            "<Code>AccessForbidden</Code><Message>CORSResponse: This CORS request is not allowed."
        ));
        assert!(body.contains("<Method>PUT</Method><ResourceType>OBJECT</ResourceType>"));
        // An actual request (here refused for lack of a signature) still gets CORS headers.
        let (status, head, _) = exchange(
            &mut conn,
            "GET /bkt/k HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n\r\n",
        )
        .await;
        assert_eq!(status, 403);
        assert!(head.contains("access-control-allow-origin: https://a.example"));

        // An oversized request head is refused, and the server keeps serving.
        let mut big = connect(addr).await;
        let huge = format!(
            "GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(super::MAX_HEADER_BYTES + 1)
        );
        assert_eq!(exchange(&mut big, &huge).await.0, 431);
        let mut again = connect(addr).await;
        let live = "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(exchange(&mut again, live).await.0, 200);

        stop.send(()).unwrap();
        drop((conn, big, again));
        server.await.unwrap().unwrap();
    }
}
