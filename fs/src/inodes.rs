//! The inode table: path-based inodes, so a path keeps its number for the mount's life
//! (the kernel's forgets are ignored) and a rename moves the numbers with the names.

use crate::names::{moved, within};
use std::collections::HashMap;

/// The root's inode, as FUSE fixes it.
pub(crate) const ROOT: u64 = 1;

pub(crate) struct Inodes {
    by_ino: HashMap<u64, String>,
    by_path: HashMap<String, u64>,
    next: u64,
}

impl Inodes {
    /// A table holding the root.
    pub(crate) fn new() -> Inodes {
        Inodes {
            by_ino: HashMap::from([(ROOT, String::new())]),
            by_path: HashMap::from([(String::new(), ROOT)]),
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

    /// Moves `from` (and for directories everything below it) to `to`; whatever was at
    /// `to` loses its number.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        if let Some(n) = self.by_path.remove(to) {
            self.by_ino.remove(&n);
        }
        let moving: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| within(p, from))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        for (p, n) in moving {
            let np = moved(&p, from, to);
            self.by_path.remove(&p);
            if let Some(old) = self.by_path.insert(np.clone(), n) {
                self.by_ino.remove(&old);
            }
            self.by_ino.insert(n, np);
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
}
