mod commit;
mod messages;
mod outbox;
mod read;

use std::time::Instant;

use serde_json::value::RawValue;

use super::*;
use crate::record::{
    Confidentiality, Envelope, Identifier, Ins, Patient, PluginRef, Record, record_id,
};

const DEST: &str = "dmp";

fn record(source_message_id: &str, position: u32, patient: &str) -> Record {
    record_with_bundle(
        source_message_id,
        position,
        patient,
        r#"{"resourceType":"Bundle"}"#,
    )
}

fn record_with_bundle(smid: &str, position: u32, patient: &str, bundle: &str) -> Record {
    let patient = match patient.split_once(':') {
        Some(("local", v)) => Patient {
            ins: None,
            local_ids: vec![Identifier {
                system: "urn:oid:1.2.3".into(),
                value: v.into(),
            }],
        },
        Some(("none", _)) => Patient::default(),
        _ => Patient {
            ins: Some(Ins {
                system: crate::record::ins_system::NIR.into(),
                value: patient.into(),
            }),
            local_ids: vec![],
        },
    };
    Record {
        envelope: Envelope {
            id: record_id("lab", smid, position),
            kind: "lab-report".into(),
            source: "lab".into(),
            source_message_id: smid.into(),
            position,
            message_type: Some("ORU^R01".into()),
            patient,
            event_time: None,
            received_at: "2025-01-02T03:04:05Z".into(),
            status: "final".into(),
            confidentiality: Confidentiality {
                level: "N".into(),
                flags: vec![],
            },
            codes: vec![],
            plugin: PluginRef {
                name: "hl7-lab".into(),
                version: "1.0.0".into(),
            },
        },
        bundle: RawValue::from_string(bundle.to_string()).unwrap(),
    }
}

/// An adapted message whose records (patient per record) all go to `destinations`.
fn adapted(smid: &str, patients: &[&str], destinations: &[&str]) -> IngestedMessage {
    IngestedMessage {
        source: "lab".into(),
        content_type: "application/hl7-v2".into(),
        received_at: "2025-01-02T03:04:05Z".into(),
        payload: format!("MSH|^~\\&|LAB|{smid}").into_bytes(),
        peer: Some("10.0.0.1:4242".into()),
        outcome: Outcome::Adapted {
            plugin: "hl7-lab".into(),
            plugin_version: "1.0.0".into(),
            source_message_id: smid.into(),
            message_type: Some("ORU^R01".into()),
            rules_version: "rules-7".into(),
            records: patients
                .iter()
                .enumerate()
                .map(|(i, p)| RoutedRecord {
                    record: record(smid, i as u32, p),
                    route: Some("to-dmp".into()),
                    destinations: destinations.iter().map(|d| d.to_string()).collect(),
                })
                .collect(),
        },
    }
}

fn open(dir: &tempfile::TempDir) -> Journal {
    Journal::open(&dir.path().join("data").join("journal.db")).unwrap()
}

/// A journal whose busy transactions wait a long time (1 s, returned), so that a test of
/// the commit wait does not depend on the machine's speed.
fn open_with_long_wait(dir: &tempfile::TempDir) -> (Journal, Duration) {
    let wait = Duration::from_secs(1);
    let options = JournalOptions {
        commit_wait: wait,
        ..Default::default()
    };
    let j = Journal::open_with(&dir.path().join("journal.db"), options).unwrap();
    (j, wait)
}

/// From now on the writer refuses (with "rejected by test") every message whose source is
/// `bad`: a request that fails inside a batch.
async fn refuse_source_bad(j: &Journal) {
    j.exec_on_writer(
        "CREATE TEMP TRIGGER reject_bad BEFORE INSERT ON messages WHEN NEW.source = 'bad'
         BEGIN SELECT RAISE(ABORT, 'rejected by test'); END;",
    )
    .await
    .unwrap();
}

/// Like [`refuse_source_bad`], but through a CHECK constraint rather than `RAISE(ABORT)`: the
/// statement's conflict resolution then applies (`OR ROLLBACK` in the writer's optimistic
/// pass, which undoes the whole transaction). The error reads "CHECK constraint failed".
async fn refuse_source_bad_by_constraint(j: &Journal) {
    j.exec_on_writer(
        "CREATE TEMP TABLE refused (x INTEGER CHECK (x < 0));
         CREATE TEMP TRIGGER reject_bad BEFORE INSERT ON messages WHEN NEW.source = 'bad'
         BEGIN INSERT INTO refused VALUES (1); END;",
    )
    .await
    .unwrap();
}

fn ids(items: &[OutboxItem]) -> Vec<String> {
    items.iter().map(|i| i.record_id.clone()).collect()
}
