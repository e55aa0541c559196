//! `passerelle plugin new` out of the box: a plugin generated outside the workspace (a crate of
//! its own, SDK by absolute path) passes its own tests, builds into a component, and runs under
//! `passerelle adapt`, giving a record whose bundle validates as FHIR R4.

use std::path::Path;
use std::process::Command;

use passerelle_tests::{passerelle_bin, repo, target_dir, validate_fhir_file};
use serde_json::Value;

const NAME: &str = "scaffold-demo";

/// `cargo` (the one running the tests), in `dir`, sharing the workspace's target dir so the
/// dependencies already built are reused.
fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running cargo {args:?}: {e}"));
    assert!(
        out.status.success(),
        "cargo {args:?} failed in {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_generated_plugin_tests_builds_and_runs() {
    // A temp dir outside the repository: the crate is standalone.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(passerelle_bin())
        .current_dir(repo())
        .args(["plugin", "new", NAME, "--dir"])
        .arg(tmp.path())
        .output()
        .expect("running passerelle plugin new");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("a crate of its own"), "{stdout}");
    let dir = tmp.path().join(NAME);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let sdk = repo().join("plugin-sdk").canonicalize().unwrap();
    assert!(
        manifest.contains(&format!("path = \"{}\"", sdk.display())),
        "{manifest}"
    );
    assert!(manifest.contains("[workspace]"), "{manifest}");

    // Generating again over it is refused.
    let again = Command::new(passerelle_bin())
        .args(["plugin", "new", NAME, "--dir"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!again.status.success());

    cargo(&dir, &["test", "--quiet"]);
    cargo(
        &dir,
        &[
            "build",
            "--quiet",
            "--profile",
            "plugin",
            "--target",
            "wasm32-wasip2",
            "-p",
            NAME,
        ],
    );
    let wasm = target_dir().join(format!(
        "wasm32-wasip2/plugin/{}.wasm",
        NAME.replace('-', "_")
    ));
    assert!(wasm.is_file(), "{} was not built", wasm.display());

    let out = Command::new(passerelle_bin())
        .args(["adapt", "--plugin"])
        .arg(&wasm)
        .args(["--content-type", &format!("text/x-{NAME}")])
        .arg(dir.join("sample.txt"))
        .output()
        .expect("running passerelle adapt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "passerelle adapt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let record: Value = serde_json::from_str(lines[0]).expect("a JSON record");
    assert_eq!(record["envelope"]["kind"], "lab-result");
    assert_eq!(
        record["envelope"]["patient"]["local_ids"][0]["value"],
        "IPP123"
    );
    assert_eq!(record["bundle"]["resourceType"], "Bundle");
    assert_eq!(record["bundle"]["entry"].as_array().map(Vec::len), Some(3));

    let bundle = tmp.path().join("bundle.json");
    std::fs::write(&bundle, record["bundle"].to_string()).unwrap();
    validate_fhir_file(&bundle, 1);
}
