//! The [`Adapter`] trait and the [`export_adapter!`](crate::export_adapter) macro.

use crate::types::{AdaptError, Adapted, InboundMessage, MalformedInput, PluginInfo};

/// An adapter: one source system's messages in, records of the common record model out.
///
/// Implement it on a plain Rust type holding your configured state, then export it with
/// [`export_adapter!`](crate::export_adapter). Unit-test it natively by calling
/// [`Adapter::new`] and [`Adapter::adapt`] under `cargo test`.
///
/// ```
/// use passerelle_plugin_sdk::prelude::*;
///
/// struct Echo;
///
/// impl Adapter for Echo {
///     type Settings = ();
///     fn info() -> PluginInfo {
///         plugin_info("echo", "0.1.0", &["text/plain"], &[])
///     }
///     fn new(_settings: ()) -> Result<Self, String> {
///         Ok(Echo)
///     }
///     fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
///         if message.payload.is_empty() {
///             return Err(malformed("payload", "empty message"));
///         }
///         Ok(Adapted { source_message_id: None, message_type: None, records: vec![] })
///     }
/// }
///
/// export_adapter!(Echo);
///
/// let echo = Echo::new(()).unwrap();
/// let msg = inbound_message(b"hi", "text/plain", "test");
/// assert!(echo.adapt(&msg).unwrap().records.is_empty());
/// ```
pub trait Adapter: Sized + 'static {
    /// The plugin's settings, deserialised from the `[plugins.NAME.settings]` table of the host
    /// configuration. Use `()` when the adapter has none; missing settings deserialise from `{}`.
    type Settings: serde::de::DeserializeOwned;

    /// Name, version and what the adapter accepts.
    fn info() -> PluginInfo;

    /// Builds the adapter from its settings, once, before the first message.
    fn new(settings: Self::Settings) -> Result<Self, String>;

    /// Adapts one message.
    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError>;
}

/// Parses the host's settings JSON and builds the adapter. Used by [`export_adapter!`](crate::export_adapter)
/// and handy in native tests.
///
/// ```
/// # use passerelle_plugin_sdk::prelude::*;
/// # struct A;
/// # impl Adapter for A {
/// #   type Settings = std::collections::HashMap<String, String>;
/// #   fn info() -> PluginInfo { plugin_info("a", "1.0.0", &[], &[]) }
/// #   fn new(s: Self::Settings) -> Result<Self, String> { Ok(A) }
/// #   fn adapt(&self, _: &InboundMessage) -> Result<Adapted, AdaptError> { unreachable!() }
/// # }
/// let a: A = configure(r#"{"k": "v"}"#).unwrap();
/// assert!(configure::<A>("not json").is_err());
/// ```
pub fn configure<A: Adapter>(settings_json: &str) -> Result<A, String> {
    let json = if settings_json.trim().is_empty() {
        "{}"
    } else {
        settings_json
    };
    let settings: A::Settings = match serde_json::from_str(json) {
        Ok(s) => s,
        // `()` settings: accept an empty table.
        Err(e) if json.trim() == "{}" => serde_json::from_str("null").map_err(|_| e.to_string())?,
        Err(e) => return Err(format!("invalid settings: {e}")),
    };
    A::new(settings)
}

/// A [`PluginInfo`] from string slices.
///
/// ```
/// # use passerelle_plugin_sdk::prelude::*;
/// let info = plugin_info("hl7v2-lab", "1.0.0", &["x-application/hl7-v2+er7"], &["ORU^R01"]);
/// assert_eq!(info.message_types, vec!["ORU^R01".to_string()]);
/// ```
pub fn plugin_info(
    name: &str,
    version: &str,
    content_types: &[&str],
    message_types: &[&str],
) -> PluginInfo {
    PluginInfo {
        name: name.to_string(),
        version: version.to_string(),
        content_types: content_types.iter().map(|s| s.to_string()).collect(),
        message_types: message_types.iter().map(|s| s.to_string()).collect(),
    }
}

/// An [`AdaptError::Malformed`] saying where (`OBX[3]-5`, `line 4`) and why.
///
/// ```
/// # use passerelle_plugin_sdk::prelude::*;
/// let e = malformed("PID-3", "no patient identifier");
/// assert!(matches!(e, AdaptError::Malformed(m) if m.location == "PID-3"));
/// ```
pub fn malformed(location: impl Into<String>, reason: impl Into<String>) -> AdaptError {
    AdaptError::Malformed(MalformedInput {
        location: location.into(),
        reason: reason.into(),
    })
}

/// An [`InboundMessage`] for native tests, received now-ish (a fixed time, as plugins have no clock).
///
/// ```
/// # use passerelle_plugin_sdk::prelude::*;
/// let m = inbound_message(b"MSH|^~\\&|...", "x-application/hl7-v2+er7", "lab");
/// assert_eq!(m.source, "lab");
/// ```
pub fn inbound_message(payload: &[u8], content_type: &str, source: &str) -> InboundMessage {
    InboundMessage {
        payload: payload.to_vec(),
        content_type: content_type.to_string(),
        source: source.to_string(),
        received_at: "2026-01-01T00:00:00Z".to_string(),
        charset: None,
    }
}

/// Exports a type implementing [`Adapter`] as the plugin's component exports.
///
/// Put it once in the plugin crate's `lib.rs`. It only expands to something on `wasm32`
/// targets, so the same crate also builds natively for `cargo test`.
///
/// ```ignore
/// passerelle_plugin_sdk::export_adapter!(MyAdapter);
/// ```
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::bindings::Guest;
            use $crate::types::{AdaptError, Adapted, InboundMessage, PluginInfo};

            struct PasserelleExport;

            // A component instance is single-threaded: a thread-local cell is the adapter's home.
            ::std::thread_local! {
                static ADAPTER: ::std::cell::OnceCell<$adapter> = const { ::std::cell::OnceCell::new() };
            }

            impl Guest for PasserelleExport {
                fn describe() -> PluginInfo {
                    <$adapter as $crate::Adapter>::info()
                }

                fn configure(settings: String) -> Result<(), String> {
                    let adapter = $crate::configure::<$adapter>(&settings)?;
                    ADAPTER.with(|cell| {
                        cell.set(adapter).map_err(|_| "configure called twice".to_string())
                    })
                }

                fn adapt(message: InboundMessage) -> Result<Adapted, AdaptError> {
                    ADAPTER.with(|cell| match cell.get() {
                        Some(adapter) => $crate::Adapter::adapt(adapter, &message),
                        None => Err(AdaptError::Internal("adapt called before configure".into())),
                    })
                }
            }

            $crate::bindings::__export_adapter_world!(PasserelleExport with_types_in $crate::bindings);
        };
    };
}
