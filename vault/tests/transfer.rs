//! The transfer engine against a real cybs3 S3 server running in this process.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use cybs3_vault::crypto::{FileSecrets, Identity, Opener, Sealer, CHUNK};
use cybs3_vault::download_file::DownloadFile;
use cybs3_vault::transfer::{
    FileSource, Pin, Progress, Resume, SealedSource, Sink, Source, Transfers, UploadOutcome,
};
use cybs3_vault::S3Target;
use tempfile::TempDir;
use tokio::sync::oneshot;

const MIB: u64 = 1024 * 1024;
const BUCKET: &str = "bkt";

/// A cybs3 server on a free port over a one-drive store, with bucket `bkt`.
struct Server {
    client: aws_sdk_s3::Client,
    listen: SocketAddr,
    dir: TempDir,
    _stop: oneshot::Sender<()>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store =
            engine::Store::open(engine::StoreConfig::new(vec![dir.path().join("drive")])).unwrap();
        store.create_bucket(BUCKET).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listen = listener.local_addr().unwrap();
        let cfg = s3d::ServerConfig {
            listen,
            access_key: "transfer-test".into(),
            secret_key: "transfer-test-secret".into(),
            server_key: [7; 32],
            region: "us-east-1".into(),
            domains: vec![],
            live: s3d::Live::default(),
            sts_min_duration: 900,
            tls: None,
            allow_insecure_login: false,
            notify_backlog: 1000,
            idle_timeout: std::time::Duration::from_secs(30),
            max_connections: None,
            lifecycle: Default::default(),
            audit_target: None,
            audit: None,
            anomalies: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(s3d::serve(cfg, store, listener, async {
            let _ = stopped.await;
        }));
        let target = S3Target::new(
            &format!("http://{listen}"),
            "transfer-test",
            "transfer-test-secret",
        );
        Server {
            client: target.client(),
            listen,
            dir,
            _stop: stop,
        }
    }

    /// Small parts, so multipart paths run on small test files.
    fn transfers(&self) -> Transfers {
        let mut t = Transfers::new(self.client.clone(), self.journal_dir());
        t.part_size = 5 * MIB;
        t.multipart_threshold = 5 * MIB;
        t.jobs = 4;
        t
    }

    /// Default transfers through `proxy`, which forwards to this server.
    fn transfers_via(&self, proxy: SocketAddr) -> Transfers {
        let target = S3Target::new(
            &format!("http://{proxy}"),
            "transfer-test",
            "transfer-test-secret",
        );
        Transfers::new(target.client(), self.journal_dir())
    }

    fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    async fn pending_uploads(&self, key: &str) -> usize {
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        out.uploads()
            .iter()
            .filter(|u| u.key() == Some(key))
            .count()
    }

    /// Downloads `[start, end)` of `key` through a file sink.
    async fn download(&self, t: &Transfers, key: &str, start: u64, end: Option<u64>) -> Vec<u8> {
        let path = self.dir.path().join("download");
        // Size unknown here: no preallocation, and the page cache only.
        let sink = DownloadFile::create(&path, 0).unwrap();
        let download = t.download(BUCKET, key, start, end, Arc::new(sink), counter().0);
        sendable(download).await.unwrap();
        std::fs::read(&path).unwrap()
    }
}

/// Callers spawn transfers on the runtime, so their futures must be `Send`.
fn sendable<F: std::future::Future + Send>(future: F) -> F {
    future
}

fn data(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A progress callback and the sum of what it was told.
fn counter() -> (Progress, Arc<AtomicU64>) {
    let total = Arc::new(AtomicU64::new(0));
    let sum = total.clone();
    let progress: Progress = Arc::new(move |n| {
        sum.fetch_add(n, Ordering::Relaxed);
    });
    (progress, total)
}

/// In-memory bytes that fail to read at or after `fail_from` (a disk error mid-upload).
struct TestSource {
    bytes: Vec<u8>,
    fail_from: u64,
}

impl Source for TestSource {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.fail_from {
            return Err(io::Error::other("simulated disk failure"));
        }
        buf.copy_from_slice(&self.bytes[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
}

fn source(bytes: &[u8], fail_from: u64) -> Arc<dyn Source> {
    Arc::new(TestSource {
        bytes: bytes.to_vec(),
        fail_from,
    })
}

fn resume(id: &str) -> Resume {
    Resume {
        id: id.into(),
        extra: serde_json::json!({"secrets": "opaque to the engine"}),
    }
}

async fn upload(
    t: &Transfers,
    key: &str,
    source: Arc<dyn Source>,
    resume: Option<Resume>,
) -> cybs3_vault::Result<UploadOutcome> {
    t.upload(BUCKET, key, source, &[], None, resume, counter().0)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_round_trip_with_metadata() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let content = data(1000, 1);
    let path = srv.file("small", &content);
    let meta = [("color".to_string(), "blue".to_string())];
    let (progress, sent) = counter();
    let out = t
        .upload(
            BUCKET,
            "small",
            Arc::new(FileSource::open(&path).unwrap()),
            &meta,
            Some("text/plain"),
            Some(resume("small")),
            progress,
        )
        .await
        .unwrap();
    assert_eq!((out.parts, out.resumed_parts), (1, 0));
    assert_eq!(sent.load(Ordering::Relaxed), 1000);
    assert!(
        !srv.journal_dir().join("small.json").exists(),
        "a single PUT needs no journal"
    );

    let sink = srv.dir.path().join("small.out");
    let (progress, received) = counter();
    let info = t
        .download(
            BUCKET,
            "small",
            0,
            None,
            Arc::new(DownloadFile::create(&sink, 0).unwrap()),
            progress,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&sink).unwrap(), content);
    assert_eq!(received.load(Ordering::Relaxed), 1000);
    assert_eq!(info.size, 1000);
    assert_eq!(info.etag.as_deref(), Some(out.etag.as_str()));
    assert_eq!(info.metadata.get("color").map(String::as_str), Some("blue"));
    assert_eq!(info.content_type.as_deref(), Some("text/plain"));
    assert!(info.last_modified.is_some());

    let head = t.head(BUCKET, "small").await.unwrap().unwrap();
    assert_eq!((head.size, head.etag), (1000, info.etag));
    assert_eq!(head.metadata, info.metadata);
    assert!(t.head(BUCKET, "missing").await.unwrap().is_none());
    let err = t
        .download(
            BUCKET,
            "missing",
            0,
            None,
            Arc::new(DownloadFile::create(&sink, 0).unwrap()),
            counter().0,
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}") == "download of bkt/missing failed: no such object",
        "{err:#}"
    );

    // Empty objects, and ranges ending at the object's end, have nothing to fetch.
    upload(&t, "empty", source(&[], u64::MAX), None)
        .await
        .unwrap();
    assert_eq!(srv.download(&t, "empty", 0, None).await, b"");
    assert_eq!(srv.download(&t, "small", 1000, None).await, b"");
    assert_eq!(srv.download(&t, "small", 10, Some(10)).await, b"");
    for (start, end) in [(0, Some(1001)), (1001, None), (5, Some(4))] {
        let err = t
            .download(
                BUCKET,
                "small",
                start,
                end,
                Arc::new(DownloadFile::create(&sink, 0).unwrap()),
                counter().0,
            )
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("but the object has 1000 bytes"),
            "{err:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_up_in_parallel_parts_and_come_back_in_ranges() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let content = data(40 * MIB, 2);
    let path = srv.file("large", &content);
    let (progress, sent) = counter();
    let meta = [("k".to_string(), "v".to_string())];
    let upload = t.upload(
        BUCKET,
        "large",
        Arc::new(FileSource::open(&path).unwrap()),
        &meta,
        None,
        None,
        progress,
    );
    let out = sendable(upload).await.unwrap();
    assert_eq!((out.parts, out.resumed_parts), (8, 0));
    assert!(out.etag.ends_with("-8\""), "multipart ETag {}", out.etag);
    assert_eq!(sent.load(Ordering::Relaxed), 40 * MIB);

    let whole = srv.download(&t, "large", 0, None).await;
    assert!(whole == content, "the download differs from the upload");
    let (start, end) = (7 * MIB + 3, 23 * MIB + 5);
    let range = srv.download(&t, "large", start, Some(end)).await;
    assert!(
        range == content[start as usize..end as usize],
        "sub-range differs"
    );
    let tail = srv.download(&t, "large", 39 * MIB + 17, None).await;
    assert!(tail == content[(39 * MIB + 17) as usize..], "tail differs");

    let info = t.head(BUCKET, "large").await.unwrap().unwrap();
    assert_eq!(info.size, 40 * MIB);
    assert_eq!(info.metadata.get("k").map(String::as_str), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_uploads_decrypt_through_fetched_ranges() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let plain = data(12 * MIB + 12345, 3);
    let path = srv.file("plain", &plain);
    let identity = Identity::generate();
    let sealer = Sealer::new(
        &identity.to_public(),
        &FileSecrets::random(),
        plain.len() as u64,
        None,
    );
    let sealed = SealedSource::new(FileSource::open(&path).unwrap(), sealer);
    let cipher_len = sealed.len();
    let out = upload(&t, "sealed", Arc::new(sealed), None).await.unwrap();
    assert_eq!(out.parts, 3);

    let info = t.head(BUCKET, "sealed").await.unwrap().unwrap();
    assert_eq!(info.size, cipher_len);
    let pin = Pin {
        etag: info.etag.as_deref(),
        version: None,
    };
    let prefix = Arc::new(Mutex::new(Bytes::new()));
    let keep = prefix.clone();
    t.fetch_ranges(
        BUCKET,
        "sealed",
        pin,
        vec![(0, 1024)],
        1024,
        Arc::new(move |_, bytes| {
            *keep.lock().unwrap() = Bytes::copy_from_slice(bytes);
            Ok(())
        }),
    )
    .await
    .unwrap();
    let opener = Opener::parse(&prefix.lock().unwrap(), &[identity])
        .unwrap()
        .expect("the header fits in 1 KiB");
    let plain_len = opener.plain_len(info.size).unwrap();
    assert_eq!(plain_len, plain.len() as u64);

    // Chunk-aligned ranges of about a MiB, streamed in pieces of three chunks, each
    // opened on a worker as it arrives.
    let ranges = (0..plain_len)
        .step_by(MIB as usize)
        .map(|at| {
            let (start, end, _) = opener.cipher_range(at, (at + MIB).min(plain_len), info.size);
            (start, end)
        })
        .collect();
    let sealed_chunk = CHUNK + 16;
    let opener = Arc::new(opener);
    let opened = Arc::new(Mutex::new(BTreeMap::new()));
    let (into, size) = (opened.clone(), info.size);
    t.fetch_ranges(
        BUCKET,
        "sealed",
        pin,
        ranges,
        3 * sealed_chunk as usize,
        Arc::new(move |start, cipher| {
            let first = (start - opener.payload_start()) / sealed_chunk;
            let plain = opener.open_chunks(first, cipher, size)?;
            into.lock().unwrap().insert(first * CHUNK, plain);
            Ok(())
        }),
    )
    .await
    .unwrap();
    let decrypted: Vec<u8> = opened.lock().unwrap().values().flatten().copied().collect();
    assert!(decrypted == plain, "decrypted content differs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_upload_resumes_its_parts() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let content = data(30 * MIB + 7, 4);
    let err = upload(
        &t,
        "resumed",
        source(&content, 15 * MIB),
        Some(resume("job-1")),
    )
    .await
    .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.starts_with("upload of bkt/resumed failed at part ")
            && message.ends_with(": reading the source: simulated disk failure"),
        "{message}"
    );
    let journal = srv.journal_dir().join("job-1.json");
    let mode = std::fs::metadata(&journal).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the journal may hold secrets");
    assert_eq!(
        t.journaled("job-1"),
        Some(serde_json::json!({"secrets": "opaque to the engine"}))
    );
    assert_eq!(t.journaled("other"), None);
    assert_eq!(srv.pending_uploads("resumed").await, 1);

    let (progress, sent) = counter();
    let out = t
        .upload(
            BUCKET,
            "resumed",
            source(&content, u64::MAX),
            &[],
            None,
            Some(resume("job-1")),
            progress,
        )
        .await
        .unwrap();
    assert_eq!(out.parts, 7);
    assert!(out.resumed_parts >= 3, "resumed {}", out.resumed_parts);
    assert_eq!(sent.load(Ordering::Relaxed), content.len() as u64);
    assert!(srv.download(&t, "resumed", 0, None).await == content);
    assert!(!journal.exists(), "the journal is removed on completion");
    assert_eq!(srv.pending_uploads("resumed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_content_or_a_vanished_upload_starts_over() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let old = data(20 * MIB, 5);
    let new = data(20 * MIB, 6);
    upload(&t, "changed", source(&old, 10 * MIB), Some(resume("job-2")))
        .await
        .unwrap_err();
    let out = upload(&t, "changed", source(&new, u64::MAX), Some(resume("job-2")))
        .await
        .unwrap();
    assert_eq!((out.parts, out.resumed_parts), (4, 0));
    assert!(srv.download(&t, "changed", 0, None).await == new);

    upload(&t, "gone", source(&old, 10 * MIB), Some(resume("job-3")))
        .await
        .unwrap_err();
    let uploads = srv
        .client
        .list_multipart_uploads()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let pending = &uploads.uploads()[0];
    srv.client
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(pending.key().unwrap())
        .upload_id(pending.upload_id().unwrap())
        .send()
        .await
        .unwrap();
    let out = upload(&t, "gone", source(&old, u64::MAX), Some(resume("job-3")))
        .await
        .unwrap();
    assert_eq!((out.parts, out.resumed_parts), (4, 0));
    assert!(srv.download(&t, "gone", 0, None).await == old);

    // Different metadata makes a different object: the journaled upload is abandoned,
    // and aborted rather than left holding its parts.
    upload(&t, "meta", source(&old, 10 * MIB), Some(resume("job-4")))
        .await
        .unwrap_err();
    let meta = [("version".to_string(), "2".to_string())];
    let out = t
        .upload(
            BUCKET,
            "meta",
            source(&old, u64::MAX),
            &meta,
            None,
            Some(resume("job-4")),
            counter().0,
        )
        .await
        .unwrap();
    assert_eq!(out.resumed_parts, 0);
    assert_eq!(srv.pending_uploads("meta").await, 0);
    let info = t.head(BUCKET, "meta").await.unwrap().unwrap();
    assert_eq!(info.metadata.get("version").map(String::as_str), Some("2"));

    let err = upload(&t, "bad", source(&old, u64::MAX), Some(resume("../escape")))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("invalid resume id"), "{err:#}");
}

/// Replaces the object while the download is writing its first range.
struct ReplacingSink {
    client: aws_sdk_s3::Client,
    replacement: Vec<u8>,
    replaced: AtomicBool,
}

impl Sink for ReplacingSink {
    fn write_at(&self, _offset: u64, _data: &[u8]) -> io::Result<()> {
        if !self.replaced.swap(true, Ordering::SeqCst) {
            let put = self
                .client
                .put_object()
                .bucket(BUCKET)
                .key("replaced")
                .body(ByteStream::from(self.replacement.clone()))
                .send();
            tokio::runtime::Handle::current()
                .block_on(put)
                .map_err(io::Error::other)?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_fails_when_the_object_is_replaced_midway() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let size = 12 * MIB;
    upload(&t, "replaced", source(&data(size, 7), u64::MAX), None)
        .await
        .unwrap();
    let sink = Arc::new(ReplacingSink {
        client: srv.client.clone(),
        replacement: data(size, 8),
        replaced: AtomicBool::new(false),
    });
    let err = t
        .download(BUCKET, "replaced", 0, None, sink.clone(), counter().0)
        .await
        .unwrap_err();
    assert!(sink.replaced.load(Ordering::SeqCst));
    let message = format!("{err:#}");
    assert!(
        message.starts_with("download of bkt/replaced failed at bytes ")
            && message.ends_with("the object was replaced during the download (its ETag changed)"),
        "{message}"
    );
}

/// A TCP proxy to `upstream` that breaks its first connection off once it has passed
/// `cut` bytes towards the client. Returns its address and the bytes it passed to clients.
async fn breaking_proxy(upstream: SocketAddr, cut: u64) -> (SocketAddr, Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let passed = Arc::new(AtomicU64::new(0));
    let total = passed.clone();
    tokio::spawn(async move {
        for first in std::iter::once(true).chain(std::iter::repeat(false)) {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let passed = passed.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let requests = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
                });
                let limit = if first { cut } else { u64::MAX };
                let (mut sent, mut buf) = (0u64, vec![0u8; 64 << 10]);
                while sent < limit {
                    let n = match from_server.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n.min((limit - sent) as usize),
                    };
                    if to_client.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    sent += n as u64;
                    passed.fetch_add(n as u64, Ordering::SeqCst);
                }
                // Dropping both halves closes the connection, mid-response for the first.
                requests.abort();
            });
        }
    });
    (addr, total)
}

/// A response body that breaks off is asked for again from where it broke, not from the
/// start of its range: what comes down is the object once, plus response headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_body_resumes_where_it_broke() {
    let srv = Server::start().await;
    let t = srv.transfers();
    let size = 12 * MIB;
    let content = data(size, 9);
    upload(&t, "broken", source(&content, u64::MAX), None)
        .await
        .unwrap();
    // The first connection carries the first MiB (the first request), then half a MiB
    // into the range it is reused for.
    let (proxy, passed) = breaking_proxy(srv.listen, 3 * MIB / 2).await;
    let mut t = srv.transfers_via(proxy);
    t.part_size = 5 * MIB;
    t.jobs = 4;
    let path = srv.dir.path().join("broken-download");
    let sink = Arc::new(DownloadFile::create(&path, size).unwrap());
    t.download(BUCKET, "broken", 0, None, sink, counter().0)
        .await
        .unwrap();
    assert!(std::fs::read(&path).unwrap() == content, "content differs");
    let passed = passed.load(Ordering::SeqCst);
    assert!(
        passed > 3 * MIB / 2,
        "the proxy broke nothing off: {passed} bytes"
    );
    assert!(
        passed < size + 64 * 1024,
        "{passed} bytes came down for a {size}-byte object"
    );
}

/// A TCP proxy to `upstream` that keeps a copy of every request byte, and flips the byte
/// at `flip_at` of its first connection's requests when given.
async fn tapping_proxy(
    upstream: SocketAddr,
    flip_at: Option<u64>,
) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tapped = Arc::new(Mutex::new(Vec::new()));
    let requests = tapped.clone();
    tokio::spawn(async move {
        for first in std::iter::once(true).chain(std::iter::repeat(false)) {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let (tapped, flip_at) = (tapped.clone(), flip_at.filter(|_| first));
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                });
                let (mut seen, mut buf) = (0u64, vec![0u8; 64 << 10]);
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    tapped.lock().unwrap().extend_from_slice(&buf[..n]);
                    if let Some(at) = flip_at.filter(|&at| (seen..seen + n as u64).contains(&at)) {
                        buf[(at - seen) as usize] ^= 0x01;
                    }
                    seen += n as u64;
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, requests)
}

/// Bodies go up with SigV4's payload hash or, where the vault turns it off, as
/// `UNSIGNED-PAYLOAD`; either way with a CRC32 that the server checks, so a byte changed
/// in transit is refused and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_bodies_keep_a_checksum_the_server_checks() {
    let srv = Server::start().await;
    let content = data(12 * MIB, 11);
    for sign in [true, false] {
        let (proxy, tapped) = tapping_proxy(srv.listen, None).await;
        let mut t = srv.transfers_via(proxy);
        (t.part_size, t.multipart_threshold, t.sign_payload) = (5 * MIB, 5 * MIB, sign);
        let key = format!("tapped-{sign}");
        upload(&t, &key, source(&content, u64::MAX), None)
            .await
            .unwrap();
        assert!(srv.download(&srv.transfers(), &key, 0, None).await == content);
        let requests = String::from_utf8_lossy(&tapped.lock().unwrap()).to_lowercase();
        let parts = requests.matches("put /bkt/").count();
        assert_eq!(parts, 3, "12 MiB in 5 MiB parts");
        let unsigned = requests
            .matches("x-amz-content-sha256: unsigned-payload")
            .count();
        assert_eq!(unsigned, if sign { 0 } else { parts }, "signed: {sign}");
        assert_eq!(requests.matches("x-amz-checksum-crc32:").count(), parts);

        let (proxy, _) = tapping_proxy(srv.listen, Some(100_000)).await;
        let mut t = srv.transfers_via(proxy);
        t.sign_payload = sign;
        let key = format!("flipped-{sign}");
        let err = upload(&t, &key, source(&content[..MIB as usize], u64::MAX), None)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains(if sign {
                "XAmzContentSHA256Mismatch"
            } else {
                "BadDigest"
            }),
            "signed: {sign}: {err:#}"
        );
        let head = srv
            .client
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await;
        assert!(head.is_err(), "a damaged body was stored (signed: {sign})");
    }
}

/// A listing asked with `metadata=true` brings every object's user metadata, across
/// pages, so a directory's attributes cost no HEADs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_carry_user_metadata() {
    let s = Server::start().await;
    for i in 0..1005 {
        s.client
            .put_object()
            .bucket(BUCKET)
            .key(format!("dir/f{i:04}"))
            .metadata("mode", format!("{}", 0o100600 + i % 8))
            .metadata("mtime", "1700000000.5")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }
    let first = cybs3_vault::listing::page(&s.client, BUCKET, "dir/", Some("/"), None)
        .await
        .unwrap();
    assert_eq!(first.output.contents().len(), 1000);
    let meta = first.metadata.expect("the server answers the extension");
    assert_eq!(meta.len(), 1000);
    assert_eq!(meta["dir/f0003"]["mode"], format!("{}", 0o100603));
    assert_eq!(meta["dir/f0003"]["mtime"], "1700000000.5");
    let token = first.output.next_continuation_token().map(str::to_string);
    let second = cybs3_vault::listing::page(&s.client, BUCKET, "dir/", Some("/"), token)
        .await
        .unwrap();
    let meta = second.metadata.unwrap();
    assert_eq!(meta.len(), 5);
    assert_eq!(meta["dir/f1004"]["mode"], format!("{}", 0o100604));
}
