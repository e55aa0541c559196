//! A real HL7 client (`mllp_send`, PyPI `hl7`) sends every ORU^R01 sample to the real daemon:
//! each gets `AA` with the right MSA-2, and the file destination holds their records. A
//! malformed message gets `AE` on a connection that stays usable, and is stored as failed.

use std::process::Command;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::{files_under, samples, tools_required};

const ROUTE_ALL_TO_A: &str = r#"
[[route]]
name = "all"
destinations = ["a"]
"#;

/// ORU^R01 sample files (one message per file).
fn oru_samples() -> Vec<std::path::PathBuf> {
    files_under(&samples(), &[".hl7", ".er7"])
        .into_iter()
        .filter(|p| {
            let text = std::fs::read(p).unwrap_or_default();
            let text = String::from_utf8_lossy(&text);
            text.matches("MSH|").count() == 1 && text.contains("ORU^R01")
        })
        .collect()
}

fn control_id(path: &std::path::Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let msh = text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    msh.split('|').nth(9).unwrap_or("").to_string()
}

fn mllp_send_available() -> bool {
    Command::new("mllp_send")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn every_oru_sample_is_acked_and_delivered_via_mllp_send() {
    if !mllp_send_available() {
        assert!(
            !tools_required(),
            "PASSERELLE_REQUIRE_TOOLS is set but mllp_send is not installed"
        );
        eprintln!("SKIPPED: mllp_send (pip install hl7) is not installed");
        return;
    }
    let setup = Setup::new("", ROUTE_ALL_TO_A);
    let daemon = setup.start();
    let files = oru_samples();
    assert!(
        files.len() >= 8,
        "expected the ORU^R01 samples, found {}",
        files.len()
    );
    let copies = tempfile::tempdir().unwrap();
    for file in &files {
        // `mllp_send --loose` splits the file at each `MSH|^~\&|`, turns LF/CRLF into CR as HL7
        // wants, frames and sends each message, and prints each ACK. It would send a leading BOM
        // as a message of its own, so it gets a copy without the BOM.
        let bytes = std::fs::read(file).unwrap();
        let copy = copies.path().join(file.file_name().unwrap());
        std::fs::write(&copy, bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes)).unwrap();
        let out = Command::new("mllp_send")
            .args([
                "--loose",
                "--file",
                &copy.to_string_lossy(),
                "--port",
                &setup.mllp_port.to_string(),
                "127.0.0.1",
            ])
            .output()
            .expect("run mllp_send");
        let ack = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "mllp_send failed on {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(ack.matches("MSA|").count(), 1, "one ACK per file: {ack}");
        let (code, control) = msa(&ack);
        assert_eq!(code, "AA", "{}: {ack}\n{}", file.display(), daemon.logs());
        assert_eq!(
            control,
            control_id(file),
            "{}: MSA-2 must echo MSH-10",
            file.display()
        );
    }
    // Every message produced at least one record, and its records reach the file destination.
    // (Records are named by id; the ANS initial / replacement / deletion samples reuse MSH-10
    // `015`, so they are versions of the same records: the file holds the latest.)
    let wanted: std::collections::HashSet<String> = files.iter().map(|f| control_id(f)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = std::collections::HashSet::new();
    while Instant::now() < deadline {
        seen.clear();
        for name in setup.delivered("a") {
            let text = std::fs::read_to_string(setup.path(&format!("data/out/a/{name}"))).unwrap();
            let record: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                record["envelope"]["id"]
                    .as_str()
                    .map(|id| format!("{id}.json")),
                Some(name.clone())
            );
            assert_eq!(record["bundle"]["resourceType"], "Bundle");
            seen.insert(
                record["envelope"]["source_message_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        }
        if wanted.is_subset(&seen) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let missing: Vec<_> = wanted.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "no record delivered for {missing:?}\n{}",
        daemon.logs()
    );
    // Nothing is left undelivered in the journal (replacements included).
    let db = rusqlite::Connection::open_with_flags(
        setup.path("data/journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE state != 'delivered'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} deliveries still pending"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let failed: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM messages WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0);
}

#[test]
fn malformed_message_gets_ae_and_the_connection_stays_open() {
    let setup = Setup::new("", ROUTE_ALL_TO_A);
    let daemon = setup.start();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    // An ORU^R01 without any OBR: the adapter rejects it.
    let bad =
        "MSH|^~\\&|LAB|HOSP|P|D|20240131123000||ORU^R01|BAD1|P|2.5\rPID|||IPP1^^^HOSP^PI||DOE^J";
    let ack = client.send(bad).unwrap();
    let (code, control) = msa(&ack);
    assert_eq!(code, "AE", "{ack}\n{}", daemon.logs());
    assert_eq!(control, "BAD1");
    assert!(
        ack.contains("\rERR|") || ack.contains("\nERR|"),
        "an ERR segment names the problem: {ack}"
    );
    // Same connection, a good message.
    let ack = client.send(&oru("GOOD1", 1)).unwrap();
    assert_eq!(msa(&ack), ("AA".to_string(), "GOOD1".to_string()), "{ack}");
    // Not HL7 at all: AR.
    let ack = client.send("hello, this is not HL7").unwrap();
    assert_eq!(msa(&ack).0, "AR", "{ack}");
    // The journal shows the malformed one as failed, with the reason.
    let journal = setup.path("data/journal.db");
    let db =
        rusqlite::Connection::open_with_flags(&journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let (status, error): (String, String) = db
        .query_row(
            "SELECT status, COALESCE(error, '') FROM messages WHERE payload LIKE '%BAD1%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "failed");
    assert!(
        error.contains("OBR"),
        "the stored reason names the problem: {error}"
    );
}
