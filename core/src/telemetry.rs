//! Metrics: the `metrics` facade, exposed in the Prometheus text format by the admin API
//! (`GET /metrics`).
//!
//! The instrumented code calls the small functions below (one line at each place: pipeline,
//! sources, delivery workers); they are no-ops until [`install`] has put the Prometheus recorder
//! in place (the daemon does it at start; unit tests and the `adapt` CLI never pay for it).
//! Values that other parts already keep (route and plugin reload counts, queue depths, message
//! counts per status) are not counted twice: the admin API copies them into the registry right
//! before rendering ([`Scrape`]).
//!
//! Every metric is listed in `docs/admin-api.md`. Labels carry configuration names only
//! (source, plugin, route, destination): never patient data.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::plugin::{PluginError, TrapCause};

/// Histogram buckets (seconds) for per-message timings: adapt calls, journal commits, ACKs.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];
/// Histogram samples are folded into their buckets at least this often (and at each scrape).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
/// `None` when another recorder was installed first (then nothing is exported).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    let _ = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || {
                            loop {
                                std::thread::sleep(UPKEEP_EVERY);
                                upkeep.run_upkeep();
                            }
                        });
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "passerelle_messages_received_total",
        "Messages handed to the pipeline, per source and plugin"
    );
    describe_counter!(
        "passerelle_messages_adapted_total",
        "Messages the plugin adapted into records"
    );
    describe_counter!(
        "passerelle_messages_failed_total",
        "Messages stored as failed: rejected by the plugin, trapped, invalid output, not the source's format"
    );
    describe_counter!(
        "passerelle_records_routed_total",
        "Records routed to a destination, per route and destination (resends included)"
    );
    describe_counter!(
        "passerelle_records_held_total",
        "Records no route matched (held), per source"
    );
    describe_counter!(
        "passerelle_records_duplicate_total",
        "Records already stored by an earlier message (not delivered again), per source"
    );
    describe_counter!(
        "passerelle_plugin_traps_total",
        "Plugin calls that trapped, per plugin and cause"
    );
    describe_histogram!(
        "passerelle_plugin_adapt_seconds",
        metrics::Unit::Seconds,
        "Time of one adapt call in the sandbox, per plugin"
    );
    describe_histogram!(
        "passerelle_journal_commit_seconds",
        metrics::Unit::Seconds,
        "Time to store one message durably (group commit included)"
    );
    describe_histogram!(
        "passerelle_ack_latency_seconds",
        metrics::Unit::Seconds,
        "From a message fully received to its acknowledgement sent, per source"
    );
    describe_counter!(
        "passerelle_deliveries_total",
        "Outbox entries delivered, per destination"
    );
    describe_counter!(
        "passerelle_delivery_retries_total",
        "Failed delivery attempts that will be retried, per destination"
    );
    describe_counter!(
        "passerelle_dead_letters_total",
        "Outbox entries dead-lettered, per destination"
    );
    describe_gauge!(
        "passerelle_queue_depth",
        "Pending outbox entries, per destination"
    );
    describe_gauge!(
        "passerelle_dead_letters",
        "Dead letters waiting for an operator, per destination"
    );
    describe_gauge!(
        "passerelle_destination_paused",
        "1 while a destination is paused"
    );
    describe_gauge!("passerelle_messages", "Messages in the journal, per status");
    describe_counter!(
        "passerelle_route_reloads_total",
        "Routes files swapped in since start"
    );
    describe_counter!(
        "passerelle_route_reload_failures_total",
        "Routes files rejected since start"
    );
    describe_counter!(
        "passerelle_plugin_reloads_total",
        "New plugin builds swapped in since start, per plugin"
    );
    describe_counter!(
        "passerelle_plugin_reload_failures_total",
        "New plugin builds rejected since start, per plugin"
    );
    describe_counter!(
        "passerelle_journal_transactions_total",
        "Group-commit transactions of the journal (one WAL fsync each)"
    );
    describe_counter!(
        "passerelle_journal_requests_total",
        "Journal writes committed through those transactions (requests / transactions = batch size)"
    );
    describe_counter!(
        "passerelle_journal_failed_transactions_total",
        "Journal transactions that failed (every write in them got the error)"
    );
    describe_gauge!(
        "passerelle_journal_largest_batch",
        "Most writes committed by one journal transaction since start"
    );
    describe_counter!(
        "passerelle_journal_wal_rewinds_total",
        "Times the WAL started over after a checkpoint (the background checkpoint keeps up)"
    );
    describe_counter!(
        "passerelle_journal_pruned_total",
        "Messages removed by the retention task"
    );
    describe_counter!(
        "passerelle_messages_held_total",
        "Messages stored as held because their plugin was suspended (or resuming), per source and plugin"
    );
    describe_counter!(
        "passerelle_plugin_breaker_trips_total",
        "Times a plugin was suspended by its circuit breaker, per plugin"
    );
    describe_gauge!(
        "passerelle_plugin_suspended",
        "1 while a plugin is suspended or resuming (its messages are held), per plugin"
    );
    describe_gauge!(
        "passerelle_plugin_held_messages",
        "Messages held for a plugin, waiting to be re-processed, per plugin"
    );
    describe_counter!(
        "passerelle_ingest_refused_total",
        "Messages or connections refused by a source, per source and reason (backpressure, journal, unauthorized, peer-limit)"
    );
}

// --- Pipeline ------------------------------------------------------------------------------

pub fn message_received(source: &str, plugin: &str) {
    counter!("passerelle_messages_received_total", "source" => source.to_string(), "plugin" => plugin.to_string())
        .increment(1);
}

pub fn message_adapted(source: &str, plugin: &str) {
    counter!("passerelle_messages_adapted_total", "source" => source.to_string(), "plugin" => plugin.to_string())
        .increment(1);
}

pub fn message_failed(source: &str, plugin: &str) {
    counter!("passerelle_messages_failed_total", "source" => source.to_string(), "plugin" => plugin.to_string())
        .increment(1);
}

/// One adapt call: its duration, and its trap if it trapped.
pub fn adapt_call(plugin: &str, took: Duration, error: Option<&PluginError>) {
    histogram!("passerelle_plugin_adapt_seconds", "plugin" => plugin.to_string())
        .record(took.as_secs_f64());
    if let Some(PluginError::Trap { cause, .. }) = error {
        let cause = match cause {
            TrapCause::Timeout => "timeout",
            TrapCause::MemoryLimit => "memory",
            TrapCause::StackOverflow => "stack",
            TrapCause::Panic => "panic",
            TrapCause::Other(_) => "other",
        };
        counter!("passerelle_plugin_traps_total", "plugin" => plugin.to_string(), "cause" => cause)
            .increment(1);
    }
}

pub fn record_routed(route: Option<&str>, destination: &str) {
    counter!(
        "passerelle_records_routed_total",
        "route" => route.unwrap_or("").to_string(),
        "destination" => destination.to_string()
    )
    .increment(1);
}

pub fn records_held(source: &str, n: u64) {
    if n > 0 {
        counter!("passerelle_records_held_total", "source" => source.to_string()).increment(n);
    }
}

pub fn records_duplicate(source: &str, n: u64) {
    if n > 0 {
        counter!("passerelle_records_duplicate_total", "source" => source.to_string()).increment(n);
    }
}

pub fn message_held(source: &str, plugin: &str) {
    counter!("passerelle_messages_held_total", "source" => source.to_string(), "plugin" => plugin.to_string())
        .increment(1);
}

pub fn breaker_tripped(plugin: &str) {
    counter!("passerelle_plugin_breaker_trips_total", "plugin" => plugin.to_string()).increment(1);
}

pub fn journal_commit(took: Duration) {
    histogram!("passerelle_journal_commit_seconds").record(took.as_secs_f64());
}

// --- Sources -------------------------------------------------------------------------------

/// The sender was acknowledged for a message fully received at `received`.
pub fn ack_sent(source: &str, received: Instant) {
    histogram!("passerelle_ack_latency_seconds", "source" => source.to_string())
        .record(received.elapsed().as_secs_f64());
}

/// A source refused a message or a connection: `backpressure` (a destination over
/// `max_pending`), `journal` (the commit failed, e.g. disk full), `unauthorized` (no valid
/// token), `peer-limit` (too many connections from one address).
pub fn ingest_refused(source: &str, reason: &'static str) {
    counter!("passerelle_ingest_refused_total", "source" => source.to_string(), "reason" => reason)
        .increment(1);
}

// --- Delivery workers -----------------------------------------------------------------------

pub fn delivered(destination: &str, n: u64) {
    counter!("passerelle_deliveries_total", "destination" => destination.to_string()).increment(n);
}

pub fn delivery_retry(destination: &str) {
    counter!("passerelle_delivery_retries_total", "destination" => destination.to_string())
        .increment(1);
}

pub fn dead_lettered(destination: &str, entries: u64) {
    counter!("passerelle_dead_letters_total", "destination" => destination.to_string())
        .increment(entries);
}

pub fn pruned(n: u64) {
    counter!("passerelle_journal_pruned_total").increment(n);
}

// --- At scrape time -------------------------------------------------------------------------

/// Copies values kept elsewhere into the registry, right before rendering.
pub struct Scrape;

impl Scrape {
    pub fn queue(destination: &str, pending: u64, dead: u64, paused: bool) {
        let d = destination.to_string();
        gauge!("passerelle_queue_depth", "destination" => d.clone()).set(pending as f64);
        gauge!("passerelle_dead_letters", "destination" => d.clone()).set(dead as f64);
        gauge!("passerelle_destination_paused", "destination" => d).set(u8::from(paused) as f64);
    }

    pub fn messages(status: &str, n: u64) {
        gauge!("passerelle_messages", "status" => status.to_string()).set(n as f64);
    }

    /// The journal writer's counters.
    pub fn journal(stats: &crate::journal::JournalStats) {
        counter!("passerelle_journal_transactions_total").absolute(stats.transactions);
        counter!("passerelle_journal_requests_total").absolute(stats.requests);
        counter!("passerelle_journal_failed_transactions_total")
            .absolute(stats.failed_transactions);
        gauge!("passerelle_journal_largest_batch").set(stats.largest_batch as f64);
        counter!("passerelle_journal_wal_rewinds_total").absolute(stats.wal_rewinds);
    }

    /// Counters that only grow, kept by the routes handle.
    pub fn routes(reloads: u64, failures: u64) {
        counter!("passerelle_route_reloads_total").absolute(reloads);
        counter!("passerelle_route_reload_failures_total").absolute(failures);
    }

    /// A plugin's circuit breaker: suspended (or resuming) or not, and its held messages.
    pub fn plugin_breaker(plugin: &str, suspended: bool, held: u64) {
        gauge!("passerelle_plugin_suspended", "plugin" => plugin.to_string())
            .set(u8::from(suspended) as f64);
        gauge!("passerelle_plugin_held_messages", "plugin" => plugin.to_string()).set(held as f64);
    }

    /// Counters that only grow, kept by the plugin registry.
    pub fn plugin(plugin: &str, reloads: u64, failures: u64) {
        counter!("passerelle_plugin_reloads_total", "plugin" => plugin.to_string())
            .absolute(reloads);
        counter!("passerelle_plugin_reload_failures_total", "plugin" => plugin.to_string())
            .absolute(failures);
    }
}
