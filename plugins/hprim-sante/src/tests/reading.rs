//! Reading a file: delimiters, line ends, records and structure errors, charsets, escapes.

use super::*;

// --- Delimiters, lines, records ---

#[test]
fn delimiters_are_read_from_the_header() {
    let d = parse::Delims::from_header(r"H|~^\&|F.HPR").unwrap();
    assert_eq!((d.field, d.component, d.repetition), ('|', '~', '^'));
    assert_eq!((d.escape, d.subcomponent), ('\\', '&'));
    let d = parse::Delims::from_header(r"H|\^&~|CLIR949.hpr").unwrap();
    assert_eq!(d.encoding_characters(), r"\^&~");
    assert_eq!((d.component, d.repetition, d.escape), ('\\', '^', '&'));
    let d = parse::Delims::from_header(r"H!^~\&").unwrap();
    assert_eq!((d.field, d.component, d.repetition), ('!', '^', '~'));
}

#[test]
fn bad_delimiters_are_refused() {
    for (header, why) in [
        (r"H|~^~&|F.HPR", "not 5 distinct"),
        (r"H|~^\|F.HPR", "not 5 distinct"),
        (r"H|~^", "must start with H"),
        (r"H|~^\A|", "not an ASCII punctuation"),
        (r"H|~^\ |", "not an ASCII punctuation"),
        (r"H|~^\&#|", "exactly 4 delimiters"),
        ("H|~^\\é|", "not an ASCII punctuation"),
    ] {
        let (location, reason) = refused(adapt_with("{}", &file(&[header, P, OBR, OBX, "L|1"])));
        assert_eq!(location, "line 1 (H-2)", "{header}");
        assert!(reason.contains(why), "{header}: {reason}");
    }
}

#[test]
fn a_file_starts_with_its_h_record() {
    let (location, reason) = refused(adapt_with("{}", &file(&[P, OBR, OBX, "L|1"])));
    assert_eq!(location, "line 1 (P)");
    assert!(reason.contains("H (header)"), "{reason}");
    for empty in [&b""[..], b"\r\n\r\n", b"  \n\x1a"] {
        let (location, reason) = refused(adapt_with("{}", empty));
        assert_eq!(location, "line 1");
        assert!(reason.contains("empty file"), "{reason}");
    }
    // Blank lines before the H record are fine; line numbers still count them.
    let mut bytes = b"\r\n".to_vec();
    bytes.extend(file(&[H, P, OBR, "OBX|1|NM|||5", "L|1"]));
    assert_eq!(refused(adapt_with("{}", &bytes)).0, "line 5 (OBX-3)");
}

#[test]
fn line_ends_cr_lf_and_crlf_give_the_same_records() {
    let lines = [H, P, OBR, OBX, "C|1|L|note", "L|1"];
    let outputs: Vec<Vec<String>> = ["\r", "\n", "\r\n"]
        .iter()
        .map(|eol| {
            let bytes = latin1(&(lines.join(eol) + eol));
            let out = adapt_with("{}", &bytes).unwrap();
            out.records.iter().map(|r| r.bundle.clone()).collect()
        })
        .collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    // Mixed, with a missing final line end.
    let mixed = latin1(&format!("{H}\r{P}\n{OBR}\r\n{OBX}\r\nC|1|L|note\nL|1"));
    let out = adapt_with("{}", &mixed).unwrap();
    assert_eq!(out.records[0].bundle, outputs[0][0]);
}

#[test]
fn continuation_records_are_joined_before_splitting() {
    let out = adapt(&[
        H,
        "P|1|IPP1|LABP1||DUR",
        "A|AND~Rémi||19800101|M",
        "OBR|1|D1|L1|GLY~Glyc",
        "A|émie~L|||202401150800||||||||||||||||||F",
        "OBX|1|TX|COM~Commentaire~L||première ligne et ",
        "A|suite^seconde ligne|||||||F",
        "L|1",
    ]);
    let r = &out.records[0];
    let patient = one(r, "Patient");
    assert_eq!(patient["name"][0]["family"], "DURAND");
    assert_eq!(patient["birthDate"], "1980-01-01");
    assert_eq!(one(r, "DiagnosticReport")["code"]["text"], "Glycémie");
    let obs = &results(r)[0];
    assert_eq!(obs["valueString"], "première ligne et suite\nseconde ligne");
    assert_eq!(obs["status"], "final");
    // A problem in a continued record is reported at the record's first line.
    let (location, _) = refused(adapt_with(
        "{}",
        &file(&[H, P, OBR, "OBX|1|NM|", "A|||5.2", "L|1"]),
    ));
    assert_eq!(location, "line 4 (OBX-3)");
}

#[test]
fn comments_go_to_the_record_before_them() {
    let out = adapt(&[
        H,
        "C|1|L|after H: nothing to attach to",
        P,
        "C|1|L|Patient à jeun",
        "C|2|L|sous AVK",
        OBR,
        "C|1|L|Conclusion ligne 1^ligne 2",
        OBX,
        "C|1|L|Contrôlé",
        "C|2|L|",
        "ZZ|1|unknown",
        "C|1|L|about ZZ: skipped",
        "L|1",
    ]);
    let r = &out.records[0];
    let comments: Vec<Value> = resources(r, "Observation")
        .into_iter()
        .filter(|o| o["code"]["coding"][0]["code"] == map::COMMENT.0)
        .collect();
    let texts: Vec<&str> = comments
        .iter()
        .filter_map(|c| c["valueString"].as_str())
        .collect();
    assert_eq!(texts, ["Patient à jeun", "sous AVK"]);
    assert_eq!(
        comments[0]["code"]["coding"][0]["system"],
        "http://loinc.org"
    );
    let report = one(r, "DiagnosticReport");
    assert_eq!(report["conclusion"], "Conclusion ligne 1\nligne 2");
    let obs = &results(r)[0];
    assert_eq!(obs["note"], json!([{"text": "Contrôlé"}]));
    // The comment observations are not results of the report.
    assert_eq!(report["result"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_record_types_are_skipped() {
    let out = adapt(&[H, "Q|1|query", P, "M|1|manufacturer", OBR, OBX, "ZX", "L|1"]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(results(&out.records[0]).len(), 1);
}

#[test]
fn structure_errors_name_the_record() {
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &[H, P, OBX, OBR, "L|1"],
            "line 3 (OBX)",
            "before any request",
        ),
        (
            &[H, OBR, P, OBX, "L|1"],
            "line 2 (OBR)",
            "before any patient",
        ),
        (
            &[H, P, OBR, OBX, P, OBX, "L|1"],
            "line 6 (OBX)",
            "before any request",
        ),
        (&[H, P, OBR, OBX, "L|1", OBX], "line 6 (OBX)", "after the L"),
        (&[H, P, OBR, OBX, H, "L|1"], "line 5 (H)", "second H"),
        (&[H, P, OBR, OBX], "line 4 (OBX)", "truncated"),
    ];
    for (lines, location, why) in cases {
        let (loc, reason) = refused(adapt_with("{}", &file(lines)));
        assert_eq!(loc, location, "{lines:?}");
        assert!(reason.contains(why), "{lines:?}: {reason}");
    }
}

#[test]
fn truncated_files_are_refused_unless_accepted() {
    let lines = [H, P, OBR, OBX, "OBX|2|NM|CREA~Créat"];
    let (location, reason) = refused(adapt_with("{}", &file(&lines)));
    assert_eq!(location, "line 5 (OBX)");
    assert!(reason.contains("no L (end) record"), "{reason}");
    let out = adapt_with(r#"{"accept_truncated": true}"#, &file(&lines)).unwrap();
    assert_eq!(results(&out.records[0]).len(), 2);
    // Trailing ^Z and blank lines after L are fine.
    let mut bytes = file(&[H, P, OBR, OBX, "L|1"]);
    bytes.extend(b"\r\n\x1a");
    assert_eq!(adapt_with("{}", &bytes).unwrap().records.len(), 1);
}

#[test]
fn only_oru_files_are_handled() {
    let adm = H.replace("|ORU|", "|ADM|");
    match adapt_with("{}", &file(&[&adm, P, "L|1"])) {
        Err(AdaptError::Unsupported(why)) => assert!(why.contains("ADM"), "{why}"),
        other => panic!("{other:?}"),
    }
    // An empty H-7 is read as ORU.
    let none = H.replace("|ORU|", "||");
    let out = adapt_with("{}", &file(&[&none, P, OBR, OBX, "L|1"])).unwrap();
    assert_eq!(out.message_type.as_deref(), Some("ORU"));
}

#[test]
fn a_file_without_requests_gives_no_record() {
    let out = adapt(&[H, "L|1"]);
    assert!(out.records.is_empty());
    let out = adapt(&[H, P, "C|1|L|rien", "P|2|IPP2", OBR, OBX, "L|1"]);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].patient.local_ids[0].value, "IPP2");
}

// --- Charsets ---

#[test]
fn latin1_by_default_utf8_when_configured() {
    let out = adapt(&[H, P, OBR, OBX, "L|1"]);
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let utf8 = [H, P, OBR, OBX, "L|1"].join("\n");
    let out = adapt_with(r#"{"charset": "UTF-8"}"#, utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    // UTF-8 read as Latin-1 (the default) is mojibake, but not an error.
    let out = adapt_with("{}", utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "RÃ©mi"
    );
    let out = adapt_with(r#"{"charset": "auto"}"#, utf8.as_bytes()).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let out = adapt_with(r#"{"charset": "auto"}"#, &file(&[H, P, OBR, OBX, "L|1"])).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
}

#[test]
fn the_source_charset_wins_over_the_setting() {
    let utf8 = [H, P, OBR, OBX, "L|1"].join("\r");
    let mut m = message(utf8.as_bytes());
    m.charset = Some("UTF-8".into());
    let out = lab(r#"{"charset": "ISO-8859-1"}"#).adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let mut m = message(&file(&[H, P, OBR, OBX, "L|1"]));
    m.charset = Some("ISO-8859-1".into());
    let out = lab(r#"{"charset": "UTF-8"}"#).adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    // An unknown source charset falls back to the setting.
    m.charset = Some("EBCDIC".into());
    let out = lab("{}").adapt(&m).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
}

#[test]
fn invalid_utf8_when_utf8_is_forced_names_the_line() {
    let bytes = file(&[H, P, OBR, OBX, "L|1"]);
    let (location, reason) = refused(adapt_with(r#"{"charset": "UTF-8"}"#, &bytes));
    assert_eq!(location, "line 2 (P)");
    assert!(reason.contains("invalid UTF-8 at byte"), "{reason}");
    let mut m = message(&latin1(&[H, "P|1|IPP1", OBR, OBX, "L|1"].join("\n")));
    m.charset = Some("utf8".into());
    assert_eq!(refused(lab("{}").adapt(&m)).0, "line 3 (OBR)");
}

#[test]
fn a_bom_means_utf8() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend([H, P, OBR, OBX, "L|1"].join("\r\n").as_bytes());
    let out = adapt_with("{}", &bytes).unwrap();
    assert_eq!(
        one(&out.records[0], "Patient")["name"][0]["given"][0],
        "Rémi"
    );
    let mut bad = b"\xEF\xBB\xBF".to_vec();
    bad.extend(file(&[H, P, OBR, OBX, "L|1"]));
    assert_eq!(refused(adapt_with("{}", &bad)).0, "line 2 (P)");
}

#[test]
fn escape_sequences_use_the_file_delimiters() {
    let out = adapt(&[
        H,
        P,
        OBR,
        r"OBX|1|ST|T~Test~L||a\S\b \R\ c \E\ d \T\ e\.br\f \F\ g \X41\|||||F",
        "L|1",
    ]);
    assert_eq!(
        results(&out.records[0])[0]["valueString"],
        "a~b ^ c \\ d & e\nf | g A"
    );
}
