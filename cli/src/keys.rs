//! `cybs3 keys …`: a vault's age identities — export for the plain `age` tool, recovery
//! phrases, restoring from them, and importing an identity shared by another member.

use crate::location::{new_passphrase, passphrase};
use anyhow::{bail, Context, Result};
use std::io::Read;
use vault::config::Config;
use vault::crypto::keys::unwrap_with;
use vault::crypto::{CryptoError, Identity, VaultKeys};
use vault::keystore;

#[derive(clap::Subcommand, Debug)]
pub enum KeysCmd {
    /// Create the identity of an encrypted vault that has none
    Create {
        #[arg(long)]
        vault: Option<String>,
        /// Protect it with a passphrase (CYBS3_PASSPHRASE or a prompt)
        #[arg(long)]
        passphrase: bool,
    },
    /// Print the vault's identities (AGE-SECRET-KEY-1…) for `age -d -i FILE`
    Export {
        #[arg(long)]
        vault: Option<String>,
    },
    /// Print the vault's public key (age1…), e.g. for others to share vaults with you
    Recipient {
        #[arg(long)]
        vault: Option<String>,
    },
    /// Print the recovery phrase of each identity (24 words); store it offline
    ShowRecovery {
        #[arg(long)]
        vault: Option<String>,
    },
    /// Rebuild a lost identity from recovery phrases read from stdin, one per line, oldest first
    Restore {
        #[arg(long)]
        vault: String,
        /// Protect the restored identity with a passphrase
        #[arg(long)]
        passphrase: bool,
    },
    /// Take the identity another member shared with `cybs3 vaults share`
    Import {
        #[arg(long)]
        vault: String,
        /// Your own age identity file (the one whose recipient the vault was shared with)
        #[arg(long, value_name = "FILE")]
        identity: std::path::PathBuf,
    },
}

/// Shown when an identity is made: the one thing that brings a lost identity back.
pub fn print_recovery(vault: &str, keys: &VaultKeys) {
    println!("Recovery phrase of vault {vault:?} (write it down and keep it offline; `cybs3 keys restore` uses it):");
    for id in keys.identities() {
        println!("  {}", id.recovery_phrase().as_str());
    }
}

/// The vault a keys command is about: named or active, and encrypted.
fn encrypted_vault(name: Option<&str>) -> Result<String> {
    let (name, cfg) = Config::load()?.vault(name)?;
    if !cfg.encrypted {
        bail!("vault {name:?} is plain and has no identity");
    }
    Ok(name)
}

fn no_clobber(name: &str) -> Result<()> {
    if keystore::exists(name) {
        bail!(
            "vault {name:?} already has an identity at {}; move it away first if you mean to replace it",
            keystore::key_path(name).display()
        );
    }
    Ok(())
}

pub fn run(cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Create { vault, passphrase } => {
            let name = encrypted_vault(vault.as_deref())?;
            no_clobber(&name)?;
            let p = passphrase.then(new_passphrase).transpose()?;
            let keys = VaultKeys::generate();
            keystore::save(&name, &keys, p.as_deref())?;
            println!(
                "created the identity of vault {name:?}: {}",
                keys.recipient()
            );
        }
        KeysCmd::Export { vault } => {
            let name = encrypted_vault(vault.as_deref())?;
            print!(
                "{}",
                keystore::load(&name, &passphrase)?
                    .to_identity_file()
                    .as_str()
            );
        }
        KeysCmd::Recipient { vault } => {
            let name = encrypted_vault(vault.as_deref())?;
            println!("{}", keystore::load(&name, &passphrase)?.recipient());
        }
        KeysCmd::ShowRecovery { vault } => {
            let name = encrypted_vault(vault.as_deref())?;
            let keys = keystore::load(&name, &passphrase)?;
            let n = keys.identities().len();
            for (i, id) in keys.identities().iter().enumerate() {
                if n > 1 {
                    println!("# identity {} of {n}", i + 1);
                }
                println!("{}", id.recovery_phrase().as_str());
            }
        }
        KeysCmd::Restore { vault, passphrase } => {
            let name = encrypted_vault(Some(&vault))?;
            no_clobber(&name)?;
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            let identities = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(Identity::from_recovery_phrase)
                .collect::<Result<Vec<_>, _>>()?;
            let keys = VaultKeys::from_identities(identities)
                .context("give at least one recovery phrase on stdin")?;
            let p = passphrase.then(new_passphrase).transpose()?;
            keystore::save(&name, &keys, p.as_deref())?;
            println!(
                "restored {} identit{} of vault {name:?}",
                keys.identities().len(),
                if keys.identities().len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
        }
        KeysCmd::Import { vault, identity } => {
            let (name, cfg) = Config::load()?.vault(Some(&vault))?;
            no_clobber(&name)?;
            let mine = std::fs::read(&identity)
                .with_context(|| format!("cannot read {}", identity.display()))?;
            let mine = match VaultKeys::open_identity_bytes(&mine, None) {
                Err(CryptoError::PassphraseRequired) => {
                    VaultKeys::open_identity_bytes(&mine, Some(&passphrase()?))?
                }
                other => other?,
            };
            let key = crate::vaults::share_key(&cfg, &mine.recipient());
            let resp = crate::block_on(async {
                let r = cfg
                    .target()
                    .client()
                    .get_object()
                    .bucket(&cfg.bucket)
                    .key(&key)
                    .send()
                    .await?;
                Ok::<_, anyhow::Error>(r.body.collect().await?.into_bytes())
            })
            .with_context(|| {
                format!(
                    "no share for {} in vault {name:?}; ask an owner to run `cybs3 vaults share`",
                    mine.recipient()
                )
            })?;
            let text = unwrap_with(&resp, mine.identities())?;
            let keys = VaultKeys::from_identity_file(std::str::from_utf8(&text)?)?;
            keystore::save(&name, &keys, None)?;
            println!("imported the identity of vault {name:?}");
        }
    }
    Ok(())
}
