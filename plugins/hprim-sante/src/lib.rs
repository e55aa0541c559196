//! # hprim-sante: HPRIM Santé 2.0–2.2 lab result files (ORU) → Passerelle records
//!
//! One record (kind `lab-result`) per request (OBR), like `hl7v2-lab`; a file may hold several
//! patients (P) each with several requests. Each record's Bundle (`collection`, deterministic
//! `urn:uuid:` fullUrls seeded by the file's id) holds the Patient (P), a Specimen (OBR-15),
//! one Observation per result (OBX), one comment Observation per comment on the patient, and
//! the DiagnosticReport (OBR). The full mapping, the settings and what is left out are in
//! `docs/adapters/hprim-sante.md`.
//!
//! Reading: charset (source `charset`, else the `charset` setting, else ISO-8859-1; a UTF-8
//! BOM means UTF-8), CR / LF / CRLF lines, `A` continuation records joined to the record before
//! them, delimiters read from the H record (5 distinct characters), `C` comments attached to
//! the P, OBR or OBX before them, unknown record types skipped with a warning, a file without
//! its L record refused as truncated (unless `accept_truncated`). Every problem with the input
//! is a `malformed` error naming the line and record (`line 12 (OBX-3)`); nothing panics.

mod map;
mod parse;
mod tz;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use passerelle_plugin_sdk::fhir::{Coding, Reference, systems};
use passerelle_plugin_sdk::hl7::charset::{self, Charset};
use passerelle_plugin_sdk::log;
use passerelle_plugin_sdk::prelude::*;
use serde::Deserialize;

use crate::map::{Ctx, Header, urn};
use crate::tz::Tz;

/// The plugin's settings (all optional).
#[derive(Deserialize, Default, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Charset of the files when the source does not set one: `ISO-8859-1` (default),
    /// `UTF-8`, `ISO-8859-15`, `ASCII`, or `auto` (UTF-8 when valid, else ISO-8859-1).
    pub charset: Option<String>,
    /// Offset of HPRIM times (which carry none): `Europe/Paris` (default, French legal time
    /// with summer time) or a fixed offset such as `+01:00`, `-04:00`, `Z`.
    pub default_timezone: Option<String>,
    /// Local analysis code (OBX-3.1, OBR-4.1) → LOINC: `"GLY" = "2345-7"` or
    /// `"GLY" = { code = "2345-7", display = "Glucose" }`.
    pub loinc: HashMap<String, LoincEntry>,
    /// System of the local analysis codes. Default `urn:passerelle:hprim:<H-5.1>:analysis`.
    pub local_code_system: Option<String>,
    /// System of P-2 (patient id given by the requester). Default
    /// `urn:passerelle:hprim:<H-10.1>:patient`.
    pub requester_id_system: Option<String>,
    /// System of P-3 (patient id given by the laboratory). Default
    /// `urn:passerelle:hprim:<H-5.1>:patient`.
    pub lab_id_system: Option<String>,
    /// System of P-4 (third patient id) when it names no OID. Default
    /// `urn:passerelle:hprim:<H-5.1>:patient-id-3`.
    pub third_id_system: Option<String>,
    /// Accept a file without its L (end) record, with a warning. Default false: such a file is
    /// refused as truncated.
    pub accept_truncated: bool,
}

/// A `loinc` table value.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum LoincEntry {
    /// Just the LOINC code.
    Code(String),
    /// The LOINC code and its display.
    Full {
        code: String,
        #[serde(default)]
        display: Option<String>,
    },
}

/// How bytes become text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharsetChoice {
    Fixed(Charset),
    /// UTF-8 when the bytes are valid UTF-8, else ISO-8859-1.
    Auto,
}

impl CharsetChoice {
    fn parse(label: &str) -> Option<CharsetChoice> {
        if label.trim().eq_ignore_ascii_case("auto") {
            return Some(CharsetChoice::Auto);
        }
        Charset::from_label(label).map(CharsetChoice::Fixed)
    }
}

/// The adapter.
pub struct HprimSante {
    charset: CharsetChoice,
    tz: Tz,
    loinc: HashMap<String, Coding>,
    local_code_system: Option<String>,
    requester_id_system: Option<String>,
    lab_id_system: Option<String>,
    third_id_system: Option<String>,
    accept_truncated: bool,
}

/// A system setting: trimmed, must be a URI-like string without whitespace.
fn system_setting(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(v) => {
            let t = v.trim();
            if t.is_empty() || t.contains(|c: char| c.is_whitespace() || c.is_control()) {
                Err(format!(
                    "settings.{name} {v:?} is not a URI (e.g. urn:oid:1.2.250.1.71.4.2.7)"
                ))
            } else if !t.contains(':') {
                Err(format!(
                    "settings.{name} {v:?} is not a URI: it needs a scheme (urn:oid:..., http://...)"
                ))
            } else {
                Ok(Some(t.to_string()))
            }
        }
    }
}

/// A LOINC code: digits, `-`, one check digit.
fn is_loinc_code(code: &str) -> bool {
    match code.split_once('-') {
        Some((num, check)) => {
            (1..=7).contains(&num.len())
                && num.bytes().all(|b| b.is_ascii_digit())
                && check.len() == 1
                && check.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

impl Adapter for HprimSante {
    type Settings = Settings;

    fn info() -> PluginInfo {
        plugin_info(
            "hprim-sante",
            env!("CARGO_PKG_VERSION"),
            &["application/x-hprim-sante", "text/x-hprim-sante"],
            &["ORU"],
        )
    }

    fn new(s: Settings) -> Result<Self, String> {
        let charset = match s.charset.as_deref() {
            None => CharsetChoice::Fixed(Charset::Latin1),
            Some(label) => CharsetChoice::parse(label).ok_or_else(|| {
                format!(
                    "settings.charset {label:?} is not one of ISO-8859-1, UTF-8, ISO-8859-15, ASCII, auto"
                )
            })?,
        };
        let tz_text = s.default_timezone.as_deref().unwrap_or("Europe/Paris");
        let tz = Tz::parse(tz_text).ok_or_else(|| {
            format!(
                "settings.default_timezone {tz_text:?} is not Europe/Paris or an offset like +01:00, -04:00, Z"
            )
        })?;
        let mut loinc = HashMap::with_capacity(s.loinc.len());
        for (local, entry) in s.loinc {
            let (code, display) = match entry {
                LoincEntry::Code(code) => (code, None),
                LoincEntry::Full { code, display } => (code, display),
            };
            let code = code.trim();
            if !is_loinc_code(code) {
                return Err(format!(
                    "settings.loinc[{local:?}]: {code:?} is not a LOINC code (like 2345-7)"
                ));
            }
            let local = local.trim();
            if local.is_empty() {
                return Err("settings.loinc: empty local code".into());
            }
            let mut coding = Coding::new(systems::LOINC, code);
            coding.display = display.filter(|d| !d.trim().is_empty());
            loinc.insert(local.to_string(), coding);
        }
        Ok(HprimSante {
            charset,
            tz,
            loinc,
            local_code_system: system_setting("local_code_system", s.local_code_system)?,
            requester_id_system: system_setting("requester_id_system", s.requester_id_system)?,
            lab_id_system: system_setting("lab_id_system", s.lab_id_system)?,
            third_id_system: system_setting("third_id_system", s.third_id_system)?,
            accept_truncated: s.accept_truncated,
        })
    }

    fn adapt(&self, message: &InboundMessage) -> Result<Adapted, AdaptError> {
        let text = self.decode(message)?;
        let file = parse::parse(&text, self.accept_truncated)?;
        let d = &file.delims;
        let header = Header::read(&file.header, d);
        let message_type = header.message_type.to_ascii_uppercase();
        match message_type.as_str() {
            "ORU" => {}
            "" => log::warn("H-7 (message type) is empty: read as ORU"),
            other => {
                return Err(AdaptError::Unsupported(format!(
                    "HPRIM message type {:?} (H-7): only ORU (results) is handled",
                    other.chars().take(8).collect::<String>()
                )));
            }
        }
        if !matches!(header.version.as_str(), "H2.0" | "H2.1" | "H2.2") {
            log::warn(&format!(
                "HPRIM version {:?} (H-13): read as 2.2",
                header.version.chars().take(8).collect::<String>()
            ));
        }
        let source_message_id = header.message_id();
        let seed = source_message_id
            .clone()
            .unwrap_or_else(|| fnv1a_hex(&message.payload));
        let (lab, requester) = (header.lab(), header.requester());
        let lab_name = [&header.sender_name, &header.sender_code]
            .into_iter()
            .find(|s| !s.is_empty());
        let ctx = Ctx {
            d,
            tz: &self.tz,
            loinc: &self.loinc,
            code_system: self
                .local_code_system
                .clone()
                .unwrap_or_else(|| urn(lab, "analysis")),
            requester_ids: self
                .requester_id_system
                .clone()
                .unwrap_or_else(|| urn(requester, "patient")),
            lab_ids: self
                .lab_id_system
                .clone()
                .unwrap_or_else(|| urn(lab, "patient")),
            third_ids: self
                .third_id_system
                .clone()
                .unwrap_or_else(|| urn(lab, "patient-id-3")),
            requester_requests: urn(requester, "request"),
            lab_requests: urn(lab, "request"),
            lab: lab_name.map(|name| Reference {
                type_: Some("Organization".into()),
                display: Some(name.clone()),
                ..Default::default()
            }),
            file_time: self.tz.instant(&header.time),
            seed: &seed,
        };
        let mut records = Vec::new();
        for p in &file.patients {
            if p.orders.is_empty() {
                log::warn(&format!(
                    "line {}: patient (P) without request (OBR): nothing to carry",
                    p.rec.line
                ));
                continue;
            }
            let patient = map::patient(&ctx, &p.rec)?;
            for o in &p.orders {
                records.push(map::record(&ctx, p, &patient, o)?);
            }
        }
        Ok(Adapted {
            source_message_id,
            message_type: Some(if message_type.is_empty() {
                "ORU".to_string()
            } else {
                message_type
            }),
            records,
        })
    }
}

export_adapter!(HprimSante);

impl HprimSante {
    /// The file's text: a UTF-8 BOM means UTF-8; else the source's charset when it sets a known
    /// one, else the `charset` setting. Invalid UTF-8 when UTF-8 is required is an error naming
    /// the line.
    fn decode(&self, message: &InboundMessage) -> Result<String, AdaptError> {
        let bytes = message.payload.as_slice();
        if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
            return strict_utf8(rest);
        }
        let choice = match message.charset.as_deref().map(str::trim) {
            Some(label) if !label.is_empty() => CharsetChoice::parse(label).unwrap_or_else(|| {
                log::warn(&format!(
                    "source charset {label:?} is not supported: using the plugin's charset"
                ));
                self.charset
            }),
            _ => self.charset,
        };
        match choice {
            CharsetChoice::Auto => Ok(charset::decode_auto(bytes).0),
            CharsetChoice::Fixed(Charset::Utf8) => strict_utf8(bytes),
            CharsetChoice::Fixed(cs) => {
                if !bytes.is_ascii() && std::str::from_utf8(bytes).is_ok() {
                    log::warn(&format!(
                        "the file is valid UTF-8 but read as {cs}: set charset = \"UTF-8\" if accents look wrong"
                    ));
                }
                Ok(charset::decode(bytes, cs))
            }
        }
    }
}

/// Decodes UTF-8, failing with the line and record of the first invalid byte.
fn strict_utf8(bytes: &[u8]) -> Result<String, AdaptError> {
    charset::try_decode(bytes, Charset::Utf8).map_err(|e| {
        let (line, name) = line_at(bytes, e.offset);
        malformed(
            parse::at(line, &name),
            format!(
                "invalid UTF-8 at byte {} (charset UTF-8; HPRIM files are usually ISO-8859-1)",
                e.offset
            ),
        )
    })
}

/// Line number (CR, LF, CRLF) and record type of the line holding byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> (usize, String) {
    let before = &bytes[..offset.min(bytes.len())];
    let mut line = 1;
    let mut start = 0;
    for (i, &b) in before.iter().enumerate() {
        let ends = b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n'));
        if ends {
            line += 1;
        }
        if b == b'\n' || b == b'\r' {
            start = i + 1;
        }
    }
    let head = &bytes[start.min(bytes.len())..(start + 16).min(bytes.len())];
    let name = parse::leading_name(&String::from_utf8_lossy(head));
    (line, name)
}

/// 64-bit FNV-1a, hex: the seed of files whose H record gives no id.
fn fnv1a_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a:{h:016x}")
}
