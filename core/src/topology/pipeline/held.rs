//! Held messages: while a plugin's breaker is open its sources' messages are stored as held;
//! when it resumes (admin API, or a new build) a drain task re-processes them, oldest first,
//! through the same message rows
//! ([`Journal::resolve_held`](crate::journal::Journal::resolve_held)), then the plugin serves
//! again.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::journal::{JournalError, MessageId};
use crate::plugin::{BreakerState, Inbound};

use super::{Ingested, Pipeline, Processed, SourceCtx, pause};

/// Held messages re-processed per journal query by a drain.
const DRAIN_CHUNK: usize = 100;
/// A drain that hit a journal error (or a full destination) tries again after this long.
const DRAIN_RETRY: Duration = Duration::from_secs(1);

/// The answer to [`Pipeline::resume_plugin`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResumeOutcome {
    pub plugin: String,
    /// The breaker's state after the call (`resuming` while held messages are re-processed).
    pub state: &'static str,
    /// The plugin was suspended (false: it was serving or resuming already).
    pub was_suspended: bool,
    /// A drain task re-processes the held messages (started now or already running).
    pub draining: bool,
}

impl Pipeline {
    /// An operator resumes `plugin` (admin API): a suspended breaker becomes `resuming` and a
    /// drain task re-processes the plugin's held messages, oldest first, then the plugin
    /// serves again. Idempotent: on a resuming plugin it changes nothing; on a serving one it
    /// only re-processes held messages left over (if any). `None` for an unknown plugin.
    pub fn resume_plugin(self: &Arc<Self>, plugin: &str) -> Option<ResumeOutcome> {
        let breaker = self.plugins.breaker(plugin)?;
        let was_suspended = breaker.begin_resume();
        if was_suspended {
            tracing::info!(plugin = %plugin, "plugin resumed by an operator; its held messages are re-processed");
        }
        let draining = self.start_drain(plugin);
        Some(ResumeOutcome {
            plugin: plugin.to_string(),
            state: breaker.state().as_str(),
            was_suspended,
            draining,
        })
    }

    /// Starts the drain task of `plugin` unless one runs; true when one runs (now).
    pub fn start_drain(self: &Arc<Self>, plugin: &str) -> bool {
        let Some(breaker) = self.plugins.breaker(plugin) else {
            return false;
        };
        if !breaker.try_start_drain() {
            return true;
        }
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(h) => h,
            Err(_) => match &self.runtime {
                Some(h) => h.clone(),
                None => {
                    breaker.end_drain();
                    tracing::error!(plugin = %plugin, "no runtime to re-process held messages on");
                    return false;
                }
            },
        };
        let task = runtime.spawn(Arc::clone(self).drain(plugin.to_string()));
        let mut drains = self.drains.lock().unwrap_or_else(|p| p.into_inner());
        drains.retain(|t| !t.is_finished());
        drains.push(task);
        true
    }

    /// Re-processes the held messages of `plugin` until none is left (then the breaker
    /// serves), the plugin is suspended again, or the pipeline stops.
    async fn drain(self: Arc<Self>, plugin: String) {
        let Some(breaker) = self.plugins.breaker(&plugin).cloned() else {
            return;
        };
        let mut stopping = self.stopping.subscribe();
        let mut after = MessageId(0);
        let mut final_pass = false;
        let (mut adapted, mut failed) = (0u64, 0u64);
        'drain: loop {
            if *stopping.borrow() {
                break;
            }
            if breaker.state() == BreakerState::Suspended {
                tracing::warn!(plugin = %plugin, adapted, failed, "plugin suspended again while re-processing its held messages; the rest stay held");
                break;
            }
            let listed = match &self.local {
                Some(local) => local.held_messages(&plugin, after, DRAIN_CHUNK).await,
                None => Ok(Vec::new()),
            };
            let ids = match listed {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(plugin = %plugin, error = %e, "cannot list held messages; trying again");
                    if pause(&mut stopping, DRAIN_RETRY).await {
                        break;
                    }
                    continue;
                }
            };
            if ids.is_empty() {
                if final_pass {
                    break;
                }
                // Every message held so far is done: new messages go to the plugin again...
                breaker.finish_resume();
                // ...and those being held at this very moment are stored, then done too.
                while breaker.holding() > 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                final_pass = true;
                after = MessageId(0);
                continue;
            }
            for id in ids {
                if *stopping.borrow() || breaker.state() == BreakerState::Suspended {
                    continue 'drain;
                }
                match self.reprocess_held(id).await {
                    Ok(Some(Ingested::Accepted { .. })) => adapted += 1,
                    Ok(Some(_)) => failed += 1,
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(plugin = %plugin, message_id = id.0, error = %e, "cannot re-process a held message now; trying again");
                        if pause(&mut stopping, DRAIN_RETRY).await {
                            break 'drain;
                        }
                        continue 'drain;
                    }
                }
                after = id;
            }
        }
        breaker.end_drain();
        match breaker.state() {
            BreakerState::Serving => {
                tracing::info!(plugin = %plugin, adapted, failed, "held messages re-processed; plugin serving");
            }
            // Resumed again while this drain was giving up (suspended again): it found a drain
            // still running and started none, so start one now.
            BreakerState::Resuming if !*stopping.borrow() => {
                self.start_drain(&plugin);
            }
            _ => {}
        }
    }

    /// Puts one held message through its plugin and routes now, as its source would have;
    /// the held row gets the outcome. `Ok(None)`: it is not held any more (or gone).
    pub async fn reprocess_held(&self, id: MessageId) -> Result<Option<Ingested>, JournalError> {
        let Some(local) = &self.local else {
            return Ok(None);
        };
        let Some(view) = local.message(id).await? else {
            return Ok(None);
        };
        let Some(plugin_name) = view.plugin.clone() else {
            return Ok(None);
        };
        let source = match self.sources.get(&view.source) {
            Some(ctx) => SourceCtx {
                plugin: plugin_name.clone(),
                content_type: view.content_type.clone(),
                ..ctx.clone()
            },
            None => SourceCtx {
                name: view.source.clone(),
                plugin: plugin_name.clone(),
                content_type: view.content_type.clone(),
                charset: None,
            },
        };
        let Some(plugin) = self.plugins.get(&plugin_name) else {
            return Err(JournalError::Internal(format!(
                "plugin {plugin_name} is not loaded"
            )));
        };
        let span = tracing::info_span!(
            "message",
            source = %source.name,
            source_message_id = tracing::field::Empty,
            message_id = id.0,
        );
        async {
            let inbound = Inbound {
                payload: view.payload,
                content_type: source.content_type.clone(),
                source: source.name.clone(),
                received_at: view.received_at,
                charset: source.charset.clone(),
            };
            let (_, processed) = self.process(&source, plugin, inbound).await?;
            if let Processed::Adapted { touched, .. } = &processed {
                self.admit(&source, touched, DRAIN_RETRY).await?;
            }
            self.resolve(id, &source, processed).await
        }
        .instrument(span)
        .await
    }

    /// Stops the drain tasks (shutdown): what they stored is stored; the rest stays held.
    pub async fn stop_drains(&self) {
        self.stopping.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = self
            .drains
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// At start: a plugin with held messages left from before is suspended (it was when the
    /// daemon stopped); an operator resumes it. Returns the plugins suspended.
    pub async fn suspend_plugins_with_held_messages(&self) -> Result<Vec<String>, JournalError> {
        let Some(local) = &self.local else {
            return Ok(Vec::new());
        };
        let held = local.held_counts().await?;
        let mut suspended = Vec::new();
        for (plugin, n) in held {
            if let Some(breaker) = self.plugins.breaker(&plugin) {
                breaker.suspend(&format!("{n} held message(s) from before the restart"));
                tracing::warn!(plugin = %plugin, held = n, "plugin has held messages from before the restart: SUSPENDED until it is resumed (POST /plugins/{plugin}/resume)");
                suspended.push(plugin);
            } else if n > 0 {
                tracing::warn!(plugin = %plugin, held = n, "held messages of a plugin that is no longer configured");
            }
        }
        Ok(suspended)
    }
}
