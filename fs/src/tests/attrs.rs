//! Extended attributes, read-only mounts, and store errors as the caller sees them.

use super::{err, fx, mode, Setup};
use crate::store::Error;
use fuser::{Errno, INodeNo, OpenFlags, RenameFlags};
use std::ffi::OsStr;

fn set(f: &super::Fx, path: &str, name: &str, value: &[u8], flags: i32) -> crate::R<()> {
    f.core
        .do_setxattr(f.ino(path)?, OsStr::new(name), Some(value), flags)
}

fn get(f: &super::Fx, path: &str, name: &str) -> crate::R<Vec<u8>> {
    f.core.do_getxattr(f.ino(path)?, OsStr::new(name))
}

#[test]
fn extended_attributes_of_a_closed_file_round_trip() {
    let f = fx();
    f.put("f", b"x").unwrap();
    set(&f, "f", "user.a", b"1", 0).unwrap();
    set(&f, "f", "user.b", b"2", 0).unwrap();
    assert_eq!(get(&f, "f", "user.a").unwrap(), b"1");
    let ino = f.ino("f").unwrap();
    assert_eq!(f.core.do_listxattr(ino).unwrap(), b"user.a\0user.b\0");
    assert!(
        f.store().file("f").unwrap().xattrs.is_some(),
        "stored with the object"
    );
    f.core.do_setxattr(ino, "user.a".as_ref(), None, 0).unwrap();
    assert_eq!(err(get(&f, "f", "user.a")), Errno::ENODATA);
    assert_eq!(f.get("f").unwrap(), b"x", "the content is untouched");
}

#[test]
fn xattr_create_and_replace_flags_are_honoured() {
    let f = fx();
    f.put("f", b"").unwrap();
    let r = set(&f, "f", "user.a", b"1", libc::XATTR_REPLACE);
    assert_eq!(err(r), Errno::ENODATA);
    set(&f, "f", "user.a", b"1", libc::XATTR_CREATE).unwrap();
    let r = set(&f, "f", "user.a", b"2", libc::XATTR_CREATE);
    assert_eq!(err(r), Errno::EEXIST);
    set(&f, "f", "user.a", b"2", libc::XATTR_REPLACE).unwrap();
    assert_eq!(get(&f, "f", "user.a").unwrap(), b"2");
    let r = f
        .core
        .do_setxattr(f.ino("f").unwrap(), "user.zz".as_ref(), None, 0);
    assert_eq!(err(r), Errno::ENODATA);
}

#[test]
fn only_user_attributes_on_files_and_directories() {
    let f = fx();
    f.put("f", b"").unwrap();
    assert_eq!(err(set(&f, "f", "trusted.a", b"1", 0)), Errno::EOPNOTSUPP);
    assert_eq!(err(set(&f, "", "user.a", b"1", 0)), Errno::EOPNOTSUPP);
    let root = f.ino("").unwrap();
    f.core
        .do_symlink(&f.me(), root, "l".as_ref(), std::path::Path::new("f"))
        .unwrap();
    assert_eq!(err(set(&f, "l", "user.a", b"1", 0)), Errno::EPERM);
}

#[test]
fn attributes_too_big_to_store_are_enospc() {
    let f = fx();
    f.put("f", b"").unwrap();
    assert_eq!(err(set(&f, "f", "user.big", &[7; 2000], 0)), Errno::ENOSPC);
}

#[test]
fn a_directory_keeps_its_attributes_on_its_marker() {
    let f = fx();
    f.mkdir("d").unwrap();
    set(&f, "d", "user.k", b"v", 0).unwrap();
    assert_eq!(f.store().marker("d").unwrap()["user.k"], b"v");
    assert_eq!(get(&f, "d", "user.k").unwrap(), b"v");
}

#[test]
fn attributes_of_an_open_file_go_up_with_its_content() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"c").unwrap();
    set(&f, "f", "user.k", b"v", 0).unwrap();
    // Uploaded with the content (the setxattr's hold on the copy goes up as a close
    // would), never as a metadata copy of an object that is not there yet.
    assert!(f.store().file("f").unwrap().xattrs.is_some());
    assert_eq!(get(&f, "f", "user.k").unwrap(), b"v");
    f.close(fh).unwrap();
    assert_eq!(f.store().calls("set_xattrs"), 0);
    assert_eq!(get(&f, "f", "user.k").unwrap(), b"v");
    assert_eq!(&f.store().file("f").unwrap().data[..], b"c");
}

#[test]
fn a_read_only_mount_refuses_every_change() {
    let f = Setup {
        read_only: true,
        ..Setup::default()
    }
    .build();
    f.store().put_file("f", b"x");
    let root = INodeNo(1);
    let ino = f.ino("f").unwrap();
    assert_eq!(err(f.create("g")), Errno::EROFS);
    assert_eq!(
        err(f.core.do_mkdir(&f.me(), root, "d".as_ref(), 0o777, 0)),
        Errno::EROFS
    );
    assert_eq!(err(f.unlink("f")), Errno::EROFS);
    assert_eq!(
        err(f.rename_with("f", "g", RenameFlags::empty())),
        Errno::EROFS
    );
    assert_eq!(err(f.open("f", libc::O_WRONLY)), Errno::EROFS);
    assert_eq!(err(f.truncate("f", 0)), Errno::EROFS);
    assert_eq!(err(f.setattr(ino, mode(0o600), None)), Errno::EROFS);
    assert_eq!(err(set(&f, "f", "user.a", b"1", 0)), Errno::EROFS);
    assert_eq!(err(f.core.do_access(ino, true)), Errno::EROFS);
    f.core.do_access(ino, false).unwrap();
    assert_eq!(f.get("f").unwrap(), b"x", "reads work");
    let fh = f.core.do_open(ino, OpenFlags(libc::O_RDONLY)).unwrap();
    f.core.do_release(fuser::FileHandle(fh)).unwrap();
    assert_eq!(f.store().calls("upload") + f.store().calls("put_marker"), 0);
}

#[test]
fn store_errors_reach_the_caller_as_their_errno() {
    let f = fx();
    f.store().put_file("f", b"x");
    let cases: [(fn() -> Error, Errno); 5] = [
        (|| Error::AccessDenied("403".into()), Errno::EACCES),
        (|| Error::SessionExpired("expired".into()), Errno::EACCES),
        (|| Error::Transport("timeout".into()), Errno::EIO),
        (|| Error::Conflict("409".into()), Errno::EBUSY),
        (
            || Error::Local(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            Errno::ENOSPC,
        ),
    ];
    for (fail, errno) in cases {
        f.store().fail_with(Some(fail));
        // Each operation that asks the store: a listing, a rename, a mkdir.
        let fresh = Setup::default().build();
        fresh.store().fail_with(Some(fail));
        assert_eq!(err(fresh.lookup("f")), errno);
        assert_eq!(err(f.mkdir("d")), errno);
        assert_eq!(err(f.unlink("f")), errno);
    }
    f.store().fail_with(None);
    assert_eq!(f.get("f").unwrap(), b"x");
}

#[test]
fn a_failed_upload_fails_the_close_and_keeps_the_local_copy() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"precious").unwrap();
    f.store().fail_with(Some(|| {
        Error::Local(std::io::Error::from_raw_os_error(libc::ENOSPC))
    }));
    assert_eq!(err(f.close(fh)), Errno::ENOSPC);
    f.store().fail_with(None);
    assert_eq!(f.cached_files(), 0);
    let kept = super::files_in(&f.dir.path().join(crate::writeback::UNSAVED));
    assert_eq!(kept.len(), 1, "kept for the user to recover");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), b"precious");
}

#[test]
fn a_reader_of_a_replaced_object_reopens_it() {
    let f = fx();
    f.store().put_file("f", b"one");
    let r = f.open("f", libc::O_RDONLY).unwrap();
    assert_eq!(f.read(r, 0, 3).unwrap(), b"one");
    // Replaced by another client: the old reader's If-Match fails, the read reopens.
    f.store().put_file("f", b"two");
    assert_eq!(f.read(r, 0, 3).unwrap(), b"two");
    f.close(r).unwrap();
}
