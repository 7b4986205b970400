//! The store end to end: the real binary, the official AWS SDK, damaged drives, crashes, full disks.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cybs3_tests::{content, cybs3, files_under, Server};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

async fn put(c: &Client, bucket: &str, key: &str, body: Vec<u8>) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn get(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

async fn list_all(c: &Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket(bucket)
            .max_keys(7)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
        token = page.next_continuation_token().map(str::to_string);
        if !page.is_truncated().unwrap_or(false) {
            return keys;
        }
    }
}

fn objects() -> Vec<(String, usize)> {
    [
        0,
        1,
        4096,
        65_536,
        65_537,
        300_000,
        MIB,
        MIB + 3,
        5 * MIB + 7,
    ]
    .iter()
    .enumerate()
    .map(|(i, &len)| (format!("obj/{i:02}-{len}"), len))
    .collect()
}

async fn verify(c: &Client, objects: &[(String, usize)]) {
    for (k, len) in objects {
        assert!(get(c, "data", k).await == content(k, *len), "{k} differs");
    }
    let mut want: Vec<String> = objects.iter().map(|o| o.0.clone()).collect();
    want.sort();
    assert_eq!(list_all(c, "data").await, want, "listing incomplete");
}

fn garble(dir: &Path) {
    for f in files_under(dir) {
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0).max(1) as usize;
        std::fs::write(&f, content(&f.display().to_string(), len)).expect("garble");
    }
}

fn heal_then_fsck_clean(home: &Path) {
    let out = cybs3(home, &["heal", "--json"]);
    assert!(out.status.success(), "heal: {out:?}");
    let out = cybs3(home, &["fsck", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fsck JSON");
    assert!(out.status.success(), "fsck not clean: {report}");
    assert_eq!(report["shards_bad"], 0, "{report}");
    assert_eq!(report["drives_bad"], serde_json::json!([]), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lost_or_garbled_drives_lose_nothing_and_heal_restores_redundancy() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("data").send().await.unwrap();
    let objs = objects();
    for (k, len) in &objs {
        put(&c, "data", k, content(k, *len)).await;
    }
    srv.stop();

    // Two drives removed entirely, then two (others) overwritten with garbage.
    type Damage = fn(&Path);
    let rounds: [(usize, usize, Damage); 2] = [
        (1, 4, |d| std::fs::remove_dir_all(d).unwrap()),
        (0, 5, garble),
    ];
    for (a, b, damage) in rounds {
        damage(&srv.drives[a]);
        damage(&srv.drives[b]);
        srv.start();
        verify(&srv.client(), &objs).await;
        heal_then_fsck_clean(&srv.home);
        srv.stop();
    }

    // Healing restored full redundancy: two *other* drives can go now.
    std::fs::remove_dir_all(&srv.drives[2]).unwrap();
    garble(&srv.drives[3]);
    srv.start();
    verify(&srv.client(), &objs).await;
    heal_then_fsck_clean(&srv.home);
}

/// Put `body` under `key`: in 5 MiB parts through a multipart upload past `PART`, else whole.
async fn put_any(c: &Client, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), String> {
    const PART: usize = 5 * MIB;
    if body.len() <= PART {
        return c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(drop)
            .map_err(|e| e.to_string());
    }
    let id = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .upload_id()
        .unwrap_or_default()
        .to_string();
    let mut done = Vec::new();
    for (i, chunk) in body.chunks(PART).enumerate() {
        let n = i as i32 + 1;
        let part = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .set_e_tag(part.e_tag().map(str::to_string))
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `rounds` times: `writers` tasks put objects of `sizes` (in turn) into `bucket` until
/// the server is SIGKILLed after `pause(round)`; then it restarts and every object put so
/// far and acknowledged must read back whole, and every listed one, acknowledged or not,
/// must be whole too (never partial). Returns the acknowledged objects.
async fn sigkill_rounds(
    srv: &mut Server,
    bucket: &str,
    rounds: u64,
    writers: usize,
    sizes: &'static [usize],
    pause: impl Fn(u64) -> Duration,
) -> Vec<(String, usize)> {
    let mut acked_all: Vec<(String, usize)> = Vec::new();
    for round in 0..rounds {
        let c = srv.client();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..writers)
            .map(|t| {
                let (c, acked, bucket) = (c.clone(), acked.clone(), bucket.to_string());
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("r{round}/t{t}/{i}");
                        let len = sizes[(i + t) % sizes.len()];
                        match put_any(&c, &bucket, &key, content(&key, len)).await {
                            Ok(()) => acked.lock().unwrap().push((key, len)),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(pause(round)).await;
        srv.kill();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
        }
        acked_all.extend(acked.lock().unwrap().drain(..));

        srv.start();
        let c = srv.client();
        let listed = list_all(&c, bucket).await;
        for (k, _) in &acked_all {
            assert!(listed.contains(k), "round {round}: acknowledged {k} lost");
        }
        for k in listed {
            let body = get(&c, bucket, &k).await;
            assert!(
                sizes.contains(&body.len()),
                "round {round}: {k}: partial object of {} bytes",
                body.len()
            );
            assert!(
                body == content(&k, body.len()),
                "round {round}: {k} damaged"
            );
            if let Some((_, len)) = acked_all.iter().find(|(a, _)| *a == k) {
                assert_eq!(body.len(), *len, "round {round}: acknowledged {k} changed");
            }
        }
    }
    assert!(!acked_all.is_empty(), "no upload was acknowledged");
    acked_all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_uploads_keeps_acknowledged_objects_and_leaves_no_orphans() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 3, None);
    srv.start();
    srv.client()
        .create_bucket()
        .bucket("crash")
        .send()
        .await
        .unwrap();
    const SIZES: &[usize] = &[1_000, 70_000, 300_000, 2 * MIB + 5];
    sigkill_rounds(&mut srv, "crash", 6, 6, SIZES, |round| {
        Duration::from_millis(400 + 170 * round)
    })
    .await;

    // Start-up swept every orphan: once all objects are deleted, no shard file may remain.
    let c = srv.client();
    for k in list_all(&c, "crash").await {
        c.delete_object()
            .bucket("crash")
            .key(&k)
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = srv
            .drives
            .iter()
            .flat_map(|d| [files_under(&d.join("data")), files_under(&d.join("tmp"))])
            .flatten()
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "orphaned files remain: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chaos test: 20 SIGKILLs on a 4+2 store during concurrent PUTs from a few bytes to
/// multipart uploads, every acknowledged object checked after each restart, fsck clean
/// at the end. Kept short for CI: the pauses are brief and sizes mostly small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_twenty_sigkills_on_a_4_plus_2_store_lose_no_acknowledged_object() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    srv.client()
        .create_bucket()
        .bucket("chaos")
        .send()
        .await
        .unwrap();
    // Writer 1 starts every round with a two-part multipart upload; every fifth round
    // runs long enough for it to complete, the others kill it midway.
    const SIZES: &[usize] = &[3, 6 * MIB + 11, 900, 65_537, 300_000, 3, 1_500_000];
    let acked = sigkill_rounds(&mut srv, "chaos", 20, 3, SIZES, |round| match round % 5 {
        4 => Duration::from_millis(1000),
        r => Duration::from_millis(120 + 50 * r),
    })
    .await;
    assert!(
        acked.iter().any(|(_, len)| *len > 5 * MIB),
        "no multipart upload was acknowledged"
    );
    let out = cybs3(&srv.home, &["fsck", "--json"]);
    assert!(
        out.status.success(),
        "fsck after 20 SIGKILLs: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_buckets_are_refused_without_harm() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("good").send().await.unwrap();
    put(&c, "good", "keep", content("keep", 100_000)).await;

    let long = "k".repeat(1025);
    for (key, code) in [
        ("a/../b", "InvalidArgument"),
        ("../x", "InvalidArgument"),
        ("x/..", "InvalidArgument"),
        ("nul\0key", "InvalidArgument"),
        (long.as_str(), "KeyTooLongError"),
    ] {
        let err = c
            .put_object()
            .bucket("good")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err(key);
        let svc = err.into_service_error();
        assert_eq!(svc.meta().code(), Some(code), "{key:?}: {svc:?}");
    }

    let err = c
        .get_object()
        .bucket("nosuchbucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchBucket"));
    for name in ["Bad_Name", "ab", "-start", "a..b", "192.168.1.1"] {
        let err = c.create_bucket().bucket(name).send().await.expect_err(name);
        assert_eq!(
            err.into_service_error().meta().code(),
            Some("InvalidBucketName"),
            "{name}"
        );
    }
    let err = c
        .get_object()
        .bucket("good")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_no_such_key());

    assert!(get(&c, "good", "keep").await == content("keep", 100_000));
    assert_eq!(list_all(&c, "good").await, vec!["keep".to_string()]);
}

/// Unmounts a tmpfs when the test ends, however it ends.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_is_a_clear_error_and_keeps_what_was_stored() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs drive needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _unmount = mount_tmpfs(&tmp.path().join("drive0"), "24m");

    let mut srv = Server::new(tmp.path(), 1, None);
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("full").send().await.unwrap();
    let mut stored = Vec::new();
    let mut refusal = None;
    for i in 0..64 {
        let key = format!("o{i}");
        let r = c
            .put_object()
            .bucket("full")
            .key(&key)
            .body(ByteStream::from(content(&key, MIB)))
            .send()
            .await;
        match r {
            Ok(_) => stored.push(key),
            Err(e) => {
                refusal = Some(e.into_service_error());
                break;
            }
        }
    }
    let refusal = refusal.expect("a 24 MiB drive took 64 MiB");
    assert_eq!(
        refusal.meta().code(),
        Some("XCybs3StorageFull"),
        "{refusal:?}"
    );
    assert!(stored.len() >= 10, "only {} objects fit", stored.len());
    for k in &stored {
        assert!(
            get(&c, "full", k).await == content(k, MIB),
            "{k} damaged by the full disk"
        );
    }
    // Freeing space makes the store writable again.
    for k in &stored[..6] {
        c.delete_object()
            .bucket("full")
            .key(k)
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    put(&c, "full", "after", content("after", MIB)).await;
    assert!(get(&c, "full", "after").await == content("after", MIB));
    srv.stop();
}

/// Mounts a tmpfs of `size` on `dir` (created), unmounted when the guard drops.
fn mount_tmpfs(dir: &Path, size: &str) -> Tmpfs {
    std::fs::create_dir_all(dir).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("mount");
    assert!(status.success(), "cannot mount a tmpfs");
    Tmpfs(dir.to_path_buf())
}

fn remount(dir: &Path, options: &str) {
    let status = std::process::Command::new("mount")
        .args(["-o", &format!("remount,{options}")])
        .arg(dir)
        .status()
        .expect("mount -o remount");
    assert!(status.success(), "cannot remount {}", dir.display());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Waits up to `secs` for `done`, polling; panics with `what` and the last status.
async fn wait_for(srv: &Server, secs: u64, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let status = srv.status_json();
        if done(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `fsck --json` through the running server is clean within `secs` (the healer works
/// in the background).
async fn fsck_clean_within(srv: &Server, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = cybs3(&srv.home, &["fsck", "--json"]);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fsck not clean within {secs} s: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn drive_states(status: &serde_json::Value) -> Vec<String> {
    status["drives"]
        .as_array()
        .expect("drives")
        .iter()
        .map(|d| d["state"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_emptied_drive_degrades_writes_and_rejoins_by_itself() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs drive needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Mounted before the server exists, so it is unmounted after the server is gone.
    let _small = mount_tmpfs(&tmp.path().join("drive5"), "12m");
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("full").send().await.unwrap();

    // 2 MiB objects put 512 KiB shards on each drive: drive 5 fills within 24 of them.
    // Every PUT succeeds, before and after.
    let mut stored: Vec<(String, usize)> = Vec::new();
    for i in 0..40 {
        let key = format!("before-full/{i}");
        put(&c, "full", &key, content(&key, 2 * MIB)).await;
        stored.push((key, 2 * MIB));
        if drive_states(&srv.status_json())[5] == "full" {
            break;
        }
    }
    let status = srv.status_json();
    assert_eq!(drive_states(&status)[5], "full", "{status}");
    for (i, len) in [1_000, 300_000, 2 * MIB + 3, 6 * MIB]
        .into_iter()
        .enumerate()
    {
        let key = format!("while-full/{i}");
        put(&c, "full", &key, content(&key, len)).await;
        stored.push((key, len));
    }
    for (k, len) in &stored {
        assert!(get(&c, "full", k).await == content(k, *len), "{k} differs");
    }
    let status = srv.status_json();
    assert_eq!(status["writable"], true, "{status}");
    assert_eq!(status["degraded"], true, "{status}");
    let (code, body) = cybs3_tests::http_get(srv.port, "/health/ready").expect("ready");
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("degraded: drive 5 full"), "{body}");

    // Room again: drive 5 comes back by itself, metadata and missed shards included.
    remount(&srv.drives[5], "size=256m");
    wait_for(&srv, 30, "drive 5 back online", |s| {
        drive_states(s).iter().all(|d| d == "online") && s["degraded"] == false
    })
    .await;
    fsck_clean_within(&srv, 30).await;
    assert_eq!(
        cybs3_tests::http_get(srv.port, "/health/ready").map(|r| r.1),
        Some("ok\n".to_string())
    );

    // A drive emptied under the running server is rebuilt by itself too. The server may
    // start rebuilding it before `rm` is done, so what `rm` then fails to remove is fine.
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("rm -rf {}/*", srv.drives[2].display()))
        .status();
    assert!(!srv.drives[2].join("format.json").exists() || srv.status_json()["degraded"] == true);
    let key = "after-emptied".to_string();
    put(&c, "full", &key, content(&key, 3 * MIB)).await;
    stored.push((key, 3 * MIB));
    wait_for(&srv, 30, "drive 2 back online", |s| {
        drive_states(s).iter().all(|d| d == "online")
    })
    .await;
    fsck_clean_within(&srv, 30).await;
    assert!(srv.drives[2].join("format.json").is_file());
    for (k, len) in &stored {
        assert!(get(&c, "full", k).await == content(k, *len), "{k} differs");
    }
    srv.stop();
}

/// `cybs3 heal --json` and its exit status, parsed.
fn heal_json(home: &Path) -> (Option<i32>, serde_json::Value) {
    let out = cybs3(home, &["heal", "--json"]);
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("heal JSON ({e}): {out:?}"));
    (out.status.code(), report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heal_tells_a_read_only_drive_and_degraded_objects_from_lost_data() {
    if !is_root() {
        eprintln!("skipped: a read-only tmpfs drive needs root (root ignores chmod)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _ro = mount_tmpfs(&tmp.path().join("drive1"), "64m");
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("readonly").send().await.unwrap();
    put(&c, "readonly", "before", content("before", 300_000)).await;
    // Linux refuses a read-only remount while the server has files open for writing.
    srv.stop();
    remount(&srv.drives[1], "ro");
    srv.start();
    let c = srv.client();
    let keys: Vec<String> = (0..10).map(|i| format!("while-ro/{i}")).collect();
    for k in &keys {
        put(&c, "readonly", k, content(k, 300_000)).await;
    }
    for k in keys.iter().chain([&"before".to_string()]) {
        assert!(
            get(&c, "readonly", k).await == content(k, 300_000),
            "{k} differs"
        );
    }

    // Readable from 5 of 6 shards, drive 1 unwritable: degraded, not lost.
    let (code, r) = heal_json(&srv.home);
    assert_eq!(code, Some(3), "{r}");
    assert_eq!(r["unrecoverable"], serde_json::json!([]), "{r}");
    assert_eq!(r["drives_unwritable"], serde_json::json!([1]), "{r}");
    assert_eq!(r["drives_healed"], serde_json::json!([]), "{r}");
    let degraded: Vec<&str> = r["degraded"]
        .as_array()
        .expect("degraded")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(degraded.len(), 10, "{r}");
    for k in &keys {
        assert!(
            degraded.iter().any(|d| d.starts_with(k.as_str())),
            "{k}: {r}"
        );
    }
    let out = cybs3(&srv.home, &["heal"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("drives not writable:   [1]"), "{text}");
    assert!(
        text.contains("degraded: every object is readable"),
        "{text}"
    );

    // Two more shards gone from every object: fewer than 4 of 6 is data lost.
    for d in [0, 2] {
        for f in files_under(&srv.drives[d].join("data")) {
            std::fs::remove_file(f).unwrap();
        }
    }
    let (code, r) = heal_json(&srv.home);
    assert_eq!(code, Some(4), "{r}");
    assert_eq!(r["unrecoverable"].as_array().map(Vec::len), Some(10), "{r}");
    srv.kill();
}

#[test]
fn server_cli_records_layout_credentials_and_refuses_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let port = cybs3_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let drives = format!("{0}/a,{0}/b,{0}/c", home.display());
    let out = std::process::Command::new(cybs3_tests::bin())
        .args([
            "server", "start", "--detach", "--listen", &listen, "--drives", &drives,
        ])
        .env("CYBS3_HOME", home)
        .env("CYBS3_ROOT_USER", "rootuser")
        .env("CYBS3_ROOT_PASSWORD", "rootsecret123")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cybs3_tests::http_status(port, "/health/live"), Some(200));
    assert_eq!(cybs3_tests::http_status(port, "/health/ready"), Some(200));
    // Unauthenticated S3 is refused.
    assert_eq!(cybs3_tests::http_status(port, "/"), Some(403));

    let out = cybs3(home, &["server", "status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["running"], true);
    assert_eq!(s["ec"], "2+1");
    assert_eq!(s["root_access_key"], "rootuser");
    assert_eq!(s["root_secret_key"], "rootsecret123");
    assert_eq!(s["drives"].as_array().unwrap().len(), 3);
    let creds = home.join("store/credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(creds).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // A second start on the same store says it is running.
    let out = cybs3(home, &["server", "start", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));

    assert!(cybs3(home, &["server", "stop"]).status.success());
    assert_eq!(cybs3_tests::http_status(port, "/health/live"), None);
    let out = cybs3(home, &["server", "status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["running"], false);

    // The layout is fixed at first start.
    let out = cybs3(
        home,
        &["server", "start", "--ec", "1+2", "--listen", &listen],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fixed at 2+1"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    // Usage errors exit 2.
    assert_eq!(
        cybs3(home, &["server", "start", "--no-such-flag"])
            .status
            .code(),
        Some(2)
    );
    // Stopping a stopped server is not an error.
    assert!(cybs3(home, &["server", "stop"]).status.success());
}

/// `stat -c %a` of every directory and file under `dir`, `dir` included.
fn modes_under(dir: &Path) -> Vec<(String, String)> {
    let out = std::process::Command::new("find")
        .arg(dir)
        .args(["-exec", "stat", "-c", "%a %n", "{}", "+"])
        .output()
        .expect("find | stat");
    assert!(out.status.success(), "stat: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (mode, name) = l.split_once(' ').unwrap();
            (mode.to_string(), name.to_string())
        })
        .collect()
}

fn assert_private(drives: &[std::path::PathBuf]) {
    for d in drives {
        let modes = modes_under(d);
        assert!(
            modes.len() > 260,
            "{}: only {} entries",
            d.display(),
            modes.len()
        );
        for (mode, name) in modes {
            let want = if Path::new(&name).is_dir() {
                "700"
            } else {
                "600"
            };
            assert_eq!(mode, want, "{name} is {mode}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_are_private_to_the_server_user_and_old_stores_are_tightened() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("data").send().await.unwrap();
    put(&c, "data", "small", content("small", 1000)).await;
    put(&c, "data", "large", content("large", 3 * MIB)).await;
    srv.stop();
    assert_private(&srv.drives);

    // A store made before the rule: everything readable by every local user.
    for d in &srv.drives {
        let ok = std::process::Command::new("chmod")
            .args(["-R", "a+rX"])
            .arg(d)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
    assert!(modes_under(&srv.drives[0]).iter().any(|(m, _)| m == "644"));
    srv.start();
    assert_private(&srv.drives);
    assert!(get(&srv.client(), "data", "large").await == content("large", 3 * MIB));
    srv.stop();
}

/// Bytes allocated on disk for every file under the drives.
fn disk_bytes(drives: &[std::path::PathBuf]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    drives
        .iter()
        .flat_map(|d| files_under(d))
        .map(|f| std::fs::metadata(f).map(|m| m.blocks() * 512).unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_take_k_plus_m_over_k_of_their_size_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 6, Some("4+2"));
    srv.start();
    let c = srv.client();
    c.create_bucket().bucket("data").send().await.unwrap();
    srv.stop();
    let empty = disk_bytes(&srv.drives);
    srv.start();
    let c = srv.client();
    let count = 300;
    let size = |i: usize| 1024 + (i * 7919) % (63 * 1024 + 1);
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                let key = format!("small/{i:04}");
                put(&c, "data", &key, content(&key, size(i))).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for i in (0..count).step_by(37) {
        let key = format!("small/{i:04}");
        assert!(
            get(&c, "data", &key).await == content(&key, size(i)),
            "{key}"
        );
    }
    srv.stop();

    let raw: u64 = (0..count).map(|i| size(i) as u64).sum();
    let used = disk_bytes(&srv.drives) - empty;
    // (K+M)/K of the bytes, plus per object and drive its records (versions, listing)
    // and the rounding of its shard to LMDB pages: at most 8 KiB.
    let bound = raw * 3 / 2 + count as u64 * 6 * 8192;
    println!(
        "{used} bytes on disk for {raw} bytes of objects: {:.2}x",
        used as f64 / raw as f64
    );
    assert!(
        used <= bound,
        "{used} bytes on disk for {raw} bytes of objects: {:.2}x, bound {:.2}x",
        used as f64 / raw as f64,
        bound as f64 / raw as f64
    );

    // fsck verifies each of them, shard by shard.
    let out = cybs3(&srv.home, &["fsck", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fsck JSON");
    assert!(out.status.success(), "fsck: {report}");
    assert_eq!(report["data_checked"], count, "{report}");
    assert_eq!(report["shards_checked"], count * 6, "{report}");
}
