//! Directories and the cache: mkdir, rmdir, rename of trees, readdir, and the TTL of
//! listings and attributes.

use super::{err, fx, Setup};
use crate::store::memory::Memory;
use fuser::{Errno, FileType};
use std::time::Duration;

#[test]
fn mkdir_stores_a_marker_and_rmdir_removes_it() {
    let f = fx();
    let a = f.mkdir("d").unwrap();
    assert_eq!(a.kind, FileType::Directory);
    assert!(f.store().marker("d").is_some());
    assert_eq!(err(f.mkdir("d")), Errno::EEXIST);
    f.rmdir("d").unwrap();
    assert!(f.store().marker("d").is_none());
    assert_eq!(err(f.lookup("d")), Errno::ENOENT);
}

#[test]
fn rmdir_and_unlink_check_what_they_remove() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.put("d/f", b"").unwrap();
    assert_eq!(err(f.rmdir("d")), Errno::ENOTEMPTY);
    assert_eq!(err(f.rmdir("d/f")), Errno::ENOTDIR);
    assert_eq!(err(f.unlink("d")), Errno::EISDIR);
    assert_eq!(err(f.unlink("nope")), Errno::ENOENT);
    assert_eq!(err(f.rmdir("nope")), Errno::ENOENT);
}

#[test]
fn a_directory_with_a_file_open_for_writing_is_not_empty() {
    let f = fx();
    f.mkdir("d").unwrap();
    let fh = f.create("d/f").unwrap();
    assert_eq!(err(f.rmdir("d")), Errno::ENOTEMPTY);
    f.close(fh).unwrap();
}

#[test]
fn create_over_a_directory_is_eisdir() {
    let f = fx();
    f.mkdir("d").unwrap();
    assert_eq!(err(f.create("d")), Errno::EISDIR);
}

#[test]
fn rename_moves_a_directory_tree_with_its_attributes() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.mkdir("d/sub").unwrap();
    f.put("d/a", b"A").unwrap();
    f.put("d/sub/b", b"B").unwrap();
    let ino = f.ino("d/sub/b").unwrap();
    let d = f.ino("d").unwrap();
    f.core
        .do_setxattr(d, "user.k".as_ref(), Some(b"v"), 0)
        .unwrap();
    f.rename("d", "e").unwrap();
    assert_eq!(f.store().paths(), ["e/a", "e/sub/b"]);
    assert!(f.store().marker("d").is_none() && f.store().marker("d/sub").is_none());
    assert_eq!(f.store().marker("e").unwrap()["user.k"], b"v");
    assert_eq!(f.get("e/sub/b").unwrap(), b"B");
    assert_eq!(f.ino("e/sub/b").unwrap(), ino, "inodes move with the tree");
    assert_eq!(err(f.lookup("d")), Errno::ENOENT);
    assert_eq!(f.names("").unwrap(), ["e"]);
}

#[test]
fn rename_of_directories_checks_the_target() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.mkdir("full").unwrap();
    f.put("full/x", b"").unwrap();
    f.mkdir("empty").unwrap();
    f.put("file", b"").unwrap();
    assert_eq!(err(f.rename("d", "d/inner")), Errno::EINVAL);
    assert_eq!(err(f.rename("d", "full")), Errno::ENOTEMPTY);
    assert_eq!(err(f.rename("d", "file")), Errno::ENOTDIR);
    assert_eq!(err(f.rename("file", "d")), Errno::EISDIR);
    assert_eq!(err(f.rename("nope", "x")), Errno::ENOENT);
    f.rename("d", "empty").unwrap();
    assert_eq!(f.lookup("empty").unwrap().kind, FileType::Directory);
    assert_eq!(err(f.lookup("d")), Errno::ENOENT);
}

#[test]
fn readdir_shows_stored_names_and_files_not_yet_uploaded() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.store().put_file("stored", b"");
    let fh = f.create("pending").unwrap();
    assert_eq!(f.names("").unwrap(), ["d", "pending", "stored"]);
    f.close(fh).unwrap();
}

#[test]
fn listings_are_trusted_for_the_ttl_and_asked_again_after() {
    let f = Setup {
        ttl: Duration::from_millis(200),
        ..Setup::default()
    }
    .build();
    f.store().put_file("a", b"");
    f.lookup("a").unwrap();
    f.store().put_file("b", b"");
    // Another client's file: not seen while the listing is fresh.
    assert_eq!(err(f.lookup("b")), Errno::ENOENT);
    assert_eq!(f.store().calls("list"), 1);
    std::thread::sleep(Duration::from_millis(250));
    f.lookup("b").unwrap();
    assert_eq!(f.store().calls("list"), 2);
}

#[test]
fn attributes_cost_one_stat_per_ttl_when_listings_lack_them() {
    let f = Setup {
        store: Memory::default(),
        ttl: Duration::from_millis(200),
        ..Setup::default()
    }
    .build();
    f.store().put_file("a", b"xyz");
    assert_eq!(f.lookup("a").unwrap().size, 3);
    assert_eq!(f.lookup("a").unwrap().size, 3);
    assert_eq!(f.store().calls("stat"), 1);
    f.store().put_file("a", b"longer");
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(f.lookup("a").unwrap().size, 6);
    assert_eq!(f.store().calls("stat"), 2);
}

#[test]
fn a_zero_ttl_asks_every_time() {
    let f = Setup {
        ttl: Duration::ZERO,
        ..Setup::default()
    }
    .build();
    f.store().put_file("a", b"");
    f.lookup("a").unwrap();
    f.lookup("a").unwrap();
    assert_eq!(f.store().calls("list"), 2);
}

#[test]
fn changes_through_the_mount_are_seen_at_once_despite_the_ttl() {
    let f = fx();
    f.lookup("x").unwrap_err();
    f.put("x", b"1").unwrap();
    f.mkdir("d").unwrap();
    f.unlink("x").unwrap();
    assert_eq!(f.names("").unwrap(), ["d"]);
    assert_eq!(err(f.lookup("x")), Errno::ENOENT);
}

#[test]
fn names_that_are_not_names_are_einval() {
    let f = fx();
    assert_eq!(
        err(f.core.do_lookup(f.ino("").unwrap(), "a/b".as_ref())),
        Errno::EINVAL
    );
    assert_eq!(
        err(f
            .core
            .do_mkdir(&f.me(), f.ino("").unwrap(), "..".as_ref(), 0o777, 0)),
        Errno::EINVAL
    );
}
