//! FIFOs, devices and sockets through the core: mknod stores an empty object with the
//! kind, the device number and the caller as owner; lookups, listings, chmod, chown,
//! touch, rename and unlink keep them what they are.

use super::{err, mode, name, Fx, Setup};
use crate::caller::Caller;
use crate::filesystem::SetAttrs;
use fuser::{Errno, FileAttr, FileHandle, FileType, TimeOrNow};
use std::time::{Duration, UNIX_EPOCH};

/// Device 1:3 (`/dev/null`) and 7:0 (`/dev/loop0`) as the kernel encodes them.
const NULL: u32 = (1 << 8) | 3;
const LOOP0: u32 = 7 << 8;

/// A mount shared with other users, where owners show as stored.
fn shared() -> Fx {
    Setup {
        allow_other: true,
        ..Setup::default()
    }
    .build()
}

impl Fx {
    /// mknod(2) by `caller` under umask 022.
    fn mknod_as(&self, caller: &Caller, path: &str, mode: u32, rdev: u32) -> crate::R<FileAttr> {
        self.core
            .do_mknod(caller, self.parent(path)?, name(path), mode, 0o022, rdev)
    }

    fn mknod(&self, path: &str, mode: u32, rdev: u32) -> crate::R<FileAttr> {
        self.mknod_as(&self.me(), path, mode, rdev)
    }
}

#[test]
fn mknod_stores_each_kind_with_its_mode_owner_and_number() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    let cases = [
        ("fifo", libc::S_IFIFO, 0, FileType::NamedPipe),
        ("null", libc::S_IFCHR, NULL, FileType::CharDevice),
        ("loop", libc::S_IFBLK, LOOP0, FileType::BlockDevice),
        ("sock", libc::S_IFSOCK, 0, FileType::Socket),
    ];
    for (path, kind, rdev, shown) in cases {
        let made = f.mknod_as(&alice, path, kind | 0o666, rdev).unwrap();
        let looked = f.lookup(path).unwrap();
        for a in [made, looked] {
            assert_eq!(a.kind, shown, "{path}");
            assert_eq!((a.perm, a.size, a.rdev), (0o644, 0, rdev), "{path}");
            assert_eq!((a.uid, a.gid), (1000, 100), "{path}");
        }
        let obj = f.store().file(path).unwrap();
        assert!(obj.data.is_empty(), "{path}: no data stored");
        assert_eq!(obj.mode, kind | 0o644, "{path}");
        assert_eq!((obj.uid, obj.gid), (Some(1000), Some(100)), "{path}");
        let stored_rdev = (rdev != 0).then_some(u64::from(rdev));
        assert_eq!(obj.rdev, stored_rdev, "{path}: only devices are numbered");
    }
    let fh = FileHandle(f.core.do_opendir(f.ino("").unwrap()).unwrap());
    let mut listed: Vec<(String, FileType)> = f
        .core
        .dir_entries(fh)
        .unwrap()
        .iter()
        .skip(2)
        .map(|e| (e.2.clone(), e.1))
        .collect();
    f.core.do_releasedir(fh);
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected: Vec<(String, FileType)> =
        cases.iter().map(|c| (c.0.to_string(), c.3)).collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected, "readdir tells each kind");
}

#[test]
fn kinds_and_numbers_come_back_from_the_store_with_or_without_listed_attributes() {
    for lists_meta in [true, false] {
        let mut store = crate::store::memory::Memory::new();
        store.lists_meta = lists_meta;
        let f = Setup {
            store,
            // Nothing cached: every lookup asks the store.
            ttl: Duration::ZERO,
            ..Setup::default()
        }
        .build();
        f.mknod("null", libc::S_IFCHR | 0o600, NULL).unwrap();
        f.mknod("fifo", libc::S_IFIFO | 0o640, 0).unwrap();
        let null = f.lookup("null").unwrap();
        assert_eq!(
            (null.kind, null.rdev, null.perm),
            (FileType::CharDevice, NULL, 0o600)
        );
        let fifo = f.lookup("fifo").unwrap();
        assert_eq!(
            (fifo.kind, fifo.rdev, fifo.perm),
            (FileType::NamedPipe, 0, 0o640)
        );
    }
}

#[test]
fn a_taken_name_a_read_only_mount_and_other_kinds_are_refused() {
    let f = fx_with_file();
    assert_eq!(err(f.mknod("f", libc::S_IFIFO | 0o644, 0)), Errno::EEXIST);
    f.mkdir("d").unwrap();
    assert_eq!(err(f.mknod("d", libc::S_IFIFO | 0o644, 0)), Errno::EEXIST);
    f.mknod("p", libc::S_IFIFO | 0o644, 0).unwrap();
    assert_eq!(
        err(f.mknod("p", libc::S_IFCHR | 0o644, NULL)),
        Errno::EEXIST
    );
    assert_eq!(err(f.mknod("x", libc::S_IFDIR | 0o755, 0)), Errno::EINVAL);
    assert_eq!(err(f.mknod("y", libc::S_IFLNK | 0o777, 0)), Errno::EINVAL);
    assert_eq!(f.store().file("p").unwrap().mode, libc::S_IFIFO | 0o644);

    let ro = Setup {
        read_only: true,
        ..Setup::default()
    }
    .build();
    assert_eq!(err(ro.mknod("p", libc::S_IFIFO | 0o644, 0)), Errno::EROFS);
    assert!(ro.store().paths().is_empty());
}

fn fx_with_file() -> Fx {
    let f = Setup::default().build();
    f.store().put_file("f", b"data");
    f
}

#[test]
fn mknod_of_a_regular_file_makes_an_empty_one_to_write() {
    let f = Setup::default().build();
    for (path, kind) in [("a", libc::S_IFREG), ("b", 0)] {
        let a = f.mknod(path, kind | 0o666, 0).unwrap();
        assert_eq!((a.kind, a.size, a.perm), (FileType::RegularFile, 0, 0o644));
        assert_eq!(f.store().file(path).unwrap().mode, libc::S_IFREG | 0o644);
        assert_eq!(f.get(path).unwrap(), b"");
    }
    let fh = f.open("a", libc::O_WRONLY).unwrap();
    f.write(fh, 0, b"now some").unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.get("a").unwrap(), b"now some");
}

#[test]
fn chmod_chown_and_touch_keep_the_kind_and_the_number() {
    let f = shared();
    let root = Caller::with_groups(0, 0, &[]);
    f.mknod_as(&root, "null", libc::S_IFCHR | 0o666, NULL)
        .unwrap();
    let ino = f.ino("null").unwrap();
    f.core.do_setattr(&root, ino, mode(0o600), None).unwrap();
    let chown = SetAttrs {
        uid: Some(1000),
        gid: Some(100),
        ..SetAttrs::default()
    };
    f.core.do_setattr(&root, ino, chown, None).unwrap();
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let touch = SetAttrs {
        mtime: Some(TimeOrNow::SpecificTime(when)),
        ..SetAttrs::default()
    };
    let a = f.core.do_setattr(&root, ino, touch, None).unwrap();
    assert_eq!(
        (a.kind, a.rdev, a.perm, a.uid, a.gid, a.mtime),
        (FileType::CharDevice, NULL, 0o600, 1000, 100, when)
    );
    let obj = f.store().file("null").unwrap();
    assert_eq!(
        (obj.mode, obj.rdev, obj.uid),
        (libc::S_IFCHR | 0o600, Some(u64::from(NULL)), Some(1000))
    );
}

#[test]
fn rename_and_unlink_move_and_remove_special_files_whole() {
    let f = shared();
    let alice = Caller::with_groups(1000, 100, &[]);
    f.mknod_as(&alice, "loop", libc::S_IFBLK | 0o660, LOOP0)
        .unwrap();
    f.mknod_as(&alice, "fifo", libc::S_IFIFO | 0o600, 0)
        .unwrap();
    f.mkdir("d").unwrap();
    f.rename("loop", "d/loop0").unwrap();
    assert_eq!(err(f.lookup("loop")), Errno::ENOENT);
    let a = f.lookup("d/loop0").unwrap();
    assert_eq!(
        (a.kind, a.rdev, a.perm, a.uid),
        (FileType::BlockDevice, LOOP0, 0o640, 1000)
    );
    let obj = f.store().file("d/loop0").unwrap();
    assert_eq!(
        (obj.mode, obj.rdev),
        (libc::S_IFBLK | 0o640, Some(u64::from(LOOP0)))
    );
    // Renamed over: the FIFO takes the device's place.
    f.rename("fifo", "d/loop0").unwrap();
    assert_eq!(f.lookup("d/loop0").unwrap().kind, FileType::NamedPipe);
    f.unlink("d/loop0").unwrap();
    assert_eq!(err(f.lookup("d/loop0")), Errno::ENOENT);
    assert!(f.store().paths().is_empty(), "{:?}", f.store().paths());
}
