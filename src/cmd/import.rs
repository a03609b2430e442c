//! `airgate import`: re-verify a medium offline and re-sign it into the private stack.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gateway::escape::quoted;
use gateway::import::{import_with_progress, Decision, ImportReport, ImportRequest};
use gateway::state::StateDir;
use gateway::Error;

/// High side: verify a medium offline, re-sign accepted artifacts, record the import.
#[derive(Args)]
pub struct ImportArgs {
    /// The state directory (private CA, log, blob store, enrolled exporters, policy.toml).
    #[arg(long)]
    state: PathBuf,
    /// The medium: media.tar, or its chunks media.tar.000 media.tar.001 ...
    #[arg(required = true)]
    media: Vec<PathBuf>,
    /// The signed chunk index (default: MEDIA.chunks.json beside the first chunk).
    #[arg(long)]
    chunk_index: Option<PathBuf>,
    /// Verify and report without storing anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the import report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Print the wall time of each phase to stderr when the import ends (for sizing imports).
    #[arg(long)]
    timings: bool,
    /// Not offered: import signs and records with the real clock (refused with why).
    #[arg(long, value_name = "TIME", hide = true)]
    danger_as_of: Option<String>,
}

/// Why `import` has no `--danger-as-of`.
const NO_DANGER_AS_OF: &str = "import has no --danger-as-of: it signs and records with the real clock (a backdated leaf, log entry or record would be unverifiable and permanent). \
TUF expiry is already evaluated at the medium's signed export time; to accept a medium older than the transit window, raise [import] max-transit-age-days in STATE/policy.toml after review";

fn print_report(report: &ImportReport) {
    if report.already_imported {
        println!(
            "already imported: medium {} (exported by {} at {}); nothing changed",
            report.medium_id, report.exporter, report.export_time
        );
        return;
    }
    println!(
        "{}medium {} from exporter {} (exported {}), verified TUF root v{} timestamp v{}",
        if report.dry_run { "DRY RUN: " } else { "" },
        report.medium_id,
        report.exporter,
        report.export_time,
        report.tuf.root,
        report.tuf.timestamp
    );
    for a in &report.artifacts {
        match a.decision {
            Decision::Accepted => println!(
                "  accepted {} sha256:{} upstream {} ({}) log index {}{}",
                a.name,
                a.sha256,
                a.upstream
                    .as_ref()
                    .map(|u| quoted(&u.identity))
                    .unwrap_or_default(),
                a.upstream
                    .as_ref()
                    .map(|u| quoted(&u.issuer))
                    .unwrap_or_default(),
                a.upstream.as_ref().map(|u| u.log_index).unwrap_or_default(),
                a.log_index
                    .map(|i| format!(" -> our log index {i}"))
                    .unwrap_or_default()
            ),
            Decision::Rejected => println!(
                "  rejected {} [{}]: {}",
                a.name,
                a.check.as_deref().unwrap_or(""),
                a.reason.as_deref().unwrap_or("")
            ),
        }
    }
    for i in &report.images {
        print_image(i);
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(size) = report.checkpoint_size {
        println!(
            "imported {} artifact(s) and {} image(s); log checkpoint at tree size {size}",
            report.artifacts.len(),
            report.images.len()
        );
    }
    if let Some(note) = &report.checkpoint {
        println!("signed checkpoint (keep a copy outside this host; `airgate log verify --checkpoint FILE` proves the log grew from it):");
        print!("{note}");
    }
}

fn print_image(i: &gateway::import::ImageDecision) {
    match i.decision {
        Decision::Accepted => {
            println!(
                "  accepted image {} {}{}",
                i.reference,
                i.digest.as_deref().unwrap_or_default(),
                i.log_index
                    .map(|n| format!(" -> our log index {n}"))
                    .unwrap_or_default()
            );
            for s in &i.signatures {
                println!(
                    "    upstream {} signature by {} ({}) log index {}",
                    s.form,
                    quoted(&s.upstream.identity),
                    quoted(&s.upstream.issuer),
                    s.upstream.log_index
                );
            }
            for a in &i.attestations {
                println!("    upstream attestation {a}");
            }
        }
        Decision::Rejected => println!(
            "  rejected image {} [{}]: {}",
            i.reference,
            i.check.as_deref().unwrap_or(""),
            i.reason.as_deref().unwrap_or("")
        ),
    }
}

/// How to get the first accepted artifact out and verify it with real
/// clients: the identity and issuer are the CA's, the trust files the state's.
fn print_recipe(state: &std::path::Path, report: &ImportReport) {
    let Some(first) = report
        .artifacts
        .iter()
        .find(|a| matches!(a.decision, Decision::Accepted))
    else {
        return;
    };
    if report.dry_run {
        return;
    }
    let Ok(ca) = gateway::private_ca::CaConfig::load(state) else {
        return;
    };
    let out = std::path::Path::new("airgate-out");
    let artifact = first.name.to_string();
    let path = out.join(&artifact);
    let bundle = std::path::PathBuf::from(format!("{}.sigstore.json", path.display()));
    println!("Verify it like a client (offline, with the enclave's root):");
    println!(
        "  airgate artifact get --state {} {artifact} --out {}",
        state.display(),
        out.display()
    );
    println!(
        "{}",
        super::recipe::local(state, &bundle, &path, &ca.default_identity, &ca.oidc_issuer)
    );
}

impl ImportArgs {
    /// Appends the refusal to the state's append-only record; a failure to
    /// record is reported but never hides the refusal itself.
    fn record_refusal(&self, state: &StateDir, now: chrono::DateTime<chrono::Utc>, reason: &str) {
        let media: Vec<String> = self.media.iter().map(|p| p.display().to_string()).collect();
        let manifest = self.media.first().and_then(|path| {
            let file = std::fs::File::open(path).ok()?;
            let bytes =
                gateway::medium::unpack::read_manifest(std::io::BufReader::new(file)).ok()?;
            Some(hex::encode(gateway::crypto::sha256(&bytes)))
        });
        match state.record_refusal(now, &media.join(" "), manifest.as_deref(), reason) {
            Ok(id) => eprintln!("refusal recorded as #{id} (airgate imports refused)"),
            Err(e) => eprintln!("warning: the refusal could not be recorded: {e}"),
        }
    }

    /// Runs the import.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if self.danger_as_of.is_some() {
            return Err(Error::Usage(NO_DANGER_AS_OF.into()).into());
        }
        let now = chrono::Utc::now();
        let mut state = StateDir::open(&self.state)?;
        let request = ImportRequest {
            media: self.media.clone(),
            chunk_index: self.chunk_index.clone(),
            dry_run: self.dry_run,
            now,
        };
        let progress = crate::output::ImportProgress::new(self.json, self.timings);
        let result = import_with_progress(&mut state, &request, &|phase, done, total| {
            progress.update(phase, done, total)
        });
        progress.finish();
        match result {
            Ok(report) => {
                if self.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print_report(&report);
                    print_recipe(&self.state, &report);
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(Error::ImportRejected(rejected)) => {
                if !self.dry_run {
                    self.record_refusal(&state, now, &rejected.to_string());
                }
                if self.json {
                    let decisions = match rejected.as_ref() {
                        gateway::import::ImportRejected::Artifacts(d) => serde_json::to_value(d)?,
                        _ => serde_json::Value::Null,
                    };
                    let images = match rejected.as_ref() {
                        gateway::import::ImportRejected::Images(d) => serde_json::to_value(d)?,
                        _ => serde_json::Value::Null,
                    };
                    let out = serde_json::json!({"imported": false, "error": rejected.to_string(), "artifacts": decisions, "images": images});
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    return Err(crate::output::json_printed(Error::ImportRejected(rejected)));
                }
                Err(Error::ImportRejected(rejected).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
