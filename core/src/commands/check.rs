//! `passerelle check`: validates the configuration, the routes and the plugins without
//! starting anything. Lists every error and exits non-zero if there is one.

use std::process::ExitCode;

use passerelle::config::{Config, ConfigError};
use passerelle::plugin::{Plugin, PluginEngine};

use super::ConfigArg;

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut errors: Vec<String> = Vec::new();
    let config = match Config::load(&args.config.config, None) {
        Ok(c) => c,
        Err(ConfigError::Invalid(list)) => {
            errors.extend(list.iter().map(ToString::to_string));
            return Ok(report(&errors));
        }
        Err(e) => {
            errors.push(e.to_string());
            return Ok(report(&errors));
        }
    };
    let destinations = config.destinations.keys().cloned().collect();
    if let Err(e) = passerelle::route::RuleSet::load(&config.routes, &destinations) {
        errors.push(e.to_string());
    }
    // HTTP sources that require a token must have one (the daemon refuses to start otherwise).
    for (name, source) in &config.sources {
        if let passerelle::config::SourceConfig::Http(http) = source
            && http.requires_token()
        {
            let what = format!("sources.{name}");
            match passerelle::auth::BearerTokens::load(
                &what,
                http.token_file.as_deref(),
                http.token_env.as_deref(),
            ) {
                Ok(tokens) if tokens.is_empty() => errors.push(format!(
                    "{what}: token_file/token_env are set but give no token"
                )),
                Ok(_) => {}
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
    }
    let engine = PluginEngine::new(Some(config.component_cache.clone()))?;
    for spec in config.plugin_specs() {
        let name = &spec.name;
        match Plugin::load(&engine, &spec) {
            Ok(plugin) => println!(
                "plugin {name}: {} {} ok (sha256 {})",
                plugin.info().name,
                plugin.info().version,
                plugin.sha256()
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Ok(report(&errors))
}

fn report(errors: &[String]) -> ExitCode {
    if errors.is_empty() {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("{} error(s)", errors.len());
    ExitCode::FAILURE
}
