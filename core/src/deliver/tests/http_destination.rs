//! The HTTP destinations: webhook and FHIR transaction modes, retries, dead letters.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_503_until_accepted_exactly_once() {
    let t0 = Instant::now();
    let server = TestServer::start(move |_, _| {
        if t0.elapsed() < Duration::from_millis(1500) {
            Reply {
                headers: vec![("retry-after", "0".into())],
                body: "busy".into(),
                ..Reply::status(503)
            }
        } else {
            Reply::status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&format!("{}/hook", server.url), HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let patients = ["A", "B", "C", "A", "D", "E", "B", "F", "G", "A"];
    let (mid, ids) = commit(&j, "M1", &patients, COLLECTION, "hook").await;
    d.wake("hook");
    wait_until_delivered(&j, "hook", Duration::from_secs(20)).await;

    // Every record accepted exactly once.
    let mut accepted = server.accepted();
    accepted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(accepted, expected);
    let hits = server.hits();
    assert!(
        hits.iter().any(|h| h.status == 503),
        "the 503 phase was seen"
    );
    for h in &hits {
        let id = h.record_id();
        assert_eq!(h.headers["idempotency-key"], id.as_str());
        assert_eq!(h.headers["content-type"], "application/json");
        assert_eq!(h.headers["authorization"], "Bearer secret");
        let rec: Record = serde_json::from_slice(&h.body).unwrap();
        assert_eq!(rec.envelope.id, id);
        let bundle: Value = serde_json::from_str(rec.bundle.get()).unwrap();
        assert_eq!(
            bundle["type"], "collection",
            "webhook sends the record as is"
        );
    }

    // The journal: delivered, with the failed attempts recorded.
    let m = j.message(mid).await.unwrap().unwrap();
    assert_eq!(m.status, MessageStatus::Delivered);
    let mut failed_attempts = 0;
    for r in &m.records {
        let o = &r.outbox[0];
        assert_eq!(o.state, DeliveryState::Delivered);
        let attempts = j.attempts(o.outbox_id).await.unwrap();
        assert_eq!(attempts.last().unwrap().outcome, "delivered");
        let tries = hits.iter().filter(|h| h.record_id() == r.record_id).count();
        assert_eq!(attempts.len(), tries, "one attempt recorded per request");
        for a in &attempts[..attempts.len() - 1] {
            assert_eq!(a.outcome, "failed");
            assert_eq!(
                a.error.as_deref(),
                Some("HTTP 503 Service Unavailable: busy")
            );
            failed_attempts += 1;
        }
    }
    assert!(failed_attempts > 0);
    let s = &d.status()[0];
    assert_eq!(s.kind, "http");
    assert_eq!(s.delivered_total, ids.len() as u64);
    assert_eq!(s.failed_total, failed_attempts as u64);
    assert!(s.last_error.as_deref().unwrap().contains("503"));
    assert!(s.last_error_at_ms.is_some());
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_transaction_mode_sends_idempotent_put_transactions() {
    let server = TestServer::start(|_, _| Reply::status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "fhir",
        http_dest(&server.url, HttpMode::FhirTransaction),
        WorkerOptions::default(),
    );
    let (_, converted) = commit(&j, "M1", &["A"], COLLECTION, "fhir").await;
    let already = r#"{"resourceType":"Bundle", "type":"transaction","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#;
    let (_, as_is) = commit(&j, "M2", &["B"], already, "fhir").await;
    d.wake("fhir");
    wait_until_delivered(&j, "fhir", Duration::from_secs(10)).await;
    d.shutdown().await;

    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    for h in &hits {
        assert_eq!(h.headers["content-type"], "application/fhir+json");
    }
    let sent = hits.iter().find(|h| h.record_id() == converted[0]).unwrap();
    let bundle: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        let res = &e["resource"];
        let id = res["id"].as_str().unwrap();
        assert_eq!(e["request"]["method"], "PUT");
        assert_eq!(
            e["request"]["url"],
            format!("{}/{id}", res["resourceType"].as_str().unwrap())
        );
        if let Some(full_url) = e["fullUrl"].as_str() {
            assert_eq!(
                full_url,
                format!("urn:uuid:{id}"),
                "fullUrl kept, id = its uuid"
            );
        }
    }
    assert_eq!(
        entries[0]["request"]["url"],
        "Patient/6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11"
    );
    assert_eq!(
        entries[1]["resource"]["subject"]["reference"],
        "urn:uuid:6f1d3c2a-0b7e-4a51-9a43-0e2f6a1b7c11",
        "references between entries still resolve"
    );
    assert_eq!(
        entries[1]["resource"]["id"],
        "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c22"
    );
    assert_eq!(
        entries[2]["request"]["url"],
        format!("Organization/{}-2", converted[0]),
        "no fullUrl and no id: a stable id from the record"
    );

    let sent = hits.iter().find(|h| h.record_id() == as_is[0]).unwrap();
    assert_eq!(
        sent.body,
        already.as_bytes(),
        "a transaction is sent byte for byte"
    );
}

#[test]
fn transaction_conversion_details() {
    // Already a transaction: borrowed, untouched.
    let tx = r#"{"resourceType":"Bundle","type":"transaction"}"#;
    assert!(matches!(to_transaction(tx, "r").unwrap(), std::borrow::Cow::Borrowed(s) if s == tx));
    // A document: resource ids are used when the fullUrl is not a urn:uuid; batch requests kept.
    let doc = r#"{"resourceType":"Bundle","type":"document","total":3,"entry":[
        {"fullUrl":"http://x/fhir/Composition/c1","resource":{"resourceType":"Composition","id":"c1"}},
        {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}"#;
    let out: Value = serde_json::from_str(&to_transaction(doc, "rid").unwrap()).unwrap();
    assert_eq!(out["type"], "transaction");
    assert!(out.get("total").is_none());
    assert_eq!(out["entry"][0]["request"]["url"], "Composition/c1");
    assert_eq!(out["entry"][0]["fullUrl"], "http://x/fhir/Composition/c1");
    assert_eq!(out["entry"][1]["request"]["method"], "POST");
    // Not a bundle, an entry without a resource: permanent errors.
    assert!(to_transaction(r#"{"resourceType":"Patient"}"#, "r").is_err());
    assert!(
        to_transaction(
            r#"{"resourceType":"Bundle","type":"collection","entry":[{}]}"#,
            "r"
        )
        .is_err()
    );
    assert!(to_transaction("not json", "r").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_is_dead_lettered_at_once() {
    let long_body = format!("invalid bundle: {}", "x".repeat(2_000));
    let server = TestServer::start(move |_, _| Reply {
        body: long_body.clone(),
        ..Reply::status(400)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "fhir",
        http_dest(&server.url, HttpMode::FhirTransaction),
        WorkerOptions::default(),
    );
    let (mid, ids) = commit(&j, "M1", &["A"], COLLECTION, "fhir").await;
    d.wake("fhir");
    wait_until_delivered(&j, "fhir", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.shutdown().await;

    assert_eq!(server.hits().len(), 1, "not retried");
    let dead = j.dead_letters(Some("fhir"), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record_id, ids[0]);
    assert_eq!(dead[0].attempts, 1);
    let err = dead[0].last_error.as_deref().unwrap();
    assert!(
        err.starts_with("HTTP 400 Bad Request: invalid bundle: xxx"),
        "{err}"
    );
    let body_part = err.strip_prefix("HTTP 400 Bad Request: ").unwrap();
    assert_eq!(body_part.len(), http::ERROR_BODY_BYTES);
    assert_eq!(
        j.message(mid).await.unwrap().unwrap().status,
        MessageStatus::Dead
    );
    let s = &d.status()[0];
    assert_eq!((s.delivered_total, s.failed_total, s.dead_total), (0, 0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_a_minimum_delay() {
    let server = TestServer::start(|_, _| Reply {
        headers: vec![("retry-after", "3".into())],
        ..Reply::status(429)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let before = crate::clock::now_ms();
    let (mid, _) = commit(&j, "M1", &["A"], COLLECTION, "hook").await;
    d.wake("hook");
    let deadline = Instant::now() + Duration::from_secs(5);
    while d.status()[0].failed_total == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.shutdown().await;
    let m = j.message(mid).await.unwrap().unwrap();
    let o = &m.records[0].outbox[0];
    assert_eq!((o.state, o.attempts), (DeliveryState::Pending, 1));
    assert!(
        o.next_attempt_at_ms >= before + 3_000,
        "policy backoff is ≤ 100 ms, Retry-After asked for 3 s"
    );
    assert_eq!(server.hits().len(), 1);
}

#[test]
fn answers_are_classified() {
    use hyper::StatusCode;
    let s = |c: u16| StatusCode::from_u16(c).unwrap();
    let ra = Some(Duration::from_secs(7));
    assert!(http::classify(s(200), None, b"").is_ok());
    assert!(http::classify(s(201), ra, b"x").is_ok());
    for code in [408, 425, 429, 500, 502, 503, 504] {
        let e = http::classify(s(code), ra, b"").unwrap_err();
        assert!(e.retryable, "{code}");
        assert_eq!(e.message, format!("HTTP {}", s(code)));
        let honoured = code == 429 || code == 503;
        assert_eq!(e.retry_after, if honoured { ra } else { None }, "{code}");
    }
    for code in [301, 400, 401, 403, 404, 409, 422] {
        let e = http::classify(s(code), ra, b" oops \n").unwrap_err();
        assert!(!e.retryable, "{code}");
        assert_eq!(e.retry_after, None);
        assert!(e.message.starts_with(&format!("HTTP {code}")));
        assert!(e.message.ends_with(": oops"));
    }
    let e = http::classify(s(400), None, &[b'y'; 600]).unwrap_err();
    assert_eq!(
        e.message.len(),
        "HTTP 400 Bad Request: ".len() + http::ERROR_BODY_BYTES
    );
}

#[tokio::test]
async fn invalid_http_destinations_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let bad = |url: &str, header: (&str, &str)| {
        let mut map = BTreeMap::new();
        let mut h = HttpDestination {
            retry: None,
            url: url.into(),
            mode: HttpMode::Webhook,
            timeout_ms: 1_000,
            headers: BTreeMap::new(),
        };
        h.headers.insert(header.0.into(), header.1.into());
        map.insert("x".to_string(), DestinationConfig::Http(h));
        Deliveries::start(&backend(&j), &map, &DeliveryDefaults::default()).unwrap_err()
    };
    assert!(
        bad("https://fhir.example/", ("a", "b"))
            .reason
            .contains("https")
    );
    assert!(bad("fhir.example/x", ("a", "b")).reason.contains("http://"));
    assert!(
        bad("http://fhir.example/", ("bad name", "b"))
            .reason
            .contains("header")
    );
    assert_eq!(bad("http://fhir.example/", ("a", "b\n")).destination, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_patient_order_holds_across_a_retry() {
    // The first request for the patient's first record fails once.
    let server = TestServer::start(|_, before| {
        if before.is_empty() {
            Reply::status(503)
        } else {
            Reply::status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let j = open(&dir);
    let d = start(
        &j,
        "hook",
        http_dest(&server.url, HttpMode::Webhook),
        WorkerOptions::default(),
    );
    let (_, ids) = commit(&j, "M1", &["A", "A"], COLLECTION, "hook").await;
    d.wake("hook");
    wait_until_delivered(&j, "hook", Duration::from_secs(10)).await;
    d.shutdown().await;

    let seen: Vec<(String, u16)> = server
        .hits()
        .iter()
        .map(|h| (h.record_id(), h.status))
        .collect();
    assert_eq!(
        seen,
        [
            (ids[0].clone(), 503),
            (ids[0].clone(), 200),
            (ids[1].clone(), 200)
        ]
    );
}
