//! Delimiter searches eight bytes at a time.
//!
//! Splitting HL7 text is a search for one delimiter byte (components, repetitions, escapes) or
//! three (field separator and line ends, when indexing a message). Inside the sandbox a byte
//! loop costs ≈ 25 instructions per byte (each iteration also checks for interruption) and
//! `str::find`'s searcher is slow to set up on these short strings; these searches read a
//! 64-bit word per step, short tails included, and find the matching bytes with exact
//! per-byte masks. Parsing and splitting went from ≈ 110 k to ≈ 80 k instructions per 5-OBX
//! message in the sandbox (docs/benchmarks.md §9).

use crate::words::{ONES, short, word, zero_mask};

/// Index (in `hay`) of the first byte at or after `from` equal to `b`.
///
/// Inlined: it runs ≈ 360 times per 5-OBX message, and inside the sandbox each call costs a
/// frame and an interruption check.
#[inline(always)]
pub(crate) fn find_byte(hay: &[u8], from: usize, b: u8) -> Option<usize> {
    let pattern = ONES * u64::from(b);
    find_by(hay, from, |w| zero_mask(w ^ pattern))
}

/// Index (in `hay`) of the first byte at or after `from` equal to one of `set`.
pub(crate) fn find_any(hay: &[u8], from: usize, set: [u8; 3]) -> Option<usize> {
    let [a, b, c] = set.map(|b| ONES * u64::from(b));
    find_by(hay, from, |w| {
        zero_mask(w ^ a) | zero_mask(w ^ b) | zero_mask(w ^ c)
    })
}

/// The search itself; `matches` gives the high bit of each matching byte of a word.
#[inline(always)]
fn find_by(hay: &[u8], from: usize, matches: impl Fn(u64) -> u64) -> Option<usize> {
    let len = hay.len();
    let mut at = from;
    while at + 8 <= len {
        let m = matches(word(hay, at));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if at >= len {
        return None;
    }
    // The last 1 to 7 bytes, without a byte loop: a word whose first byte is `at`, the bytes
    // past the end masked out.
    let left = len - at;
    let w = if len >= 8 {
        word(hay, len - 8) >> (8 * (8 - left))
    } else {
        short(hay) >> (8 * at)
    };
    let m = matches(w) & (u64::MAX >> (8 * (8 - left)));
    (m != 0).then(|| at + (m.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(hay: &[u8], from: usize, set: [u8; 3]) -> Option<usize> {
        (from..hay.len()).find(|&i| set.contains(&hay[i]))
    }

    /// Both searches, checked against each other: `find_byte` is `find_any` of one byte.
    fn find(hay: &[u8], from: usize, set: [u8; 3]) -> Option<usize> {
        let any = find_any(hay, from, set);
        if set[0] == set[1] && set[1] == set[2] {
            assert_eq!(find_byte(hay, from, set[0]), any);
        }
        any
    }

    #[test]
    fn every_length_position_and_start() {
        for len in 0..40 {
            for at in 0..len {
                for b in [b'|', b'\r', b'\n', 0u8, 0xff, 0x7f, 0x80] {
                    let mut hay = vec![b'x'; len];
                    hay[at] = b;
                    for from in 0..=len {
                        for set in [[b'|', b'\r', b'\n'], [b, b, b], [0, 0, 0]] {
                            assert_eq!(
                                find(&hay, from, set),
                                naive(&hay, from, set),
                                "len {len} at {at} byte {b} from {from} set {set:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_next_to_the_delimiter_do_not_match() {
        // Values one apart from a delimiter (the classic false positive of the cheaper test).
        let hay: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            assert_eq!(find(&hay, 0, [b, b, b]), Some(b as usize), "{b}");
        }
        let hay = [0x7du8, 0x7c, 0x7c, 0x01, 0x00, 0x01];
        assert_eq!(find(&hay, 0, [0, 0, 0]), Some(4));
        assert_eq!(find(&hay, 2, [0x7c; 3]), Some(2));
        assert_eq!(find(&hay, 3, [0x7c; 3]), None);
    }

    proptest! {
        #[test]
        fn agrees_with_a_byte_loop(
            hay in proptest::collection::vec(any::<u8>(), 0..64),
            from in 0usize..70,
            set in any::<[u8; 3]>(),
        ) {
            let from = from.min(hay.len());
            prop_assert_eq!(find(&hay, from, set), naive(&hay, from, set));
        }
    }
}
