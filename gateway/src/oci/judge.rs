//! May this image pass? Its closure complete (digests and sizes), and at
//! least one signature on the tagged descriptor, in either form, verified
//! under the policy rules matching its repository. Attestations attached as
//! bundle referrers (other predicates) are verified too: those that verify
//! are carried, the others reported and left behind. Pure over a
//! [`BlobSource`].

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex};

use super::cosign::{layer_bundle, parse_payload, referrers_tag, signature_tag};
use super::layout::{
    close, read_checked, read_node, sha256_hex, BlobSource, Closure, ClosureNode, LayoutError,
    Node, TaggedImage,
};
use super::{COSIGN_SIGN_PREDICATE, MEDIA_BUNDLE_V03, MEDIA_SIMPLESIGNING};
use crate::bundle::{ArtifactDigest, VerifiedBundle};
use crate::escape::quoted;
use crate::judge::{upstream_of, ArtifactJudge, ArtifactRejection};
use crate::medium::manifest::UpstreamSigner;

/// Most referrers considered per image.
pub const MAX_REFERRERS: usize = 64;

/// Which form a signature took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureForm {
    /// A simple-signing layer of the `sha256-<hex>.sig` manifest.
    Legacy,
    /// A Sigstore bundle v0.3 referrer.
    Referrer,
}

impl SignatureForm {
    /// The form's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            SignatureForm::Legacy => "cosign .sig",
            SignatureForm::Referrer => "bundle referrer",
        }
    }
}

/// One verified signature or attestation of an image.
#[derive(Debug, Clone)]
pub struct ImageSignature {
    /// Its form.
    pub form: SignatureForm,
    /// What verification established.
    pub verified: VerifiedBundle,
    /// The bundle judged (for legacy layers, the v0.1 bundle made from the
    /// layer's annotations).
    pub bundle_json: Vec<u8>,
    /// Where it was found: the `.sig` manifest's digest, or the referrer's
    /// bundle blob digest (`sha256:<hex>`).
    pub source: String,
}

impl ImageSignature {
    /// The upstream signer, from the verified bundle only.
    pub fn upstream(&self) -> UpstreamSigner {
        upstream_of(&self.verified)
    }
}

/// An image that may pass.
#[derive(Debug, Clone)]
pub struct VerifiedImage {
    /// The repository the policy matched (`org/app`).
    pub repository: String,
    /// Its tag in the layout, if any.
    pub tag: Option<String>,
    /// The closure of the tagged descriptor (root first).
    pub closure: Closure,
    /// Verified signatures (cosign sign predicate or legacy layers).
    pub signatures: Vec<ImageSignature>,
    /// Verified attestations (other predicates).
    pub attestations: Vec<ImageSignature>,
    /// The `.sig` manifest, when one of its layers verified, with its
    /// config and layers.
    pub legacy: Option<Companion>,
    /// Bundle referrers that verified, each with its config and bundle blob.
    pub referrers: Vec<Companion>,
    /// Attached material that did not verify (check, reason), left behind.
    pub dropped: Vec<(String, String)>,
    /// Rules that allowed it.
    pub rules: Vec<String>,
}

impl VerifiedImage {
    /// The root descriptor (what the tag names).
    pub fn root(&self) -> Option<&Descriptor> {
        self.closure.nodes.first().map(|n| &n.descriptor)
    }
}

/// A signature-side manifest carried with an image, and its blobs.
#[derive(Debug, Clone)]
pub struct Companion {
    /// The manifest with its bytes.
    pub node: ClosureNode,
    /// Its config and layers.
    pub blobs: Vec<Descriptor>,
    /// The layers whose signatures verified (for a `.sig` manifest; for a
    /// referrer, its bundle layer): the only ones re-attached on the high
    /// side.
    pub verified: Vec<Descriptor>,
}

/// Why an image may not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageRejection {
    /// The layout or the closure is broken.
    #[error("{0}")]
    Layout(#[from] LayoutError),
    /// No rule's `images` pattern matches the repository.
    #[error("no policy rule allows repository {0} (default deny)")]
    DefaultDeny(String),
    /// Nothing signs the tagged descriptor in either form.
    #[error("unsigned: no cosign .sig manifest and no Sigstore bundle referrer names {0}")]
    Unsigned(String),
    /// Signatures were found, none verified: the first failure.
    #[error("{form} signature: {reason}")]
    Signature {
        /// The form tried.
        form: &'static str,
        /// The stable check name of the failure.
        check: String,
        /// Why.
        reason: String,
    },
}

impl ImageRejection {
    /// The stable name of the failed check.
    pub fn check(&self) -> String {
        match self {
            ImageRejection::Layout(e) => e.check().to_string(),
            ImageRejection::DefaultDeny(_) => "policy.default-deny".into(),
            ImageRejection::Unsigned(_) => "oci.unsigned".into(),
            ImageRejection::Signature { check, .. } => check.clone(),
        }
    }
}

/// Judges images under an artifact judge's verifier, policy and time.
pub struct ImageJudge<'a> {
    /// Verifier, policy, keys and reference time.
    pub artifacts: &'a ArtifactJudge<'a>,
}

struct Found {
    signatures: Vec<ImageSignature>,
    attestations: Vec<ImageSignature>,
    legacy: Option<Companion>,
    referrers: Vec<Companion>,
    dropped: Vec<(String, String)>,
    failures: Vec<(SignatureForm, String, String)>,
}

impl ImageJudge<'_> {
    /// Judges the image `tagged` of a layout whose `index.json` is `index`,
    /// as repository `repository`.
    pub fn judge(
        &self,
        source: &dyn BlobSource,
        index: &ImageIndex,
        repository: &str,
        tagged: &TaggedImage,
    ) -> Result<VerifiedImage, ImageRejection> {
        let lookup = |p: &std::path::Path| self.artifacts.policy_keys.get(p).cloned();
        let allowed = self
            .artifacts
            .policy
            .allowed_image(repository, &lookup)
            .ok_or_else(|| ImageRejection::DefaultDeny(quoted(repository)))?;
        let closure = close(source, &tagged.descriptor)?;
        let root = &tagged.descriptor;
        let hex = sha256_hex(root)?.to_string();
        let mut found = Found {
            signatures: Vec::new(),
            attestations: Vec::new(),
            legacy: None,
            referrers: Vec::new(),
            dropped: Vec::new(),
            failures: Vec::new(),
        };
        self.legacy(source, index, &hex, &allowed, &mut found)?;
        self.referrers(source, index, root, &hex, &allowed, &mut found)?;
        if found.signatures.is_empty() {
            return Err(match found.failures.into_iter().next() {
                None => ImageRejection::Unsigned(root.digest().to_string()),
                Some((form, check, reason)) => ImageRejection::Signature {
                    form: form.name(),
                    check,
                    reason,
                },
            });
        }
        Ok(VerifiedImage {
            repository: repository.to_string(),
            tag: tagged.tag.clone(),
            closure,
            signatures: found.signatures,
            attestations: found.attestations,
            legacy: found.legacy,
            referrers: found.referrers,
            dropped: found.dropped,
            rules: allowed.rules,
        })
    }

    /// The `sha256-<hex>.sig` manifest's layers.
    fn legacy(
        &self,
        source: &dyn BlobSource,
        index: &ImageIndex,
        hex: &str,
        allowed: &crate::policy::Allowed,
        found: &mut Found,
    ) -> Result<(), ImageRejection> {
        let tag = signature_tag(hex);
        let Some(entry) = find_tag(index, &tag) else {
            return Ok(());
        };
        let node = read_node(source, &entry)?;
        let Node::Manifest(manifest) = &node.node else {
            found.failures.push((
                SignatureForm::Legacy,
                "oci.format".into(),
                format!("{tag} is not an image manifest"),
            ));
            return Ok(());
        };
        let mut verified = Vec::new();
        for layer in manifest.layers().iter().take(MAX_REFERRERS) {
            if layer.media_type().to_string() != MEDIA_SIMPLESIGNING {
                continue;
            }
            let payload = read_checked(source, layer)?;
            match self.legacy_layer(&payload, layer, hex, allowed, &entry) {
                Ok(sig) => {
                    verified.push(layer.clone());
                    found.signatures.push(sig);
                }
                Err((check, reason)) => found.failures.push((
                    SignatureForm::Legacy,
                    check,
                    format!("{tag} layer {}: {reason}", layer.digest()),
                )),
            }
        }
        if !verified.is_empty() {
            source.check(manifest.config())?;
            for layer in manifest.layers() {
                source.check(layer)?;
            }
            let blobs = std::iter::once(manifest.config().clone())
                .chain(manifest.layers().iter().cloned())
                .collect();
            found.legacy = Some(Companion {
                node,
                blobs,
                verified,
            });
        }
        Ok(())
    }

    fn legacy_layer(
        &self,
        payload: &[u8],
        layer: &Descriptor,
        hex: &str,
        allowed: &crate::policy::Allowed,
        manifest: &Descriptor,
    ) -> Result<ImageSignature, (String, String)> {
        let format = |reason: String| ("format".to_string(), reason);
        let parsed = parse_payload(payload).map_err(format)?;
        let names = &parsed.critical.image.docker_manifest_digest;
        if *names != format!("sha256:{hex}") {
            return Err((
                "oci.digest-not-signed".into(),
                format!("its payload signs {}, not sha256:{hex}", quoted(names)),
            ));
        }
        let annotations: BTreeMap<String, String> = layer
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let bundle = layer_bundle(payload, &annotations).map_err(format)?;
        let accepted = self
            .artifacts
            .judge_under(allowed, &ArtifactDigest::of_bytes(payload), &bundle, false)
            .map_err(rejection)?;
        Ok(ImageSignature {
            form: SignatureForm::Legacy,
            verified: accepted.verified,
            bundle_json: bundle,
            source: manifest.digest().to_string(),
        })
    }

    /// Bundle referrers: listed by the fallback tag, or untagged
    /// `index.json` entries whose `subject` is the image.
    fn referrers(
        &self,
        source: &dyn BlobSource,
        index: &ImageIndex,
        root: &Descriptor,
        hex: &str,
        allowed: &crate::policy::Allowed,
        found: &mut Found,
    ) -> Result<(), ImageRejection> {
        let mut candidates: Vec<Descriptor> = Vec::new();
        if let Some(entry) = find_tag(index, &referrers_tag(hex)) {
            let node = read_node(source, &entry)?;
            if let Node::Index(list) = &node.node {
                candidates.extend(list.manifests().iter().cloned());
            }
        }
        for d in index.manifests() {
            let is_bundle = d
                .artifact_type()
                .as_ref()
                .is_some_and(|t| t.to_string() == MEDIA_BUNDLE_V03);
            if is_bundle && !candidates.iter().any(|c| c.digest() == d.digest()) {
                candidates.push(d.clone());
            }
        }
        for d in candidates.iter().take(MAX_REFERRERS) {
            match self.referrer(source, d, root, allowed) {
                Ok(Some((sig, node, blobs))) => {
                    let is_signature = sig
                        .verified
                        .predicate_type
                        .as_deref()
                        .is_none_or(|p| p == COSIGN_SIGN_PREDICATE);
                    if is_signature {
                        found.signatures.push(sig);
                    } else {
                        found.attestations.push(sig);
                    }
                    let verified = blobs.get(1..).unwrap_or_default().to_vec();
                    found.referrers.push(Companion {
                        node,
                        blobs,
                        verified,
                    });
                }
                Ok(None) => {}
                Err((check, reason)) => {
                    let reason = format!("referrer {}: {reason}", d.digest());
                    found.dropped.push((check.clone(), reason.clone()));
                    found
                        .failures
                        .push((SignatureForm::Referrer, check, reason));
                }
            }
        }
        Ok(())
    }

    /// One referrer: `None` when it is not a Sigstore bundle of this image.
    #[allow(clippy::type_complexity)]
    fn referrer(
        &self,
        source: &dyn BlobSource,
        d: &Descriptor,
        root: &Descriptor,
        allowed: &crate::policy::Allowed,
    ) -> Result<Option<(ImageSignature, ClosureNode, Vec<Descriptor>)>, (String, String)> {
        let layout = |e: LayoutError| (e.check().to_string(), e.to_string());
        let node = read_node(source, d).map_err(layout)?;
        let Node::Manifest(m) = &node.node else {
            return Ok(None);
        };
        if m.artifact_type()
            .as_ref()
            .map(ToString::to_string)
            .as_deref()
            != Some(MEDIA_BUNDLE_V03)
        {
            return Ok(None);
        }
        let Some(subject) = m.subject() else {
            return Err((
                "oci.format".into(),
                "a bundle referrer without subject".into(),
            ));
        };
        if subject.digest() != root.digest() {
            return Err((
                "oci.digest-not-signed".into(),
                format!("its subject is {}, not {}", subject.digest(), root.digest()),
            ));
        }
        let [layer] = m.layers().as_slice() else {
            return Err((
                "oci.format".into(),
                format!(
                    "{} layers (a bundle referrer has exactly one)",
                    m.layers().len()
                ),
            ));
        };
        let bundle = read_checked(source, layer).map_err(layout)?;
        let digest = ArtifactDigest::parse(root.digest().as_ref())
            .ok_or_else(|| ("oci.digest-algorithm".to_string(), "not sha256".to_string()))?;
        let accepted = self
            .artifacts
            .judge_under(allowed, &digest, &bundle, false)
            .map_err(rejection)?;
        source.check(m.config()).map_err(layout)?;
        let sig = ImageSignature {
            form: SignatureForm::Referrer,
            verified: accepted.verified,
            bundle_json: bundle,
            source: layer.digest().to_string(),
        };
        Ok(Some((
            sig,
            node.clone(),
            vec![m.config().clone(), layer.clone()],
        )))
    }
}

fn rejection(r: ArtifactRejection) -> (String, String) {
    (r.check().to_string(), r.to_string())
}

/// The `index.json` entry tagged `tag`.
fn find_tag(index: &ImageIndex, tag: &str) -> Option<Descriptor> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(super::ANNOTATION_REF_NAME))
                .is_some_and(|t| t == tag)
        })
        .cloned()
}

/// The images of a layout: tagged entries that are not another manifest's
/// signatures, attestations or referrers.
pub fn images(index: &ImageIndex) -> Vec<TaggedImage> {
    super::layout::tagged(index)
        .into_iter()
        .filter(|t| {
            t.tag
                .as_deref()
                .is_some_and(|tag| !super::cosign::is_companion_tag(tag))
        })
        .collect()
}
