//! What is stored for a message: resends and new versions, outcomes without records, held
//! messages, the records' encoding, the delivery-order key.

use super::*;

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
