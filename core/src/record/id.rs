//! Deterministic identifiers: a replay of the same message yields the same record ids, so
//! destinations can be idempotent.

use sha2::{Digest, Sha256};

/// The record id: the first 128 bits of SHA-256(source, source message id, position), in hex.
pub fn record_id(source: &str, source_message_id: &str, position: u32) -> String {
    let mut h = Sha256::new();
    // Length-prefix each part so that ("ab","c") and ("a","bc") differ.
    for part in [source.as_bytes(), source_message_id.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(position.to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The source message id to use: the plugin's when it gave one, else `sha256:` of the payload.
pub fn source_message_id_for(from_plugin: Option<&str>, payload: &[u8]) -> String {
    match from_plugin.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => id.to_string(),
        None => format!("sha256:{}", hex::encode(Sha256::digest(payload))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = record_id("lab", "MSG1", 0);
        assert_eq!(a, record_id("lab", "MSG1", 0));
        assert_eq!(a.len(), 32);
        assert_ne!(a, record_id("lab", "MSG1", 1));
        assert_ne!(a, record_id("lab2", "MSG1", 0));
        assert_ne!(record_id("ab", "c", 0), record_id("a", "bc", 0));
    }

    #[test]
    fn missing_message_id_falls_back_to_payload_hash() {
        assert_eq!(source_message_id_for(Some(" X1 "), b"p"), "X1");
        let h = source_message_id_for(None, b"p");
        assert!(h.starts_with("sha256:"));
        assert_eq!(h, source_message_id_for(Some(""), b"p"));
    }
}
