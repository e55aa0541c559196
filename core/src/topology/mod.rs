//! The topology: builds sources, plugins, journal, routes and destinations from the
//! configuration, wires them together, and shuts them down in order.
//!
//! Start-up order follows the data backwards, so that nothing is accepted before the stage that
//! must store it exists: journal → plugins → routes → destinations → pipeline → sources, then
//! the admin API (bound, with its tokens loaded, before the sources start, so that a bad
//! `[admin]` stops the start early) and the journal retention task.
//! Shutdown goes forwards: the admin API and sources stop accepting and finish requests and
//! in-flight messages, then the destinations finish in-flight deliveries, then the retention
//! task stops and the journal flushes and closes.

mod pipeline;
#[cfg(test)]
mod tests;

pub use pipeline::{Ingested, Pipeline, ResumeOutcome, SourceCtx, Waker};

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{AdminListener, AdminServer, AdminState};

use crate::config::Config;
use crate::deliver::Deliveries;
use crate::ingest::{self, Sources};
use crate::journal::{JetStreamJournal, Journal, JournalBackend, JournalOptions};
use crate::plugin::{PluginEngine, PluginRegistry, PluginWatcher};
use crate::route::{self, RoutesHandle, RoutesWatcher};

/// A running Passerelle.
pub struct Topology {
    /// The embedded journal (`None` when `[journal.jetstream]` puts it on NATS).
    pub journal: Option<Journal>,
    /// The journal the stages use (the embedded one, or JetStream).
    pub backend: Arc<dyn JournalBackend>,
    pub plugins: Arc<PluginRegistry>,
    pub routes: Arc<RoutesHandle>,
    pub deliveries: Arc<Deliveries>,
    pub pipeline: Arc<Pipeline>,
    pub sources: Option<Sources>,
    admin: Option<AdminServer>,
    store_apis: Vec<crate::store::api::ApiServer>,
    retention: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    _routes_watcher: RoutesWatcher,
    _plugin_watcher: PluginWatcher,
}

impl Topology {
    /// Starts everything; must run inside a tokio runtime.
    pub async fn start(config: &Config) -> anyhow::Result<Topology> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let (journal, backend) = open_journal(config).await?;

        let engine = PluginEngine::new(Some(config.component_cache.clone()))
            .context("starting the wasm engine")?;
        let specs = config.plugin_specs();
        let plugins = tokio::task::spawn_blocking(move || PluginRegistry::load_all(engine, specs))
            .await
            .context("loading plugins")?
            .map_err(|errors| {
                anyhow::anyhow!(
                    "{}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?;
        let plugins = Arc::new(plugins);
        let audit = crate::admin::audit::AuditLog::open(&config.audit_log)?;
        audit.record(
            "daemon",
            "daemon.start",
            &config.file.display().to_string(),
            "ok",
            None,
        );
        plugins.set_audit(Arc::clone(&audit));

        let known: HashSet<String> = config.destinations.keys().cloned().collect();
        let routes = Arc::new(
            RoutesHandle::load(&config.routes, known.clone())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        routes.set_audit(Arc::clone(&audit));
        let routes_watcher = route::watch(Arc::clone(&routes), &config.routes, known)
            .with_context(|| format!("watching {}", config.routes.display()))?;
        tracing::info!(version = %routes.current().version(), file = %config.routes.display(), "routes loaded");
        let plugin_watcher = plugins.watch().context("watching plugin files")?;

        // Record-store destinations: their files under the data dir, their API files next
        // to the config file.
        let mut destinations = config.destinations.clone();
        let config_dir = config.file.parent().unwrap_or(std::path::Path::new("."));
        for d in destinations.values_mut() {
            crate::store::resolve_paths(d, &config.data_dir, config_dir);
        }
        let deliveries = Arc::new(
            Deliveries::start(&backend, &destinations, &config.delivery)
                .context("starting destinations")?,
        );
        let wake_target = Arc::clone(&deliveries);
        let waker: Waker = Arc::new(move |d: &str| {
            wake_target.wake(d);
        });
        let source_ctxs = config
            .sources
            .iter()
            .map(|(name, c)| (name.clone(), ingest::source_ctx(name, c)))
            .collect();
        let pipeline = match &journal {
            Some(j) => Pipeline::new(j.clone(), Arc::clone(&plugins), Arc::clone(&routes), waker),
            None => Pipeline::on_backend(
                Arc::clone(&backend),
                Arc::clone(&plugins),
                Arc::clone(&routes),
                waker,
            ),
        };
        let pipeline = Arc::new(
            pipeline
                .with_backpressure(
                    config.delivery.max_pending,
                    Duration::from_millis(config.delivery.max_pending_wait_ms),
                )
                .with_sources(source_ctxs),
        );
        // Circuit breakers: held messages left from before a restart keep their plugin
        // suspended; a new build of a suspended plugin re-processes its held messages.
        pipeline
            .suspend_plugins_with_held_messages()
            .await
            .context("reading held messages")?;
        if let Some(js) = &config.journal.jetstream {
            pipeline.spawn_adapters(js.adapters);
        }
        let weak = Arc::downgrade(&pipeline);
        plugins.set_new_build_hook(Box::new(move |name: &str| {
            if let Some(pipeline) = weak.upgrade() {
                pipeline.start_drain(name);
            }
        }));

        let admin_listener = config
            .admin
            .as_ref()
            .map(AdminListener::bind)
            .transpose()
            .context("starting the admin API")?;
        // The metrics recorder is only installed when something exports it (the admin API).
        let metrics = admin_listener
            .as_ref()
            .and_then(|_| crate::telemetry::install());
        let store_apis = crate::store::api::bind_all(&destinations)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sources =
            ingest::start_all(&config.sources, Arc::clone(&pipeline), shutdown_rx.clone())
                .context("starting sources")?;
        let admin = admin_listener.map(|listener| {
            let state = AdminState {
                journal: journal.clone(),
                pipeline: Arc::clone(&pipeline),
                plugins: Arc::clone(&plugins),
                routes: Arc::clone(&routes),
                deliveries: Arc::clone(&deliveries),
                sources: sources.list().to_vec(),
                source_configs: config.sources.clone(),
                metrics,
                stopping: shutdown_rx.clone(),
                audit: Some(Arc::clone(&audit)),
            };
            listener.spawn(state, shutdown_rx.clone())
        });
        let store_apis = store_apis
            .into_iter()
            .map(|(listener, store)| listener.spawn(store, shutdown_rx.clone()))
            .collect();
        let retention = config
            .journal
            .retain_delivered
            .zip(journal.clone())
            .map(|(retain, j)| spawn_retention(j, retain, shutdown_rx.clone()));
        Ok(Topology {
            journal,
            backend,
            plugins,
            routes,
            deliveries,
            pipeline,
            sources: Some(sources),
            admin,
            store_apis,
            retention,
            shutdown,
            _routes_watcher: routes_watcher,
            _plugin_watcher: plugin_watcher,
        })
    }

    /// SIGHUP: re-read the routes and every plugin file now.
    pub fn reload(&self) {
        match self.routes.reload_now() {
            Ok(outcome) => tracing::info!(?outcome, "routes reload"),
            Err(e) => {
                tracing::error!(error = %e, "routes reload rejected; the previous rules stay in force")
            }
        }
        let names: Vec<String> = self.plugins.names().map(str::to_string).collect();
        for name in names {
            let _ = self.plugins.reload(&name);
        }
    }

    /// Where the admin API listens (when `[admin]` is configured).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// Stops accepting, finishes in-flight work, flushes and closes the journal.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(admin) = self.admin.take() {
            admin.join().await;
        }
        for api in std::mem::take(&mut self.store_apis) {
            api.join().await;
        }
        if let Some(sources) = self.sources.take() {
            sources.join().await;
        }
        self.pipeline.stop_drains().await;
        tracing::info!("sources stopped; finishing deliveries");
        self.deliveries.shutdown().await;
        if let Some(retention) = self.retention.take() {
            let _ = retention.await;
        }
        self.backend.close().await;
        tracing::info!(backend = self.backend.kind(), "journal closed");
    }
}

/// The embedded journal, or JetStream when `[journal.jetstream]` is set (then no local one).
async fn open_journal(
    config: &Config,
) -> anyhow::Result<(Option<Journal>, Arc<dyn JournalBackend>)> {
    let Some(js) = &config.journal.jetstream else {
        let journal = Journal::open_with(
            &config.journal.path,
            JournalOptions {
                max_size_mib: config.journal.max_size_mib,
                commit_wait: config.journal.commit_wait,
                ..Default::default()
            },
        )
        .with_context(|| format!("opening the journal {}", config.journal.path.display()))?;
        return Ok((Some(journal.clone()), Arc::new(journal)));
    };
    let node = js.node.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "passerelle".into())
    });
    let destinations: Vec<String> = config.destinations.keys().cloned().collect();
    let journal = JetStreamJournal::open(js, &node, &destinations)
        .await
        .with_context(|| format!("opening the JetStream journal at {}", js.urls.join(", ")))?;
    Ok((None, Arc::new(journal)))
}

/// How often the retention task looks: a quarter of the retention, between 1 s and 10 min.
pub fn retention_interval(retain: Duration) -> Duration {
    (retain / 4).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// `[journal] retain_delivered`: prunes delivered (and discarded) messages stored more than
/// `retain` ago, at once and then every [`retention_interval`], until shutdown. Failed, held,
/// routed and dead messages are never pruned.
fn spawn_retention(
    journal: Journal,
    retain: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = retention_interval(retain);
    tracing::info!(retain = %humantime::format_duration(retain), every = %humantime::format_duration(every), "journal retention on");
    tokio::spawn(async move {
        loop {
            let cutoff = crate::clock::now_ms()
                .saturating_sub(retain.as_millis().min(i64::MAX as u128) as i64);
            match journal.prune_delivered(cutoff).await {
                Ok(0) => {}
                Ok(n) => {
                    crate::telemetry::pruned(n);
                    tracing::info!(messages = n, "journal retention: delivered messages pruned");
                }
                Err(e) => tracing::error!(error = %e, "journal retention: pruning failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = crate::ingest::stopped(&mut shutdown) => return,
            }
        }
    })
}
