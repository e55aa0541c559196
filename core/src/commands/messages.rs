//! `passerelle messages list|show|replay`: the message browser on the command line.
//!
//! Two ways to reach the messages:
//! - a running daemon's admin API: `--api http://127.0.0.1:8086` (or `PASSERELLE_ADMIN_URL`)
//!   with `--token` (or, better, `PASSERELLE_ADMIN_TOKEN`: a command-line token shows in `ps`);
//! - without `--api`: the journal file itself (from `--config`, `--data-dir`), opened
//!   read-only; meant for a stopped daemon (reading while it runs is safe too).
//!
//! `list` prints a table (`--json` for the API's JSON), `show` the message as JSON (the same
//! document as `GET /messages/{id}`). `replay` needs the running daemon: a replay must go
//! through the plugin, routes and delivery workers that are in force, so offline it is refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use passerelle::admin::views;
use passerelle::config::Config;
use passerelle::journal::{JournalReader, MessageId};
use serde_json::Value;

use super::ConfigArg;

/// The variable holding the admin API's address, when `--api` is not given.
const URL_ENV: &str = "PASSERELLE_ADMIN_URL";
/// The variable holding the admin token, when `--token` is not given.
const TOKEN_ENV: &str = "PASSERELLE_ADMIN_TOKEN";

#[derive(clap::Args)]
pub struct MessagesArgs {
    #[command(subcommand)]
    command: MessagesCommand,
}

#[derive(clap::Subcommand)]
enum MessagesCommand {
    /// List messages, newest first, as a table.
    List {
        #[command(flatten)]
        at: Target,
        #[command(flatten)]
        filter: Filter,
        /// Print the JSON page instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one message as JSON: content, status, records (envelope + bundle), deliveries with
    /// every attempt.
    Show {
        #[command(flatten)]
        at: Target,
        id: i64,
    },
    /// Replay messages through the running daemon's current plugin and routes (admin API only).
    /// With ids: those messages; without: the messages matching the filters.
    Replay {
        #[command(flatten)]
        at: Target,
        #[command(flatten)]
        filter: Filter,
        ids: Vec<i64>,
    },
}

/// Where the messages are.
#[derive(clap::Args)]
struct Target {
    /// The admin API of a running daemon, e.g. `http://127.0.0.1:8086` (default:
    /// `$PASSERELLE_ADMIN_URL`; without either, the journal file is read directly).
    #[arg(long)]
    api: Option<String>,
    /// Bearer token for the admin API (default: `$PASSERELLE_ADMIN_TOKEN`).
    #[arg(long)]
    token: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
    /// The data dir (overrides `data_dir`), when reading the journal file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The message search filters (see `docs/admin-api.md`).
#[derive(clap::Args, Default)]
struct Filter {
    /// Stored at or after: RFC 3339, a date, ms since the epoch, or a duration ago (`2h`).
    #[arg(long)]
    since: Option<String>,
    /// Stored before (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    #[arg(long)]
    source: Option<String>,
    /// routed, held, failed, delivered, dead or discarded.
    #[arg(long)]
    status: Option<String>,
    /// The patient's INS value.
    #[arg(long)]
    ins: Option<String>,
    /// The source's own message id (HL7 MSH-10).
    #[arg(long)]
    message_id: Option<String>,
    /// A record kind (e.g. `lab-result`).
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    limit: Option<usize>,
    /// Continue after this message id (the `next` of the previous page).
    #[arg(long)]
    after: Option<i64>,
}

impl Filter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut add = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        add("since", self.since.clone());
        add("until", self.until.clone());
        add("source", self.source.clone());
        add("status", self.status.clone());
        add("ins", self.ins.clone());
        add("message_id", self.message_id.clone());
        add("kind", self.kind.clone());
        add("limit", self.limit.map(|n| n.to_string()));
        add("after", self.after.map(|n| n.to_string()));
        out
    }

    fn query(&self) -> String {
        self.pairs()
            .iter()
            .map(|(k, v)| format!("{k}={}", views::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub fn run(args: MessagesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        MessagesCommand::List { at, filter, json } => {
            let page = match Api::from(&at)? {
                Some(api) => {
                    api.call(Method::GET, &format!("/messages?{}", filter.query()), None)?
                }
                None => {
                    let reader = open_journal(&at)?;
                    let pairs = filter.pairs();
                    let f = views::parse_filter(
                        pairs.iter().map(|(k, v)| (*k, v.as_str())),
                        passerelle::clock::now_ms(),
                    )
                    .map_err(anyhow::Error::msg)?;
                    let limit = if f.limit == 0 {
                        passerelle::journal::DEFAULT_SEARCH_LIMIT
                    } else {
                        f.limit
                    };
                    views::page_json(&reader.search(&f)?, limit)
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_table(&page);
            }
        }
        MessagesCommand::Show { at, id } => {
            let message = match Api::from(&at)? {
                Some(api) => api.call(Method::GET, &format!("/messages/{id}"), None)?,
                None => {
                    let reader = open_journal(&at)?;
                    let Some(view) = reader.message(MessageId(id))? else {
                        bail!("no message {id}");
                    };
                    let mut attempts = HashMap::new();
                    for outbox_id in views::outbox_ids(&view) {
                        attempts.insert(outbox_id, reader.attempts(outbox_id)?);
                    }
                    views::message_json(&view, &attempts)
                }
            };
            println!("{}", serde_json::to_string_pretty(&message)?);
        }
        MessagesCommand::Replay { at, filter, ids } => {
            let Some(api) = Api::from(&at)? else {
                bail!(
                    "replay needs the running daemon (it goes through the plugin, routes and delivery workers in force): \
                     give --api (or {URL_ENV}); start the daemon first if it is stopped"
                );
            };
            if ids.is_empty() {
                let body: serde_json::Map<String, Value> = filter
                    .pairs()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), Value::String(v)))
                    .collect();
                let answer =
                    api.call(Method::POST, "/messages/replay", Some(Value::Object(body)))?;
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                if !filter.pairs().is_empty() {
                    bail!("give either message ids or filters, not both");
                }
                for id in ids {
                    let answer = api.call(Method::POST, &format!("/messages/{id}/replay"), None)?;
                    println!("{}", serde_json::to_string(&answer)?);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_journal(at: &Target) -> anyhow::Result<JournalReader> {
    let config = Config::load(&at.config.config, at.data_dir.as_deref())?;
    if config.journal.jetstream.is_some() {
        anyhow::bail!(
            "{} keeps its journal on NATS JetStream, not in a local file: read the streams with \
             the nats CLI (docs/scale-out.md)",
            at.config.config.display()
        );
    }
    let path = &config.journal.path;
    JournalReader::open(path).with_context(|| format!("reading the journal {}", path.display()))
}

/// A client of the admin API.
struct Api {
    base: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    /// `None` when neither `--api` nor `$PASSERELLE_ADMIN_URL` is set.
    fn from(at: &Target) -> anyhow::Result<Option<Api>> {
        let Some(base) = at
            .api
            .clone()
            .or_else(|| std::env::var(URL_ENV).ok().filter(|s| !s.is_empty()))
        else {
            return Ok(None);
        };
        let token = at
            .token
            .clone()
            .or_else(|| std::env::var(TOKEN_ENV).ok())
            .filter(|t| !t.trim().is_empty());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        Ok(Some(Api {
            base: base.trim_end_matches('/').to_string(),
            token,
            runtime,
        }))
    }

    /// One request; the JSON answer, or its `error` as an error.
    fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let uri: Uri = url
            .parse()
            .with_context(|| format!("bad admin API URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!(
                "the admin API URL must start with http:// (got {})",
                self.base
            );
        }
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(token) = &self.token {
            let value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .context("the token is not a valid header value")?;
            req = req.header(AUTHORIZATION, value);
        }
        let body = match body {
            Some(v) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(v.to_string())
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body))?;
        self.runtime.block_on(async {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let response = client
                .request(req)
                .await
                .with_context(|| format!("cannot reach the admin API at {}", self.base))?;
            let status = response.status();
            let bytes = response.into_body().collect().await?.to_bytes();
            let value: Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
            if !status.is_success() {
                let message = value
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| value.to_string());
                if status == hyper::StatusCode::UNAUTHORIZED {
                    bail!("admin API: {status}: {message} (set {TOKEN_ENV} or give --token)");
                }
                bail!("admin API: {status}: {message}");
            }
            Ok(value)
        })
    }
}

/// The table of `list`.
fn print_table(page: &Value) {
    let empty = Vec::new();
    let messages = page["messages"].as_array().unwrap_or(&empty);
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rows: Vec<[String; 8]> = vec![[
        "ID".into(),
        "STORED".into(),
        "SOURCE".into(),
        "STATUS".into(),
        "TYPE".into(),
        "MESSAGE-ID".into(),
        "RECORDS".into(),
        "ERROR".into(),
    ]];
    for m in messages {
        let mut error = text(&m["error"]);
        if error.chars().count() > 60 {
            error = error.chars().take(59).collect::<String>() + "…";
        }
        rows.push([
            text(&m["id"]),
            text(&m["stored_at"]),
            text(&m["source"]),
            text(&m["status"]),
            text(&m["message_type"]),
            text(&m["source_message_id"]),
            text(&m["records"]),
            error,
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 7 {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    match page["next"].as_i64() {
        Some(next) => println!("({} messages; more with --after {next})", messages.len()),
        None => println!("({} messages)", messages.len()),
    }
}
