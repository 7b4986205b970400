//! Where a command reads or writes: a local path or `VAULT:path` (CONTRACT.md, "Paths"),
//! and opening the vault a path names.

use anyhow::{bail, Result};
use std::path::PathBuf;
use vault::config::{validate_name, Config};
use vault::keystore;
use vault::vault::Vault;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// Vault name (`None`: the active vault) and plaintext path inside it.
    Vault(Option<String>, String),
}

impl Location {
    /// `VAULT:path` or `:path` names a vault; anything else, and anything starting with
    /// `/` or `.`, is a local path.
    pub fn parse(s: &str) -> Location {
        if !s.starts_with(['/', '.']) {
            if let Some((v, p)) = s.split_once(':') {
                if v.is_empty() {
                    return Location::Vault(None, p.to_string());
                }
                if validate_name(v).is_ok() {
                    return Location::Vault(Some(v.to_string()), p.to_string());
                }
            }
        }
        Location::Local(PathBuf::from(s))
    }
}

/// Open a vault by name (the active one for `None`), with its identity when encrypted.
pub fn open_vault(name: Option<&str>) -> Result<Vault> {
    let config = Config::load()?;
    let (name, mut cfg) = config.vault(name)?;
    crate::login::refresh(&name, &mut cfg)?;
    crate::login::renew_in_process(&mut cfg);
    if cfg.access_key.is_empty() {
        bail!("vault {name} has no credentials yet: log in with `cybs3 login --vault {name} --username USER`");
    }
    let keys = if cfg.encrypted {
        Some(keystore::load(&name, &passphrase)?)
    } else {
        None
    };
    Ok(Vault::open(&name, cfg, keys)?)
}

/// The passphrase of a sealed identity: `CYBS3_PASSPHRASE`, else asked on the terminal.
pub fn passphrase() -> Result<String> {
    if let Ok(p) = std::env::var("CYBS3_PASSPHRASE") {
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "the vault identity is passphrase-protected: set CYBS3_PASSPHRASE or run on a terminal"
        );
    }
    Ok(rpassword::prompt_password("passphrase: ")?)
}

/// Ask for a new passphrase twice (or take `CYBS3_PASSPHRASE`).
pub fn new_passphrase() -> Result<String> {
    if let Ok(p) = std::env::var("CYBS3_PASSPHRASE") {
        return Ok(p);
    }
    let p = passphrase()?;
    if p.is_empty() {
        bail!("an empty passphrase protects nothing; leave out --passphrase instead");
    }
    if rpassword::prompt_password("again: ")? != p {
        bail!("the passphrases differ");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("local:a/b"),
            Location::Vault(Some("local".into()), "a/b".into())
        );
        assert_eq!(Location::parse(":x"), Location::Vault(None, "x".into()));
        assert_eq!(Location::parse("dir/f"), Location::Local("dir/f".into()));
        assert_eq!(Location::parse("./a:b"), Location::Local("./a:b".into()));
        assert_eq!(Location::parse("/a:b"), Location::Local("/a:b".into()));
        assert_eq!(Location::parse("a b:c"), Location::Local("a b:c".into()));
    }
}
