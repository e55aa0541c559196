//! Messages queued unadapted by a journal that [`JournalBackend::queues_inbound`] (JetStream):
//! the receiving source stores the raw message and acknowledges it; adapter tasks on every
//! node take queued messages, adapt and route them as the source would have, and store the
//! outcome. A node that dies mid-way leaves its claimed messages to the others.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument as _;

use super::{Ingested, Pipeline, SourceCtx, pause};
use crate::journal::{JournalError, Outcome, QueuedMessage};
use crate::plugin::{BreakerState, Inbound};

/// Queued messages taken per claim by one adapter task.
const CLAIM: usize = 32;
/// A message whose plugin is not serving (circuit breaker) is offered again after this long.
const NOT_SERVING_DELAY: Duration = Duration::from_secs(5);
/// After a journal error, an adapter task waits this long.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// The reason stored with a queued message (its source answers `Ingested::Queued`).
const QUEUED: &str = "queued for adaptation";

impl Pipeline {
    /// Stores `payload` unadapted (the backend queues it); the sender is acknowledged after.
    pub(super) async fn enqueue(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        received_at: String,
    ) -> Result<Ingested, JournalError> {
        let message_id = self
            .store_unadapted(source, payload, peer, received_at, QUEUED.into())
            .await?;
        Ok(Ingested::Queued { message_id })
    }

    /// Starts `n` adapter tasks (none when the journal does not queue); they stop with
    /// [`Pipeline::stop_drains`].
    pub fn spawn_adapters(self: &Arc<Self>, n: usize) {
        if !self.journal.queues_inbound() {
            return;
        }
        let mut drains = self.drains.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..n {
            drains.push(tokio::spawn(Arc::clone(self).adapter_loop()));
        }
    }

    async fn adapter_loop(self: Arc<Self>) {
        let mut stopping = self.stopping.subscribe();
        while !*stopping.borrow() {
            let claimed = tokio::select! {
                c = self.journal.claim_queued(CLAIM) => c,
                _ = stopping.wait_for(|s| *s) => break,
            };
            let messages = match claimed {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take queued messages; trying again");
                    if pause(&mut stopping, ERROR_PAUSE).await {
                        break;
                    }
                    continue;
                }
            };
            // A claim's messages go through together: each waits on JetStream round trips
            // (records published, inbound acknowledged), not on the CPU.
            let work = messages.into_iter().map(|q| async {
                let id = q.id;
                if *stopping.borrow() {
                    // Given back now rather than after the acknowledgement wait.
                    let _ = self.journal.requeue(id, Duration::ZERO).await;
                    return;
                }
                if let Err(e) = self.adapt_queued(q).await {
                    tracing::warn!(message_id = id.0, error = %e, "queued message not finished; it will be taken again");
                }
            });
            futures_util::future::join_all(work).await;
        }
    }

    /// Adapts, routes and stores one queued message.
    async fn adapt_queued(&self, q: QueuedMessage) -> Result<(), JournalError> {
        let source = match self.sources.get(&q.source) {
            Some(ctx) => SourceCtx {
                content_type: q.content_type.clone(),
                ..ctx.clone()
            },
            None => {
                let outcome = Outcome::Failed {
                    plugin: None,
                    reason: format!("source {} is not configured on this node", q.source),
                };
                self.journal.resolve_queued(q.id, outcome).await?;
                return Ok(());
            }
        };
        let serving = self
            .plugins
            .breaker(&source.plugin)
            .is_none_or(|b| b.state() == BreakerState::Serving);
        let Some(plugin) = self.plugins.get(&source.plugin).filter(|_| serving) else {
            // Suspended (or not loaded yet): stays queued, for this node or another.
            return self.journal.requeue(q.id, NOT_SERVING_DELAY).await;
        };
        let span = tracing::info_span!(
            "message",
            source = %source.name,
            source_message_id = tracing::field::Empty,
            message_id = q.id.0,
            redeliveries = q.redeliveries,
        );
        async {
            let inbound = Inbound {
                payload: q.payload,
                content_type: source.content_type.clone(),
                source: source.name.clone(),
                received_at: q.received_at,
                charset: source.charset.clone(),
            };
            let (_, processed) = self.process(&source, plugin, inbound).await?;
            self.resolve(q.id, &source, processed).await.map(|_| ())
        }
        .instrument(span)
        .await
    }
}
