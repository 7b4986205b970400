//! `cybs3 sync` end to end: the real binary against a local server started with
//! `cybs3 vaults local` (an encrypted vault) and, where said, a plain vault on the same
//! server. Files are compared byte for byte (`diff -r`), with their mtimes (nanoseconds)
//! and modes.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use cybs3_tests::{bin, content, cybs3, files_under, LocalVault};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::{self, File, FileTimes};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MIB: usize = 1 << 20;

/// A home set up by `cybs3 vaults local` (server stopped on drop, also when a test
/// panics) and a separate work directory for the trees.
struct Env {
    lv: LocalVault,
    work: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            lv: LocalVault::new(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// `name` under the work directory (not created).
    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// A new empty directory under the work directory.
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.path(name);
        fs::create_dir_all(&d).unwrap();
        d
    }

    /// `cybs3 sync --json ARGS…`: its exit status, per-file records, and summary.
    fn sync(&self, args: &[&str]) -> Synced {
        let mut all = vec!["sync", "--json"];
        all.extend_from_slice(args);
        Synced::parse(cybs3(&self.lv.home, &all))
    }

    /// A plain vault `plainv` on a new bucket of the same server, and a root S3 client.
    fn plain_vault(&self, bucket: &str) -> Client {
        let (key, secret) = self.lv.root_keys();
        let c = s3(self.lv.port, &key, &secret);
        block_on(c.create_bucket().bucket(bucket).send()).expect("create bucket");
        let endpoint = self.lv.endpoint();
        self.lv.ok(&[
            "vaults",
            "add",
            "plainv",
            "--endpoint",
            &endpoint,
            "--bucket",
            bucket,
            "--access-key",
            &key,
            "--secret-key",
            &secret,
            "--plain",
        ]);
        c
    }
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Synced {
    out: Output,
    records: Vec<Value>,
    summary: Value,
}

impl Synced {
    fn parse(out: Output) -> Synced {
        let mut records: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}\n{}", show(&out)))
            })
            .collect();
        let summary = records
            .pop()
            .and_then(|s| s.get("summary").cloned())
            .unwrap_or_else(|| panic!("no summary last: {}", show(&out)));
        Synced {
            out,
            records,
            summary,
        }
    }

    fn assert_ok(&self) -> &Self {
        assert!(
            self.out.status.success(),
            "sync failed: {}",
            show(&self.out)
        );
        self
    }

    /// The paths of one action, sorted.
    fn paths(&self, action: &str) -> BTreeSet<String> {
        self.records
            .iter()
            .filter(|r| r["action"] == action)
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    }

    fn count(&self, what: &str) -> u64 {
        self.summary[what].as_u64().unwrap()
    }
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

fn s3(port: u16, key: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(Credentials::new(key, secret, None, None, "sync-tests"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Write `data` at `root/rel` (parents created) with a given mtime.
fn put(root: &Path, rel: &str, data: &[u8], mtime: SystemTime) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
    set_mtime(&p, mtime);
}

fn set_mtime(p: &Path, mtime: SystemTime) {
    File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_times(FileTimes::new().set_modified(mtime))
        .unwrap();
}

/// An mtime with a nanosecond part, distinct per `i`, in the past.
fn when(i: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_600_000_000 + i * 1000, 123_456_789 - i as u32)
}

/// A big file written in 1 MiB blocks, each made distinct by its index (fast to build,
/// and no two parts alike, so a misplaced part shows).
fn write_big(p: &Path, len: usize) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let mut block = content("big", MIB);
    let mut f = std::io::BufWriter::new(File::create(p).unwrap());
    for i in 0..len.div_ceil(MIB) {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&block[..MIB.min(len - i * MIB)]).unwrap();
    }
    f.flush().unwrap();
}

/// Files of several kinds: empty, nested, spaces, Unicode, an executable.
fn small_tree(root: &Path) -> Vec<&'static str> {
    let files: [(&str, usize); 7] = [
        ("empty", 0),
        ("top.txt", 100),
        ("a/b/c/d/deep.bin", 70_000),
        ("with space/a b.txt", 3),
        ("ünïcødé/日本語 ファイル.txt", 4097),
        ("tool/run.sh", 1000),
        ("tool/secret", 10),
    ];
    for (i, (rel, len)) in files.iter().enumerate() {
        put(root, rel, &content(rel, *len), when(i as u64));
    }
    fs::set_permissions(root.join("tool/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(root.join("tool/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    files.iter().map(|f| f.0).collect()
}

/// `diff -r` agrees, and every file has the same size, mtime (to the nanosecond) and mode.
fn assert_same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("run diff");
    assert!(out.status.success(), "trees differ: {}", show(&out));
    let files = files_under(a);
    assert_eq!(files.len(), files_under(b).len());
    for fa in files {
        let fb = b.join(fa.strip_prefix(a).unwrap());
        let (ma, mb) = (fs::metadata(&fa).unwrap(), fs::metadata(&fb).unwrap());
        assert_eq!(
            ma.modified().unwrap(),
            mb.modified().unwrap(),
            "mtime of {}",
            fb.display()
        );
        assert_eq!(
            ma.mode() & 0o7777,
            mb.mode() & 0o7777,
            "mode of {}",
            fb.display()
        );
    }
}

#[test]
fn up_then_down_gives_an_identical_tree_on_the_encrypted_vault() {
    let env = Env::new();
    let src = env.dir("src");
    let mut names = small_tree(&src);
    write_big(&src.join("big/200mib.bin"), 200 * MIB);
    set_mtime(&src.join("big/200mib.bin"), when(42));
    names.push("big/200mib.bin");
    let srcs = src.to_str().unwrap();

    let t = Instant::now();
    let up = env.sync(&[srcs, "local:tree"]);
    up.assert_ok();
    eprintln!("up: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(up.paths("upload"), set(&names));
    assert_eq!(up.count("uploaded"), names.len() as u64);
    assert_eq!(
        up.count("bytes"),
        (200 * MIB + 100 + 70_000 + 3 + 4097 + 1000 + 10) as u64
    );

    let t = Instant::now();
    let dst = env.path("dst/not/yet/there");
    let down = env.sync(&["local:tree", dst.to_str().unwrap()]);
    down.assert_ok();
    eprintln!("down: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(down.paths("download"), set(&names));
    assert_same_tree(&src, &dst);
}

#[test]
fn up_then_down_gives_an_identical_tree_on_a_plain_vault() {
    let env = Env::new();
    let c = env.plain_vault("plain");
    let src = env.dir("src");
    let names = small_tree(&src);
    env.sync(&[src.to_str().unwrap(), "plainv:p/q"]).assert_ok();
    // A plain vault keeps paths as they are: any S3 client sees the tree.
    let head = block_on(
        c.head_object()
            .bucket("plain")
            .key("p/q/ünïcødé/日本語 ファイル.txt")
            .send(),
    );
    assert_eq!(head.expect("plain key").content_length(), Some(4097));

    let dst = env.path("dst");
    let down = env.sync(&["plainv:p/q", dst.to_str().unwrap()]);
    down.assert_ok();
    assert_eq!(down.paths("download"), set(&names));
    assert_same_tree(&src, &dst);
}

#[test]
fn a_second_sync_skips_everything_and_then_only_what_changed() {
    let env = Env::new();
    let src = env.dir("src");
    let names = small_tree(&src);
    let (srcs, dst) = (src.to_str().unwrap(), env.path("dst"));
    let dsts = dst.to_str().unwrap();
    env.sync(&[srcs, "local:t"]).assert_ok();
    env.sync(&["local:t", dsts]).assert_ok();

    for args in [[srcs, "local:t"], ["local:t", dsts]] {
        let again = env.sync(&args);
        again.assert_ok();
        assert_eq!(again.paths("skip"), set(&names), "{args:?}");
        assert_eq!(
            again.records.len(),
            names.len(),
            "only skips: {:?}",
            again.records
        );
        assert_eq!(again.count("skipped"), names.len() as u64);
        assert_eq!(again.count("bytes"), 0);
    }

    // A touched file (same size, new mtime) is sent again; nothing else is.
    set_mtime(&src.join("top.txt"), when(99));
    let up = env.sync(&[srcs, "local:t"]);
    up.assert_ok();
    assert_eq!(up.paths("upload"), set(&["top.txt"]));
    let down = env.sync(&["local:t", dsts]);
    down.assert_ok();
    assert_eq!(down.paths("download"), set(&["top.txt"]));
    assert_same_tree(&src, &dst);
}

#[test]
fn checksum_catches_same_size_same_mtime_edits() {
    let env = Env::new();
    let src = env.dir("src");
    put(&src, "f.txt", b"hello world", when(1));
    let (srcs, dst) = (src.to_str().unwrap(), env.path("dst"));
    let dsts = dst.to_str().unwrap();
    env.sync(&[srcs, "local:c"]).assert_ok();

    // Upload direction: same length, same mtime, other bytes.
    put(&src, "f.txt", b"HELLO WORLD", when(1));
    assert_eq!(
        env.sync(&[srcs, "local:c"]).assert_ok().paths("skip"),
        set(&["f.txt"])
    );
    let sum = env.sync(&[srcs, "local:c", "--checksum"]);
    assert_eq!(sum.assert_ok().paths("upload"), set(&["f.txt"]));
    assert_eq!(
        env.sync(&[srcs, "local:c", "--checksum"])
            .assert_ok()
            .paths("skip"),
        set(&["f.txt"])
    );

    // Download direction: a local edit of the same kind is repaired only with --checksum.
    env.sync(&["local:c", dsts]).assert_ok();
    put(&dst, "f.txt", b"hello WORLD", when(1));
    assert_eq!(
        env.sync(&["local:c", dsts]).assert_ok().paths("skip"),
        set(&["f.txt"])
    );
    let sum = env.sync(&["local:c", dsts, "--checksum"]);
    assert_eq!(sum.assert_ok().paths("download"), set(&["f.txt"]));
    assert_eq!(fs::read(dst.join("f.txt")).unwrap(), b"HELLO WORLD");
}

#[test]
fn delete_removes_extraneous_files_in_both_directions() {
    let env = Env::new();
    let src = env.dir("src");
    let names = small_tree(&src);
    let (srcs, dst) = (src.to_str().unwrap(), env.path("dst"));
    let dsts = dst.to_str().unwrap();
    env.sync(&[srcs, "local:d"]).assert_ok();

    // Up: files gone locally go from the vault, but only with --delete.
    fs::remove_file(src.join("top.txt")).unwrap();
    fs::remove_dir_all(src.join("a")).unwrap();
    let plain = env.sync(&[srcs, "local:d"]);
    assert!(plain.assert_ok().paths("delete").is_empty());
    let del = env.sync(&[srcs, "local:d", "--delete"]);
    assert_eq!(
        del.assert_ok().paths("delete"),
        set(&["top.txt", "a/b/c/d/deep.bin"])
    );
    assert_eq!(del.count("deleted"), 2);
    let fresh = env.sync(&["local:d", env.path("fresh").to_str().unwrap()]);
    let left: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != "top.txt" && !n.starts_with("a/"))
        .collect();
    assert_eq!(fresh.assert_ok().paths("download"), set(&left));

    // Down: extra local files go, excluded ones stay.
    env.sync(&["local:d", dsts]).assert_ok();
    put(&dst, "extra.txt", b"x", when(1));
    put(&dst, "new/dir/extra2.txt", b"x", when(1));
    put(&dst, "keep.log", b"x", when(1));
    let del = env.sync(&["local:d", dsts, "--delete", "--exclude", "*.log"]);
    assert_eq!(
        del.assert_ok().paths("delete"),
        set(&["extra.txt", "new/dir/extra2.txt"])
    );
    assert!(!dst.join("extra.txt").exists() && !dst.join("new/dir/extra2.txt").exists());
    assert!(dst.join("keep.log").exists());
    // Emptied directories stay, as with `aws s3 sync` (S3 has no directories to compare).
    assert!(dst.join("new/dir").is_dir());
    fs::remove_file(dst.join("keep.log")).unwrap();
    fs::remove_dir_all(dst.join("new")).unwrap();
    assert_same_tree(&src, &dst);
}

#[test]
fn delete_does_not_run_when_a_transfer_failed() {
    let env = Env::new();
    let c = env.plain_vault("pvault");
    let src = env.dir("src");
    put(&src, "stale.txt", b"old", when(1));
    env.sync(&[src.to_str().unwrap(), "plainv:"]).assert_ok();
    fs::remove_file(src.join("stale.txt")).unwrap();

    // A key over S3's 1024 bytes is refused by the server (KeyTooLongError): that upload
    // fails deterministically, the others go through.
    put(&src, "ok.txt", b"fine", when(2));
    let long: Vec<String> = (0..5).map(|i| format!("{i}{}", "x".repeat(219))).collect();
    let long = format!("{}/f", long.join("/"));
    assert!(long.len() > 1024);
    put(&src, &long, b"too long a key", when(3));

    let r = env.sync(&[src.to_str().unwrap(), "plainv:", "--delete"]);
    assert!(!r.out.status.success(), "must fail: {}", show(&r.out));
    assert_eq!(r.paths("upload"), set(&["ok.txt"]));
    assert_eq!(r.paths("error"), set(&[&long]));
    assert!(r.paths("delete").is_empty());
    assert_eq!((r.count("failed"), r.count("deleted")), (1, 0));
    let stderr = String::from_utf8_lossy(&r.out.stderr);
    assert!(
        stderr.contains("not deleting: 1 transfers failed"),
        "{stderr}"
    );
    let stale = block_on(c.head_object().bucket("pvault").key("stale.txt").send());
    assert!(stale.is_ok(), "stale.txt must survive a failed sync");

    // Once nothing fails, --delete runs.
    fs::remove_dir_all(src.join(long.split('/').next().unwrap())).unwrap();
    let r = env.sync(&[src.to_str().unwrap(), "plainv:", "--delete"]);
    assert_eq!(r.assert_ok().paths("delete"), set(&["stale.txt"]));
}

#[test]
fn dry_run_reports_and_changes_nothing() {
    let env = Env::new();
    let src = env.dir("src");
    let names = small_tree(&src);
    let (srcs, dst) = (src.to_str().unwrap(), env.path("dst"));
    let dsts = dst.to_str().unwrap();

    // Up: reported, not done.
    let dry = env.sync(&[srcs, "local:r", "--dry-run"]);
    assert_eq!(dry.assert_ok().paths("upload"), set(&names));
    assert_eq!(dry.summary["dry_run"], true);
    let nothing = env.sync(&["local:r", env.path("empty").to_str().unwrap()]);
    assert_eq!(
        nothing.assert_ok().records.len(),
        0,
        "the vault stayed empty"
    );

    // Down: a changed file, a missing file and an extra file are reported, none touched.
    env.sync(&[srcs, "local:r"]).assert_ok();
    env.sync(&["local:r", dsts]).assert_ok();
    put(&dst, "top.txt", b"changed", when(7));
    fs::remove_file(dst.join("empty")).unwrap();
    put(&dst, "extra.txt", b"x", when(1));
    let before = snapshot(&dst);
    let dry = env.sync(&["local:r", dsts, "--dry-run", "--delete"]);
    dry.assert_ok();
    assert_eq!(dry.paths("download"), set(&["top.txt", "empty"]));
    assert_eq!(dry.paths("delete"), set(&["extra.txt"]));
    assert_eq!(snapshot(&dst), before);

    // Up with --delete: the vault keeps what a dry run would delete.
    fs::remove_file(src.join("top.txt")).unwrap();
    let dry = env.sync(&[srcs, "local:r", "--dry-run", "--delete"]);
    assert_eq!(dry.assert_ok().paths("delete"), set(&["top.txt"]));
    let check = env.sync(&["local:r", env.path("check").to_str().unwrap()]);
    assert!(check.assert_ok().paths("download").contains("top.txt"));
}

/// Every file under `dir` with its bytes and mtime.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
    let mut v: Vec<_> = files_under(dir)
        .into_iter()
        .map(|p| {
            let (data, mtime) = (
                fs::read(&p).unwrap(),
                fs::metadata(&p).unwrap().modified().unwrap(),
            );
            (p, data, mtime)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn exclude_and_include_filters_apply_in_order() {
    let env = Env::new();
    let src = env.dir("src");
    for rel in [
        "a.txt",
        "x.tmp",
        "sub/y.tmp",
        "cache/big",
        "cache/keep.txt",
        "cache/sub/z",
        "sub/z.txt",
    ] {
        put(&src, rel, rel.as_bytes(), when(1));
    }
    let srcs = src.to_str().unwrap();
    let filters = [
        "--exclude",
        "*.tmp",
        "--exclude",
        "cache/**",
        "--include",
        "cache/keep.txt",
    ];
    let mut args = vec![srcs, "local:f"];
    args.extend_from_slice(&filters);
    let r = env.sync(&args);
    assert_eq!(
        r.assert_ok().paths("upload"),
        set(&["a.txt", "cache/keep.txt", "sub/z.txt"])
    );
    assert_eq!(
        r.records.len(),
        3,
        "excluded files are not even reported: {:?}",
        r.records
    );

    // Download with the same filters, into a directory holding excluded files: they are
    // neither overwritten nor deleted.
    env.sync(&[srcs, "local:f"]).assert_ok();
    let dst = env.dir("dst");
    put(&dst, "x.tmp", b"mine", when(5));
    put(&dst, "cache/big", b"mine too", when(5));
    let mut args = vec!["local:f", dst.to_str().unwrap(), "--delete"];
    args.extend_from_slice(&filters);
    let r = env.sync(&args);
    assert_eq!(
        r.assert_ok().paths("download"),
        set(&["a.txt", "cache/keep.txt", "sub/z.txt"])
    );
    assert!(r.paths("delete").is_empty());
    assert_eq!(fs::read(dst.join("x.tmp")).unwrap(), b"mine");
    assert_eq!(fs::read(dst.join("cache/big")).unwrap(), b"mine too");
    assert!(!dst.join("sub/y.tmp").exists() && !dst.join("cache/sub/z").exists());
}

#[test]
fn a_killed_large_upload_resumes() {
    let env = Env::new();
    let src = env.dir("src");
    let big = src.join("big.bin");
    write_big(&big, 200 * MIB);
    let show_json = env.lv.vault_json("local");
    let bucket = show_json["bucket"].as_str().unwrap().to_string();
    let c = s3(
        env.lv.port,
        show_json["access_key"].as_str().unwrap(),
        show_json["secret_key"].as_str().unwrap(),
    );

    let mut child = Command::new(bin())
        .args(["sync", "--quiet", src.to_str().unwrap(), "local:big"])
        .env("CYBS3_HOME", &env.lv.home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the server holds a few finished parts of the upload.
    let deadline = Instant::now() + Duration::from_secs(60);
    let parts_seen = block_on(async {
        loop {
            assert!(Instant::now() < deadline, "no parts appeared");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the upload finished before it could be killed"
            );
            let ups = c
                .list_multipart_uploads()
                .bucket(&bucket)
                .send()
                .await
                .unwrap();
            if let Some(u) = ups.uploads().first() {
                let parts = c
                    .list_parts()
                    .bucket(&bucket)
                    .key(u.key().unwrap())
                    .upload_id(u.upload_id().unwrap())
                    .send()
                    .await
                    .unwrap();
                if parts.parts().len() >= 2 {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    break parts.parts().len();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });

    let r = env.sync(&[src.to_str().unwrap(), "local:big"]);
    r.assert_ok();
    let up = r
        .records
        .iter()
        .find(|r| r["action"] == "upload")
        .expect("an upload record");
    let resumed = up["resumed_parts"].as_u64().unwrap();
    assert!(
        resumed >= 1,
        "resumed {resumed} parts (saw {parts_seen} before the kill): {up}"
    );
    assert!(resumed < up["parts"].as_u64().unwrap(), "{up}");

    let dst = env.path("dst");
    env.sync(&["local:big", dst.to_str().unwrap()]).assert_ok();
    assert_same_tree(&src, &dst);
}

/// Symbolic links go up and come down as links (relative, absolute, dangling, to a
/// directory), unchanged ones are skipped, and a download never writes through a link:
/// neither one the vault holds nor one already in the destination.
#[test]
fn symbolic_links_sync_as_links_and_never_lead_outside() {
    use std::os::unix::fs::symlink;
    let env = Env::new();
    env.plain_vault("plain");
    let src = env.dir("src");
    put(&src, "real/file.txt", b"data", when(1));
    let links = [
        ("rel", "real/file.txt"),
        ("abs", "/etc/hostname"),
        ("dangling", "nowhere/at/all"),
        ("dirlink", "real"),
    ];
    for (name, target) in links {
        symlink(target, src.join(name)).unwrap();
    }
    let outside = env.dir("outside");
    for vault in ["local", "plainv"] {
        let at = format!("{vault}:links");
        let up = env.sync(&[src.to_str().unwrap(), &at]);
        up.assert_ok();
        assert_eq!(
            up.paths("upload"),
            set(&["real/file.txt", "rel", "abs", "dangling", "dirlink"])
        );
        let again = env.sync(&[src.to_str().unwrap(), &at]);
        assert_eq!(again.assert_ok().count("uploaded"), 0);

        let dst = env.path(&format!("dst-{vault}"));
        env.sync(&[&at, dst.to_str().unwrap()]).assert_ok();
        for (name, target) in links {
            assert_eq!(fs::read_link(dst.join(name)).unwrap(), Path::new(target));
        }
        let diff = Command::new("diff")
            .args(["-r", "--no-dereference"])
            .arg(&src)
            .arg(&dst)
            .output()
            .unwrap();
        assert!(diff.status.success(), "{}", show(&diff));
        let again = env.sync(&[&at, dst.to_str().unwrap()]);
        assert_eq!(again.assert_ok().count("downloaded"), 0);

        // The vault holds a link to a directory outside and a file "under" it.
        let hostile = env.dir(&format!("hostile-{vault}"));
        symlink(&outside, hostile.join("evil")).unwrap();
        let at = format!("{vault}:hostile");
        env.sync(&[hostile.to_str().unwrap(), &at]).assert_ok();
        let x = env.path("x");
        fs::write(&x, b"payload").unwrap();
        env.lv
            .ok(&["cp", x.to_str().unwrap(), &format!("{at}/evil/x")]);
        let dst = env.path(&format!("dst-hostile-{vault}"));
        let down = env.sync(&[&at, dst.to_str().unwrap()]);
        assert!(!down.out.status.success(), "{}", show(&down.out));
        // A link already in the destination is not followed either.
        let dst = env.dir(&format!("dst-linked-{vault}"));
        symlink(&outside, dst.join("evil")).unwrap();
        let down = env.sync(&[&at, dst.to_str().unwrap()]);
        assert!(!down.out.status.success(), "{}", show(&down.out));
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "wrote outside");
    }
}
