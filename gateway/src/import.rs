//! High side: authenticate a medium, re-verify it offline, re-sign every
//! accepted artifact with the private CA, record it in the private log and
//! store it, atomically. A pipeline of named stages; every rule it applies
//! lives in [`crate::judge`], every write in [`crate::state`]:
//!
//! 1. [`open_medium`]: a split medium's signed chunk index, then every chunk;
//! 2. `unpack`: the signed manifest (the first entry) authenticated against
//!    the enrolled exporters before anything else is read; then, before
//!    anything is staged, "already imported", the transit window and the
//!    export order ([`before_staging`]); then every entry streamed into
//!    staging and checked against the manifest;
//! 3. [`verify_tuf`]: the carried TUF snapshot from the pinned root and the
//!    persisted state (rollback refused), expiry as of the signed export time;
//!    the manifest's claim must be what verified;
//! 4. [`check_collectors`]: carried collectors against the carried lock;
//! 5. [`judge_artifacts`]: every bundle under the high side's policy, for the
//!    digest the medium delivered, then the immutability of names;
//! 6. [`plan_import`]: fresh leaves signed on all cores (real clock);
//! 7. `StateDir::commit_import`: one transaction (log batch, records, TUF
//!    state, blobs moved just before the commit).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use serde::Serialize;

use private_ca::{Custody, SigningIdentity};

use crate::bundle::{ArtifactDigest, TrustedRoot, Verifier};
use crate::escape::quoted;
use crate::files::{load_policy, load_policy_keys};
use crate::judge::collector::{check_carried, CarriedBinary};
use crate::judge::medium::{
    check_export_order, check_name, check_transit, check_tuf_claim, NameChange,
};
use crate::judge::ArtifactJudge;
use crate::lock::Lockfile;
use crate::medium::manifest::{
    verify_chunk_index, EnrolledExporter, EntryKind, TufVersions, VerifiedManifest,
};
use crate::medium::unpack::{
    unpack, Proceed, StagedData, StagedEntry, UnpackLimits, UnpackedMedium,
};
use crate::medium::EntryName;
use crate::policy::{Policy, TufRootSource};
use crate::progress::{ImportPhase, ProgressReader};
use crate::signing::{sign_with_session_leaves, SigningRequest};
use crate::state::{ImportPlan, MediumRecord, PlannedArtifact, Staging, StateDir};
use crate::{Error, Result};

mod images;

pub use crate::judge::medium::{
    ArtifactDecision, Decision, ImageDecision, ImportRejected, CLOCK_SKEW_SECS,
};

/// What an import did (or, in a dry run, would do): verified facts only.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// SHA-256 of the signed manifest statement (the medium's identity).
    pub medium_id: String,
    /// The enrolled exporter whose key signed the manifest.
    pub exporter: String,
    /// Signed export time.
    pub export_time: String,
    /// TUF role versions of the carried snapshot, as verified.
    pub tuf: TufVersions,
    /// Per-artifact decisions.
    pub artifacts: Vec<ArtifactDecision>,
    /// Per-image decisions (absent when the medium carries none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageDecision>,
    /// The medium was imported before (as this import number); nothing changed.
    pub already_imported: bool,
    /// The import that carried it, when already imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_id: Option<i64>,
    /// Dry run: nothing was stored.
    pub dry_run: bool,
    /// Checkpointed tree size after the import.
    pub checkpoint_size: Option<u64>,
    /// The signed checkpoint after the import (keep it outside this host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Problems after the commit (the import itself succeeded).
    pub warnings: Vec<String>,
}

/// An import request.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The medium: one tar, or its chunks.
    pub media: Vec<PathBuf>,
    /// The chunk index (default: found beside the first chunk).
    pub chunk_index: Option<PathBuf>,
    /// Verify and report only.
    pub dry_run: bool,
    /// The high side's clock (the real one: signing and recording use it).
    pub now: DateTime<Utc>,
}

fn reject(e: impl Into<ImportRejected>) -> Error {
    Error::ImportRejected(Box::new(e.into()))
}

/// The high side's own configuration.
struct HighSide {
    policy: Policy,
    policy_bytes: Vec<u8>,
    policy_keys: BTreeMap<PathBuf, crate::crypto::VerifyingKey>,
    pinned_root: Vec<u8>,
    exporters: Vec<EnrolledExporter>,
}

fn load_high_side(state: &StateDir) -> Result<HighSide> {
    let (policy, policy_bytes) = load_policy(&state.policy_path()).map_err(|e| match e {
        Error::Io { path, .. } => Error::Usage(format!(
            "{} is missing: the high side needs its own policy (rules for who may sign what)",
            path.display()
        )),
        other => other,
    })?;
    let policy_keys = load_policy_keys(&policy)?;
    let pinned_root = match policy.trust.as_ref().map(|t| &t.tuf_root) {
        None | Some(TufRootSource::Production) => tuf_repo::PRODUCTION_ROOT.to_vec(),
        Some(TufRootSource::File(p)) => crate::files::read_limited(p, 1 << 20)?,
    };
    let exporters = state.exporters()?;
    if exporters.is_empty() {
        return Err(Error::Usage(
            "no exporter is enrolled; enroll the low side's key with `airgate exporter enroll`"
                .into(),
        ));
    }
    Ok(HighSide {
        policy,
        policy_bytes,
        policy_keys,
        pinned_root,
        exporters,
    })
}

/// Stage 1: the medium as one stream; a split medium's chunks are checked
/// against their signed index (signature first) before any is joined.
pub fn open_medium(req: &ImportRequest, exporters: &[EnrolledExporter]) -> Result<Box<dyn Read>> {
    let first = req
        .media
        .first()
        .ok_or_else(|| Error::Usage("give the medium to import".into()))?;
    let chunked = req.chunk_index.is_some()
        || req.media.len() > 1
        || first.extension().is_some_and(|e| {
            e.len() == 3 && e.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
        });
    let open = |path: &PathBuf| -> Result<Box<dyn Read>> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            crate::medium::pack::BLOCK,
            file,
        )))
    };
    if !chunked {
        return open(first);
    }
    let index_path = req.chunk_index.clone().unwrap_or_else(|| {
        let name = first
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = name
            .rsplit_once('.')
            .map(|(b, _)| b.to_string())
            .unwrap_or(name);
        first.with_file_name(format!("{base}.chunks.json"))
    });
    let index_bytes = crate::files::read_limited(&index_path, 1 << 20)?;
    let index = verify_chunk_index(&index_bytes, exporters).map_err(reject)?;
    let chunk_problem = |chunk: &str, problem: String| {
        reject(ImportRejected::Chunk {
            chunk: quoted(chunk),
            problem,
        })
    };
    let given: BTreeMap<String, &PathBuf> = req
        .media
        .iter()
        .map(|p| {
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                p,
            )
        })
        .collect();
    if let Some(extra) = given
        .keys()
        .find(|n| !index.chunks.iter().any(|c| &c.name == *n))
    {
        return Err(chunk_problem(
            extra,
            "is not listed in the signed chunk index".into(),
        ));
    }
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    for chunk in &index.chunks {
        let path = given.get(&chunk.name).ok_or_else(|| {
            chunk_problem(&chunk.name, "is missing (the signed index lists it)".into())
        })?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() != chunk.size {
            return Err(chunk_problem(
                &chunk.name,
                format!("is {} bytes, the index says {}", meta.len(), chunk.size),
            ));
        }
        let digest = crate::files::hash_file(path)?;
        if digest.to_hex() != chunk.sha256 {
            return Err(chunk_problem(
                &chunk.name,
                format!(
                    "sha256 {} differs from the signed index ({}); the chunk was altered or swapped",
                    digest.to_hex(),
                    chunk.sha256
                ),
            ));
        }
        reader = Box::new(reader.chain(open(path)?));
    }
    Ok(reader)
}

/// What stage 2 decided once the manifest was authenticated.
enum Admitted {
    /// The medium was imported before, as this import.
    Already(i64),
    /// Staged here, with the verified export time.
    Staged(Staging, DateTime<Utc>),
}

/// Before staging: already imported (nothing more to do), then the transit
/// window and the export order for this exporter.
fn before_staging(
    state: &StateDir,
    high: &HighSide,
    manifest: &VerifiedManifest,
    now: DateTime<Utc>,
) -> Result<Admitted> {
    if let Some(id) = state.find_import(&hex::encode(manifest.statement_sha256))? {
        return Ok(Admitted::Already(id));
    }
    let export_time = check_transit(
        &manifest.predicate.export_time,
        now,
        high.policy.import.max_transit_age_days,
    )
    .map_err(reject)?;
    let last = state.last_import_from(&manifest.exporter.name)?;
    check_export_order(&manifest.exporter.name, export_time, last).map_err(reject)?;
    Ok(Admitted::Staged(state.new_staging()?, export_time))
}

/// Stage 3's result.
struct VerifiedTuf {
    verifier: Verifier,
    versions: TufVersions,
    new_state: tuf_repo::TufState,
}

/// Stage 3: the carried TUF snapshot, verified from the pinned root against
/// the persisted state as of the signed export time; the manifest's claim
/// about it must be what verified.
fn verify_tuf(
    state: &StateDir,
    high: &HighSide,
    medium: &UnpackedMedium,
    staging: &Staging,
    export_time: DateTime<Utc>,
) -> Result<VerifiedTuf> {
    let tuf_dir = staging.path().join("tuf");
    let mut any = false;
    for entry in medium.entries.iter().filter(|e| e.kind == EntryKind::Tuf) {
        let (Some((_, rel)), StagedData::Memory(bytes)) = (entry.name.strip_first(), &entry.data)
        else {
            continue;
        };
        let path = rel.to_path(&tuf_dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        any = true;
    }
    if !any {
        return Err(reject(ImportRejected::NoTufSnapshot));
    }
    let tuf_error = |e: tuf_repo::Error| {
        if e.is_rejection() {
            reject(ImportRejected::Tuf(e))
        } else {
            Error::Tuf(e)
        }
    };
    let persisted = state.tuf_state()?;
    let verified = tuf_repo::verify_snapshot(
        &high.pinned_root,
        &tuf_dir,
        export_time,
        persisted.as_ref(),
        &tuf_repo::Limits::default(),
    )
    .map_err(tuf_error)?;
    let v = &verified.versions;
    let versions = TufVersions {
        root: v.root,
        timestamp: v.timestamp,
        snapshot: v.snapshot,
        targets: v.targets,
    };
    let predicate = &medium.manifest.predicate;
    check_tuf_claim(
        &predicate.tuf,
        &predicate.trusted_root_sha256,
        &versions,
        &hex::encode(crate::crypto::sha256(&verified.trusted_root_json)),
    )
    .map_err(reject)?;
    let root =
        TrustedRoot::from_json(&verified.trusted_root_json).map_err(|source| Error::TrustRoot {
            location: "carried TUF snapshot".into(),
            source,
        })?;
    let mut new_state = persisted.unwrap_or_else(tuf_repo::TufState::new);
    new_state.update(&verified).map_err(tuf_error)?;
    Ok(VerifiedTuf {
        verifier: Verifier::new(root),
        versions,
        new_state,
    })
}

/// Stage 4: carried collectors against the carried lock and their signatures.
fn check_collectors(
    medium: &UnpackedMedium,
    verifier: &Verifier,
    now: DateTime<Utc>,
) -> Result<()> {
    let predicate = &medium.manifest.predicate;
    let binaries: Vec<CarriedBinary<'_>> = medium
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Collector)
        .map(|e| CarriedBinary {
            entry: e.name.as_str(),
            digest: ArtifactDigest(e.sha256),
            size: e.size,
        })
        .collect();
    if binaries.is_empty() && predicate.collectors.is_empty() {
        return Ok(());
    }
    let collector = |name: &str, problem| {
        reject(ImportRejected::Collector {
            name: quoted(name),
            problem,
        })
    };
    let lock_bytes = medium
        .entries
        .iter()
        .find(|e| e.kind == EntryKind::Lock)
        .and_then(|e| match &e.data {
            StagedData::Memory(b) => Some(b),
            StagedData::File(_) => None,
        })
        .ok_or_else(|| {
            collector(
                "*",
                crate::collector::CollectorError::RunFailed {
                    name: "*".into(),
                    problem: "collectors are carried without airgate.lock".into(),
                },
            )
        })?;
    let text = std::str::from_utf8(lock_bytes).map_err(|_| {
        collector(
            "*",
            crate::collector::CollectorError::RunFailed {
                name: "*".into(),
                problem: "the carried airgate.lock is not UTF-8".into(),
            },
        )
    })?;
    let lock = Lockfile::parse(text).map_err(|e| {
        collector(
            "*",
            crate::collector::CollectorError::RunFailed {
                name: "*".into(),
                problem: e.to_string(),
            },
        )
    })?;
    check_carried(&predicate.collectors, &lock, &binaries, verifier, now)
        .map_err(|(name, problem)| collector(&name, problem))
}

/// An accepted artifact on its way to the store.
struct Accepted {
    decision_index: usize,
    staged: PathBuf,
    bundle_json: Vec<u8>,
    change: NameChange,
}

/// Stage 5: every artifact's bundle under the high side's policy, for the
/// digest the medium delivered (in parallel); then names: other bytes under
/// an imported name are refused unless a matching rule allows replacement.
fn judge_artifacts(
    state: &StateDir,
    judge: &ArtifactJudge<'_>,
    medium: &UnpackedMedium,
) -> Result<(Vec<ArtifactDecision>, Vec<Accepted>)> {
    let by_name: BTreeMap<&str, &StagedEntry> = medium
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e))
        .collect();
    let judged: Vec<(
        ArtifactDecision,
        Option<(PathBuf, crate::judge::AcceptedBundle)>,
    )> = medium
        .manifest
        .predicate
        .artifacts
        .par_iter()
        .map(|record| {
            let mut decision = ArtifactDecision {
                name: record.name.clone(),
                sha256: record.sha256.clone(),
                size: record.size,
                upstream: None,
                decision: Decision::Rejected,
                check: None,
                reason: None,
                log_index: None,
                replaces_import: None,
            };
            let artifact = by_name.get(format!("artifacts/{}", record.name).as_str());
            let bundle = by_name.get(record.bundle.as_str());
            let (Some(artifact), Some(bundle), Ok(name)) =
                (artifact, bundle, EntryName::parse(&record.name))
            else {
                decision.check = Some("medium".into());
                decision.reason = Some("artifact or bundle entry missing".into());
                return (decision, None);
            };
            let (StagedData::File(path), StagedData::Memory(bundle_bytes)) =
                (&artifact.data, &bundle.data)
            else {
                decision.check = Some("medium".into());
                decision.reason = Some("unexpected entry layout".into());
                return (decision, None);
            };
            let is_array = record.bundle.ends_with(".sigs");
            match judge.judge(
                &name,
                &ArtifactDigest(artifact.sha256),
                bundle_bytes,
                is_array,
            ) {
                Ok(accepted) => {
                    decision.upstream = Some(accepted.upstream());
                    decision.decision = Decision::Accepted;
                    (decision, Some((path.clone(), accepted)))
                }
                Err(r) => {
                    decision.check = Some(r.check().to_string());
                    decision.reason = Some(r.to_string());
                    (decision, None)
                }
            }
        })
        .collect();
    let mut decisions = Vec::with_capacity(judged.len());
    let mut accepted = Vec::with_capacity(judged.len());
    for (i, (decision, ok)) in judged.into_iter().enumerate() {
        if let Some((staged, bundle)) = ok {
            let current = state.current_version(&decision.name)?;
            let change = check_name(
                &decision.name,
                &decision.sha256,
                current.as_ref(),
                bundle.allow_replace,
            )
            .map_err(reject)?;
            accepted.push(Accepted {
                decision_index: i,
                staged,
                bundle_json: bundle.json,
                change,
            });
        }
        decisions.push(decision);
    }
    if decisions.iter().any(|d| d.decision == Decision::Rejected) {
        return Err(reject(ImportRejected::Artifacts(decisions)));
    }
    for a in &accepted {
        if let NameChange::Replaces(id) = a.change {
            decisions[a.decision_index].replaces_import = Some(id);
        }
    }
    Ok((decisions, accepted))
}

/// What stage 5 accepted, for stage 6.
struct Verdicts<'a> {
    decisions: &'a [ArtifactDecision],
    accepted: Vec<Accepted>,
    images: &'a images::JudgedImages,
}

/// Stage 6: a short-lived leaf per upstream signer for this session, issued
/// at the real clock, naming the verified signer in the custody extension;
/// each artifact's VSA names its own verified upstream entry.
fn plan_import(
    state: &StateDir,
    high: &HighSide,
    medium: &UnpackedMedium,
    tuf: VerifiedTuf,
    verdicts: Verdicts<'_>,
    now: DateTime<Utc>,
) -> Result<ImportPlan> {
    let Verdicts {
        decisions,
        accepted,
        images: judged_images,
    } = verdicts;
    let identity_text = high
        .policy
        .import
        .identity
        .clone()
        .unwrap_or_else(|| state.ca().config().default_identity.clone());
    let identity = SigningIdentity::parse(&identity_text)?;
    let mut artifacts = Vec::with_capacity(accepted.len());
    let mut requests = Vec::with_capacity(accepted.len());
    let mut warnings = Vec::new();
    for a in accepted {
        let d = &decisions[a.decision_index];
        let (Some(upstream), Some(sha)) = (d.upstream.clone(), crate::encoding::hex32(&d.sha256))
        else {
            return Err(Error::internal(
                "planning an import",
                "an accepted artifact without a verified signer",
            ));
        };
        let vsa = crate::attest::vsa_statement(&crate::attest::VsaFacts {
            verifier_id: identity_text.clone(),
            verifier_version: env!("CARGO_PKG_VERSION").to_string(),
            time_verified: now,
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            policy_uri: "airgate:policy.toml".into(),
            policy_sha256: hex::encode(crate::crypto::sha256(&high.policy_bytes)),
            inputs: vec![crate::attest::VerifiedInput {
                bundle_sha256: hex::encode(crate::crypto::sha256(&a.bundle_json)),
                identity: upstream.identity.clone(),
                issuer: upstream.issuer.clone(),
                log_index: upstream.log_index,
                log_url: upstream.log_url.clone(),
            }],
        });
        requests.push(SigningRequest {
            artifact_sha256: sha,
            identity: identity.clone(),
            custody: Some(Custody {
                upstream_identity: upstream.identity.clone(),
                upstream_issuer: upstream.issuer.clone(),
                upstream_log_index: Some(upstream.log_index),
            }),
            attestations: std::iter::once(vsa)
                .chain(crate::attest::cep27_statement(
                    &d.name,
                    &d.sha256,
                    high.policy.import.conda_channel.as_deref(),
                ))
                .collect(),
        });
        let conda = match crate::attest::conda_filename(&d.name) {
            None => None,
            Some(file) => match crate::conda::record_of(&a.staged, file, &d.sha256, d.size) {
                Ok(record) => Some(record),
                Err(why) => {
                    warnings.push(format!(
                        "{}: carried, but not listed in the conda channel: {why}",
                        d.name
                    ));
                    None
                }
            },
        };
        artifacts.push(PlannedArtifact {
            conda,
            name: d.name.clone(),
            sha256: d.sha256.clone(),
            size: d.size,
            upstream,
            upstream_bundle_json: a.bundle_json,
            staged: a.staged,
            replaces_import: match a.change {
                NameChange::Replaces(id) => Some(id),
                _ => None,
            },
        });
    }
    let policy_sha256 = hex::encode(crate::crypto::sha256(&high.policy_bytes));
    let vsa = |name: &str, sha256: &str, inputs| {
        crate::attest::vsa_statement(&crate::attest::VsaFacts {
            verifier_id: identity_text.clone(),
            verifier_version: env!("CARGO_PKG_VERSION").to_string(),
            time_verified: now,
            name: name.to_string(),
            sha256: sha256.to_string(),
            policy_uri: "airgate:policy.toml".into(),
            policy_sha256: policy_sha256.clone(),
            inputs,
        })
    };
    let mut planned_images = Vec::with_capacity(judged_images.accepted.len());
    for image in &judged_images.accepted {
        let plan = images::plan_image(image, judged_images, &identity, &vsa)?;
        requests.push(plan.request);
        planned_images.push(plan.planned);
    }
    let now_system = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(now.timestamp()).unwrap_or(0));
    let signatures = sign_with_session_leaves(state.ca(), &requests, now_system)?;
    let predicate = &medium.manifest.predicate;
    let policy_entry = medium.entries.iter().find(|e| e.kind == EntryKind::Policy);
    Ok(ImportPlan {
        medium: MediumRecord {
            medium_id: hex::encode(medium.manifest.statement_sha256),
            exporter: medium.manifest.exporter.name.clone(),
            export_time: predicate.export_time.clone(),
            imported_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            pack_digest: predicate.pack_digest.clone(),
            medium_policy_sha256: policy_entry
                .map(|e| hex::encode(e.sha256))
                .unwrap_or_default(),
            policy_sha256: hex::encode(crate::crypto::sha256(&high.policy_bytes)),
            tuf_versions: tuf.versions,
        },
        signer_identity: identity_text,
        artifacts,
        images: planned_images,
        signatures,
        tuf_state: tuf.new_state,
        now: now_system,
        warnings,
    })
}

fn report_of(manifest: &VerifiedManifest, tuf: TufVersions, dry_run: bool) -> ImportReport {
    ImportReport {
        medium_id: hex::encode(manifest.statement_sha256),
        exporter: manifest.exporter.name.clone(),
        export_time: manifest.predicate.export_time.clone(),
        tuf,
        artifacts: Vec::new(),
        images: Vec::new(),
        already_imported: false,
        import_id: None,
        dry_run,
        checkpoint_size: None,
        checkpoint: None,
        warnings: Vec::new(),
    }
}

/// Imports a medium into the state directory.
pub fn import(state: &mut StateDir, req: &ImportRequest) -> Result<ImportReport> {
    import_with_progress(state, req, &|_, _, _| {})
}

/// [`import`], calling `progress(phase, done, total)` as it goes: bytes of
/// the medium while reading it, artifacts while re-verifying them.
pub fn import_with_progress(
    state: &mut StateDir,
    req: &ImportRequest,
    progress: &(dyn Fn(ImportPhase, u64, u64) + Sync),
) -> Result<ImportReport> {
    let high = load_high_side(state)?;
    let total: u64 = req
        .media
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let report_bytes = |n: u64| progress(ImportPhase::Reading, n, total);
    let reader = ProgressReader::new(open_medium(req, &high.exporters)?, &report_bytes);
    let limits = UnpackLimits {
        max_total_bytes: high.policy.import.max_medium_bytes,
        max_memory_bytes: high.policy.import.max_metadata_bytes,
        ..UnpackLimits::default()
    };
    let mut admitted: Option<Admitted> = None;
    let mut seen: Option<VerifiedManifest> = None;
    let unpacked = unpack(reader, &high.exporters, &limits, &mut |manifest| {
        let decision = before_staging(state, &high, manifest, req.now)?;
        let proceed = match &decision {
            Admitted::Already(_) => Proceed::Stop,
            Admitted::Staged(staging, _) => Proceed::Stage(staging.path().to_path_buf()),
        };
        seen = Some(manifest.clone());
        admitted = Some(decision);
        Ok(proceed)
    })?;
    let (medium, staging, export_time) = match (unpacked, admitted, seen) {
        (_, Some(Admitted::Already(id)), Some(manifest)) => {
            // Nothing staged or verified beyond the manifest: report what it signed.
            let mut report = report_of(&manifest, manifest.predicate.tuf, req.dry_run);
            report.already_imported = true;
            report.import_id = Some(id);
            return Ok(report);
        }
        (Some(medium), Some(Admitted::Staged(staging, t)), _) => (medium, staging, t),
        _ => {
            return Err(Error::internal(
                "reading the medium",
                "no decision was taken",
            ))
        }
    };
    progress(ImportPhase::VerifyingTuf, 0, 0);
    let tuf = verify_tuf(state, &high, &medium, &staging, export_time)?;
    check_collectors(&medium, &tuf.verifier, req.now)?;
    let judge = ArtifactJudge {
        verifier: &tuf.verifier,
        policy: &high.policy,
        policy_keys: &high.policy_keys,
        now: req.now,
    };
    progress(
        ImportPhase::VerifyingArtifacts,
        0,
        medium.manifest.predicate.artifacts.len() as u64,
    );
    let (decisions, accepted) = judge_artifacts(state, &judge, &medium)?;
    let judged_images = images::judge_images(&judge, &medium)?;
    progress(ImportPhase::Signing, 0, 0);
    let mut report = report_of(&medium.manifest, tuf.versions, req.dry_run);
    report.artifacts = decisions;
    report.images = judged_images.decisions.clone();
    if req.dry_run {
        return Ok(report);
    }
    let plan = plan_import(
        state,
        &high,
        &medium,
        tuf,
        Verdicts {
            decisions: &report.artifacts,
            accepted,
            images: &judged_images,
        },
        req.now,
    )?;
    report.warnings.extend(plan.warnings.iter().cloned());
    let template = report.clone();
    progress(ImportPhase::Committing, 0, 0);
    let committed = state.commit_import(plan, staging, &|log_indexes, size| {
        let mut r = template.clone();
        fill_log_indexes(&mut r, log_indexes, size);
        serde_json::to_string(&r).map_err(|e| Error::internal("serializing the import report", e))
    })?;
    fill_log_indexes(
        &mut report,
        &committed.log_indexes,
        committed.checkpoint_size,
    );
    report.checkpoint = Some(committed.checkpoint);
    report.import_id = Some(committed.import_id);
    if let Err(e) = state.publish_trusted_root(req.now) {
        report
            .warnings
            .push(format!("private TUF repository not republished: {e}"));
    }
    Ok(report)
}

fn fill_log_indexes(report: &mut ImportReport, log_indexes: &[u64], checkpoint_size: u64) {
    for (decision, index) in report.artifacts.iter_mut().zip(log_indexes) {
        decision.log_index = Some(*index);
    }
    let rest = log_indexes
        .get(report.artifacts.len()..)
        .unwrap_or_default();
    for (decision, index) in report.images.iter_mut().zip(rest) {
        decision.log_index = Some(*index);
    }
    report.checkpoint_size = Some(checkpoint_size);
}
