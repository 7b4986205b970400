//! Reed-Solomon coding of one block into K data + M parity shards, and back.

use crate::error::{Error, Result};
use crate::layout::shard_len;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Encodes blocks into `k + m` equal shards, reusing its buffers between blocks.
pub struct Encoder {
    k: usize,
    m: usize,
    rs: Option<ReedSolomonEncoder>,
    /// `k + m` shards of `shard` bytes each, back to back.
    buf: Vec<u8>,
    shard: usize,
}

impl Encoder {
    pub fn new(k: usize, m: usize) -> Encoder {
        Encoder {
            k,
            m,
            rs: None,
            buf: Vec::new(),
            shard: 0,
        }
    }

    /// Encode `block`; afterwards `shard(i)` gives shard `i` (data `0..k`, parity `k..k+m`).
    pub fn encode(&mut self, block: &[u8]) -> Result<()> {
        let (k, m) = (self.k, self.m);
        let s = shard_len(block.len(), k);
        self.shard = s;
        self.buf.clear();
        self.buf.resize((k + m) * s, 0);
        self.buf[..block.len()].copy_from_slice(block);
        if m == 0 {
            return Ok(());
        }
        let rs = match self.rs.as_mut() {
            Some(rs) => {
                rs.reset(k, m, s).map_err(rs_err)?;
                rs
            }
            None => self
                .rs
                .insert(ReedSolomonEncoder::new(k, m, s).map_err(rs_err)?),
        };
        for i in 0..k {
            rs.add_original_shard(&self.buf[i * s..(i + 1) * s])
                .map_err(rs_err)?;
        }
        let out = rs.encode().map_err(rs_err)?;
        for (j, rec) in out.recovery_iter().enumerate() {
            let at = (k + j) * s;
            self.buf[at..at + s].copy_from_slice(rec);
        }
        Ok(())
    }

    pub fn shard(&self, i: usize) -> &[u8] {
        &self.buf[i * self.shard..(i + 1) * self.shard]
    }
}

/// Rebuild every shard (data and parity) of a block from any `k` of them.
/// `shards[i]` is `Some` for each shard that was read and verified.
pub fn reconstruct(k: usize, m: usize, shards: &mut [Option<Vec<u8>>]) -> Result<()> {
    let have = shards.iter().filter(|s| s.is_some()).count();
    if have < k {
        return Err(Error::Corrupt(format!(
            "only {have} of {} shards readable, {k} needed",
            k + m
        )));
    }
    if have == k + m {
        return Ok(());
    }
    let s = shards.iter().flatten().next().map(Vec::len).unwrap_or(0);
    let data_missing = shards[..k].iter().any(Option::is_none);
    if data_missing {
        let mut dec = ReedSolomonDecoder::new(k, m, s).map_err(rs_err)?;
        for (i, sh) in shards.iter().enumerate() {
            if let Some(sh) = sh {
                if i < k {
                    dec.add_original_shard(i, sh).map_err(rs_err)?;
                } else {
                    dec.add_recovery_shard(i - k, sh).map_err(rs_err)?;
                }
            }
        }
        let out = dec.decode().map_err(rs_err)?;
        let restored: Vec<(usize, Vec<u8>)> = out
            .restored_original_iter()
            .map(|(i, b)| (i, b.to_vec()))
            .collect();
        drop(out);
        for (i, b) in restored {
            shards[i] = Some(b);
        }
    }
    if shards[k..].iter().any(Option::is_none) {
        // All data is present now: parity is simply re-encoded.
        let mut enc = ReedSolomonEncoder::new(k, m, s).map_err(rs_err)?;
        for sh in shards[..k].iter().flatten() {
            enc.add_original_shard(sh).map_err(rs_err)?;
        }
        let out = enc.encode().map_err(rs_err)?;
        for (j, rec) in out.recovery_iter().enumerate() {
            if shards[k + j].is_none() {
                shards[k + j] = Some(rec.to_vec());
            }
        }
    }
    Ok(())
}

fn rs_err(e: reed_solomon_simd::Error) -> Error {
    Error::Corrupt(format!("erasure coding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn any_m_losses_are_recovered() {
        let (k, m) = (4, 2);
        let data = block(1_000_003);
        let mut enc = Encoder::new(k, m);
        enc.encode(&data).unwrap();
        let all: Vec<Vec<u8>> = (0..k + m).map(|i| enc.shard(i).to_vec()).collect();
        for a in 0..k + m {
            for b in a + 1..k + m {
                let mut shards: Vec<Option<Vec<u8>>> = all.iter().cloned().map(Some).collect();
                shards[a] = None;
                shards[b] = None;
                reconstruct(k, m, &mut shards).unwrap();
                let got: Vec<u8> = shards.iter().flatten().flatten().copied().collect();
                let want: Vec<u8> = all.iter().flatten().copied().collect();
                assert_eq!(got, want, "lost {a},{b}");
            }
        }
    }

    #[test]
    fn too_many_losses_are_an_error() {
        let mut enc = Encoder::new(2, 1);
        enc.encode(&block(100)).unwrap();
        let mut shards = vec![Some(enc.shard(0).to_vec()), None, None];
        assert!(reconstruct(2, 1, &mut shards).is_err());
    }

    #[test]
    fn no_parity_splits_only() {
        let data = block(11);
        let mut enc = Encoder::new(1, 0);
        enc.encode(&data).unwrap();
        assert_eq!(&enc.shard(0)[..11], &data[..]);
    }
}
