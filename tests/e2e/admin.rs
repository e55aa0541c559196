//! The admin API, metrics, retention and `passerelle messages` on a real daemon: MLLP in,
//! file destinations `a`/`b`, a webhook destination `hook` that refuses (HTTP 400: dead at
//! once) until told to accept.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::{Daemon, Setup, free_port};
use passerelle_tests::http::{Reply, request};
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::passerelle_bin;
use passerelle_tests::webhook::{Refusal, Webhook};
use serde_json::Value;

const TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const INS: &str = "279035121518989";

/// `[admin]` on a free port with the token file `tokens` (written here), plus `more`.
fn admin_setup(routes: &str, more: &str) -> (Setup, u16) {
    let port = free_port();
    let extra =
        format!("\n[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"tokens\"\n{more}");
    let setup = Setup::new(&extra, routes);
    std::fs::write(setup.path("tokens"), format!("# e2e\n{TOKEN}\n")).unwrap();
    (setup, port)
}

fn call(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
    request(port, method, path, token, "", body)
}

fn get(port: u16, path: &str) -> Value {
    let r = call(port, "GET", path, Some(TOKEN), "");
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn post(port: u16, path: &str, body: &str) -> Value {
    let r = call(port, "POST", path, Some(TOKEN), body);
    assert_eq!(r.status, 200, "POST {path}: {}", r.body);
    r.json()
}

/// Waits for the admin API (it starts after the sources).
fn wait_api(port: u16, daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "admin API not up\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn until(what: &str, daemon: &Daemon, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A 5-OBX ORU^R01 whose patient has an INS (NIR test namespace).
fn oru_with_ins(id: &str) -> String {
    oru(id, 7).replace(
        "PID|||IPP7^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI",
        &format!("PID|||{INS}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS~IPP7^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI"),
    )
}

/// The value of one sample line of a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

#[test]
fn admin_api_refuses_without_token_and_metrics_count_what_happened() {
    let (setup, port) = admin_setup(TO_A, "");
    let daemon = setup.start();
    wait_api(port, &daemon);

    assert_eq!(
        call(port, "GET", "/health", None, "").json()["status"],
        "ok"
    );
    for token in [None, Some("not-the-token-0123456789")] {
        let r = call(port, "GET", "/messages", token, "");
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.head.contains("www-authenticate: bearer"), "{}", r.head);
    }
    // A big body with a wrong token is answered at once, unread.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST /messages/replay HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong-0123456789abcdef\r\nContent-Length: 1000000000\r\n\r\n{").unwrap();
    let mut head = [0u8; 256];
    let n = s.read(&mut head).expect("answered before the body");
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 401"));

    // 5 good messages, 1 that is not HL7 (AR, stored as failed).
    const N: usize = 5;
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for i in 0..N {
        assert_eq!(
            msa(&client.send(&oru(&format!("MET{i}"), i as u32)).unwrap()).0,
            "AA"
        );
    }
    assert_eq!(msa(&client.send("this is not HL7").unwrap()).0, "AR");
    until("deliveries", &daemon, || {
        get(port, "/destinations")["destinations"][0]["queue_depth"] == 0
            && setup.delivered("a").len() >= N
    });
    let records = setup.delivered("a").len();

    let r = call(port, "GET", "/metrics", Some(TOKEN), "");
    assert_eq!(r.status, 200);
    let m = &r.body;
    let src = "source=\"lab-mllp\",plugin=\"hl7v2-lab\"";
    assert_eq!(
        sample(m, &format!("passerelle_messages_received_total{{{src}}}")),
        Some((N + 1) as f64),
        "{m}"
    );
    assert_eq!(
        sample(m, &format!("passerelle_messages_adapted_total{{{src}}}")),
        Some(N as f64)
    );
    assert_eq!(
        sample(m, &format!("passerelle_messages_failed_total{{{src}}}")),
        Some(1.0)
    );
    assert_eq!(
        sample(
            m,
            "passerelle_records_routed_total{route=\"all\",destination=\"a\"}"
        ),
        Some(records as f64)
    );
    assert_eq!(
        sample(m, "passerelle_deliveries_total{destination=\"a\"}"),
        Some(records as f64)
    );
    assert_eq!(
        sample(m, "passerelle_queue_depth{destination=\"a\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(
            m,
            "passerelle_ack_latency_seconds_count{source=\"lab-mllp\"}"
        ),
        Some((N + 1) as f64)
    );
    assert_eq!(
        sample(
            m,
            "passerelle_plugin_adapt_seconds_count{plugin=\"hl7v2-lab\"}"
        ),
        Some(N as f64)
    );
    assert_eq!(
        sample(m, "passerelle_journal_commit_seconds_count"),
        Some(N as f64)
    );
    assert_eq!(
        sample(m, "passerelle_messages{status=\"failed\"}"),
        Some(1.0)
    );
    assert_eq!(sample(m, "passerelle_route_reloads_total"), Some(0.0));
    assert_eq!(
        sample(m, "passerelle_plugin_reloads_total{plugin=\"hl7v2-lab\"}"),
        Some(0.0)
    );
    assert!(
        m.contains("# TYPE passerelle_ack_latency_seconds histogram"),
        "{m}"
    );

    // The status endpoints agree.
    let sources = get(port, "/sources");
    let mllp = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "lab-mllp")
        .unwrap()
        .clone();
    assert_eq!(
        (
            mllp["received"].as_u64(),
            mllp["adapted"].as_u64(),
            mllp["failed"].as_u64()
        ),
        (Some(N as u64 + 1), Some(N as u64), Some(1))
    );
    assert_eq!(get(port, "/ready")["status"], "ready");
    assert_eq!(get(port, "/routes")["routes"], 1);
    assert_eq!(get(port, "/plugins")["plugins"][0]["name"], "hl7v2-lab");
}

fn messages_cli(args: &[&str], env_token: bool) -> (bool, String, String) {
    let mut cmd = Command::new(passerelle_bin());
    cmd.arg("messages")
        .args(args)
        .env_remove("PASSERELLE_ADMIN_URL");
    if env_token {
        cmd.env("PASSERELLE_ADMIN_TOKEN", TOKEN);
    } else {
        cmd.env_remove("PASSERELLE_ADMIN_TOKEN");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn browser_replay_dead_letters_pause_and_the_messages_cli() {
    // Refuses with 400 (not retryable: dead at once) until it is up.
    let (receiver, hook) = Webhook::start_with(true, Refusal::BadRequest).unwrap();
    let routes = "[[route]]\nname = \"to-a\"\ndestinations = [\"a\"]\nmatch = { source = \"lab-mllp\" }\n\
                  [[route]]\nname = \"to-hook\"\ndestinations = [\"hook\"]\nmatch = { source = \"lab-http\" }\n";
    let more = format!(
        "\n[destinations.hook]\ntype = \"http\"\nurl = \"http://127.0.0.1:{hook}/hook\"\nmode = \"webhook\"\n"
    );
    let (setup, port) = admin_setup(routes, &more);
    let mut daemon = setup.start();
    wait_api(port, &daemon);
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();

    // --- search by INS and by status
    assert_eq!(msa(&client.send(&oru_with_ins("INS1")).unwrap()).0, "AA");
    assert_eq!(msa(&client.send(&oru("NOINS1", 3)).unwrap()).0, "AA");
    assert_eq!(msa(&client.send("MSH|^~\\&|broken").unwrap()).0, "AE");
    until("two delivered", &daemon, || {
        get(port, "/messages?status=delivered")["messages"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    let by_ins = get(port, &format!("/messages?ins={INS}"));
    let found = by_ins["messages"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{by_ins}");
    assert_eq!(found[0]["source_message_id"], "INS1");
    let ins_id = found[0]["id"].as_i64().unwrap();
    let failed = get(port, "/messages?status=failed");
    assert_eq!(failed["messages"].as_array().unwrap().len(), 1);
    assert!(
        get(port, "/messages?status=failed&source=lab-http")["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // --- show, with the attempts
    let shown = get(port, &format!("/messages/{ins_id}"));
    assert_eq!(shown["status"], "delivered");
    assert!(shown["content"]["data"].as_str().unwrap().contains(INS));
    let record = &shown["records"][0];
    assert_eq!(record["envelope"]["patient"]["ins"]["value"], INS);
    assert_eq!(record["bundle"]["resourceType"], "Bundle");
    assert_eq!(record["deliveries"][0]["destination"], "a");
    assert_eq!(
        record["deliveries"][0]["history"][0]["outcome"],
        "delivered"
    );

    // --- replay: the same records (duplicates in the journal) are delivered a second time,
    // and the file destination deduplicates them by record id (same files, rewritten).
    let files_before = setup.delivered("a");
    let history_of = |id: i64| -> Vec<String> {
        get(port, &format!("/messages/{id}"))["records"][0]["deliveries"][0]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap().to_string())
            .collect()
    };
    let replayed = post(port, &format!("/messages/{ins_id}/replay"), "");
    assert_eq!(replayed["outcome"], "accepted", "{replayed}");
    assert_eq!(replayed["new_records"], 0);
    assert!(replayed["duplicate_records"].as_u64().unwrap() >= 1);
    let copy = get(port, &format!("/messages/{}", replayed["message_id"]));
    assert_eq!(copy["peer"], format!("replay:{ins_id}"));
    assert!(
        copy["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["duplicate"] == true)
    );
    until("a second delivery attempt", &daemon, || {
        history_of(ins_id) == ["delivered", "requeued", "delivered"]
    });
    assert_eq!(
        setup.delivered("a"),
        files_before,
        "deduplicated by the destination"
    );
    let bulk = post(
        port,
        "/messages/replay",
        &format!("{{\"ins\": \"{INS}\", \"limit\": 1}}"),
    );
    assert_eq!(bulk["count"], 1);
    until("a third delivery attempt", &daemon, || {
        history_of(ins_id).len() == 5
    });
    assert_eq!(
        setup.delivered("a"),
        files_before,
        "deduplicated by the destination"
    );

    // --- dead letters: the hook refuses (400) → dead at once; retry once it accepts; discard
    let ingest = |id: &str| {
        let r = call(setup.http_port, "POST", "/ingest", None, &oru(id, 9));
        assert_eq!(r.status, 202, "{}", r.body);
        r.json()["message_id"].as_i64().unwrap()
    };
    let dead1 = ingest("HOOK1");
    let dead2 = ingest("HOOK2");
    let mut letters = Vec::new();
    until("dead letters", &daemon, || {
        letters = get(port, "/dead-letters?destination=hook")["dead_letters"]
            .as_array()
            .unwrap()
            .clone();
        letters.len() >= 2
    });
    assert_eq!(get(port, &format!("/messages/{dead1}"))["status"], "dead");
    let letter = |m: i64| {
        letters.iter().find(|d| d["message_id"] == m).unwrap()["outbox_id"]
            .as_i64()
            .unwrap()
    };
    receiver.down.store(false, Ordering::SeqCst);
    assert_eq!(
        post(port, &format!("/dead-letters/{}/retry", letter(dead1)), "")["state"],
        "pending"
    );
    until("retried entry delivered", &daemon, || {
        get(port, &format!("/messages/{dead1}"))["status"] == "delivered"
    });
    assert_eq!(
        post(
            port,
            &format!("/dead-letters/{}/discard", letter(dead2)),
            ""
        )["state"],
        "discarded"
    );
    assert_eq!(
        get(port, &format!("/messages/{dead2}"))["status"],
        "discarded"
    );
    assert_eq!(
        call(
            port,
            "POST",
            &format!("/dead-letters/{}/retry", letter(dead2)),
            Some(TOKEN),
            ""
        )
        .status,
        404
    );
    let history: Vec<String> = get(port, &format!("/messages/{dead1}"))["records"][0]["deliveries"]
        [0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(history, ["dead", "requeued", "delivered"]);

    // --- pause / resume
    post(port, "/destinations/a/pause", "");
    let before = setup.delivered("a").len();
    assert_eq!(msa(&client.send(&oru("PAUSED1", 4)).unwrap()).0, "AA");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        setup.delivered("a").len(),
        before,
        "paused: nothing delivered"
    );
    let a = get(port, "/destinations")["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "a")
        .unwrap()
        .clone();
    assert_eq!(
        (a["state"].as_str(), a["paused"].as_bool()),
        (Some("paused"), Some(true))
    );
    assert!(a["queue_depth"].as_u64().unwrap() >= 1);
    let queue = || {
        let text = call(port, "GET", "/metrics", Some(TOKEN), "").body;
        sample(&text, "passerelle_queue_depth{destination=\"a\"}").unwrap_or(-1.0)
    };
    let paused_depth = queue();
    assert_eq!(msa(&client.send(&oru("PAUSED2", 4)).unwrap()).0, "AA");
    until("the queue grows in /metrics while paused", &daemon, || {
        queue() > paused_depth
    });
    assert!(
        paused_depth >= 1.0,
        "queue depth while paused: {paused_depth}"
    );
    post(port, "/destinations/a/resume", "");
    until("delivered after resume", &daemon, || {
        setup.delivered("a").len() > before + 1
    });
    until("the queue drains in /metrics", &daemon, || queue() == 0.0);

    // --- the CLI against the API
    let api = format!("http://127.0.0.1:{port}");
    let (ok, out, err) = messages_cli(&["list", "--api", &api, "--status", "failed"], true);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("ID ") && out.contains("failed") && out.contains("(1 messages)"),
        "{out}"
    );
    let (ok, out, err) = messages_cli(&["show", "--api", &api, &ins_id.to_string()], true);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["id"], ins_id);
    let (ok, _, err) = messages_cli(&["list", "--api", &api], false);
    assert!(!ok && err.contains("401"), "{err}");

    // --- the CLI against the stopped daemon's journal
    assert!(
        daemon.terminate(Duration::from_secs(20)),
        "clean exit\n{}",
        daemon.logs()
    );
    let config = setup.config();
    let config = config.to_str().unwrap();
    let (ok, out, err) = messages_cli(&["list", "--config", config, "--ins", INS], false);
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.contains("INS1")).count(),
        3,
        "the original and two replays:\n{out}"
    );
    let (ok, out, err) = messages_cli(&["show", "--config", config, &ins_id.to_string()], false);
    assert!(ok, "{err}");
    let offline: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        offline["records"][0]["deliveries"][0]["history"][0]["outcome"],
        "delivered"
    );
    assert_eq!(offline["status"], shown["status"]);
    let (ok, _, err) = messages_cli(&["replay", "--config", config, &ins_id.to_string()], false);
    assert!(
        !ok && err.contains("replay needs the running daemon"),
        "{err}"
    );
}

#[test]
fn retention_prunes_old_delivered_messages_and_keeps_failed_ones() {
    let (setup, port) = admin_setup(TO_A, "\n[journal]\nretain_delivered = \"2s\"\n");
    let daemon = setup.start();
    wait_api(port, &daemon);
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for i in 0..3 {
        assert_eq!(
            msa(&client.send(&oru(&format!("RET{i}"), i)).unwrap()).0,
            "AA"
        );
    }
    assert_eq!(msa(&client.send("MSH|^~\\&|broken").unwrap()).0, "AE");
    until("delivered", &daemon, || {
        get(port, "/messages?status=delivered")["messages"]
            .as_array()
            .unwrap()
            .len()
            == 3
    });
    // Older than 2 s, then the next pass (every second) prunes them.
    until("pruned", &daemon, || {
        get(port, "/messages")["messages"].as_array().unwrap().len() == 1
    });
    let left = get(port, "/messages");
    assert_eq!(left["messages"][0]["status"], "failed");
    let db = rusqlite::Connection::open_with_flags(
        setup.path("data/journal.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (records, outbox): (i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM records), (SELECT COUNT(*) FROM outbox)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (records, outbox),
        (0, 0),
        "records and outbox entries go with their messages"
    );
    let m = call(port, "GET", "/metrics", Some(TOKEN), "").body;
    assert_eq!(
        sample(&m, "passerelle_journal_pruned_total"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        setup.delivered("a").len(),
        3,
        "pruning the journal leaves delivered files alone"
    );
}

#[test]
fn audit_log_records_reloads_and_operator_actions() {
    let (setup, port) = admin_setup(TO_A, "");
    // A named token: the audit log says who acted.
    std::fs::write(setup.path("tokens"), format!("ops-alice {TOKEN}\n")).unwrap();
    let daemon = setup.start();
    wait_api(port, &daemon);
    let log = setup.path("data/audit.jsonl");
    let entries = || -> Vec<Value> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    post(port, "/destinations/a/pause", "");
    post(port, "/destinations/a/resume", "");
    // The routes file changes on disk: applied, then rejected (unknown destination).
    std::fs::write(
        setup.path("routes.toml"),
        "[[route]]\nname = \"both\"\ndestinations = [\"a\", \"b\"]\n",
    )
    .unwrap();
    until("the reload", &daemon, || {
        entries().iter().any(|e| e["outcome"] == "applied")
    });
    std::fs::write(
        setup.path("routes.toml"),
        "[[route]]\nname = \"bad\"\ndestinations = [\"nowhere\"]\n",
    )
    .unwrap();
    until("the rejection", &daemon, || {
        entries().iter().any(|e| e["outcome"] == "rejected")
    });
    let got: Vec<(String, String, String)> = entries()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("actor"), s("action"), s("outcome"))
        })
        .collect();
    let want = [
        ("daemon", "daemon.start", "ok"),
        ("admin:ops-alice", "destination.pause", "ok"),
        ("admin:ops-alice", "destination.resume", "ok"),
        ("file-watcher", "routes.reload", "applied"),
        ("file-watcher", "routes.reload", "rejected"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(got, want);
    let rejected = &entries()[4];
    assert!(
        rejected["detail"].as_str().unwrap().contains("nowhere"),
        "{rejected}"
    );
    assert_eq!(passerelle::admin::audit::verify(&log).unwrap(), 5);
}
