//! The file destination: atomic, idempotent files, temp files never left behind.

use super::*;

#[tokio::test]
async fn file_sink_writes_one_atomic_idempotent_file_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out").join("nested");
    let sink = Sink::from_config(
        "files",
        &DestinationConfig::File(FileDestination {
            retry: None,
            dir: out.clone(),
        }),
    )
    .unwrap();
    assert_eq!(sink.kind(), "file");
    let rec = record("M1", 0, "A", COLLECTION);
    let name = format!("{}.json", rec.envelope.id);

    // Written under a temporary dotfile name; the batch's sync puts it in place.
    sink.deliver(&rec).await.unwrap();
    let staged = files_in(&out);
    assert!(
        staged.len() == 1 && staged[0].starts_with(&format!(".{name}.")),
        "{staged:?}"
    );
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()], "no temp file left");
    let first = std::fs::read_to_string(out.join(&name)).unwrap();
    let back: Record = serde_json::from_str(&first).unwrap();
    assert_eq!(back.envelope, rec.envelope);
    assert_eq!(back.bundle.get(), rec.bundle.get());

    // Delivered again with the same content: nothing is written, the sync has nothing to move.
    sink.deliver(&rec).await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()]);
    sink.sync().await.unwrap();

    // A re-delivery over different content (e.g. a file torn by a crash) replaces it.
    std::fs::write(out.join(&name), "partial garbage").unwrap();
    sink.deliver(&rec).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join(&name)).unwrap(),
        "partial garbage",
        "not in place before the sync"
    );
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [name.as_str()]);
    assert_eq!(std::fs::read_to_string(out.join(&name)).unwrap(), first);

    // Something in the way of the folder: a retryable error, nothing written.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let err = FileSink::new(blocked.join("sub"))
        .deliver(&rec)
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");

    // The sync fails, retryably, when the folder is gone: the batch is then not marked
    // delivered.
    std::fs::remove_dir_all(&out).unwrap();
    let err = sink.sync().await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("cannot sync"),
        "{err:?}"
    );
}

/// A claim goes to the file sink in one call: each record gets its own outcome, a bad one does
/// not fail the others, and nothing is in place before the sync.
#[tokio::test]
async fn a_batch_of_file_deliveries_has_one_outcome_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sink = FileSink::new(out.clone());
    let good: Vec<Record> = (0..5)
        .map(|i| record(&format!("M{i}"), 0, "A", COLLECTION))
        .collect();
    let mut bad = record("M9", 0, "A", COLLECTION);
    bad.envelope.id = "../escape".into();
    let mut batch = good.clone();
    batch.insert(2, bad);

    let results = sink.deliver_all(batch).await;
    assert_eq!(results.len(), 6);
    for (i, result) in results.iter().enumerate() {
        if i == 2 {
            let err = result.as_ref().unwrap_err();
            assert!(
                !err.retryable && err.message.contains("file name"),
                "{err:?}"
            );
        } else {
            assert!(result.is_ok(), "record {i}: {result:?}");
        }
    }
    assert!(
        files_in(&out).iter().all(|f| f.starts_with('.')),
        "only temp files before the sync: {:?}",
        files_in(&out)
    );
    sink.sync().await.unwrap();
    let mut expected: Vec<String> = good
        .iter()
        .map(|r| format!("{}.json", r.envelope.id))
        .collect();
    expected.sort();
    assert_eq!(files_in(&out), expected);
    for rec in &good {
        let text = std::fs::read_to_string(out.join(format!("{}.json", rec.envelope.id))).unwrap();
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.envelope, rec.envelope);
    }

    // The folder cannot be made: every record of the batch fails, retryably.
    let blocked = dir.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    let results = FileSink::new(blocked.join("sub"))
        .deliver_all(good[..2].to_vec())
        .await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.retryable)),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_failed_file_sync_publishes_nothing_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sink = FileSink::new(out.clone());
    let (a, b) = (
        record("M1", 0, "A", COLLECTION),
        record("M2", 0, "B", COLLECTION),
    );
    sink.deliver(&a).await.unwrap();
    sink.deliver(&b).await.unwrap();
    // A folder where `b`'s final name should go: its rename fails, after `a`'s succeeded.
    std::fs::create_dir(out.join(format!("{}.json", b.envelope.id))).unwrap();
    let err = sink.sync().await.unwrap_err();
    assert!(
        err.retryable && err.message.contains("cannot rename"),
        "{err:?}"
    );
    let left = files_in(&out);
    assert!(
        left.iter().all(|n| !n.starts_with('.')),
        "temp files removed: {left:?}"
    );
    // Nothing is left staged: the next sync has nothing to do and succeeds.
    std::fs::remove_dir(out.join(format!("{}.json", b.envelope.id))).unwrap();
    sink.sync().await.unwrap();
    assert_eq!(files_in(&out), [format!("{}.json", a.envelope.id)]);
}

#[tokio::test]
async fn the_first_file_delivery_sweeps_temp_files_left_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let aged = |name: &str, age: Duration| {
        let f = std::fs::File::create(out.join(name)).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
    };
    let stale = ".0a1b.json.0123456789abcdef.tmp";
    let fresh = ".0a1c.json.fedcba9876543210.tmp"; // maybe another process's, in flight
    aged(stale, Duration::from_secs(2 * 3600));
    aged(fresh, Duration::from_secs(60));
    aged(".not-ours.tmp", Duration::from_secs(2 * 3600));
    aged("0a1d.json", Duration::from_secs(2 * 3600));

    let sink = FileSink::new(out.clone());
    let rec = record("M1", 0, "A", COLLECTION);
    sink.deliver(&rec).await.unwrap();
    sink.sync().await.unwrap();
    let mut expected = vec![
        ".not-ours.tmp".to_string(),
        "0a1d.json".to_string(),
        fresh.to_string(),
        format!("{}.json", rec.envelope.id),
    ];
    expected.sort();
    assert_eq!(files_in(&out), expected);
}

#[tokio::test]
async fn file_deliveries_never_synced_leave_no_temp_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sink = FileSink::new(out.clone());
    let clone = sink.clone();
    clone
        .deliver(&record("M1", 0, "A", COLLECTION))
        .await
        .unwrap();
    assert_eq!(files_in(&out).len(), 1, "staged");
    drop(clone);
    assert_eq!(files_in(&out).len(), 1, "a clone's drop keeps the batch");
    drop(sink);
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_destination_delivers_committed_records_when_woken() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    // The worker is idle (30 s poll) by now: only the wake-up makes it look.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mid, ids) = commit(&j, "M1", &["A", "B", "A"], COLLECTION, "files").await;
    assert!(d.wake("files"));
    assert!(!d.wake("nope"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;

    let mut expected: Vec<String> = ids.iter().map(|id| format!("{id}.json")).collect();
    expected.sort();
    assert_eq!(files_in(&out), expected);
    let m = j.message(mid).await.unwrap().unwrap();
    assert_eq!(m.status, MessageStatus::Delivered);
    let s = &d.status()[0];
    assert_eq!((s.name.as_str(), s.kind), ("files", "file"));
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (3, 0, 0));
    d.shutdown().await;
    assert!(!d.status()[0].running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_record_is_counted_in_the_destination_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    // Idle by now (see above): the row is damaged before the worker looks.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, ids) = commit(&j, "M1", &["A", "B"], COLLECTION, "files").await;
    j.exec_on_writer(&format!(
        "UPDATE records SET json = 'not json' WHERE id = '{}'",
        ids[1]
    ))
    .await
    .unwrap();
    assert!(d.wake("files"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;
    d.shutdown().await;

    assert_eq!(files_in(&out), vec![format!("{}.json", ids[0])]);
    let dead = j.dead_letters(Some("files"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record_id, ids[1]);
    let s = &d.status()[0];
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (1, 0, 1));
}
