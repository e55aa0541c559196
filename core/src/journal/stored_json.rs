//! The `records.json` column: each record's JSON line, LZ4-compressed.
//!
//! A record's JSON is mostly repeated FHIR system URLs and keys: a 5-OBX lab result's 7.0 KB
//! line compresses to 1.8 KB in ≈ 3.5 µs (expanding takes ≈ 1 µs). Compression runs on the
//! caller's task before the request reaches the writer thread, and every group commit then
//! writes and fsyncs fewer WAL frames, and the background checkpoint copies fewer pages (see
//! docs/benchmarks.md). Rows written under schema version 1 hold the text itself: both read
//! back.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

/// Largest JSON line a compressed value may expand to: well above any record the plugin
/// output check lets through, and a bound on what a corrupt length prefix can make us allocate.
const MAX_EXPANDED: usize = 1 << 30;

/// The stored form of a record's JSON line: its length (u32, little endian), then the LZ4
/// block.
pub(super) fn compress(json: &str) -> Vec<u8> {
    lz4_flex::compress_prepend_size(json.as_bytes())
}

/// A record's JSON line as read back from `records.json`.
pub(super) struct StoredJson(pub String);

impl FromSql for StoredJson {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map(|s| StoredJson(s.to_string()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            ValueRef::Blob(blob) => expand(blob).map(StoredJson).map_err(FromSqlError::Other),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

fn expand(blob: &[u8]) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let (len, block) = blob
        .split_first_chunk::<4>()
        .ok_or("compressed record shorter than its length prefix")?;
    let len = u32::from_le_bytes(*len) as usize;
    // LZ4 cannot expand a block more than 255 times.
    if len > MAX_EXPANDED || len > block.len().saturating_mul(255) {
        return Err(format!(
            "compressed record of {} bytes claims to expand to {len} bytes",
            blob.len()
        )
        .into());
    }
    let bytes = lz4_flex::decompress(block, len)?;
    Ok(String::from_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(value: ValueRef<'_>) -> Result<String, String> {
        StoredJson::column_result(value)
            .map(|s| s.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn compressed_lines_read_back_and_are_smaller() {
        let line = r#"{"envelope":{"id":"x"},"bundle":{"resourceType":"Bundle","entry":["#
            .to_string()
            + &r#"{"system":"http://loinc.org","code":"718-7"},"#.repeat(40)
            + "]}}";
        let stored = compress(&line);
        assert!(stored.len() * 4 < line.len(), "{} bytes", stored.len());
        assert_eq!(read(ValueRef::Blob(&stored)).unwrap(), line);
    }

    #[test]
    fn text_rows_of_schema_version_1_read_as_they_are() {
        assert_eq!(read(ValueRef::Text(b"{\"a\":1}")).unwrap(), "{\"a\":1}");
    }

    #[test]
    fn corrupt_values_are_errors_not_panics_or_huge_allocations() {
        let mut stored = compress("{\"a\":\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"}");
        assert!(
            read(ValueRef::Blob(&stored[..3]))
                .unwrap_err()
                .contains("prefix")
        );
        stored[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            read(ValueRef::Blob(&stored))
                .unwrap_err()
                .contains("expand to")
        );
        let last = stored.len() - 1;
        stored[..4].copy_from_slice(&40u32.to_le_bytes());
        stored[last] ^= 0xff;
        assert!(read(ValueRef::Blob(&stored)).is_err());
        assert!(read(ValueRef::Integer(1)).is_err());
    }
}
