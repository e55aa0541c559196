//! The writer gives exactly serde_json's bytes: on every example bundle, on strings of every
//! kind, and for the constructs it leaves to serde_json.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;

use super::{needs_escape, to_string};
use crate::fhir::*;

fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
    let expected = serde_json::to_string(value).unwrap();
    assert_eq!(to_string(value), expected);
}

#[test]
fn example_bundles_are_byte_identical() {
    for (name, bundle) in crate::fhir::tests::example_bundles() {
        let json = to_string(&bundle);
        assert_eq!(json, serde_json::to_string(&bundle).unwrap(), "{name}");
        assert_eq!(bundle.to_json(), json, "{name}");
        for entry in &bundle.entry {
            let resource = entry.resource.as_ref().unwrap();
            assert_eq!(resource.to_json(), serde_json::to_string(resource).unwrap());
        }
    }
}

#[test]
fn strings_needing_escapes() {
    for s in [
        "",
        "a",
        "plain ASCII text longer than eight bytes",
        "quote \" inside",
        "back\\slash",
        "line\nbreak",
        "tab\tand\rcarriage return",
        "\u{0}\u{1}\u{1f}\u{7f}",
        "\u{8}\u{c}",
        "é accentué, 日本語, emoji 🧪",
        "exactly8",
        "1234567\"",
        "12345678\\",
        "\"1234567",
        "¿ ÿ \u{80} \u{9f}",
    ] {
        same_as_serde_json(s);
        same_as_serde_json(&Coding::new(s, s));
        assert_eq!(
            needs_escape(s),
            s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "{s:?}"
        );
    }
}

#[test]
fn escape_in_every_position_of_a_word() {
    for special in [0u8, 0x1f, b'"', b'\\', b'\n'] {
        // Every length around the word sizes of the short-string path and past it.
        for len in 1..40 {
            for at in 0..len {
                let mut bytes = vec![b'x'; len];
                bytes[at] = special;
                let s = String::from_utf8(bytes).unwrap();
                assert!(needs_escape(&s), "{s:?}");
                same_as_serde_json(&s);
            }
        }
    }
    // Multi-byte characters across every word boundary, plain and needing escapes.
    for len in 0..40 {
        for at in 0..=len {
            for c in ["é", "日", "🧪", "\n"] {
                let mut s = "x".repeat(len);
                s.insert_str(at, c);
                same_as_serde_json(&s);
            }
        }
    }
    // Bytes just outside the escaped set.
    for b in [0x20u8, b'!', b'#', b'[', b']', 0x7f] {
        let s = String::from_utf8(vec![b; 17]).unwrap();
        assert!(!needs_escape(&s), "{s:?}");
    }
}

#[derive(Serialize)]
enum Shapes {
    Unit,
    Newtype(u8),
    Tuple(i32, String),
    Struct { a: Option<bool>, b: Vec<u8> },
}

#[derive(Serialize)]
struct Everything {
    none: Option<String>,
    unit: (),
    chars: Vec<char>,
    ints: (i8, i16, i32, i64, i128, u8, u16, u32, u64, u128),
    floats: (f32, f64, f64, f64),
    shapes: Vec<Shapes>,
    empty: Vec<String>,
    map: BTreeMap<String, Decimal>,
    decimal: Decimal,
}

#[test]
fn serde_data_model_matches() {
    let value = Everything {
        none: None,
        unit: (),
        chars: vec!['a', '"', '\n', 'é'],
        ints: (
            -8,
            -16,
            -32,
            i64::MIN,
            i128::MAX,
            8,
            16,
            32,
            u64::MAX,
            u128::MAX,
        ),
        floats: (1.5, 0.1, f64::NAN, 1e300),
        shapes: vec![
            Shapes::Unit,
            Shapes::Newtype(7),
            Shapes::Tuple(-1, "t".into()),
            Shapes::Struct {
                a: Some(true),
                b: vec![],
            },
        ],
        empty: vec![],
        map: [("k\"ey".to_string(), "5.10".parse().unwrap())].into(),
        decimal: "-0.0010".parse().unwrap(),
    };
    same_as_serde_json(&value);
    assert!(to_string(&value).contains("\"decimal\":-0.0010"));
}

#[test]
fn raw_values_are_written_verbatim() {
    // Decimals, and serde_json's own `RawValue` whatever JSON it holds (a string with escapes
    // goes back to serde_json, byte for byte the same).
    let decimals: Vec<Decimal> = [
        "0",
        "-12.500",
        "1.5e-3",
        "2e+10",
        "12345678901234567890.000",
    ]
    .iter()
    .map(|d| d.parse().unwrap())
    .chain([Decimal::from(-7i64), Decimal::from_f64(1e300).unwrap()])
    .collect();
    same_as_serde_json(&decimals);
    assert!(to_string(&decimals).starts_with("[0,-12.500,1.5e-3,"));
    for raw in [
        "3.25",
        r#""plain""#,
        r#""quote \" and \\ and \u00e9""#,
        r#"{"a":[1,true,null]}"#,
        "[]",
    ] {
        let value = serde_json::value::RawValue::from_string(raw.to_string()).unwrap();
        same_as_serde_json(&value);
        same_as_serde_json(&vec![value.clone(), value]);
    }
}

#[test]
fn unsupported_constructs_fall_back_to_serde_json() {
    // Byte strings and integer map keys are serde_json's business.
    same_as_serde_json(&serde_bytes_like(&[1, 2, 3]));
    let int_keys: BTreeMap<u32, &str> = [(1, "a"), (2, "b")].into();
    same_as_serde_json(&int_keys);
}

struct BytesValue<'a>(&'a [u8]);

impl Serialize for BytesValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn serde_bytes_like(bytes: &[u8]) -> Vec<BytesValue<'_>> {
    vec![BytesValue(bytes)]
}

proptest! {
    #[test]
    fn any_string_matches(s in any::<String>()) {
        prop_assert_eq!(to_string(&s), serde_json::to_string(&s).unwrap());
    }

    #[test]
    fn ascii_strings_match(s in "[\\x00-\\x7f]{0,40}") {
        prop_assert_eq!(to_string(&s), serde_json::to_string(&s).unwrap());
        prop_assert_eq!(needs_escape(&s), s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
    }
}
