//! What the first bytes of a written object say about it: the Shannon entropy of a
//! sample (compressible data such as text, documents and raw images sits well below 8
//! bits per byte; encrypted or compressed data at it), and whether it is an age file,
//! as an encrypted vault's objects are.
//!
//! Vault objects are always incompressible, by design, so they are exempt from the
//! entropy test and counted apart: a burst of them is judged by its rate alone.

/// Bytes sampled from the start of a body: enough for an estimate that separates text
/// (≈ 4.5–5.5 bits per byte) from random data (≈ 7.8 from 1 KiB), cheap on every PUT.
pub const SAMPLE: usize = 1024;
/// Bits per byte at and above which a sample counts as incompressible.
pub const INCOMPRESSIBLE_BITS: f32 = 7.2;
/// How every age file starts (its header's version line).
const AGE_HEADER: &[u8] = b"age-encryption.org/v1\n";

/// What was seen of a body's first bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sample {
    /// An age file (an encrypted vault's object): exempt from the entropy test.
    Sealed,
    /// Plain data, with its entropy in bits per byte.
    Plain(f32),
}

impl Sample {
    /// The sample of a body that starts with `head` (`None` when it is empty).
    pub fn of(head: &[u8]) -> Option<Sample> {
        if head.is_empty() {
            return None;
        }
        if head.starts_with(AGE_HEADER) {
            return Some(Sample::Sealed);
        }
        Some(Sample::Plain(bits_per_byte(
            &head[..head.len().min(SAMPLE)],
        )))
    }

    pub fn incompressible(self) -> bool {
        matches!(self, Sample::Plain(bits) if bits >= INCOMPRESSIBLE_BITS)
    }
}

/// Shannon entropy of `bytes`, in bits per byte (0 to 8).
pub fn bits_per_byte(bytes: &[u8]) -> f32 {
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_compressible_random_bytes_are_not_and_age_files_are_exempt() {
        let text = "The quick brown fox jumps over the lazy dog, again and again. ".repeat(20);
        let t = Sample::of(text.as_bytes()).unwrap();
        assert!(!t.incompressible(), "{t:?}");
        // A fixed xorshift stream: random bytes without a test dependency.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let r = Sample::of(&random).unwrap();
        assert!(r.incompressible(), "{r:?}");
        let mut age = AGE_HEADER.to_vec();
        age.extend(&random[..200]);
        assert_eq!(Sample::of(&age), Some(Sample::Sealed));
        assert!(!Sample::Sealed.incompressible());
        assert_eq!(Sample::of(b""), None);
        assert_eq!(bits_per_byte(&[7; 100]), 0.0);
    }
}
