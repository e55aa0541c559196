//! The topology: builds sources, plugins, journal, routes and destinations from the
//! configuration, wires them together, and shuts them down in order.
//!
//! Start-up order follows the data backwards, so that nothing is accepted before the stage that
//! must store it exists: journal → plugins → routes → destinations → pipeline → sources.
//! Shutdown goes forwards: sources stop accepting and finish in-flight messages, then the
//! destinations finish in-flight deliveries, then the journal flushes and closes.

mod pipeline;

pub use pipeline::{Ingested, Pipeline, SourceCtx, Waker};

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::deliver::Deliveries;
use crate::ingest::{self, Sources};
use crate::journal::Journal;
use crate::plugin::{PluginEngine, PluginRegistry, PluginWatcher};
use crate::route::{self, RoutesHandle, RoutesWatcher};

/// A running Passerelle.
pub struct Topology {
    pub journal: Journal,
    pub plugins: Arc<PluginRegistry>,
    pub routes: Arc<RoutesHandle>,
    pub deliveries: Arc<Deliveries>,
    pub pipeline: Arc<Pipeline>,
    pub sources: Option<Sources>,
    shutdown: watch::Sender<bool>,
    _routes_watcher: RoutesWatcher,
    _plugin_watcher: PluginWatcher,
}

impl Topology {
    /// Starts everything; must run inside a tokio runtime.
    pub async fn start(config: &Config) -> anyhow::Result<Topology> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
        let journal = Journal::open(&config.journal.path)
            .with_context(|| format!("opening the journal {}", config.journal.path.display()))?;

        let engine = PluginEngine::new(Some(config.component_cache_dir())).context("starting the wasm engine")?;
        let specs = config.plugin_specs();
        let plugins = tokio::task::spawn_blocking(move || PluginRegistry::load_all(engine, specs))
            .await
            .context("loading plugins")?
            .map_err(|errors| {
                anyhow::anyhow!(
                    "{}",
                    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
                )
            })?;
        let plugins = Arc::new(plugins);

        let known: HashSet<String> = config.destinations.keys().cloned().collect();
        let routes = Arc::new(RoutesHandle::load(&config.routes, known.clone()).map_err(|e| anyhow::anyhow!("{e}"))?);
        let routes_watcher = route::watch(Arc::clone(&routes), &config.routes, known)
            .with_context(|| format!("watching {}", config.routes.display()))?;
        tracing::info!(version = %routes.current().version(), file = %config.routes.display(), "routes loaded");
        let plugin_watcher = plugins.watch().context("watching plugin files")?;

        let deliveries = Arc::new(
            Deliveries::start(&journal, &config.destinations, &config.delivery).context("starting destinations")?,
        );
        let wake_target = Arc::clone(&deliveries);
        let waker: Waker = Arc::new(move |d: &str| {
            wake_target.wake(d);
        });
        let pipeline = Arc::new(Pipeline::new(journal.clone(), Arc::clone(&plugins), Arc::clone(&routes), waker));

        let (shutdown, shutdown_rx) = watch::channel(false);
        let sources = ingest::start_all(&config.sources, Arc::clone(&pipeline), shutdown_rx).context("starting sources")?;
        Ok(Topology {
            journal,
            plugins,
            routes,
            deliveries,
            pipeline,
            sources: Some(sources),
            shutdown,
            _routes_watcher: routes_watcher,
            _plugin_watcher: plugin_watcher,
        })
    }

    /// SIGHUP: re-read the routes and every plugin file now.
    pub fn reload(&self) {
        match self.routes.reload_now() {
            Ok(outcome) => tracing::info!(?outcome, "routes reload"),
            Err(e) => tracing::error!(error = %e, "routes reload rejected; the previous rules stay in force"),
        }
        let names: Vec<String> = self.plugins.names().map(str::to_string).collect();
        for name in names {
            let _ = self.plugins.reload(&name);
        }
    }

    /// Stops accepting, finishes in-flight work, flushes and closes the journal.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(sources) = self.sources.take() {
            sources.join().await;
        }
        tracing::info!("sources stopped; finishing deliveries");
        self.deliveries.shutdown().await;
        self.journal.clone().close().await;
        tracing::info!("journal closed");
    }
}
