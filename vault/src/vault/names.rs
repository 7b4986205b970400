//! Plaintext vault paths and the object keys they are stored under: cleaned, refused when
//! they could leave a directory, and encrypted segment by segment in an encrypted vault.

use super::Vault;
use crate::error::{Error, Result};

impl Vault {
    /// The marker object of directory `path` (`dir/`, as S3 consoles store one).
    pub(crate) fn marker_key(&self, path: &str) -> Result<String> {
        Ok(format!("{}/", self.key_of(path)?))
    }

    /// The object key of a plaintext path ("" is the vault's root).
    pub fn key_of(&self, path: &str) -> Result<String> {
        let path = clean_path(path)?;
        let rel = match (&self.crypt, path.is_empty()) {
            (_, true) => String::new(),
            (Some(c), false) => c.names.encrypt_path(&path)?,
            (None, false) => path,
        };
        Ok(format!("{}{rel}", self.cfg.prefix))
    }

    /// The plaintext path of an object key under the vault's prefix.
    pub(super) fn path_of(&self, key: &str) -> Result<String> {
        let rel = key
            .strip_prefix(&self.cfg.prefix)
            .ok_or_else(|| Error::invalid(format!("{key:?} is outside the vault")))?
            .trim_end_matches('/');
        match &self.crypt {
            Some(c) => Ok(c.names.decrypt_path(rel)?),
            None => Ok(rel.to_string()),
        }
    }

    /// The plaintext path of a listed key, `None` (with a warning) for keys that are no
    /// file of the vault.
    pub(super) fn listed_path(&self, key: &str) -> Option<String> {
        // Vault-internal objects (shared keys) live under `.cybs3/`, which no encrypted
        // name can start with.
        if self.crypt.is_some() && key[self.cfg.prefix.len()..].starts_with(".cybs3/") {
            return None;
        }
        // A name that is not a clean path (`..`, empty or `.` segments, NUL; S3 itself
        // allows them) could lead a copy out of its destination: such objects are not
        // files of the vault.
        let listed = self.path_of(key).and_then(|p| match clean_path(&p) {
            Ok(clean) if clean == p => Ok(p),
            _ => Err(Error::invalid(format!("{p:?} is not a safe relative path"))),
        });
        match listed {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("skipping {key:?} in vault {}: {e}", self.name);
                None
            }
        }
    }
}

/// A vault path without leading or trailing slashes; `.`/`..`/empty segments and NUL refused.
pub fn clean_path(path: &str) -> Result<String> {
    let p = path.trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    for seg in p.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || seg.contains('\0') {
            return Err(Error::invalid(format!(
                "invalid vault path {path:?}: no empty, \".\" or \"..\" segments"
            )));
        }
    }
    Ok(p.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VaultConfig;

    #[test]
    fn listed_names_that_could_leave_a_directory_are_skipped() {
        let cfg = VaultConfig {
            endpoint: "http://127.0.0.1:9".into(),
            bucket: "b".into(),
            prefix: "p/".into(),
            ..VaultConfig::default()
        };
        let v = Vault::open("v", cfg, None).unwrap();
        assert_eq!(v.listed_path("p/a/b").as_deref(), Some("a/b"));
        assert_eq!(v.listed_path("p/a/").as_deref(), Some("a"));
        for bad in ["p/../x", "p/a/../../x", "p/a//b", "p/./a", "p//a", "p/a\0b"] {
            assert_eq!(v.listed_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("/a/b/").unwrap(), "a/b");
        assert_eq!(clean_path("").unwrap(), "");
        for bad in ["a//b", "a/../b", "./a", "a\0b"] {
            assert!(clean_path(bad).is_err(), "{bad:?}");
        }
    }
}
