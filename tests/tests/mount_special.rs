//! FIFOs, devices and sockets through a real `cybs3 mount` (shared with `--allow-other`),
//! on a plain and an encrypted vault: root makes them (mkfifo, mknod, a socket's bind),
//! stat shows their kind, number, mode and owner, a fresh mount shows them again, a FIFO
//! carries data between a writer and a reader (also another user's), rename and unlink
//! work, and `cybs3 sync` carries them both ways while `cybs3 cp` skips them with a
//! warning. Another user (through `setpriv`) meets the kernel's rules first: no new name
//! in a directory of root's, 0755 (EACCES), and, let past that, a FIFO of its own
//! but no device (EPERM, CAP_MKNOD). Needs root, /dev/fuse and util-linux's `setpriv`.

use cybs3_tests::mount::{as_user, plain_vault, shared_mount, Mounted};
use cybs3_tests::{cybs3, LocalVault};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `sh -c script` as uid and gid 1000 with CAP_DAC_OVERRIDE alone: past every
/// directory's permissions, without the capability to make devices.
fn as_user_overriding(script: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=1000",
            "--regid=1000",
            "--clear-groups",
            "--inh-caps=+dac_override",
            "--ambient-caps=+dac_override",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv")
}

/// mknod(2) of `path` with `mode` (kind and permissions) and device `rdev`.
fn mknod(path: &Path, mode: u32, rdev: libc::dev_t) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a NUL-terminated path that outlives the call.
    match unsafe { libc::mknod(c.as_ptr(), mode, rdev) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// What stat shows of a special file: its kind, number, permissions and owner.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    kind: &'static str,
    rdev: u64,
    perm: u32,
    uid: u32,
    gid: u32,
}

fn shown(p: &Path) -> Shown {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {p:?}: {e}"));
    let t = md.file_type();
    let kind = match () {
        _ if t.is_fifo() => "fifo",
        _ if t.is_char_device() => "char",
        _ if t.is_block_device() => "block",
        _ if t.is_socket() => "socket",
        _ if t.is_file() => "file",
        _ => "other",
    };
    assert_eq!(md.len(), 0, "{p:?}: special files hold no data");
    Shown {
        kind,
        rdev: md.rdev(),
        perm: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
    }
}

fn root(kind: &'static str, rdev: u64, perm: u32) -> Shown {
    Shown {
        kind,
        rdev,
        perm,
        uid: 0,
        gid: 0,
    }
}

/// A writer and a reader (each a process, each given 10 s) meet at `fifo` as `uid`.
fn through_fifo(fifo: &Path, uid: u32) -> Vec<u8> {
    let path = fifo.to_str().unwrap();
    let mut writer = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "timeout",
            "10",
            "sh",
            "-c",
            &format!("printf 'through the pipe' > '{path}'"),
        ])
        .spawn()
        .unwrap();
    let read = as_user(uid, uid, &format!("timeout 10 cat '{path}'"));
    let wrote = writer.wait().unwrap();
    assert!(read.status.success(), "reader: {read:?}");
    assert!(wrote.success(), "writer: {wrote:?}");
    read.stdout
}

fn special(vault: &str) {
    // SAFETY: umask only sets the process's mask.
    unsafe { libc::umask(0o022) };
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = shared_mount(&v, vault);
    let (null, loop0) = (libc::makedev(1, 3), libc::makedev(7, 0));
    mknod(&m.p("fifo"), libc::S_IFIFO | 0o666, 0).unwrap();
    mknod(&m.p("null"), libc::S_IFCHR | 0o666, null).unwrap();
    mknod(&m.p("loop0"), libc::S_IFBLK | 0o660, loop0).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(m.p("sock")).unwrap();
    drop(listener);
    let expected = [
        ("fifo", root("fifo", 0, 0o644)),
        ("null", root("char", null, 0o644)),
        ("loop0", root("block", loop0, 0o640)),
        // bind(2) makes a socket with 0777 less the umask.
        ("sock", root("socket", 0, 0o755)),
    ];
    for (name, want) in &expected {
        assert_eq!(&shown(&m.p(name)), want, "{vault}: {name}");
    }
    // readdir's entry types (d_type) tell the kinds too, without a stat.
    for e in std::fs::read_dir(&m.dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let kind = match e.file_name().to_str().unwrap() {
            "fifo" => t.is_fifo(),
            "null" => t.is_char_device(),
            "loop0" => t.is_block_device(),
            "sock" => t.is_socket(),
            other => panic!("{vault}: {other} listed"),
        };
        assert!(kind, "{vault}: {:?} listed as {t:?}", e.file_name());
    }
    let e = mknod(&m.p("fifo"), libc::S_IFIFO | 0o644, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{vault}: {e}");

    // The kernel opens a FIFO itself: data passes without reaching the vault.
    std::fs::set_permissions(m.p("fifo"), std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        through_fifo(&m.p("fifo"), 0),
        b"through the pipe",
        "{vault}"
    );
    assert_eq!(
        through_fifo(&m.p("fifo"), 1000),
        b"through the pipe",
        "{vault}"
    );
    // A device on a `nodev` mount (every cybs3 mount) is shown, never opened.
    let e = std::fs::File::open(m.p("null")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{vault}: {e}");

    // chown, chmod and touch keep the kind and the number.
    std::os::unix::fs::chown(m.p("null"), Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(m.p("null"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let touched = Command::new("touch")
        .args(["-h", "-d", "@1000000000"])
        .arg(m.p("null"))
        .status()
        .unwrap();
    assert!(touched.success());
    let want_null = Shown {
        kind: "char",
        rdev: null,
        perm: 0o600,
        uid: 1000,
        gid: 1000,
    };
    assert_eq!(shown(&m.p("null")), want_null, "{vault}");
    let mtime = std::fs::symlink_metadata(m.p("null")).unwrap().mtime();
    assert_eq!(mtime, 1_000_000_000, "{vault}");

    // Another user: the mount point is the mount user's (root's, 0755), so the kernel
    // refuses any new name in it before it asks whether a device may be made.
    let by_user = m.p("by-user");
    let quoted = format!("'{}'", by_user.display());
    for script in [format!("mkfifo {quoted}"), format!("mknod {quoted} c 1 3")] {
        let out = as_user(1000, 1000, &script);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("Permission denied"),
            "{vault}: {script}: {out:?}"
        );
        assert!(std::fs::symlink_metadata(&by_user).is_err(), "{vault}");
    }
    // Given the directory (CAP_DAC_OVERRIDE) but not CAP_MKNOD, the user makes a FIFO,
    // its own, and the kernel refuses it a device (EPERM) without asking the mount.
    let out = as_user_overriding(&format!("mknod {quoted} c 1 3"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Operation not permitted"),
        "{vault}: {out:?}"
    );
    assert!(std::fs::symlink_metadata(&by_user).is_err(), "{vault}");
    let out = as_user_overriding(&format!("mkfifo -m 0620 {quoted}"));
    assert!(out.status.success(), "{vault}: {out:?}");
    let theirs = Shown {
        kind: "fifo",
        rdev: 0,
        perm: 0o620,
        uid: 1000,
        gid: 1000,
    };
    assert_eq!(shown(&by_user), theirs, "{vault}");

    // Stored: a fresh mount shows all of it again.
    drop(m);
    let m = shared_mount(&v, vault);
    assert_eq!(shown(&m.p("null")), want_null, "{vault}: remounted");
    for (name, want) in &expected[2..] {
        assert_eq!(&shown(&m.p(name)), want, "{vault}: {name} remounted");
    }
    assert_eq!(shown(&m.p("by-user")), theirs, "{vault}: remounted");
    assert_eq!(shown(&m.p("fifo")).perm, 0o666, "{vault}: remounted");
    assert_eq!(
        through_fifo(&m.p("fifo"), 0),
        b"through the pipe",
        "{vault}"
    );

    // Rename (a server-side copy) and unlink.
    std::fs::create_dir(m.p("d")).unwrap();
    std::fs::rename(m.p("loop0"), m.p("d/loop")).unwrap();
    assert!(std::fs::symlink_metadata(m.p("loop0")).is_err(), "{vault}");
    assert_eq!(
        shown(&m.p("d/loop")),
        root("block", loop0, 0o640),
        "{vault}"
    );
    std::fs::remove_file(m.p("sock")).unwrap();
    assert!(std::fs::symlink_metadata(m.p("sock")).is_err(), "{vault}");

    sync_and_cp(&v, vault, &m, null);
}

/// `cybs3 sync` down makes the vault's FIFO and devices again (as root) and up stores a
/// local FIFO; `cybs3 cp` skips a FIFO with a warning instead of writing an empty file.
fn sync_and_cp(v: &LocalVault, vault: &str, m: &Mounted, null: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let down = tmp.path().join("down");
    let out = cybs3(
        &v.home,
        &["sync", &format!("{vault}:"), down.to_str().unwrap()],
    );
    assert!(out.status.success(), "{vault}: sync down: {out:?}");
    let fifo = std::fs::symlink_metadata(down.join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo(), "{vault}: {fifo:?}");
    assert_eq!(fifo.mode() & 0o7777, 0o666, "{vault}: the stored mode");
    let dev = std::fs::symlink_metadata(down.join("null")).unwrap();
    assert!(dev.file_type().is_char_device(), "{vault}: {dev:?}");
    assert_eq!((dev.rdev(), dev.mode() & 0o7777), (null, 0o600), "{vault}");
    assert_eq!(dev.mtime(), 1_000_000_000, "{vault}: the stored mtime");
    let block = std::fs::symlink_metadata(down.join("d/loop")).unwrap();
    assert!(block.file_type().is_block_device(), "{vault}");
    // Nothing differs now: a second sync transfers nothing.
    let again = cybs3(
        &v.home,
        &[
            "sync",
            "--json",
            &format!("{vault}:"),
            down.to_str().unwrap(),
        ],
    );
    assert!(again.status.success(), "{vault}: {again:?}");
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(!again.contains("\"download\""), "{vault}: {again}");

    let up = tmp.path().join("up");
    std::fs::create_dir(&up).unwrap();
    mknod(&up.join("pipe"), libc::S_IFIFO | 0o600, 0).unwrap();
    let out = cybs3(
        &v.home,
        &["sync", up.to_str().unwrap(), &format!("{vault}:up")],
    );
    assert!(out.status.success(), "{vault}: sync up: {out:?}");
    cybs3_tests::mount::wait_for("the uploaded FIFO through the mount", || {
        std::fs::symlink_metadata(m.p("up/pipe")).is_ok_and(|md| md.file_type().is_fifo())
    });
    assert_eq!(shown(&m.p("up/pipe")), root("fifo", 0, 0o600), "{vault}");

    // Another user may make the FIFO but no device: it is skipped with a warning.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let status = Command::new("cp")
        .args(["-a"])
        .arg(&v.home)
        .arg(theirs.join("home"))
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("chown")
        .args(["-R", "1000:1000"])
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_user(
        1000,
        1000,
        &format!(
            "CYBS3_HOME='{home}' '{bin}' sync {vault}: '{down}'",
            home = theirs.join("home").display(),
            bin = cybs3_tests::bin().display(),
            down = theirs.join("down").display(),
        ),
    );
    assert!(
        out.status.success(),
        "{vault}: sync down by a user: {out:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping null: only root may make devices"),
        "{vault}: {stderr}"
    );
    assert!(stderr.contains("skipping d/loop"), "{vault}: {stderr}");
    let fifo = std::fs::symlink_metadata(theirs.join("down/fifo")).unwrap();
    assert!(fifo.file_type().is_fifo(), "{vault}: {fifo:?}");
    assert_eq!((fifo.uid(), fifo.gid()), (1000, 1000), "{vault}");
    for skipped in ["null", "d/loop"] {
        let p = theirs.join("down").join(skipped);
        assert!(std::fs::symlink_metadata(&p).is_err(), "{vault}: {p:?}");
    }

    let copied = tmp.path().join("copied");
    let out = cybs3(
        &v.home,
        &["cp", &format!("{vault}:fifo"), copied.to_str().unwrap()],
    );
    assert!(out.status.success(), "{vault}: cp: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert!(
        !copied.exists(),
        "{vault}: no empty file in the FIFO's place"
    );
    let pipe = up.join("pipe");
    let out = cybs3(
        &v.home,
        &["cp", pipe.to_str().unwrap(), &format!("{vault}:cp-pipe")],
    );
    assert!(out.status.success(), "{vault}: cp up: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping") && stderr.contains("FIFO"),
        "{stderr}"
    );
    let listed = cybs3(&v.home, &["ls", &format!("{vault}:cp-pipe")]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        !listed.contains("cp-pipe"),
        "{vault}: nothing stored: {listed}"
    );
}

#[test]
fn special_files_plain() {
    special("plainv")
}

#[test]
fn special_files_encrypted() {
    special("local")
}
