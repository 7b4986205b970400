//! Hard links over the in-memory store: link counts and one inode number for all names,
//! writes and attribute changes through one name seen through the others, unlink and
//! rename of linked names, the last name left made a plain object again, and the errors
//! link(2) answers.

use super::{err, fx, mode, name, Fx};
use crate::store::Store;
use fuser::{Errno, FileAttr};
use std::time::Duration;
use vault::vault::INTERNAL;

impl Fx {
    /// link(2) of `from` as `to`.
    fn link(&self, from: &str, to: &str) -> crate::R<FileAttr> {
        self.core
            .do_link(self.ino(from)?, self.parent(to)?, name(to))
    }

    /// The inode objects in the store.
    fn inode_objects(&self) -> Vec<String> {
        let internal = format!("{INTERNAL}/");
        let paths = self.store().paths();
        paths
            .into_iter()
            .filter(|p| p.starts_with(&internal))
            .collect()
    }

    /// Whether `path` is stored as a plain object holding `data`.
    fn plain(&self, path: &str, data: &[u8]) -> bool {
        self.store()
            .file(path)
            .is_some_and(|o| o.link.is_none() && o.names.is_empty() && o.data == data)
    }
}

#[test]
fn linked_names_are_one_file_with_a_link_count() {
    let f = fx();
    f.put("a", b"hello").unwrap();
    let before = f.lookup("a").unwrap();
    assert_eq!(before.nlink, 1);
    std::thread::sleep(Duration::from_millis(5));
    let linked = f.link("a", "b").unwrap();
    assert_eq!(linked.nlink, 2);
    assert_eq!(linked.ino, before.ino, "the new name is the same inode");
    let (a, b) = (f.lookup("a").unwrap(), f.lookup("b").unwrap());
    assert_eq!((a.nlink, b.nlink), (2, 2));
    assert_eq!((a.ino, b.ino), (before.ino, before.ino));
    assert_eq!((a.size, b.size), (5, 5));
    assert!(a.ctime > before.ctime, "link changes the file's ctime");
    assert_eq!(f.get("b").unwrap(), b"hello");
    // Both names are records of one inode object, which the listing does not show.
    let inodes = f.inode_objects();
    assert_eq!(inodes.len(), 1);
    for n in ["a", "b"] {
        let rec = f.store().file(n).unwrap();
        assert!(rec.data.is_empty() && rec.link.is_some(), "{n} is a record");
    }
    assert_eq!(f.names("").unwrap(), ["a", "b"]);
    assert_eq!(err(f.lookup(INTERNAL)), Errno::ENOENT);
}

#[test]
fn a_fresh_mount_gives_stored_links_one_number_in_readdir_and_lookup() {
    let f = fx();
    let s = f.store();
    s.put_file("x", b"data");
    let names = ["x".to_string(), "y".to_string()];
    f.core.block_on(async {
        s.copy("x", &vault::vault::inode_path("id")).await.unwrap();
        s.set_link_names("id", &names).await.unwrap();
        s.put_link("x", "id").await.unwrap();
        s.put_link("y", "id").await.unwrap();
    });
    let fh = fuser::FileHandle(f.core.do_opendir(f.ino("").unwrap()).unwrap());
    let listed: Vec<(u64, String)> = f.core.dir_entries(fh).unwrap()[2..]
        .iter()
        .map(|(ino, _, n)| (*ino, n.clone()))
        .collect();
    f.core.do_releasedir(fh);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].0, listed[1].0, "{listed:?}");
    let (x, y) = (f.lookup("x").unwrap(), f.lookup("y").unwrap());
    assert_eq!((x.ino.0, y.ino.0), (listed[0].0, listed[0].0));
    assert_eq!((x.nlink, y.nlink, y.size), (2, 2, 4));
}

#[test]
fn writes_and_attributes_through_one_name_show_through_the_other() {
    let f = fx();
    f.put("a", b"old").unwrap();
    f.link("a", "b").unwrap();
    let fh = f.open("b", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    f.write(fh, 0, b"new content").unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.get("a").unwrap(), b"new content");
    assert_eq!(f.lookup("a").unwrap().size, 11);
    assert!(
        f.store().file("b").unwrap().link.is_some(),
        "b stays a record"
    );
    f.setattr(f.ino("a").unwrap(), mode(0o600), None).unwrap();
    assert_eq!(f.lookup("b").unwrap().perm, 0o600);
    // A third name, linked through the second.
    f.link("b", "c").unwrap();
    for n in ["a", "b", "c"] {
        assert_eq!(f.lookup(n).unwrap().nlink, 3, "{n}");
    }
    assert_eq!(f.inode_objects().len(), 1, "still one inode object");
}

#[test]
fn readers_of_one_name_read_what_the_other_wrote() {
    let f = fx();
    f.put("a", b"one").unwrap();
    let reader = f.open("a", libc::O_RDONLY).unwrap();
    assert_eq!(f.read(reader, 0, 10).unwrap(), b"one");
    // The content moves to the inode object under the open reader.
    f.link("a", "b").unwrap();
    assert_eq!(f.read(reader, 0, 10).unwrap(), b"one");
    let fh = f.open("b", libc::O_WRONLY | libc::O_TRUNC).unwrap();
    f.write(fh, 0, b"two").unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.read(reader, 0, 10).unwrap(), b"two");
    f.close(reader).unwrap();
}

#[test]
fn unlinking_a_name_keeps_the_others_and_the_last_becomes_plain() {
    let f = fx();
    f.put("a", b"data").unwrap();
    f.link("a", "b").unwrap();
    f.link("a", "c").unwrap();
    let ino = f.lookup("a").unwrap().ino;
    let ctime = f.lookup("c").unwrap().ctime;
    std::thread::sleep(Duration::from_millis(5));
    f.unlink("b").unwrap();
    assert_eq!(err(f.lookup("b")), Errno::ENOENT);
    let c = f.lookup("c").unwrap();
    assert_eq!((c.nlink, c.ino), (2, ino));
    assert!(c.ctime > ctime, "unlink changes the file's ctime");
    f.unlink("a").unwrap();
    let c = f.lookup("c").unwrap();
    assert_eq!((c.nlink, c.ino), (1, ino));
    assert_eq!(f.get("c").unwrap(), b"data");
    assert!(
        f.plain("c", b"data"),
        "the last name is a plain object again"
    );
    assert!(f.inode_objects().is_empty());
    // A new file under an unlinked name is another inode.
    f.put("a", b"other").unwrap();
    assert_ne!(f.lookup("a").unwrap().ino, ino);
}

#[test]
fn a_linked_name_renames() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.put("a", b"x").unwrap();
    f.link("a", "d/b").unwrap();
    let ino = f.lookup("a").unwrap().ino;
    f.rename("d/b", "e").unwrap();
    let e = f.lookup("e").unwrap();
    assert_eq!((e.nlink, e.ino), (2, ino));
    assert_eq!(f.get("e").unwrap(), b"x");
    f.unlink("a").unwrap();
    assert!(f.plain("e", b"x"), "the renamed name was the one left");
    assert!(f.inode_objects().is_empty());
}

#[test]
fn a_directory_holding_a_linked_name_renames() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.put("d/a", b"x").unwrap();
    f.link("d/a", "b").unwrap();
    f.rename("d", "e").unwrap();
    assert_eq!(f.lookup("e/a").unwrap().nlink, 2);
    f.unlink("b").unwrap();
    assert!(f.plain("e/a", b"x"));
}

#[test]
fn renames_over_linked_names() {
    let f = fx();
    f.put("a", b"x").unwrap();
    f.link("a", "b").unwrap();
    // Two names of one file: rename(2) does nothing.
    f.rename("a", "b").unwrap();
    assert_eq!(f.lookup("a").unwrap().nlink, 2);
    assert_eq!(f.lookup("b").unwrap().nlink, 2);
    // Another file over one name: the other is left alone, and plain.
    f.put("c", b"other").unwrap();
    f.rename("c", "b").unwrap();
    assert_eq!(f.get("b").unwrap(), b"other");
    assert_eq!(f.lookup("a").unwrap().nlink, 1);
    assert!(f.plain("a", b"x"));
    assert!(f.inode_objects().is_empty());
}

#[test]
fn link_answers_posix_errors() {
    let f = fx();
    f.mkdir("d").unwrap();
    f.put("a", b"x").unwrap();
    f.put("b", b"y").unwrap();
    assert_eq!(err(f.link("d", "e")), Errno::EPERM, "a directory");
    assert_eq!(err(f.link("a", "b")), Errno::EEXIST);
    assert_eq!(err(f.link("a", "d")), Errno::EEXIST);
    let gone = f.ino("b").unwrap();
    f.unlink("b").unwrap();
    let missing = f.core.do_link(gone, f.parent("c").unwrap(), name("c"));
    assert_eq!(err(missing), Errno::ENOENT);
    assert_eq!(f.get("a").unwrap(), b"x", "nothing changed");
    assert!(f.plain("a", b"x") && f.inode_objects().is_empty());
}

#[test]
fn a_file_open_for_writing_links_and_keeps_writing_to_its_file() {
    let f = fx();
    let fh = f.create("a").unwrap();
    f.write(fh, 0, b"first").unwrap();
    f.link("a", "b").unwrap();
    assert_eq!(
        f.get("b").unwrap(),
        b"first",
        "pending writes went up first"
    );
    assert_eq!(f.lookup("a").unwrap().nlink, 2, "counted while open too");
    f.write(fh, 5, b" second").unwrap();
    f.close(fh).unwrap();
    assert_eq!(f.get("b").unwrap(), b"first second");
    assert!(
        f.store().file("a").unwrap().link.is_some(),
        "a stays a record"
    );
}

#[test]
fn a_symbolic_link_links_as_itself() {
    let f = fx();
    let root = f.ino("").unwrap();
    f.core
        .do_symlink(&f.me(), root, "l".as_ref(), std::path::Path::new("target"))
        .unwrap();
    let m = f.link("l", "m").unwrap();
    assert_eq!((m.kind, m.nlink), (fuser::FileType::Symlink, 2));
    assert_eq!(f.core.do_readlink(m.ino).unwrap(), b"target");
    f.unlink("l").unwrap();
    let m = f.lookup("m").unwrap();
    assert_eq!((m.kind, m.nlink), (fuser::FileType::Symlink, 1));
    assert_eq!(f.core.do_readlink(m.ino).unwrap(), b"target");
}
