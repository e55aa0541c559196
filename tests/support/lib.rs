//! Helpers shared by the end-to-end tests: where things are, and how to start them.
//!
//! The plugins must be built first (`scripts/build-plugins.sh`, which the README's test command
//! runs); a missing `.wasm` fails the test with that instruction.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `../shared/samples` next to the checkout.
pub fn samples() -> PathBuf {
    repo().join("../shared/samples")
}

/// The cargo target dir (honours CARGO_TARGET_DIR).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The component cache the suite's daemons and engines share, in the target dir: without it
/// each test recompiled the same builds (85 compiles in one run of the e2e binary, 40 of them
/// `hl7v2-lab`, ≈ 3 minutes of compiling). Files are keyed by build and engine settings, so a
/// rebuilt plugin gets a new file. Tests about the cache itself use a folder of their own.
pub fn component_cache() -> PathBuf {
    target_dir().join("test-component-cache")
}

/// A built plugin component, by crate name (`hl7v2-lab` → `hl7v2_lab.wasm`).
pub fn wasm(crate_name: &str) -> PathBuf {
    let path = target_dir()
        .join("wasm32-wasip2/plugin")
        .join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh first",
        path.display()
    );
    path
}

/// The `passerelle` binary next to the running test executable's profile dir.
pub fn passerelle_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/e2e-xxxx → target/<profile>/passerelle
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let bin = profile_dir.join("passerelle");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p passerelle`",
        bin.display()
    );
    bin
}

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
pub fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if exts.iter().any(|x| p.to_string_lossy().ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub mod adapt;
pub mod daemon;
pub mod http;
pub mod journal;
pub mod mllp;
pub mod nats;
pub mod rng;
pub mod senders;
pub mod tally;
pub mod watch;
pub mod webhook;

/// Whether tests that need an external tool must fail (CI) rather than skip when it is missing.
pub fn tools_required() -> bool {
    std::env::var_os("PASSERELLE_REQUIRE_TOOLS").is_some()
}

/// Whether `python3` can import `fhir.resources` (the external FHIR validator). When it
/// cannot, this says so on stderr, or panics if [`tools_required`].
pub fn fhir_validator_available() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import fhir.resources"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg =
            "python3 with fhir.resources is not available (pip install 'fhir.resources>=8,<9')";
        assert!(
            !tools_required(),
            "{msg}, and PASSERELLE_REQUIRE_TOOLS is set"
        );
        eprintln!("SKIPPED FHIR validation: {msg}");
    }
    ok
}

/// Validates the FHIR Bundles in `path` (one JSON Bundle per line, or one per file) with
/// `tests/fhir_validate.py` and checks that exactly `count` were found valid. Skips (or fails,
/// see [`fhir_validator_available`]) without the validator.
pub fn validate_fhir_file(path: &Path, count: usize) {
    if !fhir_validator_available() {
        return;
    }
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/fhir_validate.py"))
        .arg(path)
        .output()
        .expect("running tests/fhir_validate.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "FHIR validation failed:\n{stdout}{stderr}"
    );
    assert_eq!(stdout.trim(), format!("{count} valid"));
}
