//! Shared by the `cybs3 mount` end-to-end tests: a mounted vault that unmounts itself
//! (also one shared with other users), commands run as another user, and the S3 and
//! `cybs3 cat` views used to check what went through the mount.

use crate::{cybs3, LocalVault};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A mounted vault, unmounted when dropped (also when a test panics).
pub struct Mounted {
    pub home: PathBuf,
    pub dir: PathBuf,
    /// Declared before the directory it is mounted on, so it is unmounted first.
    _mount: fixtures::Mounted,
    _tmp: tempfile::TempDir,
}

impl Mounted {
    pub fn new(v: &LocalVault, vault: &str, extra: &[&str]) -> Mounted {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let mut args = vec!["--cache-ttl", "1"];
        args.extend_from_slice(extra);
        let mount = fixtures::Mounted::new(&v.local, &dir, vault, &args)
            .unwrap_or_else(|e| panic!("mount {vault}: {e}"));
        Mounted {
            home: v.home.clone(),
            dir,
            _mount: mount,
            _tmp: tmp,
        }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// A mount shared with other users (`--allow-other`), reachable by them through its
/// temporary parent.
pub fn shared_mount(v: &LocalVault, vault: &str) -> Mounted {
    use std::os::unix::fs::PermissionsExt;
    let m = Mounted::new(v, vault, &["--allow-other"]);
    let parent = m.dir.parent().expect("a mount point has a parent");
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
        .expect("open the mount point's parent to others");
    m
}

/// Runs `sh -c script` as `uid`/`gid` with no supplementary groups (util-linux's
/// `setpriv`).
pub fn as_user(uid: u32, gid: u32, script: &str) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv")
}

pub fn errno(r: std::io::Result<impl Sized>) -> i32 {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.raw_os_error().unwrap_or_else(|| panic!("no errno: {e}")),
    }
}

/// `cybs3 cat VAULT:path` as bytes.
pub fn cat(v: &LocalVault, what: &str) -> Vec<u8> {
    let out = cybs3(&v.home, &["cat", what]);
    assert!(out.status.success(), "cat {what}: {out:?}");
    out.stdout
}

pub fn s3(v: &LocalVault) -> aws_sdk_s3::Client {
    let (ak, sk) = v.root_keys();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(v.endpoint())
        .credentials_provider(Credentials::new(ak, sk, None, None, "mount-tests"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The body of `bucket/key`, `None` when there is no such object.
pub fn get(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    rt().block_on(async {
        match c.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => None,
            Err(e) => panic!("GET {key}: {e:?}"),
        }
    })
}

pub fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    rt().block_on(async {
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
    });
}

/// Adds the plain vault `plainv` over the local vault's bucket, prefix `pm/`.
pub fn plain_vault(v: &LocalVault) -> String {
    let bucket = v.vault_json("local")["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    let (ak, sk) = v.root_keys();
    v.ok(&[
        "vaults",
        "add",
        "plainv",
        "--plain",
        "--endpoint",
        &v.endpoint(),
        "--bucket",
        &bucket,
        "--prefix",
        "pm",
        "--access-key",
        &ak,
        "--secret-key",
        &sk,
    ]);
    bucket
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
