//! What uploads read and downloads write: sources and sinks at any offset, from several
//! threads, and the callbacks transfers report to.

use crate::crypto::Sealer;
use crate::download_file::STAGE;
use crate::error::Result;
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// Bytes to upload, readable at any offset from several threads (a local file, the mount's
/// cache copy of one, or an age [`Sealer`] over either).
#[allow(
    clippy::len_without_is_empty,
    reason = "a size in bytes, not a collection: nothing asks whether a source is empty"
)]
pub trait Source: Send + Sync + 'static {
    fn len(&self) -> u64;
    /// Fills `buf` exactly with the bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl<S: Source + ?Sized> Source for Arc<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_at(offset, buf)
    }
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

/// The age ciphertext of a source, sealed deterministically: the same bytes and
/// [`FileSecrets`](crate::crypto::FileSecrets) give the same ciphertext, so a resumed
/// upload can check and continue the parts already sent.
pub struct SealedSource {
    plain: Box<dyn Source>,
    sealer: Sealer,
}

impl SealedSource {
    /// `sealer` must have been made for `plain.len()` bytes.
    pub fn new(plain: impl Source, sealer: Sealer) -> SealedSource {
        SealedSource {
            plain: Box::new(plain),
            sealer,
        }
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

/// Where downloaded bytes go: positional writes from several threads (a local file, or
/// the mount's cache copy of one).
pub trait Sink: Send + Sync + 'static {
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Writes at `offset` the bytes `fill` puts at the start of the buffer it is lent
    /// ([`STAGE`] bytes) and counts, so that a producer (a decryption) needs no buffer of
    /// its own. By default the buffer is one per thread, handed to [`Sink::write_at`].
    fn write_with(
        &self,
        offset: u64,
        fill: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    ) -> Result<()> {
        thread_local! {
            static STAGED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        STAGED.with_borrow_mut(|stage| {
            stage.resize(STAGE, 0);
            let len = fill(stage)?;
            Ok(self.write_at(offset, &stage[..len])?)
        })
    }
}

/// Called with byte increments as they complete (from any thread).
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Consumes one piece of a fetched range: its start offset in the object and its bytes,
/// which it may change in place. Runs on a blocking thread, so it may decrypt or write
/// files; the pieces of one range come in order, one at a time.
pub type RangeConsumer = Arc<dyn Fn(u64, &mut [u8]) -> Result<()> + Send + Sync>;
