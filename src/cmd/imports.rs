//! `airgate imports`: read back the stored import reports.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::escape::quoted;
use gateway::state::StateReader;
use gateway::Error;

/// Read back the stored import reports.
#[derive(Args)]
pub struct ImportsArgs {
    #[command(subcommand)]
    command: ImportsCommand,
}

#[derive(Subcommand)]
enum ImportsCommand {
    /// Every import, newest first: number, exporter, signed export time, artifacts.
    List {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refused imports, newest first: when, the media given, the SHA-256 of the
    /// manifest entry as received, and why (append-only).
    Refused {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One import's stored report (what was verified and recorded).
    Show {
        /// The state directory.
        #[arg(long)]
        state: PathBuf,
        /// The import number (from `imports list`).
        id: i64,
        /// Print JSON (the stored report as recorded).
        #[arg(long)]
        json: bool,
    },
}

impl ImportsArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            ImportsCommand::List { state, limit, json } => list(&state, limit, json),
            ImportsCommand::Show { state, id, json } => show(&state, id, json),
            ImportsCommand::Refused { state, limit, json } => refused(&state, limit, json),
        }
    }
}

fn list(state: &std::path::Path, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let rows = StateReader::open(state)?.imports(limit)?;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "mediumId": r.medium_id,
                    "exporter": r.exporter,
                    "exportTime": r.export_time,
                    "importedAt": r.imported_at,
                    "checkpointSize": r.checkpoint_size,
                    "artifacts": r.artifacts,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no imports yet");
    }
    for r in &rows {
        println!(
            "#{}  {}  from {} (exported {}), {} artifact(s), log size {}, medium {}",
            r.id,
            quoted(&r.imported_at),
            quoted(&r.exporter),
            quoted(&r.export_time),
            r.artifacts,
            r.checkpoint_size,
            quoted(&r.medium_id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn refused(state: &std::path::Path, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let rows = StateReader::open(state)?.refusals(limit)?;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id,
                    "refusedAt": r.refused_at,
                    "media": r.media,
                    "manifestSha256": r.manifest_sha256,
                    "reason": r.reason,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no refused imports");
    }
    for r in &rows {
        println!(
            "refusal #{}  {}  {}  manifest sha256 {}\n    {}",
            r.id,
            quoted(&r.refused_at),
            quoted(&r.media),
            r.manifest_sha256
                .as_deref()
                .map(quoted)
                .unwrap_or_else(|| "(none read)".into()),
            quoted(&r.reason)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(state: &std::path::Path, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let report = StateReader::open(state)?
        .import_report(id)?
        .ok_or_else(|| Error::Usage(format!("no import #{id} (see `airgate imports list`)")))?;
    let value: serde_json::Value = serde_json::from_str(&report)
        .map_err(|e| Error::Usage(format!("import #{id}: stored report is not JSON: {e}")))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!("import #{id}\n");
    print_value(&value, 1, &mut out);
    emit(&out)
}

/// Writes the whole text; a reader that stopped early (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Renders a JSON value as indented `key: value` lines, strings escaped.
fn print_value(value: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}{}:\n", quoted(k)));
                        print_value(v, depth + 1, out);
                    }
                    _ => out.push_str(&format!("{pad}{}: {}\n", quoted(k), scalar(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        out.push_str(&format!("{pad}-\n"));
                        print_value(item, depth + 1, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", scalar(value))),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => quoted(s),
        other => other.to_string(),
    }
}
