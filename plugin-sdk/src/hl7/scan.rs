//! Delimiter searches eight bytes at a time.
//!
//! Splitting HL7 text is a search for one delimiter byte (components, repetitions, escapes),
//! and indexing a message a pass over it for three (field separator and line ends). Inside the sandbox a byte
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

/// Pushes onto `seps` the index of every `fs` byte of the line that starts at `from`, and
/// returns where the line ends: the index of its CR or LF, else `hay.len()`.
///
/// The segment index of a message in one pass: each word is read once, and the separators in
/// it are taken from its match mask bit by bit — no search restarted per field (a message has
/// about six times as many fields as words of eight bytes are needed to hold them).
pub(crate) fn line_seps(hay: &[u8], from: usize, fs: u8, seps: &mut Vec<u32>) -> usize {
    let (f, cr, lf) = (
        ONES * u64::from(fs),
        ONES * u64::from(b'\r'),
        ONES * u64::from(b'\n'),
    );
    let len = hay.len();
    let mut at = from;
    while at < len {
        // The word whose first byte is `at`; past the end of `hay`, bytes are masked out.
        let (w, valid) = if at + 8 <= len {
            (word(hay, at), u64::MAX)
        } else {
            tail_word(hay, at)
        };
        let ends = (zero_mask(w ^ cr) | zero_mask(w ^ lf)) & valid;
        let mut found = zero_mask(w ^ f) & valid;
        if ends != 0 {
            // Only the separators before the line end: the bits below its byte's high bit.
            let end = ends.trailing_zeros();
            found &= (1u64 << end) - 1;
            push_bits(seps, at, found);
            return at + (end / 8) as usize;
        }
        push_bits(seps, at, found);
        at += 8;
    }
    len
}

/// Pushes `at` + the byte index of each high bit set in `mask`, lowest first.
#[inline(always)]
fn push_bits(seps: &mut Vec<u32>, at: usize, mut mask: u64) {
    while mask != 0 {
        seps.push((at + (mask.trailing_zeros() / 8) as usize) as u32);
        mask &= mask - 1;
    }
}

/// The last 1 to 7 bytes of `hay` from `at`, without a byte loop: a word whose first byte is
/// `at` (zero above the end), and the mask of its valid bytes.
#[inline(always)]
fn tail_word(hay: &[u8], at: usize) -> (u64, u64) {
    let (len, left) = (hay.len(), hay.len() - at);
    let w = if len >= 8 {
        word(hay, len - 8) >> (8 * (8 - left))
    } else {
        short(hay) >> (8 * at)
    };
    (w, u64::MAX >> (8 * (8 - left)))
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
    let (w, valid) = tail_word(hay, at);
    let m = matches(w) & valid;
    (m != 0).then(|| at + (m.trailing_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(hay: &[u8], from: usize, set: [u8; 3]) -> Option<usize> {
        (from..hay.len()).find(|&i| set.contains(&hay[i]))
    }

    fn find(hay: &[u8], from: usize, b: u8) -> Option<usize> {
        find_byte(hay, from, b)
    }

    fn find_naive(hay: &[u8], from: usize, b: u8) -> Option<usize> {
        naive(hay, from, [b; 3])
    }

    #[test]
    fn every_length_position_and_start() {
        for len in 0..40 {
            for at in 0..len {
                for b in [b'|', b'\r', b'\n', 0u8, 0xff, 0x7f, 0x80] {
                    let mut hay = vec![b'x'; len];
                    hay[at] = b;
                    for from in 0..=len {
                        for x in [b'|', b, 0] {
                            assert_eq!(
                                find(&hay, from, x),
                                find_naive(&hay, from, x),
                                "len {len} at {at} byte {b} from {from} searched {x}"
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
            assert_eq!(find(&hay, 0, b), Some(b as usize), "{b}");
        }
        let hay = [0x7du8, 0x7c, 0x7c, 0x01, 0x00, 0x01];
        assert_eq!(find(&hay, 0, 0), Some(4));
        assert_eq!(find(&hay, 2, 0x7c), Some(2));
        assert_eq!(find(&hay, 3, 0x7c), None);
    }

    /// `line_seps` as the index used it before: `find_any` for the next separator or line end.
    fn line_seps_naive(hay: &[u8], from: usize, fs: u8) -> (Vec<u32>, usize) {
        let mut seps = Vec::new();
        let mut at = from;
        loop {
            match naive(hay, at, [b'\r', b'\n', fs]) {
                Some(i) if hay[i] != b'\r' && hay[i] != b'\n' => {
                    seps.push(i as u32);
                    at = i + 1;
                }
                Some(i) => return (seps, i),
                None => return (seps, hay.len()),
            }
        }
    }

    fn line_seps_of(hay: &[u8], from: usize, fs: u8) -> (Vec<u32>, usize) {
        let mut seps = vec![7];
        let end = line_seps(hay, from, fs, &mut seps);
        assert_eq!(seps.remove(0), 7, "what was in the vector stays");
        (seps, end)
    }

    #[test]
    fn line_seps_every_length_and_start() {
        for len in 0..40 {
            for end_at in 0..=len {
                // Separators everywhere, a line end at `end_at` (none when it is `len`).
                let mut hay: Vec<u8> = (0..len)
                    .map(|i| if i % 3 == 0 { b'|' } else { b'x' })
                    .collect();
                if end_at < len {
                    hay[end_at] = if end_at % 2 == 0 { b'\r' } else { b'\n' };
                }
                for from in 0..=len {
                    for fs in [b'|', b'x', b'\r', 0] {
                        assert_eq!(
                            line_seps_of(&hay, from, fs),
                            line_seps_naive(&hay, from, fs),
                            "len {len} end {end_at} from {from} fs {fs}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn line_seps_agrees_with_find_any(
            hay in proptest::collection::vec(
                prop_oneof![Just(b'|'), Just(b'\r'), Just(b'\n'), Just(b'^'), any::<u8>()],
                0..80,
            ),
            from in 0usize..85,
            fs in prop_oneof![Just(b'|'), any::<u8>()],
        ) {
            let from = from.min(hay.len());
            prop_assert_eq!(line_seps_of(&hay, from, fs), line_seps_naive(&hay, from, fs));
        }

        #[test]
        fn agrees_with_a_byte_loop(
            hay in proptest::collection::vec(any::<u8>(), 0..64),
            from in 0usize..70,
            b in any::<u8>(),
        ) {
            let from = from.min(hay.len());
            prop_assert_eq!(find(&hay, from, b), find_naive(&hay, from, b));
        }
    }
}
