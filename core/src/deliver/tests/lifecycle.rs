//! The delivery workers: backoff, pause and resume, shutdown.

use super::*;

#[test]
fn backoff_grows_caps_and_jitters() {
    let p = RetryPolicy {
        max_attempts: 10,
        initial_backoff_ms: 100,
        max_backoff_ms: 5_000,
    };
    let ms = |d: Duration| d.as_millis() as u64;
    let ceilings: Vec<u64> = (0..8).map(|a| ms(backoff_ceiling(&p, a))).collect();
    assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    assert_eq!(ms(backoff_ceiling(&p, 200)), 5_000, "no overflow");

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for attempts in [0, 3, 6, 40] {
        let ceiling = ms(backoff_ceiling(&p, attempts));
        let samples: Vec<u64> = (0..2_000)
            .map(|_| ms(backoff_with(&mut rng, &p, attempts, None)))
            .collect();
        assert!(samples.iter().all(|&s| s >= ceiling / 2 && s <= ceiling));
        // Jitter: spread over the range, not a constant.
        assert!(samples.iter().any(|&s| s < ceiling * 6 / 10));
        assert!(samples.iter().any(|&s| s > ceiling * 9 / 10));
    }
    // Retry-After is a floor, not a cap.
    let d = backoff_with(&mut rng, &p, 0, Some(Duration::from_secs(30)));
    assert_eq!(d, Duration::from_secs(30));
    let d = backoff_with(&mut rng, &p, 6, Some(Duration::from_millis(1)));
    assert!(d >= Duration::from_millis(2_500));
    // The public function stays in range too.
    let d = ms(backoff(&p, 2, None));
    assert!((200..=400).contains(&d));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_deliveries_until_resume() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let out = dir.path().join("out");
    let d = start_files(&j, &out);
    assert!(d.pause("files"));
    assert!(!d.pause("nope"));
    commit(&j, "M1", &["A", "B"], COLLECTION, "files").await;
    d.wake("files");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(files_in(&out).is_empty(), "nothing delivered while paused");
    assert_eq!(j.pending_count("files").await.unwrap(), 2);
    let s = &d.status()[0];
    assert!(s.paused);
    assert_eq!(s.delivered_total, 0);

    assert!(d.resume("files"));
    wait_until_delivered(&j, "files", Duration::from_secs(5)).await;
    assert_eq!(files_in(&out).len(), 2);
    assert!(!d.status()[0].paused);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_and_leaves_the_rest_pending() {
    // Slow answers: a few deliveries are in flight when shutdown comes.
    let server = TestServer::start(|_, _| Reply {
        delay: Duration::from_millis(400),
        ..Reply::status(200)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions {
            concurrency: 4,
            ..WorkerOptions::default()
        },
    );
    let patients: Vec<String> = (0..20).map(|i| format!("P{i}")).collect();
    let patients: Vec<&str> = patients.iter().map(String::as_str).collect();
    let (_, ids) = commit(&j, "M1", &patients, COLLECTION, "hook").await;
    d.wake("hook");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.hits().is_empty() {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let t = Instant::now();
    d.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        t.elapsed()
    );
    let s = d.status()[0].clone();
    assert!(!s.running);
    assert_eq!(s.in_flight, 0);

    // What was in flight finished and was marked; the rest is pending, not lost nor stuck.
    let accepted = server.accepted();
    assert_eq!(
        accepted.len(),
        server.hits().len(),
        "every started delivery finished"
    );
    assert!(
        !accepted.is_empty() && accepted.len() < ids.len(),
        "{}",
        accepted.len()
    );
    assert_eq!(s.delivered_total, accepted.len() as u64);
    let pending = j.pending_count("hook").await.unwrap();
    assert_eq!(pending, (ids.len() - accepted.len()) as u64);
    let later = crate::clock::now_ms() + 3_600_000;
    let reclaimed = j.claim_due("hook", later, 100).await.unwrap();
    assert_eq!(
        reclaimed.len() as u64,
        pending,
        "released, not left in flight"
    );
    let accepted: HashSet<&str> = accepted.iter().map(String::as_str).collect();
    assert!(
        reclaimed
            .iter()
            .all(|i| !accepted.contains(i.record_id.as_str()))
    );
    assert!(reclaimed.iter().all(|i| i.attempts == 0));
}
