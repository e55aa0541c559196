//! Sources: MLLP, HTTP and directory ingest.
//!
//! Every source hands each inbound message to [`Pipeline::ingest`] and acknowledges the sender
//! only once it returns `Ok` (the message is then durably committed in the journal):
//!
//! - [`mllp`]: HL7 v2 over MLLP (TCP); one original-mode ACK (AA/AE/AR) per message.
//! - [`http`]: `POST` on a path; 202 / 422 / 413 / 503 with a JSON body.
//! - [`inbox`]: a watched folder; files move to `processed/` or `failed/` after the commit.
//!
//! MLLP and HTTP listeners (and the admin API) may run over TLS, mutual or not ([`tls`]), and
//! limit connections per peer ([`peers`]).
//!
//! A journal error (`Err` from the pipeline) means nothing was stored: the sender is never
//! acknowledged (MLLP: no ACK and the connection is closed; HTTP: 503 with `Retry-After`; inbox:
//! the file stays in place and is retried). The same holds for back-pressure (a destination over
//! `[delivery] max_pending`), after a bounded wait for MLLP and the inbox. A message held because
//! its plugin is suspended is stored, so it is acknowledged (MLLP AA, HTTP 202, file moved to
//! `processed/`).
//!
//! [`start_all`] binds every listener and prepares every folder first, so that a bind error
//! stops the start before any source runs; then it spawns one task per source. Each source
//! runs until the shutdown signal (`true` on the watch channel): it stops accepting, lets the
//! messages already received finish (ingest + acknowledgement), then closes.
//! [`Sources::join`] waits for all of them.

pub mod http;
pub mod inbox;
pub mod mllp;
pub mod peers;
pub mod tls;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::SourceConfig;
use crate::topology::{Pipeline, SourceCtx};

/// The type of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Mllp,
    Http,
    Inbox,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Mllp => "mllp",
            SourceKind::Http => "http",
            SourceKind::Inbox => "inbox",
        })
    }
}

/// Where a source listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The bound socket address (the real port when the configuration said `:0`).
    Socket(SocketAddr),
    /// The watched folder.
    Dir(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Socket(a) => write!(f, "{a}"),
            Endpoint::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

/// One running source.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub name: String,
    pub kind: SourceKind,
    pub endpoint: Endpoint,
}

/// The running sources, returned by [`start_all`].
#[derive(Debug)]
pub struct Sources {
    list: Vec<SourceInfo>,
    tasks: Vec<(String, JoinHandle<()>)>,
}

impl Sources {
    /// The sources, in configuration (name) order.
    pub fn list(&self) -> &[SourceInfo] {
        &self.list
    }

    /// The bound address of a network source.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.list
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| match s.endpoint {
                Endpoint::Socket(a) => Some(a),
                Endpoint::Dir(_) => None,
            })
    }

    /// Waits until every source task has ended (after the shutdown signal).
    pub async fn join(self) {
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(source = %name, error = %e, "source task failed");
            }
        }
    }
}

/// The context handed to the pipeline with each message of a source.
pub fn source_ctx(name: &str, config: &SourceConfig) -> SourceCtx {
    SourceCtx {
        name: name.to_string(),
        plugin: config.plugin().to_string(),
        content_type: config.content_type().to_string(),
        charset: config.charset().map(str::to_string),
    }
}

/// A source that is bound (or whose folder is ready) but not running yet.
enum Prepared {
    Mllp(mllp::MllpListener),
    Http(http::HttpListener),
    Inbox(inbox::Inbox),
}

/// Binds every listener and prepares every inbox folder, then starts them all. Must be called
/// from within a tokio runtime. A bind (or folder) error returns `Err` before any source runs.
pub fn start_all(
    sources: &BTreeMap<String, SourceConfig>,
    pipeline: Arc<Pipeline>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Sources> {
    let mut prepared = Vec::with_capacity(sources.len());
    for (name, config) in sources {
        let ctx = source_ctx(name, config);
        let p = match config {
            SourceConfig::Mllp(c) => Prepared::Mllp(
                mllp::MllpListener::bind(ctx, c).with_context(|| format!("source {name}"))?,
            ),
            SourceConfig::Http(c) => Prepared::Http(
                http::HttpListener::bind(ctx, c).with_context(|| format!("source {name}"))?,
            ),
            SourceConfig::Inbox(c) => Prepared::Inbox(
                inbox::Inbox::prepare(ctx, c).with_context(|| format!("source {name}"))?,
            ),
        };
        prepared.push((name.clone(), p));
    }
    let mut list = Vec::with_capacity(prepared.len());
    let mut tasks = Vec::with_capacity(prepared.len());
    for (name, p) in prepared {
        let (kind, endpoint, task) = match p {
            Prepared::Mllp(l) => {
                let addr = l.local_addr();
                (
                    SourceKind::Mllp,
                    Endpoint::Socket(addr),
                    l.spawn(pipeline.clone(), shutdown.clone()),
                )
            }
            Prepared::Http(l) => {
                let addr = l.local_addr();
                (
                    SourceKind::Http,
                    Endpoint::Socket(addr),
                    l.spawn(pipeline.clone(), shutdown.clone()),
                )
            }
            Prepared::Inbox(i) => {
                let dir = i.dir().to_path_buf();
                (
                    SourceKind::Inbox,
                    Endpoint::Dir(dir),
                    i.spawn(pipeline.clone(), shutdown.clone()),
                )
            }
        };
        tracing::info!(source = %name, kind = %kind, endpoint = %endpoint, "source started");
        list.push(SourceInfo {
            name: name.clone(),
            kind,
            endpoint,
        });
        tasks.push((name, task));
    }
    Ok(Sources { list, tasks })
}

/// Resolves when the shutdown signal is `true` (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender was dropped: nobody can ask us to run any more.
    let _ = shutdown.wait_for(|stop| *stop).await;
}
