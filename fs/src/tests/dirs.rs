//! Directories' own attributes through the core: mkdir's mode and owner, chmod, chown
//! and utimens of a directory, all stored on its marker; set-group-ID directories; a
//! directory's times moving with its entries; a rename keeping what a directory is.

use super::{err, fx, mode, Fx, Setup};
use crate::caller::Caller;
use crate::filesystem::SetAttrs;
use crate::store::Store;
use fuser::{Errno, FileType, TimeOrNow};
use std::time::{Duration, UNIX_EPOCH};
use vault::vault::Meta;

fn shared() -> Fx {
    Setup {
        allow_other: true,
        ..Setup::default()
    }
    .build()
}

/// What the store holds on directory `path`'s marker.
fn marker(f: &Fx, path: &str) -> Meta {
    f.core
        .block_on(f.store().dir_meta(path))
        .unwrap()
        .expect("a marker")
}

#[test]
fn mkdir_stores_the_mode_after_the_umask_and_the_callers_owner() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    let a = f.mkdir_as(&alice, "d", 0o4777).unwrap();
    assert_eq!(a.kind, FileType::Directory);
    assert_eq!(
        (a.uid, a.gid, a.perm),
        (1000, 100, 0o755),
        "set-user-ID dropped"
    );
    let m = marker(&f, "d");
    assert_eq!(
        (m.uid, m.gid, m.mode),
        (Some(1000), Some(100), Some(0o40755))
    );
    let heads = f.store().calls("dir_meta");
    assert_eq!(f.lookup("d").unwrap().perm, 0o755);
    assert_eq!(f.store().calls("dir_meta"), heads, "known since mkdir");
    let sticky = f.mkdir_as(&alice, "t", 0o1777).unwrap();
    assert_eq!(sticky.perm, 0o1755, "the sticky bit is kept");
    assert_eq!(err(f.mkdir_as(&alice, "d", 0o777)), Errno::EEXIST);
}

#[test]
fn chmod_chown_and_utimens_of_a_directory_are_stored_on_its_marker() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[200]);
    let bob = Caller::with_groups(1001, 100, &[]);
    f.mkdir_as(&alice, "d", 0o755).unwrap();
    let ino = f.ino("d").unwrap();
    f.core
        .do_setxattr(ino, "user.k".as_ref(), Some(b"v"), 0)
        .unwrap();
    let by = |c: &Caller, set| f.core.do_setattr(c, ino, set, None);

    assert_eq!(err(by(&bob, mode(0o777))), Errno::EPERM, "not bob's");
    assert_eq!(by(&alice, mode(0o3770)).unwrap().perm, 0o3770);
    let group = SetAttrs {
        gid: Some(200),
        ..SetAttrs::default()
    };
    let a = by(&alice, group).unwrap();
    assert_eq!(
        (a.gid, a.perm),
        (200, 0o3770),
        "a directory keeps its set-ID bits"
    );
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let times = SetAttrs {
        atime: Some(TimeOrNow::SpecificTime(when)),
        mtime: Some(TimeOrNow::SpecificTime(when)),
        ..SetAttrs::default()
    };
    let a = by(&alice, times).unwrap();
    assert_eq!((a.mtime, a.atime), (when, when));
    assert!(a.ctime > when, "a change of attributes is a change");

    let m = marker(&f, "d");
    assert_eq!(
        (m.uid, m.gid, m.mode, m.mtime),
        (Some(1000), Some(200), Some(0o43770), Some(when))
    );
    let kept = f.store().decode_xattrs(m.xattrs.as_deref()).unwrap();
    assert_eq!(kept["user.k"], b"v", "extended attributes survive");
}

#[test]
fn entries_of_a_set_group_id_directory_take_its_group() {
    let f = shared();
    let root = Caller::with_groups(0, 0, &[]);
    let alice = Caller::with_groups(1000, 100, &[]);
    f.mkdir_as(&root, "g", 0o777).unwrap();
    let set = SetAttrs {
        gid: Some(500),
        mode: Some(0o2777),
        ..SetAttrs::default()
    };
    f.core
        .do_setattr(&root, f.ino("g").unwrap(), set, None)
        .unwrap();

    let fh = f.create_as(&alice, "g/file").unwrap();
    f.close(fh).unwrap();
    let file = f.lookup("g/file").unwrap();
    assert_eq!((file.uid, file.gid), (1000, 500));
    let sub = f.mkdir_as(&alice, "g/sub", 0o755).unwrap();
    assert_eq!((sub.uid, sub.gid, sub.perm), (1000, 500, 0o2755));
    let plain = f.mkdir_as(&alice, "plain", 0o755).unwrap();
    assert_eq!((plain.gid, plain.perm), (100, 0o755));
}

#[test]
fn a_directorys_times_move_with_its_entries() {
    let f = shared();
    f.mkdir("d").unwrap();
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let old = SetAttrs {
        mtime: Some(TimeOrNow::SpecificTime(when)),
        ..SetAttrs::default()
    };
    let d = f.setattr(f.ino("d").unwrap(), old, None).unwrap();
    assert_eq!(d.mtime, when);
    let later = |d: &fuser::FileAttr| {
        let now = f.lookup("d").unwrap();
        assert!(
            now.mtime > d.mtime && now.ctime >= d.ctime,
            "{d:?} -> {now:?}"
        );
        now
    };
    f.put("d/a", b"x").unwrap();
    let d = later(&d);
    std::thread::sleep(Duration::from_millis(5));
    f.mkdir("d/s").unwrap();
    let d = later(&d);
    std::thread::sleep(Duration::from_millis(5));
    f.rename("d/a", "d/b").unwrap();
    let d = later(&d);
    std::thread::sleep(Duration::from_millis(5));
    f.unlink("d/b").unwrap();
    let d = later(&d);
    std::thread::sleep(Duration::from_millis(5));
    f.rmdir("d/s").unwrap();
    later(&d);
}

#[test]
fn a_renamed_directory_keeps_its_mode_and_owner() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    f.mkdir_as(&alice, "d", 0o700).unwrap();
    f.put("d/x", b"x").unwrap();
    f.rename("d", "e").unwrap();
    let e = f.lookup("e").unwrap();
    assert_eq!((e.uid, e.gid, e.perm), (1000, 100, 0o700));
    assert_eq!(f.get("e/x").unwrap(), b"x");
}

#[test]
fn the_roots_attributes_change_for_the_mounts_life() {
    let f = shared();
    let root = f.ino("").unwrap();
    let set = SetAttrs {
        mode: Some(0o1777),
        uid: Some(65534),
        ..SetAttrs::default()
    };
    let a = f
        .core
        .do_setattr(&Caller::with_groups(0, 0, &[]), root, set, None)
        .unwrap();
    assert_eq!((a.perm, a.uid), (0o1777, 65534));
    assert_eq!(f.core.handle_attr(root, None).unwrap().perm, 0o1777);
}

#[test]
fn a_renamed_file_has_a_new_ctime() {
    let f = fx();
    f.put("a", b"x").unwrap();
    let before = f.lookup("a").unwrap();
    std::thread::sleep(Duration::from_millis(5));
    f.rename("a", "b").unwrap();
    let after = f.lookup("b").unwrap();
    assert!(after.ctime > before.ctime, "{before:?} -> {after:?}");
    assert_eq!(after.mtime, before.mtime);
}
