//! Where a vault's identities live: `<config dir>/keys/NAME.age`, mode 0600, either the
//! plain identity file `age -d -i` reads or the same text sealed with a passphrase
//! (age scrypt, armored).

use crate::config::{config_dir, write_private};
use crate::crypto::keys::seal_with_passphrase;
use crate::crypto::{CryptoError, VaultKeys};
use crate::error::{Error, Result, ResultExt};
use std::path::PathBuf;

pub fn key_path(vault: &str) -> PathBuf {
    config_dir().join("keys").join(format!("{vault}.age"))
}

pub fn exists(vault: &str) -> bool {
    key_path(vault).exists()
}

/// Store `keys` for `vault`, sealed when a passphrase is given.
pub fn save(vault: &str, keys: &VaultKeys, passphrase: Option<&str>) -> Result<()> {
    let text = keys.to_identity_file();
    let bytes = match passphrase {
        Some(p) => seal_with_passphrase(&text, p),
        None => text.as_bytes().to_vec(),
    };
    write_private(&key_path(vault), &bytes)
}

/// Load the identities of `vault`; `passphrase` is asked only when the file is sealed.
/// Its errors (no terminal to ask on, say) are the caller's own type, and so are the
/// results.
pub fn load<E: From<Error>>(
    vault: &str,
    passphrase: &dyn Fn() -> Result<String, E>,
) -> Result<VaultKeys, E> {
    let path = key_path(vault);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "vault {vault:?} has no identity at {}; restore it with `cybs3 keys restore --vault {vault}`",
                path.display()
            ))
            .into())
        }
        Err(e) => return Err(Error::from(e).context(format!("cannot read {}", path.display())).into()),
    };
    let opened = match VaultKeys::open_identity_bytes(&bytes, None) {
        Err(CryptoError::PassphraseRequired) => {
            let p = passphrase()?;
            VaultKeys::open_identity_bytes(&bytes, Some(&p))
        }
        other => other,
    };
    Ok(opened.with_context(|| format!("cannot open the identity of vault {vault:?}"))?)
}

/// Is the identity file passphrase-sealed?
pub fn is_sealed(vault: &str) -> bool {
    std::fs::read(key_path(vault)).is_ok_and(|b| {
        matches!(
            VaultKeys::open_identity_bytes(&b, None),
            Err(CryptoError::PassphraseRequired)
        )
    })
}
