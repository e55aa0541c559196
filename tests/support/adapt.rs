//! Calling a plugin directly, as the pipeline does, without a daemon: for the adapter tests
//! that feed it every sample and check what comes out.

use passerelle::plugin::{Inbound, Plugin, PluginEngine, PluginLimits, PluginSpec};

use crate::wasm;

/// An engine that compiles through the suite's shared cache ([`crate::component_cache`]).
pub fn engine() -> PluginEngine {
    PluginEngine::new(Some(crate::component_cache())).expect("wasm engine")
}

/// The built plugin `crate_name` (e.g. `hl7v2-lab`), named after it, with default limits and
/// `settings_json` as its settings; panics when it does not load.
pub fn load_plugin(engine: &PluginEngine, crate_name: &str, settings_json: &str) -> Plugin {
    let spec = PluginSpec {
        name: crate_name.into(),
        path: wasm(crate_name),
        limits: PluginLimits::default(),
        settings_json: settings_json.into(),
        sha256: None,
    };
    Plugin::load(engine, &spec).unwrap_or_else(|e| panic!("loading {crate_name}: {e}"))
}

/// `payload` as a source named `e2e` hands it over: `content_type`, a fixed receive time, no
/// forced charset. Override a field with struct update syntax.
pub fn inbound(payload: &[u8], content_type: &str) -> Inbound {
    Inbound {
        payload: payload.to_vec(),
        content_type: content_type.into(),
        source: "e2e".into(),
        received_at: "2026-01-01T00:00:00.000Z".into(),
        charset: None,
    }
}

/// MSH-9 of an HL7 v2 message's first segment, as `CODE^EVENT` (empty without an MSH).
pub fn message_type(text: &str) -> String {
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .next()
        .unwrap_or("");
    let msh = first.split('\r').next().unwrap_or("");
    let Some(sep) = msh.chars().nth(3) else {
        return String::new();
    };
    let msh9 = msh.split(sep).nth(8).unwrap_or("");
    msh9.split('^').take(2).collect::<Vec<_>>().join("^")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_reads_msh9_with_any_terminator() {
        for text in [
            "MSH|^~\\&|A|B|C|D|20240101||ORU^R01^ORU_R01|1|P|2.5\rPID|1",
            "\u{feff}MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\nPID|1",
            "MSH#^~\\&#A#B#C#D#20240101##ORU^R01#1#P#2.5\r\n",
        ] {
            assert_eq!(message_type(text), "ORU^R01", "{text:?}");
        }
        assert_eq!(message_type("PID|1"), "");
    }
}
