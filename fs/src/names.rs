//! Paths of the mount: plaintext vault paths, `""` for the root, `/` between names.

use crate::R;
use fuser::Errno;
use std::ffi::OsStr;

/// The longest name a directory entry may have, in bytes (Linux's NAME_MAX).
const NAME_MAX: usize = 255;

/// `parent/name`; EINVAL for a name that is not one, ENAMETOOLONG for one longer than
/// NAME_MAX (the kernel lets FUSE names up to 1,024 bytes through).
pub(crate) fn join(parent: &str, name: &OsStr) -> R<String> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    Ok(child(parent, name))
}

/// `dir/name` for a name known to be one.
pub(crate) fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The parent directory and the name.
pub(crate) fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

/// Whether `path` is `top` or below it.
pub(crate) fn within(path: &str, top: &str) -> bool {
    path == top || path.strip_prefix(top).is_some_and(|r| r.starts_with('/'))
}

/// `path`, which is [`within`] `from`, moved to `to`.
pub(crate) fn moved(path: &str, from: &str, to: &str) -> String {
    format!("{to}{}", &path[from.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_and_split() {
        assert_eq!(join("", OsStr::new("a")).unwrap(), "a");
        assert_eq!(join("a/b", OsStr::new("c")).unwrap(), "a/b/c");
        assert_eq!(join("a", OsStr::new("x/y")), Err(Errno::EINVAL));
        assert_eq!(join("a", OsStr::new("..")), Err(Errno::EINVAL));
        let longest = "n".repeat(255);
        assert!(join("a", OsStr::new(&longest)).is_ok());
        let longer = "n".repeat(256);
        assert_eq!(join("a", OsStr::new(&longer)), Err(Errno::ENAMETOOLONG));
        assert_eq!(split("a/b/c"), ("a/b", "c"));
        assert_eq!(split("c"), ("", "c"));
    }

    #[test]
    fn within_means_below_a_whole_name() {
        assert!(within("a", "a"));
        assert!(within("a/b", "a"));
        assert!(!within("ab", "a"));
        assert_eq!(moved("a/b/c", "a/b", "x"), "x/c");
    }
}
