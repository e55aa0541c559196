//! End-to-end tests, one module per concern. They start the real `passerelle` binary with real
//! plugin components (built by `scripts/build-plugins.sh`) on loopback sockets.

mod admin;
mod breaker;
mod cli_routes;
mod crash;
mod crbio;
mod dcc;
mod disk_full;
mod eprescription;
mod hl7v2_lab;
mod hprim;
mod http_destination;
mod mllp_ingest;
mod outage;
mod plugin_reload;
mod python_adapter;
mod record_store;
mod reload;
mod sandbox;
mod scaffold;
mod scale_out;
mod tls;
