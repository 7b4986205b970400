//! Deterministic name encryption: each path segment is AES-SIV encrypted with its plaintext
//! parent path as associated data, then base64url-encoded without padding. The same path
//! always gives the same key, so lookups and prefix listings work on the server.
//!
//! What the server still learns: the tree shape (which names share a parent), the length of
//! every segment (to the byte), and equality of names under the same parent across time.
//! The same segment under different parents encrypts differently.

use aes_siv::{siv::Aes256Siv, Key, KeyInit};
use base64::{prelude::BASE64_URL_SAFE_NO_PAD as B64URL, Engine};
use zeroize::Zeroizing;

use super::CryptoError;

/// AES-SIV tag bytes added to every segment.
const SIV_TAG: usize = 16;

/// Encrypts and decrypts the names of one vault (see [`super::VaultKeys::names_cipher`]).
pub struct NameCipher {
    key: Zeroizing<[u8; 64]>,
}

/// Length of the encrypted form of a `plain_len`-byte segment. S3 keys are at most 1024
/// bytes: a 255-byte segment takes 362.
pub fn encrypted_segment_len(plain_len: usize) -> usize {
    (4 * (plain_len + SIV_TAG)).div_ceil(3)
}

impl NameCipher {
    pub(crate) fn new(key: Zeroizing<[u8; 64]>) -> Self {
        NameCipher { key }
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new(Key::<Aes256Siv>::from_slice(&self.key[..]))
    }

    /// Encrypts `segment`, a direct child of the plaintext path `parent` ("" for the root).
    pub fn encrypt_segment(&self, parent: &str, segment: &str) -> Result<String, CryptoError> {
        check_segment(segment)?;
        let sealed = self
            .siv()
            .encrypt([parent.as_bytes()], segment.as_bytes())
            .expect("names are far below the AES-SIV message limit");
        Ok(B64URL.encode(sealed))
    }

    /// Inverse of [`Self::encrypt_segment`]; names not made by this vault are refused.
    pub fn decrypt_segment(&self, parent: &str, encrypted: &str) -> Result<String, CryptoError> {
        let foreign = || CryptoError::ForeignName(encrypted.to_owned());
        let sealed = B64URL.decode(encrypted).map_err(|_| foreign())?;
        let plain = self
            .siv()
            .decrypt([parent.as_bytes()], &sealed)
            .map_err(|_| foreign())?;
        String::from_utf8(plain).map_err(|_| foreign())
    }

    /// Encrypts every segment of `a/b/c` (no leading, trailing or double slashes).
    pub fn encrypt_path(&self, path: &str) -> Result<String, CryptoError> {
        let mut parent = String::new();
        let mut encrypted = Vec::new();
        for segment in path.split('/') {
            encrypted.push(self.encrypt_segment(&parent, segment)?);
            push_segment(&mut parent, segment);
        }
        Ok(encrypted.join("/"))
    }

    /// Inverse of [`Self::encrypt_path`].
    pub fn decrypt_path(&self, encrypted: &str) -> Result<String, CryptoError> {
        let mut path = String::new();
        for segment in encrypted.split('/') {
            let plain = self.decrypt_segment(&path, segment)?;
            push_segment(&mut path, &plain);
        }
        Ok(path)
    }
}

fn push_segment(path: &mut String, segment: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(segment);
}

fn check_segment(segment: &str) -> Result<(), CryptoError> {
    if matches!(segment, "" | "." | "..") || segment.contains(['/', '\0']) {
        return Err(CryptoError::InvalidSegment(segment.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::VaultKeys;

    fn cipher() -> NameCipher {
        VaultKeys::generate().names_cipher()
    }

    #[test]
    fn paths_round_trip_deterministically() {
        let names = cipher();
        for path in [
            "a",
            "a/b/c",
            "photos/2024/IMG 0001.jpg",
            "ünï/cödé/名前",
            ".hidden/...x",
        ] {
            let encrypted = names.encrypt_path(path).unwrap();
            assert_eq!(encrypted, names.encrypt_path(path).unwrap());
            assert_eq!(encrypted.split('/').count(), path.split('/').count());
            assert!(
                encrypted
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_/".contains(&b)),
                "{encrypted}"
            );
            assert_eq!(names.decrypt_path(&encrypted).unwrap(), path);
        }
    }

    #[test]
    fn prefixes_are_shared_and_parents_matter() {
        let names = cipher();
        let a = names.encrypt_path("docs/a").unwrap();
        let b = names.encrypt_path("docs/b").unwrap();
        let (dir, _) = a.split_once('/').unwrap();
        assert!(
            b.starts_with(&format!("{dir}/")),
            "listing a prefix finds its children"
        );
        let x_in_docs = names.encrypt_segment("docs", "x").unwrap();
        let x_in_root = names.encrypt_segment("", "x").unwrap();
        assert_ne!(x_in_docs, x_in_root);
        assert_eq!(
            names.encrypt_path("docs/x").unwrap(),
            format!("{dir}/{x_in_docs}")
        );
        assert!(
            names.decrypt_segment("other", &x_in_docs).is_err(),
            "moved names do not decrypt"
        );
    }

    #[test]
    fn invalid_segments_are_refused() {
        let names = cipher();
        for bad in ["", ".", "..", "a/b", "nul\0byte"] {
            let err = names.encrypt_segment("", bad).err().unwrap();
            assert!(matches!(err, CryptoError::InvalidSegment(_)), "{bad:?}");
        }
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a"] {
            assert!(names.encrypt_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn foreign_names_are_refused() {
        let encrypted = cipher().encrypt_path("a/b").unwrap();
        let other = cipher();
        assert!(matches!(
            other.decrypt_path(&encrypted),
            Err(CryptoError::ForeignName(_))
        ));
        for bad in ["plain.txt", "", "!!", "AAAA"] {
            assert!(cipher().decrypt_segment("", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encrypted_lengths_are_predictable() {
        let names = cipher();
        for len in [1, 2, 3, 17, 100, 255] {
            let segment = "x".repeat(len);
            assert_eq!(
                names.encrypt_segment("", &segment).unwrap().len(),
                encrypted_segment_len(len)
            );
        }
        assert_eq!(encrypted_segment_len(255), 362);
    }
}
