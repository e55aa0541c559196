//! The read side: the message browser's search and the read-only reader.

use super::*;

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
