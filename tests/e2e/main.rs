//! End-to-end tests, one module per concern. They start the real `passerelle` binary with real
//! plugin components (built by `scripts/build-plugins.sh`) on loopback sockets.

mod crash;
mod http_destination;
mod mllp_ingest;
mod plugin_reload;
mod reload;
mod sandbox;
mod hl7v2_lab;
