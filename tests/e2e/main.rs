//! End-to-end tests, one module per concern. They start the real `passerelle` binary with real
//! plugin components (built by `scripts/build-plugins.sh`) on loopback sockets.

mod admin;
mod breaker;
mod cli_routes;
mod crash;
mod dcc;
mod eprescription;
mod hl7v2_lab;
mod hprim;
mod http_destination;
mod mllp_ingest;
mod plugin_reload;
mod python_adapter;
mod reload;
mod sandbox;
mod scaffold;
