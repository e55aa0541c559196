//! The JSON shapes of the admin API, and the parsing of message search filters. Shared with
//! `passerelle messages` (which prints the same JSON when it reads a stopped daemon's journal).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::journal::{
    AttemptView, DeadLetter, MAX_SEARCH_LIMIT, MessageFilter, MessageId, MessageStatus,
    MessageSummary, MessageView,
};

/// The filter keys of `GET /messages` and `POST /messages/replay`.
pub const FILTER_KEYS: &[&str] = &[
    "since",
    "until",
    "source",
    "status",
    "ins",
    "message_id",
    "kind",
    "limit",
    "after",
];

/// Builds a [`MessageFilter`] from `key=value` pairs (query string or JSON body). Unknown keys
/// and bad values are errors (a typo must not widen a search, let alone a bulk replay).
pub fn parse_filter<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    now_ms: i64,
) -> Result<MessageFilter, String> {
    let mut f = MessageFilter::default();
    for (key, value) in pairs {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let text = || Some(value.to_string());
        match key {
            "since" => f.since_ms = Some(parse_time(value, now_ms).map_err(|e| format!("since: {e}"))?),
            "until" => f.until_ms = Some(parse_time(value, now_ms).map_err(|e| format!("until: {e}"))?),
            "source" => f.source = text(),
            "status" => {
                f.status = Some(MessageStatus::parse(value).ok_or_else(|| {
                    format!(
                        "status: {value:?} is not one of routed, held, failed, delivered, dead, discarded"
                    )
                })?)
            }
            "ins" => f.ins = text(),
            "message_id" => f.source_message_id = text(),
            "kind" => f.kind = text(),
            "limit" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("limit: {value:?} is not a number"))?;
                if n == 0 || n > MAX_SEARCH_LIMIT {
                    return Err(format!("limit: between 1 and {MAX_SEARCH_LIMIT}"));
                }
                f.limit = n;
            }
            "after" => {
                f.after = Some(MessageId(
                    value
                        .parse()
                        .map_err(|_| format!("after: {value:?} is not a message id"))?,
                ))
            }
            other => {
                return Err(format!(
                    "unknown filter {other:?} (known: {})",
                    FILTER_KEYS.join(", ")
                ));
            }
        }
    }
    Ok(f)
}

/// Whether a filter selects anything narrower than "every message".
pub fn is_narrowed(f: &MessageFilter) -> bool {
    f.since_ms.is_some()
        || f.until_ms.is_some()
        || f.source.is_some()
        || f.status.is_some()
        || f.ins.is_some()
        || f.source_message_id.is_some()
        || f.kind.is_some()
}

/// A JSON object's members as filter pairs (strings and numbers).
pub fn json_pairs(body: &Value) -> Result<Vec<(String, String)>, String> {
    let Some(object) = body.as_object() else {
        return Err("the body must be a JSON object of filters".into());
    };
    object
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(n) => Ok((k.clone(), n.to_string())),
            Value::Null => Ok((k.clone(), String::new())),
            _ => Err(format!("{k}: expected a string or a number")),
        })
        .collect()
}

/// A point in time: ms since the epoch, an RFC 3339 date-time (`2025-01-31T10:00:00Z`,
/// `2025-01-31T10:00:00+01:00`, or a date `2025-01-31` = midnight UTC), or a duration meaning
/// "that long ago" (`90m`, `2h`, `7d`).
pub fn parse_time(value: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(value) {
        return Ok(now_ms.saturating_sub(d.as_millis().min(i64::MAX as u128) as i64));
    }
    let (base, offset_s) = split_offset(value);
    let base = if base.len() == 10 {
        format!("{base}T00:00:00Z")
    } else {
        base.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&base).map_err(|e| {
        format!("{value:?} is not ms since the epoch, an RFC 3339 time or a duration ago ({e})")
    })?;
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Ok(ms - offset_s * 1000)
}

/// `…+01:00` → (`…`, 3600); `…Z` and no offset → (text, 0).
fn split_offset(value: &str) -> (&str, i64) {
    let bytes = value.as_bytes();
    if bytes.len() > 6 {
        let at = bytes.len() - 6;
        let tail = &value[at..];
        let sign = match bytes[at] {
            b'+' => 1,
            b'-' => -1,
            _ => return (value, 0),
        };
        if let (Ok(h), Ok(m)) = (tail[1..3].parse::<i64>(), tail[4..6].parse::<i64>())
            && &tail[3..4] == ":"
        {
            return (&value[..at], sign * (h * 3600 + m * 60));
        }
    }
    (value, 0)
}

/// RFC 3339 (UTC, milliseconds) of ms since the epoch.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// One search result.
pub fn summary_json(m: &MessageSummary) -> Value {
    json!({
        "id": m.id.0,
        "source": m.source,
        "content_type": m.content_type,
        "received_at": m.received_at,
        "stored_at": rfc3339_ms(m.stored_at_ms),
        "peer": m.peer,
        "status": m.status.as_str(),
        "error": m.error,
        "plugin": m.plugin,
        "source_message_id": m.source_message_id,
        "message_type": m.message_type,
        "rules_version": m.rules_version,
        "records": m.records,
        "bytes": m.payload_bytes,
    })
}

/// A search page: `{"messages": [...], "next": <id to pass as after> | null}`.
pub fn page_json(found: &[MessageSummary], limit: usize) -> Value {
    let full = !found.is_empty() && found.len() >= limit;
    json!({
        "messages": found.iter().map(summary_json).collect::<Vec<_>>(),
        "next": if full { found.last().map(|m| json!(m.id.0)) } else { None }.unwrap_or(Value::Null),
    })
}

/// The content of a message: UTF-8 text as is, anything else in base64.
pub fn content_json(payload: &[u8]) -> Value {
    match std::str::from_utf8(payload) {
        Ok(text) => json!({ "encoding": "utf-8", "bytes": payload.len(), "data": text }),
        Err(_) => json!({
            "encoding": "base64",
            "bytes": payload.len(),
            "data": base64::engine::general_purpose::STANDARD.encode(payload),
        }),
    }
}

/// One message in full: content, outcome, records (envelope + bundle) and, per destination,
/// the delivery state with every attempt. `attempts` maps outbox ids to their attempts.
pub fn message_json(m: &MessageView, attempts: &HashMap<i64, Vec<AttemptView>>) -> Value {
    let records: Vec<Value> = m
        .records
        .iter()
        .map(|r| {
            let bundle: Value = serde_json::from_str(r.record.bundle.get()).unwrap_or(Value::Null);
            let deliveries: Vec<Value> = r
                .outbox
                .iter()
                .map(|o| {
                    let history: Vec<Value> = attempts
                        .get(&o.outbox_id)
                        .map(|list| {
                            list.iter()
                                .map(|a| {
                                    json!({
                                        "at": rfc3339_ms(a.at_ms),
                                        "outcome": a.outcome,
                                        "error": a.error,
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    json!({
                        "outbox_id": o.outbox_id,
                        "destination": o.destination,
                        "state": o.state.as_str(),
                        "attempts": o.attempts,
                        "next_attempt_at": (o.next_attempt_at_ms > 0).then(|| rfc3339_ms(o.next_attempt_at_ms)),
                        "finished_at": o.finished_at_ms.map(rfc3339_ms),
                        "last_error": o.last_error,
                        "history": history,
                    })
                })
                .collect();
            json!({
                "position": r.position,
                "record_id": r.record_id,
                "route": r.route,
                "held": r.held,
                "duplicate": r.duplicate,
                "envelope": r.record.envelope,
                "bundle": bundle,
                "deliveries": deliveries,
            })
        })
        .collect();
    json!({
        "id": m.id.0,
        "source": m.source,
        "content_type": m.content_type,
        "received_at": m.received_at,
        "stored_at": rfc3339_ms(m.stored_at_ms),
        "peer": m.peer,
        "status": m.status.as_str(),
        "error": m.error,
        "plugin": m.plugin,
        "plugin_version": m.plugin_version,
        "source_message_id": m.source_message_id,
        "message_type": m.message_type,
        "rules_version": m.rules_version,
        "content": content_json(&m.payload),
        "records": records,
    })
}

pub fn dead_letter_json(d: &DeadLetter) -> Value {
    json!({
        "outbox_id": d.outbox_id,
        "destination": d.destination,
        "record_id": d.record_id,
        "message_id": d.message_id.0,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "dead_at": d.dead_at_ms.map(rfc3339_ms),
    })
}

/// The outbox ids of a message's deliveries (to fetch their attempts).
pub fn outbox_ids(m: &MessageView) -> Vec<i64> {
    m.records
        .iter()
        .flat_map(|r| r.outbox.iter().map(|o| o.outbox_id))
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set) of a URL part.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%20y` → pairs, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// Encodes a query value (for the CLI).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn times_are_ms_rfc3339_dates_or_durations_ago() {
        assert_eq!(parse_time("1700000000000", NOW), Ok(NOW));
        assert_eq!(parse_time("2h", NOW), Ok(NOW - 7_200_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T22:13:20.000Z", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14T21:13:20-01:00", NOW), Ok(NOW));
        assert_eq!(parse_time("2023-11-14", NOW), Ok(NOW - 80_000_000));
        assert!(parse_time("yesterday", NOW).is_err());
    }

    #[test]
    fn filters_parse_and_reject_unknown_keys() {
        let f = parse_filter(
            [
                ("since", "1h"),
                ("status", "dead"),
                ("ins", "1234567890123"),
                ("message_id", "MSG1"),
                ("kind", "lab-result"),
                ("source", "lab"),
                ("limit", "10"),
                ("after", "99"),
                ("until", ""),
            ],
            NOW,
        )
        .unwrap();
        assert_eq!(f.since_ms, Some(NOW - 3_600_000));
        assert_eq!(f.until_ms, None);
        assert_eq!(f.status, Some(MessageStatus::Dead));
        assert_eq!(f.ins.as_deref(), Some("1234567890123"));
        assert_eq!(f.source_message_id.as_deref(), Some("MSG1"));
        assert_eq!((f.limit, f.after), (10, Some(MessageId(99))));
        assert!(is_narrowed(&f));
        assert!(!is_narrowed(&parse_filter([("limit", "5")], NOW).unwrap()));
        assert!(
            parse_filter([("satus", "dead")], NOW)
                .unwrap_err()
                .contains("unknown filter")
        );
        assert!(parse_filter([("status", "lost")], NOW).is_err());
        assert!(parse_filter([("limit", "0")], NOW).is_err());
        assert!(parse_filter([("after", "x")], NOW).is_err());
    }

    #[test]
    fn queries_are_percent_decoded() {
        assert_eq!(
            query_pairs("since=2023-11-14T23%3A13%3A20%2B01%3A00&source=a+b&x"),
            [
                ("since".to_string(), "2023-11-14T23:13:20+01:00".to_string()),
                ("source".to_string(), "a b".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode(&percent_encode("a+b/c é"), true), "a+b/c é");
    }

    #[test]
    fn content_is_text_or_base64() {
        assert_eq!(content_json(b"MSH|x")["encoding"], "utf-8");
        let bin = content_json(&[0xff, 0x00, 0x41]);
        assert_eq!(
            (bin["encoding"].as_str(), bin["data"].as_str()),
            (Some("base64"), Some("/wBB"))
        );
    }
}
