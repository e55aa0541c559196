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

fn ids(items: &[OutboxItem]) -> Vec<String> {
    items.iter().map(|i| i.record_id.clone()).collect()
}

#[tokio::test]
async fn settings_are_wal_and_synchronous_full() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let s = j.settings().await.unwrap();
    assert_eq!(s.journal_mode.to_ascii_lowercase(), "wal");
    assert_eq!(s.synchronous, 2, "synchronous must be FULL");
    assert!(s.foreign_keys);
    assert!(s.busy_timeout_ms >= 1000);
    assert_eq!(s.schema_version, SCHEMA_VERSION);
}

#[tokio::test]
async fn committed_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let receipt = j
        .commit_message(adapted("M1", &["A", "B"], &[DEST, "archive"]))
        .await
        .unwrap();
    assert_eq!(receipt.new_records, 2);
    assert_eq!(receipt.duplicate_records, 0);
    assert_eq!(
        receipt.message_id.to_string(),
        receipt.message_id.0.to_string()
    );
    j.close().await;

    let j = open(&dir);
    let m = j
        .message(receipt.message_id)
        .await
        .unwrap()
        .expect("message kept");
    assert_eq!(m.source, "lab");
    assert_eq!(m.status, MessageStatus::Routed);
    assert_eq!(m.rules_version.as_deref(), Some("rules-7"));
    assert_eq!(m.payload, b"MSH|^~\\&|LAB|M1");
    assert_eq!(m.peer.as_deref(), Some("10.0.0.1:4242"));
    assert_eq!(m.records.len(), 2);
    assert_eq!(m.records[0].record.envelope.id, record_id("lab", "M1", 0));
    assert_eq!(
        m.records[1].record.bundle.get(),
        r#"{"resourceType":"Bundle"}"#
    );
    for r in &m.records {
        assert_eq!(r.outbox.len(), 2);
        assert!(r.outbox.iter().all(|o| o.state == DeliveryState::Pending));
    }
    assert_eq!(j.pending_count(DEST).await.unwrap(), 2);
    assert_eq!(j.pending_count("archive").await.unwrap(), 2);
    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].record.envelope.source_message_id, "M1");
    assert_eq!(
        j.records_for_message(receipt.message_id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(j.count_by_status().await.unwrap()["routed"], 1);

    // Dropping (not closing) also commits what was queued and releases the file.
    j.commit_message(adapted("M2", &["C"], &[DEST]))
        .await
        .unwrap();
    drop(j);
    let j = open(&dir);
    assert_eq!(j.pending_count(DEST).await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_concurrent_callers() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let n = 2_000;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let j = j.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                j.commit_message(adapted(&format!("G{i}"), &["A"], &[DEST]))
                    .await
            })
        })
        .collect();
    let mut message_ids = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.new_records, 1);
        message_ids.insert(r.message_id);
    }
    assert_eq!(message_ids.len(), n);
    let stats = j.stats();
    println!("{stats:?}");
    assert_eq!(stats.requests, n as u64);
    assert!(
        stats.transactions < n as u64 / 4,
        "group commit did not batch: {stats:?}"
    );
    assert!(stats.largest_batch > 1);
    assert_eq!(j.pending_count(DEST).await.unwrap(), n as u64);
    assert_eq!(j.count_by_status().await.unwrap()["routed"], n as u64);
}

#[tokio::test]
async fn resend_is_stored_but_not_delivered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let first = j
        .commit_message(adapted("M1", &["A", "B"], &[DEST, "archive"]))
        .await
        .unwrap();
    let second = j
        .commit_message(adapted("M1", &["A", "B"], &[DEST, "archive"]))
        .await
        .unwrap();
    assert_ne!(
        first.message_id, second.message_id,
        "a resend is a new message row"
    );
    assert_eq!((second.new_records, second.duplicate_records), (0, 2));
    assert_eq!(j.pending_count(DEST).await.unwrap(), 2);
    assert_eq!(j.pending_count("archive").await.unwrap(), 2);
    let view = j.message(second.message_id).await.unwrap().unwrap();
    assert!(
        view.records
            .iter()
            .all(|r| r.duplicate && r.outbox.len() == 2)
    );
    assert_eq!(j.count_by_status().await.unwrap()["routed"], 2);

    // A resend routed to a new destination adds only that destination.
    let third = j
        .commit_message(adapted("M1", &["A", "B"], &[DEST, "new-dest"]))
        .await
        .unwrap();
    assert_eq!(third.new_records, 0);
    assert_eq!(j.pending_count(DEST).await.unwrap(), 2);
    assert_eq!(j.pending_count("new-dest").await.unwrap(), 2);

    // Once everything is delivered, every message referring to the records is delivered,
    // and a later resend is delivered at once (nothing left to do).
    for d in [DEST, "archive", "new-dest"] {
        let items = j.claim_due(d, now_ms(), 10).await.unwrap();
        assert_eq!(items.len(), 2, "{d}");
        let ids: Vec<i64> = items.iter().map(|i| i.outbox_id).collect();
        j.mark_delivered(&ids, now_ms()).await.unwrap();
    }
    assert_eq!(j.count_by_status().await.unwrap()["delivered"], 3);
    let fourth = j
        .commit_message(adapted("M1", &["A", "B"], &[DEST]))
        .await
        .unwrap();
    let v = j.message(fourth.message_id).await.unwrap().unwrap();
    assert_eq!(v.status, MessageStatus::Delivered);
    assert_eq!(j.pending_count(DEST).await.unwrap(), 0);
}

#[tokio::test]
async fn reused_message_id_with_other_content_is_a_new_version_not_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let mut first = adapted("015", &["A"], &[DEST]);
    let mut second = adapted("015", &["A"], &[DEST]);
    // Same source and message id (as in the ANS samples: initial, replacement, deletion
    // all use MSH-10 = 015), other content.
    if let Outcome::Adapted { records, .. } = &mut second.outcome {
        records[0].record.envelope.status = "entered-in-error".into();
    }
    let r1 = j.commit_message(first.clone()).await.unwrap();
    let r2 = j.commit_message(second.clone()).await.unwrap();
    assert_eq!(
        (r1.new_records, r2.new_records, r2.duplicate_records),
        (1, 1, 0)
    );
    // Two deliveries queued, in order, the latest content in the record.
    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    assert_eq!(items.len(), 1, "per-patient order: one at a time");
    assert_eq!(items[0].record.envelope.status, "entered-in-error");
    j.mark_delivered(&[items[0].outbox_id], now_ms())
        .await
        .unwrap();
    assert_eq!(j.claim_due(DEST, now_ms(), 10).await.unwrap().len(), 1);
    // A resend of either is a duplicate once its content is the stored one.
    if let Outcome::Adapted { records, .. } = &mut first.outcome {
        records[0].record.envelope.received_at = "2030-01-01T00:00:00Z".into();
    }
    let r3 = j.commit_message(second).await.unwrap();
    assert_eq!((r3.new_records, r3.duplicate_records), (0, 1));
}

#[tokio::test]
async fn claims_keep_per_patient_order() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    // Records 1 and 2 for patient A, 3 for B (local id only).
    j.commit_message(adapted("M1", &["A", "A", "local:B"], &[DEST]))
        .await
        .unwrap();
    let (r1, r2, r3) = (
        record_id("lab", "M1", 0),
        record_id("lab", "M1", 1),
        record_id("lab", "M1", 2),
    );
    let now = now_ms();
    assert_eq!(j.next_due_at(DEST).await.unwrap(), Some(0));
    let first = j.claim_due(DEST, now, 10).await.unwrap();
    assert_eq!(ids(&first), vec![r1.clone(), r3.clone()]);
    assert_eq!(first[0].attempts, 0);
    assert_eq!(first[0].destination, DEST);

    // In flight: not handed out again, and record 2 is still blocked by record 1.
    assert!(j.claim_due(DEST, now, 10).await.unwrap().is_empty());
    assert_eq!(j.next_due_at(DEST).await.unwrap(), None);
    assert!(j.claim_due("other", now, 10).await.unwrap().is_empty());

    // Record 1 fails and backs off: nothing for A until then, B is done.
    let retry_at = now + 60_000;
    j.mark_failed(first[0].outbox_id, "503 Service Unavailable", retry_at)
        .await
        .unwrap();
    j.mark_delivered(&[first[1].outbox_id], now).await.unwrap();
    assert!(j.claim_due(DEST, now, 10).await.unwrap().is_empty());
    assert_eq!(j.next_due_at(DEST).await.unwrap(), Some(retry_at));
    assert_eq!(j.pending_count(DEST).await.unwrap(), 2);

    // Time passes: record 1 again (attempts counted), still not record 2.
    let again = j.claim_due(DEST, retry_at, 10).await.unwrap();
    assert_eq!(ids(&again), vec![r1.clone()]);
    assert_eq!(again[0].attempts, 1);
    j.mark_delivered(&[again[0].outbox_id], retry_at)
        .await
        .unwrap();

    let last = j.claim_due(DEST, retry_at, 10).await.unwrap();
    assert_eq!(ids(&last), vec![r2]);

    // Release (shutdown): handed out again by a later claim, state unchanged.
    j.release(&[last[0].outbox_id]).await;
    let released = j.claim_due(DEST, retry_at, 10).await.unwrap();
    assert_eq!(released[0].outbox_id, last[0].outbox_id);
    assert_eq!(released[0].attempts, 0);
    j.mark_delivered(&[released[0].outbox_id], retry_at)
        .await
        .unwrap();

    let attempts = j.attempts(first[0].outbox_id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "delivered"]);
    assert_eq!(
        attempts[0].error.as_deref(),
        Some("503 Service Unavailable")
    );
    assert_eq!(j.pending_count(DEST).await.unwrap(), 0);
    let counts = j.count_by_status().await.unwrap();
    assert_eq!(counts["delivered"], 1);
    assert_eq!(counts["routed"], 0);
    let _ = r3;
}

#[tokio::test]
async fn claims_are_oldest_first_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    for i in 0..5 {
        j.commit_message(adapted(&format!("M{i}"), &[&format!("P{i}")], &[DEST]))
            .await
            .unwrap();
    }
    let now = now_ms();
    let a = j.claim_due(DEST, now, 2).await.unwrap();
    let b = j.claim_due(DEST, now, 2).await.unwrap();
    let c = j.claim_due(DEST, now, 2).await.unwrap();
    let got: Vec<_> = a
        .iter()
        .chain(&b)
        .chain(&c)
        .map(|i| i.record.envelope.source_message_id.clone())
        .collect();
    assert_eq!(got, ["M0", "M1", "M2", "M3", "M4"]);
    assert!(j.claim_due(DEST, now, 2).await.unwrap().is_empty());
}

#[tokio::test]
async fn dead_letters_are_listed_with_their_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let receipt = j
        .commit_message(adapted("M1", &["A"], &[DEST, "archive"]))
        .await
        .unwrap();
    let now = now_ms();
    let item = j.claim_due(DEST, now, 10).await.unwrap().remove(0);
    j.mark_failed(item.outbox_id, "timeout", now).await.unwrap();
    let item = j.claim_due(DEST, now, 10).await.unwrap().remove(0);
    j.mark_dead(item.outbox_id, "400 invalid bundle")
        .await
        .unwrap();

    assert!(
        j.claim_due(DEST, now + 1_000_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(j.pending_count(DEST).await.unwrap(), 0);
    let dead = j.dead_letters(Some(DEST), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].outbox_id, item.outbox_id);
    assert_eq!(dead[0].message_id, receipt.message_id);
    assert_eq!(dead[0].attempts, 2);
    assert_eq!(dead[0].last_error.as_deref(), Some("400 invalid bundle"));
    assert_eq!(j.dead_letters(None, 10).await.unwrap(), dead);
    assert!(
        j.dead_letters(Some("archive"), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let attempts = j.attempts(item.outbox_id).await.unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "dead"]);
    assert_eq!(attempts[1].error.as_deref(), Some("400 invalid bundle"));

    let m = j.message(receipt.message_id).await.unwrap().unwrap();
    assert_eq!(m.status, MessageStatus::Dead);
    let states: Vec<_> = m.records[0].outbox.iter().map(|o| o.state).collect();
    assert_eq!(states, [DeliveryState::Dead, DeliveryState::Pending]);
    // Delivering the other destination does not hide the dead letter.
    let other = j.claim_due("archive", now, 10).await.unwrap();
    j.mark_delivered(&[other[0].outbox_id], now).await.unwrap();
    let counts = j.count_by_status().await.unwrap();
    assert_eq!(counts["dead"], 1);
    // Dead messages are kept by pruning.
    assert_eq!(j.prune_delivered(now_ms() + 1_000).await.unwrap(), 0);
}

#[tokio::test]
async fn failed_and_held_outcomes_are_stored_without_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let mut failed = adapted("F1", &[], &[]);
    failed.outcome = Outcome::Failed {
        plugin: Some("hl7-lab".into()),
        reason: "MSH-9 missing".into(),
    };
    let mut held = adapted("H1", &[], &[]);
    held.outcome = Outcome::Held {
        plugin: Some("hl7-lab".into()),
        reason: "plugin hl7-lab suspended".into(),
    };
    let f = j.commit_message(failed).await.unwrap();
    let h = j.commit_message(held).await.unwrap();
    assert_eq!((f.new_records, h.new_records), (0, 0));

    let fv = j.message(f.message_id).await.unwrap().unwrap();
    assert_eq!(fv.status, MessageStatus::Failed);
    assert_eq!(fv.error.as_deref(), Some("MSH-9 missing"));
    assert_eq!(fv.plugin.as_deref(), Some("hl7-lab"));
    assert!(fv.records.is_empty());
    let hv = j.message(h.message_id).await.unwrap().unwrap();
    assert_eq!(hv.status, MessageStatus::Held);
    assert_eq!(hv.error.as_deref(), Some("plugin hl7-lab suspended"));
    assert_eq!(hv.payload, b"MSH|^~\\&|LAB|H1");

    // An adapted message with a record no route matched: held, its routed record still goes.
    let mut partly = adapted("P1", &["A", "B"], &[DEST]);
    if let Outcome::Adapted { records, .. } = &mut partly.outcome {
        records[1].destinations.clear();
        records[1].route = None;
    }
    let p = j.commit_message(partly).await.unwrap();
    let pv = j.message(p.message_id).await.unwrap().unwrap();
    assert_eq!(pv.status, MessageStatus::Held);
    assert!(pv.records[1].held && pv.records[1].outbox.is_empty());
    assert_eq!(pv.records[0].outbox.len(), 1);

    assert_eq!(j.pending_count(DEST).await.unwrap(), 1);
    let counts = j.count_by_status().await.unwrap();
    assert_eq!(counts["failed"], 1);
    assert_eq!(counts["held"], 2);
    assert_eq!(j.prune_delivered(now_ms() + 1_000).await.unwrap(), 0);
    assert!(j.message(MessageId(9_999)).await.unwrap().is_none());
}

#[tokio::test]
async fn prune_removes_only_fully_delivered_messages() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let done = j
        .commit_message(adapted("D1", &["A"], &[DEST]))
        .await
        .unwrap();
    let waiting = j
        .commit_message(adapted("W1", &["B"], &[DEST]))
        .await
        .unwrap();
    let none = j.commit_message(adapted("N1", &[], &[DEST])).await.unwrap();
    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    j.mark_delivered(&[items[0].outbox_id], now_ms())
        .await
        .unwrap();
    j.release(&[items[1].outbox_id]).await;

    assert_eq!(
        j.prune_delivered(0).await.unwrap(),
        0,
        "cutoff before everything"
    );
    assert_eq!(j.prune_delivered(now_ms() + 1_000).await.unwrap(), 2);
    assert!(j.message(done.message_id).await.unwrap().is_none());
    assert!(j.message(none.message_id).await.unwrap().is_none());
    assert!(j.message(waiting.message_id).await.unwrap().is_some());
    assert!(j.attempts(items[0].outbox_id).await.unwrap().is_empty());
    assert_eq!(j.pending_count(DEST).await.unwrap(), 1);
    let counts = j.count_by_status().await.unwrap();
    assert_eq!(counts["delivered"], 0);
    assert_eq!(counts["routed"], 1);
}

#[tokio::test]
async fn a_full_disk_is_reported_as_such_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    j.commit_message(adapted("M0", &["A"], &[DEST]))
        .await
        .unwrap();
    // Cap the file at its current size: the next message does not fit.
    let pages: i64 = j
        .read(|c| {
            c.query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(|e| JournalError::sqlite("test", e))
        })
        .await
        .unwrap();
    j.exec_on_writer(&format!("PRAGMA max_page_count = {pages}"))
        .await
        .unwrap();
    // Incompressible (records are stored LZ4-compressed): 64 KiB of pseudo-random letters.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let big: String = (0..64 * 1024)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'a' + (seed % 26) as u8)
        })
        .collect();
    let mut m = adapted("BIG", &[], &[DEST]);
    if let Outcome::Adapted { records, .. } = &mut m.outcome {
        records.push(RoutedRecord {
            record: record_with_bundle("BIG", 0, "A", &format!(r#"{{"big":"{big}"}}"#)),
            route: None,
            destinations: vec![DEST.into()],
        });
    }
    let err = j.commit_message(m).await.unwrap_err();
    assert!(err.is_disk_full(), "{err:?}");
    assert!(matches!(err, JournalError::DiskFull { .. }));
    // The journal still works, and the failed message left nothing behind.
    assert_eq!(j.pending_count(DEST).await.unwrap(), 1);
    assert_eq!(j.count_by_status().await.unwrap()["routed"], 1);
    let stats = j.stats();
    assert!(stats.failed_transactions + stats.transactions >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    refuse_source_bad(&j).await;
    let n = 300;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let j = j.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut m = adapted(&format!("R{i}"), &["A"], &[DEST]);
                if i % 10 == 3 {
                    m.source = "bad".into();
                }
                barrier.wait().await;
                (i, j.commit_message(m).await)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            (i, Err(e)) => {
                assert_eq!(i % 10, 3, "{e}");
                assert!(matches!(e, JournalError::Sqlite { .. }), "{e:?}");
                assert!(e.to_string().contains("rejected by test"), "{e}");
            }
            (i, Ok(r)) => {
                assert_ne!(i % 10, 3);
                assert_eq!(r.new_records, 1);
                ok += 1;
            }
        }
    }
    assert_eq!(ok, 270);
    let stats = j.stats();
    assert_eq!(stats.failed_transactions, 0);
    assert!(stats.transactions < n as u64 / 4, "{stats:?}");
    assert_eq!(j.pending_count(DEST).await.unwrap(), 270);
    assert_eq!(j.count_by_status().await.unwrap()["routed"], 270);
}

#[tokio::test]
async fn closed_journal_refuses_requests() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let other = j.clone();
    j.close().await;
    let err = other
        .commit_message(adapted("M1", &["A"], &[DEST]))
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Closed), "{err:?}");
}

#[test]
fn patient_keys() {
    assert_eq!(patient_key(&record("M", 0, "123")), "ins:123");
    assert_eq!(
        patient_key(&record("M", 0, "local:9")),
        "local:urn:oid:1.2.3|9"
    );
    let r = record("M", 0, "none:");
    assert_eq!(patient_key(&r), format!("record:{}", r.envelope.id));
}

/// `cargo test -p passerelle --release --lib journal -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_group_commit_throughput() {
    const MESSAGES: usize = 50_000;
    const TASKS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let payload = "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F\r".repeat(30);
    let payload = &payload[..1500];
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","note":"{}"}}"#,
        "b".repeat(1200)
    );
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let j = j.clone();
            let payload = payload.to_string();
            let bundle = bundle.clone();
            tokio::spawn(async move {
                for i in (t..MESSAGES).step_by(TASKS) {
                    let smid = format!("B{i}");
                    let mut m = adapted(&smid, &[], &[]);
                    m.payload = payload.clone().into_bytes();
                    if let Outcome::Adapted { records, .. } = &mut m.outcome {
                        records.push(RoutedRecord {
                            record: record_with_bundle(
                                &smid,
                                0,
                                &format!("P{}", i % 5000),
                                &bundle,
                            ),
                            route: Some("all".into()),
                            destinations: vec![DEST.into()],
                        });
                    }
                    j.commit_message(m).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let stats = j.stats();
    println!(
        "journal bench: {MESSAGES} messages (1.5 KB payload + 1 record) from {TASKS} tasks in {:.2?}: {:.0} messages/s; {} transactions, {:.1} messages/transaction, largest batch {}",
        elapsed,
        MESSAGES as f64 / elapsed.as_secs_f64(),
        stats.transactions,
        stats.requests as f64 / stats.transactions as f64,
        stats.largest_batch,
    );
    assert_eq!(j.pending_count(DEST).await.unwrap(), MESSAGES as u64);

    // Delivery side: claim and mark everything, 200 at a time.
    let start = Instant::now();
    let mut delivered = 0;
    loop {
        let items = j.claim_due(DEST, now_ms(), 200).await.unwrap();
        if items.is_empty() {
            break;
        }
        let ids: Vec<i64> = items.iter().map(|i| i.outbox_id).collect();
        j.mark_delivered(&ids, now_ms()).await.unwrap();
        delivered += ids.len();
    }
    let elapsed = start.elapsed();
    println!(
        "journal bench: claimed and marked {delivered} entries in {elapsed:.2?}: {:.0} entries/s",
        delivered as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(delivered, MESSAGES);
}

/// Commits `adapted(smid, patients, [DEST])`, from `source`, with records of `kind`.
async fn commit_from(
    j: &Journal,
    source: &str,
    smid: &str,
    patients: &[&str],
    kind: &str,
) -> MessageId {
    let mut m = adapted(smid, patients, &[DEST]);
    m.source = source.into();
    if let Outcome::Adapted { records, .. } = &mut m.outcome {
        for r in records {
            r.record.envelope.kind = kind.into();
        }
    }
    j.commit_message(m).await.unwrap().message_id
}

#[tokio::test]
async fn search_filters_and_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let before = now_ms();
    let m1 = commit_from(&j, "lab", "S1", &["INS-A"], "lab-report").await;
    let m2 = commit_from(&j, "lab", "S2", &["INS-B", "INS-A"], "imaging-report").await;
    let m3 = commit_from(&j, "radio", "S3", &["local:42"], "imaging-report").await;
    let mut failed = adapted("F1", &[], &[]);
    failed.outcome = Outcome::Failed {
        plugin: Some("hl7-lab".into()),
        reason: "bad MSH".into(),
    };
    let m4 = j.commit_message(failed).await.unwrap().message_id;
    let search = |f: MessageFilter| {
        let j = j.clone();
        async move {
            j.search(f)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(search(MessageFilter::default()).await, [m4, m3, m2, m1]);
    let by_ins = MessageFilter {
        ins: Some("INS-A".into()),
        ..Default::default()
    };
    assert_eq!(search(by_ins).await, [m2, m1]);
    let by_status = MessageFilter {
        status: Some(MessageStatus::Failed),
        ..Default::default()
    };
    assert_eq!(search(by_status).await, [m4]);
    let by_source = MessageFilter {
        source: Some("radio".into()),
        ..Default::default()
    };
    assert_eq!(search(by_source).await, [m3]);
    let by_smid = MessageFilter {
        source_message_id: Some("S2".into()),
        ..Default::default()
    };
    assert_eq!(search(by_smid).await, [m2]);
    let by_kind = MessageFilter {
        kind: Some("imaging-report".into()),
        ..Default::default()
    };
    assert_eq!(search(by_kind).await, [m3, m2]);
    let combined = MessageFilter {
        kind: Some("imaging-report".into()),
        ins: Some("INS-A".into()),
        status: Some(MessageStatus::Routed),
        ..Default::default()
    };
    assert_eq!(search(combined).await, [m2]);
    let none = MessageFilter {
        ins: Some("INS-Z".into()),
        ..Default::default()
    };
    assert!(search(none).await.is_empty());
    // Time range on the stored time.
    let range = MessageFilter {
        since_ms: Some(before),
        until_ms: Some(now_ms() + 1),
        ..Default::default()
    };
    assert_eq!(search(range).await.len(), 4);
    let future = MessageFilter {
        since_ms: Some(now_ms() + 60_000),
        ..Default::default()
    };
    assert!(search(future).await.is_empty());
    // Keyset pagination.
    let page = |after: Option<MessageId>| MessageFilter {
        limit: 3,
        after,
        ..Default::default()
    };
    assert_eq!(search(page(None)).await, [m4, m3, m2]);
    assert_eq!(search(page(Some(m2))).await, [m1]);
    assert!(search(page(Some(m1))).await.is_empty());

    let s = j
        .search(MessageFilter {
            source_message_id: Some("S2".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        (s[0].records, s[0].status, s[0].source.as_str()),
        (2, MessageStatus::Routed, "lab")
    );
    assert_eq!(s[0].rules_version.as_deref(), Some("rules-7"));
    assert_eq!(s[0].payload_bytes, b"MSH|^~\\&|LAB|S2".len() as u64);
}

/// Commits one message to DEST and dead-letters its entry; returns (message, outbox id).
async fn dead_letter(j: &Journal, smid: &str) -> (MessageId, i64) {
    let m = j
        .commit_message(adapted(smid, &["A"], &[DEST]))
        .await
        .unwrap()
        .message_id;
    let item = j.claim_due(DEST, now_ms(), 10).await.unwrap().remove(0);
    j.mark_dead(item.outbox_id, "HTTP 400").await.unwrap();
    assert_eq!(
        j.message(m).await.unwrap().unwrap().status,
        MessageStatus::Dead
    );
    (m, item.outbox_id)
}

#[tokio::test]
async fn retry_dead_requeues_the_entry_and_reopens_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let (m, id) = dead_letter(&j, "R1").await;
    assert_eq!(j.dead_counts().await.unwrap()[DEST], 1);

    assert_eq!(j.retry_dead(id).await.unwrap().as_deref(), Some(DEST));
    assert_eq!(j.retry_dead(id).await.unwrap(), None, "not dead any more");
    assert_eq!(j.retry_dead(9_999).await.unwrap(), None);
    assert!(j.dead_counts().await.unwrap().is_empty());
    let view = j.message(m).await.unwrap().unwrap();
    assert_eq!(view.status, MessageStatus::Routed);
    let o = &view.records[0].outbox[0];
    assert_eq!(
        (o.state, o.attempts, o.finished_at_ms),
        (DeliveryState::Pending, 0, None)
    );
    assert_eq!(j.pending_count(DEST).await.unwrap(), 1);

    // Due at once, delivered normally; the attempts show the operator's action.
    let item = j.claim_due(DEST, now_ms(), 10).await.unwrap().remove(0);
    assert_eq!((item.outbox_id, item.attempts), (id, 0));
    j.mark_delivered(&[id], now_ms()).await.unwrap();
    assert_eq!(
        j.message(m).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    let outcomes: Vec<_> = j
        .attempts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["dead", "requeued", "delivered"]);
}

#[tokio::test]
async fn discard_dead_finishes_the_message_and_pruning_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let (m, id) = dead_letter(&j, "X1").await;
    let (kept, _) = dead_letter(&j, "X2").await;

    assert_eq!(j.discard_dead(id).await.unwrap().as_deref(), Some(DEST));
    assert_eq!(j.discard_dead(id).await.unwrap(), None);
    assert_eq!(
        j.retry_dead(id).await.unwrap(),
        None,
        "a discarded entry is not a dead letter"
    );
    let view = j.message(m).await.unwrap().unwrap();
    assert_eq!(view.status, MessageStatus::Discarded);
    assert_eq!(view.records[0].outbox[0].state, DeliveryState::Discarded);
    assert_eq!(j.dead_letters(Some(DEST), 10).await.unwrap().len(), 1);
    let counts = j.count_by_status().await.unwrap();
    assert_eq!((counts["discarded"], counts["dead"]), (1, 1));
    let outcomes: Vec<_> = j
        .attempts(id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["dead", "discarded"]);

    // Handled: pruned like a delivered message; the other dead letter is kept.
    assert_eq!(j.prune_delivered(now_ms() + 1_000).await.unwrap(), 1);
    assert!(j.message(m).await.unwrap().is_none());
    assert!(j.message(kept).await.unwrap().is_some());
}

#[tokio::test]
async fn a_reader_opens_the_file_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("journal.db");
    assert!(matches!(
        JournalReader::open(&path),
        Err(JournalError::Missing { .. })
    ));
    let j = Journal::open(&path).unwrap();
    let m = j
        .commit_message(adapted("RO1", &["INS-R"], &[DEST]))
        .await
        .unwrap()
        .message_id;
    j.clone().close().await;

    let reader = JournalReader::open(&path).unwrap();
    let found = reader
        .search(&MessageFilter {
            ins: Some("INS-R".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    let view = reader.message(m).unwrap().unwrap();
    assert_eq!(view.records.len(), 1);
    assert!(
        reader
            .attempts(view.records[0].outbox[0].outbox_id)
            .unwrap()
            .is_empty()
    );
    assert!(
        reader.conn.execute_batch("DELETE FROM messages").is_err(),
        "read-only"
    );
}

/// The in-memory pending count of every destination equals the `COUNT(*)` of the journal.
async fn assert_pending_counts_match(j: &Journal, destinations: &[&str]) {
    for d in destinations {
        assert_eq!(
            j.pending(d),
            j.pending_count(d).await.unwrap(),
            "in-memory pending count of {d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_counts_follow_commits_marks_and_operators_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let both = [DEST, "archive"];
    assert_eq!(j.pending(DEST), 0);
    j.commit_message(adapted("P1", &["A", "B"], &both))
        .await
        .unwrap();
    // A resend adds no outbox entry.
    j.commit_message(adapted("P1", &["A", "B"], &both))
        .await
        .unwrap();
    j.commit_message(adapted("P2", &["C"], &[DEST]))
        .await
        .unwrap();
    assert_eq!((j.pending(DEST), j.pending("archive")), (3, 2));
    assert_pending_counts_match(&j, &both).await;

    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    assert_eq!(items.len(), 3);
    j.mark_delivered(&[items[0].outbox_id], now_ms())
        .await
        .unwrap();
    // Marking twice changes nothing.
    j.mark_delivered(&[items[0].outbox_id], now_ms())
        .await
        .unwrap();
    j.mark_failed(items[1].outbox_id, "HTTP 503", 0)
        .await
        .unwrap();
    j.mark_dead(items[2].outbox_id, "HTTP 400").await.unwrap();
    assert_eq!(j.pending(DEST), 1);
    assert_pending_counts_match(&j, &both).await;
    j.retry_dead(items[2].outbox_id).await.unwrap();
    assert_eq!(j.pending(DEST), 2);
    assert_pending_counts_match(&j, &both).await;

    // A request that fails in its batch moves nothing.
    refuse_source_bad(&j).await;
    let mut bad = adapted("P3", &["D"], &[DEST]);
    bad.source = "bad".into();
    assert!(j.commit_message(bad).await.is_err());
    assert_eq!(j.pending(DEST), 2);
    drop(j);

    let j = open(&dir);
    assert_eq!((j.pending(DEST), j.pending("archive")), (2, 2));
    assert_pending_counts_match(&j, &both).await;
}

fn held_message(smid: &str) -> IngestedMessage {
    let mut m = adapted(smid, &[], &[]);
    m.outcome = Outcome::Held {
        plugin: Some("hl7-lab".into()),
        reason: "plugin hl7-lab is suspended".into(),
    };
    m
}

#[tokio::test]
async fn held_messages_are_resolved_in_place_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let h1 = j
        .commit_message(held_message("H1"))
        .await
        .unwrap()
        .message_id;
    let h2 = j
        .commit_message(held_message("H2"))
        .await
        .unwrap()
        .message_id;
    let h3 = j
        .commit_message(held_message("H3"))
        .await
        .unwrap()
        .message_id;
    assert_eq!(j.held_counts().await.unwrap()["hl7-lab"], 3);
    assert_eq!(
        j.held_messages("hl7-lab", MessageId(0), 10).await.unwrap(),
        [h1, h2, h3]
    );
    assert_eq!(
        j.held_messages("hl7-lab", h1, 1).await.unwrap(),
        [h2],
        "after, limit"
    );
    assert!(
        j.held_messages("other", MessageId(0), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Adapted: same id, records and outbox entries, status routed.
    let adapted_outcome = adapted("H1", &["A", "B"], &[DEST]).outcome;
    let r = j
        .resolve_held(h1, adapted_outcome.clone())
        .await
        .unwrap()
        .expect("was held");
    assert_eq!((r.message_id, r.new_records), (h1, 2));
    let v = j.message(h1).await.unwrap().unwrap();
    assert_eq!(v.status, MessageStatus::Routed);
    assert_eq!(v.source_message_id.as_deref(), Some("H1"));
    assert_eq!(v.records.len(), 2);
    assert_eq!(v.error, None);
    assert_eq!(j.pending(DEST), 2);
    // Twice: nothing happens.
    assert!(j.resolve_held(h1, adapted_outcome).await.unwrap().is_none());
    assert_eq!(j.pending(DEST), 2);

    // Failed.
    let failed = Outcome::Failed {
        plugin: Some("hl7-lab".into()),
        reason: "plugin hl7-lab trapped: panic".into(),
    };
    assert!(j.resolve_held(h2, failed).await.unwrap().is_some());
    let v = j.message(h2).await.unwrap().unwrap();
    assert_eq!(v.status, MessageStatus::Failed);
    assert_eq!(v.error.as_deref(), Some("plugin hl7-lab trapped: panic"));

    // An adapted message whose record matched no route is `held` but not resolvable.
    let unrouted = j
        .commit_message(adapted("U1", &["A"], &[]))
        .await
        .unwrap()
        .message_id;
    assert!(
        j.resolve_held(unrouted, adapted("U1", &["A"], &[DEST]).outcome)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        j.held_messages("hl7-lab", MessageId(0), 10).await.unwrap(),
        [h3]
    );
    let counts = j.count_by_status().await.unwrap();
    assert_eq!(
        (counts["held"], counts["routed"], counts["failed"]),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn max_size_caps_the_file_and_raising_it_lets_commits_through_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let j = Journal::open_with(
        &path,
        JournalOptions {
            max_size_mib: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let big = "x".repeat(200 * 1024);
    let mut stored = 0;
    let err = loop {
        let mut m = adapted(&format!("S{stored}"), &[], &[DEST]);
        m.payload = big.clone().into_bytes();
        match j.commit_message(m).await {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 20, "1 MiB cannot hold 20 payloads of 200 KiB");
    };
    assert!(err.is_disk_full(), "{err:?}");
    assert!(stored >= 2, "{stored}");
    // Space comes back (here: a larger cap): commits go through again.
    j.exec_on_writer("PRAGMA max_page_count = 100000")
        .await
        .unwrap();
    let mut m = adapted("AFTER", &[], &[DEST]);
    m.payload = big.into_bytes();
    j.commit_message(m).await.unwrap();
}

#[tokio::test]
async fn background_checkpoints_keep_up_and_the_wal_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let j = Journal::open_with(
        &path,
        JournalOptions {
            checkpoint: CheckpointTuning {
                interval: std::time::Duration::from_millis(5),
                reset_pages: 32,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let payload = "x".repeat(16 * 1024);
    for i in 0..300 {
        let mut m = adapted(&format!("S{i}"), &["P1"], &[DEST]);
        m.payload = payload.clone().into_bytes();
        j.commit_message(m).await.unwrap();
    }
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while j.stats().wal_rewinds == 0 && Instant::now() < deadline {
        let m = adapted("TICK", &["P1"], &[DEST]);
        j.commit_message(m).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(j.stats().wal_rewinds >= 1, "{:?}", j.stats());
    // The messages reached the database file itself (4.8 MB of payloads), not only the WAL,
    // and nothing was lost on the way.
    let db = std::fs::metadata(&path).unwrap().len();
    assert!(db > 4_000_000, "database file {db} bytes");
    let counts = j.count_by_status().await.unwrap();
    assert!(counts["routed"] >= 300, "{counts:?}");
    j.close().await;
    let reopened = Journal::open(&path).unwrap();
    assert_eq!(reopened.count_by_status().await.unwrap(), counts);
}

#[tokio::test]
async fn records_are_stored_compressed_and_text_rows_of_version_1_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"collection","entry":[{}]}}"#,
        vec![r#"{"resource":{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]}}}"#; 30].join(",")
    );
    let mut m = adapted("Z1", &[], &[DEST]);
    if let Outcome::Adapted { records, .. } = &mut m.outcome {
        for (position, patient) in ["A", "B"].into_iter().enumerate() {
            records.push(RoutedRecord {
                record: record_with_bundle("Z1", position as u32, patient, &bundle),
                route: None,
                destinations: vec![DEST.into()],
            });
        }
    }
    let receipt = j.commit_message(m).await.unwrap();
    let text_line = record_with_bundle("Z1", 1, "B", &bundle).to_json_line();
    let stored: Vec<(String, i64)> = j
        .read(|c| {
            c.prepare("SELECT typeof(json), length(json) FROM records ORDER BY rec")
                .and_then(|mut s| {
                    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(|e| JournalError::sqlite("test", e))
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for (kind, len) in &stored {
        assert_eq!(kind, "blob");
        assert!(
            (*len as usize) * 4 < text_line.len(),
            "{len} of {}",
            text_line.len()
        );
    }
    // A row as schema version 1 wrote it: the JSON line as text.
    j.exec_on_writer(&format!(
        "UPDATE records SET json = '{}' WHERE id = '{}'",
        text_line.replace('\'', "''"),
        record_id("lab", "Z1", 1)
    ))
    .await
    .unwrap();

    let view = j.message(receipt.message_id).await.unwrap().unwrap();
    let bundles: Vec<String> = view
        .records
        .iter()
        .map(|r| r.record.bundle.get().to_string())
        .collect();
    assert_eq!(bundles, [bundle.clone(), bundle.clone()]);
    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.record.bundle.get() == bundle));
    assert_eq!(items[1].record.to_json_line(), text_line);
}

#[tokio::test]
async fn an_unreadable_record_is_dead_lettered_and_does_not_block_its_destination() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    j.commit_message(adapted("M1", &["A", "B", "C"], &[DEST]))
        .await
        .unwrap();
    let bad_json = record_id("lab", "M1", 1);
    let bad_blob = record_id("lab", "M1", 2);
    // A row that is not JSON any more (edited by hand, or by an incompatible build), and a
    // compressed value that does not expand.
    j.exec_on_writer(&format!(
        "UPDATE records SET json = 'not json' WHERE id = '{bad_json}';
         UPDATE records SET json = x'00ffffff7f' WHERE id = '{bad_blob}';"
    ))
    .await
    .unwrap();

    let items = j.claim_due(DEST, now_ms(), 10).await.unwrap();
    assert_eq!(
        ids(&items),
        [record_id("lab", "M1", 0)],
        "the readable one is claimed"
    );
    let dead = j.dead_letters(Some(DEST), 10).await.unwrap();
    let mut dead: Vec<(String, String)> = dead
        .into_iter()
        .map(|d| (d.record_id, d.last_error.unwrap_or_default()))
        .collect();
    dead.sort();
    let mut expected = [bad_json, bad_blob];
    expected.sort();
    assert_eq!(dead.len(), 2, "{dead:?}");
    for ((id, error), want) in dead.iter().zip(&expected) {
        assert_eq!(id, want);
        assert!(error.contains(want.as_str()), "{error}");
    }
    // Dead letters are out of the queue: the next claim has nothing left to fail on.
    j.mark_delivered(&[items[0].outbox_id], now_ms())
        .await
        .unwrap();
    assert!(j.claim_due(DEST, now_ms(), 10).await.unwrap().is_empty());
    assert_eq!(j.pending_count(DEST).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_transaction_waits_for_more_writes_and_a_lone_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (j, wait) = open_with_long_wait(&dir);

    // Alone: committed at once.
    let started = Instant::now();
    j.commit_message(adapted("L1", &["A"], &[DEST]))
        .await
        .unwrap();
    assert!(started.elapsed() < wait / 2, "{:?}", started.elapsed());

    let commit_many = |prefix: &'static str, n: usize| -> Vec<_> {
        (0..n)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move {
                    j.commit_message(adapted(&format!("{prefix}{i}"), &["A"], &[DEST]))
                        .await
                })
            })
            .collect()
    };
    // Ten at once: the transaction holds several, so it waits; five more sent meanwhile join it.
    let first = commit_many("B", 10);
    tokio::time::sleep(wait / 10).await;
    let late = commit_many("C", 5);
    for t in first.into_iter().chain(late) {
        t.await.unwrap().unwrap();
    }
    let stats = j.stats();
    assert_eq!(stats.requests, 16, "{stats:?}");
    // The ten may have been taken as one then nine; the five joined the waiting transaction.
    assert!(stats.largest_batch >= 14, "{stats:?}");
    assert!(stats.transactions <= 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_that_fails_fails_alone_in_the_waiting_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (j, wait) = open_with_long_wait(&dir);
    refuse_source_bad(&j).await;
    let send = |name: String, bad: bool| {
        let j = j.clone();
        tokio::spawn(async move {
            let mut m = adapted(&name, &["A"], &[DEST]);
            if bad {
                m.source = "bad".into();
            }
            j.commit_message(m).await
        })
    };
    // Ten good ones open a waiting transaction (applied at once); the late ones join it while
    // it waits, one of them refused.
    let first: Vec<_> = (0..10).map(|i| send(format!("E{i}"), false)).collect();
    tokio::time::sleep(wait / 10).await;
    let late: Vec<_> = (0..5).map(|i| send(format!("L{i}"), i == 2)).collect();
    for t in first {
        assert_eq!(t.await.unwrap().unwrap().new_records, 1);
    }
    for (i, t) in late.into_iter().enumerate() {
        match t.await.unwrap() {
            Err(e) => {
                assert_eq!(i, 2, "{e}");
                assert!(e.to_string().contains("rejected by test"), "{e}");
            }
            Ok(r) => {
                assert_ne!(i, 2);
                assert_eq!(r.new_records, 1);
            }
        }
    }
    let stats = j.stats();
    assert_eq!(stats.failed_transactions, 0, "{stats:?}");
    assert!(stats.largest_batch >= 14, "{stats:?}");
    assert_eq!(j.pending_count(DEST).await.unwrap(), 14);
    assert_eq!(j.count_by_status().await.unwrap()["routed"], 14);
}
