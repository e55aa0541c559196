//! The MLLP listener.
//!
//! - Many connections at once, at most `max_connections`, and at most
//!   `max_connections_per_peer` from one IP address (0 = no limit): beyond that a new connection
//!   is accepted and closed at once, with a warning. TCP_NODELAY is set on every connection.
//! - Each connection handles its messages in order (MLLP is request/ACK): frame → sniff →
//!   [`Pipeline::ingest`] → ACK. The ACK is sent only after the pipeline returns `Ok`, i.e.
//!   after the journal commit, as one frame written from one buffer.
//!   - `Accepted` → AA; `Rejected` (stored as failed) → AE with an ERR; the connection stays
//!     open.
//!   - `Queued` (JetStream journal: stored unadapted, any node adapts it) → AA.
//!   - `Held` (the plugin is suspended by its circuit breaker; the message is durably stored
//!     and will be adapted when the plugin is resumed) → AA: nothing is lost and nothing is
//!     wrong with the message, so the sender must neither resend it (AE/AR make many engines
//!     resend or stop the interface) nor wait; the hold is recorded in the journal (status
//!     `held`), the logs and the metrics. (CA, "commit accept", belongs to enhanced-mode
//!     acknowledgements, which senders of original-mode messages do not expect.)
//!   - Not HL7 v2 at all → stored with [`Pipeline::store_failed`], then AR with an ERR.
//!   - `Err(JournalError)`: nothing was stored, so NO ACK is sent: the error is logged and the
//!     connection closed; the sender, seeing no ACK, resends (on a new connection). This covers
//!     a full disk (`DiskFull`, or `[journal] max_size_mib` reached): intake resumes by itself
//!     with the first resend after space is freed. The connection is closed rather than kept
//!     to retry the commit: no message sits in memory waiting for the disk, and no late ACK
//!     reaches a sender that already gave up on the message (and may have resent it).
//!   - Back-pressure (a destination of the message has `[delivery] max_pending` entries
//!     pending or more): the connection first waits up to `max_pending_wait_ms` for it to
//!     drain (the ACK is simply late); then, as for a journal error, no ACK and the connection
//!     is closed, so a stuck destination slows intake down instead of growing the queue.
//! - A frame over `max_frame_bytes` is logged and the connection closed (no ACK: nothing
//!   was stored).
//! - A connection without any inbound byte for `idle_timeout_secs` (0 = never) is closed;
//!   the time spent processing a message does not count.
//! - With `tls`, every connection first completes a TLS handshake (mutual when `client_ca` is
//!   set) in its own task; a failed one closes that connection before any MLLP byte is read
//!   (see [`crate::ingest::tls`]).
//! - Shutdown: stop accepting; each connection finishes the message in progress and the
//!   complete frames already read (ingest + ACK), then closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use super::ack::{self, AckCode, ErrInfo, Sniffed};
use super::codec::{self, MllpCodec, MllpError};
use crate::config::MllpSource;
use crate::ingest::peers::{PeerLimit, PeerPermit};
use crate::ingest::stopped;
use crate::ingest::tls::{self, TlsAcceptor};
use crate::topology::{Ingested, Pipeline, SourceCtx};

/// A bound MLLP listener, not yet accepting.
#[derive(Debug)]
pub struct MllpListener {
    ctx: SourceCtx,
    listener: TcpListener,
    addr: SocketAddr,
    max_frame: usize,
    idle: Option<Duration>,
    max_connections: usize,
    peers: Arc<PeerLimit>,
    tls: Option<Arc<TlsAcceptor>>,
}

impl MllpListener {
    /// Binds `config.listen`. Must be called from within a tokio runtime.
    pub fn bind(ctx: SourceCtx, config: &MllpSource) -> anyhow::Result<Self> {
        let tls = tls::load_opt(&format!("sources.{}", ctx.name), config.tls.as_ref(), &[])?;
        let std_listener = std::net::TcpListener::bind(&config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        Ok(MllpListener {
            ctx,
            listener,
            addr,
            max_frame: config.max_frame_bytes,
            idle: (config.idle_timeout_secs > 0)
                .then(|| Duration::from_secs(config.idle_timeout_secs)),
            max_connections: config.max_connections.max(1),
            peers: PeerLimit::new(config.max_connections_per_peer),
            tls,
        })
    }

    /// The TLS acceptor, when the listener has `tls`.
    pub fn tls(&self) -> Option<&Arc<TlsAcceptor>> {
        self.tls.as_ref()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts accepting; the task ends after the shutdown signal, once every connection has
    /// finished.
    pub fn spawn(self, pipeline: Arc<Pipeline>, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(self.run(pipeline, shutdown))
    }

    async fn run(self, pipeline: Arc<Pipeline>, mut shutdown: watch::Receiver<bool>) {
        let MllpListener {
            ctx,
            listener,
            addr,
            max_frame,
            idle,
            max_connections,
            peers,
            tls,
        } = self;
        let shared = Arc::new(Shared {
            ctx,
            pipeline,
            max_frame,
            idle,
            tls,
        });
        let source = shared.ctx.name.clone();
        let permits = Arc::new(Semaphore::new(max_connections));
        let mut connections = JoinSet::new();
        tracing::info!(source = %source, listen = %addr, tls = shared.tls.is_some(), "MLLP listener accepting");
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => break,
                Some(done) = connections.join_next(), if !connections.is_empty() => reap(&source, done),
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Some(peer_permit) = peers.try_acquire(peer.ip()) else {
                            crate::telemetry::ingest_refused(&source, "peer-limit");
                            if peers.should_warn() {
                                tracing::warn!(source = %source, peer = %peer, max_connections_per_peer = peers.max(), "MLLP: too many connections from this address; closing the new one");
                            }
                            drop(stream);
                            continue;
                        };
                        let Ok(permit) = permits.clone().try_acquire_owned() else {
                            tracing::warn!(source = %source, peer = %peer, max_connections, "MLLP: too many connections; closing the new one");
                            drop(stream);
                            continue;
                        };
                        if let Err(e) = stream.set_nodelay(true) {
                            tracing::debug!(source = %source, peer = %peer, error = %e, "cannot set TCP_NODELAY");
                        }
                        connections.spawn(serve(shared.clone(), stream, peer, (permit, peer_permit), shutdown.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: do not spin.
                        tracing::warn!(source = %source, error = %e, "MLLP: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        drop(listener);
        tracing::info!(source = %source, open = connections.len(), "MLLP listener stopped accepting; finishing open connections");
        while let Some(done) = connections.join_next().await {
            reap(&source, done);
        }
        tracing::info!(source = %source, "MLLP listener stopped");
    }
}

fn reap(source: &str, done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(source = %source, error = %e, "MLLP connection task failed");
    }
}

/// Room reserved in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

struct Shared {
    ctx: SourceCtx,
    pipeline: Arc<Pipeline>,
    max_frame: usize,
    idle: Option<Duration>,
    tls: Option<Arc<TlsAcceptor>>,
}

/// One connection: the TLS handshake first (when configured), then the MLLP exchange. The
/// permits are held until it ends.
async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _permits: (OwnedSemaphorePermit, PeerPermit),
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::debug!(source = %shared.ctx.name, peer = %peer, "MLLP connection opened");
    match shared.tls.clone() {
        None => exchange(&shared, stream, peer, shutdown).await,
        Some(tls) => {
            if let Some(stream) = tls.accept(stream, peer, &mut shutdown).await {
                exchange(&shared, stream, peer, shutdown).await;
            }
        }
    }
}

/// Frames in, ACKs out, until the peer leaves, a limit is hit or shutdown. Reading and writing
/// alternate (MLLP is request/ACK), so the stream is not split.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    mut stream: S,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = shared.ctx.name.as_str();
    let mut codec = MllpCodec::new(shared.max_frame);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // When a byte last came in (or an ACK went out: processing time is not idleness).
    let mut last_activity = Instant::now();
    loop {
        // Every complete frame already read is handled, in order, even during shutdown.
        match codec.decode(&mut buf) {
            Ok(Some(payload)) => {
                if !handle(shared, payload, peer, &mut stream).await {
                    break;
                }
                last_activity = Instant::now();
                continue;
            }
            Ok(None) => {}
            Err(MllpError::FrameTooLarge { limit }) => {
                tracing::warn!(source, peer = %peer, limit, "MLLP frame too large; closing the connection");
                break;
            }
            Err(MllpError::Io(e)) => {
                tracing::debug!(source, peer = %peer, error = %e, "MLLP decode error");
                break;
            }
        }
        let idle_deadline = shared.idle.map(|idle| last_activity + idle);
        buf.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => {
                tracing::debug!(source, peer = %peer, "MLLP connection closed for shutdown");
                break;
            }
            // `read_buf` is cancel-safe: when another branch wins, nothing was read.
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) => {
                    if codec.in_frame() {
                        tracing::debug!(source, peer = %peer, bytes = buf.len(), "MLLP connection closed by the peer in the middle of a frame");
                    } else {
                        tracing::debug!(source, peer = %peer, "MLLP connection closed by the peer");
                    }
                    break;
                }
                Ok(_) => last_activity = Instant::now(),
                Err(e) => {
                    tracing::debug!(source, peer = %peer, error = %e, "MLLP connection read error");
                    break;
                }
            },
            _ = sleep_until_opt(idle_deadline) => {
                tracing::info!(source, peer = %peer, idle_secs = shared.idle.map_or(0, |d| d.as_secs()), "MLLP connection idle; closing");
                break;
            }
        }
    }
    let _ = stream.shutdown().await;
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Stores one message and sends its ACK. Returns false when the connection must close.
async fn handle(
    shared: &Shared,
    payload: Vec<u8>,
    peer: SocketAddr,
    write: &mut (impl AsyncWrite + Unpin),
) -> bool {
    let ctx = &shared.ctx;
    let source = ctx.name.as_str();
    let peer_name = Some(peer.to_string());
    let received = std::time::Instant::now(); // metrics: ACK latency
    let ack = match ack::sniff(&payload, ctx.charset.as_deref()) {
        Sniffed::Hl7(header) => match shared
            .pipeline
            .ingest_or_wait(ctx, payload, peer_name)
            .await
        {
            Ok(Ingested::Accepted {
                receipt,
                records,
                source_message_id,
            }) => {
                tracing::debug!(source, peer = %peer, message_id = %receipt.message_id, records, control_id = %source_message_id, "MLLP message accepted");
                ack::build_ack(Some(&header), AckCode::Aa, None)
            }
            Ok(Ingested::Rejected { message_id, error }) => {
                tracing::info!(source, peer = %peer, message_id = %message_id, "MLLP message rejected by the plugin; answering AE");
                ack::build_ack(
                    Some(&header),
                    AckCode::Ae,
                    Some(&ErrInfo::for_plugin_error(&error)),
                )
            }
            Ok(Ingested::Queued { message_id }) => {
                tracing::debug!(source, peer = %peer, message_id = %message_id, "MLLP message queued for adaptation");
                ack::build_ack(Some(&header), AckCode::Aa, None)
            }
            Ok(Ingested::Held { message_id, .. }) => {
                tracing::info!(source, peer = %peer, message_id = %message_id, "MLLP message held (plugin suspended); stored, answering AA");
                ack::build_ack(Some(&header), AckCode::Aa, None)
            }
            Err(e) if e.is_backpressure() => {
                tracing::warn!(source, peer = %peer, error = %e, "MLLP message NOT stored (back-pressure): no ACK, closing the connection so that the sender resends later");
                return false;
            }
            Err(e) => {
                crate::telemetry::ingest_refused(source, "journal");
                tracing::error!(source, peer = %peer, error = %e, "MLLP message NOT stored (journal error): no ACK, closing the connection so that the sender resends");
                return false;
            }
        },
        Sniffed::NotHl7 { header, reason } => {
            match shared
                .pipeline
                .store_failed(ctx, payload, peer_name, None, reason.clone())
                .await
            {
                Ok(message_id) => {
                    tracing::warn!(source, peer = %peer, message_id = %message_id, reason = %reason, "MLLP payload is not HL7 v2; stored as failed, answering AR");
                    ack::build_ack(
                        header.as_ref(),
                        AckCode::Ar,
                        Some(&ErrInfo::not_hl7(&reason)),
                    )
                }
                Err(e) => {
                    crate::telemetry::ingest_refused(source, "journal");
                    tracing::error!(source, peer = %peer, error = %e, "MLLP payload NOT stored (journal error): no ACK, closing the connection so that the sender resends");
                    return false;
                }
            }
        }
    };
    // TLS buffers records: flush so the ACK leaves now.
    let sent = match write.write_all(&codec::frame(&ack)).await {
        Ok(()) => write.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = sent {
        tracing::warn!(source, peer = %peer, error = %e, "cannot send the MLLP ACK (the message is stored)");
        return false;
    }
    crate::telemetry::ack_sent(source, received);
    true
}
