//! Open files against unlink and rename: POSIX keeps an unlinked file's data for its
//! handles, and handles follow a renamed file.

use super::{err, fx};
use fuser::{Errno, RenameFlags};

#[test]
fn a_file_unlinked_while_open_for_writing_lives_on_in_its_handle() {
    let f = fx();
    let fh = f.create("f").unwrap();
    f.write(fh, 0, b"data").unwrap();
    let ino = f.ino("f").unwrap();
    f.unlink("f").unwrap();
    assert_eq!(err(f.lookup("f")), Errno::ENOENT);
    f.write(fh, 4, b"more").unwrap();
    assert_eq!(f.read(fh, 0, 100).unwrap(), b"datamore");
    // fstat by inode alone still answers, with no link left.
    let a = f.core.handle_attr(ino, None).unwrap();
    assert_eq!((a.size, a.nlink), (8, 0));
    assert_eq!(f.core.handle_attr(ino, Some(fh)).unwrap().nlink, 0);
    f.close(fh).unwrap();
    assert!(f.store().file("f").is_none(), "never uploaded again");
    assert_eq!(err(f.core.handle_attr(ino, None)), Errno::ENOENT);
    assert_eq!(f.cached_files(), 0);
}

#[test]
fn a_file_unlinked_while_open_for_reading_still_reads() {
    let f = fx();
    f.put("f", b"kept").unwrap();
    let r = f.open("f", libc::O_RDONLY).unwrap();
    let ino = f.ino("f").unwrap();
    f.unlink("f").unwrap();
    assert!(f.store().file("f").is_none());
    let a = f.core.handle_attr(ino, Some(r)).unwrap();
    assert_eq!((a.size, a.nlink), (4, 0), "fstat of the unlinked file");
    assert_eq!(f.read(r, 0, 10).unwrap(), b"kept");
    f.close(r).unwrap();
    assert_eq!(
        f.cached_files(),
        0,
        "the pinned copy goes with the last reader"
    );
}

#[test]
fn a_new_file_under_an_unlinked_name_is_separate() {
    let f = fx();
    let old = f.create("f").unwrap();
    f.write(old, 0, b"old").unwrap();
    f.unlink("f").unwrap();
    f.put("f", b"new").unwrap();
    f.write(old, 0, b"OLD").unwrap();
    f.close(old).unwrap();
    assert_eq!(f.get("f").unwrap(), b"new");
}

#[test]
fn rename_moves_content_and_keeps_the_inode() {
    let f = fx();
    f.put("a", b"1").unwrap();
    let ino = f.ino("a").unwrap();
    f.rename("a", "b").unwrap();
    assert_eq!(err(f.lookup("a")), Errno::ENOENT);
    assert_eq!(f.ino("b").unwrap(), ino);
    assert_eq!(f.get("b").unwrap(), b"1");
    assert_eq!(f.store().paths(), ["b"]);
}

#[test]
fn a_reader_of_a_file_renamed_over_keeps_reading_the_old_content() {
    let f = fx();
    f.put("old", b"old content").unwrap();
    f.put("new", b"new").unwrap();
    let r = f.open("old", libc::O_RDONLY).unwrap();
    f.rename("new", "old").unwrap();
    assert_eq!(f.read(r, 0, 100).unwrap(), b"old content");
    f.close(r).unwrap();
    assert_eq!(f.get("old").unwrap(), b"new");
}

#[test]
fn a_reader_follows_its_file_across_a_rename() {
    let f = fx();
    f.put("a", b"abc").unwrap();
    let r = f.open("a", libc::O_RDONLY).unwrap();
    f.rename("a", "b").unwrap();
    assert_eq!(f.read(r, 0, 3).unwrap(), b"abc");
    f.close(r).unwrap();
}

#[test]
fn a_file_renamed_while_open_for_writing_is_uploaded_under_its_new_name() {
    let f = fx();
    let fh = f.create("a").unwrap();
    f.write(fh, 0, b"one").unwrap();
    f.rename("a", "b").unwrap();
    assert_eq!(
        &f.store().file("b").unwrap().data[..],
        b"one",
        "pending writes went first"
    );
    f.write(fh, 3, b"two").unwrap();
    f.close(fh).unwrap();
    assert!(f.store().file("a").is_none());
    assert_eq!(&f.store().file("b").unwrap().data[..], b"onetwo");
}

#[test]
fn a_writer_of_a_file_renamed_over_does_not_upload_over_the_new_one() {
    let f = fx();
    let w = f.create("dst").unwrap();
    f.write(w, 0, b"loser").unwrap();
    f.put("src", b"winner").unwrap();
    f.rename("src", "dst").unwrap();
    f.write(w, 0, b"LOSER").unwrap();
    assert_eq!(f.read(w, 0, 5).unwrap(), b"LOSER", "its handle goes on");
    f.close(w).unwrap();
    assert_eq!(f.get("dst").unwrap(), b"winner");
}

#[test]
fn rename_noreplace_refuses_an_existing_target() {
    let f = fx();
    f.put("a", b"").unwrap();
    f.put("b", b"").unwrap();
    let r = f.rename_with("a", "b", RenameFlags::RENAME_NOREPLACE);
    assert_eq!(err(r), Errno::EEXIST);
    let r = f.rename_with("a", "b", RenameFlags::RENAME_EXCHANGE);
    assert_eq!(err(r), Errno::EINVAL);
    f.rename_with("a", "c", RenameFlags::RENAME_NOREPLACE)
        .unwrap();
}

#[test]
fn a_directory_holding_a_file_open_for_writing_cannot_move() {
    let f = fx();
    f.mkdir("d").unwrap();
    let fh = f.create("d/f").unwrap();
    assert_eq!(err(f.rename("d", "e")), Errno::EBUSY);
    f.close(fh).unwrap();
    f.rename("d", "e").unwrap();
    assert_eq!(f.names("e").unwrap(), ["f"]);
}
