//! What uploads read and downloads write: sources and sinks at any offset, from several
//! threads, and the callbacks transfers report to.

use crate::crypto::Sealer;
use crate::error::Result;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Bytes to upload, readable at any offset from several threads (a local file; or an age
/// [`Sealer`] over a local file).
#[allow(
    clippy::len_without_is_empty,
    reason = "a size in bytes, not a collection: nothing asks whether a source is empty"
)]
pub trait Source: Send + Sync + 'static {
    fn len(&self) -> u64;
    /// Fills `buf` exactly with the bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// A local file as it is when opened: its length is fixed then.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file, len })
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// The age ciphertext of a local file, sealed deterministically: the same file and
/// [`FileSecrets`](crate::crypto::FileSecrets) give the same bytes, so a resumed upload
/// can check and continue the parts already sent.
pub struct SealedSource {
    plain: FileSource,
    sealer: Sealer,
}

impl SealedSource {
    /// `sealer` must have been made for `plain.len()` bytes.
    pub fn new(plain: FileSource, sealer: Sealer) -> SealedSource {
        SealedSource { plain, sealer }
    }
}

impl Source for SealedSource {
    fn len(&self) -> u64 {
        self.sealer.cipher_len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.sealer
            .read_cipher(offset, buf, &mut |at, plain| self.plain.read_at(at, plain))
    }
}

/// Where downloaded bytes go: positional writes from several threads.
pub trait Sink: Send + Sync + 'static {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// Called with byte increments as they complete (from any thread).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Consumes one piece of a fetched range: its start offset in the object and its bytes,
/// which it may change in place. Runs on a blocking thread, so it may decrypt or write
/// files; the pieces of one range come in order, one at a time.
pub type RangeConsumer = Arc<dyn Fn(u64, &mut [u8]) -> Result<()> + Send + Sync>;
