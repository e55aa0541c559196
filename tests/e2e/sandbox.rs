//! Hostile adapters are stopped within their bounds with a clear error, and the next message
//! through a good adapter succeeds.

use std::time::{Duration, Instant};

use passerelle::plugin::{
    Inbound, Plugin, PluginEngine, PluginError, PluginLimits, PluginSpec, TrapCause,
};
use passerelle_tests::wasm;

fn limits() -> PluginLimits {
    PluginLimits {
        memory_mib: 64,
        timeout_ms: 300,
        ..PluginLimits::default()
    }
}

fn hostile(engine: &PluginEngine, mode: &str, limits: PluginLimits) -> Plugin {
    let spec = PluginSpec {
        name: format!("hostile-{mode}"),
        path: wasm("hostile"),
        limits,
        settings_json: format!(r#"{{"mode":"{mode}"}}"#),
        sha256: None,
    };
    Plugin::load(engine, &spec).unwrap_or_else(|e| panic!("loading hostile {mode}: {e}"))
}

fn message(text: &str) -> Inbound {
    Inbound {
        payload: text.as_bytes().to_vec(),
        content_type: "text/plain".into(),
        source: "test".into(),
        received_at: "2026-01-01T00:00:00.000Z".into(),
        charset: None,
    }
}

/// Runs `mode` once, returns its error and how long it took; then checks that a good plugin on
/// the same engine, and the same hostile plugin's next instance, still work.
fn contained(mode: &str, limits: PluginLimits) -> (PluginError, Duration) {
    let engine = passerelle_tests::adapt::engine();
    let bad = hostile(&engine, mode, limits);
    let good = hostile(&engine, "good", PluginLimits::default());
    let t = Instant::now();
    let err = bad
        .adapt(&message("m1"))
        .expect_err("a hostile call must fail");
    let took = t.elapsed();
    let ok = good
        .adapt(&message("m2"))
        .expect("the good plugin works after a hostile call");
    assert_eq!(ok.records.len(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("hostile-{mode}")),
        "error names the plugin: {msg}"
    );
    (err, took)
}

/// The call was stopped by its time cap, and the error says so.
fn assert_timed_out(err: &PluginError) {
    assert!(
        matches!(
            err,
            PluginError::Trap {
                cause: TrapCause::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("time limit"), "{err}");
}

#[test]
fn infinite_loop_is_stopped_by_the_time_cap() {
    let (err, took) = contained("loop", limits());
    assert_timed_out(&err);
    assert!(
        took >= Duration::from_millis(300),
        "stopped before its cap: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "stopped long after its cap: {took:?}"
    );
}

/// The daemon runs plugin calls on its async workers: a call that runs long yields at every
/// epoch tick, so on a runtime with a single thread a good call made while a hostile one loops
/// finishes long before the loop reaches its time cap.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_call_does_not_hold_its_worker() {
    let engine = passerelle_tests::adapt::engine();
    let bad = hostile(&engine, "loop", limits());
    let good = hostile(&engine, "good", PluginLimits::default());
    let started = Instant::now();
    let looping = async {
        let err = bad.adapt_async(&message("m1")).await.expect_err("loop");
        (err, started.elapsed())
    };
    let quick = async {
        // Let the loop start first: it is running when this call begins.
        tokio::task::yield_now().await;
        let out = good.adapt_async(&message("m2")).await.expect("good call");
        (out.records.len(), started.elapsed())
    };
    let ((err, loop_took), (records, good_took)) = tokio::join!(looping, quick);
    assert_timed_out(&err);
    assert_eq!(records, 1);
    assert!(
        loop_took >= Duration::from_millis(300),
        "loop stopped before its cap: {loop_took:?}"
    );
    assert!(
        good_took < Duration::from_millis(150),
        "the good call waited for the looping one: {good_took:?} (loop: {loop_took:?})"
    );
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_cap() {
    // A time cap far above what filling 64 MiB takes: on a loaded machine the 300 ms of
    // `limits()` ran out first (a CI run of 2026-12-07 reported "time limit exceeded").
    let limits = PluginLimits {
        timeout_ms: 10_000,
        ..limits()
    };
    let (err, _) = contained("memory", limits);
    assert!(
        matches!(
            err,
            PluginError::Trap {
                cause: TrapCause::MemoryLimit,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn deep_recursion_is_stopped() {
    let (err, _) = contained("recursion", limits());
    assert!(
        matches!(
            err,
            PluginError::Trap {
                cause: TrapCause::MemoryLimit | TrapCause::StackOverflow,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn panic_is_contained() {
    let (err, _) = contained("panic", limits());
    assert!(
        matches!(
            err,
            PluginError::Trap {
                cause: TrapCause::Panic,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("panicked"), "{err}");
}

#[test]
fn file_read_is_denied() {
    let (err, _) = contained("file", limits());
    let msg = err.to_string();
    assert!(
        msg.contains("file read denied"),
        "the plugin could read a file: {msg}"
    );
}

#[test]
fn socket_open_is_denied() {
    let (err, _) = contained("socket", limits());
    let msg = err.to_string();
    assert!(
        msg.contains("socket denied"),
        "the plugin could open a socket: {msg}"
    );
}

#[test]
fn hundred_megabytes_of_output_are_refused() {
    // With room to build it, the output cap refuses it; with the default memory cap, the
    // plugin cannot even build it.
    let roomy = PluginLimits {
        memory_mib: 512,
        max_output_mib: 16,
        ..limits()
    };
    let (err, _) = contained(
        "big-output",
        PluginLimits {
            timeout_ms: 5_000,
            ..roomy
        },
    );
    assert!(matches!(err, PluginError::InvalidOutput { .. }), "{err}");
    assert!(err.to_string().contains("limit of 16 MiB"), "{err}");
    let (err, _) = contained("big-output", limits());
    assert!(
        matches!(
            err,
            PluginError::Trap {
                cause: TrapCause::MemoryLimit,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn plugins_have_no_clock() {
    let engine = passerelle_tests::adapt::engine();
    let p = hostile(&engine, "clock", limits());
    let out = p.adapt(&message("x")).unwrap();
    assert_eq!(
        out.source_message_id, "clock=0",
        "the wall clock is frozen at the epoch"
    );
}

#[test]
fn trapped_instance_is_replaced() {
    let engine = passerelle_tests::adapt::engine();
    let p = hostile(&engine, "panic", limits());
    for _ in 0..3 {
        assert!(matches!(
            p.adapt(&message("x")),
            Err(PluginError::Trap { .. })
        ));
    }
    assert_eq!(p.trap_count(), 3);
}

#[test]
fn invalid_output_is_refused() {
    let engine = passerelle_tests::adapt::engine();
    for (mode, expected) in [
        ("bad-bundle", "not valid JSON"),
        ("no-patient", "no patient identity"),
        ("bad-ins", "valid 2-digit key"),
        ("many-records", "more than the limit of 10000"),
    ] {
        let p = hostile(
            &engine,
            mode,
            PluginLimits {
                memory_mib: 512,
                timeout_ms: 10_000,
                ..limits()
            },
        );
        let err = p.adapt(&message("x")).expect_err(mode);
        assert!(
            matches!(err, PluginError::InvalidOutput { .. }),
            "{mode}: {err}"
        );
        assert!(err.to_string().contains(expected), "{mode}: {err}");
    }
}

#[test]
fn adapter_rejection_is_typed() {
    let engine = passerelle_tests::adapt::engine();
    let p = hostile(&engine, "good", limits());
    let err = p.adapt(&message("bad input")).unwrap_err();
    assert!(err.is_rejection());
    assert!(
        err.to_string().contains("malformed input at line 1"),
        "{err}"
    );
}

#[test]
fn pinned_sha256_mismatch_is_refused() {
    let engine = passerelle_tests::adapt::engine();
    let spec = PluginSpec {
        name: "pinned".into(),
        path: wasm("hostile"),
        limits: limits(),
        settings_json: "{}".into(),
        sha256: Some("00".repeat(32)),
    };
    let err = Plugin::load(&engine, &spec)
        .err()
        .expect("a wrong pin must refuse the plugin");
    assert!(err.to_string().contains("pins"), "{err}");
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Some(dir.path().to_path_buf())).unwrap();
    let _ = hostile(&engine, "good", limits());
    let cached: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1, "one .cwasm per component");
    let t = Instant::now();
    let engine2 = PluginEngine::new(Some(dir.path().to_path_buf())).unwrap();
    let p = hostile(&engine2, "good", limits());
    assert!(p.adapt(&message("m")).is_ok());
    // Not a timing assertion on speed: just that the second load reused the file.
    let _ = t.elapsed();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Several loads of one build into one cache at once (two plugins of a configuration on the
/// same `.wasm`, or daemons sharing a cache dir): each gets a working plugin, and the cache
/// ends with one whole file and no temporary one.
#[test]
fn concurrent_loads_share_one_cache_file() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(Some(dir.path().to_path_buf())).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let p = hostile(&engine, "good", limits());
                assert!(p.adapt(&message("m")).is_ok());
            });
        }
    });
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".cwasm"), "{names:?}");
    let fresh = PluginEngine::new(Some(dir.path().to_path_buf())).unwrap();
    assert!(
        hostile(&fresh, "good", limits())
            .adapt(&message("m"))
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_a_turn_beyond_max_instances() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    let engine = passerelle_tests::adapt::engine();
    let plugin = Arc::new(hostile(
        &engine,
        "good",
        PluginLimits {
            max_instances: 2,
            ..PluginLimits::default()
        },
    ));
    let first = plugin.admit().await;
    let second = plugin.admit().await;
    let third = tokio::time::timeout(Duration::from_millis(100), plugin.admit()).await;
    assert!(third.is_err(), "a third call at once must wait");
    drop(first);
    let third = tokio::time::timeout(Duration::from_secs(5), plugin.admit())
        .await
        .expect("a turn is free again");

    // Calls made the way the daemon makes them never overlap more than the limit.
    drop((second, third));
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (plugin, running, most) = (plugin.clone(), running.clone(), most.clone());
        calls.spawn(async move {
            let turn = plugin.admit().await;
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                let out = plugin.adapt(&message(&format!("m{i}")));
                running.fetch_sub(1, SeqCst);
                out.map(|o| o.records.len())
            })
            .await
            .unwrap()
        });
    }
    while let Some(r) = calls.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 1);
    }
    assert_eq!(most.load(SeqCst), 2);
}
