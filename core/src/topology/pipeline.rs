//! What happens to one inbound message, from its bytes to a durable commit: adapt it in the
//! sandbox, route its records under one rules version, store message + records + outbox in one
//! group-committed transaction, and wake the destinations. Sources acknowledge the sender only
//! after [`Pipeline::ingest`] returns.

use std::sync::Arc;

use crate::journal::{CommitReceipt, IngestedMessage, Journal, JournalError, MessageId, Outcome, RoutedRecord};
use crate::plugin::{Inbound, PluginError, PluginRegistry};
use crate::route::RoutesHandle;

/// What a source knows about itself, handed to the pipeline with each message.
#[derive(Debug, Clone)]
pub struct SourceCtx {
    pub name: String,
    pub plugin: String,
    pub content_type: String,
    pub charset: Option<String>,
}

/// The result of a stored message, for the acknowledgement.
#[derive(Debug)]
pub enum Ingested {
    /// Adapted, routed and stored.
    Accepted { receipt: CommitReceipt, records: usize, source_message_id: String },
    /// Stored as failed: the plugin rejected it, trapped, or returned invalid output.
    Rejected { message_id: MessageId, error: PluginError },
}

/// Called with each destination that has new records to deliver.
pub type Waker = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Pipeline {
    journal: Journal,
    plugins: Arc<PluginRegistry>,
    routes: Arc<RoutesHandle>,
    wake: Waker,
}

impl Pipeline {
    pub fn new(journal: Journal, plugins: Arc<PluginRegistry>, routes: Arc<RoutesHandle>, wake: Waker) -> Self {
        Pipeline { journal, plugins, routes, wake }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn routes(&self) -> &Arc<RoutesHandle> {
        &self.routes
    }

    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Adapts, routes and stores one message. `Err` means nothing was stored: the sender must
    /// not be acknowledged (it will resend).
    pub async fn ingest(&self, source: &SourceCtx, payload: Vec<u8>, peer: Option<String>) -> Result<Ingested, JournalError> {
        let received_at = crate::clock::now_rfc3339();
        let Some(plugin) = self.plugins.get(&source.plugin) else {
            // The configuration check makes this unreachable; store the message rather than lose it.
            let reason = format!("source {} names plugin {}, which is not loaded", source.name, source.plugin);
            return self.store_failed(source, payload, peer, None, reason).await.map(|message_id| {
                Ingested::Rejected {
                    message_id,
                    error: PluginError::Engine(format!("plugin {} is not loaded", source.plugin)),
                }
            });
        };
        let inbound = Inbound {
            payload,
            content_type: source.content_type.clone(),
            source: source.name.clone(),
            received_at: received_at.clone(),
            charset: source.charset.clone(),
        };
        // Plugin calls are synchronous (and may run up to their time cap): keep them off the
        // async workers.
        let (inbound, result) = tokio::task::spawn_blocking(move || {
            let result = plugin.adapt(&inbound);
            (inbound, (result, plugin.info().version.clone()))
        })
        .await
        .map_err(|e| JournalError::Internal(format!("adapter task failed: {e}")))?;
        let (result, plugin_version) = result;

        match result {
            Ok(output) => {
                let rules = self.routes.current();
                let records: Vec<RoutedRecord> = output
                    .records
                    .into_iter()
                    .map(|record| {
                        let decision = rules.route(&record.envelope);
                        RoutedRecord { record, route: decision.route, destinations: decision.destinations }
                    })
                    .collect();
                let mut touched: Vec<String> = records.iter().flat_map(|r| r.destinations.iter().cloned()).collect();
                touched.sort_unstable();
                touched.dedup();
                let count = records.len();
                let source_message_id = output.source_message_id.clone();
                let receipt = self
                    .journal
                    .commit_message(IngestedMessage {
                        source: source.name.clone(),
                        content_type: inbound.content_type,
                        received_at,
                        payload: inbound.payload,
                        peer,
                        outcome: Outcome::Adapted {
                            plugin: source.plugin.clone(),
                            plugin_version,
                            source_message_id: output.source_message_id,
                            message_type: output.message_type,
                            rules_version: rules.version().to_string(),
                            records,
                        },
                    })
                    .await?;
                for d in &touched {
                    (self.wake)(d);
                }
                Ok(Ingested::Accepted { receipt, records: count, source_message_id })
            }
            Err(error) => {
                tracing::warn!(source = %source.name, plugin = %source.plugin, error = %error, "message rejected");
                let message_id = self
                    .store_failed(source, inbound.payload, peer, Some(source.plugin.clone()), error.to_string())
                    .await?;
                Ok(Ingested::Rejected { message_id, error })
            }
        }
    }

    /// Stores a message that could not be adapted (or is not of the source's format at all).
    pub async fn store_failed(
        &self,
        source: &SourceCtx,
        payload: Vec<u8>,
        peer: Option<String>,
        plugin: Option<String>,
        reason: String,
    ) -> Result<MessageId, JournalError> {
        let receipt = self
            .journal
            .commit_message(IngestedMessage {
                source: source.name.clone(),
                content_type: source.content_type.clone(),
                received_at: crate::clock::now_rfc3339(),
                payload,
                peer,
                outcome: Outcome::Failed { plugin, reason },
            })
            .await?;
        Ok(receipt.message_id)
    }
}
