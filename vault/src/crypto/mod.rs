//! Client-side crypto of encrypted vaults: the server only ever stores age ciphertext under
//! encrypted names, and never sees plaintext content, plaintext names or key material.
//!
//! - [`agefile`]: standard age v1 files (X25519 recipient) written and read chunk by chunk, so
//!   parts can be sealed and opened in parallel and an interrupted upload can be resumed
//!   byte-for-byte from persisted [`FileSecrets`].
//! - [`binding`]: each age file bound to its plaintext path and sealing time, so swapped
//!   and rolled-back objects are noticed.
//! - [`names`]: deterministic per-segment name encryption (AES-SIV), so lookups and prefix
//!   listings still work on the server.
//! - [`keys`]: vault identities, identity files, passphrase protection, recovery phrases
//!   and sharing.

pub mod agefile;
pub mod binding;
pub mod keys;
pub mod names;

pub use agefile::{FileSecrets, Opener, Sealer, CHUNK};
pub use binding::{BindKey, Binding};
pub use keys::{Identity, Recipient, VaultKeys};
pub use names::NameCipher;

/// Every failure of vault crypto. The messages are shown to users as they are.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("no identity of this vault can decrypt it")]
    NoMatchingIdentity,
    #[error("ciphertext is corrupted or was tampered with")]
    Corrupt,
    #[error("the object is truncated")]
    Truncated,
    #[error("the object is bound to another path: it was swapped or copied here by someone without the vault's key")]
    WrongPath,
    #[error("malformed age header: {0}")]
    Malformed(&'static str),
    #[error("invalid name segment {0:?}: it must be non-empty, not \".\" or \"..\", and contain no \"/\" or NUL")]
    InvalidSegment(String),
    #[error("{0:?} is not a name encrypted by this vault")]
    ForeignName(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("the identity file is passphrase-protected: a passphrase is required")]
    PassphraseRequired,
    #[error("wrong passphrase for the identity file")]
    WrongPassphrase,
    #[error("invalid recovery phrase: {0}")]
    RecoveryPhrase(String),
}

/// HKDF-SHA256 of `ikm`, as age and the vault key derivations use it.
pub(crate) fn hkdf<const N: usize>(
    salt: &[u8],
    info: &[u8],
    ikm: &[u8],
) -> zeroize::Zeroizing<[u8; N]> {
    let mut okm = zeroize::Zeroizing::new([0; N]);
    hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm)
        .expand(info, okm.as_mut())
        .expect("the derived keys are far below the HKDF-SHA256 output limit");
    okm
}
