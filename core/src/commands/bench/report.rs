//! The report of a load run, as text or JSON.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

use super::BenchArgs;
use super::load::{Check, Memory};
use super::stats::Stats;

/// What a load run measured.
pub(super) struct Report {
    pub(super) stats: Stats,
    pub(super) elapsed: Duration,
    pub(super) memory: Option<Memory>,
    pub(super) check: Option<Check>,
}

fn percentiles(h: &Histogram<u64>) -> [(&'static str, u64); 7] {
    [
        ("min", h.min()),
        ("p50", h.value_at_quantile(0.50)),
        ("p90", h.value_at_quantile(0.90)),
        ("p99", h.value_at_quantile(0.99)),
        ("p99.9", h.value_at_quantile(0.999)),
        ("max", h.max()),
        ("mean", h.mean() as u64),
    ]
}

impl Report {
    fn throughput(&self) -> f64 {
        let done = (self.stats.aa + self.stats.ae + self.stats.ar) as f64;
        done / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(super) fn print(&self, args: &BenchArgs) {
        let st = &self.stats;
        let mode = match args.rate {
            Some(r) => format!("open loop at {r} msg/s (latency from the scheduled send time)"),
            None => "closed loop (one outstanding message per connection)".to_string(),
        };
        println!(
            "target {}  connections {}  OBX/message {}  {mode}",
            args.target, args.connections, args.obx
        );
        println!(
            "messages {}  sent {}  AA {}  AE {}  AR {}  errors {}  not sent {}",
            args.messages, st.sent, st.aa, st.ae, st.ar, st.errors, st.not_sent
        );
        println!(
            "elapsed {:.3} s  throughput {:.0} msg/s",
            self.elapsed.as_secs_f64(),
            self.throughput()
        );
        let line = |name: &str, h: &Histogram<u64>| {
            let cells: Vec<String> = percentiles(h)
                .iter()
                .map(|(k, v)| format!("{k} {}", fmt_us(*v)))
                .collect();
            println!("{name:<8} {}", cells.join("  "));
        };
        if !st.latency.is_empty() {
            line("latency", &st.latency);
            if args.rate.is_some() {
                line("service", &st.service);
            }
        }
        if let Some(m) = self.memory {
            println!(
                "daemon RSS: max sampled {:.1} MiB, peak (VmHWM) {:.1} MiB",
                m.max_rss_kib as f64 / 1024.0,
                m.hwm_kib as f64 / 1024.0
            );
        }
        if let Some(c) = &self.check {
            let after = c.complete_after.map_or_else(
                || "not complete".to_string(),
                |d| format!("complete {:.3} s after the last ACK", d.as_secs_f64()),
            );
            println!(
                "check-dir: expected {}  found {}  missing {}  extra {}  delivered without ACK {}  ({after})",
                c.expected, c.found, c.missing, c.extra, c.unacked_delivered
            );
        }
        if let Some(e) = &st.first_error {
            println!("first error: {e}");
        }
    }

    pub(super) fn to_json(&self, args: &BenchArgs) -> serde_json::Value {
        let st = &self.stats;
        let hist = |h: &Histogram<u64>| {
            if h.is_empty() {
                return serde_json::Value::Null;
            }
            let mut o = serde_json::Map::new();
            for (k, v) in percentiles(h) {
                o.insert(format!("{k}_us"), json!(v));
            }
            serde_json::Value::Object(o)
        };
        json!({
            "target": args.target,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "rate": args.rate,
            "connections": args.connections,
            "obx": args.obx,
            "messages": args.messages,
            "sent": st.sent,
            "aa": st.aa,
            "ae": st.ae,
            "ar": st.ar,
            "errors": st.errors,
            "not_sent": st.not_sent,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "throughput_msg_s": self.throughput(),
            "latency": hist(&st.latency),
            "service": hist(&st.service),
            "daemon_memory": self.memory.map(|m| json!({ "max_rss_kib": m.max_rss_kib, "hwm_kib": m.hwm_kib })),
            "check": self.check.as_ref().map(|c| json!({
                "expected": c.expected,
                "found": c.found,
                "missing": c.missing,
                "extra": c.extra,
                "unacked_delivered": c.unacked_delivered,
                "complete_after_s": c.complete_after.map(|d| d.as_secs_f64()),
            })),
            "first_error": st.first_error,
        })
    }
}

fn fmt_us(us: u64) -> String {
    if us >= 10_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        format!("{us}µs")
    }
}
