//! Configuration: `passerelle.toml`.
//!
//! Parsed with serde; unknown keys are errors, and every error says file, line, column and what
//! was expected ([`TomlError`]). Relative paths resolve against the config file's folder, except
//! file destinations' folders, which resolve against the data dir. See `docs/operations.md` for
//! every key.

mod model;
mod source_error;

pub use model::*;
pub use source_error::{TomlError, line_col, parse_toml};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default config path, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/passerelle.toml";

/// Longest `[journal] commit_wait` accepted: every busy commit waits that long.
const MAX_COMMIT_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// A loaded configuration, with paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub data_dir: PathBuf,
    pub routes: PathBuf,
    pub journal: JournalConfig,
    pub plugins: BTreeMap<String, PluginConfig>,
    pub sources: BTreeMap<String, SourceConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub delivery: DeliveryDefaults,
    pub admin: Option<AdminConfig>,
    /// The append-only audit log ([`crate::admin::audit`]).
    pub audit_log: PathBuf,
    /// Where compiled components are cached ([`crate::plugin::PluginEngine`]):
    /// `component_cache`, by default `<data_dir>/cache/components`.
    pub component_cache: PathBuf,
}

impl Config {
    /// Reads and checks `file`. `data_dir` overrides the configured data dir.
    pub fn load(file: &Path, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let src = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse(file, &src, data_dir)
    }

    /// Parses `src` as the content of `file`.
    pub fn parse(file: &Path, src: &str, data_dir: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_toml(file, src).map_err(|e| ConfigError::Invalid(vec![e]))?;
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let data_dir = match data_dir {
            Some(d) => d.to_path_buf(),
            None => resolve(&raw.data_dir),
        };
        let mut errors = Vec::new();
        let mut err =
            |offset: Option<usize>, msg: String| errors.push(TomlError::at(file, src, offset, msg));

        let mut plugins = BTreeMap::new();
        for (name, p) in raw.plugins {
            let settings_json = match serde_json::to_string(&p.settings) {
                Ok(s) => s,
                Err(e) => {
                    err(
                        None,
                        format!("plugins.{name}.settings cannot be passed to the plugin: {e}"),
                    );
                    continue;
                }
            };
            plugins.insert(
                name.clone(),
                PluginConfig {
                    path: resolve(&p.path),
                    sha256: p.sha256,
                    limits: p.limits,
                    settings_json,
                },
            );
        }
        let mut sources = BTreeMap::new();
        for (name, s) in raw.sources {
            let plugin = s.get_ref().plugin();
            if !plugins.contains_key(plugin) {
                err(
                    Some(s.span().start),
                    format!(
                        "source {name:?} uses plugin {plugin:?}, which is not defined under [plugins]"
                    ),
                );
            }
            let mut s = s.into_inner();
            match &mut s {
                SourceConfig::Inbox(inbox) => inbox.dir = resolve(&inbox.dir),
                SourceConfig::Http(http) => {
                    http.token_file = http.token_file.as_ref().map(|p| resolve(p));
                    http.tls = http.tls.take().map(|t| t.resolved(&resolve));
                }
                SourceConfig::Mllp(mllp) => {
                    mllp.tls = mllp.tls.take().map(|t| t.resolved(&resolve))
                }
            }
            sources.insert(name, s);
        }
        let mut destinations = BTreeMap::new();
        for (name, d) in raw.destinations {
            let mut d = d.into_inner();
            if let DestinationConfig::File(f) = &mut d
                && !f.dir.is_absolute()
            {
                f.dir = data_dir.join(&f.dir);
            }
            destinations.insert(name, d);
        }
        let retain_delivered = raw.journal.retain_delivered.as_ref().and_then(|v| {
            duration_setting(v, "journal.retain_delivered", "\"30d\" or \"12h\"", |d| {
                (!d.is_zero()).then_some(d).ok_or("must be longer than 0")
            })
            .map_err(|(at, msg)| err(Some(at), msg))
            .ok()
        });
        let commit_wait = match &raw.journal.commit_wait {
            None => crate::journal::DEFAULT_COMMIT_WAIT,
            Some(v) => duration_setting(
                v,
                "journal.commit_wait",
                "\"500us\", \"1ms\" or \"0s\"",
                |d| {
                    (d <= MAX_COMMIT_WAIT)
                        .then_some(d)
                        .ok_or("must be at most 50ms: every busy commit waits that long")
                },
            )
            .unwrap_or_else(|(at, msg)| {
                err(Some(at), msg);
                crate::journal::DEFAULT_COMMIT_WAIT
            }),
        };
        let max_size_mib = match &raw.journal.max_size_mib {
            Some(v) if *v.get_ref() == 0 => {
                err(
                    Some(v.span().start),
                    "journal.max_size_mib must be at least 1".into(),
                );
                None
            }
            Some(v) => Some(*v.get_ref()),
            None => None,
        };
        let jetstream = match raw.journal.jetstream {
            None => None,
            Some(js) => {
                let at = js.span().start;
                let mut js = js.into_inner();
                if js.urls.is_empty() {
                    err(
                        Some(at),
                        "journal.jetstream.urls: at least one nats:// URL".into(),
                    );
                }
                if !matches!(js.replicas, 1..=5) {
                    err(
                        Some(at),
                        "journal.jetstream.replicas must be between 1 and 5".into(),
                    );
                }
                if js.prefix.is_empty()
                    || !js
                        .prefix
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    err(
                        Some(at),
                        format!(
                            "journal.jetstream.prefix {:?}: letters, digits, '-' and '_' only",
                            js.prefix
                        ),
                    );
                }
                if js.adapters == 0 || js.ack_wait_ms == 0 || js.max_ack_pending < 1 {
                    err(
                        Some(at),
                        "journal.jetstream: adapters, ack_wait_ms and max_ack_pending must be at least 1"
                            .into(),
                    );
                }
                js.credentials = js.credentials.map(|p| resolve(&p));
                Some(js)
            }
        };
        let admin = raw.admin.map(|mut a| {
            a.token_file = a.token_file.map(|p| resolve(&p));
            a.tls = a.tls.map(|t| t.resolved(&resolve));
            a
        });
        let audit_log = raw
            .audit_log
            .map(|p| resolve(&p))
            .unwrap_or_else(|| data_dir.join("audit.jsonl"));
        let component_cache = raw
            .component_cache
            .map(|p| resolve(&p))
            .unwrap_or_else(|| data_dir.join("cache").join("components"));
        if !errors.is_empty() {
            return Err(ConfigError::Invalid(errors));
        }
        let journal = JournalConfig {
            path: raw
                .journal
                .path
                .map(|p| resolve(&p))
                .unwrap_or_else(|| data_dir.join("journal.db")),
            retain_delivered,
            max_size_mib,
            commit_wait,
            jetstream,
        };
        Ok(Config {
            file: file.to_path_buf(),
            routes: resolve(&raw.routes),
            data_dir,
            journal,
            plugins,
            sources,
            destinations,
            delivery: raw.delivery,
            admin,
            audit_log,
            component_cache,
        })
    }

    /// How to load the plugin configured as `name`.
    pub fn plugin_spec(&self, name: &str) -> Option<crate::plugin::PluginSpec> {
        self.plugins.get(name).map(|p| crate::plugin::PluginSpec {
            name: name.to_string(),
            path: p.path.clone(),
            limits: p.limits,
            settings_json: p.settings_json.clone(),
            sha256: p.sha256.clone(),
        })
    }

    /// How to load every configured plugin.
    pub fn plugin_specs(&self) -> Vec<crate::plugin::PluginSpec> {
        self.plugins
            .keys()
            .filter_map(|name| self.plugin_spec(name))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {reason}", file.display())]
    Read { file: PathBuf, reason: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<TomlError>),
}

/// A humantime duration setting (`key` names it in errors, `examples` shows valid values),
/// accepted by `check`; else the position of the value and the message.
fn duration_setting(
    v: &toml::Spanned<String>,
    key: &str,
    examples: &str,
    check: impl Fn(std::time::Duration) -> Result<std::time::Duration, &'static str>,
) -> Result<std::time::Duration, (usize, String)> {
    let at = v.span().start;
    match humantime::parse_duration(v.get_ref()) {
        Ok(d) => check(d).map_err(|why| (at, format!("{key} {why}"))),
        Err(e) => Err((
            at,
            format!("{key}: {e} (expected a duration such as {examples})"),
        )),
    }
}

#[cfg(test)]
mod tests;
