//! Import stages for container images: the carried `oci/` layout judged
//! offline under the high side's policy (closure, both signature forms,
//! attestations), every carried blob reached from `oci/index.json`, then a
//! signing request per image (the simple-signing payload, the cosign sign
//! statement and the VSA) and what the store needs to keep.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::judge::ArtifactJudge;
use crate::medium::manifest::{EntryKind, ImageSignatureRecord, UpstreamSigner};
use crate::medium::unpack::{StagedData, UnpackedMedium};
use crate::oci::cosign::{self, tagged_descriptor};
use crate::oci::layout::{
    close, parse_index, sha256_hex, BlobSource, ClosureNode, LayoutError, MAX_MANIFEST_BYTES,
};
use crate::oci::{ImageJudge, VerifiedImage, ANNOTATION_REF_NAME};
use crate::state::{PlannedImage, StoredManifest};
use crate::{Error, Result};

pub use crate::judge::medium::ImageDecision;

/// The staged `oci/` entries as a blob source: digests were checked against
/// the signed manifest while staged, so only presence and size remain.
struct Staged {
    blobs: BTreeMap<String, (PathBuf, u64)>,
}

impl BlobSource for Staged {
    fn read(&self, hex: &str, limit: u64) -> std::result::Result<Option<Vec<u8>>, LayoutError> {
        let Some((path, _)) = self.blobs.get(hex) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        use std::io::Read;
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut out))
            .map_err(|e| LayoutError::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        Ok(Some(out))
    }

    fn check(&self, d: &Descriptor) -> std::result::Result<(), LayoutError> {
        let hex = sha256_hex(d)?;
        match self.blobs.get(hex) {
            None => Err(LayoutError::Missing {
                digest: d.digest().to_string(),
                media_type: crate::escape::quoted(d.media_type().as_ref()),
            }),
            Some((_, size)) if *size != d.size() => Err(LayoutError::Size {
                digest: d.digest().to_string(),
                expected: d.size(),
                found: *size,
            }),
            Some(_) => Ok(()),
        }
    }
}

/// What the images stage decided.
pub struct JudgedImages {
    /// One decision per carried image.
    pub decisions: Vec<ImageDecision>,
    /// The accepted images.
    pub accepted: Vec<VerifiedImage>,
    /// Staged blob files by hex digest.
    staged: BTreeMap<String, PathBuf>,
}

fn medium_error(check: &str, reason: String) -> Error {
    super::reject(crate::judge::ImportRejected::Images(vec![ImageDecision {
        reference: "oci/".into(),
        digest: None,
        decision: super::Decision::Rejected,
        signatures: Vec::new(),
        attestations: Vec::new(),
        check: Some(check.into()),
        reason: Some(reason),
        log_index: None,
    }]))
}

/// The staged layout: blobs named by the digest their bytes have.
fn staged_layout(medium: &UnpackedMedium) -> Result<(Staged, Option<ImageIndex>)> {
    let mut blobs = BTreeMap::new();
    let mut index = None;
    for e in medium.entries.iter().filter(|e| e.kind == EntryKind::Image) {
        let StagedData::File(path) = &e.data else {
            return Err(Error::internal(
                "staging an image",
                "an oci/ entry in memory",
            ));
        };
        let name = e.name.as_str();
        if let Some(hex) = name.strip_prefix("oci/blobs/sha256/") {
            if hex != hex::encode(e.sha256) {
                return Err(medium_error(
                    "oci.blob-digest",
                    format!("{name} holds bytes with sha256 {}", hex::encode(e.sha256)),
                ));
            }
            blobs.insert(hex.to_string(), (path.clone(), e.size));
        } else if name == "oci/index.json" {
            let bytes = crate::files::read_limited(path, MAX_MANIFEST_BYTES as usize)?;
            index = Some(
                parse_index(&bytes, "oci/index.json")
                    .map_err(|e| medium_error(e.check(), e.to_string()))?,
            );
        } else if name == "oci/oci-layout" {
            let bytes = crate::files::read_limited(path, 4096)?;
            if bytes != crate::oci::carry::OCI_LAYOUT_FILE {
                return Err(medium_error(
                    "oci.layout",
                    "oci/oci-layout is not imageLayoutVersion 1.0.0".into(),
                ));
            }
        } else {
            return Err(medium_error(
                "oci.format",
                format!(
                    "{} is not part of an OCI layout",
                    crate::escape::quoted(name)
                ),
            ));
        }
    }
    if index.is_none() && !blobs.is_empty() {
        return Err(medium_error(
            "oci.layout",
            "blobs without oci/index.json".into(),
        ));
    }
    Ok((Staged { blobs }, index))
}

/// The entries of the carried index that belong to `repository`, with the
/// `repository:` prefix taken off their tags (the view a layout of that
/// repository alone would give).
fn repository_view(index: &ImageIndex, repository: &str) -> ImageIndex {
    let prefix = format!("{repository}:");
    let manifests: Vec<Descriptor> = index
        .manifests()
        .iter()
        .filter_map(|d| {
            let name = d.annotations().as_ref()?.get(ANNOTATION_REF_NAME)?;
            Some(tagged_descriptor(d, name.strip_prefix(&prefix)?))
        })
        .collect();
    let mut view = index.clone();
    view.set_manifests(manifests);
    view
}

/// Stage 5b: every carried image judged; every staged blob must be reached
/// from `oci/index.json`.
pub fn judge_images(judge: &ArtifactJudge<'_>, medium: &UnpackedMedium) -> Result<JudgedImages> {
    let (source, index) = staged_layout(medium)?;
    let staged = source
        .blobs
        .iter()
        .map(|(h, (p, _))| (h.clone(), p.clone()))
        .collect();
    let Some(index) = index else {
        return Ok(JudgedImages {
            decisions: Vec::new(),
            accepted: Vec::new(),
            staged,
        });
    };
    check_reached(&source, &index)?;
    let images = ImageJudge { artifacts: judge };
    let mut decisions = Vec::new();
    let mut accepted = Vec::new();
    for t in crate::oci::layout::tagged(&index) {
        let reference = t.tag.clone().unwrap_or_default();
        let tag = reference
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or_default();
        if crate::oci::cosign::is_companion_tag(tag) {
            continue;
        }
        let mut decision = ImageDecision {
            reference: reference.clone(),
            digest: Some(t.descriptor.digest().to_string()),
            decision: super::Decision::Rejected,
            signatures: Vec::new(),
            attestations: Vec::new(),
            check: None,
            reason: None,
            log_index: None,
        };
        let judged = crate::oci::split_reference(&reference)
            .map_err(|e| ("oci.format".to_string(), e))
            .and_then(|(repository, tag)| {
                let view = repository_view(&index, repository);
                let mut tagged = t.clone();
                tagged.tag = Some(tag.to_string());
                images
                    .judge(&source, &view, repository, &tagged)
                    .map_err(|r| (r.check(), r.to_string()))
            });
        match judged {
            Ok(v) => {
                decision.decision = super::Decision::Accepted;
                decision.signatures = v
                    .signatures
                    .iter()
                    .map(|s| ImageSignatureRecord {
                        form: s.form.name().into(),
                        upstream: s.upstream(),
                    })
                    .collect();
                decision.attestations = v
                    .attestations
                    .iter()
                    .filter_map(|a| a.verified.predicate_type.clone())
                    .collect();
                accepted.push(v);
            }
            Err((check, reason)) => {
                decision.check = Some(check);
                decision.reason = Some(reason);
            }
        }
        decisions.push(decision);
    }
    if decisions
        .iter()
        .any(|d| d.decision == super::Decision::Rejected)
    {
        return Err(super::reject(crate::judge::ImportRejected::Images(
            decisions,
        )));
    }
    Ok(JudgedImages {
        decisions,
        accepted,
        staged,
    })
}

/// Every staged blob is reached from some `oci/index.json` entry: a medium
/// smuggles no bytes the layout does not account for.
fn check_reached(source: &Staged, index: &ImageIndex) -> Result<()> {
    let mut reached = BTreeSet::new();
    for d in index.manifests() {
        let closure = close(source, d).map_err(|e| medium_error(e.check(), e.to_string()))?;
        for digest in closure.digests() {
            reached.insert(digest.trim_start_matches("sha256:").to_string());
        }
    }
    if let Some(hex) = source.blobs.keys().find(|h| !reached.contains(*h)) {
        return Err(medium_error(
            "oci.unreferenced-blob",
            format!("oci/blobs/sha256/{hex} is not reached from oci/index.json"),
        ));
    }
    Ok(())
}

/// One image's signing request and what its commit stores.
pub struct ImagePlan {
    /// The request (payload as the artifact; sign statement and VSA).
    pub request: crate::signing::SigningRequest,
    /// What the store keeps.
    pub planned: PlannedImage,
}

fn manifest_of(node: &ClosureNode) -> StoredManifest {
    StoredManifest::of_node(&node.descriptor, &node.node)
}

/// Makes the VSA statement of (name, sha256 hex, verified inputs).
pub type VsaOf<'a> = &'a dyn Fn(&str, &str, Vec<crate::attest::VerifiedInput>) -> Vec<u8>;

/// Stage 6b: the plan of an accepted image.
pub fn plan_image(
    image: &VerifiedImage,
    judged: &JudgedImages,
    identity: &private_ca::SigningIdentity,
    vsa_facts: VsaOf<'_>,
) -> Result<ImagePlan> {
    let root = image
        .root()
        .ok_or_else(|| Error::internal("planning an image", "an empty closure"))?;
    let hex = sha256_hex(root)
        .map_err(|e| Error::internal("planning an image", e))?
        .to_string();
    let tag = image.tag.clone().unwrap_or_default();
    let reference = format!("{}:{tag}", image.repository);
    let payload = cosign::payload(&image.repository, root.digest().as_ref());
    let inputs: Vec<crate::attest::VerifiedInput> = image
        .signatures
        .iter()
        .chain(&image.attestations)
        .map(|s| {
            let u: UpstreamSigner = s.upstream();
            crate::attest::VerifiedInput {
                bundle_sha256: hex::encode(crate::crypto::sha256(&s.bundle_json)),
                identity: u.identity,
                issuer: u.issuer,
                log_index: u.log_index,
                log_url: u.log_url,
            }
        })
        .collect();
    let first = image
        .signatures
        .first()
        .map(|s| s.upstream())
        .ok_or_else(|| Error::internal("planning an image", "an image without a signature"))?;
    let request = crate::signing::SigningRequest {
        artifact_sha256: crate::crypto::sha256(&payload),
        identity: identity.clone(),
        custody: Some(private_ca::Custody {
            upstream_identity: first.identity.clone(),
            upstream_issuer: first.issuer.clone(),
            upstream_log_index: Some(first.log_index),
        }),
        attestations: vec![
            cosign::sign_statement(&image.repository, &hex),
            vsa_facts(&reference, &hex, inputs),
        ],
    };
    let mut manifests: Vec<StoredManifest> = image.closure.nodes.iter().map(manifest_of).collect();
    let mut blob_descriptors: Vec<Descriptor> = image.closure.blobs.clone();
    let mut upstream_layers = Vec::new();
    if let Some(legacy) = &image.legacy {
        manifests.push(manifest_of(&legacy.node));
        blob_descriptors.extend(legacy.blobs.iter().cloned());
        for layer in &legacy.verified {
            let bytes = crate::oci::layout::read_checked(&Reader(judged), layer)
                .map_err(|e| Error::internal("reading a verified signature layer", e))?;
            let annotations = layer
                .annotations()
                .clone()
                .map(|a| a.into_iter().collect())
                .unwrap_or_default();
            upstream_layers.push((bytes, annotations));
        }
    }
    let mut upstream_referrers = Vec::new();
    for r in &image.referrers {
        manifests.push(manifest_of(&r.node));
        blob_descriptors.extend(r.blobs.iter().cloned());
        upstream_referrers.push(cosign::referrer_descriptor(&r.node));
    }
    let mut blobs = Vec::new();
    let mut seen = BTreeSet::new();
    for d in blob_descriptors
        .iter()
        .chain(image.closure.nodes.iter().map(|n| &n.descriptor))
        .chain(image.legacy.iter().map(|l| &l.node.descriptor))
        .chain(image.referrers.iter().map(|r| &r.node.descriptor))
    {
        let h = sha256_hex(d).map_err(|e| Error::internal("planning an image", e))?;
        if !seen.insert(h.to_string()) {
            continue;
        }
        let path = judged
            .staged
            .get(h)
            .ok_or_else(|| Error::internal("planning an image", "a verified blob not staged"))?;
        blobs.push((h.to_string(), d.size(), path.clone()));
    }
    Ok(ImagePlan {
        request,
        planned: PlannedImage {
            repository: image.repository.clone(),
            tag,
            root: root.clone(),
            upstream: first,
            payload,
            upstream_layers,
            upstream_referrers,
            manifests,
            blobs,
        },
    })
}

/// Reads staged blobs of a judged medium.
struct Reader<'a>(&'a JudgedImages);

impl BlobSource for Reader<'_> {
    fn read(&self, hex: &str, limit: u64) -> std::result::Result<Option<Vec<u8>>, LayoutError> {
        let Some(path) = self.0.staged.get(hex) else {
            return Ok(None);
        };
        crate::files::read_limited(path, limit as usize)
            .map(Some)
            .map_err(|e| LayoutError::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
    }

    fn check(&self, _: &Descriptor) -> std::result::Result<(), LayoutError> {
        Ok(())
    }
}
