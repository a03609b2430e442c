//! Low side: build a signed, reproducible transfer medium from verified
//! artifacts and lockfile-pinned collectors.
//!
//! Each artifact is read exactly once: streamed into the tar while hashed.
//! Bundles are verified against those digests after packing (in parallel); if
//! any artifact is rejected the export fails and nothing is left behind, or,
//! with `skip_rejected`, the medium is rewritten without them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use serde::Deserialize;

use private_ca::Ed25519SigningKey;

use crate::bundle::{
    ArtifactDigest, BundleFormatError, BundleLimits, BundleRejection, ParsedBundle, SignerPolicy,
    TrustedRoot, VerifiedBundle, VerifiedSigner, Verifier,
};
use crate::collector::{
    run_collector, verify_collector, CollectorConfig, CollectorError, CollectorRun,
};
use crate::crypto::{sha256, VerifyingKey};
use crate::lock::{current_target, Lockfile, MAX_LOCK_BYTES};
use crate::medium::manifest::{
    pack_digest, sign_chunk_index, sign_manifest, ArtifactRecord, ChunkIndex, ChunkRecord,
    CollectorRecord, EntryKind, ManifestEntry, MediumPredicate, RejectedRecord, TufVersions,
    UpstreamSigner,
};
use crate::medium::pack::{list_files, ChunkedWriter, MediumWriter, BLOCK};
use crate::medium::EntryName;
use crate::policy::{Policy, TufRootSource, MAX_POLICY_BYTES};
use crate::{files, Error, Result};

pub use crate::medium::manifest::BUNDLE_SUFFIXES;
/// The `.sigs` array limit.
const MAX_SIGS_BUNDLES: usize = 16;

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
}

impl ExportConfig {
    /// Parses `airgate.toml`, resolving relative paths against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: ExportConfig =
            toml::from_str(text).map_err(|e| Error::Usage(format!("export configuration: {e}")))?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.policy.as_mut().map(resolve);
        config.lock.as_mut().map(resolve);
        config.artifacts.as_mut().map(resolve);
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
    /// The export time (and the time expiry is evaluated at).
    pub now: DateTime<Utc>,
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

/// Everything needed to judge an artifact's bundle under a policy.
pub struct PolicyCheck<'a> {
    /// Verifier over the trusted root.
    pub verifier: &'a Verifier,
    /// The policy.
    pub policy: &'a Policy,
    /// The policy's managed keys, by path.
    pub policy_keys: &'a BTreeMap<PathBuf, VerifyingKey>,
    /// The reference time.
    pub now: DateTime<Utc>,
}

/// The one bundle that verified an artifact under the policy.
#[derive(Debug)]
pub struct AcceptedBundle {
    /// What the verification established.
    pub verified: VerifiedBundle,
    /// That bundle's JSON: the input itself, or for a `.sigs` array the one
    /// element that verified (the others are dropped, never carried on).
    pub json: Vec<u8>,
}

impl PolicyCheck<'_> {
    /// Verifies one artifact's bundle (or any bundle of a `.sigs` array) under the policy.
    pub fn verify(
        &self,
        name: &EntryName,
        digest: &ArtifactDigest,
        bundle_bytes: &[u8],
        is_array: bool,
    ) -> std::result::Result<AcceptedBundle, RejectedRecord> {
        verify_artifact_bundle(self, name, digest, bundle_bytes, is_array)
    }
}

fn verify_artifact_bundle(
    check: &PolicyCheck<'_>,
    name: &EntryName,
    digest: &ArtifactDigest,
    bundle_bytes: &[u8],
    is_array: bool,
) -> std::result::Result<AcceptedBundle, RejectedRecord> {
    let PolicyCheck {
        verifier,
        policy,
        policy_keys,
        now,
    } = check;
    let now = *now;
    let lookup = |p: &Path| policy_keys.get(p).cloned();
    let Some(allowed) = policy.allowed(name, &lookup) else {
        return Err(reject(
            name.as_str(),
            "policy.default-deny",
            "no policy rule allows this artifact (default deny)",
        ));
    };
    let bundles: Vec<std::borrow::Cow<[u8]>> = if is_array {
        match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(bundle_bytes) {
            Ok(list) if !list.is_empty() && list.len() <= MAX_SIGS_BUNDLES => list
                .iter()
                .map(|v| std::borrow::Cow::Owned(v.get().as_bytes().to_vec()))
                .collect(),
            Ok(list) => {
                return Err(reject(
                    name.as_str(),
                    "format",
                    format!(
                        ".sigs holds {} bundles (1 to {MAX_SIGS_BUNDLES} allowed)",
                        list.len()
                    ),
                ))
            }
            Err(e) => {
                return Err(reject(
                    name.as_str(),
                    "format",
                    format!(".sigs is not a JSON array of bundles: {e}"),
                ))
            }
        }
    } else {
        vec![std::borrow::Cow::Borrowed(bundle_bytes)]
    };
    let policies = allowed.signer_policies();
    let mut first_failure: Option<BundleRejection> = None;
    for bundle in &bundles {
        let parsed = match ParsedBundle::from_json(bundle, &BundleLimits::default()) {
            Ok(p) => p,
            Err(e) => {
                first_failure.get_or_insert(BundleRejection::Malformed(e));
                continue;
            }
        };
        for signer in &policies {
            // Only try the policy kind that fits the bundle.
            let fits = matches!(
                (&parsed.material, signer),
                (
                    crate::bundle::SigningMaterial::Certificate(_),
                    SignerPolicy::AnyIdentity(_)
                ) | (
                    crate::bundle::SigningMaterial::PublicKey { .. },
                    SignerPolicy::PublicKey(_)
                )
            );
            if !fits && policies.len() > 1 {
                continue;
            }
            match verifier.verify(&parsed, digest, signer, now) {
                Ok(verified) => {
                    return Ok(AcceptedBundle {
                        verified,
                        json: bundle.to_vec(),
                    })
                }
                Err(f) => {
                    first_failure.get_or_insert(BundleRejection::from(f));
                }
            }
        }
    }
    let failure = first_failure.unwrap_or(BundleRejection::Malformed(BundleFormatError::Missing(
        "bundle",
    )));
    Err(reject(name.as_str(), failure.check(), failure.to_string()))
}

/// The upstream signer recorded for a verified bundle.
pub fn upstream_of(v: &VerifiedBundle) -> UpstreamSigner {
    let (identity, issuer) = match &v.signer {
        VerifiedSigner::Certificate {
            identity, issuer, ..
        } => (identity.clone(), issuer.clone().unwrap_or_default()),
        VerifiedSigner::PublicKey { key_id } => (format!("key:sha256:{key_id}"), String::new()),
    };
    UpstreamSigner {
        identity,
        issuer,
        log_index: v.log_index,
        log_url: v.log_url.clone(),
    }
}

/// Loads the public keys a policy references.
pub fn load_policy_keys(policy: &Policy) -> Result<BTreeMap<PathBuf, VerifyingKey>> {
    let mut keys = BTreeMap::new();
    for path in policy.key_paths() {
        let pem = files::read_limited(path, 1 << 20)?;
        let key = VerifyingKey::from_pem(&String::from_utf8_lossy(&pem))
            .map_err(|e| Error::Usage(format!("policy key {}: {e}", path.display())))?;
        keys.insert(path.to_path_buf(), key);
    }
    Ok(keys)
}

/// Reads and parses a policy file.
pub fn load_policy(path: &Path) -> Result<(Policy, Vec<u8>)> {
    let bytes = files::read_limited(path, MAX_POLICY_BYTES)?;
    let text = String::from_utf8(bytes.clone())
        .map_err(|_| Error::Usage(format!("{}: not UTF-8", path.display())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let policy =
        Policy::parse(&text, base).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok((policy, bytes))
}

/// Runs an export.
pub fn export(req: &ExportRequest<'_>) -> Result<ExportReport> {
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
        TufRootSource::File(p) => files::read_limited(p, 1 << 20)?,
    };

    // 1. The public trust root, from a verified TUF snapshot.
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
    let snapshot_dir = match &req.tuf_snapshot {
        Some(dir) => dir.clone(),
        None => {
            let mirror = req
                .tuf_mirror
                .clone()
                .or(trust.tuf_mirror.clone())
                .ok_or_else(|| {
                    Error::Usage(
                        "no TUF mirror: set [trust] tuf-mirror or pass --tuf-snapshot".into(),
                    )
                })?;
            let url = tuf_repo::Url::parse(&mirror)
                .map_err(|e| Error::Usage(format!("TUF mirror {mirror:?}: {e}")))?;
            let dir = work.path().join("tuf");
            tuf_repo::snapshot(
                &url,
                &pinned_root,
                &dir,
                req.now,
                &tuf_repo::Limits::default(),
            )?;
            dir
        }
    };
    let verified_tuf = tuf_repo::verify_snapshot(
        &pinned_root,
        &snapshot_dir,
        req.now,
        None,
        &tuf_repo::Limits::default(),
    )?;
    let trusted_root =
        TrustedRoot::from_json(&verified_tuf.trusted_root_json).map_err(|source| {
            Error::TrustRoot {
                location: "TUF snapshot trusted_root.json".into(),
                source,
            }
        })?;
    let verifier = Verifier::new(trusted_root);

    // 2. Collectors: checked against the lock and their signatures, then run.
    let mut candidates = Vec::new();
    let mut problems = Vec::new();
    let mut collector_outcomes = Vec::new();
    let mut collector_entries: Vec<(EntryName, Vec<u8>)> = Vec::new();
    let mut lock_bytes = None;
    if !req.collectors.is_empty() || req.lock_path.is_some() {
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
                let checks = [
                    (
                        "version",
                        config.version.as_deref(),
                        locked.version.as_str(),
                    ),
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
                for (field, configured, locked_value) in checks {
                    if let Some(configured) = configured {
                        if configured != locked_value {
                            return Err(CollectorError::LockMismatch {
                                name: config.name.clone(),
                                field,
                                configured: configured.to_string(),
                                locked: locked_value.to_string(),
                            }
                            .into());
                        }
                    }
                }
            }
            let platform =
                locked
                    .for_target(&target)
                    .ok_or_else(|| CollectorError::NoPlatform {
                        name: config.name.clone(),
                        target: target.clone(),
                    })?;
            let meta = std::fs::metadata(&config.path).map_err(|e| Error::io(&config.path, e))?;
            if meta.len() > crate::collector::MAX_BINARY_BYTES {
                return Err(Error::Usage(format!(
                    "collector {}: binary is too large",
                    config.name
                )));
            }
            let bytes = std::fs::read(&config.path).map_err(|e| Error::io(&config.path, e))?;
            let verified =
                verify_collector(&config.name, bytes, locked, platform, &verifier, req.now)?;
            let output = work.path().join(format!("collector-{}", config.name));
            std::fs::create_dir_all(&output).map_err(|e| Error::io(&output, e))?;
            let run = run_collector(&verified, config, &output, req.env)?;
            discover(
                &output,
                Some(&config.name),
                &format!("collector:{}", config.name),
                &mut candidates,
                &mut problems,
            )?;
            let entry = EntryName::parse(&format!(
                "collectors/{}/{}/{}",
                config.name, verified.target, config.name
            ))
            .map_err(|e| Error::Usage(format!("collector {}: {e}", config.name)))?;
            collector_outcomes.push(CollectorOutcome {
                record: CollectorRecord {
                    name: config.name.clone(),
                    version: verified.version.clone(),
                    platform: verified.target.clone(),
                    entry: entry.as_str().to_string(),
                    sha256: verified.sha256.clone(),
                },
                run,
            });
            collector_entries.push((entry, verified.bytes.clone()));
        }
        lock_bytes = Some(text);
    }

    // 3. Directory artifacts.
    if let Some(dir) = &req.artifacts_dir {
        discover(dir, None, "directory", &mut candidates, &mut problems)?;
    }
    candidates.sort_by(|a, b| a.name.cmp(&b.name));
    let mut seen = std::collections::BTreeSet::new();
    candidates.retain(|c| {
        if seen.insert(c.name.clone()) {
            true
        } else {
            problems.push(reject(
                c.name.as_str(),
                "duplicate",
                "two artifacts have this name",
            ));
            false
        }
    });
    if candidates.is_empty() && problems.is_empty() {
        return Err(Error::Usage(
            "nothing to export: no artifacts found and no collector produced any".into(),
        ));
    }

    // 4. Pack everything, in sorted entry order, hashing while writing.
    let mut sources: Vec<(EntryName, EntryKind, Source)> = Vec::new();
    for c in &candidates {
        let artifact_entry = c
            .name
            .under("artifacts")
            .map_err(|e| Error::Usage(e.to_string()))?;
        sources.push((
            artifact_entry,
            EntryKind::Artifact,
            Source::File(c.path.clone(), c.size),
        ));
        sources.push((
            c.bundle_entry.clone(),
            EntryKind::Bundle,
            Source::Bytes(c.bundle_bytes.clone()),
        ));
    }
    for (entry, bytes) in &collector_entries {
        sources.push((
            entry.clone(),
            EntryKind::Collector,
            Source::Bytes(bytes.clone()),
        ));
    }
    if let Some(lock) = &lock_bytes {
        sources.push((
            EntryName::parse("airgate.lock").map_err(|e| Error::Usage(e.to_string()))?,
            EntryKind::Lock,
            Source::Bytes(lock.clone()),
        ));
    }
    sources.push((
        EntryName::parse("policy.toml").map_err(|e| Error::Usage(e.to_string()))?,
        EntryKind::Policy,
        Source::Bytes(policy_bytes.clone()),
    ));
    for (rel, path, size) in list_files(&snapshot_dir).map_err(|e| Error::io(&snapshot_dir, e))? {
        let name = EntryName::parse(&format!("tuf/{rel}"))
            .map_err(|e| Error::Usage(format!("TUF snapshot file {rel:?}: {e}")))?;
        sources.push((name, EntryKind::Tuf, Source::File(path, size)));
    }
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    let total: u64 = sources.iter().map(|(_, _, s)| s.len()).sum();

    let staged = tempfile::Builder::new()
        .prefix(".airgate-medium-")
        .tempfile_in(&out_dir)
        .map_err(|e| Error::io(&out_dir, e))?;
    let staged_file = staged.reopen().map_err(|e| Error::io(staged.path(), e))?;
    let mut writer = MediumWriter::new(BufWriter::with_capacity(BLOCK, staged_file));
    let mut done = 0u64;
    let mut digests: BTreeMap<EntryName, ArtifactDigest> = BTreeMap::new();
    for (name, kind, source) in &sources {
        let entry = match source {
            Source::File(path, size) => {
                let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
                writer
                    .add(name, *kind, *size, &mut file)
                    .map_err(|e| Error::io(path, e))?
            }
            Source::Bytes(bytes) => writer
                .add_bytes(name, *kind, bytes)
                .map_err(|e| Error::io(staged.path(), e))?,
        };
        if *kind == EntryKind::Artifact {
            if let Some(hex) = crate::encoding::hex32(&entry.sha256) {
                digests.insert(name.clone(), ArtifactDigest(hex));
            }
        }
        done += entry.size;
        (req.progress)(done, total);
    }

    // 5. Verify every artifact's bundle against the digest just computed.
    let check = PolicyCheck {
        verifier: &verifier,
        policy: &policy,
        policy_keys: &policy_keys,
        now: req.now,
    };
    let results: Vec<std::result::Result<ArtifactRecord, RejectedRecord>> = candidates
        .par_iter()
        .map(|c| {
            let entry = c
                .name
                .under("artifacts")
                .map_err(|e| reject(c.name.as_str(), "name", e.to_string()))?;
            let digest = digests
                .get(&entry)
                .ok_or_else(|| reject(c.name.as_str(), "io", "not packed"))?;
            let accepted = check.verify(&c.name, digest, &c.bundle_bytes, c.bundle_is_array)?;
            Ok(ArtifactRecord {
                name: c.name.as_str().to_string(),
                bundle: c.bundle_entry.as_str().to_string(),
                sha256: digest.to_hex(),
                size: c.size,
                origin: c.origin.clone(),
                upstream: upstream_of(&accepted.verified),
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for r in results {
        match r {
            Ok(a) => accepted.push(a),
            Err(e) => problems.push(e),
        }
    }
    problems.sort_by(|a, b| a.name.cmp(&b.name));
    if !problems.is_empty() && !req.skip_rejected {
        return Err(Error::ExportRejected(ExportRejected {
            rejected: problems,
            accepted,
        }));
    }
    if accepted.is_empty() {
        return Err(Error::ExportRejected(ExportRejected {
            rejected: problems,
            accepted,
        }));
    }

    // 6. With rejections skipped, rewrite the medium without them.
    let (writer, staged) = if problems
        .iter()
        .any(|p| candidates.iter().any(|c| c.name.as_str() == p.name))
    {
        writer.abandon().map_err(|e| Error::io(staged.path(), e))?;
        let keep: std::collections::BTreeSet<String> = accepted
            .iter()
            .flat_map(|a| [format!("artifacts/{}", a.name), a.bundle.clone()])
            .collect();
        let rewritten = tempfile::Builder::new()
            .prefix(".airgate-medium-")
            .tempfile_in(&out_dir)
            .map_err(|e| Error::io(&out_dir, e))?;
        let file = rewritten
            .reopen()
            .map_err(|e| Error::io(rewritten.path(), e))?;
        let mut w2 = MediumWriter::new(BufWriter::with_capacity(BLOCK, file));
        let source = File::open(staged.path()).map_err(|e| Error::io(staged.path(), e))?;
        let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(BLOCK, source));
        for entry in archive.entries().map_err(|e| Error::io(staged.path(), e))? {
            let mut entry = entry.map_err(|e| Error::io(staged.path(), e))?;
            let path = entry
                .path()
                .map_err(|e| Error::io(staged.path(), e))?
                .to_string_lossy()
                .into_owned();
            let name = EntryName::parse(&path).map_err(|e| Error::Usage(e.to_string()))?;
            let kind = EntryKind::for_name(&name)
                .ok_or_else(|| Error::Usage(format!("unexpected entry {path}")))?;
            if matches!(kind, EntryKind::Artifact | EntryKind::Bundle) && !keep.contains(&path) {
                continue;
            }
            let size = entry.size();
            w2.add(&name, kind, size, &mut entry)
                .map_err(|e| Error::io(rewritten.path(), e))?;
        }
        (w2, rewritten)
    } else {
        (writer, staged)
    };

    // 7. The signed manifest, last.
    let entries: Vec<ManifestEntry> = writer.entries().to_vec();
    let export_time = req.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let predicate = MediumPredicate {
        pack_digest: pack_digest(&entries),
        export_time: export_time.clone(),
        exporter: req.exporter.clone(),
        exporter_key_id: hex::encode(req.key.key_id()),
        tool_version: format!("airgate {}", env!("CARGO_PKG_VERSION")),
        tuf: TufVersions {
            root: verified_tuf.versions.root,
            timestamp: verified_tuf.versions.timestamp,
            snapshot: verified_tuf.versions.snapshot,
            targets: verified_tuf.versions.targets,
        },
        trusted_root_sha256: hex::encode(sha256(&verified_tuf.trusted_root_json)),
        policy_sha256: hex::encode(sha256(&policy_bytes)),
        entries: entries.clone(),
        artifacts: accepted.clone(),
        rejected: problems.clone(),
        collectors: collector_outcomes
            .iter()
            .map(|c| c.record.clone())
            .collect(),
    };
    let manifest = sign_manifest(&predicate, &req.key.key_id(), &|m| req.key.sign(m))
        .map_err(|e| Error::Usage(e.to_string()))?;
    let (buffered, medium_bytes) = writer
        .finish(&manifest)
        .map_err(|e| Error::io(staged.path(), e))?;
    let file = buffered
        .into_inner()
        .map_err(|e| Error::io(staged.path(), e.into_error()))?;
    if req.sync {
        file.sync_all().map_err(|e| Error::io(staged.path(), e))?;
    }
    drop(file);

    // 8. Publish atomically: one file, or chunks plus their signed index.
    let outputs = match req.split {
        None => {
            staged
                .persist(&req.out)
                .map_err(|e| Error::io(&req.out, e.error))?;
            vec![req.out.clone()]
        }
        Some(chunk_size) => {
            let base = req
                .out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Usage("--out needs a file name".into()))?;
            let mut chunker = ChunkedWriter::new(&out_dir, &base, chunk_size);
            let mut source = File::open(staged.path()).map_err(|e| Error::io(staged.path(), e))?;
            std::io::copy(&mut source, &mut chunker).map_err(|e| Error::io(staged.path(), e))?;
            let chunks = chunker.finish().map_err(|e| Error::io(&out_dir, e))?;
            let index = ChunkIndex {
                medium_size: medium_bytes,
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
                .map_err(|e| Error::Usage(e.to_string()))?;
            let mut outputs = Vec::new();
            for chunk in chunks {
                let path = out_dir.join(&chunk.name);
                chunk
                    .file
                    .persist(&path)
                    .map_err(|e| Error::io(&path, e.error))?;
                outputs.push(path);
            }
            let index_path = out_dir.join(format!("{base}.chunks.json"));
            files::write_atomic(&index_path, &index_bytes, None)?;
            outputs.push(index_path);
            outputs
        }
    };
    Ok(ExportReport {
        outputs,
        medium_bytes,
        entries: entries.len() + 1,
        accepted,
        rejected: problems,
        collectors: collector_outcomes,
        tuf: predicate.tuf,
        export_time,
        pack_digest: predicate.pack_digest,
    })
}

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

/// Reads an exporter key file.
pub fn load_exporter_key(path: &Path) -> Result<Ed25519SigningKey> {
    Ok(Ed25519SigningKey::load(path, "exporter")?)
}
