//! Owners through the core: a new file is its creator's, chown and chmod follow Linux's
//! rules on a shared mount (`--allow-other`), and what they set is stored.

use super::{err, mode, Fx, Setup};
use crate::caller::Caller;
use crate::filesystem::SetAttrs;
use fuser::{Errno, TimeOrNow};

fn shared() -> Fx {
    Setup {
        allow_other: true,
        ..Setup::default()
    }
    .build()
}

fn chown(uid: Option<u32>, gid: Option<u32>) -> SetAttrs {
    SetAttrs {
        uid,
        gid,
        ..SetAttrs::default()
    }
}

#[test]
fn a_new_file_is_its_creators_and_says_so_in_the_store() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    let fh = f.create_as(&alice, "a").unwrap();
    let open = f.lookup("a").unwrap();
    assert_eq!((open.uid, open.gid), (1000, 100), "while open");
    f.close(fh).unwrap();
    let closed = f.lookup("a").unwrap();
    assert_eq!((closed.uid, closed.gid), (1000, 100), "once stored");
    let obj = f.store().file("a").unwrap();
    assert_eq!((obj.uid, obj.gid), (Some(1000), Some(100)));
}

#[test]
fn chown_and_chmod_follow_linux_rules_and_are_stored() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[200]);
    let bob = Caller::with_groups(1001, 100, &[]);
    let root = Caller::with_groups(0, 0, &[]);
    let fh = f.create_as(&alice, "a").unwrap();
    f.close(fh).unwrap();
    let ino = f.ino("a").unwrap();
    let by = |c: &Caller, set| f.core.do_setattr(c, ino, set, None);

    assert_eq!(err(by(&alice, chown(Some(1001), None))), Errno::EPERM);
    assert_eq!(err(by(&bob, mode(0o777))), Errno::EPERM);
    assert_eq!(err(by(&alice, chown(None, Some(300)))), Errno::EPERM);
    let given = SetAttrs {
        mtime: Some(TimeOrNow::SpecificTime(std::time::UNIX_EPOCH)),
        ..SetAttrs::default()
    };
    assert_eq!(err(by(&bob, given)), Errno::EPERM);

    assert_eq!(by(&alice, chown(None, Some(200))).unwrap().gid, 200);
    assert_eq!(by(&alice, mode(0o4755)).unwrap().perm, 0o4755);
    let a = by(&root, chown(Some(1001), None)).unwrap();
    assert_eq!(
        (a.uid, a.gid, a.perm),
        (1001, 200, 0o755),
        "set-user-ID cleared"
    );
    let obj = f.store().file("a").unwrap();
    assert_eq!(
        (obj.uid, obj.gid, obj.mode & 0o7777),
        (Some(1001), Some(200), 0o755)
    );
    assert!(a.ctime >= a.mtime, "a change of attributes is a change");
}

#[test]
fn chown_of_an_open_file_goes_up_with_it() {
    let f = shared();
    let root = Caller::with_groups(0, 0, &[]);
    let fh = f.create_as(&root, "a").unwrap();
    let ino = f.ino("a").unwrap();
    let a = f
        .core
        .do_setattr(&root, ino, chown(Some(5), Some(6)), Some(fh))
        .unwrap();
    assert_eq!((a.uid, a.gid), (5, 6));
    f.close(fh).unwrap();
    let obj = f.store().file("a").unwrap();
    assert_eq!((obj.uid, obj.gid), (Some(5), Some(6)));
}

#[test]
fn a_private_mount_shows_its_own_user_whoever_stored_the_file() {
    let f = Setup::default().build();
    let root = Caller::with_groups(0, 0, &[]);
    let fh = f
        .create_as(&Caller::with_groups(4242, 4242, &[]), "a")
        .unwrap();
    f.close(fh).unwrap();
    let a = f.lookup("a").unwrap();
    assert_eq!((a.uid, a.gid), (f.core.uid, f.core.gid));
    assert_eq!(
        f.store().file("a").unwrap().uid,
        Some(4242),
        "stored all the same"
    );
    let ino = f.ino("a").unwrap();
    f.core.do_setattr(&root, ino, mode(0o600), None).unwrap();
}

#[test]
fn a_symlink_is_its_creators_and_lchown_changes_it() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    let root = Caller::with_groups(0, 0, &[]);
    let l = f
        .core
        .do_symlink(&alice, f.ino("").unwrap(), "l".as_ref(), "t".as_ref())
        .unwrap();
    assert_eq!(
        (l.kind, l.uid, l.gid),
        (fuser::FileType::Symlink, 1000, 100)
    );
    let a = f
        .core
        .do_setattr(&root, l.ino, chown(Some(7), Some(8)), None)
        .unwrap();
    assert_eq!((a.kind, a.uid, a.gid), (fuser::FileType::Symlink, 7, 8));
    assert_eq!(f.core.do_readlink(l.ino).unwrap(), b"t");
    let obj = f.store().file("l").unwrap();
    assert_eq!((obj.uid, obj.gid), (Some(7), Some(8)));
}
