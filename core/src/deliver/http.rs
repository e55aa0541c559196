//! The HTTP destination: a hyper client (HTTP/1.1, keep-alive pool), `webhook` or
//! `fhir-transaction` mode.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::{DeliveryError, to_transaction};
use crate::config::{HttpDestination, HttpMode};
use crate::record::Record;

/// At most this much of an error answer's body goes into the error message.
pub(super) const ERROR_BODY_BYTES: usize = 500;
/// Answer bodies are read up to this size (so that the connection can be reused), then dropped.
const SUCCESS_BODY_LIMIT: usize = 1024 * 1024;
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// A `Retry-After` longer than this is taken as this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
const USER_AGENT_VALUE: &str = concat!("passerelle/", env!("CARGO_PKG_VERSION"));

/// POSTs records to an HTTP endpoint.
#[derive(Clone)]
pub struct HttpSink {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    mode: HttpMode,
    timeout: Duration,
    headers: HeaderMap,
}

impl fmt::Debug for HttpSink {
    // No header values: they may hold credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSink")
            .field("url", &self.url)
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HttpSink {
    /// Checks the URL and headers and builds the client (no connection yet).
    pub fn new(config: &HttpDestination) -> Result<HttpSink, String> {
        let url: Uri = config
            .url
            .parse()
            .map_err(|e| format!("url {:?} must be an absolute http:// URL: {e}", config.url))?;
        match url.scheme_str() {
            Some("http") if url.host().is_some() => {}
            Some("https") => {
                return Err(format!(
                    "url {:?}: https is not supported yet (no TLS client in this build)",
                    config.url
                ));
            }
            _ => {
                return Err(format!(
                    "url {:?} must be an absolute http:// URL",
                    config.url
                ));
            }
        }
        if config.timeout_ms == 0 {
            return Err("timeout_ms must be greater than 0".into());
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(connector);
        Ok(HttpSink {
            client,
            url,
            mode: config.mode,
            timeout,
            headers,
        })
    }

    /// One POST; see the module docs for how answers are classified.
    pub async fn deliver(&self, record: &Record) -> Result<(), DeliveryError> {
        let id = &record.envelope.id;
        let id_value = HeaderValue::from_str(id)
            .map_err(|_| DeliveryError::permanent(format!("record id {id:?} is not a header")))?;
        let (body, content_type) = match self.mode {
            HttpMode::Webhook => (record.to_json_line(), "application/json"),
            HttpMode::FhirTransaction => (
                to_transaction(record.bundle.get(), id)
                    .map_err(DeliveryError::permanent)?
                    .into_owned(),
                "application/fhir+json",
            ),
        };
        let mut req = Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.url.clone();
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(ACCEPT, HeaderValue::from_static(content_type));
        h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        h.insert("x-passerelle-record-id", id_value.clone());
        match self.mode {
            HttpMode::Webhook => {
                h.insert("idempotency-key", id_value);
            }
            HttpMode::FhirTransaction => {
                h.insert("prefer", HeaderValue::from_static("return=minimal"));
            }
        }
        for (name, value) in &self.headers {
            h.insert(name.clone(), value.clone());
        }

        let response = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| {
                DeliveryError::retryable(format!(
                    "POST {}: no answer within {} ms",
                    self.url,
                    self.timeout.as_millis()
                ))
            })?
            .map_err(|e| {
                DeliveryError::retryable(format!("POST {}: {}", self.url, error_chain(&e)))
            })?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let limit = if status.is_success() {
            SUCCESS_BODY_LIMIT
        } else {
            ERROR_BODY_LIMIT
        };
        // The status decides; the body only helps reuse the connection and explain errors.
        let body = tokio::time::timeout(self.timeout, read_prefix(response.into_body(), limit))
            .await
            .unwrap_or_default();
        classify(status, retry_after, &body)
    }
}

/// The outcome of an answer: 2xx delivered; 408, 425, 429, 5xx retryable (`Retry-After` kept for
/// 429 and 503); anything else permanent.
pub(super) fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<(), DeliveryError> {
    if status.is_success() {
        return Ok(());
    }
    let snippet = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]);
    let snippet = snippet.trim();
    let message = if snippet.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {snippet}")
    };
    let code = status.as_u16();
    Err(DeliveryError {
        retryable: matches!(code, 408 | 425 | 429) || status.is_server_error(),
        message,
        retry_after: retry_after.filter(|_| matches!(code, 429 | 503)),
    })
}

/// `Retry-After` in seconds (the HTTP-date form is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Reads the body until its end or `limit` bytes, whichever comes first; a read error ends it.
async fn read_prefix(mut body: Incoming, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    out
}

/// The error and its causes (hyper's own messages are terse: "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
