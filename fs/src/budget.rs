//! The budget of the write-back cache, the bound on the mount's local copies (files open
//! for writing): `--cache-size` caps their total, and whatever the cap, they never take
//! the cache disk's last free space.
//! A write past either answers ENOSPC, as a full disk would; what was written before
//! stays and is uploaded on close. A file larger than S3 can store ([`MAX_FILE_SIZE`])
//! is EFBIG, as a file past a filesystem's own limit is.

use crate::sealed::CacheFile;
use fuser::Errno;
use std::path::PathBuf;
use std::sync::Mutex;

/// The largest file the mount writes: S3's largest object, 5 TiB.
pub(crate) const MAX_FILE_SIZE: u64 = 5 << 40;

/// EFBIG for a file that would end past [`MAX_FILE_SIZE`].
fn within_max(end: Option<u64>) -> Result<u64, Errno> {
    end.filter(|e| *e <= MAX_FILE_SIZE).ok_or(Errno::EFBIG)
}

/// Free space left on the cache's disk: 5 % of it, at most 1 GiB.
fn disk_reserve(total: u64) -> u64 {
    (total / 20).min(1 << 30)
}

pub(crate) struct Budget {
    dir: PathBuf,
    max: Option<u64>,
    used: Mutex<u64>,
}

impl Budget {
    pub(crate) fn new(dir: PathBuf, max: Option<u64>) -> Budget {
        Budget {
            dir,
            max,
            used: Mutex::new(0),
        }
    }

    #[cfg(test)]
    fn used(&self) -> u64 {
        *crate::lock(&self.used)
    }

    /// Takes `n` more bytes, or ENOSPC.
    pub(crate) fn reserve(&self, n: u64) -> Result<(), Errno> {
        if n == 0 {
            return Ok(());
        }
        let mut used = crate::lock(&self.used);
        if self.max.is_some_and(|max| *used + n > max) {
            tracing::info!("write refused: the mount's cache would exceed --cache-size");
            return Err(Errno::ENOSPC);
        }
        if let Some((avail, total)) = self.disk_space() {
            if avail < n + disk_reserve(total) {
                tracing::warn!(
                    "write refused: the cache disk ({}) is nearly full",
                    self.dir.display()
                );
                return Err(Errno::ENOSPC);
            }
        }
        *used += n;
        Ok(())
    }

    pub(crate) fn release(&self, n: u64) {
        let mut used = crate::lock(&self.used);
        *used = used.saturating_sub(n);
    }

    /// Writes `data` at `offset` of a local copy, taking what it grows the file by (in
    /// plaintext bytes: a sealed copy's slots take 0.04 % more).
    pub(crate) fn write_at(&self, file: &CacheFile, data: &[u8], offset: u64) -> Result<(), Errno> {
        let end = within_max(offset.checked_add(data.len() as u64))?;
        let len = file_len(file)?;
        let growth = end.saturating_sub(len);
        self.reserve(growth)?;
        file.write_at(offset, data).map_err(|e| {
            let grown = file_len(file).unwrap_or(len).saturating_sub(len);
            self.release(growth - grown.min(growth));
            crate::errno::io_errno("write cache file", &e)
        })
    }

    /// Truncates or extends a local copy (holes take no room but are counted: the
    /// bound is on what the file may hold once written).
    pub(crate) fn set_len(&self, file: &CacheFile, new: u64) -> Result<(), Errno> {
        within_max(Some(new))?;
        let len = file_len(file)?;
        if new > len {
            self.reserve(new - len)?;
        }
        file.set_len(new).map_err(|e| {
            if new > len {
                self.release(new - len);
            }
            crate::errno::io_errno("truncate", &e)
        })?;
        if new < len {
            self.release(len - new);
        }
        Ok(())
    }

    fn disk_space(&self) -> Option<(u64, u64)> {
        let path = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).ok()?;
        // SAFETY: `statvfs` is plain old data, for which all-zero bytes are a valid value.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a NUL-terminated string and `s` a valid, writable `statvfs`,
        // both alive for the call.
        if unsafe { libc::statvfs(path.as_ptr(), &mut s) } != 0 {
            return None;
        }
        let block = s.f_frsize as u64;
        Some((s.f_bavail as u64 * block, s.f_blocks as u64 * block))
    }
}

fn file_len(file: &CacheFile) -> Result<u64, Errno> {
    file.len()
        .map_err(|e| crate::errno::io_errno("stat cache file", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_growth_and_frees_on_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::new(dir.path().into(), Some(1000));
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        let f = CacheFile::plain(f);
        b.write_at(&f, &[1; 600], 0).unwrap();
        b.write_at(&f, &[2; 100], 100).unwrap(); // overwrite: no growth
        assert_eq!(b.used(), 600);
        assert_eq!(b.write_at(&f, &[3; 500], 600), Err(Errno::ENOSPC));
        assert_eq!(file_len(&f).unwrap(), 600);
        b.set_len(&f, 100).unwrap();
        assert_eq!(b.used(), 100);
        b.write_at(&f, &[4; 900], 100).unwrap();
        assert_eq!(b.used(), 1000);
        assert_eq!(b.set_len(&f, 1001), Err(Errno::ENOSPC));
        assert_eq!(b.set_len(&f, MAX_FILE_SIZE + 1), Err(Errno::EFBIG));
        assert_eq!(b.write_at(&f, &[5], MAX_FILE_SIZE), Err(Errno::EFBIG));
        assert_eq!(b.write_at(&f, &[5], u64::MAX), Err(Errno::EFBIG));
        assert_eq!(b.used(), 1000, "nothing taken by refused writes");
    }

    #[test]
    fn the_disk_keeps_its_reserve() {
        assert_eq!(disk_reserve(10 << 30), 512 << 20);
        assert_eq!(disk_reserve(100 << 30), 1 << 30);
    }
}
