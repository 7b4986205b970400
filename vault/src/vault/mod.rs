//! A vault: plaintext paths (`photos/a.jpg`) mapped onto objects of one bucket and prefix.
//!
//! Plain vaults map paths one to one (`prefix/photos/a.jpg`), so any S3 client sees the
//! same tree. Encrypted vaults store each path segment encrypted (AES-SIV, see
//! [`crate::crypto::names`]) and each body as a standard age file, so the server sees
//! ciphertext only.
//!
//! Each uploaded object carries, as user metadata, the file's modification time (`mtime`,
//! seconds with a fraction, as rclone writes it), its mode (`mode`, decimal `st_mode`, as
//! s3fs writes it), and a content hash (`cybs3-hash`) that `sync --checksum` compares:
//! SHA-256 for plain vaults, HMAC-SHA256 under a vault key for encrypted ones (a plain
//! hash of plaintext would let the server confirm guesses of file contents).
//!
//! - `names`: paths and their object keys; `list`: listings and attributes of one file;
//!   `meta`: attributes as stored.
//! - `upload`: local files up, with [`UploadAttrs`]; `download`: objects down into files;
//!   `landing`: many downloads made durable together.
//! - `reader`: random and streaming reads of a file's plaintext.
//! - `links`: hard links, as link records naming an inode object.
//! - `binding`: each encrypted file bound to its path, checked on reads, made on writes,
//!   copies and renames.

use crate::config::VaultConfig;
use crate::crypto::agefile::{plain_len_for, SEALED_PAYLOAD_START};
use crate::crypto::{BindKey, NameCipher, VaultKeys, CHUNK};
use crate::error::{Error, Result, ResultExt};
use crate::seen::Seen;
use crate::transfer::{payload_needs_signing, Transfers};
use aws_sdk_s3::Client;

mod binding;
mod download;
mod landing;
mod links;
mod list;
mod meta;
mod names;
mod reader;
mod upload;
mod versions;

pub use binding::RebindReport;
pub use landing::Landing;
pub use links::{inode_path, is_internal, INTERNAL};
pub use list::Entry;
pub(crate) use meta::{format_mtime, META_ATIME, META_GID, META_MODE, META_MTIME, META_UID};
pub use meta::{Meta, UploadAttrs};
pub use names::clean_path;
pub use reader::{RangeReader, STREAM_BATCH, STREAM_DEPTH};
pub use upload::Uploaded;
pub use versions::{FileVersion, Lock};

/// One age payload chunk as stored: 64 KiB of plaintext and its 16-byte tag.
const SEALED_CHUNK: u64 = CHUNK + 16;

struct Crypt {
    keys: VaultKeys,
    names: NameCipher,
    mac_key: zeroize::Zeroizing<[u8; 32]>,
    bind_key: BindKey,
    seen: Seen,
}

pub struct Vault {
    pub name: String,
    pub cfg: VaultConfig,
    client: Client,
    transfers: Transfers,
    crypt: Option<Crypt>,
}

impl Vault {
    /// `keys` must be given exactly when the vault is encrypted.
    pub fn open(name: &str, cfg: VaultConfig, keys: Option<VaultKeys>) -> Result<Vault> {
        let crypt = match (cfg.encrypted, keys) {
            (true, Some(keys)) => Some(Crypt {
                names: keys.names_cipher(),
                mac_key: keys.content_mac_key(),
                bind_key: keys.bind_key(),
                seen: Seen::open(
                    &crate::config::config_dir().join("seen"),
                    &[&cfg.endpoint, &cfg.bucket, &cfg.prefix],
                )?,
                keys,
            }),
            (false, None) => None,
            (true, None) => {
                return Err(Error::invalid(format!(
                    "vault {name:?} is encrypted and needs its identity"
                )))
            }
            (false, Some(_)) => {
                return Err(Error::invalid(format!(
                    "vault {name:?} is plain and takes no identity"
                )))
            }
        };
        let client = cfg.target().client();
        let mut transfers = Transfers::new(
            client.clone(),
            crate::config::config_dir().join("transfers"),
        );
        transfers.sign_payload = payload_needs_signing(cfg.encrypted, &cfg.endpoint);
        Ok(Vault {
            name: name.to_string(),
            cfg,
            client,
            transfers,
            crypt,
        })
    }

    pub fn encrypted(&self) -> bool {
        self.crypt.is_some()
    }

    /// The identities that read an encrypted vault (`None` for a plain one).
    pub(crate) fn identities(&self) -> Option<&[crate::crypto::Identity]> {
        self.crypt.as_ref().map(|c| c.keys.identities())
    }

    /// The recipient of an encrypted vault's new writes (`None` for a plain one).
    pub(crate) fn recipient(&self) -> Option<crate::crypto::Recipient> {
        self.crypt.as_ref().map(|c| c.keys.recipient())
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn plain_size(&self, stored: u64) -> u64 {
        match self.crypt {
            // Our writer's header has a fixed length; sizes of objects written by other
            // age tools are estimates until they are opened.
            Some(_) => plain_len_for(stored, SEALED_PAYLOAD_START).unwrap_or(stored),
            None => stored,
        }
    }

    fn hash_key(&self) -> Option<[u8; 32]> {
        self.crypt.as_ref().map(|c| *c.mac_key)
    }

    /// Delete one file (absent files are not an error, as in S3).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let key = self.key_of(path)?;
        self.client
            .delete_object()
            .bucket(&self.cfg.bucket)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("cannot delete {}:{path}", self.name))?;
        Ok(())
    }
}
