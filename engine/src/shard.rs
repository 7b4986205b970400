//! Shard files: a self-describing header, then one checksummed shard per block.
//!
//! ```text
//! 0      magic "CYBS3SH1" | u32 len | postcard(ShardHeader) | crc32   (padded to HEADER_LEN)
//! 4096   block 0: shard bytes | crc32 (LE)
//!        block 1: ...                      (every full block's shard has the same length)
//! ```

use crate::direct::{self, align_down, align_up, read_at_most, retrying};
use crate::error::{Error, Result};
use crate::layout::shard_len;
use crate::record::DataId;
use aligned::{Aligned, ALIGN};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

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
        let mut page = Aligned::new(HEADER_LEN as usize);
        let buf = &mut page[..];
        let bad = || Error::Corrupt("shard header is damaged".into());
        if retrying(file, || read_at_most(file, buf, 0))? < buf.len() {
            return Err(bad());
        }
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

/// Opens a shard file for reading, around the page cache where the filesystem allows.
pub fn open(path: &Path) -> io::Result<File> {
    direct::open(OpenOptions::new().read(true), path)
}

/// Read and verify block `b`'s shard into `buf`; `false` when it is missing, short or fails its checksum.
pub fn read_block(file: &File, geo: &Geometry, b: u64, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    append_block(file, geo, b, buf)
}

thread_local! {
    /// Every block a thread reads passes through this one buffer, grown to the largest.
    static STAGE: RefCell<Aligned> = RefCell::new(Aligned::new(ALIGN));
}

/// Append block `b`'s shard to `out` if it reads whole and passes its checksum. The
/// pages around it are read into the thread's aligned stage, and only the shard is copied.
pub fn append_block(file: &File, geo: &Geometry, b: u64, out: &mut Vec<u8>) -> bool {
    let (len, at) = (geo.shard_len(b), geo.offset(b));
    let start = align_down(at);
    let skip = (at - start) as usize;
    let want = skip + len + 4;
    STAGE.with_borrow_mut(|stage| {
        if stage.len() < want {
            *stage = Aligned::new(want);
        }
        let buf = &mut stage[..align_up(want as u64) as usize];
        if !retrying(file, || read_at_most(file, buf, start)).is_ok_and(|n| n >= want) {
            return false;
        }
        let (shard, crc) = buf[skip..want].split_at(len);
        if crc32fast::hash(shard) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return false;
        }
        out.extend_from_slice(shard);
        true
    })
}

/// Writes a new shard file front to back: each block's shard with its checksum as it
/// comes, then the header. Whole pages go to the drive as they fill; the last partial
/// one is written padded and the file cut back to its length.
pub struct ShardWriter {
    file: File,
    stage: Aligned,
    filled: usize,
    /// File offset of `stage[0]`.
    at: u64,
}

impl ShardWriter {
    /// A new file at `path` (which must not exist) for shards of up to `shard_len` bytes.
    pub fn create(path: &Path, shard_len: usize) -> io::Result<ShardWriter> {
        let file = direct::open(
            crate::drive::private_file().write(true).create_new(true),
            path,
        )?;
        Ok(ShardWriter {
            file,
            stage: Aligned::new(shard_len + 4 + ALIGN),
            filled: 0,
            at: HEADER_LEN,
        })
    }

    pub fn append_block(&mut self, shard: &[u8]) -> io::Result<()> {
        let end = self.filled + shard.len() + 4;
        if end > self.stage.len() {
            let mut bigger = Aligned::new(end);
            bigger[..self.filled].copy_from_slice(&self.stage[..self.filled]);
            self.stage = bigger;
        }
        let buf = &mut self.stage[..];
        buf[self.filled..end - 4].copy_from_slice(shard);
        buf[end - 4..end].copy_from_slice(&crc32fast::hash(shard).to_le_bytes());
        self.filled = end;
        let whole = align_down(end as u64) as usize;
        if whole > 0 {
            self.write(whole, self.at)?;
            self.stage.copy_within(whole..end, 0);
            self.at += whole as u64;
            self.filled -= whole;
        }
        Ok(())
    }

    /// Writes what is left and the header, and syncs the file.
    pub fn finish(&mut self, header: &ShardHeader) -> io::Result<()> {
        let len = self.at + self.filled as u64;
        if self.filled > 0 {
            let span = align_up(self.filled as u64) as usize;
            self.stage[self.filled..span].fill(0);
            self.write(span, self.at)?;
        }
        self.file.set_len(len)?;
        let head = header.encode().map_err(io::Error::other)?;
        self.stage[..head.len()].copy_from_slice(&head);
        self.write(head.len(), 0)?;
        self.file.sync_all()
    }

    /// Writes the first `n` bytes of the stage at `offset`.
    fn write(&self, n: usize, offset: u64) -> io::Result<()> {
        let bytes = &self.stage[..n];
        retrying(&self.file, || self.file.write_all_at(bytes, offset))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn is_direct(file: &File) -> bool {
        // SAFETY: fcntl on a descriptor the caller owns, flag arguments only.
        let flags =
            unsafe { libc::fcntl(std::os::unix::io::AsRawFd::as_raw_fd(file), libc::F_GETFL) };
        flags & libc::O_DIRECT != 0
    }

    fn header(size: u64) -> ShardHeader {
        ShardHeader {
            store_id: "s".into(),
            data_id: [3; 16],
            index: 0,
            k: 3,
            m: 0,
            block_size: 3000,
            size,
            bucket: "b".into(),
            key: "k".into(),
            upload: None,
        }
    }

    /// Shards of every length, written around the page cache, land where `Geometry` says,
    /// whole pages or not, and read back verified the same way.
    #[test]
    fn shards_written_around_the_page_cache_read_back_verified() {
        let dir = tempfile::tempdir().unwrap();
        let size = 1_000_001;
        let geo = Geometry {
            k: 3,
            block_size: 3000,
            size,
        };
        let block = |b: u64| vec![b as u8; geo.shard_len(b)];
        let path = dir.path().join("shard");
        let mut w = ShardWriter::create(&path, geo.shard_len(0)).unwrap();
        assert!(is_direct(&w.file), "ext4 takes direct writes");
        for b in 0..geo.blocks() {
            w.append_block(&block(b)).unwrap();
        }
        w.finish(&header(size)).unwrap();
        drop(w);
        let len = std::fs::metadata(&path).unwrap().len();
        let last = geo.blocks() - 1;
        assert_eq!(len, geo.offset(last) + geo.shard_len(last) as u64 + 4);

        let file = open(&path).unwrap();
        assert!(is_direct(&file), "and direct reads");
        assert_eq!(ShardHeader::read(&file).unwrap(), header(size));
        let mut out = Vec::new();
        for b in 0..geo.blocks() {
            assert!(read_block(&file, &geo, b, &mut out), "block {b}");
            assert_eq!(out, block(b));
        }
        assert!(verify(&file, &geo, &[3; 16]));

        // One flipped byte fails that block's checksum, and only that block's.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[geo.offset(7) as usize + 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let file = open(&path).unwrap();
        assert!(!read_block(&file, &geo, 7, &mut out));
        assert!(read_block(&file, &geo, 8, &mut out));
        assert!(!verify(&file, &geo, &[3; 16]));
    }
}
