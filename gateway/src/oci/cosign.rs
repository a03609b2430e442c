//! The two signature forms cosign attaches to an image, read and written.
//!
//! - Legacy (cosign's signature specification): a manifest tagged
//!   `sha256-<hex>.sig` whose layers are simple-signing payloads
//!   (`critical.image.docker-manifest-digest` names the signed manifest),
//!   each annotated with its base64 signature, PEM certificate, PEM chain
//!   and the Rekor bundle (SET and logged body). A layer is judged as a
//!   v0.1 Sigstore bundle made from those annotations: a message signature
//!   over the payload bytes, the leaf certificate, the tlog entry with its
//!   SET. The chain annotation is not trusted: paths are built from the
//!   trusted root alone, as sigstore-go does.
//! - Bundle referrers (cosign's bundle specification): a manifest with
//!   `artifactType` the bundle v0.3 media type, one layer holding the bundle,
//!   `subject` the signed manifest; found through the referrers fallback tag
//!   `sha256-<hex>` or as an untagged `index.json` entry.
//!
//! The payload type and the Rekor bundle annotation are the `sigstore`
//! crate's (`cosign::payload::SimpleSigning`, `cosign::bundle::Bundle`):
//! its cosign types are the wire format; airgate's verifier is the judge.

use std::collections::BTreeMap;

use oci_spec::image::Descriptor;
use serde_json::{json, Value};
use sigstore::cosign::bundle::{Bundle as RekorBundle, Payload as RekorPayload};
use sigstore::cosign::payload::simple_signing::{SimpleSigning, CRITICAL_TYPE_NAME};

use super::{
    ANNOTATION_BUNDLE, ANNOTATION_BUNDLE_CONTENT, ANNOTATION_BUNDLE_PREDICATE,
    ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_CREATED, ANNOTATION_SIGNATURE, EMPTY_BLOB,
    MEDIA_BUNDLE_V03, MEDIA_EMPTY, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
    MEDIA_SIMPLESIGNING,
};
use crate::crypto::sha256;
use crate::encoding::{b64_decode, b64_encode};
use crate::escape::quoted;

/// Largest simple-signing payload accepted.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// The legacy signature tag of a manifest digest (`sha256-<hex>.sig`).
pub fn signature_tag(sha256_hex: &str) -> String {
    format!("sha256-{sha256_hex}.sig")
}

/// The referrers fallback tag of a manifest digest (`sha256-<hex>`).
pub fn referrers_tag(sha256_hex: &str) -> String {
    format!("sha256-{sha256_hex}")
}

/// True for tags that belong to another manifest's signatures, attestations
/// or referrers rather than naming an image.
pub fn is_companion_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let hex = rest
        .strip_suffix(".sig")
        .or_else(|| rest.strip_suffix(".att"))
        .or_else(|| rest.strip_suffix(".sbom"))
        .unwrap_or(rest);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A simple-signing payload, checked: cosign's type, and the manifest digest
/// it names.
pub fn parse_payload(payload: &[u8]) -> Result<SimpleSigning, String> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "simple-signing payload of {} bytes (at most {MAX_PAYLOAD_BYTES})",
            payload.len()
        ));
    }
    let parsed: SimpleSigning = crate::strict_json::from_slice(payload)
        .map_err(|e| format!("simple-signing payload: {e}"))?;
    if parsed.critical.type_name != CRITICAL_TYPE_NAME {
        return Err(format!(
            "simple-signing payload type {} is not {CRITICAL_TYPE_NAME:?}",
            quoted(&parsed.critical.type_name)
        ));
    }
    Ok(parsed)
}

/// A simple-signing payload for `docker_reference` (a repository, as cosign
/// writes it) and a `sha256:<hex>` manifest digest, as cosign serializes it.
pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let p = SimpleSigning {
        critical: sigstore::cosign::payload::simple_signing::Critical {
            identity: sigstore::cosign::payload::simple_signing::Identity {
                docker_reference: docker_reference.to_string(),
            },
            image: sigstore::cosign::payload::simple_signing::Image {
                docker_manifest_digest: manifest_digest.to_string(),
            },
            type_name: CRITICAL_TYPE_NAME.to_string(),
        },
        optional: None,
    };
    serde_json::to_vec(&p).unwrap_or_default()
}

/// A legacy signature layer as a v0.1 Sigstore bundle (JSON) for the
/// verifier: message signature over the payload, the leaf certificate, the
/// tlog entry with its SET. Errors name the annotation at fault.
pub fn layer_bundle(
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, String> {
    let get = |key: &str| {
        annotations
            .get(key)
            .ok_or_else(|| format!("annotation {key} is missing"))
    };
    let signature = get(ANNOTATION_SIGNATURE)?;
    b64_decode(signature)
        .ok_or_else(|| format!("annotation {ANNOTATION_SIGNATURE} is not base64"))?;
    let cert_pem = get(ANNOTATION_CERTIFICATE)
        .map_err(|e| format!("{e}: keyed cosign signatures (no certificate) are not accepted"))?;
    let leaf = crate::crypto::pem_decode(cert_pem, "CERTIFICATE")
        .ok_or_else(|| format!("annotation {ANNOTATION_CERTIFICATE} holds no PEM certificate"))?;
    let rekor_text = get(ANNOTATION_BUNDLE)
        .map_err(|e| format!("{e}: the signature was not logged (no transparency log entry)"))?;
    let rekor: RekorBundle = crate::strict_json::from_slice(rekor_text.as_bytes())
        .map_err(|e| format!("annotation {ANNOTATION_BUNDLE}: {e}"))?;
    let body = b64_decode(&rekor.payload.body)
        .ok_or_else(|| format!("annotation {ANNOTATION_BUNDLE}: Payload.body is not base64"))?;
    let (kind, version, _) = crate::bundle::rekor_body::parse_body(&body)
        .map_err(|e| format!("annotation {ANNOTATION_BUNDLE}: logged body: {e}"))?;
    let log_id = hex::decode(&rekor.payload.log_id)
        .map_err(|_| format!("annotation {ANNOTATION_BUNDLE}: Payload.logID is not hex"))?;
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": {
            "x509CertificateChain": {"certificates": [{"rawBytes": b64_encode(&leaf)}]},
            "tlogEntries": [{
                "logIndex": rekor.payload.log_index.to_string(),
                "logId": {"keyId": b64_encode(&log_id)},
                "kindVersion": {"kind": kind, "version": version},
                "integratedTime": rekor.payload.integrated_time.to_string(),
                "inclusionPromise": {"signedEntryTimestamp": rekor.signed_entry_timestamp},
                "canonicalizedBody": rekor.payload.body,
            }],
        },
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64_encode(&sha256(payload))},
            "signature": signature,
        },
    });
    serde_json::to_vec(&bundle).map_err(|e| format!("bundle: {e}"))
}

/// The annotations of a legacy signature layer, from a v0.3 message
/// signature bundle over the payload (with a SET) and the CA chain PEM.
pub fn layer_annotations(
    bundle_json: &[u8],
    chain_pem: &str,
) -> Result<BTreeMap<String, String>, String> {
    let v: Value = serde_json::from_slice(bundle_json).map_err(|e| format!("bundle: {e}"))?;
    let text = |path: &[&str]| -> Result<String, String> {
        let mut cur = &v;
        for key in path {
            cur = cur
                .get(key)
                .ok_or_else(|| format!("bundle: {} missing", path.join(".")))?;
        }
        cur.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("bundle: {} is not a string", path.join(".")))
    };
    let entry = v
        .pointer("/verificationMaterial/tlogEntries/0")
        .ok_or("bundle: no tlog entry")?;
    let entry_text = |key: &str| -> Result<String, String> {
        entry
            .pointer(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("bundle: tlog entry {key} missing"))
    };
    let number = |key: &str| -> Result<i64, String> {
        entry_text(key)?
            .parse()
            .map_err(|_| format!("bundle: tlog entry {key} is not a number"))
    };
    let leaf = b64_decode(&text(&["verificationMaterial", "certificate", "rawBytes"])?)
        .ok_or_else(|| "bundle: certificate is not base64".to_string())?;
    let log_id = b64_decode(&entry_text("/logId/keyId")?)
        .ok_or_else(|| "bundle: logId is not base64".to_string())?;
    let rekor = RekorBundle {
        signed_entry_timestamp: entry_text("/inclusionPromise/signedEntryTimestamp")?,
        payload: RekorPayload {
            body: entry_text("/canonicalizedBody")?,
            integrated_time: number("/integratedTime")?,
            log_index: number("/logIndex")?,
            log_id: hex::encode(log_id),
        },
    };
    let mut out = BTreeMap::new();
    out.insert(
        ANNOTATION_SIGNATURE.to_string(),
        text(&["messageSignature", "signature"])?,
    );
    out.insert(
        ANNOTATION_CERTIFICATE.to_string(),
        pem::encode(&pem::Pem::new("CERTIFICATE", leaf)),
    );
    out.insert(ANNOTATION_CHAIN.to_string(), chain_pem.to_string());
    out.insert(
        ANNOTATION_BUNDLE.to_string(),
        serde_json::to_string(&rekor).map_err(|e| format!("rekor bundle: {e}"))?,
    );
    Ok(out)
}

/// A CA chain as cosign's chain annotation holds it: PEM certificates,
/// intermediates first, the root last.
pub fn chain_pem(ders: &[&[u8]]) -> String {
    ders.iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())))
        .collect()
}

/// A blob to store and the descriptor naming it.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Its descriptor.
    pub descriptor: Descriptor,
}

impl Blob {
    /// A blob of `media_type`.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        let descriptor = descriptor(media_type, &bytes);
        Blob { bytes, descriptor }
    }
}

/// The descriptor of bytes (sha256).
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Descriptor {
    let hex = hex::encode(sha256(bytes));
    let digest = match oci_spec::image::Digest::try_from(format!("sha256:{hex}")) {
        Ok(d) => d,
        Err(_) => zero_digest(),
    };
    Descriptor::new(media_type.into(), bytes.len() as u64, digest)
}

/// `sha256:00…`: never reached (64 lowercase hex digits always parse).
#[allow(clippy::expect_used)]
fn zero_digest() -> oci_spec::image::Digest {
    oci_spec::image::Digest::try_from(format!("sha256:{}", "0".repeat(64)))
        .expect("a constant sha256 digest parses")
}

fn descriptor_json(d: &Descriptor) -> Value {
    serde_json::to_value(d).unwrap_or(Value::Null)
}

/// A legacy signature manifest over `layers` (payload, annotations), with
/// cosign's config (one diff ID per payload). Returns the config, the
/// payload blobs and the manifest, all to store.
pub fn signature_manifest(layers: &[(Vec<u8>, BTreeMap<String, String>)]) -> Vec<Blob> {
    let payloads: Vec<Blob> = layers
        .iter()
        .map(|(p, _)| Blob::new(MEDIA_SIMPLESIGNING, p.clone()))
        .collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {
            "type": "layers",
            "diff_ids": payloads.iter().map(|b| b.descriptor.digest().to_string()).collect::<Vec<_>>(),
        },
    });
    let config = Blob::new(
        MEDIA_OCI_CONFIG,
        serde_json::to_vec(&config).unwrap_or_default(),
    );
    let layer_json: Vec<Value> = payloads
        .iter()
        .zip(layers)
        .map(|(b, (_, ann))| {
            let mut d = descriptor_json(&b.descriptor);
            d["annotations"] = json!(ann);
            d
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": descriptor_json(&config.descriptor),
        "layers": layer_json,
    });
    let manifest = Blob::new(
        MEDIA_OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap_or_default(),
    );
    let mut out = vec![config];
    out.extend(payloads);
    out.push(manifest);
    out
}

/// A bundle referrer: the empty config, the bundle blob and the manifest
/// with `subject`, as cosign's bundle specification lays it out. The
/// manifest is last.
pub fn bundle_referrer(
    bundle_json: &[u8],
    subject: &Descriptor,
    predicate_type: Option<&str>,
    created: &str,
) -> Vec<Blob> {
    let empty = Blob::new(MEDIA_EMPTY, EMPTY_BLOB.to_vec());
    let bundle = Blob::new(MEDIA_BUNDLE_V03, bundle_json.to_vec());
    let mut annotations = BTreeMap::new();
    annotations.insert(
        ANNOTATION_BUNDLE_CONTENT,
        if predicate_type.is_some() {
            "dsse-envelope"
        } else {
            "message-signature"
        },
    );
    if let Some(p) = predicate_type {
        annotations.insert(ANNOTATION_BUNDLE_PREDICATE, p);
    }
    annotations.insert(ANNOTATION_CREATED, created);
    let subject = Descriptor::new(
        subject.media_type().clone(),
        subject.size(),
        subject.digest().clone(),
    );
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "artifactType": MEDIA_BUNDLE_V03,
        "config": descriptor_json(&empty.descriptor),
        "layers": [descriptor_json(&bundle.descriptor)],
        "subject": descriptor_json(&subject),
        "annotations": annotations,
    });
    let mut manifest_blob = Blob::new(
        MEDIA_OCI_MANIFEST,
        serde_json::to_vec(&manifest).unwrap_or_default(),
    );
    manifest_blob
        .descriptor
        .set_artifact_type(Some(MEDIA_BUNDLE_V03.into()));
    let ann: std::collections::HashMap<String, String> = annotations
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    manifest_blob.descriptor.set_annotations(Some(ann));
    vec![empty, bundle, manifest_blob]
}

/// A referrers index (the fallback tag's, or the referrers API's answer)
/// listing `referrers` (their descriptors carry `artifactType` and
/// annotations), in order.
pub fn referrers_index(referrers: &[Descriptor]) -> Blob {
    let manifests: Vec<Value> = referrers.iter().map(descriptor_json).collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": manifests,
    });
    Blob::new(
        MEDIA_OCI_INDEX,
        serde_json::to_vec(&index).unwrap_or_default(),
    )
}

/// The descriptor a referrers index lists for a referrer manifest: its
/// `artifactType` and annotations copied up, as the distribution spec's
/// referrers API does.
pub fn referrer_descriptor(node: &super::layout::ClosureNode) -> Descriptor {
    let mut d = Descriptor::new(
        node.descriptor.media_type().clone(),
        node.descriptor.size(),
        node.descriptor.digest().clone(),
    );
    if let super::layout::Node::Manifest(m) = &node.node {
        d.set_artifact_type(m.artifact_type().clone());
        d.set_annotations(m.annotations().clone());
    }
    d
}

/// A descriptor with an `org.opencontainers.image.ref.name` annotation (for
/// a layout's `index.json`).
pub fn tagged_descriptor(d: &Descriptor, ref_name: &str) -> Descriptor {
    let mut out = d.clone();
    let mut annotations = out.annotations().clone().unwrap_or_default();
    annotations.insert(super::ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
    out.set_annotations(Some(annotations));
    out
}

/// An in-toto statement that `repository` at `sha256_hex` is signed
/// (cosign v3's image signature statement: predicate `{}`).
pub fn sign_statement(repository: &str, sha256_hex: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": crate::attest::STATEMENT_V1,
        "subject": [{"name": repository, "digest": {"sha256": sha256_hex}}],
        "predicateType": super::COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }))
    .unwrap_or_default()
}

/// Our signatures of one image, logged: the message signature over the
/// simple-signing payload, and DSSE bundles with their predicate types.
#[derive(Debug, Clone)]
pub struct OurSignatures {
    /// The simple-signing payload signed.
    pub payload: Vec<u8>,
    /// The v0.3 message-signature bundle over it (with a SET).
    pub payload_bundle: Vec<u8>,
    /// DSSE bundles (cosign sign statement, attestations) and predicates.
    pub referrers: Vec<(Vec<u8>, String)>,
}

/// What attaching signatures writes: the blobs to store (manifests last)
/// and the two tags' descriptors.
#[derive(Debug, Clone)]
pub struct Attached {
    /// Every new blob.
    pub blobs: Vec<Blob>,
    /// The `.sig` manifest (tag [`signature_tag`]).
    pub signature_manifest: Descriptor,
    /// The referrers index (tag [`referrers_tag`]).
    pub referrers_index: Descriptor,
    /// The referrer manifests, as listed.
    pub referrers: Vec<Descriptor>,
}

/// Attaches our signatures to `subject` next to the upstream ones: a `.sig`
/// manifest with the upstream layers (as they were, annotations and all)
/// then ours, as cosign appends; a referrers index listing the upstream
/// referrers then ours. Errors only on a bundle without a SET.
pub fn attach(
    subject: &Descriptor,
    upstream_layers: &[(Vec<u8>, BTreeMap<String, String>)],
    upstream_referrers: &[Descriptor],
    ours: &OurSignatures,
    chain_pem: &str,
    created: &str,
) -> Result<Attached, String> {
    let mut layers = upstream_layers.to_vec();
    layers.push((
        ours.payload.clone(),
        layer_annotations(&ours.payload_bundle, chain_pem)?,
    ));
    let mut blobs = signature_manifest(&layers);
    let signature_manifest = blobs
        .last()
        .map(|b| b.descriptor.clone())
        .ok_or("no signature manifest")?;
    let mut listed = upstream_referrers.to_vec();
    for (bundle, predicate) in &ours.referrers {
        let referrer = bundle_referrer(bundle, subject, Some(predicate), created);
        if let Some(m) = referrer.last() {
            listed.push(m.descriptor.clone());
        }
        blobs.extend(referrer);
    }
    let index = referrers_index(&listed);
    let referrers_index = index.descriptor.clone();
    blobs.push(index);
    Ok(Attached {
        blobs,
        signature_manifest,
        referrers_index,
        referrers: listed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns_byte_for_byte() {
        // The payload cosign 2.x writes (its payload.Cosign marshalled), for
        // a repository and digest: keys in cosign's order, optional null.
        let digest = format!("sha256:{}", "ab".repeat(32));
        let expected = format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.example/org/app\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
        );
        assert_eq!(
            String::from_utf8(payload("registry.example/org/app", &digest)).expect("utf8"),
            expected
        );
        let parsed = parse_payload(expected.as_bytes()).expect("parses");
        assert_eq!(parsed.critical.image.docker_manifest_digest, digest);
    }

    #[test]
    fn payload_of_another_type_is_refused() {
        let p = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
        assert!(parse_payload(p).expect_err("type").contains("atomic"));
    }

    #[test]
    fn payload_with_duplicate_keys_is_refused() {
        let p = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00","docker-manifest-digest":"sha256:11"},"type":"cosign container image signature"},"optional":null}"#;
        assert!(parse_payload(p).is_err());
    }

    #[test]
    fn unlogged_layer_is_refused_by_name() {
        let mut ann = BTreeMap::new();
        ann.insert(ANNOTATION_SIGNATURE.to_string(), b64_encode(b"sig"));
        ann.insert(
            ANNOTATION_CERTIFICATE.to_string(),
            pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3])),
        );
        let err = layer_bundle(b"{}", &ann).expect_err("no bundle");
        assert!(err.contains("not logged"), "{err}");
        ann.remove(ANNOTATION_CERTIFICATE);
        assert!(layer_bundle(b"{}", &ann)
            .expect_err("keyed")
            .contains("keyed"));
    }

    #[test]
    fn companion_tags_are_recognised() {
        let hex = "0".repeat(64);
        assert!(is_companion_tag(&signature_tag(&hex)));
        assert!(is_companion_tag(&referrers_tag(&hex)));
        assert!(is_companion_tag(&format!("sha256-{hex}.att")));
        assert!(!is_companion_tag("v1.0"));
        assert!(!is_companion_tag("sha256-short.sig"));
    }
}
