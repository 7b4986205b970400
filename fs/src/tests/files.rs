//! Files through the core: create, write, read back, truncate, and write-back's dirty
//! tracking (what is uploaded when).

use super::{err, fx, size, Setup};
use crate::filesystem::SetAttrs;
use crate::store::memory::REGULAR;
use fuser::{Errno, FileType, TimeOrNow};
use std::time::{Duration, UNIX_EPOCH};

#[test]
fn a_written_file_is_in_the_store_after_close_and_reads_back() {
    let f = fx();
    f.put("a.txt", b"hello").unwrap();
    assert_eq!(&f.store().file("a.txt").unwrap().data[..], b"hello");
    assert_eq!(f.get("a.txt").unwrap(), b"hello");
    assert_eq!(f.lookup("a.txt").unwrap().size, 5);
    assert_eq!(f.cached_files(), 0, "the local copy goes at the last close");
}

#[test]
fn the_upload_states_mode_mtime_and_owner() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"x").unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let ino = f.ino("f").unwrap();
    let set = SetAttrs {
        mode: Some(0o600),
        mtime: Some(TimeOrNow::SpecificTime(t)),
        ..SetAttrs::default()
    };
    f.setattr(ino, set, Some(fh)).unwrap();
    f.close(fh).unwrap();
    let obj = f.store().file("f").unwrap();
    assert_eq!(obj.mode, REGULAR | 0o600);
    assert_eq!(obj.mtime, t);
    assert_eq!((obj.uid, obj.gid), (Some(f.core.uid), Some(f.core.gid)));
}

#[test]
fn create_applies_the_umask() {
    let f = fx();
    f.put("f", b"").unwrap();
    assert_eq!(f.store().file("f").unwrap().mode & 0o7777, 0o644);
    assert_eq!(f.lookup("f").unwrap().perm, 0o644);
}

#[test]
fn nothing_is_uploaded_before_flush_and_a_clean_flush_uploads_nothing() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"abc").unwrap();
    assert!(f.store().file("f").is_none());
    assert_eq!(f.lookup("f").unwrap().size, 3, "the local copy answers");
    f.core.do_flush(fh).unwrap();
    assert_eq!(f.store().calls("upload"), 1);
    f.core.do_flush(fh).unwrap();
    assert_eq!(f.store().calls("upload"), 1, "clean: not uploaded again");
    f.write(fh, 3, b"d").unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.store().calls("upload"), 2, "dirty again after a write");
    assert_eq!(&f.store().file("f").unwrap().data[..], b"abcd");
}

#[test]
fn opening_for_writing_downloads_unless_truncating() {
    let f = fx();
    f.store().put_file("f", b"0123456789");
    let fh = f.open("f", libc::O_WRONLY).unwrap();
    assert_eq!(f.store().calls("download"), 1);
    f.write(fh, 2, b"ab").unwrap();
    f.close(fh).unwrap();
    assert_eq!(&f.store().file("f").unwrap().data[..], b"01ab456789");
    let fh = f.open("f", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(
        f.store().calls("download"),
        1,
        "a truncating open fetches nothing"
    );
    f.close(fh).unwrap();
    assert_eq!(f.store().file("f").unwrap().data.len(), 0);
}

#[test]
fn an_open_without_a_write_uploads_nothing() {
    let f = fx();
    f.store().put_file("f", b"x");
    let fh = f.open("f", libc::O_RDWR).unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.store().calls("upload"), 0);
}

#[test]
fn two_writers_share_one_copy_and_the_last_close_removes_it() {
    let f = fx();
    let a = f.create("f").unwrap();
    let b = f.open("f", libc::O_WRONLY).unwrap();
    f.write(a, 0, b"aa").unwrap();
    f.write(b, 2, b"bb").unwrap();
    f.close(a).unwrap();
    assert_eq!(&f.store().file("f").unwrap().data[..], b"aabb");
    assert_eq!(f.cached_files(), 1, "still open through b");
    f.close(b).unwrap();
    assert_eq!(f.cached_files(), 0);
}

#[test]
fn truncate_shrinks_and_extends_with_zeros() {
    let f = fx();
    f.put("f", b"abcdef").unwrap();
    assert_eq!(f.truncate("f", 2).unwrap().size, 2);
    assert_eq!(f.get("f").unwrap(), b"ab");
    f.truncate("f", 4).unwrap();
    assert_eq!(f.get("f").unwrap(), b"ab\0\0");
    f.truncate("f", 0).unwrap();
    assert_eq!(f.store().file("f").unwrap().data.len(), 0);
}

#[test]
fn truncate_through_an_open_handle_goes_up_at_close() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"abcdef").unwrap();
    let ino = f.ino("f").unwrap();
    let a = f.setattr(ino, size(3), Some(fh)).unwrap();
    assert_eq!(a.size, 3);
    f.close(fh).unwrap();
    assert_eq!(&f.store().file("f").unwrap().data[..], b"abc");
}

#[test]
fn chmod_and_touch_of_a_closed_file_change_what_is_stored() {
    let f = fx();
    f.put("f", b"x").unwrap();
    let ino = f.ino("f").unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(7);
    let set = SetAttrs {
        mode: Some(0o640),
        mtime: Some(TimeOrNow::SpecificTime(t)),
        ..SetAttrs::default()
    };
    let a = f.setattr(ino, set, None).unwrap();
    assert_eq!((a.perm, a.mtime), (0o640, t));
    let obj = f.store().file("f").unwrap();
    assert_eq!((obj.mode, obj.mtime), (REGULAR | 0o640, t));
    assert_eq!(f.store().calls("download"), 0, "no content moved");
}

#[test]
fn a_sequential_reader_streams_and_gets_every_byte() {
    let f = fx();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    f.store().put_file("big", &data);
    let fh = f.open("big", libc::O_RDONLY).unwrap();
    let mut got = Vec::new();
    loop {
        let part = f.read(fh, got.len() as u64, 65536).unwrap();
        if part.is_empty() {
            break;
        }
        got.extend_from_slice(&part);
    }
    f.close(fh).unwrap();
    assert_eq!(got, data);
    assert_eq!(
        f.store().calls("stream_at"),
        1,
        "one stream after the first read"
    );
}

#[test]
fn a_random_reader_reads_ranges() {
    let f = fx();
    f.store().put_file("f", b"0123456789");
    let fh = f.open("f", libc::O_RDONLY).unwrap();
    assert_eq!(f.read(fh, 7, 2).unwrap(), b"78");
    assert_eq!(f.read(fh, 1, 3).unwrap(), b"123");
    assert_eq!(f.read(fh, 9, 10).unwrap(), b"9");
    f.close(fh).unwrap();
}

#[test]
fn a_reader_sees_a_replacement_written_through_the_mount() {
    let f = fx();
    f.put("f", b"old!").unwrap();
    let r = f.open("f", libc::O_RDONLY).unwrap();
    assert_eq!(f.read(r, 0, 4).unwrap(), b"old!");
    f.put("f", b"new!").unwrap();
    assert_eq!(f.read(r, 0, 4).unwrap(), b"new!");
    f.close(r).unwrap();
}

#[test]
fn writes_past_the_cache_size_fail_with_enospc() {
    let f = Setup {
        cache_size: Some(10),
        ..Setup::default()
    }
    .build();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, &[1; 8]).unwrap();
    assert_eq!(err(f.write(fh, 8, &[2; 8])), Errno::ENOSPC);
    f.close(fh).unwrap();
    assert_eq!(
        f.store().file("f").unwrap().data.len(),
        8,
        "what fitted is kept"
    );
}

#[test]
fn symlinks_store_their_target() {
    let f = fx();
    let root = f.ino("").unwrap();
    let a = f
        .core
        .do_symlink(&f.me(), root, "l".as_ref(), std::path::Path::new("../t"))
        .unwrap();
    assert_eq!(a.kind, FileType::Symlink);
    assert_eq!(f.core.do_readlink(a.ino).unwrap(), b"../t");
    let file = f
        .core
        .do_create(&f.me(), root, "r".as_ref(), 0o644, 0)
        .unwrap()
        .0;
    assert_eq!(err(f.core.do_readlink(file.ino)), Errno::EINVAL);
}

#[test]
fn an_encrypted_stores_copies_are_sealed_on_disk_and_read_back() {
    let mut store = crate::store::memory::Memory::new();
    store.encrypted = true;
    let f = Setup {
        store,
        ..Setup::default()
    }
    .build();
    let secret = b"sealed-marker-91c0 ".repeat(10_000);
    f.put("s", &secret).unwrap();
    // Downloaded into a sealed copy, changed in part, read back while open.
    let fh = f.open("s", libc::O_RDWR).unwrap();
    f.write(fh, 70_000, b"sealed-marker-91c0 in part").unwrap();
    let mut want = secret.clone();
    want[70_000..70_026].copy_from_slice(b"sealed-marker-91c0 in part");
    assert!(f.read(fh, 0, 1 << 20).unwrap() == want);
    let copy = f.core.local("s").unwrap();
    let mut disk = Vec::new();
    std::io::Read::read_to_end(&mut copy.file.file(), &mut disk).unwrap();
    assert!(disk.len() > want.len());
    assert!(!disk.windows(18).any(|w| w == b"sealed-marker-91c0"));
    // Truncated: the size is the plaintext's, not the slots'.
    let ino = f.ino("s").unwrap();
    let attr = f.setattr(ino, size(100_000), Some(fh));
    assert_eq!(attr.unwrap().size, 100_000);
    f.close(fh).unwrap();
    assert!(f.store().file("s").unwrap().data[..] == want[..100_000]);
    assert!(f.get("s").unwrap() == want[..100_000]);
}
