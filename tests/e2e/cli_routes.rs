//! `passerelle routes test`: records printed by `passerelle adapt` (hl7v2-lab on an ANS sample)
//! routed under a routes file, with the destination names from `--destinations` or from a
//! configuration; bad lines, failed expectations and bad routes files exit non-zero.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use passerelle_tests::{passerelle_bin, repo, samples, wasm};
use serde_json::Value;

const ROUTES: &str = r#"
unmatched = "hold"

[[route]]
name = "production-ins-to-dmp"
destinations = ["dmp"]
match = { kind = "lab-result", ins_system = ["nir", "nia"] }

[[route]]
name = "test-ins-to-review"
destinations = ["review"]
match = { kind = "lab-result", ins_system = "nir-test" }
"#;

/// `passerelle adapt` on an ANS ORU^R01 sample (a test INS): the records as JSON lines.
fn adapted_records(dir: &Path) -> PathBuf {
    let sample = samples().join(
        "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7",
    );
    let out = Command::new(passerelle_bin())
        .args(["adapt", "--source", "lab-mllp", "--plugin"])
        .arg(wasm("hl7v2-lab"))
        .arg(&sample)
        .output()
        .expect("running passerelle adapt");
    assert!(
        out.status.success(),
        "passerelle adapt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty(), "no record");
    let path = dir.join("records.jsonl");
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

fn routes_test(args: &[&str], file: &Path) -> Output {
    Command::new(passerelle_bin())
        .args(["routes", "test"])
        .arg(file)
        .args(args)
        .output()
        .expect("running passerelle routes test")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn records_from_adapt_are_routed() {
    let dir = tempfile::tempdir().unwrap();
    let records = adapted_records(dir.path());
    let count = std::fs::read_to_string(&records).unwrap().lines().count();
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let routes_arg = routes.to_str().unwrap();

    let out = routes_test(
        &["--routes", routes_arg, "--destinations", "dmp,review"],
        &records,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), count, "{stdout}");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!(
                "{}:{} lab-result final from lab-mllp",
                records.display(),
                i + 1
            )),
            "{line}"
        );
        assert!(
            line.ends_with("route test-ins-to-review → review"),
            "{line}"
        );
    }
    assert!(
        stderr.contains(&format!("{count} record(s): {count} routed")),
        "{stderr}"
    );

    let out = routes_test(
        &[
            "--routes",
            routes_arg,
            "--destinations",
            "dmp,review",
            "--json",
        ],
        &records,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in text(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["route"], "test-ins-to-review");
        assert_eq!(v["destinations"], serde_json::json!(["review"]));
        assert_eq!(v["held"], false);
    }

    // The example configuration: destination names and routes file from config/passerelle.toml.
    let config = repo().join("config/passerelle.toml");
    let out = routes_test(&["--config", config.to_str().unwrap()], &records);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout
            .lines()
            .all(|l| l.contains("route set-aside-for-review → held-file")),
        "{stdout}"
    );
}

#[test]
fn expectations_and_errors_set_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let records = adapted_records(dir.path());
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, ROUTES).unwrap();
    let args = [
        "--routes",
        routes.to_str().unwrap(),
        "--destinations",
        "dmp,review",
        "--expect",
    ];

    // Every record expects where it goes: ok.
    let first = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let mut record: Value = serde_json::from_str(&first).unwrap();
    record["expect"] = serde_json::json!({"route": "test-ins-to-review", "destinations": ["review"], "held": false});
    let good = dir.path().join("good.jsonl");
    std::fs::write(&good, format!("{record}\n")).unwrap();
    let out = routes_test(&args, &good);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(text(&out.stdout).starts_with("ok   "));

    // A wrong expectation and a line that is not a record: both reported, exit non-zero.
    record["expect"] = serde_json::json!({"route": "production-ins-to-dmp"});
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{record}\n{{\"kind\": \"lab-result\"\n")).unwrap();
    let out = routes_test(&args, &bad);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success());
    assert!(stdout.starts_with("FAIL "), "{stdout}");
    assert!(
        stdout.contains("expected route \"production-ins-to-dmp\", got \"test-ins-to-review\""),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{}:2: not JSON", bad.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 error(s), 1 failed expectation(s)"),
        "{stderr}"
    );

    // A routes file naming an unknown destination: file:line:column, exit non-zero.
    let out = routes_test(
        &[
            "--routes",
            routes.to_str().unwrap(),
            "--destinations",
            "dmp",
        ],
        &records,
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{}:11:", routes.display())) && stderr.contains("review"),
        "{stderr}"
    );
}

/// `routes test` agrees with what `run` does: the same messages, adapted by the CLI with the
/// daemon's source name and sent to the daemon over MLLP, land in exactly the destinations
/// `routes test` announced (record ids are the same on both sides).
#[test]
fn routes_test_agrees_with_the_running_daemon() {
    use passerelle_tests::daemon::Setup;
    use passerelle_tests::mllp::{MllpClient, msa, oru};
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::{Duration, Instant};

    // Routes that split the stream on codes, patients and INS presence; the rest is held.
    let routes = r#"
unmatched = "hold"
[[route]]
name = "hemoglobin"
destinations = ["a"]
match = { code = "http://loinc.org|718-7", not = { source = "elsewhere" } }
[[route]]
name = "some-patients"
destinations = ["b"]
match = { any = [{ code = "777-3" }, { has_ins = true }] }
"#;
    let setup = Setup::new("", routes);
    let dir = tempfile::tempdir().unwrap();
    // Messages: the generated 5-OBX ORU (has 718-7 and 777-3) and the samples' ORU^R01 (ANS
    // ones carry a test INS; others neither code).
    let mut messages: Vec<Vec<u8>> = (0..5)
        .map(|i| oru(&format!("AGREE{i}"), i).into_bytes())
        .collect();
    for name in [
        "ms-fhir-converter/data/SampleData/Hl7v2/LAB-ORU-2.hl7",
        "ms-fhir-converter/data/SampleData/Hl7v2/ORU-R01-RMGEAD.hl7",
    ] {
        messages.push(std::fs::read(samples().join(name)).unwrap());
    }
    messages.push(
        std::fs::read(samples().join(
            "ansforge-hl7v2-exemples/Volets/TRANS_DOC_CDA_HL7V2/V2.1/ORU/Transmission initiale ORU/message_ORU_CR_Bio_INIT_N1_N3.hl7",
        ))
        .unwrap(),
    );
    // What routes test says, record by record.
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, m) in messages.iter().enumerate() {
        let input = dir.path().join(format!("m{i}.hl7"));
        std::fs::write(&input, m).unwrap();
        let out = Command::new(passerelle_bin())
            .args(["adapt", "--source", "lab-mllp", "--plugin"])
            .arg(wasm("hl7v2-lab"))
            .arg(&input)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let records = dir.path().join(format!("m{i}.jsonl"));
        std::fs::write(&records, &out.stdout).unwrap();
        let routes_file = setup.path("routes.toml");
        let out = routes_test(
            &[
                "--routes",
                routes_file.to_str().unwrap(),
                "--destinations",
                "a,b",
                "--json",
            ],
            &records,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let ids: Vec<String> = text(&std::fs::read(&records).unwrap())
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["envelope"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for (id, line) in ids.into_iter().zip(text(&out.stdout).lines()) {
            let v: Value = serde_json::from_str(line).unwrap();
            let dests = v["destinations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_string())
                .collect();
            expected.insert(id, dests);
        }
    }
    assert!(
        expected.values().any(|d| d.contains("a")) && expected.values().any(|d| d.contains("b"))
    );
    assert!(
        expected.values().any(BTreeSet::is_empty),
        "some records are held"
    );

    // What the daemon does with the same messages.
    let daemon = setup.start();
    let mut client = MllpClient::connect(setup.mllp_port).unwrap();
    for m in &messages {
        let text = String::from_utf8_lossy(m)
            .trim_start_matches('\u{feff}')
            .replace("\r\n", "\r")
            .replace('\n', "\r");
        assert_eq!(msa(&client.send(&text).unwrap()).0, "AA");
    }
    let want = |dest: &str| -> BTreeSet<String> {
        expected
            .iter()
            .filter(|(_, d)| d.contains(dest))
            .map(|(id, _)| format!("{id}.json"))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    for dest in ["a", "b"] {
        loop {
            let got: BTreeSet<String> = setup.delivered(dest).into_iter().collect();
            if got == want(dest) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{dest}: routes test said {:?}, run delivered {got:?}\n{}",
                want(dest),
                daemon.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
