//! Scale-out on NATS JetStream (opt-in: `PASSERELLE_NATS_TESTS=1`, see support/nats.rs): two
//! Passerelle nodes share a three-server JetStream cluster with R3 streams. During a stream of
//! messages sent to both nodes, one Passerelle node and then one NATS server are killed with
//! SIGKILL; the senders fail over to the surviving node as HL7 senders do. At the end every
//! ACKed message is at both destinations, the shared file destination got no record twice,
//! and the HTTP destination's repeats (same Idempotency-Key) are counted.
//!
//! `PASSERELLE_NATS_MESSAGES` (default 20,000).

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::{Setup, http_get, logs_in, records_by_message};
use passerelle_tests::nats;
use passerelle_tests::rng::env_usize;
use passerelle_tests::senders::{self, SendPlan, SendStats};
use passerelle_tests::tally::Tally;
use passerelle_tests::watch::WriteCounter;
use passerelle_tests::webhook::Webhook;

const ROUTES: &str = "[[route]]\nname = \"all\"\ndestinations = [\"shared\", \"hook\"]\n";

fn node_config(node: &str, urls: &[String], out: &Path, hook_port: u16) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        r#"
[journal.jetstream]
urls = [{urls}]
replicas = 3
node = "{node}"
ack_wait_ms = 3000

[destinations.shared]
type = "file"
dir = "{out}"

[destinations.hook]
type = "http"
url = "http://127.0.0.1:{hook_port}/hook"
mode = "webhook"
"#,
        urls = urls.join(", "),
        out = out.display(),
    )
}

fn acked(stats: &[&SendStats]) -> usize {
    stats.iter().map(|s| s.acked()).sum()
}

#[test]
fn two_nodes_lose_no_acked_message_when_a_node_and_a_nats_server_die() {
    if !nats::enabled() {
        return;
    }
    let messages = env_usize("PASSERELLE_NATS_MESSAGES", 20_000);
    let mut cluster = nats::Cluster::start(3);
    let out = tempfile::tempdir().unwrap();
    let (hook, hook_port) = Webhook::start(false).unwrap();
    let urls = cluster.urls();
    let a = Setup::new(&node_config("a", &urls, out.path(), hook_port), ROUTES);
    let b = Setup::new(&node_config("b", &urls, out.path(), hook_port), ROUTES);
    let writes = WriteCounter::watch(out.path()).unwrap();
    let started = Instant::now();
    let mut node_a = a.start();
    let mut node_b = b.start();
    eprintln!(
        "scale-out: 3 NATS servers and 2 nodes up in {:?}",
        started.elapsed()
    );

    let ids: Vec<String> = (0..messages).map(|i| format!("N{i:07}")).collect();
    let deadline = Instant::now() + Duration::from_secs(240 + messages as u64 / 50);
    let sending = Instant::now();
    let (to_a, handles_a) = senders::spawn(SendPlan {
        port: a.mllp_port,
        fallback: Some(b.mllp_port),
        ids: ids.iter().step_by(2).cloned().collect(),
        connections: 2,
        rate: None,
        deadline,
    });
    let (to_b, handles_b) = senders::spawn(SendPlan {
        port: b.mllp_port,
        fallback: Some(a.mllp_port),
        ids: ids.iter().skip(1).step_by(2).cloned().collect(),
        connections: 2,
        rate: None,
        deadline,
    });
    let wait_acked = |n: usize| {
        while acked(&[&to_a, &to_b]) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_acked(messages * 3 / 10);
    node_a.kill9();
    eprintln!(
        "scale-out: node a killed at {} ACKed",
        acked(&[&to_a, &to_b])
    );
    wait_acked(messages * 6 / 10);
    cluster.kill(1);
    eprintln!(
        "scale-out: NATS server n2 killed at {} ACKed",
        acked(&[&to_a, &to_b])
    );
    for h in handles_a.into_iter().chain(handles_b) {
        h.join().unwrap();
    }
    let ack_phase = sending.elapsed();

    let mut acked_ids: HashSet<String> = to_a.acked.lock().unwrap().clone();
    acked_ids.extend(to_b.acked.lock().unwrap().iter().cloned());
    // Deliveries catch up (node a's claimed entries come back after ack_wait).
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    let mut by_message = records_by_message(out.path());
    while Instant::now() < drain_deadline
        && (acked_ids.iter().any(|id| !by_message.contains_key(id))
            || hook.distinct() < by_message.len())
    {
        std::thread::sleep(Duration::from_millis(250));
        by_message = records_by_message(out.path());
    }
    let drained_in = sending.elapsed();
    let before_stop = records_by_message(out.path());
    let missing: Vec<&String> = acked_ids
        .iter()
        .filter(|id| !before_stop.contains_key(*id))
        .take(5)
        .collect();
    eprintln!(
        "scale-out: {} of {} delivered before SIGTERM (missing e.g. {missing:?}), http {}",
        before_stop.len(),
        acked_ids.len(),
        hook.distinct()
    );
    let jetstream = cluster.jetstream_state();
    let stopped = node_b.terminate(Duration::from_secs(30));
    assert!(
        stopped,
        "node b exits cleanly on SIGTERM\n{}\n{}\n{jetstream}",
        node_b.logs(),
        cluster.logs()
    );
    std::thread::sleep(Duration::from_millis(300));
    let (writes, overflowed) = writes.finish();

    let http = hook.accepted();
    let Tally {
        lost,
        split,
        rewritten,
        files,
        http_lost,
        http_again,
    } = Tally::new(&acked_ids, &by_message, &writes, &http);
    let resends = to_a.resends.load(Ordering::SeqCst) + to_b.resends.load(Ordering::SeqCst);
    eprintln!(
        "scale-out result: messages={messages} acked={} files={files} lost={} duplicate_files={} \
         file_rewrites={} http_records={} http_lost={http_lost} http_redeliveries={http_again} \
         sender_resends={resends} ack_phase={:.1}s ({:.0} msg/s) all_delivered_after={:.1}s",
        acked_ids.len(),
        lost.len(),
        split.len(),
        rewritten.len(),
        http.len(),
        ack_phase.as_secs_f64(),
        acked_ids.len() as f64 / ack_phase.as_secs_f64(),
        drained_in.as_secs_f64(),
    );
    let context = || {
        format!(
            "node a:\n{}\nnode b:\n{}\n{}\n{jetstream}",
            logs_in(a.dir.path()),
            node_b.logs(),
            cluster.logs()
        )
    };
    assert_eq!(
        acked_ids.len(),
        messages,
        "every message ACKed in the end\n{}",
        context()
    );
    assert!(
        lost.is_empty(),
        "{} ACKed messages not delivered, e.g. {:?}\n{}",
        lost.len(),
        &lost[..lost.len().min(5)],
        context()
    );
    assert!(split.is_empty(), "one message, several records: {split:?}");
    assert_eq!(files, messages, "one record file per message, nothing else");
    assert!(
        !overflowed,
        "inotify lost events: rewrites cannot be counted"
    );
    assert!(
        rewritten.is_empty(),
        "{} records written twice to the file destination, e.g. {:?}",
        rewritten.len(),
        &rewritten[..rewritten.len().min(5)]
    );
    assert_eq!(http_lost, 0, "records missing at the HTTP destination");
    assert_eq!(http.len(), files, "the same records over HTTP");
}

/// Routes are still hot-reloaded per node on JetStream: records adapted after an edit of
/// `routes.toml` go to the new destination, those before stay where they went.
#[test]
fn routes_reload_on_a_jetstream_node() {
    if !nats::enabled() {
        return;
    }
    let cluster = nats::Cluster::start(1);
    let admin_port = passerelle_tests::daemon::free_port();
    let extra = format!(
        "\n[journal.jetstream]\nurls = [\"{}\"]\nnode = \"solo\"\nprefix = \"reload\"\n\
         \n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\nallow_unauthenticated_loopback = true\n",
        cluster.urls()[0]
    );
    let setup = Setup::new(
        &extra,
        "[[route]]\nname = \"first\"\ndestinations = [\"a\"]\n",
    );
    let mut daemon = setup.start();
    let mut client = passerelle_tests::mllp::MllpClient::connect(setup.mllp_port).unwrap();
    let send = |client: &mut passerelle_tests::mllp::MllpClient, id: String| {
        let ack = client.send(&passerelle_tests::mllp::oru(&id, 1)).unwrap();
        assert_eq!(passerelle_tests::mllp::msa(&ack), ("AA".to_string(), id));
    };
    let wait_for = |dest: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while setup.delivered(dest).len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        setup.delivered(dest).len()
    };
    for i in 0..10 {
        send(&mut client, format!("R1-{i}"));
    }
    assert_eq!(wait_for("a", 10), 10, "{}", daemon.logs());
    let routes = setup.path("routes.toml");
    let tmp = setup.path("routes.toml.edit");
    std::fs::write(
        &tmp,
        "[[route]]\nname = \"second\"\ndestinations = [\"b\"]\n",
    )
    .unwrap();
    std::fs::rename(&tmp, &routes).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !daemon.logs().contains("routes reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", daemon.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        send(&mut client, format!("R2-{i}"));
    }
    assert_eq!(wait_for("b", 10), 10, "{}", daemon.logs());
    assert_eq!(
        setup.delivered("a").len(),
        10,
        "nothing more to the old destination"
    );

    // The admin API on a JetStream node: status works, the journal views say why they cannot.
    let (status, body) = http_get(admin_port, "/destinations");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let b = v["destinations"]
        .as_array()
        .and_then(|l| l.iter().find(|d| d["name"] == "b"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(b["delivered_total"], 10, "{body}");
    assert!(b["queue_depth"].is_null(), "{body}");
    let (status, body) = http_get(admin_port, "/messages");
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("JetStream"), "{body}");
    assert_eq!(http_get(admin_port, "/ready").0, 200);
    assert!(daemon.terminate(Duration::from_secs(20)));
}
