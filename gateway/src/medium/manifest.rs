//! The medium manifest: an in-toto Statement whose subjects are every entry of
//! the medium, in a DSSE envelope signed by the exporter. Pure: bytes in, types out.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::bundle::pae;
use crate::crypto::VerifyingKey;
use crate::encoding::{b64_decode_strict, b64_encode};
use crate::escape::quoted;
use crate::medium::EntryName;

/// Name of the manifest entry (always the first entry of the tar, so the
/// importer authenticates the medium before it reads anything else).
pub const MANIFEST_NAME: &str = "manifest.intoto.json";
/// in-toto predicate type of a medium manifest (v2: manifest first).
pub const MEDIUM_PREDICATE_TYPE: &str = "https://airgate.dev/medium/v2";
/// The predicate type of the earlier layout (manifest last), refused by name.
pub const MEDIUM_V1_PREDICATE_TYPE: &str = "https://airgate.dev/medium/v1";
/// in-toto predicate type of a split medium's chunk index.
pub const CHUNKS_PREDICATE_TYPE: &str = "https://airgate.dev/medium-chunks/v1";
/// DSSE payload type.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Largest manifest accepted: it is read into memory before its signature
/// is checked, so this bounds what an outsider's medium can make the
/// importer hold (about 20,000 artifacts per medium).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// What an entry of the medium is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// An artifact (`artifacts/…`).
    Artifact,
    /// An upstream Sigstore bundle (`bundles/…`).
    Bundle,
    /// A file of the TUF snapshot (`tuf/…`).
    Tuf,
    /// A collector binary (`collectors/…`).
    Collector,
    /// The lockfile (`airgate.lock`).
    Lock,
    /// The low side's policy (`policy.toml`), informative only.
    Policy,
    /// A file of the carried OCI image layout (`oci/…`).
    Image,
}

impl EntryKind {
    /// The kind an entry must have, judging by its name.
    pub fn for_name(name: &EntryName) -> Option<Self> {
        let s = name.as_str();
        match s.split_once('/').map(|(first, _)| first) {
            Some("artifacts") => Some(EntryKind::Artifact),
            Some("bundles") => Some(EntryKind::Bundle),
            Some("tuf") => Some(EntryKind::Tuf),
            Some("collectors") => Some(EntryKind::Collector),
            Some("oci") => Some(EntryKind::Image),
            _ => match s {
                "airgate.lock" => Some(EntryKind::Lock),
                "policy.toml" => Some(EntryKind::Policy),
                _ => None,
            },
        }
    }
}

/// One entry of the medium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Entry name inside the tar.
    pub name: String,
    /// Lowercase hex SHA-256: signed once, as the statement subject's digest
    /// (not repeated in the predicate), and filled in from it on reading.
    #[serde(skip)]
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Kind.
    pub kind: EntryKind,
}

/// What the exporter established about an upstream signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamSigner {
    /// Signer identity (SAN), or `key:sha256:<hex>`.
    pub identity: String,
    /// OIDC issuer ("" for keys).
    pub issuer: String,
    /// Upstream log index.
    pub log_index: u64,
    /// Upstream log URL.
    pub log_url: String,
}

/// An artifact the exporter accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ArtifactRecord {
    /// Artifact name (without the `artifacts/` prefix).
    pub name: String,
    /// Its bundle entry (`bundles/<name>.sigstore.json`, `.sigstore` or `.sigs`).
    pub bundle: String,
    /// Hex SHA-256 (from its entry's subject; not repeated in the predicate).
    #[serde(skip)]
    pub sha256: String,
    /// Size in bytes (from its entry; not repeated in the predicate).
    #[serde(skip)]
    pub size: u64,
    /// Where it came from: `directory` or `collector:<name>`.
    pub origin: String,
    /// The verified upstream signer (informative: the high side re-verifies).
    pub upstream: UpstreamSigner,
}

/// An artifact the exporter left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RejectedRecord {
    /// Artifact name.
    pub name: String,
    /// The failed check.
    pub check: String,
    /// Why.
    pub reason: String,
}

/// TUF role versions of the carried snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TufVersions {
    /// Root version.
    pub root: u64,
    /// Timestamp version.
    pub timestamp: u64,
    /// Snapshot version.
    pub snapshot: u64,
    /// Targets version.
    pub targets: u64,
}

/// A collector that ran for this export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CollectorRecord {
    /// Collector name.
    pub name: String,
    /// Locked version.
    pub version: String,
    /// Platform key.
    pub platform: String,
    /// Binary entry name.
    pub entry: String,
    /// Hex SHA-256 of the binary.
    pub sha256: String,
}

/// The manifest predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MediumPredicate {
    /// `sha256:<hex>` over every entry line (see [`pack_digest`]).
    pub pack_digest: String,
    /// Export time (RFC 3339, UTC).
    pub export_time: String,
    /// Exporter identity (a name the high side enrolls).
    pub exporter: String,
    /// Hex SHA-256 of the exporter key's SPKI.
    pub exporter_key_id: String,
    /// The tool that wrote the medium.
    pub tool_version: String,
    /// Versions of the carried TUF snapshot.
    pub tuf: TufVersions,
    /// Hex SHA-256 of the trusted root derived from it.
    pub trusted_root_sha256: String,
    /// Every entry except the manifest, sorted by name.
    pub entries: Vec<ManifestEntry>,
    /// Accepted artifacts, sorted by name.
    pub artifacts: Vec<ArtifactRecord>,
    /// Left-out artifacts (`--skip-rejected`).
    pub rejected: Vec<RejectedRecord>,
    /// Collectors that ran.
    pub collectors: Vec<CollectorRecord>,
    /// Accepted container images, sorted by reference (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRecord>,
}

/// A container image the exporter accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageRecord {
    /// `repository:tag` (its `ref.name` in the carried `oci/index.json`).
    pub reference: String,
    /// `sha256:<hex>` of the tagged manifest or index.
    pub digest: String,
    /// Bytes of its closure (manifests, configs, layers).
    pub size: u64,
    /// The verified upstream signers, one per verified signature, with the
    /// form (`cosign .sig` or `bundle referrer`); informative: the high
    /// side re-verifies.
    pub signatures: Vec<ImageSignatureRecord>,
    /// Predicate types of the verified attestations carried with it.
    pub attestations: Vec<String>,
}

/// One verified signature of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSignatureRecord {
    /// `cosign .sig` or `bundle referrer`.
    pub form: String,
    /// The signer.
    pub upstream: UpstreamSigner,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Statement<P> {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
    predicate: P,
}

/// A DSSE envelope as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Envelope {
    /// Base64 payload.
    pub payload: String,
    /// Payload type.
    pub payload_type: String,
    /// Signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Hex key ID.
    pub keyid: String,
    /// Base64 signature.
    pub sig: String,
}

/// Why a manifest or chunk index is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not a DSSE envelope of an in-toto statement of the expected type.
    #[error("{what} is malformed: {detail}")]
    Malformed {
        /// Manifest or chunk index.
        what: &'static str,
        /// Detail.
        detail: String,
    },
    /// Signed by a revoked exporter key.
    #[error("{what} is signed by key {keyid} of exporter {exporter}, revoked at {revoked_at}")]
    RevokedKey {
        /// Manifest or chunk index.
        what: &'static str,
        /// The key ID found.
        keyid: String,
        /// The exporter it was enrolled for (quoted).
        exporter: String,
        /// When it was revoked (quoted).
        revoked_at: String,
    },
    /// Signed by no enrolled exporter key.
    #[error("{what} is signed by key {keyid}, which is not an enrolled exporter key")]
    UnknownKey {
        /// Manifest or chunk index.
        what: &'static str,
        /// The key ID found.
        keyid: String,
    },
    /// The signature does not verify.
    #[error("{what} signature does not verify with exporter key {keyid}")]
    BadSignature {
        /// Manifest or chunk index.
        what: &'static str,
        /// The key ID.
        keyid: String,
    },
    /// Subjects and entries disagree, or the pack digest is wrong.
    #[error("{0}")]
    Inconsistent(String),
    /// A medium of the earlier layout (manifest last).
    #[error("the medium is in airgate's earlier format (medium/v1, manifest last), which is refused because its entries are read before its signature: re-export it with this airgate")]
    Version,
}

/// The pack digest: SHA-256 over `name NUL sha256 NUL size LF` for every entry, sorted.
pub fn pack_digest(entries: &[ManifestEntry]) -> String {
    let mut h = Sha256::new();
    for e in entries {
        h.update(e.name.as_bytes());
        h.update([0]);
        h.update(e.sha256.as_bytes());
        h.update([0]);
        h.update(e.size.to_string().as_bytes());
        h.update([b'\n']);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

fn sign_statement<P: Serialize>(
    statement: &Statement<P>,
    key_id: &[u8; 32],
    sign: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, ManifestError> {
    let payload = serde_json::to_vec(statement).map_err(|e| ManifestError::Malformed {
        what: "statement",
        detail: e.to_string(),
    })?;
    let signature = sign(&pae(IN_TOTO_PAYLOAD_TYPE, &payload));
    let envelope = Envelope {
        payload: b64_encode(&payload),
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: hex::encode(key_id),
            sig: b64_encode(&signature),
        }],
    };
    let mut out = serde_json::to_vec_pretty(&envelope).map_err(|e| ManifestError::Malformed {
        what: "envelope",
        detail: e.to_string(),
    })?;
    out.push(b'\n');
    Ok(out)
}

/// An enrolled exporter: a name and its public key.
#[derive(Debug, Clone)]
pub struct EnrolledExporter {
    /// The exporter's name.
    pub name: String,
    /// Its public key.
    pub key: VerifyingKey,
    /// When the key was revoked (`airgate exporter revoke`): media it signed
    /// are refused, naming the exporter, the key and this time.
    pub revoked_at: Option<String>,
}

/// Opens a DSSE envelope: returns the statement, who signed it, and the
/// SHA-256 of the signed payload (what identifies the statement, however
/// the envelope around it is serialized).
fn open_envelope<P: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &'static str,
    predicate_type: &str,
    exporters: &[EnrolledExporter],
) -> Result<(Statement<P>, EnrolledExporter, [u8; 32]), ManifestError> {
    let malformed = |detail: String| ManifestError::Malformed { what, detail };
    let envelope: Envelope =
        crate::strict_json::from_slice(bytes).map_err(|e| malformed(format!("envelope: {e}")))?;
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(malformed(format!(
            "payload type {}",
            quoted(&envelope.payload_type)
        )));
    }
    let [signature] = envelope.signatures.as_slice() else {
        return Err(malformed(format!(
            "{} signatures; exactly one is required",
            envelope.signatures.len()
        )));
    };
    let exporter = exporters
        .iter()
        .find(|e| hex::encode(e.key.key_id()) == signature.keyid)
        .ok_or_else(|| ManifestError::UnknownKey {
            what,
            keyid: quoted(&signature.keyid),
        })?;
    if let Some(revoked_at) = &exporter.revoked_at {
        return Err(ManifestError::RevokedKey {
            what,
            keyid: quoted(&signature.keyid),
            exporter: quoted(&exporter.name),
            revoked_at: quoted(revoked_at),
        });
    }
    // Strict base64 (one alphabet, padded, no whitespace): one encoding of
    // the signed bytes, so re-encoding cannot make another medium of them.
    let payload = b64_decode_strict(&envelope.payload)
        .ok_or_else(|| malformed("payload is not strict standard base64".into()))?;
    let sig = b64_decode_strict(&signature.sig)
        .ok_or_else(|| malformed("signature is not strict standard base64".into()))?;
    drop(envelope.payload);
    if !exporter
        .key
        .verify_default(&pae(IN_TOTO_PAYLOAD_TYPE, &payload), &sig)
    {
        return Err(ManifestError::BadSignature {
            what,
            keyid: quoted(&signature.keyid),
        });
    }
    let statement: Statement<P> = crate::strict_json::from_slice(&payload).map_err(|e| {
        if what == "manifest" && payload_has_type(&payload, MEDIUM_V1_PREDICATE_TYPE) {
            ManifestError::Version
        } else {
            malformed(format!("statement: {e}"))
        }
    })?;
    if statement.statement_type != STATEMENT_TYPE || statement.predicate_type != predicate_type {
        if statement.predicate_type == MEDIUM_V1_PREDICATE_TYPE {
            return Err(ManifestError::Version);
        }
        return Err(malformed(format!(
            "statement type {} / predicate type {}",
            quoted(&statement.statement_type),
            quoted(&statement.predicate_type)
        )));
    }
    Ok((statement, exporter.clone(), crate::crypto::sha256(&payload)))
}

fn payload_has_type(payload: &[u8], predicate_type: &str) -> bool {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "predicateType")]
        predicate_type: String,
    }
    serde_json::from_slice::<Typed>(payload).is_ok_and(|t| t.predicate_type == predicate_type)
}

/// Bundle entry suffixes (`bundles/<artifact name><suffix>`), in order of
/// preference; `.sigs` holds a JSON array of bundles.
pub const BUNDLE_SUFFIXES: &[&str] = &[".sigstore.json", ".sigstore", ".sigs"];

/// A verified manifest.
#[derive(Debug, Clone)]
pub struct VerifiedManifest {
    /// Who signed it.
    pub exporter: EnrolledExporter,
    /// The predicate (entries, artifacts, export time, ...).
    pub predicate: MediumPredicate,
    /// SHA-256 of the signed statement: the medium's identity. Re-encoding
    /// the envelope (whitespace, key order, base64 line breaks) cannot
    /// change it.
    pub statement_sha256: [u8; 32],
}

/// Signs a manifest for `predicate` (subjects are derived from its entries).
pub fn sign_manifest(
    predicate: &MediumPredicate,
    key_id: &[u8; 32],
    sign: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, ManifestError> {
    let statement = Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: predicate
            .entries
            .iter()
            .map(|e| Subject {
                name: e.name.clone(),
                digest: [("sha256".to_string(), e.sha256.clone())]
                    .into_iter()
                    .collect(),
            })
            .collect(),
        predicate_type: MEDIUM_PREDICATE_TYPE.to_string(),
        predicate: predicate.clone(),
    };
    sign_statement(&statement, key_id, sign)
}

/// A manifest read without checking its signature: every field is the
/// medium's claim. For `airgate inspect` without a key only; nothing may be
/// recorded or trusted from it.
#[derive(Debug, Clone)]
pub struct ClaimedManifest {
    /// The key ID the envelope says signed it.
    pub signed_by_keyid: String,
    /// The predicate, entry digests filled in from the subjects.
    pub predicate: MediumPredicate,
}

/// Parses a manifest (strict JSON and base64, types checked) without its
/// signature. Use [`verify_manifest`] for anything that is acted on.
pub fn read_manifest_claims(bytes: &[u8]) -> Result<ClaimedManifest, ManifestError> {
    let malformed = |detail: String| ManifestError::Malformed {
        what: "manifest",
        detail,
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(malformed(format!("{} bytes, over the limit", bytes.len())));
    }
    let envelope: Envelope =
        crate::strict_json::from_slice(bytes).map_err(|e| malformed(format!("envelope: {e}")))?;
    let [signature] = envelope.signatures.as_slice() else {
        return Err(malformed("exactly one signature is required".into()));
    };
    let payload = b64_decode_strict(&envelope.payload)
        .ok_or_else(|| malformed("payload is not strict standard base64".into()))?;
    let statement: Statement<MediumPredicate> = crate::strict_json::from_slice(&payload)
        .map_err(|e| malformed(format!("statement: {e}")))?;
    if statement.predicate_type != MEDIUM_PREDICATE_TYPE {
        return Err(ManifestError::Version);
    }
    let mut predicate = statement.predicate;
    for (subject, entry) in statement.subject.iter().zip(predicate.entries.iter_mut()) {
        if subject.name == entry.name {
            entry.sha256 = subject.digest.get("sha256").cloned().unwrap_or_default();
        }
    }
    for artifact in &mut predicate.artifacts {
        let entry_name = format!("artifacts/{}", artifact.name);
        if let Some(e) = predicate.entries.iter().find(|e| e.name == entry_name) {
            artifact.sha256 = e.sha256.clone();
            artifact.size = e.size;
        }
    }
    Ok(ClaimedManifest {
        signed_by_keyid: signature.keyid.clone(),
        predicate,
    })
}

/// Verifies a manifest's signature against enrolled exporters and its internal consistency.
pub fn verify_manifest(
    bytes: &[u8],
    exporters: &[EnrolledExporter],
) -> Result<VerifiedManifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::Malformed {
            what: "manifest",
            detail: format!(
                "{} bytes, over the {MAX_MANIFEST_BYTES}-byte limit",
                bytes.len()
            ),
        });
    }
    let (statement, exporter, statement_sha256) =
        open_envelope::<MediumPredicate>(bytes, "manifest", MEDIUM_PREDICATE_TYPE, exporters)?;
    let mut predicate = statement.predicate;
    if predicate.exporter_key_id != hex::encode(exporter.key.key_id()) {
        return Err(ManifestError::Inconsistent(
            "manifest names a different exporter key than the one that signed it".into(),
        ));
    }
    if statement.subject.len() != predicate.entries.len() {
        return Err(ManifestError::Inconsistent(
            "subjects and entries differ in number".into(),
        ));
    }
    // The digest is signed once, as the subject's; the entry takes it.
    for (subject, entry) in statement.subject.iter().zip(predicate.entries.iter_mut()) {
        match subject.digest.get("sha256") {
            Some(d) if subject.name == entry.name && subject.digest.len() == 1 => {
                entry.sha256 = d.clone();
            }
            _ => {
                return Err(ManifestError::Inconsistent(format!(
                    "subject {} disagrees with its entry",
                    quoted(&subject.name)
                )))
            }
        }
    }
    let mut previous: Option<&str> = None;
    for entry in &predicate.entries {
        let name = EntryName::parse(&entry.name).map_err(|e| {
            ManifestError::Inconsistent(format!("entry {}: {e}", quoted(&entry.name)))
        })?;
        if EntryKind::for_name(&name) != Some(entry.kind) {
            return Err(ManifestError::Inconsistent(format!(
                "entry {} has the wrong kind",
                quoted(&entry.name)
            )));
        }
        if entry.sha256.len() != 64
            || !entry
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ManifestError::Inconsistent(format!(
                "entry {} has a malformed digest",
                quoted(&entry.name)
            )));
        }
        if previous.is_some_and(|p| p >= entry.name.as_str()) {
            return Err(ManifestError::Inconsistent(format!(
                "entries are not sorted or not unique at {}",
                quoted(&entry.name)
            )));
        }
        previous = Some(&entry.name);
    }
    if pack_digest(&predicate.entries) != predicate.pack_digest {
        return Err(ManifestError::Inconsistent(
            "pack digest does not match the entries".into(),
        ));
    }
    let by_name: std::collections::HashMap<String, (String, u64)> = predicate
        .entries
        .iter()
        .map(|e| (e.name.clone(), (e.sha256.clone(), e.size)))
        .collect();
    let mut recorded = std::collections::HashSet::new();
    for artifact in &mut predicate.artifacts {
        if !recorded.insert(artifact.name.clone()) {
            return Err(ManifestError::Inconsistent(format!(
                "artifact {} has two records",
                quoted(&artifact.name)
            )));
        }
        if !BUNDLE_SUFFIXES
            .iter()
            .any(|suffix| artifact.bundle == format!("bundles/{}{suffix}", artifact.name))
        {
            return Err(ManifestError::Inconsistent(format!(
                "artifact {} names the bundle {}; its bundle must be bundles/<name>.sigstore.json, .sigstore or .sigs",
                quoted(&artifact.name),
                quoted(&artifact.bundle)
            )));
        }
        let entry_name = format!("artifacts/{}", artifact.name);
        match (
            by_name.get(&entry_name),
            by_name.contains_key(&artifact.bundle),
        ) {
            (Some((sha256, size)), true) => {
                artifact.sha256 = sha256.clone();
                artifact.size = *size;
            }
            _ => {
                return Err(ManifestError::Inconsistent(format!(
                    "artifact {} or its bundle is not among the entries",
                    quoted(&artifact.name)
                )))
            }
        }
    }
    let artifact_entries = predicate
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Artifact)
        .count();
    if artifact_entries != predicate.artifacts.len() {
        return Err(ManifestError::Inconsistent(format!(
            "{artifact_entries} artifact entries but {} artifact records",
            predicate.artifacts.len()
        )));
    }
    Ok(VerifiedManifest {
        exporter,
        predicate,
        statement_sha256,
    })
}

/// One chunk of a split medium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkRecord {
    /// Chunk file name (e.g. `media.tar.000`).
    pub name: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The chunk index predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChunkIndex {
    /// Size of the joined medium.
    pub medium_size: u64,
    /// Chunks, in order.
    pub chunks: Vec<ChunkRecord>,
}

/// Signs a chunk index.
pub fn sign_chunk_index(
    index: &ChunkIndex,
    key_id: &[u8; 32],
    sign: &dyn Fn(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, ManifestError> {
    let statement = Statement {
        statement_type: STATEMENT_TYPE.to_string(),
        subject: index
            .chunks
            .iter()
            .map(|c| Subject {
                name: c.name.clone(),
                digest: [("sha256".to_string(), c.sha256.clone())]
                    .into_iter()
                    .collect(),
            })
            .collect(),
        predicate_type: CHUNKS_PREDICATE_TYPE.to_string(),
        predicate: index.clone(),
    };
    sign_statement(&statement, key_id, sign)
}

/// Verifies a chunk index against enrolled exporters.
pub fn verify_chunk_index(
    bytes: &[u8],
    exporters: &[EnrolledExporter],
) -> Result<ChunkIndex, ManifestError> {
    if bytes.len() > 1 << 20 {
        return Err(ManifestError::Malformed {
            what: "chunk index",
            detail: "over the 1 MiB limit".into(),
        });
    }
    let (statement, _, _) =
        open_envelope::<ChunkIndex>(bytes, "chunk index", CHUNKS_PREDICATE_TYPE, exporters)?;
    let index = statement.predicate;
    if index.chunks.is_empty() || index.chunks.len() > 100_000 {
        return Err(ManifestError::Inconsistent(
            "chunk index lists no chunks, or too many".into(),
        ));
    }
    if statement.subject.len() != index.chunks.len()
        || statement
            .subject
            .iter()
            .zip(&index.chunks)
            .any(|(s, c)| s.name != c.name || s.digest.get("sha256") != Some(&c.sha256))
    {
        return Err(ManifestError::Inconsistent(
            "chunk index subjects disagree with its chunks".into(),
        ));
    }
    let total: u64 = index.chunks.iter().map(|c| c.size).sum();
    if total != index.medium_size {
        return Err(ManifestError::Inconsistent(
            "chunk sizes do not add up to the medium size".into(),
        ));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use private_ca::Ed25519SigningKey;

    fn exporter() -> (Ed25519SigningKey, EnrolledExporter) {
        let key = Ed25519SigningKey::generate().unwrap();
        let public = VerifyingKey::from_spki_der(key.public_key_spki()).unwrap();
        (
            key,
            EnrolledExporter {
                name: "low-1".into(),
                key: public,
                revoked_at: None,
            },
        )
    }

    fn predicate(key: &Ed25519SigningKey) -> MediumPredicate {
        let entries = vec![
            ManifestEntry {
                name: "artifacts/a.txt".into(),
                sha256: "aa".repeat(32),
                size: 3,
                kind: EntryKind::Artifact,
            },
            ManifestEntry {
                name: "bundles/a.txt.sigstore.json".into(),
                sha256: "bb".repeat(32),
                size: 10,
                kind: EntryKind::Bundle,
            },
        ];
        MediumPredicate {
            pack_digest: pack_digest(&entries),
            export_time: "2026-11-23T00:00:00Z".into(),
            exporter: "low-1".into(),
            exporter_key_id: hex::encode(key.key_id()),
            tool_version: "airgate test".into(),
            tuf: TufVersions {
                root: 15,
                timestamp: 762,
                snapshot: 165,
                targets: 14,
            },
            trusted_root_sha256: "cc".repeat(32),
            entries,
            artifacts: vec![ArtifactRecord {
                name: "a.txt".into(),
                bundle: "bundles/a.txt.sigstore.json".into(),
                sha256: "aa".repeat(32),
                size: 3,
                origin: "directory".into(),
                upstream: UpstreamSigner {
                    identity: "id".into(),
                    issuer: "iss".into(),
                    log_index: 1,
                    log_url: "https://rekor.sigstore.dev".into(),
                },
            }],
            rejected: vec![],
            collectors: vec![],
            images: vec![],
        }
    }

    #[test]
    fn round_trip_and_determinism() {
        let (key, enrolled) = exporter();
        let p = predicate(&key);
        let a = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        let b = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert_eq!(a, b, "Ed25519 manifests are byte-for-byte reproducible");
        let v = verify_manifest(&a, &[enrolled]).unwrap();
        assert_eq!(v.predicate, p);
    }

    #[test]
    fn manifest_signed_by_unenrolled_key() {
        let (key, _) = exporter();
        let (_, other) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        assert!(matches!(
            verify_manifest(&m, &[other]),
            Err(ManifestError::UnknownKey { .. })
        ));
    }

    #[test]
    fn manifest_with_tampered_payload() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let mut env: Envelope = serde_json::from_slice(&m).unwrap();
        let mut payload = b64_decode_strict(&env.payload).unwrap();
        let pos = payload.windows(5).position(|w| w == b"a.txt").unwrap();
        payload[pos] = b'b';
        env.payload = b64_encode(&payload);
        let tampered = serde_json::to_vec(&env).unwrap();
        assert!(matches!(
            verify_manifest(&tampered, &[enrolled]),
            Err(ManifestError::BadSignature { .. })
        ));
    }

    #[test]
    fn manifest_with_wrong_pack_digest_or_unsorted_entries() {
        let (key, enrolled) = exporter();
        let mut p = predicate(&key);
        p.pack_digest = format!("sha256:{}", "00".repeat(32));
        let m = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert!(matches!(
            verify_manifest(&m, std::slice::from_ref(&enrolled)),
            Err(ManifestError::Inconsistent(_))
        ));
        let mut p = predicate(&key);
        p.entries.reverse();
        p.pack_digest = pack_digest(&p.entries);
        let m = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert!(matches!(
            verify_manifest(&m, &[enrolled]),
            Err(ManifestError::Inconsistent(_))
        ));
    }

    #[test]
    fn manifest_with_two_records_for_one_artifact() {
        let (key, enrolled) = exporter();
        let mut p = predicate(&key);
        p.artifacts.push(p.artifacts[0].clone());
        let m = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert!(matches!(
            verify_manifest(&m, &[enrolled]),
            Err(ManifestError::Inconsistent(e)) if e.contains("two records")
        ));
    }

    #[test]
    fn manifest_with_record_naming_another_entry_as_its_bundle() {
        let (key, enrolled) = exporter();
        let mut p = predicate(&key);
        // Points at the artifact itself: listed, but not its bundle.
        p.artifacts[0].bundle = "artifacts/a.txt".into();
        let m = sign_manifest(&p, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert!(matches!(
            verify_manifest(&m, &[enrolled]),
            Err(ManifestError::Inconsistent(e)) if e.contains("its bundle must be")
        ));
    }

    #[test]
    fn reencoded_envelope_keeps_the_statement_digest() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&m).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        assert_ne!(pretty, m);
        let a = verify_manifest(&m, std::slice::from_ref(&enrolled)).unwrap();
        let b = verify_manifest(&pretty, &[enrolled]).unwrap();
        assert_eq!(a.statement_sha256, b.statement_sha256);
    }

    /// Signs `statement_json` as the exporter, as a raw envelope.
    fn raw_envelope(key: &Ed25519SigningKey, statement_json: &[u8]) -> Vec<u8> {
        let sig = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement_json));
        format!(
            r#"{{"payload":"{}","payloadType":"{IN_TOTO_PAYLOAD_TYPE}","signatures":[{{"keyid":"{}","sig":"{}"}}]}}"#,
            b64_encode(statement_json),
            hex::encode(key.key_id()),
            b64_encode(&sig)
        )
        .into_bytes()
    }

    #[test]
    fn manifest_with_duplicate_digest_key_in_a_subject() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let env: Envelope = serde_json::from_slice(&m).unwrap();
        let payload = String::from_utf8(b64_decode_strict(&env.payload).unwrap()).unwrap();
        // {"sha256":zeros,"sha256":real}: a last-wins parser reads the real one.
        let real = format!(r#""sha256":"{}""#, "aa".repeat(32));
        let doubled = payload.replacen(
            &real,
            &format!(r#""sha256":"{}",{real}"#, "00".repeat(32)),
            1,
        );
        assert_ne!(doubled, payload);
        let forged = raw_envelope(&key, doubled.as_bytes());
        match verify_manifest(&forged, &[enrolled]) {
            Err(ManifestError::Malformed { detail, .. }) => {
                assert!(detail.contains("duplicate key"), "{detail}")
            }
            other => panic!("expected a duplicate-key refusal, got {other:?}"),
        }
    }

    #[test]
    fn manifest_envelope_with_duplicate_payload_key() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let text = String::from_utf8(m).unwrap();
        let doubled = text.replacen("{", r#"{"payload":"e30=","#, 1);
        assert!(matches!(
            verify_manifest(doubled.as_bytes(), &[enrolled]),
            Err(ManifestError::Malformed { detail, .. }) if detail.contains("duplicate key")
        ));
    }

    #[test]
    fn manifest_payload_base64_with_line_breaks_or_url_alphabet() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let mut env: Envelope = serde_json::from_slice(&m).unwrap();
        let wrapped: String = env
            .payload
            .as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\n");
        env.payload = wrapped;
        let rewrapped = serde_json::to_vec(&env).unwrap();
        assert!(matches!(
            verify_manifest(&rewrapped, std::slice::from_ref(&enrolled)),
            Err(ManifestError::Malformed { detail, .. }) if detail.contains("base64")
        ));
        let mut env: Envelope = serde_json::from_slice(&m).unwrap();
        env.signatures[0].sig = env.signatures[0].sig.replace('+', "-").replace('/', "_");
        if env.signatures[0].sig
            != serde_json::from_slice::<Envelope>(&m).unwrap().signatures[0].sig
        {
            let url = serde_json::to_vec(&env).unwrap();
            assert!(matches!(
                verify_manifest(&url, &[enrolled]),
                Err(ManifestError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn medium_of_the_earlier_format_is_refused_by_name() {
        let (key, enrolled) = exporter();
        let m = sign_manifest(&predicate(&key), &key.key_id(), &|m| key.sign(m)).unwrap();
        let env: Envelope = serde_json::from_slice(&m).unwrap();
        let payload = String::from_utf8(b64_decode_strict(&env.payload).unwrap()).unwrap();
        let v1 = payload.replace(MEDIUM_PREDICATE_TYPE, MEDIUM_V1_PREDICATE_TYPE);
        assert!(matches!(
            verify_manifest(&raw_envelope(&key, v1.as_bytes()), &[enrolled]),
            Err(ManifestError::Version)
        ));
    }

    #[test]
    fn garbage_manifest() {
        let (_, enrolled) = exporter();
        assert!(matches!(
            verify_manifest(b"{", &[enrolled]),
            Err(ManifestError::Malformed { .. })
        ));
    }

    #[test]
    fn chunk_index_round_trip() {
        let (key, enrolled) = exporter();
        let index = ChunkIndex {
            medium_size: 15,
            chunks: vec![
                ChunkRecord {
                    name: "m.tar.000".into(),
                    sha256: "01".repeat(32),
                    size: 10,
                },
                ChunkRecord {
                    name: "m.tar.001".into(),
                    sha256: "02".repeat(32),
                    size: 5,
                },
            ],
        };
        let signed = sign_chunk_index(&index, &key.key_id(), &|m| key.sign(m)).unwrap();
        assert_eq!(verify_chunk_index(&signed, &[enrolled]).unwrap(), index);
    }
}
