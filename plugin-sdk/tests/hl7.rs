//! HL7 v2 toolkit against the real-world sample corpus in `shared/samples`, plus property tests.

use std::borrow::Cow;
use std::path::{Path as FsPath, PathBuf};

use passerelle_plugin_sdk::hl7::{
    Charset, Delimiters, Message, ParseError, datetime, escape::escape, escape::unescape,
};
use proptest::prelude::*;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/samples");

fn sample(rel: &str) -> Vec<u8> {
    let path = FsPath::new(SAMPLES).join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(rel: &str) -> Message {
    Message::parse(&sample(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn count(msg: &Message, name: &str) -> usize {
    msg.segments_named(name).count()
}

fn get(msg: &Message, path: &str) -> String {
    msg.get(path).map(Cow::into_owned).unwrap_or_default()
}

/// Every `*.hl7` / `*.er7` file under `dir`, recursively.
fn hl7_files(dir: &FsPath, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            hl7_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "hl7" || e == "er7") {
            out.push(path);
        }
    }
}

/// Reads every accessor of every segment, as an adapter would; must never panic.
fn walk(msg: &Message) -> usize {
    let mut n = 0;
    for seg in msg.segments() {
        for field in seg.fields() {
            n += field.value().len() + field.text().len();
            for rep in field.repetitions() {
                for comp in rep.components() {
                    for sub in comp.subcomponents() {
                        n += sub.value().len();
                    }
                }
            }
        }
    }
    n
}

#[test]
fn every_sample_file_parses() {
    let mut files = Vec::new();
    hl7_files(FsPath::new(SAMPLES), &mut files);
    files.sort();
    assert!(
        files.len() >= 21,
        "expected the sample corpus, found {} files",
        files.len()
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let msg = Message::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert_eq!(msg.msh().name(), "MSH");
        assert!(msg.message_type().is_some(), "{}", file.display());
        assert!(msg.control_id().is_some(), "{}", file.display());
        assert!(msg.segment_count() >= 2, "{}", file.display());
        walk(&msg);
    }
}

#[test]
fn ms_lab_oru_1_with_bom() {
    let bytes = sample("ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-1.hl7");
    assert!(bytes.starts_with(b"\xef\xbb\xbfMSH"));
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.charset(), Charset::Utf8);
    assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
    assert_eq!(msg.control_id().as_deref(), Some("182"));
    assert_eq!(msg.version().as_deref(), Some("2.5"));
    assert_eq!(get(&msg, "MSH-3"), "SomeSystem");
    assert_eq!(get(&msg, "PID-5.1"), "DUCK");
    assert_eq!(get(&msg, "PID-5.2"), "DONALD");
    assert_eq!(get(&msg, "PID-11.3"), "FOWL");
    assert_eq!(msg.segment_count(), 16);
    assert_eq!(count(&msg, "OBR"), 2);
    assert_eq!(count(&msg, "OBX"), 10);
    assert_eq!(count(&msg, "SPM"), 2);
    let obx: Vec<_> = msg.segments_named("OBX").collect();
    assert!(obx[0].field(5).is_empty());
    assert_eq!(obx[1].field(5).value(), "4.06");
    assert_eq!(obx[1].field(6).value(), "tera.l-1");
    assert_eq!(obx[1].field(3).component(2).value(), "ERYTHROCYTES");
    assert_eq!(obx[1].location(5, 0), "OBX[2]-5");
    assert_eq!(get(&msg, "OBX[10]-5"), "0");
    assert_eq!(
        datetime::to_fhir_datetime(&obx[1].field(14).value(), "Z").as_deref(),
        Some("2014-10-06T06:27:00+07:00")
    );
    // OBR-33: `&CYTO&JANE^…`: first subcomponent empty.
    let obr = msg.first("OBR").unwrap();
    assert_eq!(obr.field(33).component(1).subcomponent(2).value(), "CYTO");
    assert_eq!(obr.field(33).value(), "");
}

#[test]
fn ms_samples() {
    let dir = "ms-fhir-converter/data/SampleData/Hl7v2/";
    let msg = parse(&format!("{dir}LAB-ORU-2.hl7"));
    assert_eq!(msg.control_id().as_deref(), Some("ControlID"));
    assert_eq!(count(&msg, "OBX"), 10);
    assert_eq!(get(&msg, "MSH-17"), "USA");
    assert_eq!(get(&msg, "OBX[6]-5"), "13.4");

    let msg = parse(&format!("{dir}LRI_2.0-NG_CBC_Typ_Message.hl7"));
    assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
    assert_eq!(msg.control_id().as_deref(), Some("NIST-LRI-NG-002.00"));
    assert_eq!(msg.version().as_deref(), Some("2.5.1"));
    assert_eq!(count(&msg, "OBX"), 28);
    assert_eq!(get(&msg, "PID-5"), "Jones");
    assert_eq!(get(&msg, "OBX[4]-5"), "105600");
    assert_eq!(get(&msg, "OBX[4]-8"), "HH");
    assert_eq!(get(&msg, "OBX[4]-6.2"), "cells per microliter");
    assert_eq!(get(&msg, "OBX[20]-5.2"), "Present ++ out of ++++");
    assert_eq!(msg.msh().field(21).repetition_count(), 3);
    assert_eq!(
        datetime::to_fhir_instant(&get(&msg, "MSH-7"), "Z").as_deref(),
        Some("2011-05-31T14:05:51-05:00")
    );

    let msg = parse(&format!("{dir}MDM-T02-01.hl7"));
    assert_eq!(msg.message_type().as_deref(), Some("MDM^T02"));
    assert_eq!(msg.version().as_deref(), Some("2.8"));
    assert_eq!(count(&msg, "OBX"), 2);
    assert_eq!(get(&msg, "OBX[2]-5.2"), "application");
    assert_eq!(get(&msg, "OBX[2]-5.4"), "Base64");
    assert_eq!(get(&msg, "TQ1-2.2.2"), "lbs");
    assert_eq!(
        datetime::to_fhir_datetime(&get(&msg, "MSH-7"), "Z").as_deref(),
        Some("2008-01-31T16:00:00+02:15")
    );

    let msg = parse(&format!("{dir}ORU-R01-01.hl7"));
    assert_eq!(
        msg.control_id().as_deref(),
        Some("2.16.840.1.114222.4.3.3.5.1.2-20120314235954.325")
    );
    assert_eq!(get(&msg, "PID-5"), "Finn");
    assert_eq!(count(&msg, "OBX"), 5);
    // `\T\` in NTE-3 is an escaped `&`.
    let nte = msg.first("NTE").unwrap();
    assert!(nte.field(3).raw().contains("O157:H7 \\T\\ other"));
    assert!(nte.field(3).value().contains("O157:H7 & other STECs"));
    assert_eq!(get(&msg, "PID-10(2).2"), "American Indian or Alaska Native");

    let msg = parse(&format!("{dir}ORU-R01-RMGEAD.hl7"));
    assert_eq!(msg.control_id().as_deref(), Some("CNTRL-3456"));
    assert_eq!(get(&msg, "PID-5"), "EVERYWOMAN");
    // SN value `^182`: the first component is empty.
    assert_eq!(get(&msg, "OBX-5"), "");
    assert_eq!(get(&msg, "OBX-5.2"), "182");
    assert_eq!(get(&msg, "OBX-3.3"), "POST 12H CFST:MCNC:PT:SER/PLAS:QN");

    for file in ["RDE-O11-01.hl7", "RDE-O11-02.hl7"] {
        let msg = parse(&format!("{dir}{file}"));
        assert_eq!(msg.message_type().as_deref(), Some("RDE^O11"));
        assert_eq!(msg.control_id().as_deref(), Some("MSG00001"));
        let name = msg.first("PID").unwrap().field(5);
        assert_eq!(name.repetition_count(), 2);
        assert_eq!(name.value(), "EVERYMAN");
        assert_eq!(name.component(1).subcomponent(5).value(), "Aniston");
        assert_eq!(name.repetition(2).value(), "Josh");
        assert_eq!(get(&msg, "PID-3(2).1"), "123456789");
        assert_eq!(get(&msg, "PID-3.4.2"), "2.16.1");
    }
}

#[test]
fn linuxforhealth_unix_and_windows_line_ends() {
    let dir = "linuxforhealth-hl7v2-fhir-converter/src/test/resources/";
    let win_bytes = sample(&format!("{dir}sample_win.hl7"));
    assert_eq!(win_bytes.windows(2).filter(|w| w == b"\r\n").count(), 7);
    let win = Message::parse(&win_bytes).unwrap();
    let unix = parse(&format!("{dir}sample_unix.hl7"));
    for msg in [&win, &unix] {
        // MSH-2 is written `^~\\&`: the doubled escape character counts once.
        assert_eq!(msg.msh().field(2).raw(), "^~\\\\&");
        assert_eq!(*msg.delimiters(), Delimiters::STANDARD);
        assert_eq!(msg.message_type().as_deref(), Some("ADT^A01"));
        assert_eq!(msg.control_id().as_deref(), Some("102"));
        assert_eq!(msg.segment_count(), 8);
        assert_eq!(get(msg, "PID-5"), "DOE");
        assert_eq!(get(msg, "PID-3(2).4"), "USA");
        // Lines ending with the literal text `\r`: stripped.
        let obx = msg.first("OBX").unwrap();
        assert_eq!(obx.field_count(), 17);
        assert!(obx.field(17).is_empty());
        assert_eq!(obx.field(16).repetition_count(), 4);
        assert_eq!(obx.field(16).repetition(4).component(2).value(), "LOTHDEW");
        let al1 = msg.segments_named("AL1").nth(1).unwrap();
        assert_eq!(al1.field(5).raw(), "SEIZURES~VOMITING");
        assert_eq!(al1.field(5).repetition(2).value(), "VOMITING");
        assert_eq!(get(msg, "PRB-4"), "53692");
    }
    assert_eq!(win.charset(), Charset::Ascii);
    assert_eq!(unix.charset(), Charset::Utf8);
    // sample_win's MSH ends with `IPv6\r"`: not a trailing `\r`, kept (unterminated escape).
    let last = win.msh().field(win.msh().field_count());
    assert_eq!(last.component(3).raw(), "IPv6\\r\"");
    assert_eq!(last.component(3).value(), "IPv6\\r\"");
    assert_eq!(get(&unix, "MSH-24.3"), "IPv6");
    for (a, b) in win.segments().zip(unix.segments()).skip(1) {
        assert_eq!(a.raw(), b.raw());
    }

    let msg = parse(&format!("{dir}ORU-multiline-short.hl7"));
    assert_eq!(count(&msg, "OBX"), 3);
    assert_eq!(get(&msg, "OBX[2]-5"), "[PII] Emergency Department");
    let msg = parse(&format!("{dir}ORU-multiline-short-mixed.hl7"));
    assert_eq!(count(&msg, "OBX"), 4);
    assert_eq!(get(&msg, "OBX-2"), "ST");
    assert_eq!(get(&msg, "PID-11(4).1.2"), "Warden Av");
}

#[test]
fn hapi_chemistry_latin1() {
    let msg =
        parse("hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/parser/cv.04_001_chem.hl7");
    assert_eq!(msg.charset(), Charset::Latin1);
    assert_eq!(msg.message_type().as_deref(), Some("ERP^Z99"));
    assert_eq!(
        msg.control_id().as_deref(),
        Some("bf3dd577-2108-47ad-abd2-4f06284f3b55")
    );
    assert_eq!(msg.version().as_deref(), Some("2.3.1"));
    assert_eq!(get(&msg, "MSH-3.2"), "OLIS");
    assert_eq!(get(&msg, "PID-5"), "WXSSXY");
    assert_eq!(get(&msg, "PID-3.9.2"), "ONTARIO");
    assert_eq!(get(&msg, "MSA-2"), "212137");
    assert_eq!(get(&msg, "ERQ-3(2).1"), "@PID.3.4.2");
    assert_eq!(msg.segment_count(), 7);
}

/// `messages.txt` holds 18 messages separated by blank lines and `/* */` or `//` comments, some
/// with no blank line in between: split before each `MSH`, drop the comment lines.
#[test]
fn hapi_messages_file() {
    let bytes = sample("hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/util/messages.txt");
    let text = String::from_utf8(bytes).unwrap();
    let mut messages: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("/*") || trimmed.starts_with('*') || trimmed.starts_with("//") {
            continue;
        }
        if line.starts_with("MSH") {
            messages.push(String::new());
        }
        if let Some(m) = messages.last_mut() {
            m.push_str(line);
            m.push('\r');
        }
    }
    assert_eq!(messages.len(), 18);
    let parsed: Vec<Message> = messages
        .iter()
        .map(|m| Message::parse(m.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{m}")))
        .collect();
    for msg in &parsed {
        walk(msg);
    }
    assert_eq!(parsed[0].control_id().as_deref(), Some("1994050216163360"));
    assert_eq!(get(&parsed[0], "PID-5"), "RADIOLOGY");
    assert_eq!(count(&parsed[0], "OBR"), 3);
    // `^~\}`: the subcomponent separator is `}`.
    assert_eq!(parsed[1].delimiters().subcomponent, Some('}'));
    assert_eq!(parsed[1].message_type().as_deref(), Some("BAR^P01"));
    assert_eq!(get(&parsed[1], "PID-5"), "WASHINGTON-HARPER");
    assert_eq!(parsed[2].message_type().as_deref(), Some("ACK"));
    // `^~}`: three encoding characters, `}` is the escape character, no subcomponents.
    let d = parsed[3].delimiters();
    assert_eq!((d.escape, d.subcomponent), (Some('}'), None));
    assert_eq!(
        parsed[3].control_id().as_deref(),
        Some("908594ADT30502185327")
    );
    // Explicit nulls `""`.
    assert!(
        parsed[3]
            .first("PID")
            .unwrap()
            .field(11)
            .component(6)
            .is_null()
    );
    assert_eq!(get(&parsed[15], "PV1-7.2.2"), "H");
    assert_eq!(
        parsed[17].control_id().as_deref(),
        Some("994983RIQ40112233548")
    );
}

#[test]
fn ansforge_oru_lf_only_utf8() {
    let base = "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/";
    for (file, status) in [
        (
            "Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7",
            "F",
        ),
        ("Remplacement ORU/message_ORU_CR_Bio_RPLC_N1_N3.er7", "C"),
        ("Suppression ORU/message_ORU_CR_Bio_DEL_N1_N3.er7", "D"),
    ] {
        let bytes = sample(&format!("{base}{file}"));
        assert!(!bytes.contains(&b'\r'), "{file}: LF only");
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(msg.charset(), Charset::Utf8);
        assert_eq!(msg.message_type().as_deref(), Some("ORU^R01"));
        assert_eq!(msg.control_id().as_deref(), Some("015"));
        assert_eq!(msg.segment_count(), 22);
        assert_eq!(count(&msg, "OBX"), 13);
        assert_eq!(count(&msg, "PRT"), 4);
        assert_eq!(get(&msg, "PID-3.1"), "279035121518989");
        assert_eq!(get(&msg, "PID-3.4.2"), "1.2.250.1.213.1.4.10");
        assert_eq!(get(&msg, "PID-3.5"), "INS");
        assert_eq!(get(&msg, "PID-5"), "PAT-TROIS");
        assert_eq!(
            datetime::to_fhir_date(&get(&msg, "PID-7")).as_deref(),
            Some("1979-03-28")
        );
        assert_eq!(get(&msg, "OBX[1]-11"), status);
        assert_eq!(
            get(&msg, "OBX[3]-3.2"),
            "Masqué aux professionnels de Santé"
        );
        assert_eq!(get(&msg, "OBX[3]-3.3"), "MetaDMPMSS");
        assert!(get(&msg, "OBX[1]-5.5").starts_with("RG9jdW1lbnQg"));
        assert_eq!(get(&msg, "PRT[2]-15.4"), "adam.hoda@test-ci-sis.mssante.fr");
    }
    let msg = parse(&format!("{base}Transmission initiale ORU/ack.hl7"));
    assert_eq!(msg.message_type().as_deref(), Some("ACK^R01"));
    assert_eq!(get(&msg, "MSA-2"), "015");

    let msg = parse(
        "ansforge-hl7v2-exemples/Vague 2/Trans_Doc-CDA-HL7V2/TRANSMISSION_DOCS_CDA_EN_HL7V2_V2.1/\
         ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N3_SEGUR.hl7",
    );
    assert_eq!(msg.segment_count(), 21);
    assert_eq!(count(&msg, "OBX"), 12);
    let cda = msg.first("OBX").unwrap().field(5).component(5);
    assert_eq!(cda.raw().len(), 290_429 - "^TEXT^XML^Base64^".len());
    assert!(cda.value().starts_with("PD94bWwg")); // "<?xml "
    assert!(matches!(cda.value(), Cow::Borrowed(_)));
}

#[test]
fn ansforge_pam_consent() {
    let dir = "ansforge-hl7v2-exemples/Vague 2/Consentement_DMP_PAMFR/";
    for (file, id, zfa9) in [
        (
            "ConsentementConsultation_NonOppositionAlimentation.er7",
            "3975",
            "INO",
        ),
        (
            "NonConsentementConsultation_OppositionAlimentation.er7",
            "3977",
            "IO",
        ),
        (
            "NonRecueillieConsentementConsultation_NonRecueillieOppositionAlimentation.er7",
            "3979",
            "NA",
        ),
    ] {
        let msg = parse(&format!("{dir}{file}"));
        assert_eq!(msg.message_type().as_deref(), Some("ADT^A01"), "{file}");
        assert_eq!(msg.control_id().as_deref(), Some(id));
        assert_eq!(msg.version().as_deref(), Some("2.5"));
        assert_eq!(get(&msg, "MSH-12.3"), "2.11");
        assert_eq!(msg.segment_count(), 11); // trailing empty lines ignored
        assert_eq!(get(&msg, "PV1-7.2"), "Réault");
        assert_eq!(get(&msg, "PID-3(2).5"), "INS");
        assert_eq!(get(&msg, "ZFA-1"), "ACTIF");
        assert_eq!(get(&msg, "ZFA-9"), zfa9);
        assert_eq!(msg.first("ZFD").unwrap().field(5).value(), "INSI");
    }
}

/// `uuencoded_escaped.txt` is `uuencoded.txt` escaped as HL7 text, each LF written as
/// `\X0D\\X0A\` (CRLF): unescaping it gives the original with CRLF line ends. So the original's
/// LFs are turned into CRLFs before comparing (the files differ only there).
#[test]
fn hapi_uuencoded_escapes() {
    let dir = "hapi-hl7v2/hapi-test/src/test/resources/ca/uhn/hl7v2/parser/";
    let escaped = String::from_utf8(sample(&format!("{dir}uuencoded_escaped.txt"))).unwrap();
    let original = String::from_utf8(sample(&format!("{dir}uuencoded.txt"))).unwrap();
    assert!(!escaped.contains(['\r', '\n']));
    assert!(!original.contains('\r'));
    for seq in ["\\T\\", "\\E\\", "\\X0D\\\\X0A\\"] {
        assert!(escaped.contains(seq), "{seq}");
    }
    let d = Delimiters::STANDARD;
    let decoded = unescape(&escaped, &d);
    assert_eq!(decoded, original.replace('\n', "\r\n"));
    // And back.
    assert_eq!(unescape(&escape(&decoded, &d), &d), decoded);
}

/// Parse time of a 1.5 KB ORU^R01 with 10 OBX. Run with
/// `cargo test -p passerelle-plugin-sdk --release --test hl7 -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run in release"]
fn parse_speed() {
    let bytes = sample("ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-1.hl7");
    let rounds = 200_000;
    let start = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..rounds {
        let msg = Message::parse(std::hint::black_box(&bytes)).unwrap();
        n += msg.segment_count();
    }
    let parse = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let msg = Message::parse(std::hint::black_box(&bytes)).unwrap();
        for obx in msg.segments_named("OBX") {
            n += obx.field(5).value().len() + obx.field(3).component(1).value().len();
        }
        n += msg.get("PID-5.1").map_or(0, |v| v.len());
    }
    let read = start.elapsed() / rounds;
    println!(
        "{} bytes: parse {parse:?}, parse + read OBX-3/5 and PID-5: {read:?} ({n})",
        bytes.len()
    );
}

fn delimiter_set() -> impl Strategy<Value = Delimiters> {
    let symbols: Vec<char> = "|^~\\&#$%*@!+=:;?/".chars().collect();
    (Just(symbols).prop_shuffle(), any::<bool>()).prop_map(|(s, trunc)| Delimiters {
        field: s[0],
        component: s[1],
        repetition: s[2],
        escape: Some(s[3]),
        subcomponent: Some(s[4]),
        truncation: trunc.then_some(s[5]),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn escape_round_trips(s in any::<String>()) {
        let d = Delimiters::STANDARD;
        let e = escape(&s, &d);
        prop_assert_eq!(unescape(&e, &d), s.as_str());
    }

    #[test]
    fn escape_round_trips_hl7ish(
        s in "[|^~&\\\\#\r\nXFSTREHNPC.brsp0-9A-Fa-f é]{0,40}",
        d in delimiter_set(),
    ) {
        let e = escape(&s, &d);
        prop_assert!(!e.contains(d.field) && !e.contains(d.component) && !e.contains(d.repetition));
        prop_assert!(!e.contains(['\r', '\n']));
        prop_assert_eq!(unescape(&e, &d), s.as_str());
    }

    #[test]
    fn unescape_never_panics(s in "[|^~&\\\\\r\nXFSTREHNPCM.brspfinceiktsk+ -0-9A-Fa-f é]{0,60}") {
        let _ = unescape(&s, &Delimiters::STANDARD);
    }

    #[test]
    fn parse_never_panics_on_bytes(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"MSH|^~\\&|".to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(msg) = Message::parse(&bytes) {
            walk(&msg);
        }
        let _ = Message::parse(&tail);
    }

    #[test]
    fn parse_never_panics_on_hl7ish_text(
        tail in "([A-Z][A-Z0-9]{2}([|^~&\\\\#]{1,2}[A-Za-z0-9 .\\\\é\"]{0,6}){0,8}(\r|\n|\r\n|\\\\r\n){1,2}){0,10}",
        enc in "[|^~\\\\&#}]{0,6}",
    ) {
        for prefix in [format!("MSH|{enc}|"), "MSH|^~\\&|".to_owned()] {
            let text = format!("{prefix}{tail}");
            match Message::parse(text.as_bytes()) {
                Ok(msg) => {
                    walk(&msg);
                    for seg in msg.segments() {
                        let _ = msg.get(&seg.location(1, 1));
                        let _ = seg.get("3(2).2.2");
                    }
                }
                Err(e) => {
                    // Errors always say something useful.
                    prop_assert!(!e.to_string().is_empty());
                    if let ParseError::InvalidSegment { line, .. } = e {
                        prop_assert!(line >= 2);
                    }
                }
            }
        }
    }

    #[test]
    fn dates_never_panic(s in "[0-9+\\-.^ ]{0,24}") {
        if let Some(d) = datetime::to_fhir_datetime(&s, "+01:00") {
            prop_assert!(d.len() >= 4);
        }
        let _ = datetime::to_fhir_instant(&s, "Z");
        let _ = datetime::to_fhir_date(&s);
    }
}

/// Found by fuzzing the MLLP listener's header sniffing: with `\` as the field separator, a
/// literal `\r` at the end of a line (stripped as a sender's escaped CR) used to leave a
/// separator past the segment's end, and reading the last field panicked.
#[test]
fn backslash_field_separator_with_a_trailing_literal_cr() {
    let line = b"MSH\\,^~\\&|PFI-X|Organisatio^~\xff\xff\xff\xff4^LOTHDEW^Robert^L|\\r";
    let msg = Message::parse_with_charset(line, Some("8859/1")).expect("parses");
    let msh = msg.msh();
    let fields: Vec<String> = (0..8).map(|n| msh.field(n).raw().to_string()).collect();
    assert_eq!(fields[1], "\\");
    assert_eq!(fields[2], ",^~");
    assert!(fields[3].starts_with("&|PFI-X|Organisatio"), "{fields:?}");
    assert!(fields[4..].iter().all(String::is_empty), "{fields:?}");
}
