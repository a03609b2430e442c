//! The Sigstore bundle JSON format (protobuf-specs `dev.sigstore.bundle.v1.Bundle`,
//! proto3 JSON mapping) and its structural validation. Pure: bytes in, types out.

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::crypto::HashAlgorithm;
use crate::encoding::b64_decode;
use crate::tlog::merkle::Hash;
use crate::x509::Certificate;

/// Bundle media type, v0.1.
pub const MEDIA_TYPE_V0_1: &str = "application/vnd.dev.sigstore.bundle+json;version=0.1";
/// Bundle media type, v0.2.
pub const MEDIA_TYPE_V0_2: &str = "application/vnd.dev.sigstore.bundle+json;version=0.2";
/// Bundle media type, v0.3 (legacy spelling).
pub const MEDIA_TYPE_V0_3_LEGACY: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/// Bundle media type, v0.3.
pub const MEDIA_TYPE_V0_3: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Explicit limits on what a bundle may contain.
#[derive(Debug, Clone, Copy)]
pub struct BundleLimits {
    /// Maximum bundle size in bytes.
    pub max_bundle_bytes: usize,
    /// Maximum number of tlog entries.
    pub max_tlog_entries: usize,
    /// Maximum number of inclusion proof hashes.
    pub max_proof_hashes: usize,
    /// Maximum number of certificates in a chain.
    pub max_chain_certificates: usize,
    /// Maximum number of RFC 3161 timestamps.
    pub max_timestamps: usize,
    /// Maximum number of DSSE signatures.
    pub max_dsse_signatures: usize,
}

impl Default for BundleLimits {
    fn default() -> Self {
        BundleLimits {
            max_bundle_bytes: 16 << 20,
            max_tlog_entries: 8,
            max_proof_hashes: 64,
            max_chain_certificates: 8,
            max_timestamps: 8,
            max_dsse_signatures: 8,
        }
    }
}

/// Why a bundle is malformed (before any cryptographic check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleFormatError {
    /// Not valid JSON or not the bundle schema.
    #[error("bundle is not valid bundle JSON: {0}")]
    Json(String),
    /// Over the size limit.
    #[error("bundle is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Actual size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Unknown media type.
    #[error("unsupported bundle media type {0:?} (supported: v0.1, v0.2, v0.3)")]
    UnsupportedMediaType(String),
    /// A required field is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// A field holds an invalid value.
    #[error("{field}: {problem}")]
    Invalid {
        /// JSON path of the field.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// A count limit was exceeded.
    #[error("{field} has {count} items, over the limit of {limit}")]
    TooMany {
        /// JSON path of the field.
        field: &'static str,
        /// Items found.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> BundleFormatError {
    BundleFormatError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// proto3 JSON int64: a string or a number.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Number(i64),
        Text(String),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(s) => s
            .parse::<i64>()
            .map_err(|_| de::Error::custom(format!("{s:?} is not a 64-bit integer"))),
    }
}

fn opt_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    int64(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BundleJson {
    media_type: String,
    verification_material: Option<MaterialJson>,
    message_signature: Option<MessageSignatureJson>,
    dsse_envelope: Option<EnvelopeJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MaterialJson {
    public_key: Option<PublicKeyIdJson>,
    x509_certificate_chain: Option<ChainJson>,
    certificate: Option<RawBytesJson>,
    #[serde(default)]
    tlog_entries: Vec<TlogEntryJson>,
    timestamp_verification_data: Option<TimestampDataJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublicKeyIdJson {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBytesJson {
    #[serde(default)]
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimestampDataJson {
    #[serde(default)]
    rfc3161_timestamps: Vec<SignedTimestampJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SignedTimestampJson {
    #[serde(default)]
    signed_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TlogEntryJson {
    #[serde(default, deserialize_with = "int64")]
    log_index: i64,
    log_id: Option<LogIdJson>,
    kind_version: Option<KindVersionJson>,
    #[serde(default, deserialize_with = "opt_int64")]
    integrated_time: Option<i64>,
    inclusion_promise: Option<PromiseJson>,
    inclusion_proof: Option<ProofJson>,
    #[serde(default)]
    canonicalized_body: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogIdJson {
    #[serde(default)]
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KindVersionJson {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PromiseJson {
    #[serde(default)]
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ProofJson {
    #[serde(default, deserialize_with = "int64")]
    log_index: i64,
    #[serde(default)]
    root_hash: String,
    #[serde(default, deserialize_with = "int64")]
    tree_size: i64,
    #[serde(default)]
    hashes: Vec<String>,
    checkpoint: Option<CheckpointJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckpointJson {
    #[serde(default)]
    envelope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MessageSignatureJson {
    message_digest: Option<MessageDigestJson>,
    #[serde(default)]
    signature: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MessageDigestJson {
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvelopeJson {
    #[serde(default)]
    payload: String,
    #[serde(default)]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<EnvelopeSignatureJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvelopeSignatureJson {
    #[serde(default)]
    sig: String,
    #[serde(default)]
    keyid: String,
}

/// The bundle format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BundleVersion {
    /// v0.1: SET required, inclusion proof optional.
    V0_1,
    /// v0.2: inclusion proof with checkpoint required.
    V0_2,
    /// v0.3: single leaf certificate instead of a chain.
    V0_3,
}

/// What the bundle was signed with.
#[derive(Debug, Clone)]
pub enum SigningMaterial {
    /// A Fulcio-style leaf certificate.
    Certificate(Box<Certificate>),
    /// A managed key, identified only by a hint.
    PublicKey {
        /// The key hint (informational).
        hint: String,
    },
}

/// The inclusion proof of a tlog entry.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    /// Index of the entry in the tree.
    pub log_index: u64,
    /// Root hash the proof leads to.
    pub root_hash: Hash,
    /// Size of the tree.
    pub tree_size: u64,
    /// Audit path, leaf to root.
    pub hashes: Vec<Hash>,
    /// The signed checkpoint (signed note text), if any.
    pub checkpoint: Option<String>,
}

/// A transparency log entry carried by the bundle.
#[derive(Debug, Clone)]
pub struct TlogEntry {
    /// The entry's log index (covered by the SET).
    pub log_index: u64,
    /// The log's ID.
    pub log_id: Vec<u8>,
    /// Entry kind (`hashedrekord`, `dsse`, `intoto`).
    pub kind: String,
    /// Entry API version.
    pub version: String,
    /// Integrated time (seconds), if the log records one.
    pub integrated_time: Option<i64>,
    /// The signed entry timestamp, if any.
    pub inclusion_promise: Option<Vec<u8>>,
    /// The inclusion proof, if any.
    pub inclusion_proof: Option<InclusionProof>,
    /// The canonicalized entry body.
    pub canonicalized_body: Vec<u8>,
}

/// A DSSE envelope.
#[derive(Debug, Clone)]
pub struct DsseEnvelope {
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// Payload type.
    pub payload_type: String,
    /// Signatures (exactly one is supported for verification).
    pub signatures: Vec<DsseSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone)]
pub struct DsseSignature {
    /// Signature bytes.
    pub sig: Vec<u8>,
    /// Key ID (may be empty).
    pub keyid: String,
}

impl DsseEnvelope {
    /// DSSE pre-authentication encoding of the payload.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

/// DSSE PAE: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The signed content of a bundle.
#[derive(Debug, Clone)]
pub enum SignedContent {
    /// A signature over the artifact digest.
    MessageSignature {
        /// The claimed digest (an unauthenticated hint that must match).
        digest: Option<(HashAlgorithm, Vec<u8>)>,
        /// The signature bytes.
        signature: Vec<u8>,
    },
    /// A DSSE envelope (typically an in-toto statement).
    Dsse(DsseEnvelope),
}

impl SignedContent {
    /// The signature bytes RFC 3161 timestamps are computed over.
    pub fn signature_bytes(&self) -> &[u8] {
        match self {
            SignedContent::MessageSignature { signature, .. } => signature,
            SignedContent::Dsse(env) => env
                .signatures
                .first()
                .map(|s| s.sig.as_slice())
                .unwrap_or_default(),
        }
    }
}

/// A structurally valid bundle, all encodings decoded.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    /// Format version.
    pub version: BundleVersion,
    /// The signing material.
    pub material: SigningMaterial,
    /// Transparency log entries.
    pub tlog_entries: Vec<TlogEntry>,
    /// DER RFC 3161 time-stamp responses or tokens.
    pub timestamps: Vec<Vec<u8>>,
    /// The signed content.
    pub content: SignedContent,
}

fn decode(field: &str, text: &str) -> Result<Vec<u8>, BundleFormatError> {
    if text.is_empty() {
        return Err(invalid(field, "is empty"));
    }
    b64_decode(text).ok_or_else(|| invalid(field, "is not valid base64"))
}

fn hash32(field: &str, text: &str) -> Result<Hash, BundleFormatError> {
    decode(field, text)?
        .try_into()
        .map_err(|_| invalid(field, "is not a 32-byte hash"))
}

impl ParsedBundle {
    /// Parses and structurally validates bundle JSON.
    pub fn from_json(bytes: &[u8], limits: &BundleLimits) -> Result<Self, BundleFormatError> {
        if bytes.len() > limits.max_bundle_bytes {
            return Err(BundleFormatError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bundle_bytes,
            });
        }
        let json: BundleJson =
            serde_json::from_slice(bytes).map_err(|e| BundleFormatError::Json(e.to_string()))?;
        let version = match json.media_type.as_str() {
            MEDIA_TYPE_V0_1 => BundleVersion::V0_1,
            MEDIA_TYPE_V0_2 => BundleVersion::V0_2,
            MEDIA_TYPE_V0_3 | MEDIA_TYPE_V0_3_LEGACY => BundleVersion::V0_3,
            other => return Err(BundleFormatError::UnsupportedMediaType(other.to_string())),
        };
        let material = json
            .verification_material
            .ok_or(BundleFormatError::Missing("verificationMaterial"))?;

        let signing_material = signing_material(&material, version, limits)?;

        if material.tlog_entries.len() > limits.max_tlog_entries {
            return Err(BundleFormatError::TooMany {
                field: "verificationMaterial.tlogEntries",
                count: material.tlog_entries.len(),
                limit: limits.max_tlog_entries,
            });
        }
        let mut tlog_entries = Vec::with_capacity(material.tlog_entries.len());
        for (i, entry) in material.tlog_entries.into_iter().enumerate() {
            tlog_entries.push(parse_tlog_entry(i, entry, version, limits)?);
        }

        let timestamps = timestamps(material.timestamp_verification_data.as_ref(), limits)?;

        let content = match (json.message_signature, json.dsse_envelope) {
            (Some(ms), None) => message_signature(ms)?,
            (None, Some(env)) => dsse_envelope(env, limits)?,
            (None, None) => {
                return Err(BundleFormatError::Missing(
                    "messageSignature or dsseEnvelope",
                ))
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "bundle",
                    "holds both messageSignature and dsseEnvelope",
                ))
            }
        };

        Ok(ParsedBundle {
            version,
            material: signing_material,
            tlog_entries,
            timestamps,
            content,
        })
    }

    /// The leaf certificate, for certificate bundles.
    pub fn certificate(&self) -> Option<&Certificate> {
        match &self.material {
            SigningMaterial::Certificate(c) => Some(c),
            SigningMaterial::PublicKey { .. } => None,
        }
    }
}

fn parse_tlog_entry(
    i: usize,
    entry: TlogEntryJson,
    version: BundleVersion,
    limits: &BundleLimits,
) -> Result<TlogEntry, BundleFormatError> {
    let at = |f: &str| format!("verificationMaterial.tlogEntries[{i}].{f}");
    let log_index = u64::try_from(entry.log_index)
        .map_err(|_| invalid(at("logIndex"), format!("{} is negative", entry.log_index)))?;
    let log_id = entry
        .log_id
        .ok_or_else(|| invalid(at("logId"), "is missing"))
        .and_then(|l| decode(&at("logId.keyId"), &l.key_id))?;
    let kind_version = entry
        .kind_version
        .ok_or_else(|| invalid(at("kindVersion"), "is missing"))?;
    if kind_version.kind.is_empty() || kind_version.version.is_empty() {
        return Err(invalid(at("kindVersion"), "kind and version are required"));
    }
    let integrated_time = match entry.integrated_time {
        None | Some(0) => None,
        Some(t) if t < 0 => return Err(invalid(at("integratedTime"), "is negative")),
        Some(t) => Some(t),
    };
    let inclusion_promise = match entry.inclusion_promise {
        None => None,
        Some(p) => Some(decode(
            &at("inclusionPromise.signedEntryTimestamp"),
            &p.signed_entry_timestamp,
        )?),
    };
    if version == BundleVersion::V0_1 && inclusion_promise.is_none() {
        return Err(invalid(
            at("inclusionPromise"),
            "is required in v0.1 bundles",
        ));
    }
    let inclusion_proof = match entry.inclusion_proof {
        None => None,
        Some(p) => {
            let proof_index = u64::try_from(p.log_index)
                .map_err(|_| invalid(at("inclusionProof.logIndex"), "is negative"))?;
            let tree_size = u64::try_from(p.tree_size)
                .map_err(|_| invalid(at("inclusionProof.treeSize"), "is negative"))?;
            if p.hashes.len() > limits.max_proof_hashes {
                return Err(BundleFormatError::TooMany {
                    field: "inclusionProof.hashes",
                    count: p.hashes.len(),
                    limit: limits.max_proof_hashes,
                });
            }
            let mut hashes = Vec::with_capacity(p.hashes.len());
            for (j, h) in p.hashes.iter().enumerate() {
                hashes.push(hash32(&at(&format!("inclusionProof.hashes[{j}]")), h)?);
            }
            let checkpoint = p.checkpoint.map(|c| c.envelope).filter(|e| !e.is_empty());
            Some(InclusionProof {
                log_index: proof_index,
                root_hash: hash32(&at("inclusionProof.rootHash"), &p.root_hash)?,
                tree_size,
                hashes,
                checkpoint,
            })
        }
    };
    if version >= BundleVersion::V0_2 {
        match &inclusion_proof {
            None => {
                return Err(invalid(
                    at("inclusionProof"),
                    "is required in v0.2+ bundles",
                ))
            }
            Some(p) if p.checkpoint.is_none() => {
                return Err(invalid(
                    at("inclusionProof.checkpoint"),
                    "is required in v0.2+ bundles",
                ))
            }
            Some(_) => {}
        }
    }
    let canonicalized_body = decode(&at("canonicalizedBody"), &entry.canonicalized_body)?;
    Ok(TlogEntry {
        log_index,
        log_id,
        kind: kind_version.kind,
        version: kind_version.version,
        integrated_time,
        inclusion_promise,
        inclusion_proof,
        canonicalized_body,
    })
}

/// The signing material: exactly one of a public key hint, a chain (before
/// v0.3; its leaf kept) or a certificate (v0.3).
fn signing_material(
    material: &MaterialJson,
    version: BundleVersion,
    limits: &BundleLimits,
) -> Result<SigningMaterial, BundleFormatError> {
    let set_count = [
        material.public_key.is_some(),
        material.x509_certificate_chain.is_some(),
        material.certificate.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if set_count != 1 {
        return Err(invalid(
            "verificationMaterial",
            "must hold exactly one of publicKey, x509CertificateChain, certificate",
        ));
    }
    let material_out = if let Some(pk) = &material.public_key {
        SigningMaterial::PublicKey {
            hint: pk.hint.clone(),
        }
    } else if let Some(chain) = &material.x509_certificate_chain {
        if version >= BundleVersion::V0_3 {
            return Err(invalid(
                "verificationMaterial.x509CertificateChain",
                "v0.3 bundles must carry a single certificate, not a chain",
            ));
        }
        if chain.certificates.is_empty() {
            return Err(invalid(
                "verificationMaterial.x509CertificateChain",
                "is empty",
            ));
        }
        if chain.certificates.len() > limits.max_chain_certificates {
            return Err(BundleFormatError::TooMany {
                field: "verificationMaterial.x509CertificateChain.certificates",
                count: chain.certificates.len(),
                limit: limits.max_chain_certificates,
            });
        }
        let mut certs = Vec::new();
        for (i, raw) in chain.certificates.iter().enumerate() {
            let field = format!("verificationMaterial.x509CertificateChain.certificates[{i}]");
            let der = decode(&field, &raw.raw_bytes)?;
            let cert = Certificate::from_der(&der).map_err(|e| invalid(&field, e.to_string()))?;
            if cert.is_self_issued() {
                return Err(invalid(
                        &field,
                        "is a self-issued root certificate; trust anchors come from the trusted root, not the bundle",
                    ));
            }
            certs.push(cert);
        }
        // Intermediates in the bundle are ignored: the trusted root supplies them.
        let leaf = certs.swap_remove(0);
        SigningMaterial::Certificate(Box::new(leaf))
    } else if let Some(cert) = &material.certificate {
        if version < BundleVersion::V0_3 {
            return Err(invalid(
                "verificationMaterial.certificate",
                "is only allowed in v0.3 bundles",
            ));
        }
        let der = decode("verificationMaterial.certificate.rawBytes", &cert.raw_bytes)?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| invalid("verificationMaterial.certificate", e.to_string()))?;
        SigningMaterial::Certificate(Box::new(cert))
    } else {
        return Err(BundleFormatError::Missing("verificationMaterial content"));
    };
    Ok(material_out)
}

/// The RFC 3161 timestamps, decoded (bounded).
fn timestamps(
    data: Option<&TimestampDataJson>,
    limits: &BundleLimits,
) -> Result<Vec<Vec<u8>>, BundleFormatError> {
    let mut timestamps = Vec::new();
    if let Some(data) = data {
        if data.rfc3161_timestamps.len() > limits.max_timestamps {
            return Err(BundleFormatError::TooMany {
                field: "verificationMaterial.timestampVerificationData.rfc3161Timestamps",
                count: data.rfc3161_timestamps.len(),
                limit: limits.max_timestamps,
            });
        }
        for (i, ts) in data.rfc3161_timestamps.iter().enumerate() {
            timestamps.push(decode(
                    &format!("verificationMaterial.timestampVerificationData.rfc3161Timestamps[{i}].signedTimestamp"),
                    &ts.signed_timestamp,
                )?);
        }
    }
    Ok(timestamps)
}

/// A `messageSignature`: the signature and its optional digest.
fn message_signature(ms: MessageSignatureJson) -> Result<SignedContent, BundleFormatError> {
    let signature = decode("messageSignature.signature", &ms.signature)?;
    let digest = match ms.message_digest {
        None => None,
        Some(d) => {
            let algorithm = match d.algorithm.as_str() {
                "SHA2_256" => HashAlgorithm::Sha256,
                "SHA2_384" => HashAlgorithm::Sha384,
                "SHA2_512" => HashAlgorithm::Sha512,
                other => {
                    return Err(invalid(
                        "messageSignature.messageDigest.algorithm",
                        format!("unsupported algorithm {other:?}"),
                    ))
                }
            };
            Some((
                algorithm,
                decode("messageSignature.messageDigest.digest", &d.digest)?,
            ))
        }
    };
    Ok(SignedContent::MessageSignature { digest, signature })
}

/// A `dsseEnvelope`: payload, type and (bounded) signatures.
fn dsse_envelope(
    env: EnvelopeJson,
    limits: &BundleLimits,
) -> Result<SignedContent, BundleFormatError> {
    let payload = b64_decode(&env.payload)
        .ok_or_else(|| invalid("dsseEnvelope.payload", "is not valid base64"))?;
    if env.payload_type.is_empty() {
        return Err(invalid("dsseEnvelope.payloadType", "is empty"));
    }
    if env.signatures.is_empty() {
        return Err(invalid("dsseEnvelope.signatures", "is empty"));
    }
    if env.signatures.len() > limits.max_dsse_signatures {
        return Err(BundleFormatError::TooMany {
            field: "dsseEnvelope.signatures",
            count: env.signatures.len(),
            limit: limits.max_dsse_signatures,
        });
    }
    let mut signatures = Vec::new();
    for (i, s) in env.signatures.iter().enumerate() {
        signatures.push(DsseSignature {
            sig: decode(&format!("dsseEnvelope.signatures[{i}].sig"), &s.sig)?,
            keyid: s.keyid.clone(),
        });
    }
    Ok(SignedContent::Dsse(DsseEnvelope {
        payload,
        payload_type: env.payload_type,
        signatures,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn unknown_media_type_and_garbage() {
        let limits = BundleLimits::default();
        assert!(matches!(
            ParsedBundle::from_json(
                br#"{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=99.9"}"#,
                &limits
            ),
            Err(BundleFormatError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            ParsedBundle::from_json(b"{", &limits),
            Err(BundleFormatError::Json(_))
        ));
        assert!(matches!(
            ParsedBundle::from_json(b"[]", &limits),
            Err(BundleFormatError::Json(_))
        ));
        assert!(matches!(
            ParsedBundle::from_json(
                br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","unexpected":1}"#,
                &limits
            ),
            Err(BundleFormatError::Json(_))
        ));
    }

    #[test]
    fn oversized_bundle_is_rejected_before_parsing() {
        let limits = BundleLimits {
            max_bundle_bytes: 10,
            ..BundleLimits::default()
        };
        assert!(matches!(
            ParsedBundle::from_json(&[b' '; 11], &limits),
            Err(BundleFormatError::TooLarge {
                size: 11,
                limit: 10
            })
        ));
    }
}
