use super::field::{nth, split};
use super::parse::count_lines;
use super::*;
use crate::hl7::ParseError;

fn parse(s: &str) -> Message {
    Message::parse(s.as_bytes()).unwrap()
}

#[test]
fn split_agrees_with_str_split() {
    for raw in [
        "",
        "a",
        "a^b",
        "^",
        "^^",
        "a^^c^",
        "é^ü^ß",
        "ab^cd^ef",
        "12345678^123456789",
    ] {
        let ours: Vec<_> = split(raw, Some('^')).collect();
        assert_eq!(ours, raw.split('^').collect::<Vec<_>>(), "{raw:?}");
        assert_eq!(split(raw, None).collect::<Vec<_>>(), [raw]);
    }
    assert_eq!(split("a§b§", Some('§')).collect::<Vec<_>>(), ["a", "b", ""]);
}

#[test]
fn nth_agrees_with_split() {
    for raw in ["", "a", "a^b", "^", "^^", "a^^c^", "é^ü^ß", "ab^cd^ef"] {
        for n in 1..6 {
            let expected = raw.split('^').nth(n - 1).unwrap_or("");
            assert_eq!(nth(raw, Some('^'), n), expected, "{raw:?} part {n}");
        }
        assert_eq!(nth(raw, Some('^'), 0), "");
        assert_eq!(nth(raw, None, 1), raw);
        assert_eq!(nth(raw, None, 2), "");
    }
    assert_eq!(nth("a§b§c", Some('§'), 2), "b");
}

#[test]
fn line_ends_cr_lf_crlf_mixed() {
    for sep in ["\r", "\n", "\r\n"] {
        let m = parse(&["MSH|^~\\&|A", "PID|1", "PV1|1", ""].join(sep));
        let names: Vec<_> = m.segments().map(|s| s.name()).collect();
        assert_eq!(names, ["MSH", "PID", "PV1"], "{sep:?}");
        assert_eq!(m.first("PV1").unwrap().raw(), "PV1|1");
    }
    let m = parse("MSH|^~\\&|A\r\nPID|1\rPV1|1\n\n\r\r\nOBX|1\r\n");
    assert_eq!(m.segment_count(), 4);
    assert_eq!(m.segment(3).unwrap().raw(), "OBX|1");
    // LF CR is two line ends (an empty line in between), not one.
    let m = parse("MSH|^~\\&|A\n\rPID|1");
    assert_eq!(m.segment_count(), 2);
}

#[test]
fn literal_backslash_r() {
    let m = parse(
        "MSH|^~\\&|A\\r\r\nOBX|1|TX|||x|\\r\r\nAL1|2||SEIZURES~VOMITING\\r\nNTE|1||a\\E\\r\nNTE|2||\\r",
    );
    assert_eq!(m.msh().field(3).raw(), "A");
    let obx = m.first("OBX").unwrap();
    assert_eq!(obx.field_count(), 6);
    assert!(obx.field(6).is_empty());
    assert_eq!(
        m.first("AL1").unwrap().field(3).repetition(2).raw(),
        "VOMITING"
    );
    // `\E\` then `r`: the backslash closes a sequence, so the text is kept.
    assert_eq!(m.first("NTE").unwrap().field(3).raw(), "a\\E\\r");
    assert_eq!(m.first("NTE").unwrap().field(3).value(), "a\\r");
    assert_eq!(m.segments_named("NTE").nth(1).unwrap().field(3).raw(), "");
    // Other escape character: always stripped.
    let m = parse("MSH|^~*&|A\\r\rPID|x\\r");
    assert_eq!(m.first("PID").unwrap().field(1).raw(), "x");
    // A line made of `\r` alone is empty.
    let m = parse("MSH|^~\\&|A\r\\r\rPID|1");
    assert_eq!(m.segment_count(), 2);
}

#[test]
fn framing() {
    let m = parse("\u{feff}\r\n\x0bMSH|^~\\&|A\rPID|1\r\x1c\r");
    assert_eq!(m.segment_count(), 2);
    assert_eq!(m.first("PID").unwrap().raw(), "PID|1");
    let err = Message::parse(b"\xef\xbb\xbf\r\nPID|1").unwrap_err();
    assert_eq!(
        err,
        ParseError::NotHl7 {
            offset: 5,
            found: "PID|1".into()
        }
    );
    assert!(err.to_string().starts_with("not an HL7 v2 message: "));
    let err = Message::parse(b"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "not an HL7 v2 message: empty input (byte 0)"
    );
    assert!(matches!(
        Message::parse(b"msh|^~\\&"),
        Err(ParseError::NotHl7 { .. })
    ));
}

#[test]
fn msh_fields_use_hl7_numbering() {
    let m = parse("MSH|^~\\\\&|SE050|050|PACS|050|20120912011230||ADT^A01|102|T|2.6");
    assert_eq!(*m.delimiters(), Delimiters::STANDARD);
    let msh = m.msh();
    assert_eq!(msh.field(1).raw(), "|");
    assert_eq!(msh.field(2).raw(), "^~\\\\&");
    assert_eq!(msh.field(2).value(), "^~\\\\&");
    assert_eq!(msh.field(2).component(1).raw(), "^~\\\\&");
    assert_eq!(msh.field(2).repetition_count(), 1);
    assert_eq!(msh.field(3).value(), "SE050");
    assert_eq!(msh.field(9).raw(), "ADT^A01");
    assert_eq!(msh.field_count(), 12);
    assert_eq!(m.message_type().as_deref(), Some("ADT^A01"));
    assert_eq!(m.control_id().as_deref(), Some("102"));
    assert_eq!(m.version().as_deref(), Some("2.6"));
    assert_eq!(m.get("MSH-1").as_deref(), Some("|"));
    assert_eq!(m.get("MSH-2").as_deref(), Some("^~\\\\&"));
    assert_eq!(msh.field(0).raw(), "MSH");
}

#[test]
fn sparse_access_is_empty_not_error() {
    let m = parse("MSH|^~\\&|A\rPID");
    let pid = m.first("PID").unwrap();
    assert_eq!(pid.field_count(), 0);
    assert!(pid.field(1).is_empty());
    assert!(pid.field(1).component(3).subcomponent(2).is_empty());
    assert_eq!(pid.field(1).repetition_count(), 0);
    assert_eq!(pid.field(1).repetition(0).raw(), "");
    assert_eq!(pid.field(1).component(0).raw(), "");
    assert_eq!(m.get("PID-1"), None);
    assert_eq!(m.get("ZZZ-1"), None);
    assert_eq!(m.get("not a path"), None);
    assert_eq!(m.get("5"), None); // no segment name
    assert_eq!(m.msh().field(40).raw(), "");
}

#[test]
fn charsets() {
    // Latin-1 declared: é as 0xE9.
    let m = Message::parse(b"MSH|^~\\&||||||||||||||||8859/1\rPID|1||||RENAUD^Ren\xe9e").unwrap();
    assert_eq!(m.charset(), Charset::Latin1);
    assert_eq!(m.get("PID-5.2").as_deref(), Some("Renée"));
    // Latin-1 declared and windows-1252-only byte: C1 control, not a curly quote.
    let m = Message::parse(b"MSH|^~\\&||||||||||||||||ISO IR100\rNTE|1||l\x92eau").unwrap();
    assert_eq!(m.get("NTE-3").as_deref(), Some("l\u{92}eau"));
    // Latin-9.
    let m = Message::parse(b"MSH|^~\\&||||||||||||||||8859/15\rNTE|1||5\xa4").unwrap();
    assert_eq!(m.get("NTE-3").as_deref(), Some("5€"));
    // ASCII with a stray high byte: Latin-1, no error.
    let m = Message::parse(b"MSH|^~\\&||||||||||||||||ASCII\rNTE|1||\xe9").unwrap();
    assert_eq!(
        (m.charset(), m.get("NTE-3").as_deref()),
        (Charset::Ascii, Some("é"))
    );
    // UTF-8 declared and valid; repetitions and components of MSH-18 ignored.
    let m = Message::parse("MSH|^~\\&||||||||||||||||UNICODE UTF-8~8859/1|FR\rNTE|1||é".as_bytes())
        .unwrap();
    assert_eq!(
        (m.charset(), m.get("NTE-3").as_deref()),
        (Charset::Utf8, Some("é"))
    );
    // UTF-8 declared, invalid: error with offset and line.
    let err = Message::parse(b"MSH|^~\\&||||||||||||||||UTF-8\r\nNTE|1||\xe9t\xe9").unwrap_err();
    assert_eq!(
        err,
        ParseError::InvalidUtf8 {
            offset: 38,
            line: 2
        }
    );
    assert!(err.to_string().contains("byte 38 (line 2)"), "{err}");
    // Empty MSH-18: UTF-8 when valid, Latin-1 otherwise.
    let m = parse("MSH|^~\\&|A\rNTE|1||é");
    assert_eq!(
        (m.charset(), m.get("NTE-3").as_deref()),
        (Charset::Utf8, Some("é"))
    );
    let m = Message::parse(b"MSH|^~\\&|A\rNTE|1||\xe9").unwrap();
    assert_eq!(
        (m.charset(), m.get("NTE-3").as_deref()),
        (Charset::Latin1, Some("é"))
    );
    // Unknown label.
    let err = Message::parse(b"MSH|^~\\&||||||||||||||||ISO IR87\rNTE|1").unwrap_err();
    assert_eq!(
        err,
        ParseError::UnsupportedCharset {
            label: "ISO IR87".into(),
            forced: false
        }
    );
    // Forced charset wins over MSH-18; forced unknown label is an error.
    let raw = b"MSH|^~\\&||||||||||||||||UTF-8\rNTE|1||\xe9";
    let m = Message::parse_with_charset(raw, Some("ISO-8859-1")).unwrap();
    assert_eq!(m.get("NTE-3").as_deref(), Some("é"));
    let err = Message::parse_with_charset(raw, Some("EBCDIC")).unwrap_err();
    assert!(matches!(
        err,
        ParseError::UnsupportedCharset { forced: true, .. }
    ));
    let err = Message::parse_with_charset(b"MSH|^~\\&|A\r\xe9", Some("UTF-8")).unwrap_err();
    assert_eq!(
        err,
        ParseError::InvalidUtf8 {
            offset: 11,
            line: 2
        }
    );
}

#[test]
fn segment_errors() {
    let err = Message::parse(b"MSH|^~\\&|A\rPID|1\r// comment\r").unwrap_err();
    assert_eq!(err.line(), Some(3));
    assert!(matches!(err, ParseError::InvalidSegment { segment: 2, .. }));
    assert!(err.to_string().contains("line 3"), "{err}");
    let err = Message::parse(b"MSH|^~\\&|A\nPIDX|1").unwrap_err();
    assert!(
        err.to_string().contains("followed by the field separator"),
        "{err}"
    );
    let err = Message::parse(b"MSH|^~\\&|A\npid|1").unwrap_err();
    assert!(matches!(err, ParseError::InvalidSegment { line: 2, .. }));
    let err = Message::parse(b"MSH|^~\\&|A\nPI").unwrap_err();
    assert!(matches!(err, ParseError::InvalidSegment { line: 2, .. }));
    let err = Message::parse(b"MSH|^~\\&|A\nPID|1\nMSH|^~\\&|B").unwrap_err();
    assert_eq!(
        err,
        ParseError::UnexpectedMsh {
            line: 3,
            segment: 2
        }
    );
    let err = Message::parse(b"MSH|^^\\&|A").unwrap_err();
    assert!(matches!(err, ParseError::InvalidDelimiters { .. }));
    assert!(err.to_string().contains("used twice"), "{err}");
    // Blank lines (spaces) are ignored.
    assert_eq!(parse("MSH|^~\\&|A\r   \rPID|1").segment_count(), 2);
}

#[test]
fn occurrences_and_locations() {
    let m = parse("MSH|^~\\&|A\rOBR|1\rOBX|1\rOBX|2\rOBR|2\rOBX|1\r");
    let obx: Vec<_> = m
        .segments_named("OBX")
        .map(|s| (s.index(), s.occurrence()))
        .collect();
    assert_eq!(obx, [(2, 1), (3, 2), (5, 3)]);
    let third = m.segments_named("OBX").nth(2).unwrap();
    assert_eq!(third.location(5, 1), "OBX[3]-5.1");
    assert_eq!(m.get("OBX[3]-1").as_deref(), Some("1"));
    assert_eq!(m.get("OBX(2)-1").as_deref(), Some("2"));
    assert_eq!(m.get("OBX[4]-1"), None);
    assert_eq!(m.segment(4).unwrap().occurrence(), 2);
}

#[test]
fn levels_and_escapes() {
    let m = parse("MSH|^~\\&|A\rOBX|1|ST|X||a\\T\\b^c&d~e^f\\S\\g&h\\E\\");
    let f = m.first("OBX").unwrap().field(5);
    assert_eq!(f.value(), "a&b");
    assert_eq!(f.text(), "a&b^c&d~e^f^g&h\\");
    assert_eq!(f.repetition_count(), 2);
    assert_eq!(f.component(2).raw(), "c&d");
    assert_eq!(f.component(2).value(), "c");
    assert_eq!(f.component(2).subcomponent(2).value(), "d");
    let r2 = f.repetition(2);
    assert_eq!(r2.component_count(), 2);
    assert_eq!(r2.component(2).value(), "f^g");
    assert_eq!(r2.component(2).subcomponent(2).value(), "h\\");
    assert_eq!(m.get("OBX-5(2).2.2").as_deref(), Some("h\\"));
    // Borrowed when nothing is escaped.
    assert!(matches!(f.component(2).value(), Cow::Borrowed("c")));
}

#[test]
fn missing_subcomponent_separator() {
    let m = parse("MSH|^~}|A\rPID|1||A&B^C}F}D");
    assert_eq!(m.delimiters().subcomponent, None);
    let f = m.first("PID").unwrap().field(3);
    assert_eq!(f.value(), "A&B");
    assert_eq!(f.component(2).value(), "C|D");
    assert_eq!(f.component(1).subcomponent_count(), 1);
    assert_eq!(f.component(1).subcomponent(2).raw(), "");
}

#[test]
fn count_lines_matches_parser() {
    assert_eq!(count_lines(b"a\rb\nc\r\nd"), 3);
    assert_eq!(count_lines(b"\n\r"), 2);
}

#[test]
fn escapes_are_read_wherever_they_are_and_only_there() {
    // The escape character only in MSH-2: values are taken as they are.
    let plain = parse("MSH|^~\\&|LAB\rPID|1||A&B^C||X/Y");
    assert_eq!(plain.msh().delimiters().escape, Some('\\'));
    assert_eq!(plain.msh().field(2).raw(), "^~\\&");
    assert_eq!(plain.get("PID-5").as_deref(), Some("X/Y"));
    // In the MSH line after MSH-2, in a later segment, or with MSH holding only MSH-1 and
    // MSH-2: unescaped, at every level.
    for (raw, path, expected) in [
        ("MSH|^~\\&|L\\T\\AB\rPID|1", "MSH-3", "L&AB"),
        ("MSH|^~\\&|LAB\rPID|1||A\\S\\B", "PID-3", "A^B"),
        ("MSH|^~\\&\rPID|1||A\\T\\B", "PID-3", "A&B"),
        ("MSH|^~\\&\rPID|1||X^Y\\F\\Z", "PID-3.2", "Y|Z"),
        ("MSH|^~\\&\rPID|1||X^Y&Z\\R\\", "PID-3.2.2", "Z~"),
    ] {
        let msg = parse(raw);
        assert_eq!(msg.get(path).as_deref(), Some(expected), "{raw:?}");
        assert_eq!(msg.msh().delimiters().escape, Some('\\'), "{raw:?}");
    }
    // Another escape character, and none at all.
    let msg = parse("MSH|^~!&|A!T!B");
    assert_eq!(msg.get("MSH-3").as_deref(), Some("A&B"));
    let msg = parse("MSH|^~|A\\T\\B");
    assert_eq!(msg.msh().delimiters().escape, None);
    assert_eq!(msg.get("MSH-3").as_deref(), Some("A\\T\\B"));
}
