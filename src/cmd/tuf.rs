//! `airgate tuf`: snapshot the public Sigstore TUF repository on the low
//! side (`snapshot`), verify the snapshot offline on the high side (`verify`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use gateway::tuf_repo::{
    self, Limits, RoleExpiries, SnapshotSummary, TufState, Url, VerifiedSnapshot,
};
use gateway::{files, Error};

/// Largest root file accepted from `--root`.
const MAX_ROOT_FILE: usize = 1 << 20;

/// Snapshot or verify a TUF repository (the public Sigstore trust root).
#[derive(Args)]
pub struct TufArgs {
    /// What to do.
    #[command(subcommand)]
    command: TufCommand,
}

#[derive(Subcommand)]
enum TufCommand {
    /// Low side: load a TUF repository from a mirror, verify it, and write a
    /// self-contained snapshot directory (only verified files, atomically).
    Snapshot(SnapshotArgs),
    /// High side: verify a snapshot directory offline and derive its trusted_root.json.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    /// The repository: an https, http or file URL, or a local directory.
    #[arg(long, value_name = "URL")]
    mirror: String,
    /// The snapshot directory to create (must not exist, or be empty).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Bootstrap root.json (default: the embedded Sigstore production root, v12).
    #[arg(long, value_name = "FILE")]
    root: Option<PathBuf>,
    /// DANGER: evaluate metadata expiry as of this RFC 3339 time instead of now.
    #[arg(long, value_name = "TIME")]
    danger_as_of: Option<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct VerifyArgs {
    /// Pinned root.json (default: the embedded Sigstore production root, v12).
    #[arg(long, value_name = "PINNED_ROOT")]
    root: Option<PathBuf>,
    /// The snapshot directory.
    #[arg(long, value_name = "DIR")]
    snapshot: PathBuf,
    /// Rollback-protection state (created on first use): refuses any role
    /// version lower than already accepted and remembers the newest root.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Write the derived trusted_root.json here (atomically).
    #[arg(long, value_name = "FILE")]
    write_trusted_root: Option<PathBuf>,
    /// DANGER: evaluate metadata expiry as of this RFC 3339 time instead of now.
    #[arg(long, value_name = "TIME")]
    danger_as_of: Option<String>,
    /// Print a JSON result on stdout.
    #[arg(long)]
    json: bool,
}

impl TufArgs {
    /// Runs the chosen `tuf` subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            TufCommand::Snapshot(args) => args.run(),
            TufCommand::Verify(args) => args.run(),
        }
    }
}

fn root_bytes(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    Ok(match path {
        Some(p) => files::read_limited(p, MAX_ROOT_FILE)?,
        None => tuf_repo::PRODUCTION_ROOT.to_vec(),
    })
}

fn mirror_url(mirror: &str) -> anyhow::Result<Url> {
    if mirror.contains("://") {
        return Url::parse(mirror)
            .map_err(|e| Error::Usage(format!("--mirror {mirror:?} is not a URL: {e}")).into());
    }
    let path = Path::new(mirror);
    let abs = path.canonicalize().map_err(|e| Error::io(path, e))?;
    Url::from_directory_path(&abs)
        .map_err(|()| Error::Usage(format!("--mirror {mirror:?}: cannot make a file URL")).into())
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn expires_json(e: &RoleExpiries) -> serde_json::Value {
    serde_json::json!({
        "root": time(&e.root),
        "timestamp": time(&e.timestamp),
        "snapshot": time(&e.snapshot),
        "targets": time(&e.targets),
        "delegated": e.delegated.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(time(v)))).collect::<serde_json::Map<_, _>>(),
    })
}

fn chain_text(chain: &[u64]) -> String {
    match (chain.first(), chain.last()) {
        (Some(first), Some(last)) if first != last => format!("{first} -> {last}"),
        (Some(only), _) => format!("{only} (no rotation)"),
        _ => "(none)".to_owned(),
    }
}

impl SnapshotArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let now = crate::output::danger_as_of(self.danger_as_of.as_deref())?;
        let mirror = mirror_url(&self.mirror)?;
        let bootstrap = root_bytes(self.root.as_deref())?;
        let summary = tuf_repo::snapshot(&mirror, &bootstrap, &self.out, now, &Limits::default())
            .map_err(Error::from)
            .with_context(|| format!("snapshot of TUF repository {mirror}"))?;
        if self.json {
            let out = serde_json::json!({
                "mirror": mirror.as_str(),
                "out": summary.out_dir.display().to_string(),
                "rootChain": summary.root_chain,
                "versions": summary.versions,
                "expires": expires_json(&summary.expires),
                "trustedRootSha256": summary.trusted_root_sha256,
                "files": summary.files,
                "referenceTime": time(&now),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_snapshot(&mirror, &summary, now);
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_snapshot(mirror: &Url, s: &SnapshotSummary, now: DateTime<Utc>) {
    let (role, at) = s.expires.earliest();
    println!("Snapshot written: {}", s.out_dir.display());
    println!("  mirror:            {mirror}");
    println!("  root chain:        {}", chain_text(&s.root_chain));
    println!(
        "  versions:          root {}, timestamp {}, snapshot {}, targets {}",
        s.versions.root, s.versions.timestamp, s.versions.snapshot, s.versions.targets
    );
    println!("  earliest expiry:   {role} at {}", time(&at));
    println!("  trusted_root.json: sha256:{}", s.trusted_root_sha256);
    println!("  files:             {}", s.files.len());
    println!("  reference time:    {}", time(&now));
}

impl VerifyArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let now = crate::output::danger_as_of(self.danger_as_of.as_deref())?;
        let pinned = root_bytes(self.root.as_deref())?;
        let state = match &self.state {
            Some(path) => {
                let (state, existed) = TufState::load_or_new(path).map_err(Error::from)?;
                if !existed {
                    eprintln!(
                        "note: state file {} does not exist yet; starting a new one",
                        path.display()
                    );
                }
                Some((path, state))
            }
            None => None,
        };
        let result = tuf_repo::verify_snapshot(
            &pinned,
            &self.snapshot,
            now,
            state.as_ref().map(|(_, s)| s),
            &Limits::default(),
        );
        let verified = match result {
            Ok(v) => v,
            Err(e) => {
                if self.json {
                    let out = serde_json::json!({
                        "verified": false,
                        "snapshot": self.snapshot.display().to_string(),
                        "check": e.check(),
                        "error": error_chain(&e),
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                return Err(anyhow::Error::from(Error::from(e))
                    .context(format!("TUF snapshot {}", self.snapshot.display())));
            }
        };
        if let Some(out) = &self.write_trusted_root {
            files::write_atomic(out, &verified.trusted_root_json, Some(0o644))?;
        }
        if let Some((path, mut state)) = state {
            state.update(&verified).map_err(Error::from)?;
            state.save(path).map_err(Error::from)?;
        }
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json_result(&verified))?
            );
        } else {
            self.print(&verified);
        }
        Ok(ExitCode::SUCCESS)
    }

    fn json_result(&self, v: &VerifiedSnapshot) -> serde_json::Value {
        let trusted = v
            .targets
            .iter()
            .find(|t| t.name == tuf_repo::TRUSTED_ROOT_TARGET);
        serde_json::json!({
            "verified": true,
            "snapshot": self.snapshot.display().to_string(),
            "rootChain": v.root_chain,
            "versions": v.versions,
            "expires": expires_json(&v.expires),
            "referenceTime": time(&v.reference_time),
            "trustedRoot": {
                "sha256": trusted.map(|t| t.sha256.clone()),
                "length": v.trusted_root_json.len(),
                "summary": trusted_root_summary(&v.trusted_root_json),
                "writtenTo": self.write_trusted_root.as_ref().map(|p| p.display().to_string()),
            },
            "targets": v.targets.iter().map(|t| serde_json::json!({
                "name": t.name, "sha256": t.sha256, "length": t.length,
            })).collect::<Vec<_>>(),
            "state": self.state.as_ref().map(|p| p.display().to_string()),
        })
    }

    fn print(&self, v: &VerifiedSnapshot) {
        let (role, at) = v.expires.earliest();
        let trusted = v
            .targets
            .iter()
            .find(|t| t.name == tuf_repo::TRUSTED_ROOT_TARGET);
        println!("Verified OK: TUF snapshot {}", self.snapshot.display());
        println!("  root chain:        {}", chain_text(&v.root_chain));
        println!(
            "  versions:          root {}, timestamp {}, snapshot {}, targets {}",
            v.versions.root, v.versions.timestamp, v.versions.snapshot, v.versions.targets
        );
        println!("  earliest expiry:   {role} at {}", time(&at));
        println!("  reference time:    {}", time(&v.reference_time));
        if let Some(t) = trusted {
            println!(
                "  trusted_root.json: sha256:{} ({} bytes)",
                t.sha256, t.length
            );
        }
        let s = trusted_root_summary(&v.trusted_root_json);
        println!(
            "    tlogs {}, CAs {}, CT logs {}, TSAs {}",
            s["tlogs"], s["certificateAuthorities"], s["ctlogs"], s["timestampAuthorities"]
        );
        println!("  targets verified:  {}", v.targets.len());
        if let Some(p) = &self.write_trusted_root {
            println!("  wrote:             {}", p.display());
        }
        if let Some(p) = &self.state {
            println!("  state updated:     {}", p.display());
        }
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Counts of what a trusted_root.json holds.
fn trusted_root_summary(json: &[u8]) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let count = |key: &str| doc[key].as_array().map_or(0, Vec::len);
    serde_json::json!({
        "mediaType": doc["mediaType"],
        "tlogs": count("tlogs"),
        "certificateAuthorities": count("certificateAuthorities"),
        "ctlogs": count("ctlogs"),
        "timestampAuthorities": count("timestampAuthorities"),
    })
}
