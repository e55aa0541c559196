//! The configuration schema (serde).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::plugin::PluginLimits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default = "default_routes")]
    pub routes: PathBuf,
    #[serde(default)]
    pub journal: RawJournal,
    #[serde(default)]
    pub plugins: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    pub sources: BTreeMap<String, Spanned<SourceConfig>>,
    #[serde(default)]
    pub destinations: BTreeMap<String, Spanned<DestinationConfig>>,
    #[serde(default)]
    pub delivery: DeliveryDefaults,
    pub admin: Option<AdminConfig>,
    /// The audit log of configuration changes and operator actions (default
    /// `<data_dir>/audit.jsonl`).
    pub audit_log: Option<PathBuf>,
    /// Where compiled components are kept (default `<data_dir>/cache/components`).
    pub component_cache: Option<PathBuf>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_routes() -> PathBuf {
    PathBuf::from("routes.toml")
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJournal {
    pub path: Option<PathBuf>,
    /// A humantime duration (`"30d"`, `"12h"`).
    pub retain_delivered: Option<Spanned<String>>,
    /// Largest size of the journal file, MiB (`PRAGMA max_page_count`).
    pub max_size_mib: Option<Spanned<u64>>,
    /// A humantime duration (`"500us"`, `"0s"`): how long a busy transaction waits for more.
    pub commit_wait: Option<Spanned<String>>,
    /// Keep the journal on NATS JetStream instead of the embedded file (scale-out).
    pub jetstream: Option<Spanned<JetStreamConfig>>,
}

/// `[journal.jetstream]`: several nodes share a replicated NATS JetStream (docs/scale-out.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JetStreamConfig {
    /// Servers of the NATS cluster (`nats://host:4222`); the client fails over between them.
    pub urls: Vec<String>,
    /// A NATS `.creds` file (JWT + NKey seed); relative to the config file's folder.
    pub credentials: Option<PathBuf>,
    /// Copies of each stream (1, 3 or 5; 3 for a cluster that survives losing a server).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
    /// Names the streams (`<PREFIX>_INBOUND`, ...) and subjects (`<prefix>.in.<source>`, ...).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// This node's name (logs, dead letters); default: the host name.
    pub node: Option<String>,
    /// An entry a node took and neither finished nor gave back is handed out again after this.
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
    /// Entries handed out and not yet acknowledged, per consumer (all nodes together).
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Record entries with the same id + content within this window are stored once.
    #[serde(default = "default_duplicate_window_s")]
    pub duplicate_window_s: u64,
    /// How long a JetStream request (publish acknowledgement included) may take.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Adapter tasks per node taking queued messages.
    #[serde(default = "default_adapters")]
    pub adapters: usize,
}

fn default_replicas() -> usize {
    1
}
fn default_prefix() -> String {
    "passerelle".into()
}
fn default_ack_wait_ms() -> u64 {
    30_000
}
fn default_max_ack_pending() -> i64 {
    20_000
}
fn default_duplicate_window_s() -> u64 {
    600
}
fn default_request_timeout_ms() -> u64 {
    5_000
}
fn default_adapters() -> usize {
    2
}

#[derive(Debug, Clone)]
pub struct JournalConfig {
    pub path: PathBuf,
    /// Delivered (and discarded) messages older than this are pruned periodically; `None`:
    /// kept forever. Failed, held, routed and dead messages are always kept.
    pub retain_delivered: Option<std::time::Duration>,
    /// The journal file may not grow past this many MiB (`PRAGMA max_page_count`): past it,
    /// commits fail as "disk full" and ingest is refused until space is freed. `None`: only
    /// the disk bounds it.
    pub max_size_mib: Option<u64>,
    /// How long a transaction that already holds several writes waits for more before its
    /// fsync (`JournalOptions::commit_wait`); zero: never.
    pub commit_wait: std::time::Duration,
    /// `Some`: the journal is on NATS JetStream, not in `path`.
    pub jetstream: Option<JetStreamConfig>,
}

/// `[admin]`: the operators' HTTP API (see `docs/admin-api.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `host:port` to listen on, e.g. `127.0.0.1:8086`.
    pub listen: String,
    /// A file of bearer tokens, one per line (`#` comments, blank lines ignored); relative to
    /// the config file's folder.
    pub token_file: Option<PathBuf>,
    /// The name of an environment variable holding one more token.
    pub token_env: Option<String>,
    /// With no token at all, serve without authentication, only if `listen` is a loopback
    /// address and this is `true`.
    #[serde(default)]
    pub allow_unauthenticated_loopback: bool,
    /// Serve the API over TLS (see [`TlsSettings`]).
    pub tls: Option<TlsSettings>,
}

/// `tls = { cert, key, client_ca }` on a listener (MLLP, HTTP source, admin API). Paths are
/// relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The server certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM). When set, mutual TLS is REQUIRED: a client without a
    /// certificate signed by one of them is refused during the handshake.
    pub client_ca: Option<PathBuf>,
}

impl TlsSettings {
    /// The same settings with `resolve` applied to every path.
    pub fn resolved(self, resolve: &impl Fn(&std::path::Path) -> PathBuf) -> TlsSettings {
        TlsSettings {
            cert: resolve(&self.cert),
            key: resolve(&self.key),
            client_ca: self.client_ca.map(|p| resolve(&p)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlugin {
    pub path: PathBuf,
    pub sha256: Option<String>,
    #[serde(default)]
    pub limits: PluginLimits,
    #[serde(default)]
    pub settings: toml::Table,
}

/// A plugin, resolved.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    pub path: PathBuf,
    /// When set, the `.wasm` must have this SHA-256.
    pub sha256: Option<String>,
    pub limits: PluginLimits,
    /// The `settings` table as JSON, handed to the plugin's `configure`.
    pub settings_json: String,
}

/// A source: where messages come in, and which plugin adapts them.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SourceConfig {
    Mllp(MllpSource),
    Http(HttpSource),
    Inbox(InboxSource),
}

impl SourceConfig {
    /// The keys every source has: plugin, content type, charset.
    fn common(&self) -> (&str, Option<&str>, Option<&str>) {
        match self {
            SourceConfig::Mllp(s) => (&s.plugin, s.content_type.as_deref(), s.charset.as_deref()),
            SourceConfig::Http(s) => (&s.plugin, s.content_type.as_deref(), s.charset.as_deref()),
            SourceConfig::Inbox(s) => (&s.plugin, s.content_type.as_deref(), s.charset.as_deref()),
        }
    }

    /// The plugin that adapts this source's messages.
    pub fn plugin(&self) -> &str {
        self.common().0
    }

    /// Charset to assume when the format does not say (e.g. `ISO-8859-1`).
    pub fn charset(&self) -> Option<&str> {
        self.common().2
    }

    /// Content type handed to the plugin (default per source type).
    pub fn content_type(&self) -> &str {
        self.common().1.unwrap_or(match self {
            SourceConfig::Mllp(_) => "x-application/hl7-v2+er7",
            SourceConfig::Http(_) | SourceConfig::Inbox(_) => "application/octet-stream",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpSource {
    pub plugin: String,
    pub content_type: Option<String>,
    pub charset: Option<String>,
    pub listen: String,
    /// Largest accepted frame; a larger one is rejected and the connection closed.
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// A connection idle this long is closed.
    #[serde(default = "default_idle")]
    pub idle_timeout_secs: u64,
    /// Most connections open at once on this listener.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections open at once from one IP address (0 = no limit).
    #[serde(default)]
    pub max_connections_per_peer: usize,
    /// MLLP over TLS (see [`TlsSettings`]).
    pub tls: Option<TlsSettings>,
}

fn default_max_frame() -> usize {
    16 * 1024 * 1024
}
fn default_idle() -> u64 {
    300
}
fn default_max_connections() -> usize {
    1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    pub plugin: String,
    pub content_type: Option<String>,
    pub charset: Option<String>,
    pub listen: String,
    /// URL path that accepts POSTs (default `/`).
    #[serde(default = "default_http_path")]
    pub path: String,
    #[serde(default = "default_max_frame")]
    pub max_body_bytes: usize,
    /// Bearer tokens, one per line (`#` comments); relative to the config file's folder. With
    /// `token_file` or `token_env`, every POST must carry `Authorization: Bearer <token>`.
    pub token_file: Option<PathBuf>,
    /// The name of an environment variable holding one more token.
    pub token_env: Option<String>,
    /// Most connections open at once from one IP address (0 = no limit).
    #[serde(default)]
    pub max_connections_per_peer: usize,
    /// HTTPS (see [`TlsSettings`]).
    pub tls: Option<TlsSettings>,
}

impl HttpSource {
    /// Whether POSTs must carry a bearer token.
    pub fn requires_token(&self) -> bool {
        self.token_file.is_some() || self.token_env.is_some()
    }
}

fn default_http_path() -> String {
    "/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSource {
    pub plugin: String,
    pub content_type: Option<String>,
    pub charset: Option<String>,
    pub dir: PathBuf,
    /// A file whose size has not changed for this long is taken as complete.
    #[serde(default = "default_settle")]
    pub settle_ms: u64,
    /// Only files whose name ends with one of these (case-insensitive); empty = all files.
    #[serde(default)]
    pub extensions: Vec<String>,
}

fn default_settle() -> u64 {
    500
}

/// A destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum DestinationConfig {
    File(FileDestination),
    Http(HttpDestination),
    /// The built-in shared-record store (`docs/record-store.md`).
    #[serde(rename = "record-store")]
    RecordStore(RecordStoreDestination),
}

impl DestinationConfig {
    /// The destination's own retry policy, if it overrides the defaults.
    pub fn retry(&self) -> Option<RetryPolicy> {
        match self {
            DestinationConfig::File(d) => d.retry,
            DestinationConfig::Http(d) => d.retry,
            DestinationConfig::RecordStore(d) => d.retry,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDestination {
    /// Overrides `[delivery.retry]` for this destination.
    pub retry: Option<RetryPolicy>,
    /// Folder for the records (relative: under the data dir).
    pub dir: PathBuf,
}

/// `type = "record-store"`: the patients' shared records (`docs/record-store.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordStoreDestination {
    /// Overrides `[delivery.retry]` for this destination.
    pub retry: Option<RetryPolicy>,
    /// The SQLite file (relative: under the data dir), e.g. `record-store.db`.
    pub path: PathBuf,
    /// Test and demo INS namespaces (`1.2.250.1.213.1.4.10`, `.11`) count as qualified (R1).
    /// Only for test platforms.
    #[serde(default)]
    pub accept_test_ins: bool,
    /// The habilitation matrix (R4), relative to the config file; default: the built-in one.
    pub matrix: Option<PathBuf>,
    /// The FHIR read API and the patient API; none: the store is only fed.
    pub api: Option<RecordStoreApi>,
}

/// `[destinations.<name>.api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordStoreApi {
    /// `host:port`, e.g. `127.0.0.1:8090`.
    pub listen: String,
    /// The actors file (tokens → actors), relative to the config file.
    pub actors: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDestination {
    /// Overrides `[delivery.retry]` for this destination.
    pub retry: Option<RetryPolicy>,
    pub url: String,
    /// `fhir-transaction`: POST the Bundle, as a transaction, to a FHIR server base URL;
    /// `webhook`: POST the whole record (envelope + bundle) to the URL.
    #[serde(default)]
    pub mode: HttpMode,
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u64,
    /// Extra headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_http_timeout() -> u64 {
    10_000
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpMode {
    #[default]
    FhirTransaction,
    Webhook,
}

/// Retries: exponential backoff with jitter, then dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 20,
            initial_backoff_ms: 200,
            max_backoff_ms: 60_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryDefaults {
    pub retry: RetryPolicy,
    /// Back-pressure: when a destination has more pending outbox entries than this, messages
    /// routed to it are not accepted (MLLP waits up to `max_pending_wait_ms`, then withholds
    /// the ACK; HTTP answers 503) until it drains. 0 = no limit.
    pub max_pending: u64,
    /// How long an MLLP connection (or the inbox) waits for a full destination to drain
    /// before giving up on a message (no ACK, connection closed).
    pub max_pending_wait_ms: u64,
}

impl Default for DeliveryDefaults {
    fn default() -> Self {
        DeliveryDefaults {
            retry: RetryPolicy::default(),
            max_pending: 1_000_000,
            max_pending_wait_ms: 5_000,
        }
    }
}
