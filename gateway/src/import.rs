//! High side: re-verify a medium offline, re-sign every accepted artifact with
//! the private CA, record it in the private log, and store it — atomically.
//!
//! Order of operations (nothing is stored until every check has passed):
//! 1. chunks: the signed chunk index, then every chunk's digest, before joining;
//! 2. the tar, streamed: entry types, names, sizes, duplicates (staged under numbered names);
//! 3. the manifest: signature by an enrolled exporter, then every entry's digest and size;
//! 4. time: export time not in the future, not older than the transit window;
//! 5. TUF: the carried snapshot from the pinned root and the persisted state (rollback refused),
//!    expiry as of the signed export time;
//! 6. collectors against the lock, every bundle under the HIGH side's policy;
//! 7. one transaction: re-sign and log every artifact (one batch, one checkpoint), record the
//!    import and the TUF state; blobs are moved into the store just before the commit.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use rayon::prelude::*;
use rusqlite::params;
use serde::Serialize;

use private_ca::{Custody, SigningIdentity};

use crate::bundle::{ArtifactDigest, TrustedRoot, Verifier};
use crate::export::{load_policy, load_policy_keys, upstream_of, PolicyCheck};
use crate::lock::Lockfile;
use crate::medium::manifest::{
    verify_chunk_index, verify_manifest, EntryKind, ManifestError, UpstreamSigner, VerifiedManifest,
};
use crate::medium::unpack::{unpack, MediumError, StagedData, StagedEntry, UnpackLimits};
use crate::medium::EntryName;
use crate::policy::TufRootSource;
use crate::signing::{log_and_bundle, sign_with_fresh_leaves, SigningRequest};
use crate::state::{sync_filesystem, StateDir};
use crate::tlog::LogError;
use crate::{Error, Result};

/// An accepted artifact's staged file and its upstream bundle bytes.
type StagedArtifact = (PathBuf, Vec<u8>);

/// Allowed clock skew between the low and the high side.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Why a medium was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportRejected {
    /// A chunk is missing, extra or altered.
    #[error("chunk {chunk}: {problem}")]
    Chunk {
        /// Chunk file name.
        chunk: String,
        /// What is wrong.
        problem: String,
    },
    /// The tar itself.
    #[error("{0}")]
    Medium(#[from] MediumError),
    /// The manifest or chunk index.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// An entry disagrees with the manifest.
    #[error("medium entry {name:?}: {problem}")]
    Entry {
        /// Entry name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Export time outside the transit window.
    #[error("export time {export_time}: {problem}")]
    Time {
        /// The signed export time.
        export_time: String,
        /// What is wrong.
        problem: String,
    },
    /// Not newer than the last medium imported from the same exporter.
    #[error("export time {export_time} is before {last_export_time}, the export time of import #{last_import} from exporter {exporter:?}: media from one exporter are imported in export order only, so a replayed or reordered medium cannot roll back what the enclave serves; export the content again")]
    OutOfOrder {
        /// The exporter.
        exporter: String,
        /// This medium's signed export time.
        export_time: String,
        /// The latest export time already imported from this exporter.
        last_export_time: String,
        /// The import that carried it.
        last_import: i64,
    },
    /// The carried TUF snapshot.
    #[error("TUF snapshot: {0}")]
    Tuf(tuf_repo::Error),
    /// A collector.
    #[error("collector {name}: {problem}")]
    Collector {
        /// Collector name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// One or more artifacts failed under the high side's policy.
    #[error("{} artifact(s) rejected under the high side's policy: {}", .0.iter().filter(|d| d.decision == Decision::Rejected).count(), .0.iter().filter(|d| d.decision == Decision::Rejected).map(|d| format!("{} [{}]: {}", d.name, d.check.as_deref().unwrap_or(""), d.reason.as_deref().unwrap_or(""))).collect::<Vec<_>>().join("; "))]
    Artifacts(Vec<ArtifactDecision>),
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Re-signed and stored.
    Accepted,
    /// Refused.
    Rejected,
}

/// The reviewer's view of one artifact.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactDecision {
    /// Artifact name.
    pub name: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// The upstream signer, as the high side verified it (None if it did not verify).
    pub upstream: Option<UpstreamSigner>,
    /// The decision.
    pub decision: Decision,
    /// The failed check, for rejections.
    pub check: Option<String>,
    /// Why, for rejections.
    pub reason: Option<String>,
    /// Our log index (after a real import).
    pub log_index: Option<u64>,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    /// SHA-256 of the manifest (the medium's identity).
    pub medium_id: String,
    /// Exporter name (enrolled) and its identity claim.
    pub exporter: String,
    /// Signed export time.
    pub export_time: String,
    /// TUF versions carried.
    pub tuf: crate::medium::manifest::TufVersions,
    /// Per-artifact decisions.
    pub artifacts: Vec<ArtifactDecision>,
    /// The medium was imported before; nothing changed.
    pub already_imported: bool,
    /// Dry run: nothing was stored.
    pub dry_run: bool,
    /// Checkpointed tree size after the import.
    pub checkpoint_size: Option<u64>,
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
    /// The high side's clock.
    pub now: DateTime<Utc>,
}

fn reject(e: impl Into<ImportRejected>) -> Error {
    Error::ImportRejected(Box::new(e.into()))
}

/// Opens the medium as one stream, checking chunks against their signed index first.
fn open_medium(
    req: &ImportRequest,
    exporters: &[crate::medium::manifest::EnrolledExporter],
) -> Result<Box<dyn Read>> {
    let first = req
        .media
        .first()
        .ok_or_else(|| Error::Usage("give the medium to import".into()))?;
    let chunked = req.chunk_index.is_some()
        || req.media.len() > 1
        || first.extension().is_some_and(|e| {
            e.len() == 3 && e.to_string_lossy().bytes().all(|b| b.is_ascii_digit())
        });
    if !chunked {
        let file = std::fs::File::open(first).map_err(|e| Error::io(first, e))?;
        return Ok(Box::new(std::io::BufReader::with_capacity(
            crate::medium::pack::BLOCK,
            file,
        )));
    }
    let index_path = match &req.chunk_index {
        Some(p) => p.clone(),
        None => {
            let name = first
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let base = name
                .rsplit_once('.')
                .map(|(b, _)| b.to_string())
                .unwrap_or(name);
            first.with_file_name(format!("{base}.chunks.json"))
        }
    };
    let index_bytes = crate::files::read_limited(&index_path, 1 << 20)?;
    let index = verify_chunk_index(&index_bytes, exporters).map_err(reject)?;
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
    for name in given.keys() {
        if !index.chunks.iter().any(|c| &c.name == name) {
            return Err(reject(ImportRejected::Chunk {
                chunk: name.clone(),
                problem: "is not listed in the signed chunk index".into(),
            }));
        }
    }
    let mut paths = Vec::new();
    // Every chunk is checked before any is joined; the bad one is named.
    for chunk in &index.chunks {
        let path = given.get(&chunk.name).ok_or_else(|| {
            reject(ImportRejected::Chunk {
                chunk: chunk.name.clone(),
                problem: "is missing (the signed index lists it)".into(),
            })
        })?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() != chunk.size {
            return Err(reject(ImportRejected::Chunk {
                chunk: chunk.name.clone(),
                problem: format!("is {} bytes, the index says {}", meta.len(), chunk.size),
            }));
        }
        let digest = crate::files::hash_file(path)?;
        if digest.to_hex() != chunk.sha256 {
            return Err(reject(ImportRejected::Chunk {
                chunk: chunk.name.clone(),
                problem: format!("sha256 {} differs from the signed index ({}); the chunk was altered or swapped", digest.to_hex(), chunk.sha256),
            }));
        }
        paths.push((*path).clone());
    }
    let mut reader: Box<dyn Read> = Box::new(std::io::empty());
    for path in paths {
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        reader = Box::new(reader.chain(std::io::BufReader::with_capacity(
            crate::medium::pack::BLOCK,
            file,
        )));
    }
    Ok(reader)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The import with the latest export time from `exporter`, if any.
fn latest_import_from(
    conn: &rusqlite::Connection,
    exporter: &str,
) -> Result<Option<(i64, DateTime<Utc>)>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, export_time FROM imports WHERE exporter = ?1")
        .map_err(LogError::from)?;
    let rows = stmt
        .query_map([exporter], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(LogError::from)?;
    let mut latest: Option<(i64, DateTime<Utc>)> = None;
    for row in rows {
        let (id, text) = row.map_err(LogError::from)?;
        let time = parse_time(&text).ok_or_else(|| {
            Error::Usage(format!(
                "state database: import #{id} has an unreadable export time {text:?}"
            ))
        })?;
        if latest.is_none_or(|(_, t)| time > t) {
            latest = Some((id, time));
        }
    }
    Ok(latest)
}

/// Imports a medium into the state directory.
pub fn import(state: &mut StateDir, req: &ImportRequest) -> Result<ImportReport> {
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

    // 1-2. Chunks, then the tar, streamed into staging.
    let mut staging = state.new_staging()?;
    let reader = open_medium(req, &exporters)?;
    let limits = UnpackLimits {
        max_total_bytes: policy.import.max_medium_bytes,
        max_memory_bytes: policy.import.max_metadata_bytes,
        ..UnpackLimits::default()
    };
    let medium = unpack(reader, staging.path(), &limits).map_err(reject)?;

    // 3. The manifest.
    let manifest: VerifiedManifest =
        verify_manifest(&medium.manifest, &exporters).map_err(reject)?;
    let predicate = &manifest.predicate;
    let medium_id = hex::encode(manifest.statement_sha256);
    if medium.entries.len() != predicate.entries.len() {
        let listed: std::collections::BTreeSet<&str> =
            predicate.entries.iter().map(|e| e.name.as_str()).collect();
        let extra = medium
            .entries
            .iter()
            .find(|e| !listed.contains(e.name.as_str()));
        return Err(reject(match extra {
            Some(e) => ImportRejected::Entry {
                name: e.name.to_string(),
                problem: "is not in the signed manifest".into(),
            },
            None => ImportRejected::Entry {
                name: predicate
                    .entries
                    .iter()
                    .find(|m| !medium.entries.iter().any(|e| e.name.as_str() == m.name))
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                problem: "is listed in the manifest but missing from the medium".into(),
            },
        }));
    }
    for (entry, listed) in medium.entries.iter().zip(&predicate.entries) {
        if entry.name.as_str() != listed.name {
            let in_manifest = predicate
                .entries
                .iter()
                .any(|m| m.name == entry.name.as_str());
            return Err(reject(ImportRejected::Entry {
                name: entry.name.to_string(),
                problem: if in_manifest {
                    "is out of the manifest's order".into()
                } else {
                    "is not in the signed manifest".into()
                },
            }));
        }
        if entry.size != listed.size || hex::encode(entry.sha256) != listed.sha256 {
            return Err(reject(ImportRejected::Entry {
                name: entry.name.to_string(),
                problem: format!(
                    "sha256 {} ({} bytes) differs from the manifest's {} ({} bytes); the medium was altered in transit: re-export it",
                    hex::encode(entry.sha256),
                    entry.size,
                    listed.sha256,
                    listed.size
                ),
            }));
        }
    }

    // Already imported? Say so and change nothing.
    let already: Option<i64> = state
        .conn
        .query_row(
            "SELECT id FROM imports WHERE medium_id = ?1",
            [&medium_id],
            |r| r.get(0),
        )
        .ok();
    let mut report = ImportReport {
        medium_id: medium_id.clone(),
        exporter: manifest.exporter.name.clone(),
        export_time: predicate.export_time.clone(),
        tuf: predicate.tuf,
        artifacts: Vec::new(),
        already_imported: already.is_some(),
        dry_run: req.dry_run,
        checkpoint_size: None,
        warnings: Vec::new(),
    };
    if already.is_some() {
        return Ok(report);
    }

    // 4. Time.
    let export_time = parse_time(&predicate.export_time).ok_or_else(|| {
        reject(ImportRejected::Time {
            export_time: predicate.export_time.clone(),
            problem: "is not an RFC 3339 time".into(),
        })
    })?;
    if export_time > req.now + chrono::Duration::seconds(CLOCK_SKEW_SECS) {
        return Err(reject(ImportRejected::Time {
            export_time: predicate.export_time.clone(),
            problem: format!(
                "is in the future (high-side time is {})",
                req.now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        }));
    }
    let max_age = chrono::Duration::days(i64::from(policy.import.max_transit_age_days));
    if req.now - export_time > max_age {
        return Err(reject(ImportRejected::Time {
            export_time: predicate.export_time.clone(),
            problem: format!(
                "is older than the {}-day transit window (high-side time is {})",
                policy.import.max_transit_age_days,
                req.now.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        }));
    }

    if let Some((last_import, last_time)) =
        latest_import_from(&state.conn, &manifest.exporter.name)?
    {
        if export_time < last_time {
            return Err(reject(ImportRejected::OutOfOrder {
                exporter: manifest.exporter.name.clone(),
                export_time: predicate.export_time.clone(),
                last_export_time: last_time.to_rfc3339_opts(SecondsFormat::Secs, true),
                last_import,
            }));
        }
    }

    // 5. TUF, as of the signed export time, against the persisted state.
    let by_name: BTreeMap<&str, &StagedEntry> = medium
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e))
        .collect();
    let tuf_dir = staging.path().join("tuf");
    for entry in medium.entries.iter().filter(|e| e.kind == EntryKind::Tuf) {
        let Some((_, rel)) = entry.name.strip_first() else {
            continue;
        };
        let path = rel.to_path(&tuf_dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let StagedData::Memory(bytes) = &entry.data else {
            continue;
        };
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
    }
    let mut tuf_state = state.tuf_state()?;
    let verified_tuf = tuf_repo::verify_snapshot(
        &pinned_root,
        &tuf_dir,
        export_time,
        tuf_state.as_ref(),
        &tuf_repo::Limits::default(),
    )
    .map_err(|e| {
        if e.is_rejection() {
            reject(ImportRejected::Tuf(e))
        } else {
            Error::Tuf(e)
        }
    })?;
    if hex::encode(crate::crypto::sha256(&verified_tuf.trusted_root_json))
        != predicate.trusted_root_sha256
    {
        return Err(reject(ImportRejected::Entry {
            name: "tuf/".into(),
            problem: "the derived trusted root differs from the one the manifest names".into(),
        }));
    }
    let trusted_root =
        TrustedRoot::from_json(&verified_tuf.trusted_root_json).map_err(|source| {
            Error::TrustRoot {
                location: "carried TUF snapshot".into(),
                source,
            }
        })?;
    let verifier = Verifier::new(trusted_root);
    let new_tuf_state = {
        let mut s = tuf_state.take().unwrap_or_else(tuf_repo::TufState::new);
        s.update(&verified_tuf).map_err(|e| {
            if e.is_rejection() {
                reject(ImportRejected::Tuf(e))
            } else {
                Error::Tuf(e)
            }
        })?;
        s
    };

    // 6a. Collectors against the carried lock.
    let collector_entries: Vec<&StagedEntry> = medium
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Collector)
        .collect();
    if !collector_entries.is_empty() || !predicate.collectors.is_empty() {
        let lock_bytes = match by_name.get("airgate.lock").map(|e| &e.data) {
            Some(StagedData::Memory(b)) => b.clone(),
            _ => {
                return Err(reject(ImportRejected::Collector {
                    name: "*".into(),
                    problem: "collectors are carried without airgate.lock".into(),
                }))
            }
        };
        let lock = Lockfile::parse(&String::from_utf8_lossy(&lock_bytes)).map_err(|e| {
            reject(ImportRejected::Collector {
                name: "*".into(),
                problem: e.to_string(),
            })
        })?;
        for record in &predicate.collectors {
            let bad = |problem: String| {
                reject(ImportRejected::Collector {
                    name: record.name.clone(),
                    problem,
                })
            };
            let locked = lock
                .get(&record.name)
                .ok_or_else(|| bad("is not in the carried airgate.lock".into()))?;
            let platform = locked
                .for_target(&record.platform)
                .ok_or_else(|| bad(format!("the lock has no {} build", record.platform)))?;
            let entry = by_name
                .get(record.entry.as_str())
                .ok_or_else(|| bad(format!("binary {} is missing", record.entry)))?;
            if hex::encode(entry.sha256) != platform.sha256 || entry.size != platform.size {
                return Err(bad("binary differs from the carried lock".into()));
            }
            let bundle = platform
                .bundle_json()
                .ok_or_else(|| bad("the lock's bundle is not base64".into()))?;
            let policy_for_collector =
                crate::bundle::SignerPolicy::identity(crate::bundle::IdentityPolicy::exact(
                    locked.signer_identity.clone(),
                    locked.signer_issuer.clone(),
                ));
            verifier
                .verify_bytes(
                    &bundle,
                    &ArtifactDigest(entry.sha256),
                    &policy_for_collector,
                    req.now,
                )
                .map_err(|r| bad(format!("signature: {r}")))?;
        }
        for entry in &collector_entries {
            if !predicate
                .collectors
                .iter()
                .any(|c| c.entry == entry.name.as_str())
            {
                return Err(reject(ImportRejected::Entry {
                    name: entry.name.to_string(),
                    problem: "collector binary with no collector record".into(),
                }));
            }
        }
    }

    // 6b. Every artifact, under the high side's policy.
    let records: BTreeMap<&str, &crate::medium::manifest::ArtifactRecord> = predicate
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a))
        .collect();
    for entry in medium
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Artifact)
    {
        let name = entry
            .name
            .strip_first()
            .map(|(_, n)| n.as_str().to_string())
            .unwrap_or_default();
        if !records.contains_key(name.as_str()) {
            return Err(reject(ImportRejected::Entry {
                name: entry.name.to_string(),
                problem: "artifact without a record (bundle) in the manifest".into(),
            }));
        }
    }
    let check = PolicyCheck {
        verifier: &verifier,
        policy: &policy,
        policy_keys: &policy_keys,
        now: req.now,
    };
    let decisions: Vec<(ArtifactDecision, Option<StagedArtifact>)> = predicate
        .artifacts
        .par_iter()
        .map(|record| {
            let entry_name = format!("artifacts/{}", record.name);
            let mut decision = ArtifactDecision {
                name: record.name.clone(),
                sha256: record.sha256.clone(),
                size: record.size,
                upstream: None,
                decision: Decision::Rejected,
                check: None,
                reason: None,
                log_index: None,
            };
            let (Some(artifact), Some(bundle)) = (
                by_name.get(entry_name.as_str()),
                by_name.get(record.bundle.as_str()),
            ) else {
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
            let name = match EntryName::parse(&record.name) {
                Ok(n) => n,
                Err(e) => {
                    decision.check = Some("name".into());
                    decision.reason = Some(e.to_string());
                    return (decision, None);
                }
            };
            let is_array = record.bundle.ends_with(".sigs");
            match check.verify(
                &name,
                &ArtifactDigest(artifact.sha256),
                bundle_bytes,
                is_array,
            ) {
                Ok(accepted) => {
                    decision.upstream = Some(upstream_of(&accepted.verified));
                    decision.decision = Decision::Accepted;
                    (decision, Some((path.clone(), accepted.json)))
                }
                Err(r) => {
                    decision.check = Some(r.check);
                    decision.reason = Some(r.reason);
                    (decision, None)
                }
            }
        })
        .collect();
    report.artifacts = decisions.iter().map(|(d, _)| d.clone()).collect();
    if report
        .artifacts
        .iter()
        .any(|d| d.decision == Decision::Rejected)
    {
        return Err(reject(ImportRejected::Artifacts(report.artifacts)));
    }
    if req.dry_run {
        return Ok(report);
    }

    // 7. Re-sign, log, store, record: one transaction, committed last.
    let identity_text = policy
        .import
        .identity
        .clone()
        .unwrap_or_else(|| state.ca.config().default_identity.clone());
    let identity = SigningIdentity::parse(&identity_text)?;
    // Every decision is an acceptance here (any rejection returned above);
    // one request per decision keeps `decisions` and `signed` aligned.
    let requests: Vec<SigningRequest> = decisions
        .iter()
        .map(|(d, _)| {
            let (Some(upstream), Some(artifact_sha256)) =
                (d.upstream.as_ref(), crate::encoding::hex32(&d.sha256))
            else {
                return Err(reject(ImportRejected::Entry {
                    name: format!("artifacts/{}", d.name),
                    problem: "accepted without an upstream signer or a well-formed digest".into(),
                }));
            };
            Ok(SigningRequest {
                artifact_sha256,
                identity: identity.clone(),
                custody: Some(Custody {
                    upstream_identity: upstream.identity.clone(),
                    upstream_issuer: upstream.issuer.clone(),
                    upstream_log_index: upstream.log_index,
                }),
            })
        })
        .collect::<Result<_>>()?;
    let now_system = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(req.now.timestamp()).unwrap_or(0));
    // Leaves are issued on all cores; the log append is one batch.
    let chunk = requests
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1);
    let signatures: Vec<_> = requests
        .par_chunks(chunk)
        .map(|c| sign_with_fresh_leaves(&state.ca, c, now_system))
        .collect::<std::result::Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    let imported_at = req.now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let state_dir = state.dir().to_path_buf();
    let StateDir { log, conn, .. } = state;
    let tx = conn.transaction().map_err(LogError::from)?;
    let signed = log_and_bundle(log, &tx, &signatures, now_system)?;
    let checkpoint_size = crate::tlog::LogReader::new(&tx).size()?;
    for ((decision, _), s) in report
        .artifacts
        .iter_mut()
        .zip(decisions.iter())
        .zip(&signed)
    {
        decision.log_index = Some(s.log_index);
    }
    report.checkpoint_size = Some(checkpoint_size);
    let report_json = serde_json::to_string(&report).map_err(|e| Error::Usage(e.to_string()))?;
    tx.execute(
        "INSERT INTO imports (medium_id, exporter, export_time, imported_at, pack_digest, medium_policy_sha256, policy_sha256, tuf_versions, checkpoint_size, report) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            medium_id,
            manifest.exporter.name,
            predicate.export_time,
            imported_at,
            predicate.pack_digest,
            predicate.policy_sha256,
            hex::encode(crate::crypto::sha256(&policy_bytes)),
            serde_json::to_string(&predicate.tuf).unwrap_or_default(),
            checkpoint_size as i64,
            report_json,
        ],
    )
    .map_err(LogError::from)?;
    let import_id = tx.last_insert_rowid();
    let mut new_blobs: Vec<(String, PathBuf)> = Vec::new();
    let mut new_blob_set = std::collections::HashSet::new();
    for ((decision, staged), s) in decisions.iter().zip(&signed) {
        let (Some((path, upstream_bundle)), Some(upstream)) = (staged, &decision.upstream) else {
            continue;
        };
        // The upstream bundle that verified (byte for byte), then ours.
        let upstream_json: &serde_json::value::RawValue =
            serde_json::from_slice(upstream_bundle)
                .map_err(|e| Error::Usage(format!("upstream bundle of {}: {e}", decision.name)))?;
        let ours: &serde_json::value::RawValue =
            serde_json::from_slice(&s.bundle_json).map_err(|e| Error::Usage(e.to_string()))?;
        let sigs_json =
            serde_json::to_vec(&[upstream_json, ours]).map_err(|e| Error::Usage(e.to_string()))?;
        tx.execute(
            "INSERT INTO artifacts (name, import_id, sha256, size, upstream_identity, upstream_issuer, upstream_log_index, upstream_log_url, signer_identity, log_index, sigs) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                decision.name,
                import_id,
                decision.sha256,
                decision.size as i64,
                upstream.identity,
                upstream.issuer,
                upstream.log_index as i64,
                upstream.log_url,
                identity_text,
                s.log_index as i64,
                sigs_json,
            ],
        )
        .map_err(LogError::from)?;
        let blob = crate::state::blob_path(&state_dir, &decision.sha256);
        if !blob.exists() && new_blob_set.insert(decision.sha256.clone()) {
            new_blobs.push((decision.sha256.clone(), path.clone()));
        }
    }
    tx.execute(
        "INSERT INTO tuf_state (id, state) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
        [serde_json::to_string(&new_tuf_state).map_err(|e| Error::Usage(e.to_string()))?],
    )
    .map_err(LogError::from)?;
    // Blobs: recorded (for crash recovery), moved, synced — then the commit.
    // If anything here fails, the transaction rolls back and the blobs
    // already moved are removed again before returning.
    staging.record_new_blobs(&new_blobs.iter().map(|(h, _)| h.clone()).collect::<Vec<_>>())?;
    let finished = (|| {
        for (hex, path) in &new_blobs {
            staging.move_into_store(path, hex)?;
        }
        sync_filesystem(&state_dir)?;
        tx.commit().map_err(LogError::from)?;
        Ok::<(), Error>(())
    })();
    if let Err(error) = finished {
        drop(staging);
        if let Err(cleanup) = crate::state::recover_staging(&state_dir, conn) {
            tracing::warn!(%cleanup, "cleaning up after a failed import; the next open retries");
        }
        return Err(error);
    }
    staging.committed();
    // Keep the private TUF repository's metadata fresh for enclave clients.
    match state.publish_trusted_root(req.now) {
        Ok(_) => {}
        Err(e) => report
            .warnings
            .push(format!("private TUF repository not republished: {e}")),
    }
    Ok(report)
}
