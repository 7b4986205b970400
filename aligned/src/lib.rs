//! A zeroed heap buffer of whole pages, aligned to a page: what direct I/O (`O_DIRECT`)
//! needs of the memory it moves. The engine stages shards in it and the vault stages
//! downloads in it; both depend on this crate so that neither depends on the other.

use std::ops::{Deref, DerefMut};

/// Alignment of direct I/O offsets, lengths and buffers: the page size, which covers
/// every logical block size in use (512 B and 4 KiB).
pub const ALIGN: usize = 4096;

/// At least the asked number of bytes, in whole pages, zeroed, starting on a page.
pub struct Aligned(Vec<Page>);

#[derive(Clone)]
#[repr(C, align(4096))]
struct Page([u8; ALIGN]);

impl Aligned {
    /// At least `len` bytes (one page at least): `len` rounded up to whole pages.
    pub fn new(len: usize) -> Aligned {
        Aligned(vec![Page([0; ALIGN]); len.div_ceil(ALIGN).max(1)])
    }
}

impl Deref for Aligned {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `Page` is `ALIGN` plain bytes with alignment `ALIGN`, so it has no
        // padding and the vector's pages are `len * ALIGN` contiguous initialized bytes,
        // borrowed here for as long as `self` is.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * ALIGN) }
    }
}

impl DerefMut for Aligned {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: the same bytes as in `deref`, borrowed mutably through `&mut self`, so
        // no other reference to them exists meanwhile.
        unsafe {
            std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len() * ALIGN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_zeroed_pages_on_a_page() {
        let mut buf = Aligned::new(5000);
        assert_eq!(buf.len(), 2 * ALIGN);
        assert_eq!(buf.as_ptr() as usize % ALIGN, 0);
        assert!(buf.iter().all(|&b| b == 0));
        buf[8191] = 7;
        assert_eq!(buf[8191], 7);
        assert_eq!(Aligned::new(0).len(), ALIGN);
        assert_eq!(Aligned::new(ALIGN).len(), ALIGN);
    }
}
