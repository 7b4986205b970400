//! The mount's local copies of files open for writing ([`crate::writeback`]), as a file
//! type that every access goes through: reads, writes, truncation, the download into a
//! copy and the upload from it.
//!
//! A plain vault's copy is the file itself, read and written directly. An encrypted
//! vault's copy holds only ciphertext: the plaintext is cut into blocks of [`BLOCK`]
//! bytes, each stored in a slot of its own as nonce, ciphertext and tag
//! (ChaCha20-Poly1305), under a key drawn at random when the mount starts
//! ([`CacheKey`]), which lives in its memory only and is never written anywhere. So
//! what the disk keeps of a copy after a crash (freed blocks included), and what anyone
//! who can open `/proc/PID/fd/N` reads, is ciphertext under a key that died with the
//! mount.
//!
//! - Nonces come from one counter per key: no two block writes of a mount share one,
//!   however often a block is rewritten, so no keystream is ever reused.
//! - Each block's associated data is its copy's id and its index: a block moved within
//!   a copy, or into another copy, fails its check, and so does any changed byte. A
//!   read that meets one answers an I/O error (EIO through the mount), never other bytes.
//! - The copy's length is kept in memory (its slots round it up), with which blocks were
//!   ever written: one bit per block. Blocks never written read as zeros (holes from an
//!   extending truncate or a write past the end), so an all-zero slot is never taken for
//!   a block.
//! - A write that covers part of a block reads, decrypts and re-seals the whole block;
//!   writes of whole blocks (sequential writes, downloads) are sealed outside the lock.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use vault::transfer::{Sink, Source};

/// Plaintext bytes per sealed block. 64 KiB, the age chunk size: the kernel's writes
/// (128 KiB, aligned, for sequential writers) and the download's pieces cover whole
/// blocks, so they are sealed without reading anything back, and the slots add 0.04 %
/// to the disk; the price is a small write inside a file, which re-seals its 64 KiB.
/// 4 KiB blocks were no faster: a 256 MiB `dd ... conv=fsync` into an encrypted vault's
/// mount, upload included, took 2.2–3.4 s with them and 2.4–3.0 s with these (2 shared
/// cores; unsealed copies: 1.9–2.6 s).
const BLOCK: u64 = 64 << 10;
const TAG: u64 = 16;
/// One block's slot on disk: nonce, ciphertext, tag.
const SLOT: u64 = NONCE_LEN as u64 + BLOCK + TAG;

/// The key of one mount's sealed copies.
pub(crate) struct CacheKey {
    key: LessSafeKey,
    /// The next block write's nonce.
    nonces: AtomicU64,
    /// The next copy's id.
    ids: AtomicU64,
}

impl CacheKey {
    /// A fresh random key, for one mount.
    pub(crate) fn random() -> io::Result<CacheKey> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| io::Error::other("no randomness for the cache key"))?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| io::Error::other("the cache key was refused"))?;
        // ring keeps its own copy; this one goes now.
        bytes.fill(0);
        Ok(CacheKey {
            key: LessSafeKey::new(key),
            nonces: AtomicU64::new(0),
            ids: AtomicU64::new(0),
        })
    }
}

/// One local copy. Shared between threads: reads, a download's writes at different
/// offsets, and the upload's reads may run at once.
pub(crate) struct CacheFile {
    file: File,
    seal: Option<Seal>,
}

struct Seal {
    key: Arc<CacheKey>,
    /// Bound into every block, so that blocks of other copies are refused.
    id: u64,
    /// Held shared while slots are read and exclusively while they are written, so a
    /// read never sees half a slot.
    state: RwLock<SealState>,
}

#[derive(Default)]
struct SealState {
    /// The copy's length in plaintext bytes.
    len: u64,
    /// Which blocks hold a sealed slot, a bit each.
    written: Vec<u64>,
}

impl SealState {
    fn is_written(&self, block: u64) -> bool {
        self.written
            .get((block / 64) as usize)
            .is_some_and(|w| w & (1 << (block % 64)) != 0)
    }

    fn mark(&mut self, blocks: std::ops::Range<u64>) {
        let words = blocks.end.div_ceil(64) as usize;
        if self.written.len() < words {
            self.written.resize(words, 0);
        }
        for b in blocks {
            self.written[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    /// Forgets every block from `from` on.
    fn forget_from(&mut self, from: u64) {
        self.written.truncate(from.div_ceil(64) as usize);
        if let Some(last) = self.written.last_mut().filter(|_| !from.is_multiple_of(64)) {
            *last &= (1 << (from % 64)) - 1;
        }
    }
}

impl CacheFile {
    /// `file` (empty, open for reading and writing) as a copy whose bytes are the file's.
    pub(crate) fn plain(file: File) -> CacheFile {
        CacheFile { file, seal: None }
    }

    /// `file` (empty, open for reading and writing) as a copy sealed under `key`.
    pub(crate) fn sealed(file: File, key: Arc<CacheKey>) -> CacheFile {
        let id = key.ids.fetch_add(1, Ordering::Relaxed);
        let state = RwLock::new(SealState::default());
        CacheFile {
            file,
            seal: Some(Seal { key, id, state }),
        }
    }

    /// The file on disk: its inode keeps the copy's mode and mtime.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The copy's length in plaintext bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        match &self.seal {
            Some(s) => Ok(s.read().len),
            None => Ok(self.file.metadata()?.len()),
        }
    }

    /// Reads at `offset` into `buf`; fewer bytes only at the end of the copy.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match &self.seal {
            Some(s) => s.read_at(&self.file, offset, buf),
            None => read_full(&self.file, offset, buf),
        }
    }

    /// Writes all of `data` at `offset`, extending the copy if it ends past it.
    pub(crate) fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        match &self.seal {
            Some(s) => s.write_at(&self.file, offset, data),
            None => self.file.write_all_at(data, offset),
        }
    }

    /// Truncates or extends the copy (an extension reads as zeros).
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        match &self.seal {
            Some(s) => s.set_len(&self.file, len),
            None => self.file.set_len(len),
        }
    }

    /// Names this copy's present content for an upload's resume journal: it changes with
    /// every write (the ctime) and truncation (the length).
    pub(crate) fn content_id(&self) -> io::Result<String> {
        let md = self.file.metadata()?;
        Ok(format!(
            "cache {} {}:{}:{} {} {}",
            std::process::id(),
            md.ino(),
            md.ctime(),
            md.ctime_nsec(),
            md.mtime_nsec(),
            self.len()?
        ))
    }

    /// The copy as it is now, to upload or keep: its length is fixed here, and the caller
    /// keeps writes away until it is done.
    pub(crate) fn snapshot(self: &Arc<Self>) -> io::Result<Snapshot> {
        Ok(Snapshot {
            len: self.len()?,
            file: self.clone(),
        })
    }
}

/// Downloads write into a copy.
impl Sink for CacheFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        CacheFile::write_at(self, offset, data)
    }
}

/// A copy of fixed length, read as an upload's source.
pub(crate) struct Snapshot {
    file: Arc<CacheFile>,
    len: u64,
}

impl Source for Snapshot {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let got = self.file.read_at(offset, buf)?;
        if got < buf.len() || offset + got as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the cache copy changed during its upload",
            ));
        }
        Ok(())
    }
}

/// Reads `buf` at `offset` until it is full or the file ends; the count read.
fn read_full(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn refused(block: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("block {block} of an encrypted cache copy failed its check: changed on disk"),
    )
}

impl Seal {
    fn read(&self) -> RwLockReadGuard<'_, SealState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, SealState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn aad(&self, block: u64) -> [u8; 16] {
        let mut aad = [0u8; 16];
        aad[..8].copy_from_slice(&self.id.to_le_bytes());
        aad[8..].copy_from_slice(&block.to_le_bytes());
        aad
    }

    /// Seals `plain` (at most one block, zero-padded) as block `block` into `slot`.
    fn seal(&self, block: u64, plain: &[u8], slot: &mut [u8]) {
        let n = self.key.nonces.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; NONCE_LEN];
        nonce[NONCE_LEN - 8..].copy_from_slice(&n.to_le_bytes());
        let (head, rest) = slot.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(BLOCK as usize);
        head.copy_from_slice(&nonce);
        body[..plain.len()].copy_from_slice(plain);
        body[plain.len()..].fill(0);
        let sealed = self
            .key
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.aad(block)),
                body,
            )
            .expect("a block is far below the ChaCha20-Poly1305 message limit");
        tag.copy_from_slice(sealed.as_ref());
    }

    /// Opens `slot`, block `block`, in place: its plaintext.
    fn open<'a>(&self, block: u64, slot: &'a mut [u8]) -> io::Result<&'a [u8]> {
        let (head, rest) = slot.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(head).map_err(|_| refused(block))?;
        let plain = self
            .key
            .key
            .open_in_place(nonce, Aad::from(self.aad(block)), rest)
            .map_err(|_| refused(block))?;
        Ok(plain)
    }

    /// The slots of `blocks` as on disk (zeros where the file ends first).
    fn read_slots(file: &File, blocks: std::ops::Range<u64>) -> io::Result<Vec<u8>> {
        let mut slots = vec![0u8; ((blocks.end - blocks.start) * SLOT) as usize];
        read_full(file, blocks.start * SLOT, &mut slots)?;
        Ok(slots)
    }

    fn read_at(&self, file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let (mut slots, written, n, blocks) = {
            let st = self.read();
            if offset >= st.len || buf.is_empty() {
                return Ok(0);
            }
            let n = (buf.len() as u64).min(st.len - offset);
            let blocks = offset / BLOCK..(offset + n).div_ceil(BLOCK);
            let written: Vec<bool> = blocks.clone().map(|b| st.is_written(b)).collect();
            (Self::read_slots(file, blocks.clone())?, written, n, blocks)
        };
        // Opened outside the lock: writers wait only for the disk read.
        for (i, (slot, written)) in slots.chunks_mut(SLOT as usize).zip(written).enumerate() {
            let block = blocks.start + i as u64;
            let start = (block * BLOCK).max(offset);
            let end = ((block + 1) * BLOCK).min(offset + n);
            let into = &mut buf[(start - offset) as usize..(end - offset) as usize];
            if !written {
                into.fill(0);
                continue;
            }
            let plain = self.open(block, slot)?;
            let from = (start - block * BLOCK) as usize;
            into.copy_from_slice(&plain[from..from + into.len()]);
        }
        Ok(n as usize)
    }

    fn write_at(&self, file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        let blocks = offset / BLOCK..end.div_ceil(BLOCK);
        let mut slots = vec![0u8; ((blocks.end - blocks.start) * SLOT) as usize];
        // Blocks the write covers whole are sealed before the lock is taken; the one or
        // two it covers in part are re-sealed under it, from what they hold.
        let whole = |b: u64| offset <= b * BLOCK && (b + 1) * BLOCK <= end;
        let slot_of = |b: u64| {
            let at = ((b - blocks.start) * SLOT) as usize;
            at..at + SLOT as usize
        };
        for b in blocks.clone().filter(|&b| whole(b)) {
            let from = (b * BLOCK - offset) as usize;
            self.seal(
                b,
                &data[from..from + BLOCK as usize],
                &mut slots[slot_of(b)],
            );
        }
        let mut st = self.write();
        let mut ends = vec![blocks.start];
        if blocks.end - 1 != blocks.start {
            ends.push(blocks.end - 1);
        }
        for b in ends.into_iter().filter(|&b| !whole(b)) {
            let mut plain = vec![0u8; BLOCK as usize];
            if st.is_written(b) {
                let mut old = Self::read_slots(file, b..b + 1)?;
                plain.copy_from_slice(self.open(b, &mut old)?);
            }
            let start = (b * BLOCK).max(offset);
            let stop = ((b + 1) * BLOCK).min(end);
            plain[(start - b * BLOCK) as usize..(stop - b * BLOCK) as usize]
                .copy_from_slice(&data[(start - offset) as usize..(stop - offset) as usize]);
            self.seal(b, &plain, &mut slots[slot_of(b)]);
        }
        file.write_all_at(&slots, blocks.start * SLOT)?;
        st.mark(blocks);
        st.len = st.len.max(end);
        Ok(())
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        let mut st = self.write();
        let keep = len.div_ceil(BLOCK);
        let last = len / BLOCK;
        if len < st.len && !len.is_multiple_of(BLOCK) && st.is_written(last) {
            // What was past the new end must read as zeros if the copy grows again.
            let mut slot = Self::read_slots(file, last..last + 1)?;
            let mut plain = self.open(last, &mut slot)?.to_vec();
            plain[(len % BLOCK) as usize..].fill(0);
            self.seal(last, &plain, &mut slot);
            file.write_all_at(&slot, last * SLOT)?;
        }
        // Also when growing: the file's mtime changes as a plain copy's would.
        file.set_len(keep * SLOT)?;
        st.forget_from(keep);
        st.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies() -> (tempfile::TempDir, CacheFile, CacheFile) {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(name))
                .unwrap()
        };
        let key = Arc::new(CacheKey::random().unwrap());
        let (a, b) = (open("a"), open("b"));
        (
            dir,
            CacheFile::sealed(a, key.clone()),
            CacheFile::sealed(b, key),
        )
    }

    fn read_all(f: &CacheFile) -> Vec<u8> {
        let mut buf = vec![0u8; f.len().unwrap() as usize + 10];
        let n = f.read_at(0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn on_disk(f: &CacheFile) -> Vec<u8> {
        let mut v = vec![0u8; f.file().metadata().unwrap().len() as usize];
        f.file().read_exact_at(&mut v, 0).unwrap();
        v
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn writes_read_back_across_blocks_and_in_part() {
        let (_dir, f, _) = copies();
        let mut model = vec![0u8; 0];
        let apply = |model: &mut Vec<u8>, at: usize, data: &[u8]| {
            f.write_at(at as u64, data).unwrap();
            if model.len() < at + data.len() {
                model.resize(at + data.len(), 0);
            }
            model[at..at + data.len()].copy_from_slice(data);
            assert!(read_all(&f) == *model);
        };
        let b = BLOCK as usize;
        apply(&mut model, 0, &pattern(3 * b + 100, 1)); // whole blocks and a tail
        apply(&mut model, b - 10, &pattern(20, 2)); // across a boundary, in part
        apply(&mut model, 5, &pattern(1, 3)); // one byte
        apply(&mut model, 5 * b + 7, &pattern(b, 4)); // past the end: a hole between
        apply(&mut model, 2 * b, &pattern(b, 5)); // exactly one block
                                                  // Reads at any offset and length.
        for (at, len) in [
            (0, 1),
            (b - 1, 2),
            (b + 3, 2 * b),
            (6 * b, 100),
            (7 * b, 10),
        ] {
            let mut buf = vec![0xaa; len];
            let n = f.read_at(at as u64, &mut buf).unwrap();
            let want = &model[at.min(model.len())..(at + len).min(model.len())];
            assert_eq!(&buf[..n], want, "read of {len} at {at}");
        }
    }

    #[test]
    fn truncation_drops_the_tail_and_extension_reads_zeros() {
        let (_dir, f, _) = copies();
        let b = BLOCK as usize;
        let data = pattern(3 * b, 9);
        f.write_at(0, &data).unwrap();
        f.set_len(b as u64 + 10).unwrap();
        assert!(read_all(&f) == data[..b + 10]);
        f.set_len(3 * b as u64).unwrap();
        let mut want = data[..b + 10].to_vec();
        want.resize(3 * b, 0);
        assert!(read_all(&f) == want);
        f.write_at(3 * b as u64 + 5, b"x").unwrap();
        want.resize(3 * b + 5, 0);
        want.push(b'x');
        assert!(read_all(&f) == want);
        f.set_len(0).unwrap();
        assert_eq!(f.len().unwrap(), 0);
        assert_eq!(on_disk(&f).len(), 0);
        f.set_len(10).unwrap();
        assert_eq!(read_all(&f), vec![0; 10]);
    }

    #[test]
    fn the_disk_holds_no_plaintext() {
        let (_dir, f, _) = copies();
        let secret = b"the distinctive plaintext of an encrypted vault's file. ".repeat(5000);
        f.write_at(0, &secret).unwrap();
        // A write in part of a block, re-sealed in place.
        f.write_at(100, &secret[100..140]).unwrap();
        let disk = on_disk(&f);
        assert!(disk.len() >= secret.len());
        assert!(!disk.windows(9).any(|w| w == b"plaintext"));
        assert!(read_all(&f) == secret);
    }

    #[test]
    fn a_changed_or_moved_block_is_refused() {
        let (_dir, f, g) = copies();
        let b = BLOCK as usize;
        f.write_at(0, &pattern(2 * b, 1)).unwrap();
        g.write_at(0, &pattern(2 * b, 2)).unwrap();
        let mut buf = vec![0u8; 10];
        // One bit flipped in block 1's ciphertext.
        let mut slot = vec![0u8; SLOT as usize];
        f.file().read_exact_at(&mut slot, SLOT).unwrap();
        slot[NONCE_LEN + 100] ^= 1;
        f.file().write_all_at(&slot, SLOT).unwrap();
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 10);
        let e = f.read_at(BLOCK + 5, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // A write in part of the block cannot re-seal what it cannot open.
        assert!(f.write_at(BLOCK + 1, b"y").is_err());
        // Block 0 of f in place of block 1 of f; block 0 of g in place of block 0 of f.
        let mut zero = vec![0u8; SLOT as usize];
        f.file().read_exact_at(&mut zero, 0).unwrap();
        f.file().write_all_at(&zero, SLOT).unwrap();
        assert!(f.read_at(BLOCK, &mut buf).is_err());
        g.file().read_exact_at(&mut zero, 0).unwrap();
        f.file().write_all_at(&zero, 0).unwrap();
        assert!(f.read_at(0, &mut buf).is_err());
        // Zeroed, as a hole would be.
        f.file().write_all_at(&vec![0u8; SLOT as usize], 0).unwrap();
        assert!(f.read_at(0, &mut buf).is_err());
    }

    #[test]
    fn a_rewritten_block_gets_a_fresh_nonce() {
        let (_dir, f, _) = copies();
        f.write_at(0, &[7u8; 100]).unwrap();
        let first = on_disk(&f);
        f.write_at(0, &[7u8; 100]).unwrap();
        let second = on_disk(&f);
        assert_ne!(first[..NONCE_LEN], second[..NONCE_LEN]);
        assert_ne!(first[NONCE_LEN..], second[NONCE_LEN..]);
    }

    #[test]
    fn a_snapshot_is_a_source_of_its_length() {
        let (_dir, f, _) = copies();
        let f = Arc::new(f);
        f.write_at(0, &pattern(BLOCK as usize + 3, 4)).unwrap();
        let s = f.snapshot().unwrap();
        assert_eq!(Source::len(&s), BLOCK + 3);
        let mut buf = vec![0u8; 5];
        Source::read_at(&s, BLOCK - 2, &mut buf).unwrap();
        assert_eq!(buf, pattern(BLOCK as usize + 3, 4)[BLOCK as usize - 2..]);
        assert!(Source::read_at(&s, BLOCK, &mut buf).is_err());
    }
}
