//! `airgate export`: verify artifacts and pack a signed, reproducible medium.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use gateway::export::{export, load_exporter_key, ExportConfig, ExportRequest};
use gateway::{files, Error};

/// Build a signed transfer medium from verified artifacts and pinned collectors.
#[derive(Args)]
pub struct ExportArgs {
    /// Export configuration (airgate.toml): exporter, policy, lock, artifacts, collectors.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Policy file (overrides the configuration's).
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Directory of artifacts, each with NAME.sigstore.json, NAME.sigstore or NAME.sigs beside it.
    #[arg(long)]
    artifacts: Option<PathBuf>,
    /// The lockfile (overrides the configuration's).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// Refuse any collector whose configuration, binary, digest or signer differs from the lock.
    #[arg(long)]
    frozen: bool,
    /// The exporter's private key (from `airgate export-key init`).
    #[arg(long)]
    key: PathBuf,
    /// Exporter identity recorded in the manifest.
    #[arg(long)]
    exporter: Option<String>,
    /// The medium to write (a .tar).
    #[arg(long, short)]
    out: PathBuf,
    /// Replace an existing medium at --out (by default an existing one is refused).
    #[arg(long)]
    force: bool,
    /// Split into chunks of at most SIZE (e.g. 4G, 700M): OUT.000, OUT.001, ... and OUT.chunks.json.
    #[arg(long, value_name = "SIZE")]
    split: Option<String>,
    /// Leave out rejected artifacts (listed in the report) instead of failing.
    #[arg(long)]
    skip_rejected: bool,
    /// fsync the medium before reporting success (use it before ejecting removable media).
    #[arg(long)]
    sync: bool,
    /// Use this TUF snapshot directory instead of fetching one from the mirror.
    #[arg(long, value_name = "DIR")]
    tuf_snapshot: Option<PathBuf>,
    /// TUF mirror URL (overrides the policy's).
    #[arg(long, value_name = "URL")]
    tuf_mirror: Option<String>,
    /// Print the export report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// DANGER: evaluate TUF expiry, bundles and collectors as of this RFC 3339
    /// time; the signed export time stays the real clock.
    #[arg(long, value_name = "TIME")]
    danger_as_of: Option<String>,
    /// The export time to sign (RFC 3339, a date, or seconds since 1970, as
    /// SOURCE_DATE_EPOCH gives them): for byte-reproducible media. Default:
    /// the real clock.
    #[arg(long, value_name = "TIME", env = "SOURCE_DATE_EPOCH")]
    export_time: Option<String>,
}

/// Refuses to replace a medium already at `out` (or its chunks) unless
/// `--force` says so: a medium may be the only copy of a transfer.
fn refuse_existing_out(out: &std::path::Path, force: bool) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    let mut taken = vec![out.to_path_buf()];
    for suffix in [".000", ".chunks.json"] {
        let mut name = out.as_os_str().to_owned();
        name.push(suffix);
        taken.push(PathBuf::from(name));
    }
    match taken.iter().find(|p| p.exists()) {
        Some(p) => Err(Error::Usage(format!(
            "{} already exists; pass --force to replace it, or choose another --out",
            p.display()
        ))),
        None => Ok(()),
    }
}

/// Parses sizes like `4096`, `700K`, `700M`, `4G`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|n| *n > 0)
}

impl ExportArgs {
    /// The export time to sign: `--export-time` (never in the future) or now.
    fn export_time(&self) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
        Ok(match &self.export_time {
            None => chrono::Utc::now(),
            Some(text) => {
                let at = crate::output::parse_time(text, "--export-time")?;
                if at
                    > chrono::Utc::now()
                        + chrono::Duration::seconds(gateway::import::CLOCK_SKEW_SECS)
                {
                    return Err(Error::Usage(format!(
                        "--export-time {} is in the future; the high side would refuse the medium",
                        gateway::escape::quoted(text)
                    ))
                    .into());
                }
                at
            }
        })
    }

    /// The `--config` file, or the defaults.
    fn config(&self) -> anyhow::Result<ExportConfig> {
        Ok(match &self.config {
            Some(path) => {
                let text = files::read_limited(path, 1 << 20)?;
                ExportConfig::parse(
                    &String::from_utf8_lossy(&text),
                    path.parent().unwrap_or(std::path::Path::new(".")),
                )?
            }
            None => ExportConfig::default(),
        })
    }

    /// The export report, as JSON or for people.
    fn print_report(&self, report: &gateway::export::ExportReport) -> anyhow::Result<()> {
        if self.json {
            let out = serde_json::json!({
                "exported": true,
                "outputs": report.outputs,
                "mediumBytes": report.medium_bytes,
                "entries": report.entries,
                "exportTime": report.export_time,
                "packDigest": report.pack_digest,
                "tuf": report.tuf,
                "accepted": report.accepted,
                "images": report.images,
                "rejected": report.rejected,
                "collectors": report.collectors.iter().map(|c| serde_json::json!({
                    "name": c.record.name, "version": c.record.version, "sha256": c.record.sha256,
                    "stdout": c.run.stdout, "stderr": c.run.stderr,
                })).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            for c in &report.collectors {
                eprintln!(
                    "collector {} {} ran ({:.1} s)",
                    c.record.name,
                    c.record.version,
                    c.run.elapsed.as_secs_f64()
                );
                for line in c.run.stderr.lines().chain(c.run.stdout.lines()) {
                    eprintln!("  | {line}");
                }
            }
            for a in &report.accepted {
                println!(
                    "accepted: {} sha256:{} signed by {} ({}), log index {}",
                    a.name, a.sha256, a.upstream.identity, a.upstream.issuer, a.upstream.log_index
                );
            }
            for i in &report.images {
                for s in &i.signatures {
                    println!(
                        "accepted: image {} {} signed ({}) by {} ({}), log index {}",
                        i.reference,
                        i.digest,
                        s.form,
                        s.upstream.identity,
                        s.upstream.issuer,
                        s.upstream.log_index
                    );
                }
                for a in &i.attestations {
                    println!("  attestation {a}");
                }
            }
            for r in &report.rejected {
                println!("rejected (skipped): {} [{}]: {}", r.name, r.check, r.reason);
            }
            println!(
                "Exported {} artifact(s) and {} image(s), {} entries, {} bytes, TUF root v{} timestamp v{}, to {}",
                report.accepted.len(),
                report.images.len(),
                report.entries,
                report.medium_bytes,
                report.tuf.root,
                report.tuf.timestamp,
                report
                    .outputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    /// Mirrors every `pull` image into a layout in a temporary directory
    /// beside the output (removed when the export ends).
    fn pull_images(&self, config: &mut ExportConfig) -> anyhow::Result<Option<tempfile::TempDir>> {
        if config.image.iter().all(|i| i.pull.is_none()) {
            return Ok(None);
        }
        let parent = self
            .out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(".airgate-pull-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        for (i, image) in config.image.iter_mut().enumerate() {
            let Some(reference) = image.pull.clone() else {
                continue;
            };
            let layout = dir.path().join(i.to_string());
            let pulled =
                crate::cmd::pull::pull(&reference, &image.tags, image.plain_http, &layout)?;
            if !self.json {
                eprintln!(
                    "pulled {reference} ({}): {} manifests, {} blobs, {} bytes",
                    image.tags.join(", "),
                    pulled.manifests,
                    pulled.blobs,
                    pulled.bytes
                );
            }
            image.layout = Some(layout);
        }
        Ok(Some(dir))
    }

    /// Runs the export.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let verify_at = crate::output::danger_as_of(self.danger_as_of.as_deref())?;
        let now = self.export_time()?;
        let mut config = self.config()?;
        let policy_path = self
            .policy
            .clone()
            .or(config.policy.clone())
            .ok_or_else(|| Error::Usage("give --policy (or policy = in --config)".into()))?;
        let exporter = self
            .exporter
            .clone()
            .or(config.exporter.clone())
            .ok_or_else(|| {
                Error::Usage("give --exporter NAME (or exporter = in --config)".into())
            })?;
        let split = match &self.split {
            None => None,
            Some(s) => Some(parse_size(s).ok_or_else(|| {
                Error::Usage(format!("--split {s:?} is not a size like 700M or 4G"))
            })?),
        };
        refuse_existing_out(&self.out, self.force)?;
        let key = load_exporter_key(&self.key)?;
        // Registries are pulled once the arguments are known to be good.
        let pulls = self.pull_images(&mut config)?;
        let bar = crate::output::progress_bar(self.json);
        if let Some(bar) = &bar {
            bar.set_message("verifying, then packing the medium");
        }
        let progress = |done: u64, total: u64| {
            if let Some(bar) = &bar {
                bar.set_length(total);
                bar.set_position(done);
            }
        };
        let env = |name: &str| std::env::var(name).ok();
        let request = ExportRequest {
            policy_path,
            artifacts_dir: self.artifacts.clone().or(config.artifacts.clone()),
            collectors: config.collector.clone(),
            images: config.image.clone(),
            lock_path: self.lock.clone().or(config.lock.clone()),
            frozen: self.frozen,
            exporter,
            key: &key,
            out: self.out.clone(),
            split,
            skip_rejected: self.skip_rejected,
            sync: self.sync,
            tuf_snapshot: self.tuf_snapshot.clone(),
            tuf_mirror: self.tuf_mirror.clone(),
            now,
            verify_at,
            env: &env,
            progress: &progress,
        };
        let result = export(&request);
        drop(pulls);
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = match result {
            Ok(r) => r,
            Err(Error::ExportRejected(rejected)) => {
                if self.json {
                    let out = serde_json::json!({
                        "exported": false,
                        "accepted": rejected.accepted,
                        "rejected": rejected.rejected,
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    return Err(crate::output::json_printed(Error::ExportRejected(rejected)));
                }
                for r in &rejected.rejected {
                    eprintln!("rejected: {} [{}]: {}", r.name, r.check, r.reason);
                }
                return Err(Error::ExportRejected(rejected).into());
            }
            Err(e) => return Err(e.into()),
        };
        self.print_report(&report)?;
        Ok(ExitCode::SUCCESS)
    }
}
