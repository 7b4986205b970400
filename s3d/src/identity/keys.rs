//! Access keys (per-bucket keys, users' keys and temporary session credentials), kept
//! in the engine's metadata (replicated and durable like every record) with their
//! secrets sealed by the server key.
//!
//! SigV4 needs the secret itself on the server, so secrets cannot be hashed; they are
//! sealed with ChaCha20-Poly1305 under a 32-byte server key that lives 0600 outside the
//! index (`<data>/server.key`), so a copied drive or LMDB file does not reveal them.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use engine::{Error, Result, Store};
use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The engine namespace of access-key records, named by access key id.
pub(crate) const NS: &str = "access-key";

/// What one record holds (JSON; exactly one of the owner fields is set).
#[derive(Serialize, Deserialize)]
struct KeyRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<Session>,
    created_unix: u64,
    nonce: [u8; 12],
    sealed_secret: Vec<u8>,
}

/// Whose a key is, which decides what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A per-bucket key: that bucket's objects and settings.
    Bucket(String),
    /// A user's long-term key: the user's policies.
    User(String),
    /// Temporary credentials from STS.
    Session(Session),
}

/// Temporary credentials: who logged in, the policies they got, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `alice` for a local user (AssumeRole), `ldap:alice` for a directory login.
    pub principal: String,
    /// The user's DN for a directory login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    /// Policies fixed at login (directory groups); empty for a local user, whose
    /// current policies apply.
    pub policies: Vec<String>,
    pub expires_unix: u64,
    /// SHA-256 of the session token, which every request must carry.
    pub token_sha256: String,
}

impl Session {
    pub fn expired(&self) -> bool {
        now_unix() >= self.expires_unix
    }

    /// The local user a session acts for, if it is one (AssumeRole).
    pub fn local_user(&self) -> Option<&str> {
        (!self.principal.starts_with("ldap:")).then_some(self.principal.as_str())
    }

    /// The directory user a session acts for, if it is a directory login.
    pub fn directory_user(&self) -> Option<&str> {
        self.principal.strip_prefix("ldap:")
    }
}

/// Expired session records are kept this long (so clients hear ExpiredToken rather than
/// an unknown key), then swept when the next session is made.
const EXPIRED_KEPT_SECS: u64 = 24 * 3600;

/// A key as listed (never with its secret).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyInfo {
    pub access_key: String,
    pub bucket: String,
    pub created_unix: u64,
}

/// A newly created key: the only time its secret is shown.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NewKey {
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
}

/// Access keys of a store, sealed with its server key.
#[derive(Clone)]
pub struct Keyring {
    store: Store,
    cipher: Arc<ChaCha20Poly1305>,
}

impl Keyring {
    pub fn new(store: Store, server_key: &[u8; 32]) -> Keyring {
        Keyring {
            store,
            cipher: Arc::new(ChaCha20Poly1305::new(Key::from_slice(server_key))),
        }
    }

    /// A new key that may use `bucket` (which must exist) and nothing else.
    pub fn create(&self, bucket: &str) -> Result<NewKey> {
        self.store.bucket(bucket)?;
        let (access_key, secret_key) = self.insert(Owner::Bucket(bucket.to_string()))?;
        Ok(NewKey {
            access_key,
            secret_key,
            bucket: bucket.to_string(),
        })
    }

    /// A new key for `owner`: (access key, secret). Checking the owner exists is the caller's.
    pub(crate) fn insert(&self, owner: Owner) -> Result<(String, String)> {
        // AWS's shapes: 20 upper-case alphanumerics and a 40-character secret.
        let prefix = if matches!(owner, Owner::Session(_)) {
            "CT"
        } else {
            "CY"
        };
        let access_key = format!(
            "{prefix}{}",
            Alphanumeric
                .sample_string(&mut rand::rng(), 18)
                .to_uppercase()
        );
        let secret_key = Alphanumeric.sample_string(&mut rand::rng(), 40);
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed_secret = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret_key.as_bytes(),
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| Error::Meta("cannot seal an access key".into()))?;
        let (bucket, user, session) = match owner {
            Owner::Bucket(b) => (Some(b), None, None),
            Owner::User(u) => (None, Some(u), None),
            Owner::Session(s) => (None, None, Some(s)),
        };
        let rec = KeyRecord {
            bucket,
            user,
            session,
            created_unix: now_unix(),
            nonce,
            sealed_secret,
        };
        self.store
            .set_server_record(NS, &access_key, Some(encode(&rec)?))?;
        Ok((access_key, secret_key))
    }

    /// Every key with its owner (never with its secret).
    pub(crate) fn owners(&self) -> Result<Vec<(String, Owner, u64)>> {
        self.store
            .server_records(NS)?
            .into_iter()
            .map(|(access_key, v)| {
                let rec: KeyRecord = decode(&v)?;
                Ok((access_key, owner(&rec)?, rec.created_unix))
            })
            .collect()
    }

    /// The per-bucket keys.
    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        Ok(self
            .owners()?
            .into_iter()
            .filter_map(|(access_key, owner, created_unix)| match owner {
                Owner::Bucket(bucket) => Some(KeyInfo {
                    access_key,
                    bucket,
                    created_unix,
                }),
                _ => None,
            })
            .collect())
    }

    /// Remove every key and session of a local user (at once: there is no cache).
    pub(crate) fn remove_user_keys(&self, user: &str) -> Result<()> {
        for (ak, owner, _) in self.owners()? {
            let theirs = match &owner {
                Owner::User(u) => u == user,
                Owner::Session(s) => s.local_user() == Some(user),
                Owner::Bucket(_) => false,
            };
            if theirs {
                self.store.set_server_record(NS, &ak, None)?;
            }
        }
        Ok(())
    }

    /// Forget sessions that expired long ago.
    pub(crate) fn sweep_sessions(&self) -> Result<()> {
        let cutoff = now_unix().saturating_sub(EXPIRED_KEPT_SECS);
        for (ak, owner, _) in self.owners()? {
            if let Owner::Session(s) = owner {
                if s.expires_unix < cutoff {
                    self.store.set_server_record(NS, &ak, None)?;
                }
            }
        }
        Ok(())
    }

    /// Remove a key; it stops working with the next request. False when it did not exist.
    pub fn remove(&self, access_key: &str) -> Result<bool> {
        if self.store.server_record(NS, access_key)?.is_none() {
            return Ok(false);
        }
        self.store.set_server_record(NS, access_key, None)?;
        Ok(true)
    }

    /// A key's record (`bytes`) with its secret resealed from this server's key to `to`,
    /// for a site peer; `None` for a session's, which stays where it was made.
    pub(crate) fn reseal_out(
        &self,
        access_key: &str,
        bytes: &[u8],
        to: &[u8; 32],
    ) -> Result<Option<Vec<u8>>> {
        let rec = decode(bytes)?;
        if rec.session.is_some() {
            return Ok(None);
        }
        let to = ChaCha20Poly1305::new(Key::from_slice(to));
        reseal(rec, access_key, &self.cipher, &to).map(Some)
    }

    /// A key's record from a site peer, its secret sealed under `from`, resealed under
    /// this server's key.
    pub(crate) fn reseal_in(
        &self,
        access_key: &str,
        bytes: &[u8],
        from: &[u8; 32],
    ) -> Result<Vec<u8>> {
        let from = ChaCha20Poly1305::new(Key::from_slice(from));
        reseal(decode(bytes)?, access_key, &from, &self.cipher)
    }

    /// The secret and owner of a key, or `None` when there is no such key.
    pub(crate) fn lookup(&self, access_key: &str) -> Result<Option<(String, Owner)>> {
        let Some(v) = self.store.server_record(NS, access_key)? else {
            return Ok(None);
        };
        let rec: KeyRecord = decode(&v)?;
        let secret = self
            .cipher
            .decrypt(
                Nonce::from_slice(&rec.nonce),
                Payload {
                    msg: &rec.sealed_secret,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::Meta(format!(
                    "access key {access_key} cannot be unsealed: is server.key the store's own?"
                ))
            })?;
        let secret = String::from_utf8(secret)
            .map_err(|_| Error::Meta(format!("access key {access_key} is damaged")))?;
        Ok(Some((secret, owner(&rec)?)))
    }
}

/// `rec` with its secret opened by `from` and sealed again by `to`, under a new nonce.
fn reseal(
    mut rec: KeyRecord,
    access_key: &str,
    from: &ChaCha20Poly1305,
    to: &ChaCha20Poly1305,
) -> Result<Vec<u8>> {
    let aad = access_key.as_bytes();
    let secret = from
        .decrypt(
            Nonce::from_slice(&rec.nonce),
            Payload {
                msg: &rec.sealed_secret,
                aad,
            },
        )
        .map_err(|_| Error::Meta(format!("access key {access_key} cannot be unsealed")))?;
    rand::rng().fill_bytes(&mut rec.nonce);
    rec.sealed_secret = to
        .encrypt(Nonce::from_slice(&rec.nonce), Payload { msg: &secret, aad })
        .map_err(|_| Error::Meta("cannot seal an access key".into()))?;
    encode(&rec)
}

fn owner(rec: &KeyRecord) -> Result<Owner> {
    match (&rec.bucket, &rec.user, &rec.session) {
        (Some(b), None, None) => Ok(Owner::Bucket(b.clone())),
        (None, Some(u), None) => Ok(Owner::User(u.clone())),
        (None, None, Some(s)) => Ok(Owner::Session(s.clone())),
        _ => Err(Error::Meta(
            "an access key record has no single owner".into(),
        )),
    }
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn encode(rec: &KeyRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(rec).map_err(|e| Error::Meta(e.to_string()))
}

fn decode(v: &[u8]) -> Result<KeyRecord> {
    serde_json::from_slice(v).map_err(|e| Error::Meta(format!("bad access key record: {e}")))
}
