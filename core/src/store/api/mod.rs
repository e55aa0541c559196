//! The record store's HTTP API (hyper 1, HTTP/1.1): FHIR R4 searches under `/fhir`, the
//! patient-side actions under `/patient/{ins}`. See `docs/record-store.md` for every endpoint.
//!
//! Every request but `GET /health` must carry `Authorization: Bearer <token>` of a known actor
//! ([`Actors`]); it is checked from the request head alone, so a refused request gets `401`
//! (`Connection: close`) before any body byte is read. Requests carry no body we read: the
//! patient actions are POSTs with their arguments in the path. Nothing from a request (tokens,
//! INS, justifications) is logged above debug.

mod fhir;
mod patient;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RecordStore;
use super::actors::Actors;
use super::policy::{Actor, Mode};
use super::read::Session;
use crate::config::RecordStoreApi;
use crate::http_server::{self, accept_until_shutdown, serve_connection};

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Reply = Response<Full<Bytes>>;

struct Shared {
    store: RecordStore,
    actors: Actors,
}

/// A bound API listener with its actors loaded, not serving yet.
pub struct ApiListener {
    listener: TcpListener,
    addr: SocketAddr,
    actors: Actors,
}

impl ApiListener {
    /// Binds `config.listen` and loads the actors file (an empty one is refused: nobody could
    /// call the API). Must be called within a tokio runtime.
    pub fn bind(config: &RecordStoreApi) -> anyhow::Result<ApiListener> {
        let actors = Actors::load(&config.actors)?;
        anyhow::ensure!(
            !actors.is_empty(),
            "record store API: {} lists no actor",
            config.actors.display()
        );
        let addr = config
            .listen
            .to_socket_addrs()
            .with_context(|| format!("record store api.listen {:?}", config.listen))?
            .next()
            .with_context(|| {
                format!(
                    "record store api.listen {:?} resolves to no address",
                    config.listen
                )
            })?;
        let std_listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("record store API: cannot listen on {addr}"))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        Ok(ApiListener {
            listener,
            addr,
            actors,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` turns `true`.
    pub fn spawn(self, store: RecordStore, shutdown: watch::Receiver<bool>) -> ApiServer {
        let addr = self.addr;
        let shared = Arc::new(Shared {
            store,
            actors: self.actors,
        });
        tracing::info!(listen = %addr, actors = shared.actors.len(), "record store API listening");
        let task = tokio::spawn(run(self.listener, shared, shutdown));
        ApiServer { addr, task }
    }
}

/// The running API.
pub struct ApiServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ApiServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the end (after the shutdown signal); requests in progress finish.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "record store API task failed");
        }
    }
}

/// The name of this server in the logs.
const SERVER: &str = "record store API";

async fn run(listener: TcpListener, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let for_connections = shutdown.clone();
    accept_until_shutdown(SERVER, listener, shutdown, |stream, peer| {
        let shared = shared.clone();
        let handler = move |req| {
            let shared = shared.clone();
            async move { handle(&shared, peer, req).await }
        };
        Some(serve_connection(
            SERVER,
            stream,
            peer,
            None,
            HEADER_READ_TIMEOUT,
            for_connections.clone(),
            handler,
        ))
    })
    .await;
}

async fn handle(shared: &Shared, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    if req.uri().path() == "/health" {
        return json(StatusCode::OK, &json!({ "status": "ok" }));
    }
    let Some(actor) = shared
        .actors
        .authenticate(req.headers().get(hyper::header::AUTHORIZATION))
    else {
        tracing::warn!(peer = %peer, method = %req.method(), "record store API: request without a valid token refused");
        return unauthorized();
    };
    let mode = match mode_of(&req) {
        Ok(m) => m,
        Err(msg) => return outcome(StatusCode::BAD_REQUEST, "invalid", msg, None),
    };
    let session = Session { actor, mode };
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| crate::admin::views::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = req.uri().query().unwrap_or("").to_string();
    let base = format!(
        "http://{}/fhir",
        req.headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
    );
    let get = req.method() == hyper::Method::GET;
    let post = req.method() == hyper::Method::POST;
    let reply = match segments.as_slice() {
        ["fhir", rest @ ..] if get => {
            fhir::route(&shared.store, &session, rest, &query, &base).await
        }
        ["patient", ins, rest @ ..] if get || post => {
            patient::route(&shared.store, &session, ins, rest, post).await
        }
        _ => Ok(outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such endpoint".into(),
            None,
        )),
    };
    let reply = reply.unwrap_or_else(|e| {
        tracing::error!(error = %e, "record store API: request failed");
        outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "the record store failed; see the daemon's log".into(),
            None,
        )
    });
    let mut reply = reply;
    if session.mode.is_emergency() {
        // Shown on every answer of an emergency session (CNAM EX_0.3-1050: displayed for the
        // whole access).
        reply.headers_mut().insert(
            "x-access-mode",
            HeaderValue::from_static(session.mode.label()),
        );
    }
    reply
}

/// `X-Access-Mode: normal | break-glass | regulation`, with `X-Break-Glass-Justification`
/// (UTF-8) for break-glass. A missing justification is left to the policy to refuse (R3).
fn mode_of(req: &Request<Incoming>) -> Result<Mode, String> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
    };
    match header("x-access-mode").as_deref() {
        None | Some("normal") => Ok(Mode::Normal),
        Some("break-glass") => Ok(Mode::BreakGlass {
            justification: header("x-break-glass-justification").unwrap_or_default(),
        }),
        Some("regulation") => Ok(Mode::Regulation),
        Some(_) => Err("X-Access-Mode must be normal, break-glass or regulation".into()),
    }
}

fn unauthorized() -> Reply {
    http_server::unauthorized(
        outcome(
            StatusCode::UNAUTHORIZED,
            "login",
            "a valid bearer token is required".into(),
            None,
        ),
        "Bearer realm=\"passerelle-record-store\"",
    )
}

/// A FHIR OperationOutcome with one issue; `rule` (R1–R9) goes in its details.
pub(crate) fn outcome(status: StatusCode, code: &str, text: String, rule: Option<&str>) -> Reply {
    let mut issue = json!({ "severity": "error", "code": code, "diagnostics": text });
    if let Some(rule) = rule {
        issue["details"] = json!({ "coding": [{
            "system": "urn:passerelle:record-store:rule", "code": rule
        }], "text": rule });
    }
    fhir_json(
        status,
        &json!({ "resourceType": "OperationOutcome", "issue": [issue] }),
    )
}

pub(crate) fn fhir_json(status: StatusCode, body: &Value) -> Reply {
    let mut r = json(status, body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json; charset=utf-8"),
    );
    r
}

pub(crate) fn json(status: StatusCode, body: &Value) -> Reply {
    let mut text = serde_json::to_string(body).unwrap_or_default();
    text.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// 403 naming the rule that denied.
pub(crate) fn forbidden(reason: &super::policy::DenyReason) -> Reply {
    outcome(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("{reason} ({})", reason.code()),
        Some(reason.rule()),
    )
}

/// Who the actor is, for debug logs only.
pub(crate) fn who(actor: &Actor) -> String {
    format!("{}:{}", actor.role.label(), actor.id)
}

/// Binds the API of every record-store destination that has one (paths resolved), with the
/// store its sink uses. Called before the sources start, so a bad API config stops the start.
pub fn bind_all(
    destinations: &std::collections::BTreeMap<String, crate::config::DestinationConfig>,
) -> anyhow::Result<Vec<(ApiListener, RecordStore)>> {
    let mut out = Vec::new();
    for (name, d) in destinations {
        if let crate::config::DestinationConfig::RecordStore(rs) = d
            && let Some(api) = &rs.api
        {
            let store = super::open_configured(rs)?;
            let listener = ApiListener::bind(api)
                .with_context(|| format!("starting the API of destination {name:?}"))?;
            out.push((listener, store));
        }
    }
    Ok(out)
}
