//! The Python adapter (`plugins/python-example`), built by componentize-py against the same WIT
//! as the Rust SDK: its native unit tests pass, and the component runs in-process through
//! [`Plugin`] and under `passerelle adapt`, giving a record whose bundle validates as FHIR R4.
//!
//! componentize-py is pip-installed when missing; when that fails too the tests are skipped
//! with a message, unless `PASSERELLE_REQUIRE_TOOLS` is set.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use passerelle::plugin::{
    Inbound, Plugin, PluginEngine, PluginError, PluginLimits, PluginSpec, Rejection,
};
use passerelle_tests::adapt;
use passerelle_tests::{passerelle_bin, repo, tools_required, validate_fhir_file};
use serde_json::Value;

/// The version `.ci/run` installs and `app.py` is written for.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn example() -> PathBuf {
    repo().join("plugins/python-example")
}

fn runs(cmd: &Path) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `componentize-py`: on PATH, or where pip puts scripts; pip-installed when missing.
fn find_componentize_py() -> Option<PathBuf> {
    let candidates = || {
        let mut c = vec![PathBuf::from("componentize-py")];
        for scheme in ["", "posix_user"] {
            let arg = if scheme.is_empty() {
                String::new()
            } else {
                format!("'{scheme}'")
            };
            let out = Command::new("python3")
                .args([
                    "-c",
                    &format!("import sysconfig; print(sysconfig.get_path('scripts', {arg}))"),
                ])
                .output();
            if let Ok(o) = out {
                c.push(
                    Path::new(String::from_utf8_lossy(&o.stdout).trim()).join("componentize-py"),
                );
            }
        }
        c
    };
    if let Some(found) = candidates().into_iter().find(|c| runs(c)) {
        return Some(found);
    }
    eprintln!("componentize-py not found: installing {COMPONENTIZE_PY} with pip");
    for extra in [&[][..], &["--user"][..]] {
        let ok = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                COMPONENTIZE_PY,
            ])
            .args(extra)
            .status()
            .is_ok_and(|s| s.success());
        if ok && let Some(found) = candidates().into_iter().find(|c| runs(c)) {
            return Some(found);
        }
    }
    None
}

/// The tool, once for all the tests; `None` (with a message) when the tests must be skipped.
fn componentize_py() -> Option<&'static Path> {
    static TOOL: OnceLock<Option<PathBuf>> = OnceLock::new();
    let tool = TOOL.get_or_init(find_componentize_py).as_deref();
    if tool.is_none() {
        let msg = "componentize-py is not available and could not be pip-installed";
        assert!(
            !tools_required(),
            "{msg}, and PASSERELLE_REQUIRE_TOOLS is set"
        );
        eprintln!("SKIPPED the Python adapter tests: {msg}");
    }
    tool
}

fn check_output(what: &str, out: std::io::Result<std::process::Output>) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

#[test]
fn python_adapter_native_unit_tests() {
    let Some(tool) = componentize_py() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let bindings = tmp.path().join("bindings");
    let wit = repo().join("plugin-sdk/wit");
    check_output(
        "componentize-py bindings",
        Command::new(tool)
            .arg("-d")
            .arg(&wit)
            .args(["-w", "adapter", "bindings"])
            .arg(&bindings)
            .output(),
    );
    let report = check_output(
        "python3 -m unittest test_app",
        Command::new("python3")
            .current_dir(example())
            .env("PYTHONPATH", &bindings)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .args(["-m", "unittest", "test_app"])
            .output(),
    );
    assert!(report.contains("OK"), "{report}");
}

fn inbound(payload: &[u8]) -> Inbound {
    adapt::inbound(payload, "text/csv")
}

fn validate_bundles(dir: &Path, bundles: &[String]) {
    let path = dir.join("bundles.ndjson");
    std::fs::write(&path, bundles.join("\n")).unwrap();
    validate_fhir_file(&path, bundles.len());
}

#[test]
fn python_adapter_component_runs_in_the_sandbox() {
    let Some(tool) = componentize_py() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let wasm = tmp.path().join("python_example.wasm");
    let started = Instant::now();
    check_output(
        "plugins/python-example/build.sh",
        Command::new("bash")
            .arg(example().join("build.sh"))
            .arg(&wasm)
            .env("COMPONENTIZE_PY", tool)
            .output(),
    );
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "python_example.wasm: {size} bytes, built in {:.1?}",
        started.elapsed()
    );

    // In-process, through a component cache: a Python component takes seconds to compile.
    let cache = tmp.path().join("data/cache/components");
    let engine = PluginEngine::new(Some(cache.clone())).unwrap();
    // Limits sized for a Python interpreter (it needs ~32 MiB); generous time for loaded CI.
    let limits = PluginLimits {
        memory_mib: 64,
        timeout_ms: 10_000,
        ..PluginLimits::default()
    };
    let spec = |settings: &str| PluginSpec {
        name: "python-example".into(),
        path: wasm.clone(),
        limits,
        settings_json: settings.into(),
        sha256: None,
    };
    let started = Instant::now();
    let plugin = Plugin::load(&engine, &spec("{}"))
        .unwrap_or_else(|e| panic!("loading the Python component: {e}"));
    eprintln!("compiled and loaded in {:.1?}", started.elapsed());
    assert_eq!(plugin.info().name, "python-example");
    assert_eq!(plugin.info().content_types, vec!["text/csv".to_string()]);
    let cached: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1, "one compiled component in the cache");

    let sample = std::fs::read(example().join("sample.csv")).unwrap();
    let started = Instant::now();
    let out = plugin
        .adapt(&inbound(&sample))
        .unwrap_or_else(|e| panic!("adapting sample.csv: {e}"));
    eprintln!("first adapt call: {:.1?}", started.elapsed());
    assert_eq!(out.records.len(), 1);
    let env = &out.records[0].envelope;
    assert_eq!(env.kind, "lab-result");
    assert_eq!(env.status, "final");
    assert_eq!(env.patient.local_ids[0].value, "IPP123");
    assert_eq!(env.event_time.as_deref(), Some("2024-01-31T08:10:00+01:00"));
    let codes: Vec<&str> = env.codes.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["2345-7", "2823-3"]);
    assert_eq!(env.plugin.version, "0.1.0");
    let bundle: Value = serde_json::from_str(out.records[0].bundle.get()).unwrap();
    let types: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    assert_eq!(types, ["Patient", "Observation", "Observation"]);
    // Deterministic: the same message gives the same bundle.
    let again = plugin.adapt(&inbound(&sample)).unwrap();
    assert_eq!(again.records[0].bundle.get(), out.records[0].bundle.get());

    // Bad input: a typed `malformed` error naming the line, and the instance stays usable.
    match plugin.adapt(&inbound(
        b"patient_id,loinc,display,value,unit,effective\nIPP1,2345-7,,abc,mmol/L,\n",
    )) {
        Err(PluginError::Rejected {
            rejection: Rejection::Malformed { location, .. },
            ..
        }) => {
            assert_eq!(location, "line 2 value");
        }
        other => panic!("expected a malformed rejection, got {other:?}"),
    }
    assert!(plugin.adapt(&inbound(&sample)).is_ok());
    assert_eq!(plugin.trap_count(), 0);

    // Settings: used, and refused when wrong (the cache makes these loads quick).
    let custom = Plugin::load(&engine, &spec(r#"{"ipp_system":"urn:oid:1.2.3"}"#)).unwrap();
    let out2 = custom.adapt(&inbound(&sample)).unwrap();
    assert_eq!(
        out2.records[0].envelope.patient.local_ids[0].system,
        "urn:oid:1.2.3"
    );
    match Plugin::load(&engine, &spec(r#"{"ipp_system":""}"#)) {
        Err(PluginError::Configure { reason, .. }) => {
            assert!(reason.contains("ipp_system"), "{reason}")
        }
        Err(e) => panic!("expected a settings refusal, got {e}"),
        Ok(_) => panic!("expected a settings refusal"),
    }

    // `passerelle adapt` through a configuration naming the plugin: its limits, and the same
    // component cache (under the data dir), so no second compilation.
    let config = tmp.path().join("passerelle.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n\n[plugins.python-example]\npath = {:?}\n\n[plugins.python-example.limits]\nmemory_mib = 64\ntimeout_ms = 10000\n",
            wasm.display().to_string()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let cli = Command::new(passerelle_bin())
        .args([
            "adapt",
            "--plugin",
            "python-example",
            "--content-type",
            "text/csv",
            "--source",
            "e2e",
            "--config",
        ])
        .arg(&config)
        .arg(example().join("sample.csv"))
        .output();
    let stdout = check_output("passerelle adapt", cli);
    eprintln!(
        "passerelle adapt (cached component): {:.1?}",
        started.elapsed()
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let record: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(record["envelope"]["kind"], "lab-result");
    assert_eq!(record["envelope"]["plugin"]["name"], "python-example");
    assert_eq!(
        record["bundle"], bundle,
        "the CLI and the in-process run give the same bundle"
    );

    validate_bundles(
        tmp.path(),
        &[
            out.records[0].bundle.get().to_string(),
            out2.records[0].bundle.get().to_string(),
        ],
    );
}
