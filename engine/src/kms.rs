//! The built-in KMS: named keys that wrap the data keys of server-side encryption
//! (`sse.rs`), behind [`KeyService`], the seam an external KMS (KES, Vault transit, KMIP)
//! would implement too.
//!
//! A key is a list of versions of 256-bit key material. Each version's material is kept
//! in the index sealed under the master key, which is never in the index or on the
//! drives: the server's key file or one given at start (`Store::set_kms_master`). So the
//! disks alone never decrypt anything. `rotate` adds a version that new data keys use;
//! older ones stay to unwrap what they wrapped. A disabled key wraps and unwraps
//! nothing, which makes its objects unreadable until it is enabled again. Each key keeps
//! its own trail: when it was created, rotated, disabled and enabled (in its record), and
//! how many data keys it wrapped and unwrapped since the server started.
//!
//! SSE-S3 uses the key [`SSE_S3_KEY`] and SSE-KMS without a key id [`DEFAULT_KEY`]; both
//! are made on first use.

use crate::error::{Error, Result};
use crate::record::{self, WrappedKey};
use crate::Store;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The key SSE-S3 data keys are wrapped by.
pub const SSE_S3_KEY: &str = "sse-s3";
/// The key of SSE-KMS requests that name none (AWS's `aws/s3`).
pub const DEFAULT_KEY: &str = "default";

/// The server-record namespace of the keys: name → [`KmsKey`].
const RECORDS: &str = "engine.kms";

/// What wraps and unwraps data keys. The built-in KMS is the store's own; another
/// implementation would call out to an external KMS.
pub trait KeyService: Send + Sync {
    /// Wraps `data_key` by the newest version of key `key`, bound to `context`.
    fn wrap(&self, key: &str, context: &[u8], data_key: &[u8; 32]) -> Result<WrappedKey>;
    /// The data key `wrapped` holds, if its key is enabled and `context` is the one it
    /// was wrapped with.
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<[u8; 32]>;
}

/// A key as its record keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct KmsKey {
    name: String,
    enabled: bool,
    /// Each version's material sealed under the master key (nonce, ciphertext, tag).
    versions: Vec<Vec<u8>>,
    /// What happened to it: (Unix ns, "created" | "rotated" | "disabled" | "enabled").
    trail: Vec<(u64, String)>,
}

impl record::Record for KmsKey {}

/// A key as `cybs3 admin kms key list` shows it: never its material.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    pub name: String,
    pub enabled: bool,
    /// The version new data keys are wrapped by (1 for a key never rotated).
    pub version: u32,
    pub created_ns: u64,
    pub trail: Vec<(u64, String)>,
    /// Data keys wrapped and unwrapped since the server started.
    pub wrapped: u64,
    pub unwrapped: u64,
}

/// The built-in KMS's state in memory: the master key, the keys' records, their
/// unsealed material, and use counts.
#[derive(Default)]
pub(crate) struct Kms {
    master: std::sync::OnceLock<LessSafeKey>,
    keys: Mutex<HashMap<String, KmsKey>>,
    material: Mutex<HashMap<(String, u32), Arc<LessSafeKey>>>,
    uses: Mutex<HashMap<String, Arc<(AtomicU64, AtomicU64)>>>,
}

fn aead_key(bytes: &[u8]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key"))
}

/// Seals `plain` under `key` with a random nonce, bound to `aad`: nonce, ciphertext, tag.
fn seal(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let nonce: [u8; 12] = rand::random();
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .expect("sealing a key cannot fail");
    [nonce.as_slice(), &buf].concat()
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = body.to_vec();
    let n = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// What a data key wrapped by a customer's key (SSE-C) is bound to.
const CUSTOMER_AAD: &[u8] = b"cybs3 sse-c data key";

/// `data_key` wrapped by an SSE-C customer key.
pub(crate) fn wrap_customer(customer: &[u8; 32], data_key: &[u8; 32]) -> WrappedKey {
    WrappedKey {
        key: String::new(),
        version: 0,
        sealed: seal(&aead_key(customer), CUSTOMER_AAD, data_key),
    }
}

/// The data key `w` holds, wrapped by customer key `customer`.
pub(crate) fn unwrap_customer(customer: &[u8; 32], w: &WrappedKey) -> Result<[u8; 32]> {
    open(&aead_key(customer), CUSTOMER_AAD, &w.sealed)
        .and_then(|k| k.try_into().ok())
        .ok_or(Error::CustomerKeyMismatch)
}

/// What a key version's material is bound to when sealed under the master key.
fn material_aad(name: &str, version: u32) -> Vec<u8> {
    format!("cybs3 kms key {name} version {version}").into_bytes()
}

/// What a data key is bound to when wrapped: its key, the version, the context.
fn data_key_aad(name: &str, version: u32, context: &[u8]) -> Vec<u8> {
    let mut aad = format!("cybs3 data key {name} {version} ").into_bytes();
    aad.extend_from_slice(context);
    aad
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'/' | b'.'));
    match ok {
        true => Ok(()),
        false => Err(Error::Kms(format!(
            "{name:?} is no key name: use 1 to 64 letters, digits, '-', '_', '/' or '.'"
        ))),
    }
}

impl Store {
    /// Gives the built-in KMS its master key; until then, nothing is encrypted or
    /// decrypted. Loads the keys' records.
    pub fn set_kms_master(&self, master: &[u8; 32]) -> Result<()> {
        let kms = &self.inner.kms;
        let _ = kms.master.set(aead_key(master));
        let mut keys = kms.keys.lock().unwrap();
        for (name, bytes) in self.server_records(RECORDS)? {
            keys.insert(name, record::decode(&bytes)?);
        }
        Ok(())
    }

    fn master(&self) -> Result<&LessSafeKey> {
        self.inner.kms.master.get().ok_or_else(|| {
            Error::Kms("the KMS has no master key: encryption needs a running server".into())
        })
    }

    fn save_key(&self, key: &KmsKey) -> Result<()> {
        self.set_server_record(RECORDS, &key.name, Some(record::encode(key)?))
    }

    fn now_ns() -> u64 {
        crate::commit::Clock::new().now()
    }

    /// Makes key `name` with its first version.
    pub fn kms_create(&self, name: &str) -> Result<KeyInfo> {
        check_name(name)?;
        let master = self.master()?;
        let mut keys = self.inner.kms.keys.lock().unwrap();
        if keys.contains_key(name) {
            return Err(Error::Kms(format!("there is a key {name:?} already")));
        }
        let material: [u8; 32] = rand::random();
        let key = KmsKey {
            name: name.to_string(),
            enabled: true,
            versions: vec![seal(master, &material_aad(name, 1), &material)],
            trail: vec![(Self::now_ns(), "created".into())],
        };
        self.save_key(&key)?;
        keys.insert(name.to_string(), key.clone());
        drop(keys);
        tracing::info!(key = name, "kms key created");
        Ok(self.key_info(&key))
    }

    /// Adds a version to key `name`: new data keys use it; the older ones stay.
    pub fn kms_rotate(&self, name: &str) -> Result<KeyInfo> {
        let master = self.master()?;
        self.change_key(name, "rotated", |k| {
            let version = k.versions.len() as u32 + 1;
            let material: [u8; 32] = rand::random();
            k.versions
                .push(seal(master, &material_aad(name, version), &material));
        })
    }

    /// Turns key `name` off (`false`) or on again.
    pub fn kms_enable(&self, name: &str, on: bool) -> Result<KeyInfo> {
        self.change_key(name, if on { "enabled" } else { "disabled" }, |k| {
            k.enabled = on
        })
    }

    fn change_key(
        &self,
        name: &str,
        what: &str,
        change: impl FnOnce(&mut KmsKey),
    ) -> Result<KeyInfo> {
        let mut keys = self.inner.kms.keys.lock().unwrap();
        let key = keys
            .get(name)
            .ok_or_else(|| Error::Kms(format!("there is no key {name:?}")))?;
        let mut next = key.clone();
        change(&mut next);
        next.trail.push((Self::now_ns(), what.to_string()));
        self.save_key(&next)?;
        keys.insert(name.to_string(), next.clone());
        drop(keys);
        tracing::info!(key = name, "kms key {what}");
        Ok(self.key_info(&next))
    }

    /// Whether the KMS has its master key (only a running server gives it one).
    pub(crate) fn kms_ready(&self) -> bool {
        self.inner.kms.master.get().is_some()
    }

    /// The version of key `name` new data keys are wrapped by.
    pub(crate) fn kms_newest(&self, name: &str) -> Result<u32> {
        let keys = self.inner.kms.keys.lock().unwrap();
        keys.get(name)
            .map(|k| k.versions.len() as u32)
            .ok_or_else(|| Error::Kms(format!("the KMS has no key {name:?}")))
    }

    /// Every key.
    pub fn kms_keys(&self) -> Vec<KeyInfo> {
        let keys = self.inner.kms.keys.lock().unwrap().clone();
        let mut out: Vec<KeyInfo> = keys.values().map(|k| self.key_info(k)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Whether key `name` exists (the built-in ones count, made on first use).
    pub fn kms_has(&self, name: &str) -> bool {
        name == SSE_S3_KEY
            || name == DEFAULT_KEY
            || self.inner.kms.keys.lock().unwrap().contains_key(name)
    }

    fn key_info(&self, k: &KmsKey) -> KeyInfo {
        let uses = self.uses(&k.name);
        KeyInfo {
            name: k.name.clone(),
            enabled: k.enabled,
            version: k.versions.len() as u32,
            created_ns: k.trail.first().map_or(0, |t| t.0),
            trail: k.trail.clone(),
            wrapped: uses.0.load(Ordering::Relaxed),
            unwrapped: uses.1.load(Ordering::Relaxed),
        }
    }

    fn uses(&self, name: &str) -> Arc<(AtomicU64, AtomicU64)> {
        let mut uses = self.inner.kms.uses.lock().unwrap();
        uses.entry(name.to_string()).or_default().clone()
    }

    /// Version `version` of key `name`'s material, unsealed once and kept in memory;
    /// refused while the key is disabled.
    fn material(&self, name: &str, version: Option<u32>) -> Result<(u32, Arc<LessSafeKey>)> {
        let kms = &self.inner.kms;
        let mut keys = kms.keys.lock().unwrap();
        if !keys.contains_key(name) && (name == SSE_S3_KEY || name == DEFAULT_KEY) {
            drop(keys);
            match self.kms_create(name) {
                Ok(_) | Err(Error::Kms(_)) => {}
                Err(e) => return Err(e),
            }
            keys = kms.keys.lock().unwrap();
        }
        let key = keys
            .get(name)
            .ok_or_else(|| Error::Kms(format!("the KMS has no key {name:?}")))?;
        if !key.enabled {
            return Err(Error::KmsDisabled(name.to_string()));
        }
        let version = version.unwrap_or(key.versions.len() as u32);
        if let Some(m) = kms
            .material
            .lock()
            .unwrap()
            .get(&(name.to_string(), version))
        {
            return Ok((version, m.clone()));
        }
        let sealed = key
            .versions
            .get(version as usize - 1)
            .ok_or_else(|| Error::Kms(format!("key {name:?} has no version {version}")))?;
        let plain = open(self.master()?, &material_aad(name, version), sealed).ok_or_else(|| {
            Error::Kms(format!(
                "key {name:?} cannot be opened with this master key: start the server with the master key it was made under"
            ))
        })?;
        let m = Arc::new(aead_key(&plain));
        kms.material
            .lock()
            .unwrap()
            .insert((name.to_string(), version), m.clone());
        Ok((version, m))
    }
}

impl KeyService for Store {
    fn wrap(&self, key: &str, context: &[u8], data_key: &[u8; 32]) -> Result<WrappedKey> {
        let (version, material) = self.material(key, None)?;
        self.uses(key).0.fetch_add(1, Ordering::Relaxed);
        Ok(WrappedKey {
            key: key.to_string(),
            version,
            sealed: seal(&material, &data_key_aad(key, version, context), data_key),
        })
    }

    fn unwrap(&self, w: &WrappedKey, context: &[u8]) -> Result<[u8; 32]> {
        let (_, material) = self.material(&w.key, Some(w.version))?;
        self.uses(&w.key).1.fetch_add(1, Ordering::Relaxed);
        let plain = open(
            &material,
            &data_key_aad(&w.key, w.version, context),
            &w.sealed,
        )
        .ok_or_else(|| {
            Error::Kms(format!(
                "a data key of key {:?} does not open: its record or encryption context changed",
                w.key
            ))
        })?;
        plain
            .try_into()
            .map_err(|_| Error::Kms("a data key is not 32 bytes".into()))
    }
}
