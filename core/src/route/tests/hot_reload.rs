//! Reloading routes.toml: a valid file is swapped in, an invalid one leaves the rules as
//! they were; the watcher follows writes, renames and symlink swaps.

use super::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const V1: &str = "[[route]]\nname = \"a\"\ndestinations = [\"dmp\"]\n";
const V2: &str = "[[route]]\nname = \"a\"\ndestinations = [\"ehr\"]\n\n[[route]]\nname = \"b\"\ndestinations = [\"dmp\"]\n";
const V3: &str = "mode = \"first-match\"\n[[route]]\nname = \"c\"\ndestinations = [\"archive\"]\n";

fn version_of(src: &str) -> String {
    rs(src).version().to_owned()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not within 2 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn reload_now_swaps_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, V1).unwrap();
    let h = RoutesHandle::load(&path, known()).unwrap();
    let before = h.current();
    assert_eq!(before.version(), version_of(V1));
    assert_eq!(h.reload_now(), Ok(ReloadOutcome::Unchanged));
    assert_eq!(h.reloads(), 0);

    std::fs::write(&path, V2).unwrap();
    let out = h.reload_now().unwrap();
    assert_eq!(
        out,
        ReloadOutcome::Reloaded {
            version: version_of(V2),
            routes: 2
        }
    );
    assert_eq!(h.reloads(), 1);
    assert_eq!(
        before.version(),
        version_of(V1),
        "a snapshot keeps its version"
    );
    assert_eq!(h.current().version(), version_of(V2));

    std::fs::write(
        &path,
        "[[route]]\nname = \"a\"\ndestinations = [\"nowhere\"]\n",
    )
    .unwrap();
    let e = h.reload_now().unwrap_err();
    assert_eq!((e.line, e.column), (3, 17));
    assert_eq!(h.current().version(), version_of(V2));
    assert_eq!(h.reload_failures(), 1);
    let last = h.last_error().unwrap();
    assert!(
        last.contains("routes.toml:3:17: unknown destination `nowhere`"),
        "{last}"
    );

    // Back to valid content clears the error.
    std::fs::write(&path, V2).unwrap();
    assert_eq!(h.reload_now(), Ok(ReloadOutcome::Unchanged));
    assert_eq!(h.last_error(), None);

    std::fs::remove_file(&path).unwrap();
    assert!(h.reload_now().unwrap_err().message.contains("cannot read"));
    assert_eq!(h.current().version(), version_of(V2));
    assert_eq!(h.reload_failures(), 2);
}

#[test]
fn watcher_follows_writes_renames_and_rejects_invalid_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, V1).unwrap();
    let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
    let watcher = watch(h.clone(), &path, known()).unwrap();

    // In-place write.
    std::fs::write(&path, V2).unwrap();
    let v2 = version_of(V2);
    wait_for("in-place write", || h.current().version() == v2);
    assert_eq!(h.current().route_count(), 2);

    // Write a temporary file, then rename it over the routes file (as editors do).
    let tmp = dir.path().join(".routes.toml.tmp");
    std::fs::write(&tmp, V3).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let v3 = version_of(V3);
    wait_for("rename", || h.current().version() == v3);
    assert_eq!(h.current().mode(), Mode::FirstMatch);
    let reloads = h.reloads();
    assert_eq!(reloads, 2, "each change reloads once");

    // An invalid file is rejected; the rules in force stay.
    let bad = "[[route]]\nname = \"c\"\ndestinations = [\"archive\"]\n[route.match]\nkind = \"x\"\nsorce = \"y\"\n";
    std::fs::write(&path, bad).unwrap();
    wait_for("rejection", || h.reload_failures() >= 1);
    assert_eq!(h.current().version(), v3);
    let last = h.last_error().unwrap();
    assert!(
        last.contains("routes.toml:6:1:") && last.contains("sorce"),
        "{last}"
    );

    // Unrelated files in the directory are ignored; same content is not a reload.
    std::fs::write(dir.path().join("other.toml"), "x").unwrap();
    std::fs::write(&path, V3).unwrap();
    wait_for("error cleared", || h.last_error().is_none());
    assert_eq!(h.reloads(), reloads);
    assert_eq!(h.reload_failures(), 1);

    // Dropping the watcher stops watching.
    drop(watcher);
    std::fs::write(&path, V1).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(h.current().version(), v3);
    // reload_now still works (SIGHUP).
    assert!(matches!(h.reload_now(), Ok(ReloadOutcome::Reloaded { .. })));
    assert_eq!(h.current().version(), version_of(V1));
}

/// Kubernetes ConfigMap layout: `routes.toml -> ..data/routes.toml`, `..data -> ..v1`,
/// updated by renaming a new `..data` symlink over the old one.
#[cfg(unix)]
#[test]
fn watcher_follows_symlink_swaps() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("..v1")).unwrap();
    std::fs::write(dir.path().join("..v1/routes.toml"), V1).unwrap();
    symlink("..v1", dir.path().join("..data")).unwrap();
    let path = dir.path().join("routes.toml");
    symlink("..data/routes.toml", &path).unwrap();
    let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
    let _w = watch(h.clone(), &path, known()).unwrap();

    std::fs::create_dir(dir.path().join("..v2")).unwrap();
    std::fs::write(dir.path().join("..v2/routes.toml"), V2).unwrap();
    symlink("..v2", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    let v2 = version_of(V2);
    wait_for("symlink swap", || h.current().version() == v2);
    assert_eq!(h.reloads(), 1);
}

#[test]
fn burst_of_writes_is_one_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, V1).unwrap();
    let h = Arc::new(RoutesHandle::load(&path, known()).unwrap());
    let _w = watch(h.clone(), &path, known()).unwrap();
    for i in 0..10 {
        std::fs::write(&path, format!("{V2}# edit {i}\n")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let last = version_of(&format!("{V2}# edit 9\n"));
    wait_for("burst", || h.current().version() == last);
    assert_eq!(h.reloads(), 1);
}
