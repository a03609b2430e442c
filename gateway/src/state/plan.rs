//! An import plan (everything decided and signed, nothing written) and its
//! commit: one transaction that appends the log batch, records the import
//! and its artifacts, updates the TUF state, moves the blobs into the store
//! and commits last. A failure anywhere leaves the state as it was.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use rusqlite::params;

use crate::medium::manifest::{TufVersions, UpstreamSigner};
use crate::signing::{log_and_bundle, LeafSignature};
use crate::state::{blob_path, recover_staging, sync_filesystem, Staging, StateDir};
use crate::tlog::LogError;
use crate::{Error, Result};

/// What the `imports` table records of a medium: verified facts only.
#[derive(Debug, Clone)]
pub struct MediumRecord {
    /// SHA-256 of the signed manifest statement.
    pub medium_id: String,
    /// The enrolled exporter whose key signed it.
    pub exporter: String,
    /// Its signed export time.
    pub export_time: String,
    /// When the high side imported it (its real clock).
    pub imported_at: String,
    /// The verified pack digest.
    pub pack_digest: String,
    /// SHA-256 of the carried `policy.toml` entry, as read.
    pub medium_policy_sha256: String,
    /// SHA-256 of the high side's policy file.
    pub policy_sha256: String,
    /// TUF role versions of the verified snapshot.
    pub tuf_versions: TufVersions,
}

/// One artifact to store.
#[derive(Debug, Clone)]
pub struct PlannedArtifact {
    /// Its name.
    pub name: String,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// The verified upstream signer.
    pub upstream: UpstreamSigner,
    /// The upstream bundle that verified, byte for byte.
    pub upstream_bundle_json: Vec<u8>,
    /// Its staged file.
    pub staged: PathBuf,
    /// The import whose version of this name it replaces (allowed by policy).
    pub replaces_import: Option<i64>,
    /// Its conda channel record, for a conda package whose metadata reads.
    pub conda: Option<crate::conda::CondaRecord>,
}

/// A manifest or index to record (its bytes are a blob of the store).
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// The digest its `subject` names (referrers).
    pub subject: Option<String>,
    /// Its `artifactType`.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl StoredManifest {
    /// The record of a manifest or index given by its bytes.
    pub fn of_blob(blob: &crate::oci::cosign::Blob) -> Option<StoredManifest> {
        let node = crate::oci::layout::parse_node(&blob.descriptor, &blob.bytes).ok()?;
        Some(Self::of_node(&blob.descriptor, &node))
    }

    /// The record of a parsed manifest or index.
    pub fn of_node(descriptor: &oci_spec::image::Descriptor, node: &crate::oci::Node) -> Self {
        let (subject, artifact_type, annotations) = match node {
            crate::oci::Node::Manifest(m) => (
                m.subject().as_ref().map(|s| s.digest().to_string()),
                m.artifact_type().as_ref().map(ToString::to_string),
                m.annotations().clone(),
            ),
            crate::oci::Node::Index(i) => (
                i.subject().as_ref().map(|s| s.digest().to_string()),
                i.artifact_type().as_ref().map(ToString::to_string),
                i.annotations().clone(),
            ),
        };
        StoredManifest {
            digest: descriptor.digest().to_string(),
            media_type: descriptor.media_type().to_string(),
            size: descriptor.size(),
            subject,
            artifact_type,
            annotations: annotations
                .map(|a| a.into_iter().collect())
                .unwrap_or_default(),
        }
    }
}

/// One container image to store, with what our signatures attach to.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    /// Its repository.
    pub repository: String,
    /// Its tag.
    pub tag: String,
    /// The tagged manifest or index.
    pub root: oci_spec::image::Descriptor,
    /// The first verified upstream signer (the custody extension names it).
    pub upstream: UpstreamSigner,
    /// The simple-signing payload we sign.
    pub payload: Vec<u8>,
    /// The verified upstream `.sig` layers, kept in our `.sig` manifest.
    pub upstream_layers: Vec<(Vec<u8>, std::collections::BTreeMap<String, String>)>,
    /// The verified upstream referrers, listed in our referrers index.
    pub upstream_referrers: Vec<oci_spec::image::Descriptor>,
    /// Every carried manifest and index to record.
    pub manifests: Vec<StoredManifest>,
    /// Every carried blob (manifests too): hex digest, size, staged file.
    pub blobs: Vec<(String, u64, PathBuf)>,
}

/// An import, decided and signed; [`StateDir::commit_import`] writes it.
#[derive(Debug)]
pub struct ImportPlan {
    /// The medium's record.
    pub medium: MediumRecord,
    /// The identity our leaves name.
    pub signer_identity: String,
    /// The artifacts, in order.
    pub artifacts: Vec<PlannedArtifact>,
    /// The container images, in order.
    pub images: Vec<PlannedImage>,
    /// Our signature of each artifact then each image, in that order.
    pub signatures: Vec<LeafSignature>,
    /// The TUF state after this import.
    pub tuf_state: tuf_repo::TufState,
    /// What the plan could not do but the import may go on without
    /// (a conda package whose metadata cannot be listed in the channel).
    pub warnings: Vec<String>,
    /// The high side's clock (integrated time of the log batch).
    pub now: SystemTime,
}

/// What a committed import wrote.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Its import number.
    pub import_id: i64,
    /// Our log index of each artifact, in plan order.
    pub log_indexes: Vec<u64>,
    /// The checkpointed tree size after it.
    pub checkpoint_size: u64,
    /// The signed checkpoint after it (C2SP signed note).
    pub checkpoint: String,
}

/// Report serializer: given the log indexes and checkpoint size, the
/// import report to store.
pub type ReportFn<'a> = &'a dyn Fn(&[u64], u64) -> Result<String>;

impl StateDir {
    /// Commits an import plan in one transaction; blobs move into the store
    /// just before the commit, recorded first so a crash can undo them.
    pub fn commit_import(
        &mut self,
        plan: ImportPlan,
        mut staging: Staging,
        report: ReportFn<'_>,
    ) -> Result<Committed> {
        if plan.signatures.len() != plan.artifacts.len() + plan.images.len() {
            return Err(Error::internal(
                "committing an import",
                "signatures and artifacts differ in number",
            ));
        }
        let state_dir = self.dir.clone();
        let chain =
            crate::oci::cosign::chain_pem(&[self.ca.intermediate_der(), self.ca.root_der()]);
        let tx = self.conn.transaction().map_err(LogError::from)?;
        let signed = log_and_bundle(&self.log, &tx, &plan.signatures, plan.now)?;
        let log_indexes: Vec<u64> = signed.artifacts.iter().map(|s| s.log_index).collect();
        let report_json = report(&log_indexes, signed.checkpoint.size)?;
        let m = &plan.medium;
        tx.execute(
            "INSERT INTO imports (medium_id, exporter, export_time, imported_at, pack_digest, medium_policy_sha256, policy_sha256, tuf_versions, checkpoint_size, report) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                m.medium_id,
                m.exporter,
                m.export_time,
                m.imported_at,
                m.pack_digest,
                m.medium_policy_sha256,
                m.policy_sha256,
                serde_json::to_string(&m.tuf_versions)
                    .map_err(|e| Error::internal("serializing TUF versions", e))?,
                signed.checkpoint.size as i64,
                report_json,
            ],
        )
        .map_err(LogError::from)?;
        let import_id = tx.last_insert_rowid();
        let mut new_blobs: Vec<(String, PathBuf)> = Vec::new();
        let mut seen = HashSet::new();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO artifacts (name, import_id, sha256, size, upstream_identity, upstream_issuer, upstream_log_index, upstream_log_url, signer_identity, log_index, sigs) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(LogError::from)?;
            // The .sigs arrays are checked and joined on all cores, a chunk at
            // a time, so at most SIGS_CHUNK of them are held at once.
            use rayon::prelude::*;
            let pairs: Vec<_> = plan.artifacts.iter().zip(&signed.artifacts).collect();
            for chunk in pairs.chunks(SIGS_CHUNK) {
                let all_sigs = chunk
                    .par_iter()
                    .map(|(a, s)| {
                        let attestations: Vec<&[u8]> = s
                            .attestations
                            .iter()
                            .map(|t| t.bundle_json.as_slice())
                            .collect();
                        let json =
                            sigs_array(&a.upstream_bundle_json, &s.bundle_json, &attestations)?;
                        super::sigs_codec::encode(&json)
                            .map_err(|e| Error::internal("compressing .sigs", e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for (&(a, s), sigs) in chunk.iter().zip(all_sigs) {
                    insert
                        .execute(params![
                            a.name,
                            import_id,
                            a.sha256,
                            a.size as i64,
                            a.upstream.identity,
                            a.upstream.issuer,
                            a.upstream.log_index as i64,
                            a.upstream.log_url,
                            plan.signer_identity,
                            s.log_index as i64,
                            sigs,
                        ])
                        .map_err(|e| duplicate_record(e, &a.name))?;
                    if let Some(c) = &a.conda {
                        tx.prepare_cached(
                            "INSERT INTO conda_packages (name, import_id, subdir, filename, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                        )
                        .and_then(|mut st| st.execute(params![a.name, import_id, c.subdir, c.filename, c.record_json]))
                        .map_err(LogError::from)?;
                    }
                    if !blob_path(&state_dir, &a.sha256).exists() && seen.insert(a.sha256.clone()) {
                        new_blobs.push((a.sha256.clone(), a.staged.clone()));
                    }
                }
            }
        }
        let image_signatures = signed
            .artifacts
            .get(plan.artifacts.len()..)
            .unwrap_or_default();
        for (image, ours) in plan.images.iter().zip(image_signatures) {
            let blobs = record_image(&tx, &chain, &plan, import_id, image, ours, staging.path())?;
            for (hex, path) in blobs {
                if !blob_path(&state_dir, &hex).exists() && seen.insert(hex.clone()) {
                    new_blobs.push((hex, path));
                }
            }
        }
        tx.execute(
            "INSERT INTO tuf_state (id, state) VALUES (1, ?1) ON CONFLICT(id) DO UPDATE SET state = excluded.state",
            [serde_json::to_string(&plan.tuf_state)
                .map_err(|e| Error::internal("serializing the TUF state", e))?],
        )
        .map_err(LogError::from)?;
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
            if let Err(cleanup) = recover_staging(&state_dir, &self.conn) {
                tracing::warn!(%cleanup, "cleaning up after a failed import; the next open retries");
            }
            return Err(error);
        }
        staging.committed();
        Ok(Committed {
            import_id,
            log_indexes,
            checkpoint_size: signed.checkpoint.size,
            checkpoint: signed.checkpoint.note,
        })
    }
}

/// Records one image in the transaction: our signatures attached next to
/// the upstream ones (their new blobs written into staging), its tags,
/// manifests and blobs. Returns every blob the store must hold for it.
fn record_image(
    tx: &rusqlite::Transaction<'_>,
    chain_pem: &str,
    plan: &ImportPlan,
    import_id: i64,
    image: &PlannedImage,
    ours: &crate::signing::SignedArtifact,
    staging: &std::path::Path,
) -> Result<Vec<(String, PathBuf)>> {
    use crate::oci::cosign::{attach, referrers_tag, signature_tag, OurSignatures};
    let predicates = [
        crate::oci::COSIGN_SIGN_PREDICATE,
        crate::attest::VSA_PREDICATE_V1,
    ];
    let signatures = OurSignatures {
        payload: image.payload.clone(),
        payload_bundle: ours.bundle_json.clone(),
        referrers: ours
            .attestations
            .iter()
            .zip(predicates)
            .map(|(a, p)| (a.bundle_json.clone(), p.to_string()))
            .collect(),
    };
    let attached = attach(
        &image.root,
        &image.upstream_layers,
        &image.upstream_referrers,
        &signatures,
        chain_pem,
        &plan.medium.imported_at,
    )
    .map_err(|e| Error::internal("attaching our signatures to an image", e))?;
    let mut out: Vec<(String, PathBuf)> = image
        .blobs
        .iter()
        .map(|(hex, _, path)| (hex.clone(), path.clone()))
        .collect();
    let mut sizes: Vec<(String, u64)> = image
        .blobs
        .iter()
        .map(|(h, s, _)| (h.clone(), *s))
        .collect();
    let mut manifests = image.manifests.clone();
    for blob in &attached.blobs {
        let hex = blob.descriptor.digest().digest().to_string();
        let path = staging.join(format!("oci-{hex}"));
        if !path.exists() {
            std::fs::write(&path, &blob.bytes).map_err(|e| Error::io(&path, e))?;
        }
        out.push((hex.clone(), path));
        sizes.push((hex, blob.descriptor.size()));
        manifests.extend(StoredManifest::of_blob(blob));
    }
    let repo = &image.repository;
    for (hex, size) in &sizes {
        tx.prepare_cached("INSERT OR IGNORE INTO oci_blobs (repository, digest, size, import_id) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut st| st.execute(params![repo, hex, *size as i64, import_id]))
            .map_err(LogError::from)?;
    }
    for m in &manifests {
        let annotations = serde_json::to_string(&m.annotations)
            .map_err(|e| Error::internal("serializing annotations", e))?;
        tx.prepare_cached("INSERT OR IGNORE INTO oci_manifests (repository, digest, media_type, size, subject, artifact_type, annotations, import_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .and_then(|mut st| st.execute(params![repo, m.digest, m.media_type, m.size as i64, m.subject, m.artifact_type, annotations, import_id]))
            .map_err(LogError::from)?;
    }
    let hex = image.root.digest().digest().to_string();
    let tags = [
        (image.tag.clone(), &image.root),
        (signature_tag(&hex), &attached.signature_manifest),
        (referrers_tag(&hex), &attached.referrers_index),
    ];
    for (tag, d) in tags {
        tx.prepare_cached("INSERT INTO oci_tags (repository, tag, import_id, digest, media_type, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .and_then(|mut st| st.execute(params![repo, tag, import_id, d.digest().to_string(), d.media_type().to_string(), d.size() as i64]))
            .map_err(|e| duplicate_record(e, &format!("{repo}:{tag}")))?;
    }
    let u = &image.upstream;
    tx.prepare_cached("INSERT INTO oci_images (repository, tag, import_id, digest, upstream_identity, upstream_issuer, upstream_log_index, upstream_log_url, signer_identity, log_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
        .and_then(|mut st| st.execute(params![repo, image.tag, import_id, image.root.digest().to_string(), u.identity, u.issuer, u.log_index as i64, u.log_url, plan.signer_identity, ours.log_index as i64]))
        .map_err(|e| duplicate_record(e, &format!("{repo}:{}", image.tag)))?;
    Ok(out)
}

/// How many `.sigs` arrays are built at once (bounds the memory they take).
const SIGS_CHUNK: usize = 512;

/// `.sigs` = [upstream bundle as received and verified, airgate's
/// signature, airgate's attestations (the VSA; for conda packages then the
/// CEP 27 publish attestation)].
fn sigs_array(upstream: &[u8], ours: &[u8], attestations: &[&[u8]]) -> Result<Vec<u8>> {
    let raw = |bytes, what| -> Result<&serde_json::value::RawValue> {
        serde_json::from_slice(bytes).map_err(|e| Error::internal(what, e))
    };
    let mut list = vec![
        raw(upstream, "reading a verified upstream bundle")?,
        raw(ours, "reading our bundle")?,
    ];
    for a in attestations {
        list.push(raw(a, "reading our attestation")?);
    }
    serde_json::to_vec(&list).map_err(|e| Error::internal("serializing .sigs", e))
}

fn duplicate_record(e: rusqlite::Error, name: &str) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::internal(
                "recording an artifact",
                format!(
                    "{} is recorded twice by one import",
                    crate::escape::quoted(name)
                ),
            )
        }
        other => Error::Log(other.into()),
    }
}
