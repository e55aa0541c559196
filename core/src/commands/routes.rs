//! `passerelle routes test`: which route and destinations each record of a JSON-lines file
//! would get under a routes file, without starting anything (like `vector test`).
//!
//! Input: one JSON object per line, either a record as `passerelle adapt` prints it
//! (`{"envelope": {...}, "bundle": {...}}`, the bundle is ignored) or a bare envelope. A bare,
//! hand-written envelope needs only `kind`, `source` and `status`; the fields routing never
//! reads (`id`, `source_message_id`, `position`, `received_at`, `plugin`) may be left out,
//! `patient` and `confidentiality` default to "no identity" and `N`. Unknown fields are
//! errors, and so are unknown statuses, levels, flags and INS namespaces (a typo would only
//! match nothing). An INS `system` may be a namespace's short name (`nir`, `nia`, `nir-test`,
//! `nir-demo`). Blank lines are skipped.
//!
//! A line may carry what it should get, checked when present:
//! `"expect": {"route": "name" | null, "destinations": ["a", "b"], "held": false}` (each key
//! optional; `destinations` is compared as a set). With `--expect`, every line must carry one.
//!
//! The destination names come from the configuration (`--config`), or from `--destinations`
//! when there is none. Exit status: 0 when every line parsed and every expectation held.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use passerelle::config::Config;
use passerelle::record::{Coding, Confidentiality, Envelope, Patient, PluginRef, ins_system};
use passerelle::route::{RouteDecision, RuleSet, Unmatched};
use serde::Deserialize;
use serde_json::Value;

#[derive(clap::Args)]
pub struct RoutesArgs {
    #[command(subcommand)]
    command: RoutesCommand,
}

#[derive(clap::Subcommand)]
enum RoutesCommand {
    /// Route the records of a JSON-lines file (as `passerelle adapt` prints them, or bare
    /// envelopes) and print which route and destinations each one gets.
    Test(TestArgs),
}

#[derive(clap::Args)]
struct TestArgs {
    /// JSON-lines file of records or envelopes (`-`: standard input).
    file: PathBuf,
    /// Routes file [default: the one the configuration names].
    #[arg(long)]
    routes: Option<PathBuf>,
    /// Configuration file, for the destination names and the routes file.
    #[arg(long, short, conflicts_with = "destinations")]
    config: Option<PathBuf>,
    /// Destination names, comma-separated, instead of reading a configuration (then
    /// `--routes` defaults to config/routes.toml).
    #[arg(long, value_delimiter = ',')]
    destinations: Option<Vec<String>>,
    /// Require an `"expect"` object on every line.
    #[arg(long)]
    expect: bool,
    /// Print one JSON object per record instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RoutesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RoutesCommand::Test(a) => test(a),
    }
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let (routes_path, destinations) = match &args.destinations {
        Some(names) => {
            let names: HashSet<String> = names
                .iter()
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            let routes = args
                .routes
                .clone()
                .unwrap_or_else(|| PathBuf::from("config/routes.toml"));
            (routes, names)
        }
        None => {
            let file = args
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(passerelle::config::DEFAULT_CONFIG));
            let config = Config::load(&file, None).with_context(|| {
                format!(
                    "reading the destination names from {} (or pass --destinations a,b)",
                    file.display()
                )
            })?;
            let routes = args.routes.clone().unwrap_or_else(|| config.routes.clone());
            (routes, config.destinations.keys().cloned().collect())
        }
    };
    let rules = RuleSet::load(&routes_path, &destinations).map_err(|e| anyhow::anyhow!("{e}"))?;

    let label = args.file.display().to_string();
    let input: Box<dyn BufRead> = if args.file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.file).with_context(|| format!("reading {label}"))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut out = std::io::stdout().lock();
    let opts = Options {
        require_expect: args.expect,
        json: args.json,
    };
    let summary = test_lines(&rules, input, &label, opts, &mut out)?;
    out.flush().ok();
    drop(out);
    eprintln!("{}", summary.line(&rules));
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct Options {
    require_expect: bool,
    json: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    records: usize,
    routed: usize,
    /// Sent to the `unmatched` destination.
    unmatched: usize,
    held: usize,
    /// Lines that are not records.
    errors: usize,
    /// Records whose `expect` did not hold (or was missing under `--expect`).
    failed: usize,
}

impl Summary {
    fn ok(&self) -> bool {
        self.errors == 0 && self.failed == 0
    }

    fn line(&self, rules: &RuleSet) -> String {
        format!(
            "{} (version {}, {} enabled route(s)): {} record(s): {} routed, {} to the unmatched destination, {} held; {} error(s), {} failed expectation(s)",
            rules.path().display(),
            rules.version(),
            rules.route_count(),
            self.records,
            self.routed,
            self.unmatched,
            self.held,
            self.errors,
            self.failed
        )
    }
}

/// Routes every line of `input`; prints one result per record on `out` and errors (with
/// `label:line`) on stderr.
fn test_lines(
    rules: &RuleSet,
    input: impl BufRead,
    label: &str,
    opts: Options,
    out: &mut impl Write,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    for (n, line) in input.lines().enumerate() {
        let n = n + 1;
        let line = line.with_context(|| format!("reading {label}:{n}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let (env, expect) = match parse_line(&line) {
            Ok(parsed) => parsed,
            Err(e) => {
                summary.errors += 1;
                eprintln!("{label}:{n}: {e}");
                continue;
            }
        };
        summary.records += 1;
        let decision = rules.route(&env);
        match (&decision.route, decision.held) {
            (Some(_), _) => summary.routed += 1,
            (None, true) => summary.held += 1,
            (None, false) => summary.unmatched += 1,
        }
        let mismatches = match &expect {
            Some(e) => e.mismatches(&decision),
            None if opts.require_expect => {
                vec!["no \"expect\" on this line (--expect)".to_string()]
            }
            None => vec![],
        };
        if !mismatches.is_empty() {
            summary.failed += 1;
        }
        if opts.json {
            let v = serde_json::json!({
                "line": n,
                "id": env.id,
                "route": decision.route,
                "destinations": decision.destinations,
                "held": decision.held,
                "ok": mismatches.is_empty(),
                "mismatches": mismatches,
            });
            writeln!(out, "{v}")?;
        } else {
            let status = match (&expect, mismatches.is_empty()) {
                (_, false) => "FAIL ",
                (Some(_), true) => "ok   ",
                (None, true) => "",
            };
            writeln!(
                out,
                "{status}{label}:{n} {}: {}",
                describe(&env),
                describe_decision(rules, &decision)
            )?;
            for m in &mismatches {
                writeln!(out, "      expected {m}")?;
            }
        }
    }
    Ok(summary)
}

/// `lab-result final from lab-mllp (id …)`.
fn describe(env: &Envelope) -> String {
    let mut s = format!("{} {} from {}", env.kind, env.status, env.source);
    if !env.id.is_empty() {
        s.push_str(&format!(" (id {})", env.id));
    }
    s
}

fn describe_decision(rules: &RuleSet, d: &RouteDecision) -> String {
    match (&d.route, d.held) {
        (Some(route), _) => format!("route {route} → {}", d.destinations.join(", ")),
        (None, true) => "no route matched → held".to_string(),
        (None, false) => {
            let dest = match rules.unmatched() {
                Unmatched::Destination(name) => name.as_str(),
                Unmatched::Hold => "",
            };
            format!("no route matched → {dest} (unmatched)")
        }
    }
}

/// What a line says it should get.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `Some(None)`: no route must match (`"route": null`).
    #[serde(default, deserialize_with = "some")]
    route: Option<Option<String>>,
    destinations: Option<Vec<String>>,
    held: Option<bool>,
}

/// Present-but-null is `Some(None)`, absent is `None`.
fn some<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Expect {
    fn mismatches(&self, d: &RouteDecision) -> Vec<String> {
        let mut out = Vec::new();
        let show = |r: &Option<String>| {
            r.as_deref()
                .map_or("none".to_string(), |r| format!("{r:?}"))
        };
        if let Some(route) = &self.route
            && *route != d.route
        {
            out.push(format!("route {}, got {}", show(route), show(&d.route)));
        }
        if let Some(dests) = &self.destinations {
            let want: HashSet<&str> = dests.iter().map(String::as_str).collect();
            let got: HashSet<&str> = d.destinations.iter().map(String::as_str).collect();
            if want != got {
                out.push(format!("destinations {dests:?}, got {:?}", d.destinations));
            }
        }
        if let Some(held) = self.held
            && held != d.held
        {
            out.push(format!("held = {held}, got {}", d.held));
        }
        out
    }
}

/// One line: a record (`envelope` + `bundle`) or a bare envelope, and its optional `expect`.
fn parse_line(line: &str) -> Result<(Envelope, Option<Expect>), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("expected a JSON object (a record or an envelope)".into());
    };
    let expect = match obj.remove("expect") {
        Some(v) => {
            Some(serde_json::from_value::<Expect>(v).map_err(|e| format!("\"expect\": {e}"))?)
        }
        None => None,
    };
    let env = match obj.remove("envelope") {
        Some(env) => env,
        None if obj.contains_key("bundle") => return Err("a record without \"envelope\"".into()),
        None => Value::Object(obj),
    };
    let loose: LooseEnvelope =
        serde_json::from_value(env).map_err(|e| format!("not an envelope: {e}"))?;
    Ok((loose.into_envelope()?, expect))
}

/// An envelope as a person may write it: only what routing reads is required.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LooseEnvelope {
    #[serde(default)]
    id: String,
    kind: String,
    source: String,
    #[serde(default)]
    source_message_id: String,
    #[serde(default)]
    position: u32,
    #[serde(default)]
    message_type: Option<String>,
    #[serde(default)]
    patient: Patient,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    received_at: String,
    status: String,
    #[serde(default = "normal")]
    confidentiality: Confidentiality,
    #[serde(default)]
    codes: Vec<Coding>,
    #[serde(default)]
    plugin: Option<LoosePlugin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoosePlugin {
    name: String,
    #[serde(default)]
    version: String,
}

fn normal() -> Confidentiality {
    Confidentiality {
        level: "N".into(),
        flags: vec![],
    }
}

const STATUSES: &[&str] = &[
    "preliminary",
    "final",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const LEVELS: &[&str] = &["N", "R", "V"];
const FLAGS: &[&str] = &[
    "MASQUE_PS",
    "INVISIBLE_PATIENT",
    "INVISIBLE_REPRESENTANTS_LEGAUX",
];
const INS_SYSTEMS: &[(&str, &str)] = &[
    ("nir", ins_system::NIR),
    ("nia", ins_system::NIA),
    ("nir-test", ins_system::NIR_TEST),
    ("nir-demo", ins_system::NIR_DEMO),
];

impl LooseEnvelope {
    fn into_envelope(self) -> Result<Envelope, String> {
        let one_of = |what: &str, v: &str, allowed: &[&str]| {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "unknown {what} {v:?} (expected one of {})",
                    allowed.join(", ")
                ))
            }
        };
        one_of("status", &self.status, STATUSES)?;
        one_of("confidentiality level", &self.confidentiality.level, LEVELS)?;
        for f in &self.confidentiality.flags {
            one_of("visibility flag", f, FLAGS)?;
        }
        let mut patient = self.patient;
        if let Some(ins) = &mut patient.ins {
            match INS_SYSTEMS
                .iter()
                .find(|(short, oid)| ins.system == *short || ins.system == *oid)
            {
                Some((_, oid)) => ins.system = oid.to_string(),
                None => {
                    let names: Vec<&str> = INS_SYSTEMS.iter().flat_map(|(s, o)| [*s, *o]).collect();
                    return Err(format!(
                        "unknown INS system {:?} (expected one of {})",
                        ins.system,
                        names.join(", ")
                    ));
                }
            }
        }
        let plugin = self
            .plugin
            .map(|p| PluginRef {
                name: p.name,
                version: p.version,
            })
            .unwrap_or(PluginRef {
                name: String::new(),
                version: String::new(),
            });
        Ok(Envelope {
            id: self.id,
            kind: self.kind,
            source: self.source,
            source_message_id: self.source_message_id,
            position: self.position,
            message_type: self.message_type,
            patient,
            event_time: self.event_time,
            received_at: self.received_at,
            status: self.status,
            confidentiality: self.confidentiality,
            codes: self.codes,
            plugin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = r#"
mode = "fan-out"
unmatched = "hold"

[[route]]
name = "lab-to-dmp"
destinations = ["dmp"]
match = { kind = "lab-result", status = ["final", "corrected"], ins_system = ["nir", "nir-test"] }

[[route]]
name = "glucose"
destinations = ["registry", "dmp"]
match = { code = "http://loinc.org|2345-7" }
"#;

    fn rules(src: &str) -> RuleSet {
        let dests: HashSet<String> = ["dmp", "registry", "spare"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        RuleSet::parse("routes.toml", src, &dests).unwrap()
    }

    fn run(src: &str, input: &str, opts: Options) -> (Summary, String) {
        let mut out = Vec::new();
        let summary =
            test_lines(&rules(src), input.as_bytes(), "in.jsonl", opts, &mut out).unwrap();
        (summary, String::from_utf8(out).unwrap())
    }

    /// A record as `passerelle adapt` prints it.
    fn record_line(status: &str, ins: &str) -> String {
        format!(
            r#"{{"envelope":{{"id":"r1","kind":"lab-result","source":"lab","source_message_id":"M1","position":0,"message_type":"ORU^R01","patient":{{"ins":{{"system":"{ins}","value":"279035121518989"}}}},"received_at":"2026-01-01T00:00:00Z","status":"{status}","confidentiality":{{"level":"N"}},"codes":[{{"system":"http://loinc.org","code":"2345-7"}}],"plugin":{{"name":"hl7v2-lab","version":"0.1.0"}}}},"bundle":{{"resourceType":"Bundle","type":"collection"}}}}"#
        )
    }

    #[test]
    fn full_records_are_routed() {
        let line = record_line("final", ins_system::NIR_TEST);
        let (summary, out) = run(ROUTES, &line, Options::default());
        assert_eq!(
            summary,
            Summary {
                records: 1,
                routed: 1,
                ..Summary::default()
            }
        );
        assert!(
            out.contains(
                "in.jsonl:1 lab-result final from lab (id r1): route lab-to-dmp → dmp, registry"
            ),
            "{out}"
        );
    }

    #[test]
    fn bare_envelopes_need_only_what_routing_reads() {
        let input = r#"{"kind":"lab-result","source":"lab","status":"final","patient":{"ins":{"system":"nir","value":"1"}}}

{"kind":"prescription","source":"pharma","status":"final"}
"#;
        let (summary, out) = run(ROUTES, input, Options::default());
        assert_eq!(
            summary,
            Summary {
                records: 2,
                routed: 1,
                held: 1,
                ..Summary::default()
            }
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "in.jsonl:1 lab-result final from lab: route lab-to-dmp → dmp"
        );
        assert_eq!(
            lines[1],
            "in.jsonl:3 prescription final from pharma: no route matched → held"
        );
    }

    #[test]
    fn unmatched_destination_is_shown() {
        let src = ROUTES.replace(r#"unmatched = "hold""#, r#"unmatched = "spare""#);
        let (summary, out) = run(
            &src,
            r#"{"kind":"allergy","source":"x","status":"final"}"#,
            Options::default(),
        );
        assert_eq!(summary.unmatched, 1);
        assert!(
            out.ends_with("no route matched → spare (unmatched)\n"),
            "{out}"
        );
    }

    #[test]
    fn bad_lines_are_errors_and_say_which_line() {
        let input = format!(
            "{}\nnot json\n{{\"kind\":\"lab-result\",\"source\":\"lab\",\"status\":\"finall\"}}\n[1]\n{{\"kind\":\"a\",\"source\":\"b\",\"status\":\"final\",\"typo\":1}}\n",
            record_line("final", ins_system::NIR)
        );
        let (summary, out) = run(ROUTES, &input, Options::default());
        assert_eq!(summary.records, 1);
        assert_eq!(summary.errors, 4);
        assert!(!summary.ok());
        assert_eq!(out.lines().count(), 1);
        assert!(parse_line("not json").unwrap_err().starts_with("not JSON"));
        assert!(
            parse_line(r#"{"kind":"a","source":"b","status":"finall"}"#)
                .unwrap_err()
                .contains("unknown status \"finall\"")
        );
        assert!(
            parse_line(r#"{"kind":"a","source":"b","status":"final","typo":1}"#)
                .unwrap_err()
                .contains("unknown field `typo`")
        );
        assert!(
            parse_line(r#"{"kind":"a","status":"final"}"#)
                .unwrap_err()
                .contains("missing field `source`")
        );
        assert!(
            parse_line(r#"{"bundle":{}}"#)
                .unwrap_err()
                .contains("without \"envelope\"")
        );
        let bad_ins = r#"{"kind":"a","source":"b","status":"final","patient":{"ins":{"system":"nope","value":"1"}}}"#;
        assert!(
            parse_line(bad_ins)
                .unwrap_err()
                .contains("unknown INS system")
        );
    }

    #[test]
    fn expectations_are_checked() {
        let ok = r#"{"kind":"lab-result","source":"lab","status":"final","codes":[{"system":"http://loinc.org","code":"2345-7"}],"expect":{"route":"glucose","destinations":["registry","dmp"],"held":false}}"#;
        let bad =
            r#"{"kind":"allergy","source":"lab","status":"final","expect":{"route":"lab-to-dmp"}}"#;
        let held = r#"{"kind":"allergy","source":"lab","status":"final","expect":{"route":null,"held":true}}"#;
        let input = format!("{ok}\n{bad}\n{held}\n");
        let (summary, out) = run(ROUTES, &input, Options::default());
        assert_eq!(summary.failed, 1, "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("ok   in.jsonl:1"), "{out}");
        assert!(lines[1].starts_with("FAIL in.jsonl:2"), "{out}");
        assert_eq!(lines[2].trim(), "expected route \"lab-to-dmp\", got none");
        assert!(lines[3].starts_with("ok   in.jsonl:3"), "{out}");
        assert!(
            parse_line(r#"{"kind":"a","source":"b","status":"final","expect":{"rout":"x"}}"#)
                .is_err()
        );
    }

    #[test]
    fn expect_mode_requires_an_expectation() {
        let (summary, _) = run(
            ROUTES,
            r#"{"kind":"a","source":"b","status":"final"}"#,
            Options {
                require_expect: true,
                json: false,
            },
        );
        assert_eq!(summary.failed, 1);
    }

    #[test]
    fn json_output() {
        let line = record_line("corrected", ins_system::NIR);
        let (_, out) = run(
            ROUTES,
            &line,
            Options {
                require_expect: false,
                json: true,
            },
        );
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["line"], 1);
        assert_eq!(v["id"], "r1");
        assert_eq!(v["route"], "lab-to-dmp");
        assert_eq!(v["destinations"], serde_json::json!(["dmp", "registry"]));
        assert_eq!(v["held"], false);
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn summary_line() {
        let (summary, _) = run(
            ROUTES,
            &record_line("final", ins_system::NIR),
            Options::default(),
        );
        let line = summary.line(&rules(ROUTES));
        assert!(
            line.contains("2 enabled route(s)): 1 record(s): 1 routed"),
            "{line}"
        );
    }
}
