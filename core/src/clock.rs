//! Wall-clock helpers (the host's; plugins have none).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, RFC 3339 UTC with milliseconds: `2026-11-23T10:15:00.123Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
