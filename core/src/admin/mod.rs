//! The admin HTTP API (hyper 1, HTTP/1.1, JSON): status of sources, plugins, routes and
//! destinations, the message browser, replay, dead letters, pause/resume, Prometheus metrics.
//! Configured by `[admin]`; every endpoint is described in `docs/admin-api.md`.
//!
//! Security:
//! - Every request but `GET /health` must carry `Authorization: Bearer <token>` ([`auth`]).
//!   The header is checked as soon as the request head is parsed, before any body byte is read:
//!   a refused request gets `401` with `WWW-Authenticate: Bearer` and `Connection: close`, and
//!   its body is never read (the connection is closed).
//! - Request bodies (JSON filters) are read only after that, up to [`MAX_BODY`].
//! - Without any token the API refuses to start, unless it listens on loopback and
//!   `allow_unauthenticated_loopback = true`.
//! - Nothing from a request (tokens, search values such as an INS) is logged above debug.
//! - With `tls`, HTTPS only (mutual TLS with `client_ca`), as for the sources
//!   ([`crate::ingest::tls`]).
//! - Every action (resume, pause, replay, dead letters) is recorded in the [`audit`] log with
//!   the name of the token that asked for it.
//!
//! Lifecycle: [`AdminListener::bind`] (tokens loaded, socket bound) runs before the sources
//! start, so a bad `[admin]` stops the daemon before it accepts anything; [`AdminListener::spawn`]
//! serves once everything runs; shutdown stops accepting and lets requests in progress finish.

pub mod audit;
pub mod auth;
mod handlers;
pub mod views;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{AdminConfig, SourceConfig};
use crate::deliver::Deliveries;
use crate::http_server::{self, accept_until_shutdown, serve_connection};
use crate::ingest::SourceInfo;
use crate::ingest::tls::{self, TlsAcceptor};
use crate::journal::Journal;
use crate::plugin::PluginRegistry;
use crate::route::RoutesHandle;
use crate::topology::Pipeline;

pub use auth::Auth;

/// Largest request body (JSON filters) read.
pub const MAX_BODY: usize = 64 * 1024;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the API looks at or acts on.
pub struct AdminState {
    /// The embedded journal (`None` when the node runs on JetStream).
    pub journal: Option<Journal>,
    pub pipeline: Arc<Pipeline>,
    pub plugins: Arc<PluginRegistry>,
    pub routes: Arc<RoutesHandle>,
    pub deliveries: Arc<Deliveries>,
    /// The running sources, as started.
    pub sources: Vec<SourceInfo>,
    /// The configured sources (plugin, content type, charset: how to replay their messages).
    pub source_configs: BTreeMap<String, SourceConfig>,
    /// `None`: no metrics recorder (then `/metrics` answers 503).
    pub metrics: Option<PrometheusHandle>,
    /// The daemon's shutdown signal (`true`: stopping, so not ready).
    pub stopping: watch::Receiver<bool>,
    /// Where operator actions are recorded (`None`: nowhere, in tests).
    pub audit: Option<Arc<audit::AuditLog>>,
}

/// A bound admin listener with its tokens loaded, not serving yet.
pub struct AdminListener {
    listener: TcpListener,
    addr: SocketAddr,
    auth: Auth,
    tls: Option<Arc<TlsAcceptor>>,
}

impl AdminListener {
    /// Resolves and binds `config.listen` and loads the tokens. Must be called from within a
    /// tokio runtime.
    pub fn bind(config: &AdminConfig) -> anyhow::Result<AdminListener> {
        let addr = config
            .listen
            .to_socket_addrs()
            .with_context(|| format!("admin.listen {:?}", config.listen))?
            .next()
            .with_context(|| format!("admin.listen {:?} resolves to no address", config.listen))?;
        let auth = Auth::load(config, addr)?;
        let tls = tls::load_opt("admin", config.tls.as_ref(), &[b"http/1.1"])?;
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("admin API: cannot listen on {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        Ok(AdminListener {
            listener,
            addr,
            auth,
            tls,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` turns `true`.
    pub fn spawn(self, state: AdminState, shutdown: watch::Receiver<bool>) -> AdminServer {
        let addr = self.addr;
        let tls = self.tls.is_some();
        let shared = Arc::new(Shared {
            state,
            auth: self.auth,
            tls: self.tls,
        });
        let task = tokio::spawn(run(self.listener, shared, shutdown));
        tracing::info!(listen = %addr, tls, "admin API listening");
        AdminServer { addr, task }
    }
}

/// The running admin API.
pub struct AdminServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl AdminServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the server to end (after the shutdown signal): requests in progress finish.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "admin API task failed");
        }
    }
}

pub(crate) struct Shared {
    pub state: AdminState,
    auth: Auth,
    tls: Option<Arc<TlsAcceptor>>,
}

/// The name of this server in the logs.
const SERVER: &str = "admin API";

async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let for_connections = shutdown.clone();
    accept_until_shutdown(SERVER, listener, shutdown, |stream, peer| {
        Some(serve(shared.clone(), stream, peer, for_connections.clone()))
    })
    .await;
}

/// One connection: the TLS handshake first (when configured), then HTTP.
async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let conn = shared.clone();
    let handler = move |req| {
        let shared = shared.clone();
        async move { handle(&shared, peer, req).await }
    };
    serve_connection(
        SERVER,
        stream,
        peer,
        conn.tls.as_deref(),
        HEADER_READ_TIMEOUT,
        shutdown,
        handler,
    )
    .await;
}

/// Authentication first (from the head only), then the endpoint.
async fn handle(
    shared: &Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.uri().path() == "/health" {
        return handlers::health(&req);
    }
    let Some(actor) = shared
        .auth
        .actor(req.headers().get(hyper::header::AUTHORIZATION))
    else {
        tracing::warn!(peer = %peer, method = %req.method(), path = %req.uri().path(), "admin API: request without a valid token refused");
        return unauthorized();
    };
    handlers::route(shared, req, &actor).await
}

/// 401; the body (if any) is left unread and the connection is closed.
fn unauthorized() -> Response<Full<Bytes>> {
    http_server::unauthorized(
        error(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
        "Bearer realm=\"passerelle\"",
    )
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

pub(crate) fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut text = serde_json::to_string_pretty(body).unwrap_or_default();
    text.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
