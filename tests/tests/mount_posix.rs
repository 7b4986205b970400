//! `cybs3 mount` under POSIX workloads, each on a plain and an encrypted vault: an
//! fsx-style randomized file exerciser against an in-memory reference, random writes into
//! a 64 MiB file, git, tar with symbolic links, concurrent appenders and rename over an
//! existing file. What went through the mount is checked through the mount and in the
//! store (S3 for the plain vault, `cybs3 cat` for the encrypted one). Needs root (or the
//! `fuse3` package), /dev/fuse, git and GNU tar/diff.
//!
//! The randomized tests print their seed when they fail; `CYBS3_TEST_SEED=N` replays one.
//!
//! (Over 800 lines: one test per workload; another file would be another test binary
//! to link.)

use cybs3_tests::mount::{errno, get, names, plain_vault, s3, Mounted};
use cybs3_tests::{content, cybs3, LocalVault};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::io::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    Encrypted,
}

/// A local vault mounted as a plain or an encrypted vault.
struct Setup {
    kind: Kind,
    m: Mounted,
    /// The plain vault's bucket and an S3 client for it.
    plain: Option<(String, aws_sdk_s3::Client)>,
    v: LocalVault,
}

impl Setup {
    fn new(kind: Kind) -> Setup {
        let v = LocalVault::new();
        let plain = match kind {
            Kind::Plain => Some((plain_vault(&v), s3(&v))),
            Kind::Encrypted => None,
        };
        let m = Mounted::new(&v, Self::vault_of(kind), &[]);
        Setup { kind, m, plain, v }
    }

    fn vault_of(kind: Kind) -> &'static str {
        match kind {
            Kind::Plain => "plainv",
            Kind::Encrypted => "local",
        }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.m.p(rel)
    }

    /// Unmounts (uploading whatever is pending) and mounts the vault afresh.
    fn remount(&mut self) {
        let out = cybs3(&self.v.home, &["umount", self.m.dir.to_str().unwrap()]);
        assert!(out.status.success(), "umount: {out:?}");
        self.m = Mounted::new(&self.v, Self::vault_of(self.kind), &[]);
    }

    /// The content stored for `rel`, read from the store rather than through the mount:
    /// a GET of the object for the plain vault, `cybs3 cat` for the encrypted one.
    fn stored(&self, rel: &str) -> Option<Vec<u8>> {
        match &self.plain {
            Some((bucket, c)) => get(c, bucket, &format!("pm/{rel}")),
            None => {
                let out = cybs3(&self.v.home, &["cat", &format!("local:{rel}")]);
                if out.status.success() {
                    return Some(out.stdout);
                }
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("does not exist"), "cat {rel}: {out:?}");
                None
            }
        }
    }
}

/// Both kinds of vault, one test each, so they run in parallel and fail separately.
macro_rules! on_both {
    ($plain:ident, $encrypted:ident, $f:ident) => {
        #[test]
        fn $plain() {
            $f(Kind::Plain)
        }
        #[test]
        fn $encrypted() {
            $f(Kind::Encrypted)
        }
    };
}

/// A small xorshift generator: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix64 once, so small seeds still start well mixed (and never at zero).
        let mut z = seed.wrapping_add(0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// `CYBS3_TEST_SEED` when set, else a fresh one.
fn seed() -> u64 {
    match std::env::var("CYBS3_TEST_SEED") {
        Ok(s) => s.parse().expect("CYBS3_TEST_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// Closes `f` and fails on the error that `drop` would swallow: a `close` through the
/// mount uploads, and its failure is the one that matters.
fn close(f: File) -> std::io::Result<()> {
    // SAFETY: `into_raw_fd` hands over the descriptor, so it is closed here once and by
    // nothing else.
    if unsafe { libc::close(f.into_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Up to `len` bytes at `off` (fewer only at the end of the file).
fn read_at(f: &File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], off + got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Where two byte strings first differ, for messages that do not print megabytes.
fn diff_at(got: &[u8], want: &[u8]) -> Option<String> {
    if got == want {
        return None;
    }
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    Some(format!(
        "{} bytes, expected {}; first difference at {at}",
        got.len(),
        want.len()
    ))
}

fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if let Some(d) = diff_at(got, want) {
        panic!("{what}: {d}");
    }
}

// ---- 1. fsx ----

/// Writes stay below this; truncation goes up to it.
const FSX_MAX: u64 = 2 << 20;
const FSX_OPS: usize = 10_000;

/// One file under test, its open handle and the content it must have.
struct Fsx<'a> {
    s: &'a Setup,
    rel: &'static str,
    rng: Rng,
    seed: u64,
    model: Vec<u8>,
    file: Option<File>,
    writable: bool,
    op: usize,
    /// The latest operations, printed when a check fails.
    recent: VecDeque<String>,
}

impl Fsx<'_> {
    fn note(&mut self, what: String) {
        if self.recent.len() == 30 {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("#{} {what}", self.op));
    }

    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let recent: Vec<&str> = self.recent.iter().map(String::as_str).collect();
        panic!(
            "fsx ({:?} vault) failed at op {} with seed {} (replay: CYBS3_TEST_SEED={}): {what}\nlatest ops:\n  {}",
            self.s.kind,
            self.op,
            self.seed,
            self.seed,
            recent.join("\n  ")
        );
    }

    fn ok<T>(&self, what: &str, r: std::io::Result<T>) -> T {
        r.unwrap_or_else(|e| self.fail(&format!("{what}: {e}")))
    }

    fn path(&self) -> PathBuf {
        self.s.p(self.rel)
    }

    fn f(&self) -> &File {
        self.file.as_ref().expect("open")
    }

    fn open(&mut self, writable: bool) {
        let f = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(self.path());
        self.file = Some(self.ok("open", f));
        self.writable = writable;
        self.note(format!("open {}", if writable { "rw" } else { "ro" }));
    }

    /// Closes the handle (an upload when it wrote) and checks the stored copy.
    fn close_and_check(&mut self) {
        let f = self.file.take().expect("open");
        self.note("close".into());
        self.ok("close", close(f));
        self.check_stored("after close");
    }

    fn check_stored(&self, when: &str) {
        let stored = self.s.stored(self.rel).unwrap_or_default();
        if let Some(d) = diff_at(&stored, &self.model) {
            self.fail(&format!("stored copy {when}: {d}"));
        }
    }

    /// Reads `len` bytes at `off` through the handle and compares with the model.
    fn check_range(&self, what: &str, off: u64, len: usize) {
        let got = self.ok(what, read_at(self.f(), off, len));
        let end = (off as usize + len).min(self.model.len());
        let want = self.model.get(off as usize..end).unwrap_or_default();
        if let Some(d) = diff_at(&got, want) {
            self.fail(&format!("{what} of {len} at {off}: {d}"));
        }
    }

    fn check_size(&self) {
        let len = self.ok("fstat", self.f().metadata()).len();
        if len != self.model.len() as u64 {
            self.fail(&format!("fstat size {len}, expected {}", self.model.len()));
        }
    }

    fn check_all(&self, what: &str) {
        self.check_range(what, 0, self.model.len() + 4096);
    }

    /// An offset biased towards the end of the file, where the interesting cases are.
    fn offset(&mut self) -> u64 {
        let len = self.model.len() as u64;
        match self.rng.below(4) {
            0 if len > 0 => len - 1 - self.rng.below(len.min(70_000)),
            1 => len + self.rng.below(70_000),
            _ => self.rng.below(FSX_MAX),
        }
        .min(FSX_MAX - 1)
    }

    fn length(&mut self) -> usize {
        1 + match self.rng.below(3) {
            0 => self.rng.below(100),
            1 => self.rng.below(4096),
            _ => self.rng.below(200_000),
        } as usize
    }

    fn apply_write(&mut self, off: u64, data: &[u8]) {
        let end = off as usize + data.len();
        if self.model.len() < end {
            self.model.resize(end, 0);
        }
        self.model[off as usize..end].copy_from_slice(data);
    }

    fn write(&mut self) {
        let off = self.offset();
        let len = self.length().min((FSX_MAX - off) as usize);
        let data = self.rng.bytes(len);
        self.note(format!("write {len} at {off}"));
        self.ok("pwrite", self.f().write_all_at(&data, off));
        self.apply_write(off, &data);
        self.check_range("read back", off.saturating_sub(100), len + 200);
    }

    /// A write through a second handle, closed right away (an upload of the shared copy).
    fn write_other_handle(&mut self) {
        let off = self.offset();
        let len = self.length().min((FSX_MAX - off) as usize);
        let data = self.rng.bytes(len);
        self.note(format!("write {len} at {off} through another handle"));
        let f = OpenOptions::new().write(true).open(self.path());
        let f = self.ok("open another handle", f);
        self.ok("pwrite", f.write_all_at(&data, off));
        self.ok("close another handle", close(f));
        self.apply_write(off, &data);
        self.check_stored("after closing another handle");
        self.check_range("read after another handle wrote", off, len);
    }

    fn new_size(&mut self) -> u64 {
        let len = self.model.len() as u64;
        match self.rng.below(3) {
            0 => len.saturating_sub(self.rng.below(70_000)),
            1 => (len + self.rng.below(70_000)).min(FSX_MAX),
            _ => self.rng.below(FSX_MAX + 1),
        }
    }

    fn truncate(&mut self) {
        let size = self.new_size();
        self.note(format!("ftruncate to {size}"));
        self.ok("ftruncate", self.f().set_len(size));
        self.model.resize(size as usize, 0);
        self.check_size();
        self.check_range("read at the new end", size.saturating_sub(5000), 10_000);
    }

    /// truncate(2) by path, whatever the handle: a closed file is downloaded, cut and
    /// uploaded again.
    fn truncate_path(&mut self) {
        let size = self.new_size();
        self.note(format!("truncate by path to {size}"));
        let c = std::ffi::CString::new(self.path().to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        if unsafe { libc::truncate(c.as_ptr(), size as libc::off_t) } != 0 {
            let e = std::io::Error::last_os_error();
            self.fail(&format!("truncate: {e}"));
        }
        self.model.resize(size as usize, 0);
        let len = self.ok("stat", std::fs::metadata(self.path())).len();
        if len != size {
            self.fail(&format!("stat size {len} after truncate to {size}"));
        }
        self.check_range("read at the new end", size.saturating_sub(5000), 10_000);
    }

    fn read(&mut self) {
        let off = self.offset();
        let len = self.length();
        self.note(format!("read {len} at {off}"));
        self.check_range("read", off, len);
    }

    fn fsync(&mut self) {
        self.note("fsync".into());
        self.ok("fsync", self.f().sync_all());
        if self.rng.below(3) == 0 {
            self.check_stored("after fsync");
        }
    }

    fn reopen(&mut self) {
        self.close_and_check();
        let writable = self.rng.below(3) != 0;
        self.open(writable);
        self.check_size();
        self.check_all("whole file after reopening");
    }

    fn step(&mut self) {
        let r = self.rng.below(1000);
        if self.writable {
            match r {
                0..=359 => self.write(),
                360..=619 => self.read(),
                620..=719 => self.truncate(),
                720..=729 => self.truncate_path(),
                730..=739 => self.write_other_handle(),
                740..=749 => self.fsync(),
                750..=759 => self.reopen(),
                _ => {
                    self.note("fstat".into());
                    let len = self.ok("stat", std::fs::metadata(self.path())).len();
                    if len != self.model.len() as u64 {
                        self.fail(&format!("stat size {len}, expected {}", self.model.len()));
                    }
                }
            }
        } else {
            match r {
                0..=699 => self.read(),
                700..=749 => self.truncate_path(),
                750..=849 => self.write_other_handle(),
                850..=899 => self.reopen(),
                _ => self.check_all("whole file"),
            }
        }
        self.check_size();
    }
}

fn fsx(kind: Kind) {
    let s = Setup::new(kind);
    let seed = seed();
    eprintln!("fsx on the {kind:?} vault: seed {seed}");
    let mut t = Fsx {
        s: &s,
        rel: "fsx.bin",
        rng: Rng::new(seed),
        seed,
        model: Vec::new(),
        file: None,
        writable: true,
        op: 0,
        recent: VecDeque::new(),
    };
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(t.path());
    t.file = Some(t.ok("create", f));
    for op in 1..=FSX_OPS {
        t.op = op;
        t.step();
        if op % 1000 == 0 {
            t.check_all("whole file");
        }
    }
    t.close_and_check();
    // A fresh look through the mount once its caches have expired.
    std::thread::sleep(Duration::from_millis(1100));
    let back = t.ok("read", std::fs::read(t.path()));
    if let Some(d) = diff_at(&back, &t.model) {
        t.fail(&format!("read through the mount after close: {d}"));
    }
}

on_both!(fsx_plain, fsx_encrypted, fsx);

// ---- 2. random writes into a 64 MiB file ----

fn random_writes_64m(kind: Kind) {
    const SIZE: u64 = 64 << 20;
    let s = Setup::new(kind);
    let seed = seed();
    let mut rng = Rng::new(seed);
    let ctx = format!("{kind:?} vault, seed {seed} (replay: CYBS3_TEST_SEED={seed})");
    let mut model = vec![0u8; SIZE as usize];
    let write = |f: &File, rng: &mut Rng, model: &mut Vec<u8>, limit: u64| {
        let off = rng.below(limit);
        let len = (1 + rng.below(256 << 10)).min(limit + (1 << 20) - off) as usize;
        let data = rng.bytes(len);
        f.write_all_at(&data, off).unwrap();
        let end = off as usize + len;
        if model.len() < end {
            model.resize(end, 0);
        }
        model[off as usize..end].copy_from_slice(&data);
    };
    // A sparse 64 MiB file with a few hundred writes, closed (uploaded).
    let f = File::create(s.p("big.bin")).unwrap();
    f.set_len(SIZE).unwrap();
    for _ in 0..300 {
        write(&f, &mut rng, &mut model, SIZE);
    }
    close(f).unwrap_or_else(|e| panic!("close ({ctx}): {e}"));
    // Opened again (downloaded), more writes, some past the end.
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.p("big.bin"))
        .unwrap();
    for _ in 0..100 {
        write(&f, &mut rng, &mut model, SIZE + (512 << 10));
    }
    close(f).unwrap_or_else(|e| panic!("close ({ctx}): {e}"));

    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        std::fs::metadata(s.p("big.bin")).unwrap().len(),
        model.len() as u64,
        "{ctx}"
    );
    assert_same(
        &format!("through the mount ({ctx})"),
        &std::fs::read(s.p("big.bin")).unwrap(),
        &model,
    );
    assert_same(
        &format!("stored ({ctx})"),
        &s.stored("big.bin").expect("stored"),
        &model,
    );
    // Random ranges through a read-only handle (ranged GETs of the stored object).
    let f = File::open(s.p("big.bin")).unwrap();
    for _ in 0..50 {
        let off = rng.below(model.len() as u64);
        let len = 1 + rng.below(300_000) as usize;
        let end = (off as usize + len).min(model.len());
        assert_same(
            &format!("{len} bytes at {off} ({ctx})"),
            &read_at(&f, off, len).unwrap(),
            &model[off as usize..end],
        );
    }
}

on_both!(
    random_writes_64m_plain,
    random_writes_64m_encrypted,
    random_writes_64m
);

// ---- 3. git ----

/// `git args…` in `dir` with a private configuration; panics unless it succeeds.
fn git(dir: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "cybs3 test")
        .env("GIT_AUTHOR_EMAIL", "test@cybs3.invalid")
        .env("GIT_COMMITTER_NAME", "cybs3 test")
        .env("GIT_COMMITTER_EMAIL", "test@cybs3.invalid")
        .output()
        .expect("run git (is it installed?)");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn git_in_the_mount(kind: Kind) {
    let mut s = Setup::new(kind);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let repo = s.p("repo");
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    std::fs::create_dir(repo.join("bin")).unwrap();
    std::fs::write(repo.join("README.md"), b"# a repository in a vault\n").unwrap();
    std::fs::write(repo.join("src/main.rs"), b"fn main() {}\n").unwrap();
    std::fs::write(repo.join("src/deep/data.bin"), content("git-data", 300_000)).unwrap();
    std::fs::write(repo.join("bin/tool.sh"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(
        repo.join("bin/tool.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("README.md", repo.join("readme-link")).unwrap();

    git(&repo, home, &["init", "-q", "-b", "main"]);
    git(&repo, home, &["add", "-A"]);
    git(&repo, home, &["commit", "-q", "-m", "first"]);
    std::fs::write(
        repo.join("src/main.rs"),
        b"fn main() { println!(\"hi\"); }\n",
    )
    .unwrap();
    std::fs::write(repo.join("new.txt"), b"added in the second commit\n").unwrap();
    git(&repo, home, &["add", "-A"]);
    git(&repo, home, &["commit", "-q", "-m", "second"]);

    let check = |repo: &Path| {
        let log = git(repo, home, &["log", "--format=%s"]);
        assert_eq!(log, "second\nfirst\n", "{kind:?} vault");
        let status = git(
            repo,
            home,
            &["status", "--porcelain", "--untracked-files=all"],
        );
        assert_eq!(status, "", "{kind:?} vault: git status is not clean");
        git(repo, home, &["fsck", "--full", "--strict", "--no-dangling"]);
        let files = git(repo, home, &["ls-files", "-s"]);
        assert!(
            files.contains("100755") && files.contains("120000 "),
            "{kind:?} vault: modes in the index: {files}"
        );
    };
    check(&repo);
    // Packing (temporary packs renamed into place, loose objects removed) and a branch
    // switched back and forth (files rewritten and removed by checkout).
    git(&repo, home, &["gc", "-q", "--prune=now"]);
    git(&repo, home, &["checkout", "-q", "-b", "side", "HEAD~1"]);
    assert!(!repo.join("new.txt").exists(), "{kind:?} vault: checkout");
    assert_eq!(
        std::fs::read(repo.join("src/main.rs")).unwrap(),
        b"fn main() {}\n"
    );
    git(&repo, home, &["checkout", "-q", "main"]);
    check(&repo);
    // Everything is in the store: a fresh mount sees the same repository.
    s.remount();
    let repo = s.p("repo");
    check(&repo);
    // And a clone out of the mount has the committed tree.
    let clone = home.join("clone");
    git(
        home,
        home,
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(clone.join("src/deep/data.bin")).unwrap(),
        content("git-data", 300_000)
    );
    assert_eq!(
        std::fs::read(repo.join("src/main.rs")).unwrap(),
        std::fs::read(clone.join("src/main.rs")).unwrap()
    );
}

on_both!(git_plain, git_encrypted, git_in_the_mount);

// ---- 4. tar with symbolic links ----

fn tar_with_symlinks(kind: Kind) {
    let s = Setup::new(kind);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/sub")).unwrap();
    std::fs::write(src.join("a/file.txt"), b"a file\n").unwrap();
    std::fs::write(src.join("a/sub/inner.bin"), content("inner", 100_000)).unwrap();
    let abs_target = src.join("a/file.txt");
    let links: [(&str, &str); 6] = [
        ("a/rel", "file.txt"),
        ("a/sub/up", "../file.txt"),
        ("a/abs", abs_target.to_str().unwrap()),
        ("a/dangling", "does/not/exist"),
        ("a/dangling-abs", "/nonexistent/cybs3/target"),
        ("a/dirlink", "sub"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, src.join(link)).unwrap();
    }
    let tar = tmp.path().join("t.tar");
    let run = |cmd: &str, args: &[&str]| {
        let out = Command::new(cmd).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{kind:?} vault: {cmd} {args:?}: {out:?}"
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(
        "tar",
        &[
            "-C",
            src.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let dst = s.p("x");
    std::fs::create_dir(&dst).unwrap();
    run(
        "tar",
        &[
            "-C",
            dst.to_str().unwrap(),
            "--no-same-owner",
            "-xf",
            tar.to_str().unwrap(),
        ],
    );
    run(
        "diff",
        &[
            "-r",
            "--no-dereference",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
        ],
    );
    for (link, target) in links {
        let p = dst.join(link);
        assert!(
            std::fs::symlink_metadata(&p).unwrap().is_symlink(),
            "{kind:?} vault: {link} is not a symbolic link"
        );
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new(target), "{link}");
        // Stored as the object's body.
        assert_eq!(
            s.stored(&format!("x/{link}")).as_deref(),
            Some(target.as_bytes()),
            "{kind:?} vault: stored {link}"
        );
    }
    assert_eq!(
        std::fs::read(dst.join("a/sub/up")).unwrap(),
        b"a file\n".to_vec()
    );
    assert_eq!(names(&dst.join("a/dirlink")), ["inner.bin", "up"]);
    assert_eq!(errno(std::fs::read(dst.join("a/dangling"))), libc::ENOENT);
    // readdir reports the links as links (find trusts d_type).
    let found = run("find", &[dst.to_str().unwrap(), "-type", "l"]);
    let mut found: Vec<&str> = found
        .lines()
        .map(|l| l.strip_prefix(dst.to_str().unwrap()).unwrap())
        .collect();
    found.sort();
    let mut want: Vec<String> = links.iter().map(|(l, _)| format!("/{l}")).collect();
    want.sort();
    assert_eq!(found, want, "{kind:?} vault: find -type l");
}

on_both!(
    tar_symlinks_plain,
    tar_symlinks_encrypted,
    tar_with_symlinks
);

// ---- 5. concurrent appenders ----

fn concurrent_appends(kind: Kind) {
    const LINES: usize = 120;
    let s = Setup::new(kind);
    std::fs::create_dir(s.p("logs")).unwrap();
    // Two shells, each opening its file with O_APPEND for every line (each close
    // uploads), and two keeping one O_APPEND descriptor for all their lines.
    let scripts = [
        (
            "logs/a.log",
            "for i in $(seq 1 N); do echo \"a line $i\" >> F; done",
        ),
        (
            "logs/b.log",
            "for i in $(seq 1 N); do echo \"b line $i\" >> F; done",
        ),
        (
            "logs/c.log",
            "exec 3>>F; for i in $(seq 1 N); do echo \"c line $i\" >&3; done",
        ),
        (
            "logs/d.log",
            "exec 3>>F; for i in $(seq 1 N); do echo \"d line $i\" >&3; done",
        ),
    ];
    let children: Vec<_> = scripts
        .iter()
        .map(|(rel, script)| {
            let script = script
                .replace('N', &LINES.to_string())
                .replace('F', s.p(rel).to_str().unwrap());
            Command::new("sh").arg("-c").arg(script).spawn().unwrap()
        })
        .collect();
    for (mut c, (rel, _)) in children.into_iter().zip(scripts) {
        let st = c.wait().unwrap();
        assert!(st.success(), "{kind:?} vault: appending to {rel}: {st}");
    }
    for (rel, _) in scripts {
        let tag = &rel[5..6];
        let want: String = (1..=LINES).map(|i| format!("{tag} line {i}\n")).collect();
        assert_eq!(
            String::from_utf8(std::fs::read(s.p(rel)).unwrap()).unwrap(),
            want,
            "{kind:?} vault: {rel} through the mount"
        );
        assert_eq!(
            String::from_utf8(s.stored(rel).expect("stored")).unwrap(),
            want,
            "{kind:?} vault: {rel} stored"
        );
    }
}

on_both!(appends_plain, appends_encrypted, concurrent_appends);

/// Two processes appending to one file at once through O_APPEND descriptors they keep:
/// every line is there once and whole (the order between them is free).
fn appends_to_one_file(kind: Kind) {
    const LINES: usize = 200;
    let s = Setup::new(kind);
    let f = s.p("shared.log");
    std::fs::write(&f, b"").unwrap();
    let children: Vec<_> = ["x", "y"]
        .iter()
        .map(|tag| {
            let script = format!(
                "exec 3>>'{}'; for i in $(seq 1 {LINES}); do echo \"{tag} line $i\" >&3; done",
                f.display()
            );
            Command::new("sh").arg("-c").arg(script).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().unwrap().success(),
            "{kind:?} vault: appender failed"
        );
    }
    let check = |what: &str, got: Vec<u8>| {
        let got = String::from_utf8(got).unwrap();
        let mut lines: Vec<&str> = got.lines().collect();
        lines.sort();
        let mut want: Vec<String> = ["x", "y"]
            .iter()
            .flat_map(|t| (1..=LINES).map(move |i| format!("{t} line {i}")))
            .collect();
        want.sort();
        assert_eq!(lines, want, "{kind:?} vault: shared.log {what}");
        assert!(got.ends_with('\n'), "{kind:?} vault: {what}");
    };
    check("through the mount", std::fs::read(&f).unwrap());
    check("stored", s.stored("shared.log").expect("stored"));
}

on_both!(
    one_file_appends_plain,
    one_file_appends_encrypted,
    appends_to_one_file
);

// ---- 6. rename over an existing file ----

fn rename_over_existing(kind: Kind) {
    let s = Setup::new(kind);
    let gone = |rel: &str| {
        assert_eq!(errno(std::fs::metadata(s.p(rel))), libc::ENOENT, "{rel}");
        assert_eq!(s.stored(rel), None, "{kind:?} vault: {rel} still stored");
    };
    let has = |rel: &str, want: &[u8]| {
        assert_eq!(std::fs::read(s.p(rel)).unwrap(), want, "{kind:?}: {rel}");
        assert_eq!(
            s.stored(rel).as_deref(),
            Some(want),
            "{kind:?} vault: {rel} stored"
        );
    };

    // Closed files, the old content longer than the new.
    std::fs::write(s.p("a.txt"), b"new A").unwrap();
    std::fs::write(s.p("b.txt"), b"old B, longer than the new content").unwrap();
    std::fs::rename(s.p("a.txt"), s.p("b.txt")).unwrap();
    has("b.txt", b"new A");
    gone("a.txt");
    assert_eq!(names(&s.m.dir), ["b.txt"]);
    std::thread::sleep(Duration::from_millis(1100));
    has("b.txt", b"new A");

    // Into another directory, over a file there.
    std::fs::create_dir(s.p("d")).unwrap();
    std::fs::write(s.p("d/b.txt"), b"old d/b").unwrap();
    std::fs::rename(s.p("b.txt"), s.p("d/b.txt")).unwrap();
    has("d/b.txt", b"new A");
    gone("b.txt");

    // The source still open for writing: it goes on under the new name, over the old.
    std::fs::write(s.p("c.txt"), b"old C").unwrap();
    let mut f = File::create(s.p("c.tmp")).unwrap();
    f.write_all(b"first ").unwrap();
    std::fs::rename(s.p("c.tmp"), s.p("c.txt")).unwrap();
    f.write_all(b"second").unwrap();
    close(f).unwrap();
    has("c.txt", b"first second");
    gone("c.tmp");

    // The replaced file still open for writing (an editor, a log): its handle now
    // belongs to a file with no name, and its writes and close do not come back.
    std::fs::write(s.p("e.txt"), b"old E").unwrap();
    let mut held = OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.p("e.txt"))
        .unwrap();
    held.write_all(b"pending").unwrap();
    std::fs::write(s.p("e.new"), b"new E").unwrap();
    std::fs::rename(s.p("e.new"), s.p("e.txt")).unwrap();
    has("e.txt", b"new E");
    held.write_all(b" more").unwrap();
    assert_eq!(read_at(&held, 0, 100).unwrap(), b"pending more");
    close(held).unwrap();
    has("e.txt", b"new E");
    gone("e.new");
    std::thread::sleep(Duration::from_millis(1100));
    has("e.txt", b"new E");
    let mut top = names(&s.m.dir);
    top.sort();
    assert_eq!(top, ["c.txt", "d", "e.txt"]);
}

on_both!(
    rename_over_plain,
    rename_over_encrypted,
    rename_over_existing
);
