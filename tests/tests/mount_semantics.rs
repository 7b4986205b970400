//! POSIX semantics through a real `cybs3 mount`, on a plain and an encrypted vault.
//! Owners and modes (with `--allow-other`): files show who created them, chown and
//! chmod follow Linux's rules for root and for other users (run through `setpriv`),
//! and all of it is stored, so a fresh mount shows it again; directories too, with the
//! sticky and set-group-ID bits' rules. Names: up to NAME_MAX
//! (255 bytes) works, longer is ENAMETOOLONG. Needs root, /dev/fuse and util-linux's
//! `setpriv`.

use cybs3_tests::mount::{as_user, errno, plain_vault, shared_mount, Mounted};
use cybs3_tests::{cybs3, LocalVault};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

fn owners(vault: &str) {
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = shared_mount(&v, vault);
    let f = m.p("f");
    std::fs::write(&f, b"x").unwrap();
    assert_eq!(owner_mode(&f).0, 0, "{vault}: root's new file");

    std::os::unix::fs::chown(&f, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(owner_mode(&f), (1000, 1000, 0o4755), "{vault}");

    let path = f.to_str().unwrap();
    let out = as_user(1001, 1001, &format!("chmod 600 '{path}'"));
    assert!(
        !out.status.success(),
        "{vault}: another user's chmod: {out:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    let out = as_user(1000, 1000, &format!("chown 1001 '{path}'"));
    assert!(
        !out.status.success(),
        "{vault}: giving a file away: {out:?}"
    );
    let out = as_user(
        1000,
        1000,
        &format!("chmod 4700 '{path}' && echo more >> '{path}'"),
    );
    assert!(
        out.status.success(),
        "{vault}: the owner's chmod and write: {out:?}"
    );
    // The write by a user without CAP_FSETID cleared set-user-ID, as Linux does.
    assert_eq!(owner_mode(&f), (1000, 1000, 0o700), "{vault}");
    let out = as_user(1001, 1001, &format!("cat '{path}'"));
    assert!(
        !out.status.success(),
        "{vault}: 0700 keeps others out: {out:?}"
    );

    // A chown, even by root, clears set-user-ID, as Linux does.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4700)).unwrap();
    std::os::unix::fs::chown(&f, Some(1002), None).unwrap();
    assert_eq!(owner_mode(&f), (1002, 1000, 0o700), "{vault}");

    drop(m);
    let m = shared_mount(&v, vault);
    assert_eq!(
        owner_mode(&m.p("f")),
        (1002, 1000, 0o700),
        "{vault}: stored"
    );
    assert_eq!(std::fs::read(m.p("f")).unwrap(), b"xmore\n");

    // A mount without --allow-other shows its own user, as before.
    drop(m);
    let out = cybs3(&v.home, &["ls", &format!("{vault}:")]);
    assert!(out.status.success(), "{out:?}");
    let m = Mounted::new(&v, vault, &[]);
    assert_eq!(owner_mode(&m.p("f")).0, 0, "{vault}: private mount");
}

#[test]
fn owners_plain() {
    owners("plainv")
}

#[test]
fn owners_encrypted() {
    owners("local")
}

fn names(vault: &str) {
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = Mounted::new(&v, vault, &[]);
    let longest = "n".repeat(255);
    std::fs::create_dir(m.p("d")).unwrap();
    std::fs::write(m.p(&format!("d/{longest}")), b"x").unwrap();
    assert_eq!(
        std::fs::read(m.p(&format!("d/{longest}"))).unwrap(),
        b"x",
        "{vault}"
    );
    let longer = "n".repeat(256);
    let p = m.p(&format!("d/{longer}"));
    assert_eq!(
        errno(std::fs::write(&p, b"x")),
        libc::ENAMETOOLONG,
        "{vault}"
    );
    assert_eq!(errno(std::fs::metadata(&p)), libc::ENAMETOOLONG, "{vault}");
    assert_eq!(
        errno(std::fs::create_dir(&p)),
        libc::ENAMETOOLONG,
        "{vault}"
    );

    // Deeper and deeper: the path outgrows the server's 1,024-byte keys (an encrypted
    // name takes more room than its plaintext), and that too is ENAMETOOLONG.
    let mut path = m.p("d");
    let failed = (0..10).find_map(|_| {
        path.push("n".repeat(200));
        std::fs::create_dir(&path).err()
    });
    let e = failed.unwrap_or_else(|| panic!("{vault}: 2,000-byte paths were stored"));
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{vault}: {e}");
}

#[test]
fn names_plain() {
    names("plainv")
}

#[test]
fn names_encrypted() {
    names("local")
}

/// Directories' owners and modes, set-group-ID inheritance and the sticky bit's rules,
/// checked by the kernel (`default_permissions`) against what the mount stores.
fn dirs(vault: &str) {
    use std::os::unix::fs::DirBuilderExt;
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = shared_mount(&v, vault);
    let run = |uid: u32, script: &str| {
        let out = as_user(uid, uid, &format!("cd '{}' && {script}", m.dir.display()));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ok = |uid: u32, script: &str| {
        let (done, err) = run(uid, script);
        assert!(done, "{vault}: uid {uid}: {script}: {err}");
    };
    let refused = |uid: u32, script: &str| {
        let (done, err) = run(uid, script);
        assert!(!done, "{vault}: uid {uid} was let {script}");
        assert!(
            err.contains("Operation not permitted") || err.contains("Permission denied"),
            "{vault}: {script}: {err}"
        );
    };

    std::fs::DirBuilder::new()
        .mode(0o750)
        .create(m.p("d"))
        .unwrap();
    assert_eq!(
        owner_mode(&m.p("d")),
        (0, 0, 0o750),
        "{vault}: root's mkdir"
    );
    std::os::unix::fs::chown(m.p("d"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(m.p("d"), std::fs::Permissions::from_mode(0o700)).unwrap();
    refused(1001, "ls d");
    refused(1001, "touch d/x");
    refused(1001, "chmod 777 d");
    ok(1000, "touch d/x && mkdir d/sub");
    assert_eq!(owner_mode(&m.p("d/sub")).0, 1000, "{vault}");

    // The sticky bit: in a 1777 directory only a file's owner (or the directory's, or
    // root) removes or renames it.
    std::fs::create_dir(m.p("tmp")).unwrap();
    std::fs::set_permissions(m.p("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    ok(1000, "echo a > tmp/a && mkdir tmp/ad && ln -s a tmp/l");
    assert_eq!(
        owner_mode(&m.p("tmp/l")).0,
        1000,
        "{vault}: a symlink's owner"
    );
    refused(1001, "rm -f tmp/l");
    refused(1001, "rm -f tmp/a");
    refused(1001, "mv tmp/a tmp/b");
    refused(1001, "rmdir tmp/ad");
    ok(1001, "echo b > tmp/b && mv tmp/b tmp/c && rm tmp/c");
    ok(1000, "mv tmp/a tmp/a2 && rm tmp/a2 tmp/l && rmdir tmp/ad");
    // Another user's write to a set-user-ID file it may write clears the bit.
    ok(1000, "echo s > tmp/s && chmod 4777 tmp/s");
    ok(1001, "echo more >> tmp/s");
    assert_eq!(owner_mode(&m.p("tmp/s")), (1000, 1000, 0o777), "{vault}");

    // Set-group-ID: new entries take the directory's group, new directories its bit.
    std::fs::create_dir(m.p("g")).unwrap();
    std::os::unix::fs::chown(m.p("g"), None, Some(500)).unwrap();
    std::fs::set_permissions(m.p("g"), std::fs::Permissions::from_mode(0o2777)).unwrap();
    ok(1000, "touch g/f && mkdir g/s");
    assert_eq!(owner_mode(&m.p("g/f")).1, 500, "{vault}");
    let (uid, gid, mode) = owner_mode(&m.p("g/s"));
    assert_eq!((uid, gid, mode & 0o2000), (1000, 500, 0o2000), "{vault}");

    // The mount point itself: its mode holds for the mount's life.
    refused(1000, "touch top");
    std::fs::set_permissions(&m.dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    ok(1000, "touch top");
    refused(1001, "rm top");

    drop(m);
    let m = shared_mount(&v, vault);
    assert_eq!(
        owner_mode(&m.p("d")),
        (1000, 1000, 0o700),
        "{vault}: stored"
    );
    assert_eq!(owner_mode(&m.p("tmp")).2, 0o1777, "{vault}: stored");
    assert_eq!(owner_mode(&m.p("g")), (0, 500, 0o2777), "{vault}: stored");
}

#[test]
fn dirs_plain() {
    dirs("plainv")
}

#[test]
fn dirs_encrypted() {
    dirs("local")
}

/// The error of each error path (POSIX and the Linux man pages), whether the kernel or
/// the mount answers it; and the times and link counts POSIX has at the edges.
fn errors(vault: &str) {
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::symlink;
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = Mounted::new(&v, vault, &[]);
    fs::write(m.p("f"), b"data").unwrap();
    fs::create_dir_all(m.p("d/sub")).unwrap();

    let f = OpenOptions::new().write(true).open(m.p("f")).unwrap();
    assert_eq!(
        errno(f.set_len(6 << 40)),
        libc::EFBIG,
        "{vault}: past 5 TiB"
    );
    drop(f);
    assert_eq!(errno(fs::create_dir(m.p("d"))), libc::EEXIST, "{vault}");
    assert_eq!(errno(fs::remove_dir(m.p("d"))), libc::ENOTEMPTY, "{vault}");
    assert_eq!(errno(fs::remove_file(m.p("d"))), libc::EISDIR, "{vault}");
    assert_eq!(errno(fs::remove_dir(m.p("f"))), libc::ENOTDIR, "{vault}");
    assert_eq!(errno(fs::metadata(m.p("f/x"))), libc::ENOTDIR, "{vault}");
    assert_eq!(
        errno(OpenOptions::new().write(true).open(m.p("d"))),
        libc::EISDIR,
        "{vault}"
    );
    assert_eq!(
        errno(fs::rename(m.p("d"), m.p("d/sub/d"))),
        libc::EINVAL,
        "{vault}: a directory into its own subtree"
    );
    assert_eq!(
        errno(fs::rename(m.p("d"), m.p("f"))),
        libc::ENOTDIR,
        "{vault}"
    );
    assert_eq!(
        errno(fs::rename(m.p("f"), m.p("d"))),
        libc::EISDIR,
        "{vault}"
    );
    let outside = tempfile::tempdir().unwrap();
    assert_eq!(
        errno(fs::rename(m.p("f"), outside.path().join("f"))),
        libc::EXDEV,
        "{vault}: across filesystems"
    );
    symlink("loop2", m.p("loop1")).unwrap();
    symlink("loop1", m.p("loop2")).unwrap();
    assert_eq!(errno(fs::read(m.p("loop1"))), libc::ELOOP, "{vault}");

    let mut ro = File::open(m.p("f")).unwrap();
    assert_eq!(
        errno(ro.write(b"x")),
        libc::EBADF,
        "{vault}: a read-only handle"
    );
    assert_eq!(
        errno(ro.set_len(0)),
        libc::EINVAL,
        "{vault}: ftruncate(O_RDONLY)"
    );

    // fstat of a file unlinked while open: no link left, data still there.
    fs::remove_file(m.p("f")).unwrap();
    let md = ro.metadata().unwrap();
    assert_eq!((md.nlink(), md.len()), (0, 4), "{vault}");
    drop(ro);

    // Times before the epoch are kept.
    fs::write(m.p("old"), b"x").unwrap();
    let out = Command::new("touch")
        .args(["-d", "1960-01-01 00:00:00.5 UTC"])
        .arg(m.p("old"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    drop(m);
    let m = Mounted::new(&v, vault, &[]);
    let md = fs::metadata(m.p("old")).unwrap();
    assert_eq!(
        (md.mtime(), md.mtime_nsec()),
        (-315_619_200, 500_000_000),
        "{vault}"
    );
}

#[test]
fn errors_plain() {
    errors("plainv")
}

#[test]
fn errors_encrypted() {
    errors("local")
}
