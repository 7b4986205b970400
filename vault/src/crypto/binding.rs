//! Binding of an age file to the plaintext path it was written for, and to when it was
//! sealed: what lets a vault notice an object swapped for another, or put back older.
//!
//! Each age file authenticates its own bytes, but nothing in the age format says *which*
//! file it is: anyone with write access to the bucket could copy the ciphertext of
//! `a.txt` over `b.txt`, and it would decrypt. So every file a vault writes carries one
//! more header stanza:
//!
//! ```text
//! -> cybs3-path
//! <base64 of 24 bytes: the sealing time, ChaCha20-Poly1305-sealed>
//! ```
//!
//! Its key is derived from the vault's binding key (from the vault identity), the file
//! key (so the stanza cannot be moved to another file) and the plaintext path (so the
//! file cannot be moved to another path). Only a holder of the vault identity can make
//! it, and it reveals nothing: the path is never written, the time is encrypted. The
//! age header MAC covers it like every stanza.
//!
//! The plain `age` tool skips stanzas it does not know (the format requires it), so it
//! still decrypts every object to the same plaintext.

use chacha20poly1305::{aead::Aead, ChaCha20Poly1305, Key, KeyInit, Nonce};
use zeroize::Zeroizing;

use super::{hkdf, CryptoError};

/// The stanza's type, its only argument.
pub const STANZA_TAG: &str = "cybs3-path";
/// Length of the stanza's body: the sealed 8-byte time and its tag.
pub const BODY_LEN: usize = 8 + 16;

/// The vault's key for path bindings (derived from its first identity, so rotation keeps
/// every binding valid).
pub struct BindKey(pub(crate) Zeroizing<[u8; 32]>);

/// What a file is bound to.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    /// The plaintext path, as [`crate::vault::clean_path`] makes it.
    pub path: String,
    /// When it was sealed, in nanoseconds since the Unix epoch: a newer write of the same
    /// path always has a larger value (see `Vault::upload`).
    pub sealed_at: u64,
}

/// The cipher of one file's binding: unique per vault, file key and path.
fn cipher(key: &BindKey, file_key: &[u8], path: &str) -> ChaCha20Poly1305 {
    let info = [b"cybs3 path binding v1\0".as_slice(), path.as_bytes()].concat();
    let derived = hkdf::<32>(file_key, &info, &key.0[..]);
    ChaCha20Poly1305::new(Key::from_slice(&derived[..]))
}

/// The stanza body binding the file with `file_key` to `binding`.
pub(crate) fn seal(key: &BindKey, file_key: &[u8], binding: &Binding) -> Vec<u8> {
    // A zero nonce is safe: the key is used for this one message (a fresh file key per
    // sealed file, and a rebinding seals under a new path or a new file key).
    cipher(key, file_key, &binding.path)
        .encrypt(&Nonce::default(), &binding.sealed_at.to_be_bytes()[..])
        .expect("8 bytes are far below the ChaCha20Poly1305 message limit")
}

/// The sealing time in `body` if it binds the file with `file_key` to `path`.
pub(crate) fn open(
    key: &BindKey,
    file_key: &[u8],
    path: &str,
    body: &[u8],
) -> Result<u64, CryptoError> {
    let opened = cipher(key, file_key, path)
        .decrypt(&Nonce::default(), body)
        .map_err(|_| CryptoError::WrongPath)?;
    let time: [u8; 8] = opened
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("bad cybs3-path stanza"))?;
    Ok(u64::from_be_bytes(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> BindKey {
        BindKey(Zeroizing::new([b; 32]))
    }

    #[test]
    fn a_binding_opens_only_for_its_key_file_and_path() {
        let b = Binding {
            path: "docs/a.txt".into(),
            sealed_at: 1_700_000_000_123_456_789,
        };
        let body = seal(&key(1), &[7; 16], &b);
        assert_eq!(body.len(), BODY_LEN);
        assert_eq!(
            open(&key(1), &[7; 16], &b.path, &body).unwrap(),
            b.sealed_at
        );
        for (k, fk, path) in [
            (key(2), [7; 16], "docs/a.txt"),
            (key(1), [8; 16], "docs/a.txt"),
            (key(1), [7; 16], "docs/b.txt"),
            (key(1), [7; 16], "docs/a.txt/"),
        ] {
            assert!(matches!(
                open(&k, &fk, path, &body),
                Err(CryptoError::WrongPath)
            ));
        }
    }
}
