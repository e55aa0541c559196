//! Property tests of the HL7 v2 escapes beyond `tests/hl7.rs`: any Unicode text with any valid
//! delimiter set, through a real parsed message, and `\X…\` hex sequences split anywhere.

use passerelle_plugin_sdk::hl7::escape::{escape, unescape};
use passerelle_plugin_sdk::hl7::{Delimiters, Message};
use proptest::prelude::*;

/// A valid delimiter set as a parser accepts it: distinct symbols, optional escape /
/// subcomponent / truncation characters (each present only when the one before it is).
fn delimiters() -> impl Strategy<Value = Delimiters> {
    let symbols: Vec<char> = "|^~\\&#$%*@!+=:;?/{}".chars().collect();
    (Just(symbols).prop_shuffle(), 0usize..=3).prop_map(|(s, optional)| Delimiters {
        field: s[0],
        component: s[1],
        repetition: s[2],
        escape: (optional >= 1).then_some(s[3]),
        subcomponent: (optional >= 2).then_some(s[4]),
        truncation: (optional >= 3).then_some(s[5]),
    })
}

/// Text that is mostly delimiters, escape-sequence letters and line ends, plus any Unicode.
fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[|^~&\\\\#$%*@!+=:;?/{}\r\nXFSTREP.brsp0-9A-F \"é€😀\u{0}\u{b}\u{1c}]{0,60}",
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// escape then unescape gives the text back, and the escaped text holds no separator, no
    /// line break and no bare escape character outside the sequences it wrote.
    #[test]
    fn round_trip_any_text_any_delimiters(s in tricky_text(), d in delimiters()) {
        let e = escape(&s, &d);
        prop_assert_eq!(unescape(&e, &d), s.as_str());
        if d.escape.is_some() {
            for c in [Some(d.field), Some(d.component), Some(d.repetition), d.subcomponent, d.truncation]
                .into_iter()
                .flatten()
            {
                prop_assert!(!e.contains(c), "{:?} left in {:?}", c, e);
            }
            prop_assert!(!e.contains(['\r', '\n']));
        }
    }

    /// An escaped value written into a message and read back by the parser is the value, in
    /// a field, a component and a subcomponent.
    #[test]
    fn round_trip_through_a_parsed_message(
        s in tricky_text(),
        d in delimiters().prop_filter("needs every separator", |d| d.escape.is_some() && d.subcomponent.is_some()),
    ) {
        let e = escape(&s, &d);
        let (f, c, sc) = (d.field, d.component, d.subcomponent.unwrap_or('&'));
        let text = format!(
            "MSH{f}{enc}{f}A\rZZZ{f}{e}{f}x{c}{e}{f}x{c}y{sc}{e}{sc}z\rZZY{f}end\r",
            enc = d.encoding_characters(),
        );
        let msg = Message::parse(text.as_bytes()).map_err(|err| TestCaseError::fail(format!("{err}: {text:?}")))?;
        let zzz = msg.first("ZZZ").ok_or_else(|| TestCaseError::fail("no ZZZ"))?;
        // `""` alone is HL7's explicit null: the parser keeps it as is, so it reads back.
        prop_assert_eq!(zzz.field(1).value(), s.as_str());
        prop_assert_eq!(zzz.field(2).component(2).value(), s.as_str());
        prop_assert_eq!(zzz.field(3).component(2).subcomponent(2).value(), s.as_str());
        prop_assert_eq!(zzz.field(3).component(2).subcomponent(3).value(), "z");
        prop_assert_eq!(msg.segment_count(), 3);
    }

    /// `\Xhh…\` carries any UTF-8 text, even split over several adjacent sequences at any
    /// byte (a character cut in two survives).
    #[test]
    fn hex_sequences_carry_utf8(s in any::<String>(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4)) {
        let d = Delimiters::STANDARD;
        let bytes = s.as_bytes();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut raw = String::new();
        let mut from = 0;
        for &to in at.iter().chain([bytes.len()].iter()) {
            if to > from {
                raw.push_str(&format!("\\X{}\\", hex(&bytes[from..to])));
                from = to;
            }
        }
        prop_assert_eq!(unescape(&raw, &d), s.as_str());
    }

    /// Text without the escape character is returned as is, borrowed.
    #[test]
    fn text_without_escape_character_is_untouched(s in any::<String>(), d in delimiters()) {
        let s: String = s.chars().filter(|&c| Some(c) != d.escape).collect();
        prop_assert!(matches!(unescape(&s, &d), std::borrow::Cow::Borrowed(x) if x == s));
    }
}
