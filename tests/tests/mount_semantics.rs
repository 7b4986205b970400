//! Owners and modes through a real `cybs3 mount --allow-other`, on a plain and an
//! encrypted vault: files show who created them, chown and chmod follow Linux's rules
//! for root and for other users (run through `setpriv`), and all of it is stored, so a
//! fresh mount shows it again. Needs root, /dev/fuse and util-linux's `setpriv`.

use cybs3_tests::mount::{plain_vault, Mounted};
use cybs3_tests::{cybs3, LocalVault};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `sh -c script` as `uid`/`gid` with no supplementary groups.
fn as_user(uid: u32, gid: u32, script: &str) -> Output {
    Command::new("setpriv")
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

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap();
    (md.uid(), md.gid(), md.mode() & 0o7777)
}

fn mount(v: &LocalVault, vault: &str) -> Mounted {
    let m = Mounted::new(v, vault, &["--allow-other"]);
    // Other users must reach the mount point through its temporary parent.
    let parent = m.dir.parent().unwrap();
    std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

fn owners(vault: &str) {
    let v = LocalVault::new();
    if vault == "plainv" {
        plain_vault(&v);
    }
    let m = mount(&v, vault);
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
    let m = mount(&v, vault);
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
