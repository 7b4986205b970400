//! Server-side encryption: envelope encryption of an object's data (SSE-S3, SSE-KMS).
//!
//! Each part's data is sealed with a fresh 256-bit data key, in blocks: plaintext block
//! `b` ([`plain_block`] bytes) becomes block `b` of the stored bytes, its AES-256-GCM
//! ciphertext and tag under nonce `b` (ring, which uses the CPU's AES instructions). A
//! sealed block is exactly one erasure-coded block, so a range read opens only the blocks
//! it touches, and erasure coding, bitrot checks, heal, moves and remote tiers see only
//! ciphertext. A part's record keeps the size of its sealed bytes; the version's size is
//! the plaintext's.
//!
//! A data key exists unwrapped only in memory: records keep it wrapped by a KMS key
//! version (`kms.rs`), bound to the key's name and version and to the request's
//! encryption context.

use crate::error::{Error, Result};
use crate::record::{Encryption, ObjectVersion, SseMode};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// Bytes of the tag that ends every sealed block.
pub(crate) const TAG: usize = 16;

/// Plaintext bytes per sealed block of a store with blocks of `block_size`.
pub(crate) fn plain_block(block_size: usize) -> usize {
    block_size - TAG
}

/// Sealed bytes of `plain` plaintext bytes.
#[cfg(test)]
pub(crate) fn sealed_len(plain: u64, block_size: usize) -> u64 {
    let p = plain_block(block_size) as u64;
    plain + plain.div_ceil(p) * TAG as u64
}

/// Plaintext bytes of `sealed` sealed bytes: each block, the last one too, ends in a tag.
pub(crate) fn plain_len(sealed: u64, block_size: usize) -> u64 {
    sealed - sealed.div_ceil(block_size as u64) * TAG as u64
}

/// The plaintext bytes of part `part` of `v` (a version's own `size` is the plaintext's).
pub fn part_plain_size(v: &ObjectVersion, part: usize) -> u64 {
    let stored = v.parts[part].size;
    match &v.encryption {
        Some(e) => plain_len(stored, e.block as usize),
        None => stored,
    }
}

/// The SSE-C mode of customer key `key` (whose MD5, base64, is `key_md5`).
pub fn customer_mode(key: &[u8; 32], key_md5: &str) -> SseMode {
    let salt: [u8; 16] = rand::random();
    SseMode::Customer {
        key_md5: key_md5.to_string(),
        salt,
        check: customer_check(&salt, key),
    }
}

fn customer_check(salt: &[u8; 16], key: &[u8; 32]) -> Vec<u8> {
    let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
    ring::hmac::sign(&mac, key).as_ref().to_vec()
}

/// Whether `key` is the customer key of SSE-C mode `mode` (in constant time).
pub(crate) fn customer_matches(mode: &SseMode, key: &[u8; 32]) -> bool {
    match mode {
        SseMode::Customer { salt, check, .. } => {
            let mac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
            ring::hmac::verify(&mac, key, check).is_ok()
        }
        _ => false,
    }
}

/// An unwrapped data key, in memory only.
pub(crate) struct DataKey(LessSafeKey);

impl DataKey {
    pub fn new(bytes: &[u8; 32]) -> DataKey {
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte key");
        DataKey(LessSafeKey::new(key))
    }

    /// Block `b`'s nonce: each data key seals one part, whose block numbers never repeat.
    fn nonce(b: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&b.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    }

    /// Seals plaintext block `b` in place: its ciphertext, then the tag.
    pub fn seal(&self, b: u64, buf: &mut Vec<u8>) {
        let tag = self
            .0
            .seal_in_place_separate_tag(Self::nonce(b), Aad::empty(), buf)
            .expect("a block is far below AES-GCM's limit");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Opens sealed block `b` in place, or says it was changed.
    pub fn open(&self, b: u64, buf: &mut Vec<u8>) -> Result<()> {
        let n = self
            .0
            .open_in_place(Self::nonce(b), Aad::empty(), buf)
            .map_err(|_| Error::Corrupt(format!("encrypted block {b} fails its check")))?
            .len();
        buf.truncate(n);
        Ok(())
    }
}

/// Seals a part's plaintext as it arrives, a block at a time.
pub(crate) struct Sealer {
    key: DataKey,
    plain: usize,
    buf: Vec<u8>,
    next: u64,
    /// Plaintext bytes taken.
    pub size: u64,
}

impl Sealer {
    pub fn new(key: DataKey, block_size: usize) -> Sealer {
        Sealer {
            key,
            plain: plain_block(block_size),
            buf: Vec::with_capacity(block_size),
            next: 0,
            size: 0,
        }
    }

    /// Takes plaintext; hands each full sealed block to `out`.
    pub fn push(
        &mut self,
        mut data: &[u8],
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.size += data.len() as u64;
        while !data.is_empty() {
            let n = (self.plain - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.plain {
                self.flush(out)?;
            }
        }
        Ok(())
    }

    /// Seals what is left, a last shorter block.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        match self.buf.is_empty() {
            true => Ok(()),
            false => self.flush(out),
        }
    }

    fn flush(&mut self, out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.key.seal(self.next, &mut self.buf);
        self.next += 1;
        out(&self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl Encryption {
    /// The encryption context a mode binds its data keys to.
    pub(crate) fn context(mode: &SseMode) -> &[u8] {
        match mode {
            SseMode::Kms {
                context: Some(c), ..
            } => c.as_bytes(),
            _ => b"",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip_at_every_block_edge() {
        let bs = 1024;
        let p = plain_block(bs) as u64;
        for plain in [0, 1, p - 1, p, p + 1, 2 * p, 2 * p + 7, 10 * p] {
            let sealed = sealed_len(plain, bs);
            assert_eq!(plain_len(sealed, bs), plain, "{plain}");
        }
        assert_eq!(sealed_len(p, bs), bs as u64);
    }

    #[test]
    fn sealed_blocks_open_only_unchanged_and_in_place() {
        let key = DataKey::new(&[7; 32]);
        let mut s = Sealer::new(DataKey::new(&[7; 32]), 64);
        let mut blocks = Vec::new();
        let data: Vec<u8> = (0..200u8).collect();
        s.push(&data, &mut |b| {
            blocks.push(b.to_vec());
            Ok(())
        })
        .unwrap();
        s.finish(&mut |b| {
            blocks.push(b.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            blocks.iter().map(Vec::len).sum::<usize>() as u64,
            sealed_len(200, 64)
        );
        let mut opened = Vec::new();
        for (b, block) in blocks.iter().enumerate() {
            let mut buf = block.clone();
            key.open(b as u64, &mut buf).unwrap();
            opened.extend(buf);
        }
        assert_eq!(opened, data);
        // A flipped bit, or a block in another's place, fails its check.
        let mut bad = blocks[1].clone();
        bad[3] ^= 1;
        assert!(key.open(1, &mut bad).is_err());
        assert!(key.open(2, &mut blocks[1].clone()).is_err());
    }
}
