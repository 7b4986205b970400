//! Store geometry: erasure parameters, block size and the per-drive format file.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Objects are cut into blocks of this size; each block is one erasure stripe.
pub const BLOCK_SIZE: u32 = 1 << 20;

/// Objects up to this size live inline in the metadata records (no shard files).
pub const INLINE_MAX: usize = 64 * 1024;

/// Data + parity shard counts of the store's single erasure set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec {
    pub data: u8,
    pub parity: u8,
}

impl Ec {
    /// The default split for a drive count (CONTRACT.md): 1→1+0, 2–3→p1, 4–5→p2, 6–7→p3, ≥8→p4.
    pub fn default_for(drives: usize) -> Ec {
        let parity = match drives {
            0 | 1 => 0,
            2 | 3 => 1,
            4 | 5 => 2,
            6 | 7 => 3,
            _ => 4,
        };
        Ec {
            data: (drives.max(1) - parity) as u8,
            parity: parity as u8,
        }
    }

    pub fn total(&self) -> usize {
        self.data as usize + self.parity as usize
    }

    pub fn k(&self) -> usize {
        self.data as usize
    }

    pub fn m(&self) -> usize {
        self.parity as usize
    }
}

impl fmt::Display for Ec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.data, self.parity)
    }
}

impl FromStr for Ec {
    type Err = String;

    fn from_str(s: &str) -> Result<Ec, String> {
        let (k, m) = s
            .split_once('+')
            .ok_or_else(|| format!("erasure layout {s:?} is not of the form K+M, e.g. 4+2"))?;
        let k: u8 = k
            .trim()
            .parse()
            .map_err(|_| format!("bad data shard count in {s:?}"))?;
        let m: u8 = m
            .trim()
            .parse()
            .map_err(|_| format!("bad parity shard count in {s:?}"))?;
        if k == 0 {
            return Err("at least one data shard is needed".into());
        }
        if k as usize + m as usize > 128 {
            return Err("at most 128 shards per stripe".into());
        }
        Ok(Ec { data: k, parity: m })
    }
}

/// Written to every drive at format time; the layout is fixed from then on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Format {
    pub format: u32,
    pub store_id: String,
    pub drive_index: usize,
    pub drive_count: usize,
    pub ec: Ec,
    pub block_size: u32,
    /// The pool the drive belongs to (`pool.rs`): 0, the first, for the store's own
    /// drives, which hold the index; absent in formats from before pools.
    #[serde(default, skip_serializing_if = "is_first_pool")]
    pub pool: u16,
}

fn is_first_pool(pool: &u16) -> bool {
    *pool == 0
}

/// Can `ec` be the layout of a set of `n` drives?
pub(crate) fn check(ec: Ec, n: usize) -> crate::Result<()> {
    use crate::Error;
    if n == 0 || n > 128 {
        return Err(Error::Layout("a drive set has 1 to 128 drives".into()));
    }
    if ec.total() != n {
        return Err(Error::Layout(format!(
            "erasure layout {ec} needs {} drives, {n} given",
            ec.total()
        )));
    }
    if ec.m() > 0 && !reed_solomon_simd::ReedSolomonEncoder::supports(ec.k(), ec.m()) {
        return Err(Error::Layout(format!(
            "erasure layout {ec} is not supported"
        )));
    }
    Ok(())
}

pub const FORMAT_VERSION: u32 = 1;

/// Bytes of one shard of a block of `block_len` bytes: even, as reed-solomon-simd requires.
pub fn shard_len(block_len: usize, k: usize) -> usize {
    let s = block_len.div_ceil(k).max(1);
    s + (s & 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_split_follows_contract() {
        let cases = [
            (1, "1+0"),
            (2, "1+1"),
            (3, "2+1"),
            (4, "2+2"),
            (5, "3+2"),
            (6, "3+3"),
            (7, "4+3"),
            (8, "4+4"),
            (12, "8+4"),
        ];
        for (n, want) in cases {
            assert_eq!(Ec::default_for(n).to_string(), want, "{n} drives");
        }
    }

    #[test]
    fn parse_rejects_nonsense() {
        assert_eq!("4+2".parse::<Ec>().unwrap(), Ec { data: 4, parity: 2 });
        assert!("4".parse::<Ec>().is_err());
        assert!("0+2".parse::<Ec>().is_err());
        assert!("x+2".parse::<Ec>().is_err());
    }

    #[test]
    fn shard_len_is_even_and_covers_block() {
        for k in 1..9 {
            for len in [1usize, 2, 3, 7, 1000, 4096, 1 << 20] {
                let s = shard_len(len, k);
                assert_eq!(s % 2, 0);
                assert!(s * k >= len);
            }
        }
    }
}
