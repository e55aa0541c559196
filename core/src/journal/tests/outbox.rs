//! The delivery side: claims, dead letters and operator actions, pruning, pending counts.

use super::*;

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
