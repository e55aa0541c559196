//! The write path: durability, group commit, transactions that fail alone, size caps,
//! checkpoints and the commit wait.

use super::*;

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
    late_write_fails_alone(false, "rejected by test").await;
}

/// The same when the refusal is a constraint, which rolls back the whole optimistic
/// transaction (the message insert is `OR ROLLBACK` there): the writer starts over with
/// savepoints and only the refused write fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_write_that_fails_a_constraint_fails_alone_in_the_waiting_transaction() {
    late_write_fails_alone(true, "CHECK constraint failed").await;
}

async fn late_write_fails_alone(by_constraint: bool, error: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (j, wait) = open_with_long_wait(&dir);
    if by_constraint {
        refuse_source_bad_by_constraint(&j).await;
    } else {
        refuse_source_bad(&j).await;
    }
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
                assert!(e.to_string().contains(error), "{e}");
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
