//! The endpoints. Each returns a JSON response; errors are `{"error": "…"}`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::views::{self, parse_filter};
use super::{MAX_BODY, Shared, error, json};
use crate::ingest::source_ctx;
use crate::journal::{JournalError, MessageFilter, MessageId, MessageStatus};
use crate::plugin::BreakerState;
use crate::route::{Mode, Unmatched};
use crate::telemetry::Scrape;
use crate::topology::{Ingested, SourceCtx};

type Reply = Response<Full<Bytes>>;

/// Default and largest number of messages one `POST /messages/replay` replays.
const REPLAY_DEFAULT: usize = 100;
const REPLAY_MAX: usize = 1_000;
/// `/ready` gives the journal this long to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// An error answer.
struct ApiError(StatusCode, String);

impl From<JournalError> for ApiError {
    fn from(e: JournalError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

type Result<T> = std::result::Result<T, ApiError>;

/// The embedded journal behind the message and queue views; a node on JetStream has none.
fn local_journal(st: &super::AdminState) -> Result<&crate::journal::Journal> {
    st.journal.as_ref().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "this node keeps its journal on NATS JetStream: messages, queues and dead letters \
             are read with the nats CLI (docs/scale-out.md)"
                .into(),
        )
    })
}

/// `GET /health`: liveness, no authentication, nothing but `{"status":"ok"}`.
pub(super) fn health(req: &Request<Incoming>) -> Reply {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        json(StatusCode::OK, &json!({ "status": "ok" }))
    } else {
        method_not_allowed("GET, HEAD")
    }
}

/// Dispatches an authenticated request from `actor`; actions are recorded in the audit log.
pub(super) async fn route(shared: &Shared, req: Request<Incoming>, actor: &str) -> Reply {
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| views::percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let s = shared;
    // Names of the replay filters (never their values: an INS is patient data).
    let mut filter_names = String::new();
    let result = match segments.as_slice() {
        ["ready"] if get => ready(s).await,
        ["sources"] if get => Ok(sources(s)),
        ["plugins"] if get => plugins(s).await,
        ["plugins", name, "resume"] if post => resume_plugin(s, name),
        ["routes"] if get => Ok(routes(s)),
        ["destinations"] if get => destinations(s).await,
        ["destinations", name, action @ ("pause" | "resume")] if post => pause(s, name, action),
        ["messages"] if get => search(s, req.uri().query().unwrap_or("")).await,
        ["messages", "replay"] if post => match read_json(req).await {
            Ok(body) => {
                if let Some(o) = body.as_object() {
                    filter_names = o.keys().cloned().collect::<Vec<_>>().join(",");
                }
                replay_search(s, &body).await
            }
            Err(e) => Err(e),
        },
        ["messages", "replay"] => return method_not_allowed("POST"),
        ["messages", id] if get => show(s, id).await,
        ["messages", id, "replay"] if post => replay_by_id(s, id).await,
        ["dead-letters"] if get => dead_letters(s, req.uri().query().unwrap_or("")).await,
        ["dead-letters", id, action @ ("retry" | "discard")] if post => {
            dead_letter_action(s, id, action).await
        }
        ["metrics"] if get => return metrics(s).await,
        // Known paths with another method.
        [
            "ready" | "sources" | "plugins" | "routes" | "destinations" | "messages"
            | "dead-letters" | "metrics",
        ]
        | ["messages", _] => return method_not_allowed("GET, HEAD"),
        ["destinations", _, "pause" | "resume"]
        | ["plugins", _, "resume"]
        | ["messages", "replay" | _, "replay"]
        | ["dead-letters", _, "retry" | "discard"] => return method_not_allowed("POST"),
        _ => Err(not_found(format!("no endpoint {path}"))),
    };
    if post {
        audit_action(s, actor, segments.as_slice(), &result, &filter_names);
    }
    match result {
        Ok((status, body)) => json(status, &body),
        Err(ApiError(status, message)) => error(status, &message),
    }
}

/// Records an operator action (a POST that reached an endpoint) and its outcome.
fn audit_action(s: &Shared, actor: &str, segments: &[&str], result: &Answer, filters: &str) {
    let (action, target) = match segments {
        ["plugins", name, "resume"] => ("plugin.resume", *name),
        ["destinations", name, "pause"] => ("destination.pause", *name),
        ["destinations", name, "resume"] => ("destination.resume", *name),
        ["messages", "replay"] => ("messages.replay", "search"),
        ["messages", id, "replay"] => ("message.replay", *id),
        ["dead-letters", id, "retry"] => ("dead-letter.retry", *id),
        ["dead-letters", id, "discard"] => ("dead-letter.discard", *id),
        _ => return,
    };
    let (outcome, detail) = match result {
        Ok((_, body)) => {
            let detail = match action {
                "plugin.resume" => format!("was_suspended={}", body["was_suspended"]),
                "messages.replay" => format!("replayed={}; filters={filters}", body["count"]),
                "message.replay" => format!(
                    "outcome={}; message_id={}",
                    body["outcome"], body["message_id"]
                ),
                "dead-letter.retry" | "dead-letter.discard" => {
                    format!("destination={}", body["destination"])
                }
                _ => String::new(),
            };
            ("ok", detail)
        }
        Err(ApiError(StatusCode::NOT_FOUND, m)) => ("not-found", m.clone()),
        // A filter error may quote a filter's value (an INS): only the status then.
        Err(ApiError(status, _)) if action == "messages.replay" => {
            ("error", format!("{}; filters={filters}", status.as_u16()))
        }
        Err(ApiError(status, m)) => ("error", format!("{}: {m}", status.as_u16())),
    };
    let detail = (!detail.is_empty()).then_some(detail.as_str());
    super::audit::record(
        s.state.audit.as_ref(),
        actor,
        action,
        target,
        outcome,
        detail,
    );
}

fn method_not_allowed(allow: &'static str) -> Reply {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// Reads a JSON body (authenticated request only), at most [`MAX_BODY`]; empty = `{}`.
async fn read_json(req: Request<Incoming>) -> Result<Value> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {MAX_BODY} bytes"),
                )
            } else {
                bad_request(format!("cannot read the request body: {e}"))
            }
        })?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

type Answer = Result<(StatusCode, Value)>;

fn ok(body: Value) -> Answer {
    Ok((StatusCode::OK, body))
}

// --- Status ---------------------------------------------------------------------------------

/// `GET /ready`: the journal answers a query and the sources are running.
async fn ready(s: &Shared) -> Answer {
    let st = &s.state;
    let journal = match &st.journal {
        // JetStream: no local journal to query (the claims report a lost connection).
        None => Ok(()),
        Some(j) => match tokio::time::timeout(READY_TIMEOUT, j.count_by_status()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
        },
    };
    let running = !*st.stopping.borrow();
    let ready = journal.is_ok() && running;
    let body = json!({
        "status": if ready { "ready" } else { "not-ready" },
        "journal": match &journal { Ok(()) => "ok".to_string(), Err(e) => e.clone() },
        "sources": if running { "started" } else { "stopping" },
        "sources_started": st.sources.len(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, body))
}

fn sources(s: &Shared) -> (StatusCode, Value) {
    let st = &s.state;
    let list: Vec<Value> = st
        .sources
        .iter()
        .map(|info| {
            let config = st.source_configs.get(&info.name);
            let counts = st.pipeline.source_counts(&info.name);
            json!({
                "name": info.name,
                "type": info.kind.to_string(),
                "endpoint": info.endpoint.to_string(),
                "plugin": config.map(|c| c.plugin()),
                "content_type": config.map(|c| c.content_type()),
                "received": counts.received,
                "adapted": counts.adapted,
                "failed": counts.failed,
                "held": counts.held,
                "last_received_at": counts.last_received_at_ms.map(views::rfc3339_ms),
            })
        })
        .collect();
    (StatusCode::OK, json!({ "sources": list }))
}

async fn plugins(s: &Shared) -> Answer {
    let held = local_journal(&s.state)?.held_counts().await?;
    let list: Vec<Value> = s
        .state
        .plugins
        .status()
        .into_iter()
        .map(|p| {
            let mut v = serde_json::to_value(&p).unwrap_or(Value::Null);
            v["state"] = json!(match p.breaker.state {
                // The circuit breaker holds its messages.
                "suspended" | "resuming" => p.breaker.state,
                // The build on disk was rejected: the previous one keeps serving.
                _ if p.last_error.is_some() => "serving-previous-build",
                _ => "serving",
            });
            v["breaker"]["suspended_at"] = json!(p.breaker.suspended_at_ms.map(views::rfc3339_ms));
            v["held_messages"] = json!(held.get(&p.name).copied().unwrap_or(0));
            v
        })
        .collect();
    ok(json!({ "plugins": list }))
}

/// `POST /plugins/{name}/resume`: a suspended plugin resumes; its held messages are
/// re-processed in the background, oldest first (new messages stay held until they are all
/// done). Idempotent.
fn resume_plugin(s: &Shared, name: &str) -> Answer {
    let Some(outcome) = s.state.pipeline.resume_plugin(name) else {
        return Err(not_found(format!("no plugin {name:?}")));
    };
    tracing::info!(plugin = %name, was_suspended = outcome.was_suspended, "plugin resume requested by an operator");
    ok(serde_json::to_value(&outcome).unwrap_or(Value::Null))
}

fn routes(s: &Shared) -> (StatusCode, Value) {
    let r = &s.state.routes;
    let rules = r.current();
    let body = json!({
        "version": rules.version(),
        "loaded_at": views::rfc3339(rules.loaded_at()),
        "file": rules.path().display().to_string(),
        "mode": match rules.mode() { Mode::FanOut => "fan-out", Mode::FirstMatch => "first-match" },
        "unmatched": match rules.unmatched() { Unmatched::Hold => "hold".to_string(), Unmatched::Destination(d) => d.clone() },
        "routes": rules.route_count(),
        "routes_in_file": rules.total_routes(),
        "names": rules.route_names().collect::<Vec<_>>(),
        "reloads": r.reloads(),
        "reload_failures": r.reload_failures(),
        "last_error": r.last_error(),
    });
    (StatusCode::OK, body)
}

async fn destinations(s: &Shared) -> Answer {
    let st = &s.state;
    // On JetStream the queue depths and dead letters live in the streams (`null` here).
    let dead = match &st.journal {
        Some(j) => Some(j.dead_counts().await?),
        None => None,
    };
    let mut list = Vec::new();
    for d in st.deliveries.status() {
        let pending = match &st.journal {
            Some(j) => Some(j.pending_count(&d.name).await?),
            None => None,
        };
        let mut v = serde_json::to_value(&d).unwrap_or(Value::Null);
        v["state"] = json!(if !d.running {
            "stopped"
        } else if d.paused {
            "paused"
        } else {
            "running"
        });
        v["queue_depth"] = json!(pending);
        v["dead_letters"] = json!(dead.as_ref().map(|m| m.get(&d.name).copied().unwrap_or(0)));
        v["last_error_at"] = json!(d.last_error_at_ms.map(views::rfc3339_ms));
        list.push(v);
    }
    ok(json!({ "destinations": list }))
}

fn pause(s: &Shared, name: &str, action: &str) -> Answer {
    let d = &s.state.deliveries;
    let found = if action == "pause" {
        d.pause(name)
    } else {
        d.resume(name)
    };
    if !found {
        return Err(not_found(format!("no destination {name:?}")));
    }
    tracing::info!(destination = %name, action, "destination {action}d by an operator");
    ok(json!({ "destination": name, "paused": action == "pause" }))
}

// --- Messages -------------------------------------------------------------------------------

fn filter_from_query(query: &str) -> Result<MessageFilter> {
    let pairs = views::query_pairs(query);
    parse_filter(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        crate::clock::now_ms(),
    )
    .map_err(bad_request)
}

async fn search(s: &Shared, query: &str) -> Answer {
    let filter = filter_from_query(query)?;
    let limit = effective_limit(&filter, crate::journal::DEFAULT_SEARCH_LIMIT);
    let found = local_journal(&s.state)?.search(filter).await?;
    ok(views::page_json(&found, limit))
}

fn effective_limit(f: &MessageFilter, default: usize) -> usize {
    if f.limit == 0 { default } else { f.limit }
}

fn message_id(id: &str) -> Result<MessageId> {
    id.parse()
        .map(MessageId)
        .map_err(|_| bad_request(format!("{id:?} is not a message id")))
}

async fn show(s: &Shared, id: &str) -> Answer {
    let id = message_id(id)?;
    let journal = local_journal(&s.state)?;
    let Some(view) = journal.message(id).await? else {
        return Err(not_found(format!("no message {id}")));
    };
    let mut attempts = HashMap::new();
    for outbox_id in views::outbox_ids(&view) {
        attempts.insert(outbox_id, journal.attempts(outbox_id).await?);
    }
    ok(views::message_json(&view, &attempts))
}

/// Runs a stored message through the current plugin and routes again, as if its source had
/// just received it (peer `replay:<id>`), then delivers its records again. Record ids are
/// deterministic: an unchanged message yields the same records (duplicates in the journal),
/// and each destination receives them once more under the same ids, which it deduplicates
/// (a file destination rewrites the same file; HTTP gets the same `Idempotency-Key`).
async fn replay(s: &Shared, id: MessageId) -> Result<Value> {
    let st = &s.state;
    let Some(view) = local_journal(st)?.message(id).await? else {
        return Err(not_found(format!("no message {id}")));
    };
    // Held before adapting (plugin suspended): processed in place, like a resume does.
    if view.status == MessageStatus::Held
        && view.records.is_empty()
        && let Some(plugin) = &view.plugin
    {
        return replay_held(s, id, plugin).await;
    }
    let ctx = match st.source_configs.get(&view.source) {
        Some(config) => SourceCtx {
            content_type: view.content_type.clone(),
            ..source_ctx(&view.source, config)
        },
        None => match &view.plugin {
            // The source is gone from the configuration: its plugin may still be there.
            Some(plugin) => SourceCtx {
                name: view.source.clone(),
                plugin: plugin.clone(),
                content_type: view.content_type.clone(),
                charset: None,
            },
            None => {
                return Err(ApiError(
                    StatusCode::CONFLICT,
                    format!(
                        "message {id}: source {:?} is no longer configured and no plugin is recorded",
                        view.source
                    ),
                ));
            }
        },
    };
    let outcome = st
        .pipeline
        .ingest(&ctx, view.payload, Some(format!("replay:{id}")))
        .await?;
    if let Ingested::Accepted { receipt, .. } = &outcome {
        for destination in local_journal(st)?.redeliver(receipt.message_id).await? {
            st.deliveries.wake(&destination);
        }
    }
    tracing::info!(replayed_from = id.0, "message replayed by an operator");
    Ok(replay_json(id, outcome))
}

fn replay_json(id: MessageId, outcome: Ingested) -> Value {
    match outcome {
        Ingested::Accepted {
            receipt, records, ..
        } => json!({
            "replayed_from": id.0,
            "message_id": receipt.message_id.0,
            "outcome": "accepted",
            "records": records,
            "new_records": receipt.new_records,
            "duplicate_records": receipt.duplicate_records,
        }),
        Ingested::Rejected { message_id, error } => json!({
            "replayed_from": id.0,
            "message_id": message_id.0,
            "outcome": "rejected",
            "error": error.to_string(),
        }),
        Ingested::Queued { message_id } => json!({
            "replayed_from": id.0,
            "message_id": message_id.0,
            "outcome": "queued",
        }),
        Ingested::Held { message_id, reason } => json!({
            "replayed_from": id.0,
            "message_id": message_id.0,
            "outcome": "held",
            "error": reason,
        }),
    }
}

/// Replay of a message held by a suspended plugin: it gets its outcome in place (same id).
async fn replay_held(s: &Shared, id: MessageId, plugin: &str) -> Result<Value> {
    let st = &s.state;
    if let Some(b) = st.plugins.breaker(plugin)
        && b.state() != BreakerState::Serving
    {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "message {id} is held because plugin {plugin} is {}: resume the plugin (POST /plugins/{plugin}/resume), which re-processes its held messages",
                b.state().as_str()
            ),
        ));
    }
    let outcome = st.pipeline.reprocess_held(id).await?;
    tracing::info!(
        replayed_from = id.0,
        "held message processed by an operator"
    );
    Ok(match outcome {
        None => {
            json!({ "replayed_from": id.0, "message_id": id.0, "outcome": "already-processed" })
        }
        Some(outcome) => replay_json(id, outcome),
    })
}

async fn replay_by_id(s: &Shared, id: &str) -> Answer {
    let id = message_id(id)?;
    ok(replay(s, id).await?)
}

/// `POST /messages/replay` with a JSON object of search filters: replays the matching
/// messages (one page, newest first, `limit` default 100, at most 1,000). At least one filter
/// other than `limit`/`after` is required.
async fn replay_search(s: &Shared, body: &Value) -> Answer {
    let pairs = views::json_pairs(body).map_err(bad_request)?;
    let mut filter = parse_filter(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        crate::clock::now_ms(),
    )
    .map_err(bad_request)?;
    if !views::is_narrowed(&filter) {
        return Err(bad_request(
            "give at least one filter (since, until, source, status, ins, message_id, kind): replaying every message is not allowed",
        ));
    }
    if filter.limit > REPLAY_MAX {
        return Err(bad_request(format!(
            "limit: at most {REPLAY_MAX} for a replay"
        )));
    }
    filter.limit = effective_limit(&filter, REPLAY_DEFAULT);
    let limit = filter.limit;
    let found = local_journal(&s.state)?.search(filter).await?;
    let mut results = Vec::with_capacity(found.len());
    for m in &found {
        match replay(s, m.id).await {
            Ok(v) => results.push(v),
            Err(ApiError(_, e)) => {
                results.push(json!({ "replayed_from": m.id.0, "outcome": "error", "error": e }))
            }
        }
    }
    let next = (found.len() >= limit)
        .then(|| found.last().map(|m| m.id.0))
        .flatten();
    ok(json!({ "replayed": results, "count": results.len(), "next": next }))
}

// --- Dead letters ---------------------------------------------------------------------------

async fn dead_letters(s: &Shared, query: &str) -> Answer {
    let mut destination = None;
    let mut limit = 100usize;
    for (k, v) in views::query_pairs(query) {
        match k.as_str() {
            "destination" if !v.is_empty() => destination = Some(v),
            "destination" => {}
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| bad_request("limit: between 1 and 10000"))?
            }
            other => {
                return Err(bad_request(format!(
                    "unknown parameter {other:?} (known: destination, limit)"
                )));
            }
        }
    }
    let list = local_journal(&s.state)?
        .dead_letters(destination.as_deref(), limit)
        .await?;
    ok(json!({ "dead_letters": list.iter().map(views::dead_letter_json).collect::<Vec<_>>() }))
}

async fn dead_letter_action(s: &Shared, id: &str, action: &str) -> Answer {
    let outbox_id: i64 = id
        .parse()
        .map_err(|_| bad_request(format!("{id:?} is not an outbox id")))?;
    let st = &s.state;
    let done = if action == "retry" {
        local_journal(st)?.retry_dead(outbox_id).await?
    } else {
        local_journal(st)?.discard_dead(outbox_id).await?
    };
    let Some(destination) = done else {
        return Err(not_found(format!("no dead letter {outbox_id}")));
    };
    if action == "retry" {
        st.deliveries.wake(&destination);
    }
    tracing::info!(outbox_id, destination = %destination, action, "dead letter handled by an operator");
    ok(json!({
        "outbox_id": outbox_id,
        "destination": destination,
        "state": if action == "retry" { "pending" } else { "discarded" },
    }))
}

// --- Metrics --------------------------------------------------------------------------------

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(s: &Shared) -> Reply {
    let st = &s.state;
    let Some(handle) = &st.metrics else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder in this process",
        );
    };
    // Values kept elsewhere, copied in at scrape time.
    if let Some(journal) = &st.journal
        && let Ok(dead) = journal.dead_counts().await
    {
        for d in st.deliveries.status() {
            if let Ok(pending) = journal.pending_count(&d.name).await {
                Scrape::queue(
                    &d.name,
                    pending,
                    dead.get(&d.name).copied().unwrap_or(0),
                    d.paused,
                );
            }
        }
    }
    if let Some(journal) = &st.journal {
        Scrape::journal(&journal.stats());
    }
    if let Some(Ok(counts)) = match &st.journal {
        Some(j) => Some(j.count_by_status().await),
        None => None,
    } {
        for (status, n) in counts {
            Scrape::messages(&status, n);
        }
    }
    Scrape::routes(st.routes.reloads(), st.routes.reload_failures());
    let held = match &st.journal {
        Some(j) => j.held_counts().await.unwrap_or_default(),
        None => Default::default(),
    };
    for p in st.plugins.status() {
        Scrape::plugin(&p.name, p.reloads, p.reload_failures);
        Scrape::plugin_breaker(
            &p.name,
            p.breaker.state != "serving",
            held.get(&p.name).copied().unwrap_or(0),
        );
    }
    let mut response = Response::new(Full::new(Bytes::from(handle.render())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
