//! Bytes read as 64-bit words, for the searches that go eight bytes at a time (HL7
//! delimiters, JSON strings to escape): inside the sandbox a byte loop pays an interruption
//! check per byte, and a copy of unknown length is a call out to the host.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every zero byte of `x`, and no other bit (exact for each byte: the 7-bit
/// sums cannot carry into the next byte).
#[inline(always)]
pub(crate) fn zero_mask(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x) & HIGH
}

/// The 8 bytes of `b` from `at`, little-endian (byte `at` is the lowest).
#[inline(always)]
pub(crate) fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// `b` (shorter than 8 bytes) as a little-endian word, zero above, without a byte loop: two
/// overlapping windows of 4 or 2 bytes (the overlap holds the same bytes, so OR-ing them is
/// exact).
#[inline(always)]
pub(crate) fn short(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 4 {
        let (mut lo, mut hi) = ([0u8; 4], [0u8; 4]);
        lo.copy_from_slice(&b[..4]);
        hi.copy_from_slice(&b[n - 4..]);
        u64::from(u32::from_le_bytes(lo)) | u64::from(u32::from_le_bytes(hi)) << (8 * (n - 4))
    } else if n >= 2 {
        let (mut lo, mut hi) = ([0u8; 2], [0u8; 2]);
        lo.copy_from_slice(&b[..2]);
        hi.copy_from_slice(&b[n - 2..]);
        u64::from(u16::from_le_bytes(lo)) | u64::from(u16::from_le_bytes(hi)) << (8 * (n - 2))
    } else {
        b.first().map_or(0, |&x| u64::from(x))
    }
}

/// True when `hit` is true of some word of `b`: its 8-byte words, then its last 1 to 7 bytes
/// as one word with spaces in place of the missing bytes (so `hit` must be false of spaces).
#[inline]
pub(crate) fn any_word(b: &[u8], hit: impl Fn(u64) -> bool) -> bool {
    let whole = b.len() / 8 * 8;
    let tail = &b[whole..];
    (0..whole).step_by(8).any(|at| hit(word(b, at)))
        || !tail.is_empty()
            && hit(short(tail) | (u64::MAX << (8 * tail.len())) & (ONES * u64::from(b' ')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_is_the_bytes_little_endian() {
        let bytes = [0x11u8, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
        for n in 0..8 {
            let mut expected = [0u8; 8];
            expected[..n].copy_from_slice(&bytes[..n]);
            assert_eq!(
                short(&bytes[..n]),
                u64::from_le_bytes(expected),
                "{n} bytes"
            );
        }
        assert_eq!(word(&[0, 1, 2, 3, 4, 5, 6, 7, 8], 1), 0x0807_0605_0403_0201);
    }
}
