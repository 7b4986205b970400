//! Per-bucket access keys, kept in the engine's metadata (replicated and durable like
//! every record) with their secrets sealed by the server key.
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
const NS: &str = "access-key";

/// What one record holds (JSON, so later fields such as users and expiry can be added).
#[derive(Serialize, Deserialize)]
struct KeyRecord {
    bucket: String,
    created_unix: u64,
    nonce: [u8; 12],
    sealed_secret: Vec<u8>,
}

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
        // AWS's shapes: 20 upper-case alphanumerics and a 40-character secret.
        let access_key = format!(
            "CY{}",
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
        let rec = KeyRecord {
            bucket: bucket.to_string(),
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            nonce,
            sealed_secret,
        };
        self.store
            .set_server_record(NS, &access_key, Some(encode(&rec)?))?;
        Ok(NewKey {
            access_key,
            secret_key,
            bucket: bucket.to_string(),
        })
    }

    pub fn list(&self) -> Result<Vec<KeyInfo>> {
        self.store
            .server_records(NS)?
            .into_iter()
            .map(|(access_key, v)| {
                let rec: KeyRecord = decode(&v)?;
                Ok(KeyInfo {
                    access_key,
                    bucket: rec.bucket,
                    created_unix: rec.created_unix,
                })
            })
            .collect()
    }

    /// Remove a key; it stops working with the next request. False when it did not exist.
    pub fn remove(&self, access_key: &str) -> Result<bool> {
        if self.store.server_record(NS, access_key)?.is_none() {
            return Ok(false);
        }
        self.store.set_server_record(NS, access_key, None)?;
        Ok(true)
    }

    /// The secret and bucket of a key, or `None` when there is no such key.
    pub(crate) fn lookup(&self, access_key: &str) -> Result<Option<(String, String)>> {
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
        Ok(Some((secret, rec.bucket)))
    }
}

fn encode(rec: &KeyRecord) -> Result<Vec<u8>> {
    serde_json::to_vec(rec).map_err(|e| Error::Meta(e.to_string()))
}

fn decode(v: &[u8]) -> Result<KeyRecord> {
    serde_json::from_slice(v).map_err(|e| Error::Meta(format!("bad access key record: {e}")))
}
