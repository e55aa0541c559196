//! Configuration: `passerelle.toml`.

mod source_error;

pub use source_error::{TomlError, line_col, parse_toml};
