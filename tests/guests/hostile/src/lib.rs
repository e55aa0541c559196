//! A hostile adapter for the sandbox tests. Each `mode` tries one thing a plugin must not be
//! able to do to the host; `good` behaves, so tests can check the host still works afterwards.

use passerelle_plugin_sdk::prelude::*;
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Settings {
    /// loop | memory | recursion | panic | file | socket | big-output | many-records |
    /// bad-bundle | no-patient | bad-ins | good | fail-on-bad | panic-on-marker
    pub mode: String,
}

pub struct Hostile {
    mode: String,
}

impl Adapter for Hostile {
    type Settings = Settings;

    fn info() -> PluginInfo {
        plugin_info("hostile", "0.1.0", &["text/plain"], &[])
    }

    fn new(settings: Settings) -> Result<Self, String> {
        Ok(Hostile {
            mode: settings.mode,
        })
    }

    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        // The message id: MSH-10 for an HL7 message, else the whole (short) payload.
        let text = String::from_utf8_lossy(&message.payload);
        let id = if text.starts_with("MSH") {
            text.lines()
                .next()
                .and_then(|l| l.split('|').nth(9))
                .unwrap_or("")
                .to_string()
        } else {
            text.trim().chars().take(64).collect()
        };
        let good = |n: usize| Adapted {
            source_message_id: Some(id.clone()),
            message_type: None,
            records: (0..n).map(|_| record(BUNDLE.to_string())).collect(),
        };
        match self.mode.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => {
                let depth = std::hint::black_box(u64::MAX);
                Err(AdaptError::Internal(format!("{}", recurse(depth))))
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            // Panics on messages containing `PANIC`, behaves like `good` otherwise (circuit
            // breaker tests: a few bad messages trip it, the held good ones adapt on resume).
            "panic-on-marker" if text.contains("PANIC") => {
                panic!("hostile plugin panics on a marked message")
            }
            "file" => match std::fs::read("/etc/passwd") {
                Ok(bytes) => Ok(Adapted {
                    source_message_id: Some(format!("read {} bytes of /etc/passwd", bytes.len())),
                    message_type: None,
                    records: vec![],
                }),
                Err(e) => Err(AdaptError::Internal(format!("file read denied: {e}"))),
            },
            "socket" => match std::net::TcpStream::connect("127.0.0.1:22") {
                Ok(_) => Ok(Adapted {
                    source_message_id: Some("connected".into()),
                    message_type: None,
                    records: vec![],
                }),
                Err(e) => Err(AdaptError::Internal(format!("socket denied: {e}"))),
            },
            "big-output" => {
                // 100 MB of output in one record.
                let pad = "x".repeat(100 * 1024 * 1024);
                let bundle =
                    format!(r#"{{"resourceType":"Bundle","type":"collection","id":"{pad}"}}"#);
                Ok(Adapted {
                    source_message_id: None,
                    message_type: None,
                    records: vec![record(bundle)],
                })
            }
            "many-records" => Ok(good(100_000)),
            "bad-bundle" => Ok(Adapted {
                source_message_id: None,
                message_type: None,
                records: vec![record("{\"resourceType\":\"Bundle\",".into())],
            }),
            "no-patient" => {
                let r = RecordBuilder::new(RecordKind::LabResult).build(BUNDLE.to_string());
                Ok(Adapted {
                    source_message_id: None,
                    message_type: None,
                    records: vec![r],
                })
            }
            "bad-ins" => {
                let r = RecordBuilder::new(RecordKind::LabResult)
                    .ins(InsKind::Nir, "123456789012345")
                    .build(BUNDLE.to_string());
                Ok(Adapted {
                    source_message_id: None,
                    message_type: None,
                    records: vec![r],
                })
            }
            "clock" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(u64::MAX);
                Ok(Adapted {
                    source_message_id: Some(format!("clock={now}")),
                    message_type: None,
                    records: vec![],
                })
            }
            _ => {
                if message.payload.starts_with(b"bad") || text.contains("REJECT") {
                    return Err(malformed("line 1", "payload starts with 'bad'"));
                }
                Ok(good(1))
            }
        }
    }
}

const BUNDLE: &str = r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:8a6a2b1e-0000-5000-8000-000000000001","resource":{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.250.1.71.4.2.7","value":"IPP1"}]}}]}"#;

fn record(bundle: String) -> Record {
    RecordBuilder::new(RecordKind::LabResult)
        .local_id("urn:oid:1.2.250.1.71.4.2.7", "IPP1")
        .build(bundle)
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let buf = std::hint::black_box([n; 64]);
    recurse(n - 1).wrapping_add(buf[3])
}

export_adapter!(Hostile);
