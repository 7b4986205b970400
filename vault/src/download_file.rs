//! The local file a download writes: whole aligned blocks go to the disk with `O_DIRECT`,
//! the rest (a file's unaligned tail, small files) through the page cache.
//!
//! A download is fsynced before it is renamed into place, so its bytes go to the disk
//! before it completes either way. Through the page cache they are first copied into
//! freshly allocated pages, which was two thirds of a large download's client CPU, more
//! than the decryption, the network and the disk together (measured in `bench sync`:
//! `dd` here writes 1 GiB with `oflag=direct` in 0.7–0.9 s, buffered plus fsync in
//! 2.5–3.2 s). Written around the page cache, a download costs a copy into a small buffer
//! that stays in the CPU cache, and it no longer evicts what the user had cached.
//!
//! A file of a MiB or more is preallocated to its final size: writes are then overwrites, which ext4
//! and XFS run in parallel within one file, and a full disk fails the download at its
//! start instead of its end.

use crate::transfer::Sink;
use aligned::{Aligned, ALIGN};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Files smaller than this are written through the page cache only: a direct write is
/// synchronous, and for a few blocks that costs more than it saves.
const DIRECT_MIN: u64 = 1 << 20;
/// Files smaller than this are not preallocated: they come in one write (the first
/// response of a download), so there are no writes to run in parallel and nothing to
/// fail earlier, and the fallocate would be one more system call per small file.
const PREALLOCATE_MIN: u64 = 1 << 20;
/// Bytes staged per direct write: small enough to stay in the CPU cache between the copy
/// into it and the disk's read from it.
pub const STAGE: usize = 1 << 20;

pub struct DownloadFile {
    file: File,
    /// The same file opened with `O_DIRECT`, while the filesystem takes direct writes.
    direct: Option<File>,
    /// Set when a direct write is refused (`EINVAL`: a filesystem or device with stricter
    /// rules); the rest of the download goes through the page cache.
    refused: AtomicBool,
}

impl DownloadFile {
    /// Creates (or truncates) `path` for a download of `size` bytes, 0600 until the
    /// download sets the file's own mode: a decrypted file is nobody else's to read
    /// while it is written.
    pub fn create(path: &Path, size: u64) -> io::Result<DownloadFile> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        if size >= PREALLOCATE_MIN {
            preallocate(&file, size)?;
        }
        let direct = (size >= DIRECT_MIN)
            .then(|| {
                OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_DIRECT)
                    .open(path)
            })
            // tmpfs before Linux 6.6 and some FUSE filesystems refuse O_DIRECT.
            .and_then(Result::ok);
        Ok(DownloadFile {
            file,
            direct,
            refused: AtomicBool::new(false),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes at `offset` the bytes `fill` puts at the start of the buffer it is lent
    /// ([`STAGE`] bytes) and counts: a producer (a decryption) writes straight into the
    /// buffer the disk reads, while it is in the CPU cache.
    pub fn write_staged<E: From<io::Error>>(
        &self,
        offset: u64,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<(), E> {
        STAGED.with_borrow_mut(|stage| {
            let stage = &mut stage.get_or_insert_with(|| Aligned::new(STAGE))[..];
            let len = fill(stage)?;
            Ok(self.put(offset, &stage[..len])?)
        })
    }

    /// Writes `data`, which starts at an aligned address: its whole blocks direct when
    /// `offset` is aligned too, its tail through the page cache. The two never share a
    /// block, so neither write can overwrite the other's bytes.
    fn put(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let direct = self.direct.as_ref().filter(|_| {
            offset.is_multiple_of(ALIGN as u64) && !self.refused.load(Ordering::Relaxed)
        });
        let Some(direct) = direct else {
            return self.file.write_all_at(data, offset);
        };
        let (blocks, tail) = data.split_at(data.len() / ALIGN * ALIGN);
        match direct.write_all_at(blocks, offset) {
            Ok(()) => {}
            // Stricter rules than these (a filesystem or device of its own): the rest of
            // the download goes through the page cache.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.refused.store(true, Ordering::Relaxed);
                self.file.write_all_at(blocks, offset)?;
            }
            Err(e) => return Err(e),
        }
        self.file.write_all_at(tail, offset + blocks.len() as u64)
    }
}

impl Sink for DownloadFile {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.direct.is_none() {
            return self.file.write_all_at(data, offset);
        }
        // Up to the first aligned offset through the page cache, then staged pieces.
        let head = ((offset.next_multiple_of(ALIGN as u64) - offset) as usize).min(data.len());
        self.file.write_all_at(&data[..head], offset)?;
        let mut at = offset + head as u64;
        for piece in data[head..].chunks(STAGE) {
            self.write_staged(at, |stage| {
                stage[..piece.len()].copy_from_slice(piece);
                Ok::<_, io::Error>(piece.len())
            })?;
            at += piece.len() as u64;
        }
        Ok(())
    }

    fn write_with(
        &self,
        offset: u64,
        fill: &mut dyn FnMut(&mut [u8]) -> crate::Result<usize>,
    ) -> crate::Result<()> {
        self.write_staged(offset, fill)
    }
}

/// Reserves `size` bytes of disk for `file`, which then has that length. A filesystem
/// without `fallocate` gets a sparse file of that length.
fn preallocate(file: &File, size: u64) -> io::Result<()> {
    let Ok(len) = libc::off_t::try_from(size) else {
        return Err(io::Error::from_raw_os_error(libc::EFBIG));
    };
    if size == 0 {
        return Ok(());
    }
    // SAFETY: fallocate on a descriptor we own, no memory passed.
    match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => file.set_len(size),
            e => Err(e),
        },
    }
}

thread_local! {
    /// A [`STAGE`]-byte buffer aligned to [`ALIGN`], one per thread: blocking threads are
    /// reused, so it is allocated (and its pages faulted in) once, not per write.
    static STAGED: RefCell<Option<Aligned>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes at every alignment, out of order, land exactly where asked, whether the
    /// filesystem under the temporary directory takes direct writes or not.
    #[test]
    fn unaligned_and_aligned_writes_make_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let size = 3 * STAGE + 5 * ALIGN + 123;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4093) as u8).collect();
        let f = DownloadFile::create(&path, size as u64).unwrap();
        let cuts = [0, 1000, ALIGN, 2 * STAGE + 17, 2 * STAGE + ALIGN, size];
        for w in cuts.windows(2).rev() {
            f.write_at(w[0] as u64, &data[w[0]..w[1]]).unwrap();
        }
        f.file().sync_all().unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn a_small_file_is_written_through_the_page_cache_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = DownloadFile::create(&path, 10).unwrap();
        assert!(f.direct.is_none());
        f.write_at(0, b"0123456789").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        let empty = DownloadFile::create(&dir.path().join("e"), 0).unwrap();
        assert_eq!(empty.file().metadata().unwrap().len(), 0);
    }
}
