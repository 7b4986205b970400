//! The server's metrics, in Prometheus' text format at `GET /metrics` on the S3 port:
//! requests ([`requests`]), drives, the scanner and healing, buckets, the work queue's
//! backlog, the KMS and the process ([`process`]). Counters end in `_total`, values are
//! in base units, and no label holds an object key.
//!
//! A scrape carries `Authorization: Bearer TOKEN`, the token from `cybs3 admin metrics
//! token` (only its SHA-256 is stored), or nothing when the server runs with
//! `--metrics-public`. S3 requests never carry a bearer token, and a bucket named
//! `metrics` is still reached by signed requests: only a query-less `GET /metrics` with
//! a bearer token, or with no credentials at all, is a scrape.

mod process;
mod requests;
mod text;

use crate::ctx;
use engine::Store;
use hyper::{HeaderMap, Method, Response, StatusCode};
use requests::Requests;
pub(crate) use requests::{Finished, InFlight};
use s3s::Body;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use text::{Exposition, Kind};

/// Where the token's digest is kept (a server record).
const NS: &str = "metrics";
const TOKEN: &str = "token";

/// The metrics of one server, shared by its connections.
#[derive(Clone)]
pub struct Metrics(Arc<Shared>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("public", &self.0.public.load(Relaxed))
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    requests: Requests,
    /// Scrapes need no token (`--metrics-public`); changed live by `server config set`.
    public: AtomicBool,
}

impl Metrics {
    pub fn new(public: bool) -> Metrics {
        Metrics(Arc::new(Shared {
            requests: Requests::default(),
            public: AtomicBool::new(public),
        }))
    }

    /// Open or close scraping without a token, at once.
    pub fn set_public(&self, on: bool) {
        self.0.public.store(on, Relaxed);
    }

    /// A request starts; it ends when the guard drops.
    pub(crate) fn start(&self) -> InFlight {
        Requests::start(&self.0)
    }

    pub(crate) fn record(&self, f: &Finished) {
        self.0.requests.record(f);
    }

    /// Whether this request is a scrape rather than an S3 request: a bearer token, or
    /// no credentials at all while scrapes are open or no bucket `metrics` exists (so
    /// that a scraper without its token is told how to get one).
    pub(crate) fn is_scrape(
        &self,
        store: &Store,
        method: &Method,
        uri: &hyper::Uri,
        headers: &HeaderMap,
    ) -> bool {
        if (method != Method::GET && method != Method::HEAD)
            || uri.path() != "/metrics"
            || uri.query().is_some()
        {
            return false;
        }
        match headers.get(hyper::header::AUTHORIZATION) {
            Some(v) => v.as_bytes().starts_with(b"Bearer "),
            None => self.0.public.load(Relaxed) || store.bucket("metrics").is_err(),
        }
    }

    /// Answer a scrape: the document, or 401 without the right token.
    pub(crate) async fn scrape(&self, store: &Store, headers: &HeaderMap) -> Response<Body> {
        let bearer = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_string());
        let (me, store) = (self.clone(), store.clone());
        let answer = ctx::spawn(move || -> engine::Result<Option<String>> {
            let open = me.0.public.load(Relaxed) && bearer.is_none();
            if !open && !token_matches(&store, bearer.as_deref())? {
                return Ok(None);
            }
            Ok(Some(me.render(&store)))
        })
        .await;
        let (status, body, kind) = match answer {
            Ok(Ok(Some(text))) => (StatusCode::OK, text, "text/plain; version=0.0.4; charset=utf-8"),
            Ok(Ok(None)) => (
                StatusCode::UNAUTHORIZED,
                "metrics need `Authorization: Bearer TOKEN` with a token from `cybs3 admin metrics token` (or a server started with --metrics-public)\n".into(),
                "text/plain; charset=utf-8",
            ),
            Ok(Err(e)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the metrics: {e}\n"),
                "text/plain; charset=utf-8",
            ),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the metrics: {e}\n"),
                "text/plain; charset=utf-8",
            ),
        };
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            kind.parse().expect("a header value"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                hyper::header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header value"),
            );
        }
        resp
    }

    /// The whole document (reads the store: run it off the async threads).
    pub fn render(&self, store: &Store) -> String {
        let mut e = Exposition::default();
        e.family("cybs3_build_info", Kind::Gauge, "The server's version.");
        e.sample(
            "cybs3_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        self.0.requests.write(&mut e);
        drives(&mut e, store);
        scanner(&mut e, store);
        buckets(&mut e, store);
        backlog(&mut e, store);
        kms(&mut e, store);
        process::write(&mut e);
        e.finish()
    }
}

/// A new scrape token, replacing the one before; only its digest is kept.
pub fn new_token(store: &Store) -> engine::Result<String> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    store.set_server_record(NS, TOKEN, Some(Sha256::digest(token.as_bytes()).to_vec()))?;
    Ok(token)
}

fn token_matches(store: &Store, bearer: Option<&str>) -> engine::Result<bool> {
    let (Some(bearer), Some(kept)) = (bearer, store.server_record(NS, TOKEN)?) else {
        return Ok(false);
    };
    // Digests are compared, so the time taken says nothing about the token.
    Ok(Sha256::digest(bearer.as_bytes()).as_slice() == kept.as_slice())
}

fn drives(e: &mut Exposition, store: &Store) {
    let drives = store.drives();
    let label = |pool: &str, d: &engine::DriveStatus| {
        (pool.to_string(), d.index.to_string(), d.path.clone())
    };
    e.family(
        "cybs3_drive_state",
        Kind::Gauge,
        "1 for each drive's state: online, stale (catching up), full or faulty.",
    );
    for (pool, d) in &drives {
        let (pool, index, path) = label(pool, d);
        let now = match d.state {
            engine::DriveState::Online => "online",
            engine::DriveState::Stale => "stale",
            engine::DriveState::Full => "full",
            engine::DriveState::Faulty => "faulty",
        };
        for state in ["online", "stale", "full", "faulty"] {
            let on = state == now;
            e.sample(
                "cybs3_drive_state",
                &[
                    ("pool", &pool),
                    ("drive", &index),
                    ("path", &path),
                    ("state", state),
                ],
                f64::from(u8::from(on)),
            );
        }
    }
    type Of = fn(&engine::DriveStatus) -> Option<f64>;
    let families: [(&str, Kind, &str, Of); 9] = [
        (
            "cybs3_drive_total_bytes",
            Kind::Gauge,
            "Size of the drive's filesystem.",
            |d| d.total_bytes.map(|v| v as f64),
        ),
        (
            "cybs3_drive_free_bytes",
            Kind::Gauge,
            "Free bytes on the drive's filesystem.",
            |d| d.free_bytes.map(|v| v as f64),
        ),
        (
            "cybs3_drive_used_bytes",
            Kind::Gauge,
            "Used bytes on the drive's filesystem.",
            |d| Some(d.total_bytes?.saturating_sub(d.free_bytes?) as f64),
        ),
        (
            "cybs3_drive_reads_total",
            Kind::Counter,
            "Shard blocks read from the drive.",
            |d| Some(d.io.reads as f64),
        ),
        (
            "cybs3_drive_read_errors_total",
            Kind::Counter,
            "Shard reads that found a block missing, short or failing its checksum.",
            |d| Some(d.io.read_errors as f64),
        ),
        (
            "cybs3_drive_read_seconds_total",
            Kind::Counter,
            "Time spent reading shards (divide by reads for the mean latency).",
            |d| Some(d.io.read_ns as f64 / 1e9),
        ),
        (
            "cybs3_drive_writes_total",
            Kind::Counter,
            "Shard blocks and shard files written to the drive.",
            |d| Some(d.io.writes as f64),
        ),
        (
            "cybs3_drive_write_errors_total",
            Kind::Counter,
            "Shard writes that failed.",
            |d| Some(d.io.write_errors as f64),
        ),
        (
            "cybs3_drive_write_seconds_total",
            Kind::Counter,
            "Time spent writing and syncing shards.",
            |d| Some(d.io.write_ns as f64 / 1e9),
        ),
    ];
    for (name, kind, help, of) in families {
        e.family(name, kind, help);
        for (pool, d) in &drives {
            if let Some(v) = of(d) {
                let (pool, index, path) = label(pool, d);
                e.sample(
                    name,
                    &[("pool", &pool), ("drive", &index), ("path", &path)],
                    v,
                );
            }
        }
    }
}

fn scanner(e: &mut Exposition, store: &Store) {
    let s = store.scan_status();
    let secs = |ns: u64| ns as f64 / 1e9;
    e.single(
        "cybs3_scan_passes_total",
        Kind::Counter,
        "Passes over every shard (the scanner's, heal and fsck) finished.",
        s.passes as f64,
    );
    e.single(
        "cybs3_scan_running",
        Kind::Gauge,
        "1 while a pass runs.",
        f64::from(u8::from(s.running)),
    );
    e.single(
        "cybs3_scan_running_seconds",
        Kind::Gauge,
        "How long the pass under way has run (0 when none).",
        if s.running {
            (now_ns().saturating_sub(s.running_since_ns)) as f64 / 1e9
        } else {
            0.0
        },
    );
    e.single(
        "cybs3_scan_last_end_timestamp_seconds",
        Kind::Gauge,
        "When the last pass ended (0: none yet).",
        secs(s.last_end_ns),
    );
    e.single(
        "cybs3_scan_last_duration_seconds",
        Kind::Gauge,
        "How long the last pass took.",
        secs(s.last_ns),
    );
    e.single(
        "cybs3_scan_last_checked",
        Kind::Gauge,
        "Pieces of data the last pass verified.",
        s.last_data_checked as f64,
    );
    e.single(
        "cybs3_heal_shards_bad_total",
        Kind::Counter,
        "Shards passes found missing or damaged.",
        s.shards_bad as f64,
    );
    e.single(
        "cybs3_heal_shards_healed_total",
        Kind::Counter,
        "Shards passes rewrote.",
        s.shards_healed as f64,
    );
    e.single(
        "cybs3_heal_backlog",
        Kind::Gauge,
        "Data that reads found damaged, waiting to be healed.",
        s.heal_backlog as f64,
    );
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn buckets(e: &mut Exposition, store: &Store) {
    // The usage counters: one record per bucket, class and day, never a walk.
    let usage = store.bucket_usage().unwrap_or_default();
    type Of = fn(&engine::Tally) -> i64;
    let families: [(&str, &str, Of); 6] = [
        (
            "cybs3_bucket_objects",
            "Current objects in the bucket (not delete markers).",
            |t| t.objects,
        ),
        (
            "cybs3_bucket_versions",
            "Versions stored in the bucket, current or not (not delete markers).",
            |t| t.versions,
        ),
        (
            "cybs3_bucket_delete_markers",
            "Delete markers in the bucket.",
            |t| t.delete_markers,
        ),
        (
            "cybs3_bucket_bytes",
            "Bytes of every version stored in the bucket.",
            |t| t.version_bytes,
        ),
        (
            "cybs3_bucket_raw_bytes",
            "Bytes the bucket's versions take on the drives, parity included.",
            |t| t.version_raw,
        ),
        (
            "cybs3_bucket_uploads",
            "Multipart uploads started and neither completed nor aborted.",
            |t| t.uploads,
        ),
    ];
    for (name, help, of) in families {
        e.family(name, Kind::Gauge, help);
        for (bucket, t) in &usage {
            e.sample(name, &[("bucket", bucket)], of(t) as f64);
        }
    }
}

fn backlog(e: &mut Exposition, store: &Store) {
    let backlog = store.backlog().unwrap_or_default();
    e.family("cybs3_queue_tasks", Kind::Gauge, "Work waiting in the durable queue, by kind (events, replication, site, lifecycle, remote).");
    for b in &backlog {
        e.sample("cybs3_queue_tasks", &[("kind", b.kind)], b.queued as f64);
    }
    e.family(
        "cybs3_queue_dead_letters",
        Kind::Gauge,
        "Work given up on, by kind.",
    );
    for b in &backlog {
        e.sample(
            "cybs3_queue_dead_letters",
            &[("kind", b.kind)],
            b.dead as f64,
        );
    }
}

fn kms(e: &mut Exposition, store: &Store) {
    let keys = store.kms_keys();
    e.family(
        "cybs3_kms_operations_total",
        Kind::Counter,
        "Data keys wrapped and unwrapped by each KMS key since the server started.",
    );
    for k in &keys {
        e.sample(
            "cybs3_kms_operations_total",
            &[("key", &k.name), ("operation", "wrap")],
            k.wrapped as f64,
        );
        e.sample(
            "cybs3_kms_operations_total",
            &[("key", &k.name), ("operation", "unwrap")],
            k.unwrapped as f64,
        );
    }
}
