//! Site replication: three cybs3 servers, each in its own network namespace, linked into
//! one active-active group with `cybs3 admin site add`, written at every site at once,
//! one cut off for a while and back (and another killed meanwhile): every site converges
//! to the same buckets, version history, latest versions, settings and users, and the
//! traffic stops once they have. Any site answers for an object only a peer has (the
//! global namespace), and the health endpoint reports the group.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use common::*;
use cybs3_tests::netns::Sites;
use cybs3_tests::Server;
use std::time::{Duration, Instant};

/// (key, version id, latest, delete marker, etag)
type Listed = (String, String, bool, bool, String);

async fn history(c: &Client, bucket: &str) -> Vec<Listed> {
    let mut all = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let out = c
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap();
        for v in out.versions() {
            all.push((
                v.key().unwrap().into(),
                v.version_id().unwrap().into(),
                v.is_latest().unwrap(),
                false,
                v.e_tag().unwrap_or_default().into(),
            ));
        }
        for m in out.delete_markers() {
            all.push((
                m.key().unwrap().into(),
                m.version_id().unwrap().into(),
                m.is_latest().unwrap(),
                true,
                String::new(),
            ));
        }
        if !out.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_string);
        version_marker = out.next_version_id_marker().map(str::to_string);
    }
    all.sort();
    all
}

/// `admin site status --json` of a site.
fn site_status(srv: &Server) -> serde_json::Value {
    admin(srv, &["admin", "site", "status", "--json"])
}

/// Every peer of every site has an empty backlog.
fn drained(sites: &Sites) -> bool {
    sites.servers.iter().all(|s| {
        let st = site_status(s);
        st["peers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["backlog"] == 0)
    })
}

/// Site `i` writes `n` versions of keys shared by all sites (`k0`…`k9`), of its own
/// keys, and a delete marker now and then.
async fn writes(c: Client, i: usize, round: &str, n: usize) -> usize {
    for j in 0..n {
        let key = match j % 3 {
            0 => format!("k{}", j % 10),
            _ => format!("s{i}/{round}/{j}"),
        };
        let body = format!("site {i} {round} {j}").into_bytes();
        c.put_object()
            .bucket("shared")
            .key(&key)
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
        if j % 7 == 0 {
            c.delete_object()
                .bucket("shared")
                .key(&key)
                .send()
                .await
                .unwrap();
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sites_converge_through_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sites = Sites::start(3, tmp.path());
    let clients: Vec<Client> = sites.servers.iter().map(Server::client).collect();

    // Data from before the group, at two sites: it reaches every site.
    bucket(&clients[0], "before-a").await;
    put(&clients[0], "before-a", "x", b"from a".to_vec()).await;
    bucket(&clients[1], "before-b").await;
    put(&clients[1], "before-b", "y", b"from b".to_vec()).await;

    // One command per new site, all on site 0.
    for i in [1, 2] {
        let s = &sites.servers[i];
        let out = admin(
            &sites.servers[0],
            &[
                "admin",
                "site",
                "add",
                &format!("s{i}"),
                "--endpoint",
                &sites.site_url(i),
                "--access-key",
                &s.access_key,
                "--secret-key",
                &s.secret_key,
                "--as",
                "s0",
                "--json",
            ],
        );
        assert_eq!(out["name"], "s0", "{out}");
    }
    for (i, s) in sites.servers.iter().enumerate() {
        let st = site_status(s);
        assert_eq!(st["name"], format!("s{i}"), "{st}");
        let peers = st["peers"].as_array().unwrap();
        assert_eq!(peers.len(), 2, "every site learns every peer: {st}");
        assert!(peers.iter().all(|p| p["reachable"] == true), "{st}");
    }
    // A second group is not joined behind its back.
    let s1 = &sites.servers[1];
    let again = cybs3_tests::cybs3(
        &sites.servers[2].home,
        &[
            "admin",
            "site",
            "add",
            "s1",
            "--endpoint",
            &sites.site_url(1),
            "--access-key",
            &s1.access_key,
            "--secret-key",
            &s1.secret_key,
        ],
    );
    assert!(!again.status.success(), "{again:?}");

    bucket(&clients[1], "shared").await;
    let (ak, sk) = add_user(&sites.servers[2], "carol", &["--policy", "readwrite"]);
    wait("the bucket and the user everywhere", || async {
        for c in &clients {
            if c.head_bucket().bucket("shared").send().await.is_err() {
                return false;
            }
        }
        true
    })
    .await;

    // Writes at every site at once, then with site 2 cut off, then after it is back.
    let mut written = 0;
    let all = |round: &'static str, n| {
        let jobs: Vec<_> = (0..3)
            .map(|i| tokio::spawn(writes(clients[i].clone(), i, round, n)))
            .collect();
        async move {
            let mut total = 0;
            for j in jobs {
                total += j.await.unwrap();
            }
            total
        }
    };
    written += all("before", 30).await;
    sites.cut(2);
    assert_eq!(sites.probe(0, 2), None, "site 2 is cut off");
    written += all("cut", 30).await;
    // Bucket settings changed on both sides of the cut: the later change wins.
    put_tags(&clients[2], "shared", "side", "cut-off").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    put_tags(&clients[0], "shared", "side", "group").await;
    let cut_status = site_status(&sites.servers[0]);
    let to_s2 = cut_status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "s2")
        .unwrap()
        .clone();
    assert_eq!(to_s2["reachable"], false, "{cut_status}");
    assert!(
        to_s2["backlog"].as_u64().unwrap() > 0,
        "writes wait for the cut site: {cut_status}"
    );
    // A crash of a site with its replication to the cut site pending loses nothing.
    sites.servers[0].kill();
    sites.servers[0].start();
    sites.heal(2);
    written += all("after", 10).await;

    let deadline = Instant::now() + Duration::from_secs(120);
    while !drained(&sites) {
        assert!(
            Instant::now() < deadline,
            "backlogs: {:?}",
            sites.servers.iter().map(site_status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The same history, latest versions and markers everywhere, and no version lost.
    let reference = history(&clients[0], "shared").await;
    let versions = reference.iter().filter(|v| !v.3).count();
    assert_eq!(versions, written, "every write is a version");
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(history(c, "shared").await, reference, "site {i}");
        for (b, k, body) in [("before-a", "x", "from a"), ("before-b", "y", "from b")] {
            assert_eq!(get(c, b, k).await, body.as_bytes(), "site {i}: {b}/{k}");
        }
        let tags = c
            .get_bucket_tagging()
            .bucket("shared")
            .send()
            .await
            .unwrap();
        assert_eq!(
            tags.tag_set()[0].value(),
            "group",
            "site {i}: the later change"
        );
        // The user made at site 2 signs in at every site.
        let carol = cybs3_tests::client_for(&sites.servers[i].endpoint(), &ak, &sk);
        carol
            .list_objects_v2()
            .bucket("shared")
            .send()
            .await
            .unwrap();
    }

    // No loop: once converged, nothing more crosses the links.
    let counted = |s: &Sites| (0..3).map(|i| s.site_traffic_bytes(i)).sum::<u64>();
    let settled = counted(&sites);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = counted(&sites) - settled;
    assert!(
        idle < 4096,
        "{idle} bytes crossed the links once all was sent"
    );
    // And what crossed is bounded by the writes: each version goes once from its site
    // to each of two peers (a few KiB of HTTP each, counted at both ends).
    assert!(
        settled < written as u64 * 2 * 2 * 8192 + (4 << 20),
        "{settled} bytes for {written} writes"
    );
    eprintln!("{written} writes at 3 sites, {settled} bytes on the site links");

    // Health for balancers and `server status`: the group and each peer's queue.
    for (i, srv) in sites.servers.iter().enumerate() {
        let (code, text) = cybs3_tests::http_get_at(&srv.host, srv.port, "/health/site").unwrap();
        assert_eq!(code, 200, "{text}");
        assert!(text.starts_with(&format!("site s{i}: 2 peers")), "{text}");
        let status = srv.status_json();
        assert_eq!(status["site"]["name"], format!("s{i}"), "{status}");
        assert_eq!(status["site"]["peers"].as_array().unwrap().len(), 2);
    }

    // The global namespace: site 0 stops sending to site 1, so what it gets next is
    // only there; site 1 still answers for it, through site 0.
    admin(&sites.servers[0], &["admin", "site", "remove", "s1"]);
    let body = cybs3_tests::content("late", 100_000);
    put(&clients[0], "shared", "late", body.clone()).await;
    let local_only = clients[1]
        .get_object()
        .bucket("shared")
        .key("late")
        .customize()
        .mutate_request(|r| {
            r.headers_mut().insert("x-cybs3-proxied", "1");
        })
        .send()
        .await;
    assert!(local_only.is_err(), "site 1 does not have it itself");
    assert_eq!(get(&clients[1], "shared", "late").await, body);
    let range = clients[1]
        .get_object()
        .bucket("shared")
        .key("late")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(range.content_range(), Some("bytes 10-19/100000"));
    let got = range.body.collect().await.unwrap().into_bytes();
    assert_eq!(&got[..], &body[10..20]);
    let head = clients[1]
        .head_object()
        .bucket("shared")
        .key("late")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(100_000));
    // A key no site has is a plain 404 (a peer asked never asks on).
    assert_eq!(head_status(&clients[1], "shared", "nowhere").await, 404);
}

async fn put_tags(c: &Client, bucket: &str, key: &str, value: &str) {
    use aws_sdk_s3::types::{Tag, Tagging};
    let tag = Tag::builder().key(key).value(value).build().unwrap();
    let tagging = Tagging::builder().tag_set(tag).build().unwrap();
    c.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging)
        .send()
        .await
        .unwrap();
}

async fn wait<F: std::future::Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A vault on both sites of a group (`vaults local` plus `admin site add`): with the
/// first endpoint down, a sync and a mount session go through the other with no failed
/// operation, and `cybs3 test` reports each endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vault_on_two_sites_fails_over() {
    use cybs3_tests::mount::Mounted;
    let tmp = tempfile::tempdir().unwrap();
    let v = cybs3_tests::LocalVault::new();
    let mut b = Server::new(&tmp.path().join("b"), 1, None);
    b.start();
    v.ok(&[
        "admin",
        "site",
        "add",
        "b",
        "--endpoint",
        &b.endpoint(),
        "--access-key",
        &b.access_key,
        "--secret-key",
        &b.secret_key,
        "--as",
        "a",
    ]);
    let (root, root_secret) = v.root_keys();
    let a = cybs3_tests::client_for(&v.endpoint(), &root, &root_secret);
    bucket(&a, "team").await;
    let user: serde_json::Value = serde_json::from_str(&v.ok(&[
        "admin",
        "user",
        "add",
        "dana",
        "--policy",
        "readwrite",
        "--json",
    ]))
    .unwrap();
    let (ak, sk) = (
        user["access_key"].as_str().unwrap(),
        user["secret_key"].as_str().unwrap(),
    );
    let at_b = cybs3_tests::client_for(&b.endpoint(), ak, sk);
    wait("the bucket and the user at site b", || async {
        at_b.head_bucket().bucket("team").send().await.is_ok()
    })
    .await;
    v.ok(&[
        "vaults",
        "add",
        "both",
        "--endpoint",
        &b.endpoint(),
        "--endpoint",
        &v.endpoint(),
        "--bucket",
        "team",
        "--access-key",
        ak,
        "--secret-key",
        sk,
        "--plain",
    ]);
    let report = |out: String| -> Vec<(String, bool)> {
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        (doc["steps"].as_array().unwrap().iter())
            .map(|s| (s["step"].as_str().unwrap().to_string(), s["ok"] == true))
            .collect()
    };
    let all_up = report(v.ok(&["test", "--vault", "both", "--json"]));
    assert!(all_up.iter().all(|(_, ok)| *ok), "{all_up:?}");
    assert_eq!(
        all_up
            .iter()
            .filter(|(s, _)| s.starts_with("endpoint "))
            .count(),
        2
    );

    // The first endpoint goes down.
    b.kill();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..20 {
        std::fs::write(src.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    let out = v.ok(&["sync", "--json", src.to_str().unwrap(), "both:up"]);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["uploaded"], 20, "{out}");
    assert_eq!(summary["summary"]["failed"], 0, "{out}");
    {
        let m = Mounted::new(&v, "both", &[]);
        for i in 0..10 {
            std::fs::write(m.p(&format!("m{i}")), vec![i as u8; 1000]).unwrap();
        }
        for i in 0..10 {
            assert_eq!(
                std::fs::read(m.p(&format!("m{i}"))).unwrap(),
                vec![i as u8; 1000]
            );
        }
        std::fs::remove_file(m.p("m0")).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(m.p("up"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 20);
    }
    assert_eq!(get(&a, "team", "up/f7").await, b"file 7");
    assert_eq!(head_status(&a, "team", "m0").await, 404);
    let one_down = cybs3_tests::cybs3(&v.home, &["test", "--vault", "both", "--json"]);
    let steps = report(String::from_utf8(one_down.stdout).unwrap());
    for (step, ok) in &steps {
        let down = step == &format!("endpoint {}", b.endpoint());
        assert_eq!(*ok, !down, "{steps:?}");
    }
}
