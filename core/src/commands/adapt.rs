//! `passerelle adapt`: the vendor's test harness. Runs an adapter on files in the same sandbox
//! as production and prints each record as one JSON line on stdout; errors go to stderr and
//! make the exit code non-zero.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use passerelle::config::Config;
use passerelle::plugin::{Inbound, Plugin, PluginEngine, PluginLimits, PluginSpec};

use super::ConfigArg;

#[derive(clap::Args)]
pub struct AdaptArgs {
    /// A plugin name from the configuration, or a path to a `.wasm` component.
    #[arg(long, short)]
    plugin: String,
    #[command(flatten)]
    config: ConfigArg,
    /// Source name given to the plugin (record ids derive from it).
    #[arg(long, default_value = "cli")]
    source: String,
    /// Content type given to the plugin.
    #[arg(long, default_value = "x-application/hl7-v2+er7")]
    content_type: String,
    /// Charset to assume when the format does not say.
    #[arg(long)]
    charset: Option<String>,
    /// Split each file into HL7 v2 messages at every line starting with `MSH` (batch files).
    #[arg(long)]
    split_hl7: bool,
    /// Input files, one message each (unless --split-hl7).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: AdaptArgs) -> anyhow::Result<ExitCode> {
    let (spec, cache_dir) = resolve_plugin(&args.plugin, &args.config.config)?;
    let engine = PluginEngine::new(cache_dir).context("starting the wasm engine")?;
    let plugin =
        Plugin::load(&engine, &spec).with_context(|| format!("loading plugin {}", spec.name))?;
    let mut out = std::io::stdout().lock();
    let mut failures = 0usize;
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let messages = if args.split_hl7 {
            split_hl7(&bytes)
        } else {
            vec![bytes]
        };
        for (i, payload) in messages.into_iter().enumerate() {
            let inbound = Inbound {
                payload,
                content_type: args.content_type.clone(),
                source: args.source.clone(),
                received_at: passerelle::clock::now_rfc3339(),
                charset: args.charset.clone(),
            };
            match plugin.adapt(&inbound) {
                Ok(output) => {
                    for record in &output.records {
                        writeln!(out, "{}", record.to_json_line()).context("writing to stdout")?;
                    }
                }
                Err(e) => {
                    failures += 1;
                    eprintln!("{} (message {}): {e}", file.display(), i + 1);
                }
            }
        }
    }
    out.flush().ok();
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The plugin to run, and the component cache to use (the configuration's, when the plugin is
/// named through it).
fn resolve_plugin(plugin: &str, config: &Path) -> anyhow::Result<(PluginSpec, Option<PathBuf>)> {
    if plugin.ends_with(".wasm") {
        let spec = PluginSpec {
            name: Path::new(plugin)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("plugin")
                .to_string(),
            path: PathBuf::from(plugin),
            limits: PluginLimits::default(),
            settings_json: "{}".into(),
            sha256: None,
        };
        return Ok((spec, None));
    }
    let config =
        Config::load(config, None).with_context(|| format!("resolving plugin {plugin:?}"))?;
    let spec = config.plugin_spec(plugin).with_context(|| {
        format!(
            "no plugin {plugin:?} in {} (known: {})",
            config.file.display(),
            config
                .plugins
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    Ok((spec, Some(config.component_cache)))
}

/// Splits a batch file into messages at each line that starts with `MSH`.
fn split_hl7(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| {
            (i == 0 || matches!(bytes[i - 1], b'\n' | b'\r')) && bytes[i..].starts_with(b"MSH")
        })
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(bytes.len());
    starts
        .windows(2)
        .map(|w| bytes[w[0]..w[1]].to_vec())
        .filter(|m| m.iter().any(|b| !b.is_ascii_whitespace()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_hl7_batches() {
        let parts = super::split_hl7(b"MSH|a\rPID|1\nMSH|b\r\nOBX|1\r\n\n");
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"MSH|a"));
        assert!(parts[1].starts_with(b"MSH|b"));
    }
}
