//! Passerelle host runtime.
//!
//! The modules follow the data: [`ingest`] (MLLP, HTTP, inbox) → [`plugin`] (sandboxed adapters)
//! → [`journal`] (durable store) → [`route`] (hot-reloaded rules) → [`deliver`] (destinations).
//! [`config`] reads the TOML configuration; [`record`] is the common record model.
//! [`admin`] is the operators' HTTP API; [`telemetry`] the Prometheus metrics; [`auth`] the
//! bearer tokens shared by the admin API and the HTTP sources; `http_server` the HTTP/1
//! serving of those servers and of the record store API.

pub mod admin;
pub mod auth;
pub mod clock;
pub mod config;
pub mod deliver;
pub(crate) mod http_server;
pub mod ingest;
pub mod journal;
pub mod plugin;
pub mod record;
pub mod route;
pub mod store;
pub mod telemetry;
pub mod topology;
