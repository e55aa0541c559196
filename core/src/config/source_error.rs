//! TOML errors that say file, line, column and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

/// A TOML file that did not parse or did not match the expected schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    pub file: PathBuf,
    /// 1-based line and column; 0 when the error has no position.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for TomlError {}

impl TomlError {
    /// An error at a byte offset of `src` (e.g. a semantic check on a spanned value).
    pub fn at(file: &Path, src: &str, offset: Option<usize>, message: impl Into<String>) -> Self {
        let (line, column) = offset.map(|o| line_col(src, o)).unwrap_or((0, 0));
        TomlError {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// Parses `src` (the content of `file`) into `T`, mapping errors to file:line:column.
pub fn parse_toml<T: serde::de::DeserializeOwned>(file: &Path, src: &str) -> Result<T, TomlError> {
    toml::from_str(src).map_err(|e| {
        // toml's message repeats the snippet on several lines; keep the first line of the reason.
        let message = e.message().trim().to_string();
        let offset = e
            .span()
            .map(|s| s.start)
            .map(|o| refine_offset(src, o, &message));
        TomlError::at(file, src, offset, message)
    })
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Inside tables that serde buffers (internally tagged enums), toml reports the table's
/// position; for an unknown key, point at the key itself.
fn refine_offset(src: &str, offset: usize, message: &str) -> usize {
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|m| m.split('`').next())
    else {
        return offset;
    };
    let mut line_start = offset.min(src.len());
    for line in src.get(line_start..).unwrap_or("").split_inclusive('\n') {
        let trimmed = line.trim_start();
        let at = line_start + (line.len() - trimmed.len());
        line_start += line.len();
        if at > offset && trimmed.starts_with('[') {
            break; // the next table: the key is not in this one
        }
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return at;
        }
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let src = "a = 1\nbogus = 2\n";
        let e = parse_toml::<T>(Path::new("x.toml"), src).unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("bogus"), "{}", e.message);
        assert!(e.to_string().starts_with("x.toml:2:1: "));
    }

    #[test]
    fn unknown_key_in_a_buffered_table_points_at_the_key() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(tag = "type")]
        #[allow(dead_code)]
        enum E {
            #[serde(rename = "a")]
            A(Inner),
        }
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            x: u32,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Top {
            t: std::collections::BTreeMap<String, E>,
        }
        let src = "[t.one]\ntype = \"a\"\nx = 1\n  speed = 3\n[t.two]\ntype = \"a\"\nx = 2\n";
        let e = parse_toml::<Top>(Path::new("c.toml"), src).unwrap_err();
        assert_eq!((e.line, e.column), (4, 3), "{e}");
    }

    #[test]
    fn wrong_type_reports_position() {
        let e = parse_toml::<T>(Path::new("x.toml"), "a = \"no\"\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.column > 1);
    }
}
