//! `airgate tuf`: snapshot the public Sigstore TUF repository on the low
//! side (`snapshot`), verify the snapshot offline on the high side (`verify`),
//! and maintain airgate's private TUF repository on the high side
//! (`init-private`, `publish`, `refresh`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use gateway::tuf_repo::{
    self, InitSummary, Limits, PrivateRepoConfig, PublishSummary, PublishedTarget, RoleExpiries,
    SnapshotSummary, TufState, Url, VerifiedSnapshot,
};
use gateway::{files, Error};

/// Largest root file accepted from `--root`.
const MAX_ROOT_FILE: usize = 1 << 20;

/// Snapshot or verify a TUF repository (the public Sigstore trust root), or
/// maintain airgate's private TUF repository.
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
    /// High side: create airgate's private TUF repository (it distributes the
    /// private trusted_root.json): role keys as PKCS#8 PEM files of mode 0600
    /// (never overwritten; the root key is for offline use) and the signed
    /// 1.root.json (+ root.json) clients pin. With --state, the state's
    /// trusted_root.json and signing config are published right away.
    InitPrivate(InitPrivateArgs),
    /// High side: (re)publish targets in the private TUF repository; targets,
    /// snapshot and timestamp get new versions and signatures.
    Publish(PublishArgs),
    /// High side: re-sign the private repository's timestamp (and snapshot or
    /// targets near expiry) without changing targets; run it periodically.
    Refresh(RefreshArgs),
    /// High side: rotate the private repository's root: root N+1 signed by a
    /// threshold of the current root keys and of the new ones (key files,
    /// read and never stored), optionally with new online keys; targets,
    /// snapshot and timestamp re-signed. Clients walk the chain on refresh.
    RotateRoot(RotateRootArgs),
    /// Write a new Ed25519 TUF key (PKCS#8 PEM, mode 0600) for an offline
    /// root key; prints its key id. Never overwrites.
    NewKey(NewKeyArgs),
}

/// Where the private repository is: `--state DIR` (DIR/tuf-repo and
/// DIR/tuf-keys, where `airgate serve` and imports use them), or `--repo`
/// and `--keys`.
#[derive(Args)]
struct RepoLocation {
    /// The repository directory (what the server serves at /tuf/).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "state",
        conflicts_with = "state",
        requires = "keys"
    )]
    repo: Option<PathBuf>,
    /// The keys directory (mode 0700; the keys and config.json).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "state",
        conflicts_with = "state",
        requires = "repo"
    )]
    keys: Option<PathBuf>,
    /// A high-side state directory: the repository is DIR/tuf-repo, the keys DIR/tuf-keys.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
}

impl RepoLocation {
    /// The repository and keys directories.
    fn resolve(&self) -> anyhow::Result<(PathBuf, PathBuf)> {
        match (&self.state, &self.repo, &self.keys) {
            (Some(state), _, _) => Ok((
                state.join(gateway::state::TUF_REPO),
                state.join(gateway::state::TUF_KEYS),
            )),
            (None, Some(repo), Some(keys)) => Ok((repo.clone(), keys.clone())),
            _ => Err(Error::Usage("give --state DIR, or both --repo and --keys".into()).into()),
        }
    }
}

#[derive(Args)]
struct RotateRootArgs {
    #[command(flatten)]
    location: RepoLocation,
    /// A key file of the current root (repeat: at least its threshold).
    #[arg(long = "current-root-key", value_name = "FILE", required = true)]
    current_root_keys: Vec<PathBuf>,
    /// A key file of the new root (repeat; from `airgate tuf new-key`). Omit to keep the current root keys.
    #[arg(long = "new-root-key", value_name = "FILE")]
    new_root_keys: Vec<PathBuf>,
    /// The new root threshold (default: the current one, at most the number of new root keys).
    #[arg(long, value_name = "N")]
    threshold: Option<u32>,
    /// Also replace the targets, snapshot and timestamp keys.
    #[arg(long)]
    rotate_online_keys: bool,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct NewKeyArgs {
    /// The key file to create (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Args)]
struct InitPrivateArgs {
    /// Where to create it; with --state, DIR/trusted_root.json is published right away.
    #[command(flatten)]
    location: RepoLocation,
    /// Root metadata validity: days, or a number with d, h, m or s.
    #[arg(long, value_name = "DAYS", default_value = "365d", value_parser = parse_expiry)]
    root_expiry: Duration,
    /// Targets metadata validity, counted from each publish.
    #[arg(long, value_name = "DAYS", default_value = "90d", value_parser = parse_expiry)]
    targets_expiry: Duration,
    /// Snapshot metadata validity, counted from each publish or refresh.
    #[arg(long, value_name = "DAYS", default_value = "7d", value_parser = parse_expiry)]
    snapshot_expiry: Duration,
    /// Timestamp metadata validity; run `airgate tuf refresh` well within it.
    #[arg(long, value_name = "DAYS", default_value = "1d", value_parser = parse_expiry)]
    timestamp_expiry: Duration,
    /// Number of root keys to generate.
    #[arg(long, value_name = "N", default_value_t = 1)]
    root_keys: u32,
    /// Number of root keys that must sign a root.
    #[arg(long, value_name = "N", default_value_t = 1)]
    root_threshold: u32,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PublishArgs {
    /// The private repository directory.
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The keys directory (only targets.pem, snapshot.pem and timestamp.pem are read).
    #[arg(long, value_name = "DIR")]
    keys: PathBuf,
    /// A target to (re)publish: NAME=FILE, or FILE to use its file name.
    /// Names are flat (no '/'). Targets already published and not named are kept.
    #[arg(long, value_name = "NAME=FILE")]
    target: Vec<String>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RefreshArgs {
    /// The private repository directory.
    #[arg(long, value_name = "DIR")]
    repo: PathBuf,
    /// The keys directory.
    #[arg(long, value_name = "DIR")]
    keys: PathBuf,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
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
            TufCommand::InitPrivate(args) => args.run(),
            TufCommand::Publish(args) => args.run(),
            TufCommand::Refresh(args) => args.run(),
            TufCommand::RotateRoot(args) => args.run(),
            TufCommand::NewKey(args) => args.run(),
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
                let err = anyhow::Error::from(Error::from(e))
                    .context(format!("TUF snapshot {}", self.snapshot.display()));
                return Err(if self.json {
                    crate::output::json_printed(err)
                } else {
                    err
                });
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

fn parse_expiry(text: &str) -> Result<Duration, String> {
    tuf_repo::parse_duration(text).map_err(|e| e.to_string())
}

/// Warn when the private root expires soon: only `init-private` (with the
/// offline root key) can make a root, and root rotation is not supported yet.
const ROOT_EXPIRY_WARNING_DAYS: i64 = 30;

impl InitPrivateArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let config = PrivateRepoConfig {
            expiry: tuf_repo::RoleDurations {
                root: self.root_expiry,
                targets: self.targets_expiry,
                snapshot: self.snapshot_expiry,
                timestamp: self.timestamp_expiry,
            },
            root_keys: self.root_keys,
            root_threshold: self.root_threshold,
        };
        let now = Utc::now();
        if let Some(state) = &self.location.state {
            // Refuse early: publishing needs the state's trusted root.
            let path = state.join(gateway::private_ca::ca::files::TRUSTED_ROOT);
            if !path.is_file() {
                return Err(Error::Usage(format!(
                    "{} is not an airgate state directory (no {}); create it with `airgate ca init --state {}`",
                    state.display(),
                    gateway::private_ca::ca::files::TRUSTED_ROOT,
                    state.display()
                ))
                .into());
            }
        }
        let (repo, keys) = self.location.resolve()?;
        let summary = tuf_repo::init_private(&repo, &keys, &config, now)
            .map_err(Error::from)
            .with_context(|| format!("creating the private TUF repository {}", repo.display()))?;
        let published = match &self.location.state {
            Some(state) => {
                let path = state.join(gateway::private_ca::ca::files::TRUSTED_ROOT);
                let targets = gateway::state::private_tuf_targets(state)?;
                let refs: Vec<(&str, &[u8])> = targets
                    .iter()
                    .map(|(n, b)| (n.as_str(), b.as_slice()))
                    .collect();
                Some(
                    tuf_repo::publish(&repo, &keys, &refs, now)
                        .map_err(Error::from)
                        .with_context(|| {
                            format!(
                                "publishing {} in the private TUF repository {}",
                                path.display(),
                                repo.display()
                            )
                        })?,
                )
            }
            None => None,
        };
        if self.json {
            let mut out = init_json(&summary, &config);
            if let Some(p) = &published {
                out["published"] = serde_json::json!({
                    "versions": p.versions,
                    "targets": p.targets.iter().map(target_json).collect::<Vec<_>>(),
                });
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_init(&summary, &config, published.as_ref());
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn init_json(s: &InitSummary, config: &PrivateRepoConfig) -> serde_json::Value {
    serde_json::json!({
        "repo": s.repo_dir.display().to_string(),
        "keys": s.keys_dir.display().to_string(),
        "rootVersion": 1,
        "rootSha256": s.root_sha256,
        "rootExpires": time(&s.root_expires),
        "keyIds": s.key_ids.iter().map(|(role, ids)| (role.to_string(), serde_json::json!(ids))).collect::<serde_json::Map<_, _>>(),
        "keyFiles": s.key_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "config": config,
    })
}

fn print_init(s: &InitSummary, config: &PrivateRepoConfig, published: Option<&PublishSummary>) {
    let e = &config.expiry;
    println!("Private TUF repository created: {}", s.repo_dir.display());
    println!(
        "  root:        1.root.json (and root.json), sha256:{}",
        s.root_sha256
    );
    println!("  root expires: {}", time(&s.root_expires));
    println!(
        "  expiry:      targets {}, snapshot {}, timestamp {} (from each signature)",
        tuf_repo::format_duration(e.targets),
        tuf_repo::format_duration(e.snapshot),
        tuf_repo::format_duration(e.timestamp)
    );
    println!(
        "  keys:        {} (config.json there)",
        s.keys_dir.display()
    );
    for file in &s.key_files {
        println!("    {}", file.display());
    }
    println!("The root key(s) (root-*.pem) are for offline use: move them to offline storage now;");
    println!("publish and refresh need only targets.pem, snapshot.pem and timestamp.pem.");
    match published {
        Some(p) => {
            for t in &p.targets {
                println!(
                    "  published:   {} sha256:{} ({} bytes)",
                    t.name, t.sha256, t.length
                );
            }
            println!(
                "Imports republish it; `airgate serve --state DIR` serves the repository at /tuf/ and keeps it fresh."
            );
        }
        None => println!(
            "Next: airgate tuf publish --repo {} --keys {} --target trusted_root.json=FILE",
            s.repo_dir.display(),
            s.keys_dir.display()
        ),
    }
}

/// `NAME=FILE`, or `FILE` (named by its file name).
fn target_arg(arg: &str) -> anyhow::Result<(String, PathBuf)> {
    if let Some((name, file)) = arg.split_once('=') {
        return Ok((name.to_owned(), PathBuf::from(file)));
    }
    let path = PathBuf::from(arg);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("--target {arg:?}: give NAME=FILE")))?
        .to_owned();
    Ok((name, path))
}

impl PublishArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let limit = usize::try_from(Limits::default().max_target_bytes).unwrap_or(usize::MAX);
        let mut contents = Vec::new();
        for arg in &self.target {
            let (name, path) = target_arg(arg)?;
            contents.push((name, files::read_limited(&path, limit)?));
        }
        let targets: Vec<(&str, &[u8])> = contents
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let summary = tuf_repo::publish(&self.repo, &self.keys, &targets, Utc::now())
            .map_err(Error::from)
            .with_context(|| {
                format!(
                    "publishing in the private TUF repository {}",
                    self.repo.display()
                )
            })?;
        report_publish("Published", &self.repo, &summary, self.json)
    }
}

impl RefreshArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let summary = tuf_repo::refresh(&self.repo, &self.keys, Utc::now())
            .map_err(Error::from)
            .with_context(|| {
                format!(
                    "refreshing the private TUF repository {}",
                    self.repo.display()
                )
            })?;
        report_publish("Refreshed", &self.repo, &summary, self.json)
    }
}

impl RotateRootArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let (repo, keys) = self.location.resolve()?;
        let rotation = tuf_repo::RootRotation {
            current_root_keys: self.current_root_keys,
            new_root_keys: self.new_root_keys,
            threshold: self.threshold,
            rotate_online_keys: self.rotate_online_keys,
        };
        let s = tuf_repo::rotate_root(&repo, &keys, &rotation, Utc::now())
            .map_err(Error::from)
            .with_context(|| {
                format!(
                    "rotating the root of the private TUF repository {}",
                    repo.display()
                )
            })?;
        if self.json {
            let out = serde_json::json!({
                "repo": repo.display().to_string(),
                "fromVersion": s.from_version,
                "toVersion": s.to_version,
                "rootSha256": s.root_sha256,
                "rootExpires": time(&s.root_expires),
                "keyIds": s.key_ids.iter().map(|(r, ids)| (r.to_string(), serde_json::json!(ids))).collect::<serde_json::Map<_, _>>(),
                "onlineKeysRotated": s.online_keys_rotated,
                "versions": s.published.versions,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "Rotated the root of the private TUF repository {}: version {} -> {}",
            repo.display(),
            s.from_version,
            s.to_version
        );
        println!("  {}.root.json sha256:{}", s.to_version, s.root_sha256);
        println!("  root expires:   {}", time(&s.root_expires));
        for (role, ids) in &s.key_ids {
            println!("  {role} keys: {}", ids.join(", "));
        }
        println!(
            "  online keys:    {}",
            if s.online_keys_rotated {
                "replaced (the old ones are no longer trusted)"
            } else {
                "kept"
            }
        );
        println!(
            "Clients that trust an earlier root follow the chain on their next refresh; keep the root key files offline."
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl NewKeyArgs {
    fn run(self) -> anyhow::Result<ExitCode> {
        let id = tuf_repo::generate_key_file(&self.out)
            .map_err(Error::from)
            .with_context(|| format!("writing a new TUF key to {}", self.out.display()))?;
        println!("{id}");
        eprintln!(
            "wrote {} (mode 0600): keep it offline; give it to `airgate tuf rotate-root --new-root-key`",
            self.out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn target_json(t: &PublishedTarget) -> serde_json::Value {
    serde_json::json!({ "name": t.name, "path": t.path, "length": t.length, "sha256": t.sha256 })
}

fn report_publish(
    verb: &str,
    repo: &Path,
    s: &PublishSummary,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let root_left = s.expires.root.signed_duration_since(Utc::now());
    if root_left < chrono::Duration::days(ROOT_EXPIRY_WARNING_DAYS) {
        eprintln!(
            "WARNING: the private root expires at {} ({} days left); clients will refuse the repository then",
            time(&s.expires.root),
            root_left.num_days()
        );
    }
    if json {
        let out = serde_json::json!({
            "repo": repo.display().to_string(),
            "versions": s.versions,
            "expires": expires_json(&s.expires),
            "resigned": s.resigned.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "published": s.published.iter().map(target_json).collect::<Vec<_>>(),
            "targets": s.targets.iter().map(target_json).collect::<Vec<_>>(),
            "files": s.files,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (role, at) = s.expires.earliest();
    let resigned: Vec<String> = s.resigned.iter().map(ToString::to_string).collect();
    println!("{verb}: private TUF repository {}", repo.display());
    println!(
        "  versions:        root {}, timestamp {}, snapshot {}, targets {}",
        s.versions.root, s.versions.timestamp, s.versions.snapshot, s.versions.targets
    );
    println!("  re-signed:       {}", resigned.join(", "));
    println!("  earliest expiry: {role} at {}", time(&at));
    for t in &s.published {
        println!(
            "  published:       {} sha256:{} ({} bytes)",
            t.name, t.sha256, t.length
        );
    }
    println!("  targets listed:  {}", s.targets.len());
    Ok(ExitCode::SUCCESS)
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
