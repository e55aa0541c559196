//! `adapt` of a 5-OBX ORU^R01: the same adapter code natively, as a raw component call, and
//! through the host's sandbox (`Plugin::adapt_async`: pooled instance, budgets, output check).
//!
//! Needs the built plugin: `scripts/build-plugins.sh` (target/wasm32-wasip2/plugin/hl7v2_lab.wasm).
//! Run: `cargo bench -p passerelle --bench adapt`. See docs/benchmarks.md.
//! `PASSERELLE_BENCH_WASM=path.wasm` benchmarks another build of the component.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use passerelle::plugin::{Inbound, Plugin, PluginEngine, PluginLimits, PluginSpec};
use passerelle_plugin_sdk::Adapter as _;

/// The raw call: the plugin's exports through wasmtime's generated bindings, one reused
/// instance, the same engine settings and store limits as the host, the epoch deadline reset
/// before each call as the host does, and no output check or copies.
mod raw {
    use wasmtime::component::{HasSelf, Linker, ResourceTable};
    use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

    wasmtime::component::bindgen!({
        world: "adapter",
        path: "../plugin-sdk/wit",
    });

    pub use self::passerelle::adapter::types;

    pub struct State {
        wasi: WasiCtx,
        table: ResourceTable,
        limits: StoreLimits,
    }

    impl WasiView for State {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl types::Host for State {}

    impl self::passerelle::adapter::host::Host for State {
        fn log(&mut self, _level: types::LogLevel, _message: String) {}
    }

    pub struct Raw {
        pub store: Store<State>,
        pub bindings: Adapter,
    }

    impl Raw {
        pub fn new(wasm: &std::path::Path) -> Raw {
            let mut config = Config::new();
            config.epoch_interruption(true);
            config.wasm_component_model(true);
            config.max_wasm_stack(1024 * 1024);
            // `PASSERELLE_BENCH_PERFMAP=1`: write /tmp/perf-PID.map so that `perf report` names
            // the guest's functions (use an unstripped build, see docs/benchmarks.md).
            if std::env::var_os("PASSERELLE_BENCH_PERFMAP").is_some() {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            let engine = Engine::new(&config).expect("engine");
            let component = wasmtime::component::Component::from_file(&engine, wasm)
                .expect("compile the plugin");
            let mut linker: Linker<State> = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("wasi");
            Adapter::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s).expect("host");
            let pre = AdapterPre::new(linker.instantiate_pre(&component).expect("instantiate_pre"))
                .expect("pre");
            let state = State {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new()
                    .memory_size(128 << 20)
                    .trap_on_grow_failure(true)
                    .build(),
            };
            let mut store = Store::new(&engine, state);
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(1_000_000);
            let bindings = pre.instantiate(&mut store).expect("instantiate");
            bindings
                .call_configure(&mut store, "{}")
                .expect("configure call")
                .expect("configure");
            Raw { store, bindings }
        }

        pub fn adapt(&mut self, message: &types::InboundMessage) -> types::Adapted {
            self.store.set_epoch_deadline(1_000_000);
            self.bindings
                .call_adapt(&mut self.store, message)
                .expect("no trap")
                .expect("adapted")
        }
    }
}

/// A 5-OBX ORU^R01 like the e2e tests' (`tests/support/mllp.rs`), about 700 bytes.
fn oru(obx: usize) -> Vec<u8> {
    const OBX: [&str; 5] = [
        "NM|718-7^Hemoglobin^LN||13.4|g/dL^g/dL^UCUM|13-18|N|||F|||20240131120000+0100",
        "NM|6690-2^Leukocytes^LN||8.2|10*3/uL^10*3/uL^UCUM|4-10|N|||F|||20240131120000+0100",
        "NM|789-8^Erythrocytes^LN||4.08|10*6/uL^10*6/uL^UCUM|4.2-5.4|L|||F|||20240131120000+0100",
        "NM|4544-3^Hematocrit^LN||39.7|%^%^UCUM|37-47|N|||F|||20240131120000+0100",
        "NM|777-3^Platelets^LN||220|10*3/uL^10*3/uL^UCUM|150-400|N|||F|||20240131120000+0100",
    ];
    let mut m = String::from(
        "MSH|^~\\&|LAB|HOSP|PASSERELLE|DMP|20240131123000+0100||ORU^R01^ORU_R01|MSG0001|P|2.5|||||FRA|UNICODE UTF-8\r\
         PID|||IPP42^^^HOSP&1.2.250.1.71.4.2.7&ISO^PI||DOE^JOHN||19700101|M\r\
         OBR|1|ORD1|FIL1|24317-0^Hemogram^LN|||20240131120000+0100||||||||||||||||||F",
    );
    for k in 0..obx {
        m.push_str(&format!("\rOBX|{}|{}", k + 1, OBX[k % OBX.len()]));
    }
    m.into_bytes()
}

fn wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PASSERELLE_BENCH_WASM") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/plugin/hl7v2_lab.wasm");
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh first",
        path.display()
    );
    path
}

const CONTENT_TYPE: &str = "x-application/hl7-v2+er7";
const RECEIVED_AT: &str = "2026-01-31T11:30:00.000Z";

fn bench_adapt(c: &mut Criterion) {
    let wasm = wasm_path();
    for obx in [5usize, 100] {
        let payload = oru(obx);
        let mut group = c.benchmark_group(format!("adapt/oru-{obx}obx"));
        group.throughput(Throughput::Elements(1));
        group.measurement_time(Duration::from_secs(if obx == 5 { 5 } else { 3 }));

        // The same adapter code, compiled natively.
        let native: hl7v2_lab::Hl7v2Lab =
            passerelle_plugin_sdk::configure("{}").expect("configure natively");
        let message = passerelle_plugin_sdk::types::InboundMessage {
            payload: payload.clone(),
            content_type: CONTENT_TYPE.into(),
            source: "lab-mllp".into(),
            received_at: RECEIVED_AT.into(),
            charset: None,
        };
        let out = native.adapt(&message).expect("native adapt");
        assert_eq!(out.records.len(), 1);
        group.bench_function("native", |b| {
            b.iter(|| black_box(native.adapt(black_box(&message))))
        });

        // The component, called directly.
        let mut raw = raw::Raw::new(&wasm);
        let raw_message = raw::types::InboundMessage {
            payload: payload.clone(),
            content_type: CONTENT_TYPE.into(),
            source: "lab-mllp".into(),
            received_at: RECEIVED_AT.into(),
            charset: None,
        };
        assert_eq!(raw.adapt(&raw_message).records.len(), 1);
        group.bench_function("wasm-raw-call", |b| {
            b.iter(|| black_box(raw.adapt(black_box(&raw_message))))
        });

        // The production path: Plugin::adapt_async (pool, budgets, WIT copies, output check),
        // polled as the daemon's workers poll it.
        let rt = runtime();
        let engine = PluginEngine::new(None).expect("engine");
        let spec = PluginSpec {
            name: "hl7v2-lab".into(),
            path: wasm.clone(),
            limits: PluginLimits::default(),
            settings_json: "{}".into(),
            sha256: None,
        };
        let plugin = Plugin::load(&engine, &spec).expect("load the plugin");
        let inbound = Inbound {
            payload: payload.clone(),
            content_type: CONTENT_TYPE.into(),
            source: "lab-mllp".into(),
            received_at: RECEIVED_AT.into(),
            charset: None,
        };
        assert_eq!(
            rt.block_on(plugin.adapt_async(&inbound))
                .expect("sandbox adapt")
                .records
                .len(),
            1
        );
        group.bench_function("wasm-plugin-adapt", |b| {
            b.iter(|| black_box(rt.block_on(plugin.adapt_async(black_box(&inbound)))))
        });
        group.finish();
    }
}

/// `PASSERELLE_ADAPT_LOOP=native|raw|plugin:N` runs one way `N` times and exits, without
/// criterion: a fixed amount of work for instruction counts that do not depend on the load
/// of the machine (`valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='*adapt_loop*'`, see docs/benchmarks.md).
fn adapt_loop(spec: &str) {
    let (way, n) = spec.split_once(':').unwrap_or((spec, "1000"));
    let n: usize = n.parse().expect("PASSERELLE_ADAPT_LOOP=way:N, N a number");
    let obx: usize = std::env::var("PASSERELLE_ADAPT_OBX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let payload = oru(obx);
    match way {
        "native" => {
            let native: hl7v2_lab::Hl7v2Lab =
                passerelle_plugin_sdk::configure("{}").expect("configure natively");
            let message = passerelle_plugin_sdk::types::InboundMessage {
                payload,
                content_type: CONTENT_TYPE.into(),
                source: "lab-mllp".into(),
                received_at: RECEIVED_AT.into(),
                charset: None,
            };
            adapt_loop_native(&native, &message, n);
        }
        "raw" => {
            let mut raw = raw::Raw::new(&wasm_path());
            let message = raw::types::InboundMessage {
                payload,
                content_type: CONTENT_TYPE.into(),
                source: "lab-mllp".into(),
                received_at: RECEIVED_AT.into(),
                charset: None,
            };
            adapt_loop_raw(&mut raw, &message, n);
        }
        "plugin" => {
            let engine = PluginEngine::new(None).expect("engine");
            let spec = PluginSpec {
                name: "hl7v2-lab".into(),
                path: wasm_path(),
                limits: PluginLimits::default(),
                settings_json: "{}".into(),
                sha256: None,
            };
            let plugin = Plugin::load(&engine, &spec).expect("load the plugin");
            let inbound = Inbound {
                payload,
                content_type: CONTENT_TYPE.into(),
                source: "lab-mllp".into(),
                received_at: RECEIVED_AT.into(),
                charset: None,
            };
            adapt_loop_plugin(&plugin, &inbound, n);
        }
        other => panic!("PASSERELLE_ADAPT_LOOP: unknown way {other:?} (native, raw, plugin)"),
    }
}

#[inline(never)]
fn adapt_loop_native(
    native: &hl7v2_lab::Hl7v2Lab,
    message: &passerelle_plugin_sdk::types::InboundMessage,
    n: usize,
) {
    for _ in 0..n {
        black_box(native.adapt(black_box(message)).expect("native adapt"));
    }
}

#[inline(never)]
fn adapt_loop_raw(raw: &mut raw::Raw, message: &raw::types::InboundMessage, n: usize) {
    for _ in 0..n {
        black_box(raw.adapt(black_box(message)));
    }
}

#[inline(never)]
fn adapt_loop_plugin(plugin: &Plugin, inbound: &Inbound, n: usize) {
    let rt = runtime();
    for _ in 0..n {
        black_box(
            rt.block_on(plugin.adapt_async(black_box(inbound)))
                .expect("sandbox adapt"),
        );
    }
}

/// A single-threaded tokio runtime to poll `Plugin::adapt_async` (its WASI imports need one).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

criterion_group!(benches, bench_adapt);

fn main() {
    if let Ok(spec) = std::env::var("PASSERELLE_ADAPT_LOOP") {
        adapt_loop(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
