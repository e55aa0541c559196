//! The plugin circuit breaker on a real daemon: the `hostile` test guest in `panic-on-marker`
//! mode (panics on messages containing `PANIC`, adapts the others) with
//! `breaker_failures = 3`. Three panics in a row suspend it; later messages are stored as held
//! and acknowledged `AA`; the admin API shows it and resumes it (held messages adapted and
//! delivered), a new build resumes it too, and a restart keeps it suspended while messages are
//! held.

use std::time::{Duration, Instant};

use passerelle_tests::daemon::{Setup, free_port};
use passerelle_tests::http::request;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::wasm;
use serde_json::Value;

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

fn setup() -> (Setup, u16, tempfile::TempDir) {
    let plugins = tempfile::tempdir().unwrap();
    let live = plugins.path().join("lab.wasm");
    std::fs::copy(wasm("hostile"), &live).unwrap();
    let admin = free_port();
    let extra = format!(
        "\n[plugins.hl7v2-lab.settings]\nmode = \"panic-on-marker\"\n\
         [plugins.hl7v2-lab.limits]\nbreaker_failures = 3\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\nallow_unauthenticated_loopback = true\n"
    );
    (Setup::with_plugin(&extra, TO_A, &live), admin, plugins)
}

fn call(port: u16, method: &str, path: &str) -> (u16, String) {
    let r = request(port, method, path, None, "", "");
    (r.status, r.body)
}

fn json(port: u16, method: &str, path: &str) -> Value {
    let (status, body) = call(port, method, path);
    assert_eq!(status, 200, "{method} {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn plugin(port: u16) -> Value {
    json(port, "GET", "/plugins")["plugins"][0].clone()
}

fn wait_admin(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(port, "GET", "/health").0 != 200 {
        assert!(Instant::now() < deadline, "admin API not up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Source message ids of the records delivered to `a`.
fn delivered_ids(setup: &Setup) -> Vec<String> {
    let mut ids: Vec<String> = setup
        .delivered("a")
        .into_iter()
        .filter_map(|name| {
            let text = std::fs::read_to_string(setup.path(&format!("data/out/a/{name}"))).ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            v["envelope"]["source_message_id"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

/// Three panics in a row: each stored as failed (AE), the third suspends the plugin.
fn trip(client: &mut MllpClient) {
    for i in 1..=3 {
        let (code, _) = msa(&client.send(&oru(&format!("PANIC-{i}"), 1)).unwrap());
        assert_eq!(code, "AE", "panic {i}");
    }
}

#[test]
fn a_panicking_plugin_is_suspended_its_messages_held_and_an_operator_resumes_it() {
    let (setup, admin, _plugins) = setup();
    let daemon = setup.start();
    wait_admin(admin);
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    assert_eq!(msa(&client.send(&oru("OK-1", 1)).unwrap()).0, "AA");
    trip(&mut client);
    let p = plugin(admin);
    assert_eq!(p["state"], "suspended", "{p}");
    assert_eq!(p["breaker"]["trips"], 1);
    assert!(
        p["breaker"]["reason"]
            .as_str()
            .unwrap()
            .contains("3 failures in a row"),
        "{p}"
    );

    // Held: stored and acknowledged AA, not adapted, not delivered.
    for id in ["HELD-1", "HELD-2"] {
        let (code, control) = msa(&client.send(&oru(id, 1)).unwrap());
        assert_eq!((code.as_str(), control.as_str()), ("AA", id));
    }
    assert_eq!(plugin(admin)["held_messages"], 2);
    let held = json(admin, "GET", "/messages?status=held");
    assert_eq!(held["messages"].as_array().unwrap().len(), 2, "{held}");
    let (_, metrics) = call(admin, "GET", "/metrics");
    assert!(
        metrics.contains("passerelle_plugin_suspended{plugin=\"hl7v2-lab\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("passerelle_plugin_breaker_trips_total{plugin=\"hl7v2-lab\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("passerelle_messages_held_total{source=\"lab-mllp\",plugin=\"hl7v2-lab\"} 2"),
        "{metrics}"
    );
    wait_until("OK-1 delivered", || delivered_ids(&setup) == ["OK-1"]);

    // The operator resumes it: the held messages are adapted and delivered, in place.
    let r = json(admin, "POST", "/plugins/hl7v2-lab/resume");
    assert_eq!(r["was_suspended"], true, "{r}");
    wait_until("held messages delivered", || {
        delivered_ids(&setup) == ["HELD-1", "HELD-2", "OK-1"]
    });
    wait_until("serving", || plugin(admin)["state"] == "serving");
    assert_eq!(plugin(admin)["held_messages"], 0);
    assert!(
        json(admin, "GET", "/messages?status=held")["messages"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Idempotent; the plugin serves new messages again.
    assert_eq!(
        json(admin, "POST", "/plugins/hl7v2-lab/resume")["was_suspended"],
        false
    );
    assert_eq!(msa(&client.send(&oru("OK-2", 1)).unwrap()).0, "AA");
    wait_until("OK-2 delivered", || delivered_ids(&setup).len() == 4);
    let logs = daemon.logs();
    assert!(
        logs.contains("plugin SUSPENDED by its circuit breaker"),
        "{logs}"
    );
}

#[test]
fn a_restart_keeps_the_plugin_suspended_and_a_new_build_resumes_it() {
    let (setup, admin, plugins) = setup();
    let mut daemon = setup.start();
    wait_admin(admin);
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    trip(&mut client);
    assert_eq!(msa(&client.send(&oru("KEPT-1", 1)).unwrap()).0, "AA");
    drop(client);
    assert!(
        daemon.terminate(Duration::from_secs(30)),
        "clean stop\n{}",
        daemon.logs()
    );

    // Held messages survive the restart, and so does the suspension.
    let daemon = setup.start();
    wait_admin(admin);
    let p = plugin(admin);
    assert_eq!(
        (p["state"].as_str(), p["held_messages"].as_u64()),
        (Some("suspended"), Some(1)),
        "{p}"
    );
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    assert_eq!(msa(&client.send(&oru("KEPT-2", 1)).unwrap()).0, "AA");
    assert!(delivered_ids(&setup).is_empty());

    // A new build (here: the same code with an extra custom section) resumes it by itself.
    let live = plugins.path().join("lab.wasm");
    let mut wasm = std::fs::read(&live).unwrap();
    let name = b"e2e";
    wasm.extend_from_slice(&[0, (1 + name.len() + 2) as u8, name.len() as u8]);
    wasm.extend_from_slice(name);
    wasm.extend_from_slice(b"v2");
    let tmp = live.with_extension("partial");
    std::fs::write(&tmp, &wasm).unwrap();
    std::fs::rename(&tmp, &live).unwrap();
    wait_until("held messages delivered after the new build", || {
        delivered_ids(&setup) == ["KEPT-1", "KEPT-2"]
    });
    wait_until("serving", || plugin(admin)["state"] == "serving");
    assert_eq!(plugin(admin)["reloads"], 1);
    let logs = daemon.logs();
    assert!(
        logs.contains("held messages from before the restart"),
        "{logs}"
    );
    assert!(logs.contains("new build of a suspended plugin"), "{logs}");
}
