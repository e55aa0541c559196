//! The hprim-sante adapter, built as a component and run in the sandbox: every HPRIM Santé file
//! (the public libHprim sample and `tests/data/hprim/`) adapts, its bundles validate against FHIR
//! R4 (external validator), its observations match its OBX records, and malformed files give
//! typed errors naming the record, never a trap.

use std::io::Write;
use std::path::{Path, PathBuf};

use passerelle::plugin::{AdaptOutput, Inbound, Plugin, PluginEngine, PluginError, Rejection};
use passerelle_tests::adapt;
use passerelle_tests::{files_under, repo, samples, validate_fhir_file};
use serde_json::Value;

const CONTENT_TYPE: &str = "application/x-hprim-sante";

fn plugin(engine: &PluginEngine) -> Plugin {
    adapt::load_plugin(
        engine,
        "hprim-sante",
        r#"{"loinc": {"GLY": "2345-7", "CREA": "2160-0", "K": "2823-3", "HB": "718-7"}}"#,
    )
}

/// A message as an inbox source with `charset` (or none) would hand it over.
fn inbound(payload: &[u8], charset: Option<&str>) -> Inbound {
    Inbound {
        source: "hprim-inbox".into(),
        charset: charset.map(str::to_string),
        ..adapt::inbound(payload, CONTENT_TYPE)
    }
}

fn data_dir() -> PathBuf {
    repo().join("tests/data/hprim")
}

/// Every valid HPRIM file: (label, bytes, source charset). `*.utf8.hpr` files are UTF-8 (their
/// source says so); the others use the plugin's default, ISO-8859-1, or carry a UTF-8 BOM.
fn valid_files() -> Vec<(String, Vec<u8>, Option<&'static str>)> {
    let mut paths: Vec<PathBuf> = files_under(&data_dir(), &[".hpr"])
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "malformed"))
        .collect();
    paths.push(samples().join("libhprim/extracted/HPRIMSParserTest_testHprim_2_1.hpr"));
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let charset = p
                .to_string_lossy()
                .ends_with(".utf8.hpr")
                .then_some("UTF-8");
            (label(&p), bytes, charset)
        })
        .collect()
}

fn label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// OBX records counted by a plain split: the field separator is the H line's second
/// character; a record is a line (CR, LF or CRLF) starting with `OBX` and the separator
/// (continuation lines start with `A`).
fn count_obx(bytes: &[u8]) -> usize {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\r' || *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let Some(sep) = lines.first().and_then(|h| h.get(1)) else {
        return 0;
    };
    let prefix = [b'O', b'B', b'X', *sep];
    lines.iter().filter(|l| l.starts_with(&prefix)).count()
}

/// The result observations of a record: those its DiagnosticReport lists as results.
fn results(bundle: &Value) -> Vec<&Value> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let report = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "DiagnosticReport")
        .expect("a DiagnosticReport");
    let refs: Vec<&str> = report["result"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    entries
        .iter()
        .filter(|e| e["fullUrl"].as_str().is_some_and(|u| refs.contains(&u)))
        .map(|e| &e["resource"])
        .collect()
}

fn adapt(plugin: &Plugin, label: &str, bytes: &[u8], charset: Option<&str>) -> AdaptOutput {
    plugin
        .adapt(&inbound(bytes, charset))
        .unwrap_or_else(|e| panic!("{label}: {e}"))
}

#[test]
fn every_hprim_file_adapts_and_validates() {
    let files = valid_files();
    assert!(files.len() >= 5, "only {} HPRIM files found", files.len());
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let dir = tempfile::tempdir().unwrap();
    let bundles_path = dir.path().join("bundles.ndjson");
    let mut out = std::fs::File::create(&bundles_path).unwrap();
    let mut count = 0;
    for (label, bytes, charset) in &files {
        let adapted = adapt(&plugin, label, bytes, *charset);
        assert!(!adapted.records.is_empty(), "{label}: no record");
        assert_eq!(adapted.message_type.as_deref(), Some("ORU"), "{label}");
        assert!(
            !adapted.source_message_id.starts_with("sha256:"),
            "{label}: the H record gives the message id"
        );
        let mut observations = 0;
        for record in &adapted.records {
            assert_eq!(record.envelope.kind, "lab-result", "{label}");
            assert_eq!(record.envelope.plugin.name, "hprim-sante", "{label}");
            let text = record.bundle.get();
            assert!(
                !text.contains('\u{fffd}') && !text.contains('Ã'),
                "{label}: accents decoded with the wrong charset"
            );
            let bundle: Value = serde_json::from_str(text).unwrap();
            observations += results(&bundle).len();
            writeln!(out, "{text}").unwrap();
            count += 1;
        }
        assert_eq!(
            observations,
            count_obx(bytes),
            "{label}: observations vs OBX records"
        );
    }
    out.flush().unwrap();
    drop(out);
    validate_fhir_file(&bundles_path, count);
}

#[test]
fn the_files_map_what_they_carry() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let read = |name: &str| std::fs::read(data_dir().join(name)).unwrap();

    // Several patients, CR line ends, `\^&~` delimiters, an INS tagged with its OID.
    let out = adapt(&plugin, "multi", &read("multi-patients-cr.hpr"), None);
    assert_eq!(out.source_message_id, "CASA:CLIR949.hpr@201911051814");
    let patients: Vec<&str> = out
        .records
        .iter()
        .map(|r| r.envelope.patient.local_ids[0].value.as_str())
        .collect();
    assert_eq!(patients, ["40012", "40013", "40013", "IPP777"]);
    let ins = out.records[1].envelope.patient.ins.as_ref().expect("INS");
    assert_eq!(ins.system, "urn:oid:1.2.250.1.213.1.4.10");
    assert_eq!(ins.value, "248017512312368");
    // The LOINC table reaches the routing codes.
    assert!(
        out.records[0]
            .envelope
            .codes
            .iter()
            .any(|c| c.code == "2823-3")
    );

    // ISO-8859-1 accents; UTF-8 accents when the source says UTF-8.
    let out = adapt(&plugin, "iso", &read("labo-iso8859-crlf.hpr"), None);
    assert!(out.records[0].bundle.get().contains("Vélizy-Villacoublay"));
    assert_eq!(
        out.records[0].envelope.event_time.as_deref(),
        Some("2024-04-25T07:45:00+02:00")
    );
    let out = adapt(
        &plugin,
        "utf8",
        &read("etoile-utf8-lf.utf8.hpr"),
        Some("UTF-8"),
    );
    assert!(out.records[0].bundle.get().contains("Françoise"));
    assert_eq!(out.records[0].envelope.status, "corrected");
    assert_eq!(out.records[1].envelope.status, "preliminary");

    // The same file twice: the same records (ids derive from the H record).
    let a = adapt(&plugin, "iso", &read("labo-iso8859-crlf.hpr"), None);
    let b = adapt(&plugin, "iso", &read("labo-iso8859-crlf.hpr"), None);
    for (x, y) in a.records.iter().zip(&b.records) {
        assert_eq!(x.envelope.id, y.envelope.id);
        assert_eq!(x.bundle.get(), y.bundle.get());
    }
}

/// (file under malformed/, source charset, location the error must give).
const MALFORMED: &[(&str, Option<&str>, &str)] = &[
    ("truncated.hpr", None, "line 5 (OBX)"),
    ("wrong-charset.hpr", Some("UTF-8"), "line 2 (P)"),
    ("no-header.hpr", None, "line 1 (P)"),
    ("bad-delimiters.hpr", None, "line 1 (H-2)"),
    ("obx-before-obr.hpr", None, "line 3 (OBX)"),
    ("obr-before-patient.hpr", None, "line 2 (OBR)"),
    ("no-patient-id.hpr", None, "line 2 (P-2)"),
    ("obx-without-code.hpr", None, "line 4 (OBX-3)"),
    ("bad-ins-key.hpr", None, "line 2 (P-4)"),
    ("record-after-end.hpr", None, "line 6 (OBX)"),
    ("second-header.hpr", None, "line 5 (H)"),
];

#[test]
fn malformed_files_give_typed_errors() {
    let dir = data_dir().join("malformed");
    let on_disk: Vec<String> = files_under(&dir, &[".hpr"])
        .iter()
        .map(|p| label(p))
        .collect();
    for name in &on_disk {
        assert!(
            MALFORMED.iter().any(|(n, _, _)| n == name),
            "{name}: add it to MALFORMED with its expected location"
        );
    }
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    for (name, charset, location) in MALFORMED {
        let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        match plugin.adapt(&inbound(&bytes, *charset)) {
            Err(PluginError::Rejected {
                rejection:
                    Rejection::Malformed {
                        location: l,
                        reason,
                    },
                ..
            }) => {
                assert_eq!(&l, location, "{name}: {reason}");
                assert!(!reason.is_empty(), "{name}");
            }
            Err(other) => panic!("{name}: expected a malformed rejection, got {other}"),
            Ok(out) => panic!("{name}: accepted ({} records)", out.records.len()),
        }
    }
    // The instance was never trapped: the next good file goes through.
    let good = std::fs::read(data_dir().join("labo-iso8859-crlf.hpr")).unwrap();
    assert_eq!(adapt(&plugin, "good", &good, None).records.len(), 2);
}

#[test]
fn garbage_is_rejected_not_trapped() {
    let engine = passerelle_tests::adapt::engine();
    let plugin = plugin(&engine);
    let good = std::fs::read(data_dir().join("labo-iso8859-crlf.hpr")).unwrap();
    let mut payloads: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\xff\xfe\x00H\x00|".to_vec(),
        b"H|~^\\&|".repeat(5000),
        good[..good.len() / 2].to_vec(),
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..40 {
        let mut b = good.clone();
        for _ in 0..8 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % b.len() as u64) as usize;
            b[i] = [b'|', b'~', b'^', b'\r', b'A', 0xe9, b'\\'][(seed >> 40) as usize % 7];
        }
        payloads.push(b);
    }
    for (i, p) in payloads.iter().enumerate() {
        match plugin.adapt(&inbound(p, None)) {
            Ok(_) | Err(PluginError::Rejected { .. }) => {}
            Err(other) => panic!("payload {i}: {other}"),
        }
    }
}
