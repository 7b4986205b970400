//! The inode table: path-based inodes, so a path keeps its number for the mount's life
//! (the kernel's forgets are ignored) and a rename moves the numbers with the names.
//! The names of a hard-linked file share one number, found by its inode object's id:
//! the number maps back to one of them (any will do: they are the same file).

use crate::names::{moved, within};
use std::collections::HashMap;

/// The root's inode, as FUSE fixes it.
pub(crate) const ROOT: u64 = 1;

pub(crate) struct Inodes {
    by_ino: HashMap<u64, String>,
    by_path: HashMap<String, u64>,
    /// Numbers of hard-linked files, by their inode object's id.
    by_link: HashMap<String, u64>,
    next: u64,
}

impl Inodes {
    /// A table holding the root.
    pub(crate) fn new() -> Inodes {
        Inodes {
            by_ino: HashMap::from([(ROOT, String::new())]),
            by_path: HashMap::from([(String::new(), ROOT)]),
            by_link: HashMap::new(),
            next: ROOT + 1,
        }
    }

    pub(crate) fn path(&self, ino: u64) -> Option<&str> {
        self.by_ino.get(&ino).map(String::as_str)
    }

    /// The inode of `path`, numbered now if it has none yet.
    pub(crate) fn ino(&mut self, path: &str) -> u64 {
        if let Some(n) = self.by_path.get(path) {
            return *n;
        }
        let n = self.next;
        self.next += 1;
        self.by_path.insert(path.to_string(), n);
        self.by_ino.insert(n, path.to_string());
        n
    }

    /// The number of `path`, a name of the hard-linked file whose inode object is `id`:
    /// the one its other names have, else the path's own, now the file's.
    pub(crate) fn linked(&mut self, path: &str, id: &str) -> u64 {
        match self.by_link.get(id).copied() {
            Some(n) if self.by_path.get(path) == Some(&n) => n,
            Some(n) if self.by_ino.contains_key(&n) => {
                self.forget(path);
                self.by_path.insert(path.to_string(), n);
                n
            }
            _ => {
                let n = self.ino(path);
                self.by_link.insert(id.to_string(), n);
                n
            }
        }
    }

    /// `path` loses its number; the number stays with another name of the same file, if
    /// it has one.
    pub(crate) fn forget(&mut self, path: &str) {
        let Some(n) = self.by_path.remove(path) else {
            return;
        };
        if self.by_ino.get(&n).is_some_and(|p| p == path) {
            match self.by_path.iter().find(|(_, m)| **m == n) {
                Some((other, _)) => {
                    self.by_ino.insert(n, other.clone());
                }
                None => {
                    self.by_ino.remove(&n);
                }
            }
        }
    }

    /// Moves `from` (and for directories everything below it) to `to`; whatever was at
    /// `to` loses its number.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        self.forget(to);
        let moving: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| within(p, from))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        for (p, n) in moving {
            let np = moved(&p, from, to);
            self.forget(&np);
            self.by_path.remove(&p);
            self.by_path.insert(np.clone(), n);
            // The number leads to the new name, unless it leads to another name of a
            // hard-linked file that stays.
            if self.by_ino.get(&n).is_none_or(|q| *q == p) {
                self.by_ino.insert(n, np);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_numbers() {
        let mut t = Inodes::new();
        assert_eq!(t.path(ROOT), Some(""));
        let a = t.ino("a");
        assert_eq!(t.ino("a"), a);
        assert_ne!(t.ino("b"), a);
        assert_eq!(t.path(a), Some("a"));
    }

    #[test]
    fn a_rename_moves_the_tree_and_drops_the_target() {
        let mut t = Inodes::new();
        let (d, f, g, ab) = (t.ino("d"), t.ino("d/f"), t.ino("e"), t.ino("dd"));
        t.rename("d", "e");
        assert_eq!(t.path(d), Some("e"));
        assert_eq!(t.path(f), Some("e/f"));
        assert_eq!(t.path(g), None, "the replaced target has no number left");
        assert_eq!(t.path(ab), Some("dd"), "a name merely starting alike stays");
        assert_eq!(t.ino("e/f"), f);
    }

    #[test]
    fn linked_names_share_a_number_until_they_go() {
        let mut t = Inodes::new();
        let a = t.ino("a");
        let b = t.ino("b");
        assert_eq!(t.linked("a", "id"), a);
        assert_eq!(t.linked("b", "id"), a, "b takes a's number");
        assert_eq!(t.ino("b"), a);
        assert_eq!(t.path(b), None, "b's own number is gone");
        t.forget("a");
        assert_eq!(t.path(a), Some("b"), "the number leads to the name left");
        t.rename("b", "c");
        assert_eq!(t.path(a), Some("c"));
        assert_eq!(t.linked("d", "id"), a);
        t.rename("d", "c");
        assert_eq!(
            t.path(a),
            Some("c"),
            "a name replaced by another of its file"
        );
        t.forget("c");
        assert_eq!(t.path(a), None);
        assert_ne!(
            t.linked("e", "id"),
            a,
            "a number no name holds is not handed out"
        );
    }
}
