//! `airgate lock`: pin collectors (digest, size, signer, bundle) in airgate.lock.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::bundle::{ArtifactDigest, IdentityPolicy, SignerPolicy, Verifier};
use gateway::export::ExportConfig;
use gateway::lock::{current_target, LockedCollector, LockedPlatform, Lockfile, MAX_LOCK_BYTES};
use gateway::{files, Error};

/// Maintain airgate.lock.
#[derive(Args)]
pub struct LockArgs {
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Args)]
struct PinArgs {
    /// Export configuration naming the collector (path, version, source, bundle, signer).
    #[arg(long)]
    config: PathBuf,
    /// The lockfile (default: the configuration's `lock`).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// trusted_root.json to verify the binary's bundle with (default: embedded production root).
    #[arg(long)]
    trusted_root: Option<PathBuf>,
    /// DANGER: evaluate "not in the future" checks as of this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    danger_as_of: Option<String>,
    /// Collector name.
    name: String,
}

#[derive(Subcommand)]
enum LockCommand {
    /// Pin a new collector for this platform (verifying its signature first).
    Add(PinArgs),
    /// Re-pin an existing collector (new version, binary or signer).
    Update(PinArgs),
    /// Rewrite airgate.lock in canonical form.
    Fmt {
        /// The lockfile.
        #[arg(long, default_value = "airgate.lock")]
        lock: PathBuf,
    },
}

fn read_lock(path: &Path, must_exist: bool) -> anyhow::Result<Lockfile> {
    if !path.exists() && !must_exist {
        return Ok(Lockfile::new());
    }
    let text = files::read_limited(path, MAX_LOCK_BYTES)?;
    Ok(
        Lockfile::parse(&String::from_utf8_lossy(&text))
            .map_err(|e| Error::Usage(e.to_string()))?,
    )
}

impl PinArgs {
    fn run(self, updating: bool) -> anyhow::Result<ExitCode> {
        let now = crate::output::danger_as_of(self.danger_as_of.as_deref())?;
        let text = files::read_limited(&self.config, 1 << 20)?;
        let config = ExportConfig::parse(
            &String::from_utf8_lossy(&text),
            self.config.parent().unwrap_or(Path::new(".")),
        )?;
        let lock_path =
            self.lock.clone().or(config.lock.clone()).ok_or_else(|| {
                Error::Usage("give --lock (or lock = in the configuration)".into())
            })?;
        let collector = config
            .collector
            .iter()
            .find(|c| c.name == self.name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{} configures no collector {:?}",
                    self.config.display(),
                    self.name
                ))
            })?;
        let missing = |field: &str| {
            Error::Usage(format!(
                "collector {}: `{field}` is required to pin it",
                self.name
            ))
        };
        let version = collector
            .version
            .clone()
            .ok_or_else(|| missing("version"))?;
        let source = collector.source.clone().ok_or_else(|| missing("source"))?;
        let bundle_path = collector.bundle.clone().ok_or_else(|| missing("bundle"))?;
        let identity = collector
            .signer_identity
            .clone()
            .ok_or_else(|| missing("signer-identity"))?;
        let issuer = collector
            .signer_issuer
            .clone()
            .ok_or_else(|| missing("signer-issuer"))?;
        let mut lock = read_lock(&lock_path, false)?;
        let exists = lock.get(&self.name).is_some();
        if updating && !exists {
            return Err(Error::Usage(format!(
                "{} is not in the lock; use `airgate lock add`",
                self.name
            ))
            .into());
        }
        if !updating && exists {
            return Err(Error::Usage(format!(
                "{} is already locked; use `airgate lock update`",
                self.name
            ))
            .into());
        }
        let binary = std::fs::read(&collector.path).map_err(|e| Error::io(&collector.path, e))?;
        let bundle = files::read_limited(&bundle_path, 16 << 20)?;
        let digest = ArtifactDigest::of_bytes(&binary);
        let verifier = Verifier::new(files::load_trusted_root(self.trusted_root.as_deref())?);
        let policy =
            SignerPolicy::identity(IdentityPolicy::exact(identity.clone(), issuer.clone()));
        verifier
            .verify_bytes(&bundle, &digest, &policy, now)
            .map_err(|rejection| Error::Bundle {
                subject: bundle_path.display().to_string(),
                rejection,
            })?;
        lock.pin(LockedCollector {
            name: self.name.clone(),
            version: version.clone(),
            source,
            signer_identity: identity.clone(),
            signer_issuer: issuer,
            platform: vec![LockedPlatform {
                target: current_target(),
                sha256: digest.to_hex(),
                size: binary.len() as u64,
                bundle: LockedPlatform::encode_bundle(&bundle),
            }],
        })
        .map_err(|e| Error::Usage(e.to_string()))?;
        let canonical = lock
            .to_canonical()
            .map_err(|e| Error::Usage(e.to_string()))?;
        files::write_atomic(&lock_path, canonical.as_bytes(), Some(0o644))?;
        println!(
            "{} {} {} ({digest}, {} bytes) signed by {identity} in {}",
            if updating { "Updated" } else { "Locked" },
            self.name,
            version,
            binary.len(),
            lock_path.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl LockArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            LockCommand::Add(args) => args.run(false),
            LockCommand::Update(args) => args.run(true),
            LockCommand::Fmt { lock } => {
                let text = files::read_limited(&lock, MAX_LOCK_BYTES)?;
                let parsed = Lockfile::parse_lenient(&String::from_utf8_lossy(&text))
                    .map_err(|e| Error::Usage(e.to_string()))?;
                let canonical = parsed
                    .to_canonical()
                    .map_err(|e| Error::Usage(e.to_string()))?;
                files::write_atomic(&lock, canonical.as_bytes(), Some(0o644))?;
                println!("Formatted {}", lock.display());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
