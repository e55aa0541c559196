//! A new build of a plugin's `.wasm` serves the next messages; a broken one is rejected and the
//! old one keeps serving. `passerelle check` lists every configuration error.

use std::process::Command;
use std::time::{Duration, Instant};

use passerelle_tests::daemon::Setup;
use passerelle_tests::mllp::{MllpClient, msa, oru};
use passerelle_tests::{passerelle_bin, wasm};

const TO_A: &str = "[[route]]\nname = \"all\"\ndestinations = [\"a\"]\n";

fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The bundle of the record delivered for message `id`.
fn delivered_bundle(setup: &Setup, id: &str) -> Option<serde_json::Value> {
    setup.delivered("a").into_iter().find_map(|name| {
        let text = std::fs::read_to_string(setup.path(&format!("data/out/a/{name}"))).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        (v["envelope"]["source_message_id"] == id).then(|| v["bundle"].clone())
    })
}

fn wait_bundle(setup: &Setup, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(b) = delivered_bundle(setup, id) {
            return b;
        }
        assert!(Instant::now() < deadline, "no record delivered for {id}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn new_plugin_build_serves_next_messages_and_a_broken_one_is_rejected() {
    let plugins = tempfile::tempdir().unwrap();
    let live = plugins.path().join("lab.wasm");
    std::fs::copy(wasm("hl7v2-lab"), &live).unwrap();
    let setup = Setup::with_plugin("", TO_A, &live);
    let daemon = setup.start();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    assert_eq!(msa(&client.send(&oru("P1", 1)).unwrap()).0, "AA");
    // hl7v2-lab: a bundle with the DiagnosticReport and its Observations.
    assert!(
        wait_bundle(&setup, "P1")
            .to_string()
            .contains("DiagnosticReport")
    );

    // Deploy another build (the test guest, which answers every message with a fixed bundle).
    replace(&live, &std::fs::read(wasm("hostile")).unwrap());
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("P2-{n}");
        assert_eq!(msa(&client.send(&oru(&id, 1)).unwrap()).0, "AA");
        if !wait_bundle(&setup, &id)
            .to_string()
            .contains("DiagnosticReport")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new build was not picked up\n{}",
            daemon.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A broken build: rejected, the previous one keeps serving.
    replace(&live, b"\0asm garbage");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(msa(&client.send(&oru("P3", 1)).unwrap()).0, "AA");
    assert!(
        !wait_bundle(&setup, "P3")
            .to_string()
            .contains("DiagnosticReport")
    );
    let logs = daemon.logs();
    assert!(logs.contains("new plugin build rejected"), "{logs}");
    assert!(logs.contains("plugin reloaded"), "{logs}");
}

#[test]
fn check_lists_every_error_and_fails() {
    let setup = Setup::new("", TO_A);
    let ok = Command::new(passerelle_bin())
        .args(["check", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Two errors at once: an unknown destination in routes, and a missing plugin file.
    std::fs::write(
        setup.path("routes.toml"),
        "[[route]]\nname = \"x\"\ndestinations = [\"nowhere\"]\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(setup.config()).unwrap();
    let broken = config.replace(
        &wasm("hl7v2-lab").display().to_string(),
        "/nonexistent/lab.wasm",
    );
    std::fs::write(setup.config(), broken).unwrap();
    let out = Command::new(passerelle_bin())
        .args(["check", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("routes.toml:3:"),
        "routes error with line: {stderr}"
    );
    assert!(
        stderr.contains("/nonexistent/lab.wasm"),
        "plugin error: {stderr}"
    );
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn config_errors_name_file_line_and_column() {
    let setup = Setup::new(
        "\n[destinations.c]\ntype = \"file\"\ndir = \"c\"\nspeed = 3\n",
        TO_A,
    );
    let out = Command::new(passerelle_bin())
        .args(["run", "--config"])
        .arg(setup.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let config = std::fs::read_to_string(setup.config()).unwrap();
    let line = config.lines().position(|l| l.starts_with("speed")).unwrap() + 1;
    assert!(
        stderr.contains(&format!("passerelle.toml:{line}:1: unknown field `speed`")),
        "{stderr}"
    );
    assert!(stderr.contains("speed"), "{stderr}");
}
