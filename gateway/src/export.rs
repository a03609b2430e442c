//! Low side: build a signed, reproducible transfer medium from verified
//! artifacts and lockfile-pinned collectors, as a pipeline of named stages:
//!
//! 1. [`trust_root`]: the public trust root from a verified TUF snapshot;
//! 2. [`run_collectors`]: collectors checked against the lock and their
//!    signatures, then run; their outputs become candidates;
//! 3. `discover`: artifacts with their bundles beside them;
//! 4. [`judge_candidates`]: every bundle verified under the policy for the
//!    digests it claims, before any artifact is read (`judge::artifact`);
//! 5. [`plan_medium`]: the entries and the signed manifest, complete before
//!    the first byte is written (every digest is known: small entries are
//!    hashed in memory, artifacts carry the digest their bundle signs);
//! 6. [`write_medium`]: one pass, the manifest first, each artifact hashed
//!    while written and checked against its planned digest.
//!
//! An artifact whose bytes are not what its bundle signs fails the export, or
//! with `skip_rejected` is left out and the medium planned and written again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use serde::Deserialize;

use private_ca::Ed25519SigningKey;

use crate::bundle::{ArtifactDigest, BundleLimits, TrustedRoot, Verifier};
use crate::collector::{
    run_collector, verify_collector, CollectorConfig, CollectorError, CollectorRun,
};
use crate::crypto::{sha256, VerifyingKey};
use crate::escape::quoted;
use crate::files::{load_policy, load_policy_keys};
use crate::judge::{AcceptedBundle, ArtifactJudge, ArtifactRejection};
use crate::lock::{current_target, LockedCollector, Lockfile, MAX_LOCK_BYTES};
use crate::medium::manifest::{
    pack_digest, sign_chunk_index, sign_manifest, ArtifactRecord, ChunkIndex, ChunkRecord,
    CollectorRecord, EntryKind, ImageRecord, ManifestEntry, MediumPredicate, RejectedRecord,
    TufVersions,
};
use crate::medium::pack::{list_files, ChunkedWriter, MediumWriter, BLOCK};
use crate::medium::EntryName;
use crate::oci::carry::{carry, Carried, CarriedData, OCI_LAYOUT_FILE};
use crate::oci::{ImageJudge, LayoutDir, VerifiedImage};
use crate::policy::{Policy, TufRootSource};
use crate::{files, Error, Result};

pub use crate::medium::manifest::BUNDLE_SUFFIXES;

/// The export configuration file (`airgate.toml`); paths are relative to it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExportConfig {
    /// Exporter identity.
    pub exporter: Option<String>,
    /// Policy file.
    pub policy: Option<PathBuf>,
    /// Lockfile.
    pub lock: Option<PathBuf>,
    /// Artifact directory.
    pub artifacts: Option<PathBuf>,
    /// Collectors.
    #[serde(default)]
    pub collector: Vec<CollectorConfig>,
    /// Container images (OCI layouts).
    #[serde(default)]
    pub image: Vec<ImageConfig>,
}

/// Images to carry (`[[image]]`): an OCI layout, or a repository to pull
/// from a registry (into a layout first, see [`ImageConfig::pull`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageConfig {
    /// The layout directory (`oci-layout`, `index.json`, `blobs/`), as
    /// `skopeo copy … oci:DIR:TAG`, `oras cp --to-oci-layout` or `cosign
    /// save` write it. Set by the pull for a `pull` image.
    pub layout: Option<PathBuf>,
    /// A registry repository to pull (`registry.example:5000/org/app`);
    /// `airgate export` mirrors the tags into a layout, then judges it like
    /// any layout.
    pub pull: Option<String>,
    /// Pull over plain HTTP (a registry on a trusted network only).
    #[serde(default)]
    pub plain_http: bool,
    /// The repository its images are carried as (`org/app`; default for
    /// `pull`: its path); the policy's `images` patterns match it.
    #[serde(default)]
    pub repository: String,
    /// Tags to carry (default: every tagged image of the layout; required
    /// for `pull`).
    #[serde(default)]
    pub tags: Vec<String>,
}

impl ImageConfig {
    /// Checks one `[[image]]` table: a layout or a pull (with tags), a
    /// repository (from the pull's path by default) and tags in the
    /// distribution grammar.
    fn check(&mut self) -> Result<()> {
        let usage = |e: String| Error::Usage(format!("export configuration: [[image]] {e}"));
        match (&self.layout, &self.pull) {
            (Some(_), None) => {}
            (None, Some(pull)) => {
                let (_, path) = crate::oci::split_registry(pull).map_err(usage)?;
                if self.repository.is_empty() {
                    self.repository = path.to_string();
                }
                if self.tags.is_empty() {
                    return Err(usage(format!(
                        "pull = {}: list the tags to pull (tags = [\"v1\"])",
                        crate::escape::quoted(pull)
                    )));
                }
            }
            _ => {
                return Err(usage(
                    "give exactly one of layout = DIR or pull = REGISTRY/REPOSITORY".into(),
                ))
            }
        }
        crate::oci::check_repository(&self.repository).map_err(usage)?;
        let mut seen = std::collections::BTreeSet::new();
        for tag in &self.tags {
            crate::oci::check_tag(tag).map_err(usage)?;
            if !seen.insert(tag) {
                return Err(usage(format!(
                    "tag {} is listed twice",
                    crate::escape::quoted(tag)
                )));
            }
        }
        Ok(())
    }
}

impl ExportConfig {
    /// Parses `airgate.toml`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: ExportConfig = toml::from_str(text).map_err(|e| {
            Error::Usage(format!(
                "export configuration: {}",
                crate::escape::toml_error(text, &e)
            ))
        })?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.policy.as_mut().map(resolve);
        config.lock.as_mut().map(resolve);
        config.artifacts.as_mut().map(resolve);
        for image in &mut config.image {
            image.layout.as_mut().map(resolve);
            image.check()?;
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &mut config.collector {
            resolve(&mut c.path);
            if let Some(b) = c.bundle.as_mut() {
                resolve(b);
            }
            if !names.insert(c.name.clone()) {
                return Err(Error::Usage(format!(
                    "export configuration: collector {:?} is listed twice",
                    c.name
                )));
            }
            crate::collector::check_secret_names(c).map_err(|e| Error::Usage(e.to_string()))?;
        }
        Ok(config)
    }
}

/// Everything an export needs.
pub struct ExportRequest<'a> {
    /// The policy file.
    pub policy_path: PathBuf,
    /// Directory of artifacts with their bundles beside them.
    pub artifacts_dir: Option<PathBuf>,
    /// Collectors to run.
    pub collectors: Vec<CollectorConfig>,
    /// Container images to carry.
    pub images: Vec<ImageConfig>,
    /// The lockfile (required when collectors are configured).
    pub lock_path: Option<PathBuf>,
    /// Refuse any difference between configuration and lock.
    pub frozen: bool,
    /// Exporter identity recorded in the manifest.
    pub exporter: String,
    /// The exporter's signing key.
    pub key: &'a Ed25519SigningKey,
    /// The medium to write.
    pub out: PathBuf,
    /// Split into chunks of at most this many bytes.
    pub split: Option<u64>,
    /// Leave rejected artifacts out instead of failing.
    pub skip_rejected: bool,
    /// fsync the medium before reporting success (for removable media). Without it
    /// the OS writes it back later; a torn medium is refused by the importer anyway.
    pub sync: bool,
    /// A TUF snapshot directory to use instead of fetching one.
    pub tuf_snapshot: Option<PathBuf>,
    /// A TUF mirror overriding the policy's.
    pub tuf_mirror: Option<String>,
    /// The export time (the real clock: signed into the manifest).
    pub now: DateTime<Utc>,
    /// The time TUF expiry, bundles and collectors are evaluated at: `now`,
    /// or a past time (`--danger-as-of`), which never changes what is signed.
    pub verify_at: DateTime<Utc>,
    /// Environment lookup for collector secrets.
    pub env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Progress callback: (bytes done, bytes total).
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

/// A collector that ran.
#[derive(Debug, Clone)]
pub struct CollectorOutcome {
    /// What the manifest records.
    pub record: CollectorRecord,
    /// Its (redacted) output.
    pub run: CollectorRun,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// Files written (the medium, or its chunks and chunk index).
    pub outputs: Vec<PathBuf>,
    /// Medium size in bytes.
    pub medium_bytes: u64,
    /// Number of entries in the medium.
    pub entries: usize,
    /// Accepted artifacts.
    pub accepted: Vec<ArtifactRecord>,
    /// Accepted images.
    pub images: Vec<ImageRecord>,
    /// Rejected artifacts.
    pub rejected: Vec<RejectedRecord>,
    /// Collectors that ran.
    pub collectors: Vec<CollectorOutcome>,
    /// The TUF snapshot carried.
    pub tuf: TufVersions,
    /// Export time.
    pub export_time: String,
    /// The pack digest.
    pub pack_digest: String,
}

/// An export that failed because artifacts were rejected (and not skipped).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} artifact(s) rejected: {}", .rejected.len(), .rejected.iter().map(|r| format!("{} [{}]: {}", r.name, r.check, r.reason)).collect::<Vec<_>>().join("; "))]
pub struct ExportRejected {
    /// The rejections.
    pub rejected: Vec<RejectedRecord>,
    /// Artifacts that passed.
    pub accepted: Vec<ArtifactRecord>,
}

struct Candidate {
    name: EntryName,
    path: PathBuf,
    size: u64,
    origin: String,
    bundle_entry: EntryName,
    bundle_bytes: Vec<u8>,
    bundle_is_array: bool,
}

fn reject(name: &str, check: &str, reason: impl Into<String>) -> RejectedRecord {
    RejectedRecord {
        name: name.to_string(),
        check: check.to_string(),
        reason: reason.into(),
    }
}

/// Finds artifacts and their bundles under `root` (names prefixed with `prefix/`).
fn discover(
    root: &Path,
    prefix: Option<&str>,
    origin: &str,
    out: &mut Vec<Candidate>,
    problems: &mut Vec<RejectedRecord>,
) -> Result<()> {
    let listed = list_files(root).map_err(|e| Error::io(root, e))?;
    let mut bundles: BTreeMap<String, Vec<(String, PathBuf, u64)>> = BTreeMap::new();
    let mut artifacts = Vec::new();
    for (rel, path, size) in listed {
        let full = match prefix {
            Some(p) => format!("{p}/{rel}"),
            None => rel.clone(),
        };
        match BUNDLE_SUFFIXES.iter().find(|s| full.ends_with(*s)) {
            Some(suffix) => bundles
                .entry(full[..full.len() - suffix.len()].to_string())
                .or_default()
                .push((suffix.to_string(), path, size)),
            None => artifacts.push((full, path, size)),
        }
    }
    let artifact_names: std::collections::BTreeSet<String> =
        artifacts.iter().map(|a| a.0.clone()).collect();
    for (orphan, files) in &bundles {
        if !artifact_names.contains(orphan) {
            for (suffix, _, _) in files {
                problems.push(reject(
                    &format!("{orphan}{suffix}"),
                    "bundle.orphan",
                    "bundle without its artifact",
                ));
            }
        }
    }
    for (full, path, size) in artifacts {
        let name = match EntryName::parse(&full).and_then(|n| n.under("artifacts").map(|_| n)) {
            Ok(n) => n,
            Err(e) => {
                problems.push(reject(
                    &full.escape_debug().to_string(),
                    "name",
                    format!("unsafe artifact name: {e}"),
                ));
                continue;
            }
        };
        let files = bundles.get(&full).cloned().unwrap_or_default();
        let (suffix, bundle_path, bundle_size) = match files.as_slice() {
            [] => {
                problems.push(reject(&full, "bundle.missing", format!(
                    "no bundle beside it (expected {full}.sigstore.json, {full}.sigstore or {full}.sigs)"
                )));
                continue;
            }
            [one] => one.clone(),
            _ => {
                problems.push(reject(
                    &full,
                    "bundle.ambiguous",
                    "more than one bundle file beside it",
                ));
                continue;
            }
        };
        let limit =
            BundleLimits::default().max_bundle_bytes as u64 * if suffix == ".sigs" { 4 } else { 1 };
        if bundle_size > limit {
            problems.push(reject(
                &full,
                "bundle.size",
                format!("bundle is {bundle_size} bytes, over the limit"),
            ));
            continue;
        }
        let bundle_bytes = match files::read_limited(&bundle_path, limit as usize) {
            Ok(b) => b,
            Err(e) => {
                problems.push(reject(&full, "io", e.to_string()));
                continue;
            }
        };
        let bundle_entry = match EntryName::parse(&format!("bundles/{full}{suffix}")) {
            Ok(n) => n,
            Err(e) => {
                problems.push(reject(&full, "name", format!("bundle name: {e}")));
                continue;
            }
        };
        out.push(Candidate {
            name,
            path,
            size,
            origin: origin.to_string(),
            bundle_entry,
            bundle_bytes,
            bundle_is_array: suffix == ".sigs",
        });
    }
    Ok(())
}

/// Everything an export needs from the policy.
struct LowSide {
    policy: Policy,
    policy_bytes: Vec<u8>,
    policy_keys: BTreeMap<PathBuf, VerifyingKey>,
    pinned_root: Vec<u8>,
    mirror: Option<String>,
}

fn load_low_side(req: &ExportRequest<'_>) -> Result<LowSide> {
    let (policy, policy_bytes) = load_policy(&req.policy_path)?;
    let policy_keys = load_policy_keys(&policy)?;
    let trust = policy.trust.clone().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the low side's policy needs a [trust] section",
            req.policy_path.display()
        ))
    })?;
    let pinned_root = match &trust.tuf_root {
        TufRootSource::Production => tuf_repo::PRODUCTION_ROOT.to_vec(),
        TufRootSource::File(p) => read_pinned_root(p, &req.policy_path)?,
    };
    Ok(LowSide {
        policy,
        policy_bytes,
        policy_keys,
        pinned_root,
        mirror: req.tuf_mirror.clone().or(trust.tuf_mirror),
    })
}

/// Reads the policy's `tuf-root` file; a missing one is named with the
/// field and the keyword it may have meant.
fn read_pinned_root(path: &Path, policy_path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        let given = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        return Err(Error::Usage(format!(
            "{}: [trust] tuf-root = {}: no such file ({}); give the keyword \"production\" (the embedded Sigstore production root) or the path of a TUF root.json",
            policy_path.display(),
            crate::escape::quoted(&given),
            path.display()
        )));
    }
    files::read_limited(path, 1 << 20)
}

/// The verified public trust root and the snapshot it came from.
pub struct TrustRoot {
    /// The verified snapshot.
    pub snapshot: tuf_repo::VerifiedSnapshot,
    /// Where its files are.
    pub dir: PathBuf,
    /// A verifier over its trusted root.
    pub verifier: Verifier,
}

/// Stage 1: a TUF snapshot (given, or fetched into `work`), verified from the
/// pinned root as of the export time.
pub fn trust_root(
    req: &ExportRequest<'_>,
    pinned_root: &[u8],
    mirror: Option<&str>,
    work: &Path,
) -> Result<TrustRoot> {
    let dir = match &req.tuf_snapshot {
        Some(dir) => dir.clone(),
        None => {
            let mirror = mirror.ok_or_else(|| {
                Error::Usage("no TUF mirror: set [trust] tuf-mirror or pass --tuf-snapshot".into())
            })?;
            let url = tuf_repo::Url::parse(mirror)
                .map_err(|e| Error::Usage(format!("TUF mirror {}: {e}", quoted(mirror))))?;
            let dir = work.join("tuf");
            tuf_repo::snapshot(
                &url,
                pinned_root,
                &dir,
                req.verify_at,
                &tuf_repo::Limits::default(),
            )?;
            dir
        }
    };
    let snapshot = tuf_repo::verify_snapshot(
        pinned_root,
        &dir,
        req.verify_at,
        None,
        &tuf_repo::Limits::default(),
    )?;
    let root =
        TrustedRoot::from_json(&snapshot.trusted_root_json).map_err(|source| Error::TrustRoot {
            location: "TUF snapshot trusted_root.json".into(),
            source,
        })?;
    Ok(TrustRoot {
        snapshot,
        dir,
        verifier: Verifier::new(root),
    })
}

/// What the collectors contributed.
#[derive(Default)]
struct Collected {
    outcomes: Vec<CollectorOutcome>,
    binaries: Vec<(EntryName, Vec<u8>)>,
    lock_bytes: Option<Vec<u8>>,
}

/// Under `--frozen`, every field of the configuration must equal the lock:
/// a changed, added or removed field is refused before anything runs.
fn frozen_check(config: &CollectorConfig, locked: &LockedCollector) -> Result<()> {
    let fields = [
        (
            "version",
            config.version.as_deref(),
            locked.version.as_str(),
        ),
        ("source", config.source.as_deref(), locked.source.as_str()),
        (
            "signer-identity",
            config.signer_identity.as_deref(),
            locked.signer_identity.as_str(),
        ),
        (
            "signer-issuer",
            config.signer_issuer.as_deref(),
            locked.signer_issuer.as_str(),
        ),
    ];
    for (field, configured, locked_value) in fields {
        if configured != Some(locked_value) {
            return Err(CollectorError::LockMismatch {
                name: config.name.clone(),
                field,
                configured: configured.map(quoted).unwrap_or_else(|| "(removed)".into()),
                locked: quoted(locked_value),
            }
            .into());
        }
    }
    let target = current_target();
    if let (Some(path), Some(platform)) = (&config.bundle, locked.for_target(&target)) {
        let bundle = files::read_limited(path, BundleLimits::default().max_bundle_bytes)?;
        if platform.bundle_json().as_deref() != Some(bundle.as_slice()) {
            return Err(CollectorError::LockMismatch {
                name: config.name.clone(),
                field: "bundle",
                configured: path.display().to_string(),
                locked: format!("the bundle pinned for {target}"),
            }
            .into());
        }
    } else if config.bundle.is_none() {
        return Err(CollectorError::LockMismatch {
            name: config.name.clone(),
            field: "bundle",
            configured: "(removed)".into(),
            locked: "a pinned bundle".into(),
        }
        .into());
    }
    Ok(())
}

/// Stage 2: each configured collector checked against the lock (and under
/// `--frozen` the configuration against the lock), its signature verified,
/// then run; what it writes becomes candidates.
fn run_collectors(
    req: &ExportRequest<'_>,
    verifier: &Verifier,
    work: &Path,
    found: &mut Found,
) -> Result<Collected> {
    let mut collected = Collected::default();
    if req.collectors.is_empty() && req.lock_path.is_none() {
        return Ok(collected);
    }
    let lock_path = req.lock_path.clone().ok_or_else(|| {
        Error::Usage("collectors are configured but no airgate.lock is given".into())
    })?;
    let text = files::read_limited(&lock_path, MAX_LOCK_BYTES)?;
    let lock = Lockfile::parse(&String::from_utf8_lossy(&text))
        .map_err(|e| Error::Usage(format!("{}: {e}", lock_path.display())))?;
    let target = current_target();
    for config in &req.collectors {
        let locked = lock
            .get(&config.name)
            .ok_or_else(|| CollectorError::NotLocked(config.name.clone()))?;
        if req.frozen {
            frozen_check(config, locked)?;
        }
        let platform = locked
            .for_target(&target)
            .ok_or_else(|| CollectorError::NoPlatform {
                name: config.name.clone(),
                target: target.clone(),
            })?;
        let bytes = files::read_limited(&config.path, crate::collector::MAX_BINARY_BYTES as usize)?;
        let verified = verify_collector(
            &config.name,
            bytes,
            locked,
            platform,
            verifier,
            req.verify_at,
        )?;
        let output = work.join(format!("collector-{}", config.name));
        std::fs::create_dir_all(&output).map_err(|e| Error::io(&output, e))?;
        let run = run_collector(&verified, config, &output, req.env)?;
        discover(
            &output,
            Some(&config.name),
            &format!("collector:{}", config.name),
            &mut found.candidates,
            &mut found.problems,
        )?;
        let entry = EntryName::parse(&format!(
            "collectors/{}/{}/{}",
            config.name, verified.target, config.name
        ))
        .map_err(|e| Error::Usage(format!("collector {}: {e}", config.name)))?;
        collected.outcomes.push(CollectorOutcome {
            record: CollectorRecord {
                name: config.name.clone(),
                version: verified.version.clone(),
                platform: verified.target.clone(),
                entry: entry.as_str().to_string(),
                sha256: verified.sha256.clone(),
            },
            run,
        });
        collected.binaries.push((entry, verified.bytes.clone()));
    }
    collected.lock_bytes = Some(text);
    Ok(collected)
}

/// Candidates found on disk, and what could not become one.
#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    problems: Vec<RejectedRecord>,
}

impl Found {
    /// Sorted by name; a name found twice is a problem, not two candidates.
    fn dedupe(&mut self) {
        self.candidates.sort_by(|a, b| a.name.cmp(&b.name));
        let mut seen = std::collections::BTreeSet::new();
        let problems = &mut self.problems;
        self.candidates.retain(|c| {
            let first = seen.insert(c.name.clone());
            if !first {
                problems.push(reject(
                    c.name.as_str(),
                    "duplicate",
                    "two artifacts have this name",
                ));
            }
            first
        });
    }
}

/// An artifact that passed, with the digest it will be packed under.
struct Judged {
    candidate: Candidate,
    digest: ArtifactDigest,
    accepted: AcceptedBundle,
}

/// Stage 4: every candidate's bundle(s) verified under the policy for the
/// digests they claim, in parallel, before any artifact is read. When the
/// bundles verify for several digests (a DSSE statement with several
/// subjects), the file is hashed now to pick the one it has.
fn judge_candidates(
    judge: &ArtifactJudge<'_>,
    candidates: Vec<Candidate>,
) -> (Vec<Judged>, Vec<RejectedRecord>) {
    let results: Vec<std::result::Result<Judged, RejectedRecord>> = candidates
        .into_par_iter()
        .map(|c| {
            let name = c.name.as_str().to_string();
            let reject = |r: ArtifactRejection| r.record(&name);
            let options = judge
                .judge_claimed(&c.name, &c.bundle_bytes, c.bundle_is_array)
                .map_err(reject)?;
            let (digest, accepted) = match options.as_slice() {
                [(d, a)] => (*d, a.clone()),
                _ => {
                    let actual = files::hash_file(&c.path).map_err(|e| {
                        reject(ArtifactRejection::Discovery {
                            check: "io",
                            reason: e.to_string(),
                        })
                    })?;
                    let (d, a) = options
                        .iter()
                        .find(|(d, _)| *d == actual)
                        .ok_or_else(|| reject(not_signed(&options, &actual)))?;
                    (*d, a.clone())
                }
            };
            Ok(Judged {
                candidate: c,
                digest,
                accepted,
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    for r in results {
        match r {
            Ok(j) => accepted.push(j),
            Err(e) => rejected.push(e),
        }
    }
    (accepted, rejected)
}

fn not_signed(
    options: &[(ArtifactDigest, AcceptedBundle)],
    found: &ArtifactDigest,
) -> ArtifactRejection {
    ArtifactRejection::DigestNotSigned {
        signed: options
            .iter()
            .map(|(d, _)| d.to_hex())
            .collect::<Vec<_>>()
            .join(", "),
        found: found.to_hex(),
    }
}

/// Where an entry's bytes come from.
enum Source {
    File(PathBuf, u64),
    Bytes(Vec<u8>),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(_, n) => *n,
            Source::Bytes(b) => b.len() as u64,
        }
    }
}

/// The medium, fully planned: entries with their digests and the signed
/// manifest that lists them.
struct MediumPlan {
    manifest: Vec<u8>,
    entries: Vec<ManifestEntry>,
    sources: Vec<Source>,
    predicate: MediumPredicate,
}

fn entry(name: &EntryName, kind: EntryKind, sha256: String, size: u64) -> ManifestEntry {
    ManifestEntry {
        name: name.as_str().to_string(),
        sha256,
        size,
        kind,
    }
}

/// Stage 5: the entries (sorted by name) with every digest, and the manifest
/// signed over them.
fn plan_medium(
    req: &ExportRequest<'_>,
    low: &LowSide,
    tuf: &TrustRoot,
    collected: &Collected,
    judged: &[Judged],
    carried: &Carried,
    rejected: &[RejectedRecord],
) -> Result<MediumPlan> {
    let mut planned: Vec<(ManifestEntry, Source)> = Vec::new();
    let name_of = |text: &str| EntryName::parse(text).map_err(|e| Error::Usage(e.to_string()));
    let bytes_entry = |name: EntryName, kind: EntryKind, data: Vec<u8>| {
        (
            entry(&name, kind, hex::encode(sha256(&data)), data.len() as u64),
            Source::Bytes(data),
        )
    };
    for j in judged {
        let c = &j.candidate;
        let artifact = c
            .name
            .under("artifacts")
            .map_err(|e| Error::Usage(e.to_string()))?;
        planned.push((
            entry(&artifact, EntryKind::Artifact, j.digest.to_hex(), c.size),
            Source::File(c.path.clone(), c.size),
        ));
        planned.push(bytes_entry(
            c.bundle_entry.clone(),
            EntryKind::Bundle,
            c.bundle_bytes.clone(),
        ));
    }
    for (name, bytes) in &collected.binaries {
        planned.push(bytes_entry(
            name.clone(),
            EntryKind::Collector,
            bytes.clone(),
        ));
    }
    if let Some(lock) = &collected.lock_bytes {
        planned.push(bytes_entry(
            name_of("airgate.lock")?,
            EntryKind::Lock,
            lock.clone(),
        ));
    }
    if !carried.records.is_empty() {
        planned.push(bytes_entry(
            name_of("oci/oci-layout")?,
            EntryKind::Image,
            OCI_LAYOUT_FILE.to_vec(),
        ));
        planned.push(bytes_entry(
            name_of("oci/index.json")?,
            EntryKind::Image,
            carried.index_json.clone(),
        ));
        for blob in &carried.blobs {
            let name = name_of(&format!("oci/blobs/sha256/{}", blob.sha256_hex))?;
            let source = match &blob.data {
                CarriedData::Bytes(b) => Source::Bytes(b.clone()),
                CarriedData::File(path) => Source::File(path.clone(), blob.size),
            };
            planned.push((
                entry(&name, EntryKind::Image, blob.sha256_hex.clone(), blob.size),
                source,
            ));
        }
    }
    planned.push(bytes_entry(
        name_of("policy.toml")?,
        EntryKind::Policy,
        low.policy_bytes.clone(),
    ));
    for (rel, path, _) in list_files(&tuf.dir).map_err(|e| Error::io(&tuf.dir, e))? {
        let name = EntryName::parse(&format!("tuf/{rel}"))
            .map_err(|e| Error::Usage(format!("TUF snapshot file {}: {e}", quoted(&rel))))?;
        let data = files::read_limited(
            &path,
            crate::medium::unpack::UnpackLimits::default().max_small_entry_bytes as usize,
        )?;
        planned.push(bytes_entry(name, EntryKind::Tuf, data));
    }
    planned.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let (entries, sources): (Vec<ManifestEntry>, Vec<Source>) = planned.into_iter().unzip();
    let v = &tuf.snapshot.versions;
    let predicate = MediumPredicate {
        pack_digest: pack_digest(&entries),
        export_time: req.now.to_rfc3339_opts(SecondsFormat::Secs, true),
        exporter: req.exporter.clone(),
        exporter_key_id: hex::encode(req.key.key_id()),
        tool_version: format!("airgate {}", env!("CARGO_PKG_VERSION")),
        tuf: TufVersions {
            root: v.root,
            timestamp: v.timestamp,
            snapshot: v.snapshot,
            targets: v.targets,
        },
        trusted_root_sha256: hex::encode(sha256(&tuf.snapshot.trusted_root_json)),
        entries: entries.clone(),
        artifacts: judged.iter().map(record_of).collect(),
        rejected: rejected.to_vec(),
        collectors: collected
            .outcomes
            .iter()
            .map(|c| c.record.clone())
            .collect(),
        images: carried.records.clone(),
    };
    let manifest = sign_manifest(&predicate, &req.key.key_id(), &|m| req.key.sign(m))
        .map_err(|e| Error::internal("signing the manifest", e))?;
    Ok(MediumPlan {
        manifest,
        entries,
        sources,
        predicate,
    })
}

fn record_of(j: &Judged) -> ArtifactRecord {
    ArtifactRecord {
        name: j.candidate.name.as_str().to_string(),
        bundle: j.candidate.bundle_entry.as_str().to_string(),
        sha256: j.digest.to_hex(),
        size: j.candidate.size,
        origin: j.candidate.origin.clone(),
        upstream: j.accepted.upstream(),
    }
}

/// Where the medium goes: one file, or chunks.
enum Sink {
    File(BufWriter<File>, tempfile::NamedTempFile),
    Chunks(Box<BufWriter<ChunkedWriter>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(w, _) => w.write(buf),
            Sink::Chunks(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(w, _) => w.flush(),
            Sink::Chunks(w) => w.flush(),
        }
    }
}

fn open_sink(req: &ExportRequest<'_>, out_dir: &Path) -> Result<Sink> {
    match req.split {
        None => {
            let staged = tempfile::Builder::new()
                .prefix(".airgate-medium-")
                .tempfile_in(out_dir)
                .map_err(|e| Error::io(out_dir, e))?;
            let file = staged.reopen().map_err(|e| Error::io(staged.path(), e))?;
            Ok(Sink::File(BufWriter::with_capacity(BLOCK, file), staged))
        }
        Some(chunk_size) => {
            let base = out_base(req)?;
            Ok(Sink::Chunks(Box::new(BufWriter::with_capacity(
                BLOCK,
                ChunkedWriter::new(out_dir, &base, chunk_size),
            ))))
        }
    }
}

fn out_base(req: &ExportRequest<'_>) -> Result<String> {
    req.out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Usage("--out needs a file name".into()))
}

/// Stage 6: one pass, the manifest first; every artifact hashed while it is
/// written. Returns the sink and its size, or the artifacts whose bytes are
/// not what their bundles sign (nothing is published then).
fn write_medium(
    req: &ExportRequest<'_>,
    plan: &MediumPlan,
    out_dir: &Path,
) -> Result<std::result::Result<(Sink, u64), Vec<String>>> {
    let sink = open_sink(req, out_dir)?;
    let io = |e| Error::io(&req.out, e);
    let mut writer = MediumWriter::new(sink, &plan.manifest, &plan.entries).map_err(io)?;
    let total: u64 = plan.sources.iter().map(Source::len).sum();
    let mut done = 0u64;
    let mut mismatched = Vec::new();
    for (e, source) in plan.entries.iter().zip(&plan.sources) {
        let name = EntryName::parse(&e.name)
            .map_err(|err| Error::internal("naming a planned entry", err))?;
        let digest = match source {
            Source::File(path, _) => {
                let file = File::open(path).map_err(|err| Error::io(path, err))?;
                let base = done;
                let report = |n: u64| (req.progress)(base + n, total);
                let mut reader = crate::progress::ProgressReader::new(file, &report);
                writer
                    .add(&name, &mut reader)
                    .map_err(|err| Error::io(path, err))?
            }
            Source::Bytes(bytes) => writer.add(&name, &mut &bytes[..]).map_err(io)?,
        };
        if hex::encode(digest) != e.sha256 {
            mismatched.push(e.name.clone());
        }
        done += e.size;
        (req.progress)(done, total);
    }
    let (sink, size) = writer.finish().map_err(io)?;
    if mismatched.is_empty() {
        Ok(Ok((sink, size)))
    } else {
        Ok(Err(mismatched))
    }
}

/// Publishes the written medium atomically: the file renamed into place, or
/// the chunks and then their signed index.
fn publish(req: &ExportRequest<'_>, sink: Sink, size: u64, out_dir: &Path) -> Result<Vec<PathBuf>> {
    match sink {
        Sink::File(w, staged) => {
            let file = w
                .into_inner()
                .map_err(|e| Error::io(staged.path(), e.into_error()))?;
            if req.sync {
                file.sync_all().map_err(|e| Error::io(staged.path(), e))?;
            }
            drop(file);
            staged
                .persist(&req.out)
                .map_err(|e| Error::io(&req.out, e.error))?;
            Ok(vec![req.out.clone()])
        }
        Sink::Chunks(w) => {
            let chunker = w
                .into_inner()
                .map_err(|e| Error::io(out_dir, e.into_error()))?;
            let chunks = chunker.finish().map_err(|e| Error::io(out_dir, e))?;
            let index = ChunkIndex {
                medium_size: size,
                chunks: chunks
                    .iter()
                    .map(|c| ChunkRecord {
                        name: c.name.clone(),
                        sha256: hex::encode(c.sha256),
                        size: c.size,
                    })
                    .collect(),
            };
            let index_bytes = sign_chunk_index(&index, &req.key.key_id(), &|m| req.key.sign(m))
                .map_err(|e| Error::internal("signing the chunk index", e))?;
            let mut outputs = Vec::new();
            for chunk in chunks {
                let path = out_dir.join(&chunk.name);
                chunk
                    .file
                    .persist(&path)
                    .map_err(|e| Error::io(&path, e.error))?;
                outputs.push(path);
            }
            let index_path = out_dir.join(format!("{}.chunks.json", out_base(req)?));
            files::write_atomic(&index_path, &index_bytes, None)?;
            outputs.push(index_path);
            Ok(outputs)
        }
    }
}

/// Runs an export.
pub fn export(req: &ExportRequest<'_>) -> Result<ExportReport> {
    let low = load_low_side(req)?;
    let out_dir = req
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let work = tempfile::Builder::new()
        .prefix(".airgate-export-")
        .tempdir_in(&out_dir)
        .map_err(|e| Error::io(&out_dir, e))?;
    let tuf = trust_root(req, &low.pinned_root, low.mirror.as_deref(), work.path())?;
    let mut found = Found::default();
    let collected = run_collectors(req, &tuf.verifier, work.path(), &mut found)?;
    if let Some(dir) = &req.artifacts_dir {
        discover(
            dir,
            None,
            "directory",
            &mut found.candidates,
            &mut found.problems,
        )?;
    }
    found.dedupe();
    if found.candidates.is_empty() && found.problems.is_empty() && req.images.is_empty() {
        return Err(Error::Usage(
            "nothing to export: no artifacts found, no collector produced any and no image is configured".into(),
        ));
    }
    let judge = ArtifactJudge {
        verifier: &tuf.verifier,
        policy: &low.policy,
        policy_keys: &low.policy_keys,
        now: req.verify_at,
    };
    let (mut judged, mut rejected) =
        judge_candidates(&judge, std::mem::take(&mut found.candidates));
    rejected.append(&mut found.problems);
    let layouts = open_layouts(&req.images)?;
    let (mut images, mut image_problems) = judge_images(&judge, &req.images, &layouts);
    rejected.append(&mut image_problems);
    loop {
        rejected.sort_by(|a, b| a.name.cmp(&b.name));
        if (!rejected.is_empty() && !req.skip_rejected) || (judged.is_empty() && images.is_empty())
        {
            return Err(Error::ExportRejected(ExportRejected {
                rejected,
                accepted: judged.iter().map(record_of).collect(),
            }));
        }
        let with_layouts: Vec<(VerifiedImage, &LayoutDir)> = images
            .iter()
            .map(|(i, l)| (i.clone(), &layouts[*l]))
            .collect();
        let carried = carry(&with_layouts);
        let plan = plan_medium(req, &low, &tuf, &collected, &judged, &carried, &rejected)?;
        match write_medium(req, &plan, &out_dir)? {
            Ok((sink, size)) => {
                let outputs = publish(req, sink, size, &out_dir)?;
                return Ok(report(plan, outputs, size, collected));
            }
            Err(mismatched) => {
                // Bytes that are not what their bundles sign: rejected; the
                // medium is planned again without them (or the export fails).
                drop_tampered_images(&mut images, &carried, &mismatched, &mut rejected);
                judged.retain(|j| {
                    let entry = format!("artifacts/{}", j.candidate.name.as_str());
                    if mismatched.contains(&entry) {
                        rejected.push(
                            ArtifactRejection::DigestNotSigned {
                                signed: j.digest.to_hex(),
                                found: "other bytes (the file differs from what its bundle signs, or changed while read)".into(),
                            }
                            .record(j.candidate.name.as_str()),
                        );
                        false
                    } else {
                        true
                    }
                });
            }
        }
    }
}

/// The configured layouts, opened (a missing or broken one is a usage
/// error: the configuration names it).
fn open_layouts(images: &[ImageConfig]) -> Result<Vec<LayoutDir>> {
    images
        .iter()
        .map(|c| {
            let layout = c.layout.as_ref().ok_or_else(|| {
                Error::Usage(format!(
                    "[[image]] {}: not pulled into a layout yet (airgate export pulls it)",
                    c.repository
                ))
            })?;
            LayoutDir::open(layout, false)
                .map_err(|e| Error::Usage(format!("[[image]] layout {}: {e}", layout.display())))
        })
        .collect()
}

/// The rejection name of an image.
fn image_name(reference: &str) -> String {
    format!("image {reference}")
}

/// Stage 4b: every configured image's closure and signatures under the
/// policy (sizes checked now; digests as the layers are written).
fn judge_images(
    judge: &ArtifactJudge<'_>,
    configs: &[ImageConfig],
    layouts: &[LayoutDir],
) -> (Vec<(VerifiedImage, usize)>, Vec<RejectedRecord>) {
    let images = ImageJudge { artifacts: judge };
    let mut accepted: Vec<(VerifiedImage, usize)> = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, (config, layout)) in configs.iter().zip(layouts).enumerate() {
        let index = match layout.index() {
            Ok(index) => index,
            Err(e) => {
                rejected.push(reject(
                    &image_name(&config.repository),
                    e.check(),
                    e.to_string(),
                ));
                continue;
            }
        };
        let tagged = crate::oci::judge::images(&index);
        for want in &config.tags {
            if !tagged
                .iter()
                .any(|t| t.tag.as_deref() == Some(want.as_str()))
            {
                rejected.push(reject(
                    &image_name(&format!("{}:{want}", config.repository)),
                    "oci.tag-missing",
                    format!(
                        "{} has no image tagged {}",
                        layout.root().display(),
                        quoted(want)
                    ),
                ));
            }
        }
        for t in tagged {
            let Some(tag) = t.tag.clone() else { continue };
            if !config.tags.is_empty() && !config.tags.contains(&tag) {
                continue;
            }
            let reference = format!("{}:{tag}", config.repository);
            if let Err(e) = crate::oci::check_tag(&tag) {
                rejected.push(reject(&image_name(&reference), "oci.format", e));
                continue;
            }
            if !seen.insert(reference.clone()) {
                rejected.push(reject(
                    &image_name(&reference),
                    "duplicate",
                    "two images have this reference",
                ));
                continue;
            }
            match images.judge(layout, &index, &config.repository, &t) {
                Ok(v) => accepted.push((v, i)),
                Err(r) => rejected.push(reject(&image_name(&reference), &r.check(), r.to_string())),
            }
        }
    }
    (accepted, rejected)
}

/// Images with a blob whose bytes are not its digest: rejected and left out.
fn drop_tampered_images(
    images: &mut Vec<(VerifiedImage, usize)>,
    carried: &Carried,
    mismatched: &[String],
    rejected: &mut Vec<RejectedRecord>,
) {
    let mut bad: BTreeMap<String, String> = BTreeMap::new();
    for blob in &carried.blobs {
        if mismatched.contains(&format!("oci/blobs/sha256/{}", blob.sha256_hex)) {
            for reference in &blob.used_by {
                bad.entry(reference.clone())
                    .or_insert_with(|| blob.sha256_hex.clone());
            }
        }
    }
    images.retain(|(image, _)| {
        let reference = format!("{}:{}", image.repository, image.tag.as_deref().unwrap_or_default());
        match bad.get(&reference) {
            None => true,
            Some(hex) => {
                rejected.push(reject(
                    &image_name(&reference),
                    "oci.blob-digest",
                    format!("blob sha256:{hex} does not hash to its digest (tampered, or changed while read)"),
                ));
                false
            }
        }
    });
}

fn report(
    plan: MediumPlan,
    outputs: Vec<PathBuf>,
    size: u64,
    collected: Collected,
) -> ExportReport {
    ExportReport {
        outputs,
        medium_bytes: size,
        entries: plan.entries.len() + 1,
        accepted: plan.predicate.artifacts,
        images: plan.predicate.images,
        rejected: plan.predicate.rejected,
        collectors: collected.outcomes,
        tuf: plan.predicate.tuf,
        export_time: plan.predicate.export_time,
        pack_digest: plan.predicate.pack_digest,
    }
}

/// Reads an exporter key file.
pub fn load_exporter_key(path: &Path) -> Result<Ed25519SigningKey> {
    Ed25519SigningKey::load(path, "exporter").map_err(crate::Error::ExportKey)
}
