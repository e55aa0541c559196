//! HTTP ingest: `POST <path>` with the message as the body (hyper 1, HTTP/1.1).
//!
//! | request | response |
//! |---|---|
//! | `POST <path>` without a valid bearer token (when the source has `token_file`/`token_env`) | `401` with `WWW-Authenticate: Bearer`, decided from the headers before any body byte is read; the connection is closed |
//! | `POST <path>`, stored and adapted | `202 {"message_id": N, "records": R, "duplicates": D}` |
//! | `POST <path>`, stored as held (the plugin is suspended by its circuit breaker) | `202 {"message_id": N, "records": 0, "duplicates": 0, "held": "…"}` |
//! | `POST <path>`, rejected by the plugin (stored as failed) | `422 {"message_id": N, "error": "…", "location": "…"}` (`location` for malformed input) |
//! | `POST <path>`, body over `max_body_bytes` | `413 {"error": "…"}`, refused from `Content-Length` before reading, else as soon as the cap is passed; the connection is closed |
//! | `POST <path>`, journal error (nothing stored) | `503 {"error": "…"}` with `Retry-After: 1` (`30` when the disk is full) |
//! | `POST <path>`, back-pressure: a destination of the message has `[delivery] max_pending` entries pending (nothing stored) | `503 {"error": "…"}` with `Retry-After: 5` |
//! | `GET /health` | `200 {"status": "ok"}` (liveness) |
//! | another method on `<path>` (or on `/health`) | `405` with `Allow` |
//! | any other path | `404` |
//!
//! Every error body is JSON `{"error": "…"}`. The response is sent only after
//! [`Pipeline::ingest`] returns, i.e. after the journal commit. Headers must arrive within
//! 30 s. At most `max_connections_per_peer` connections from one IP address (0 = no limit):
//! beyond that a new connection is closed at once, with a warning. With `tls`, the TLS
//! handshake (mutual with `client_ca`) comes first, in the connection's task; a failed one
//! closes the connection before any HTTP byte is read ([`crate::ingest::tls`]). Shutdown: stop accepting,
//! let the requests in progress finish (hyper's graceful shutdown on each connection), then
//! close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::BearerTokens;
use crate::config::HttpSource;
use crate::http_server::{self, accept_until_shutdown, serve_connection};
use crate::ingest::peers::{PeerLimit, PeerPermit};
use crate::ingest::tls::{self, TlsAcceptor};
use crate::plugin::{PluginError, Rejection};
use crate::topology::{Ingested, Pipeline, SourceCtx};

/// The liveness path.
pub const HEALTH_PATH: &str = "/health";
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound HTTP listener, not yet accepting.
#[derive(Debug)]
pub struct HttpListener {
    ctx: SourceCtx,
    listener: TcpListener,
    addr: SocketAddr,
    path: String,
    max_body: usize,
    /// `None`: no token required.
    tokens: Option<BearerTokens>,
    peers: Arc<PeerLimit>,
    tls: Option<Arc<TlsAcceptor>>,
}

struct Shared {
    ctx: SourceCtx,
    pipeline: Arc<Pipeline>,
    path: String,
    max_body: usize,
    tokens: Option<BearerTokens>,
    tls: Option<Arc<TlsAcceptor>>,
    /// The listener's name in the logs of its connections.
    server: String,
}

impl HttpListener {
    /// Loads the tokens (with `token_file`/`token_env`, at least one is required) and binds
    /// `config.listen`. Must be called from within a tokio runtime.
    pub fn bind(ctx: SourceCtx, config: &HttpSource) -> anyhow::Result<Self> {
        let tokens = if config.requires_token() {
            let what = format!("sources.{}", ctx.name);
            let tokens = BearerTokens::load(
                &what,
                config.token_file.as_deref(),
                config.token_env.as_deref(),
            )?;
            if tokens.is_empty() {
                anyhow::bail!(
                    "{what}: token_file/token_env are set but give no token; refusing to start an unauthenticated source"
                );
            }
            Some(tokens)
        } else {
            None
        };
        let tls = tls::load_opt(
            &format!("sources.{}", ctx.name),
            config.tls.as_ref(),
            &[b"http/1.1"],
        )?;
        let std_listener = std::net::TcpListener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let path = if config.path.starts_with('/') {
            config.path.clone()
        } else {
            format!("/{}", config.path)
        };
        Ok(HttpListener {
            ctx,
            listener,
            addr,
            path,
            max_body: config.max_body_bytes,
            tokens,
            peers: PeerLimit::new(config.max_connections_per_peer),
            tls,
        })
    }

    /// The TLS acceptor, when the source has `tls`.
    pub fn tls(&self) -> Option<&Arc<TlsAcceptor>> {
        self.tls.as_ref()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving; the task ends after the shutdown signal, once every connection has
    /// finished its request in progress.
    pub fn spawn(self, pipeline: Arc<Pipeline>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(pipeline, shutdown))
    }

    async fn run(self, pipeline: Arc<Pipeline>, shutdown: watch::Receiver<bool>) {
        let HttpListener {
            ctx,
            listener,
            addr,
            path,
            max_body,
            tokens,
            peers,
            tls,
        } = self;
        let server = format!("HTTP source {}", ctx.name);
        let shared = Arc::new(Shared {
            ctx,
            pipeline,
            path,
            max_body,
            tokens,
            tls,
            server,
        });
        let source = shared.ctx.name.clone();
        tracing::info!(source = %source, listen = %addr, path = %shared.path, tls = shared.tls.is_some(), "HTTP listener accepting");
        let for_connections = shutdown.clone();
        accept_until_shutdown(&shared.server, listener, shutdown, |stream, peer| {
            let Some(permit) = peers.try_acquire(peer.ip()) else {
                crate::telemetry::ingest_refused(&source, "peer-limit");
                if peers.should_warn() {
                    tracing::warn!(source = %source, peer = %peer, max_connections_per_peer = peers.max(), "HTTP: too many connections from this address; closing the new one");
                }
                return None;
            };
            Some(serve(shared.clone(), stream, peer, permit, for_connections.clone()))
        })
        .await;
    }
}

/// One connection: the TLS handshake first (when configured), then HTTP. The permit is held
/// until it ends.
async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _permit: PeerPermit,
    shutdown: watch::Receiver<bool>,
) {
    let conn = shared.clone();
    let handler = move |req| {
        let shared = shared.clone();
        async move { route(&shared, peer, req).await }
    };
    serve_connection(
        &conn.server,
        stream,
        peer,
        conn.tls.as_deref(),
        HEADER_READ_TIMEOUT,
        shutdown,
        handler,
    )
    .await;
}

async fn route(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path == shared.path {
        if req.method() == Method::POST {
            return ingest(shared, peer, req).await;
        }
        if path == HEALTH_PATH && matches!(*req.method(), Method::GET | Method::HEAD) {
            return health();
        }
        let allow = if path == HEALTH_PATH {
            "GET, HEAD, POST"
        } else {
            "POST"
        };
        return method_not_allowed(allow);
    }
    if path == HEALTH_PATH {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return health();
        }
        return method_not_allowed("GET, HEAD");
    }
    error(StatusCode::NOT_FOUND, "not found")
}

async fn ingest(
    shared: &Shared,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let source = shared.ctx.name.as_str();
    // The token first, from the head only: a refused request's body is never read.
    if let Some(tokens) = &shared.tokens
        && !tokens.check(req.headers().get(AUTHORIZATION))
    {
        crate::telemetry::ingest_refused(source, "unauthorized");
        tracing::warn!(source, peer = %peer, "HTTP request without a valid token refused");
        return unauthorized();
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > shared.max_body as u64) {
        tracing::warn!(source, peer = %peer, length = declared, limit = shared.max_body, "HTTP body too large (Content-Length); refused");
        return too_large(shared.max_body);
    }
    let body = match Limited::new(req.into_body(), shared.max_body)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::warn!(source, peer = %peer, limit = shared.max_body, "HTTP body too large; refused");
            return too_large(shared.max_body);
        }
        Err(e) => {
            tracing::debug!(source, peer = %peer, error = %e, "cannot read the HTTP body");
            return error(
                StatusCode::BAD_REQUEST,
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let received = std::time::Instant::now(); // metrics: ACK latency (body read → answer)
    let outcome = shared
        .pipeline
        .ingest(&shared.ctx, body.to_vec(), Some(peer.to_string()))
        .await;
    if outcome.is_ok() {
        crate::telemetry::ack_sent(source, received);
    }
    match outcome {
        Ok(Ingested::Accepted {
            receipt, records, ..
        }) => {
            tracing::debug!(source, peer = %peer, message_id = %receipt.message_id, records, "HTTP message accepted");
            json_response(
                StatusCode::ACCEPTED,
                json!({
                    "message_id": receipt.message_id.0,
                    "records": records,
                    "duplicates": receipt.duplicate_records,
                }),
            )
        }
        Ok(Ingested::Rejected { message_id, error }) => {
            tracing::info!(source, peer = %peer, message_id = %message_id, "HTTP message rejected by the plugin; answering 422");
            let mut body = json!({ "message_id": message_id.0, "error": error.to_string() });
            if let PluginError::Rejected {
                rejection: Rejection::Malformed { location, .. },
                ..
            } = &error
            {
                body["location"] = json!(location);
            }
            json_response(StatusCode::UNPROCESSABLE_ENTITY, body)
        }
        Ok(Ingested::Queued { message_id }) => {
            tracing::debug!(source, peer = %peer, message_id = %message_id, "HTTP message queued for adaptation; answering 202");
            json_response(
                StatusCode::ACCEPTED,
                json!({ "message_id": message_id.0, "queued": true }),
            )
        }
        Ok(Ingested::Held { message_id, reason }) => {
            tracing::info!(source, peer = %peer, message_id = %message_id, "HTTP message held (plugin suspended); stored, answering 202");
            json_response(
                StatusCode::ACCEPTED,
                json!({
                    "message_id": message_id.0,
                    "records": 0,
                    "duplicates": 0,
                    "held": reason,
                }),
            )
        }
        Err(e) => {
            let retry_after = if e.is_backpressure() {
                tracing::warn!(source, peer = %peer, error = %e, "HTTP message NOT stored (back-pressure); answering 503");
                "5"
            } else {
                crate::telemetry::ingest_refused(source, "journal");
                tracing::error!(source, peer = %peer, error = %e, "HTTP message NOT stored (journal error); answering 503");
                if e.is_disk_full() { "30" } else { "1" }
            };
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("message not stored: {e}"),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(retry_after));
            response
        }
    }
}

/// 401; the body (if any) is left unread and the connection is closed.
fn unauthorized() -> Response<Full<Bytes>> {
    http_server::unauthorized(
        error(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
        "Bearer realm=\"passerelle\"",
    )
}

fn health() -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, json!({ "status": "ok" }))
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

fn too_large(limit: usize) -> Response<Full<Bytes>> {
    let mut response = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {limit} bytes"),
    );
    // The rest of the body is not read: the connection cannot be reused.
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, json!({ "error": message }))
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
