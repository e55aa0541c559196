//! The configuration file: `Config::parse` on arbitrary text must return a config or
//! file:line:col errors, never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use passerelle::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(Path::new("config/passerelle.toml"), src, None) {
        let _ = config.plugin_specs();
    } else if let Err(e) = Config::parse(Path::new("passerelle.toml"), src, None) {
        let _ = e.to_string();
    }
});
