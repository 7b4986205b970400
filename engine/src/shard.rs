//! Shard files: a self-describing header, then one checksummed shard per block.
//!
//! ```text
//! 0      magic "CYBS3SH1" | u32 len | postcard(ShardHeader) | crc32   (padded to HEADER_LEN)
//! 4096   block 0: shard bytes | crc32 (LE)
//!        block 1: ...                      (every full block's shard has the same length)
//! ```

use crate::error::{Error, Result};
use crate::layout::shard_len;
use crate::record::DataId;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;

pub const HEADER_LEN: u64 = 4096;
const MAGIC: &[u8; 8] = b"CYBS3SH1";

/// Enough to rebuild the index from the drives alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardHeader {
    pub store_id: String,
    pub data_id: DataId,
    pub index: u8,
    pub k: u8,
    pub m: u8,
    pub block_size: u32,
    pub size: u64,
    pub bucket: String,
    pub key: String,
    /// Multipart upload id and part number, for parts.
    pub upload: Option<(String, u32)>,
}

impl ShardHeader {
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = postcard::to_stdvec(self)?;
        let mut out = Vec::with_capacity(HEADER_LEN as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        if out.len() > HEADER_LEN as usize {
            // Very long keys: keep the geometry, drop the names.
            let short = ShardHeader {
                bucket: String::new(),
                key: String::new(),
                ..self.clone()
            };
            return short.encode();
        }
        out.resize(HEADER_LEN as usize, 0);
        Ok(out)
    }

    pub fn read(file: &File) -> Result<ShardHeader> {
        let mut buf = vec![0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut buf, 0)?;
        let bad = || Error::Corrupt("shard header is damaged".into());
        if &buf[..8] != MAGIC {
            return Err(bad());
        }
        let len = u32::from_le_bytes(buf[8..12].try_into().unwrap()) as usize;
        if 12 + len + 4 > buf.len() {
            return Err(bad());
        }
        let body = &buf[12..12 + len];
        let crc = u32::from_le_bytes(buf[12 + len..16 + len].try_into().unwrap());
        if crc32fast::hash(body) != crc {
            return Err(bad());
        }
        postcard::from_bytes(body).map_err(|_| bad())
    }
}

/// Where block `b`'s shard starts and how long it is, for a part of `size` bytes.
pub struct Geometry {
    pub k: usize,
    pub block_size: usize,
    pub size: u64,
}

impl Geometry {
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(self.block_size as u64)
    }

    pub fn block_len(&self, b: u64) -> usize {
        let start = b * self.block_size as u64;
        (self.size - start).min(self.block_size as u64) as usize
    }

    pub fn shard_len(&self, b: u64) -> usize {
        shard_len(self.block_len(b), self.k)
    }

    pub fn offset(&self, b: u64) -> u64 {
        HEADER_LEN + b * (shard_len(self.block_size, self.k) as u64 + 4)
    }
}

/// Read and verify block `b`'s shard into `buf`; `false` when it is missing, short or fails its checksum.
pub fn read_block(file: &File, geo: &Geometry, b: u64, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    append_block(file, geo, b, buf)
}

/// Append block `b`'s shard to `out` if it reads whole and passes its checksum.
/// Reads straight into `out`'s spare capacity: no zero-filling, no second copy.
pub fn append_block(file: &File, geo: &Geometry, b: u64, out: &mut Vec<u8>) -> bool {
    let len = geo.shard_len(b);
    let start = out.len();
    out.reserve(len + 4);
    if !pread_exact(
        file,
        &mut out.spare_capacity_mut()[..len + 4],
        geo.offset(b),
    ) {
        return false;
    }
    // SAFETY: pread_exact initialized all `len + 4` bytes after `start`.
    unsafe { out.set_len(start + len + 4) };
    let crc = u32::from_le_bytes(out[start + len..].try_into().expect("4 bytes"));
    out.truncate(start + len);
    if crc32fast::hash(&out[start..]) != crc {
        out.truncate(start);
        return false;
    }
    true
}

fn pread_exact(file: &File, buf: &mut [MaybeUninit<u8>], mut offset: u64) -> bool {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into memory we own.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                rest.as_mut_ptr().cast(),
                rest.len(),
                offset as libc::off_t,
            )
        };
        match n {
            n if n > 0 => {
                done += n as usize;
                offset += n as u64;
            }
            0 => return false,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    true
}

/// Append one block's shard with its checksum.
pub fn block_bytes(shard: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(shard);
    out.extend_from_slice(&crc32fast::hash(shard).to_le_bytes());
}

/// Check a whole shard file: header, then every block's checksum.
pub fn verify(file: &File, geo: &Geometry, want: &DataId) -> bool {
    match ShardHeader::read(file) {
        Ok(h) if &h.data_id == want && h.size == geo.size => {}
        _ => return false,
    }
    let mut buf = Vec::new();
    (0..geo.blocks()).all(|b| read_block(file, geo, b, &mut buf))
}
