//! Offline bundle verification: every check real Sigstore clients make.
//!
//! Input: a parsed bundle, the artifact's SHA-256, a signer policy and `now`.
//! No I/O, no clock: the same inputs always give the same answer.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::bundle::failure::{TimeSource, VerificationFailure as F};
use crate::bundle::model::{
    BundleVersion, DsseEnvelope, ParsedBundle, SignedContent, SigningMaterial, TlogEntry,
};
use crate::bundle::policy::{IdentityPolicy, SignerPolicy};
use crate::bundle::rekor_body::{parse_body, LoggedEntry, LoggedVerifier};
use crate::bundle::rfc3161::{self, SignerIdentifier};
use crate::bundle::trust_root::{CertificateAuthority, TransparencyLog, TrustedRoot};
use crate::crypto::{sha256, HashAlgorithm, KeyKind, SignatureScheme, VerifyingKey};
use crate::encoding::b64_encode;
use crate::tlog::checkpoint::{Checkpoint, SignatureCheck, SignedNote};
use crate::tlog::entry::set_payload;
use crate::tlog::merkle;
use crate::x509::Certificate;
use private_ca::precert_signed_data;

/// The artifact being verified, by SHA-256 digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArtifactDigest(pub [u8; 32]);

impl ArtifactDigest {
    /// Hashes artifact bytes.
    pub fn of_bytes(data: &[u8]) -> Self {
        ArtifactDigest(sha256(data))
    }

    /// Hashes a stream (constant memory).
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<Self> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(ArtifactDigest(hasher.finalize().into()))
    }

    /// Parses `sha256:<64 hex>`.
    pub fn parse(text: &str) -> Option<Self> {
        let hex_part = text.strip_prefix("sha256:")?;
        if hex_part.len() != 64 {
            return None;
        }
        crate::encoding::hex32(hex_part).map(ArtifactDigest)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for ArtifactDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

/// Who signed, as established by verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedSigner {
    /// A certificate identity.
    Certificate {
        /// The SAN that satisfied the policy.
        identity: String,
        /// The OIDC issuer.
        issuer: Option<String>,
        /// The verified leaf certificate (DER).
        certificate_der: Vec<u8>,
    },
    /// A managed key.
    PublicKey {
        /// Hex SHA-256 of the key's SPKI.
        key_id: String,
    },
}

/// The result of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// The signer.
    pub signer: VerifiedSigner,
    /// The log entry's index, as a signature covers it: the SET's, or for a
    /// bundle without one the verified inclusion proof's.
    pub log_index: u64,
    /// The log's base URL.
    pub log_url: String,
    /// The log's ID (hex).
    pub log_id: String,
    /// Entry kind and version, e.g. `hashedrekord/0.0.1`.
    pub entry_kind: String,
    /// Verified integrated time, if the log provided one.
    pub integrated_time: Option<DateTime<Utc>>,
    /// Verified RFC 3161 times.
    pub timestamps: Vec<DateTime<Utc>>,
    /// DSSE payload type, for envelopes.
    pub dsse_payload_type: Option<String>,
    /// in-toto predicate type, for attestations.
    pub predicate_type: Option<String>,
    /// The DSSE payload the verified signature covers (the in-toto
    /// statement), for envelopes.
    pub dsse_payload: Option<Vec<u8>>,
}

/// A bundle verifier bound to one trusted root. Cheap to share across threads.
#[derive(Debug)]
pub struct Verifier {
    root: TrustedRoot,
    /// Checkpoints whose signature already verified (bundles logged in the same
    /// batch share one): SHA-256 over log ID and note text.
    verified_checkpoints: VerifiedOnce,
    /// Leaf certificates whose issuer signature and SCT already verified
    /// against an issuer of this trusted root (one signing session's leaf
    /// signs many artifacts): SHA-256 over leaf and issuer DER. Only what
    /// depends on those bytes alone is remembered; validity at each
    /// bundle's times is checked every time.
    verified_leaves: VerifiedOnce,
    cache_checkpoints: bool,
}

/// A bounded set of digests of inputs that verified (cleared when full).
#[derive(Debug, Default)]
struct VerifiedOnce(std::sync::Mutex<std::collections::HashSet<[u8; 32]>>);

impl VerifiedOnce {
    const LIMIT: usize = 4096;

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.0.lock().map(|set| set.contains(key)).unwrap_or(false)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map(|set| set.len()).unwrap_or(0)
    }

    fn insert(&self, key: [u8; 32]) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() >= Self::LIMIT {
                set.clear();
            }
            set.insert(key);
        }
    }
}

/// SHA-256 over length-prefixed parts (a cache key no two inputs share).
fn cache_key(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

struct VerifiedTime {
    at: DateTime<Utc>,
    source: TimeSource,
}

#[derive(Deserialize)]
struct StatementJson {
    #[serde(rename = "_type")]
    statement_type: String,
    #[serde(default)]
    subject: Vec<SubjectJson>,
    #[serde(rename = "predicateType", default)]
    predicate_type: Option<String>,
}

#[derive(Deserialize)]
struct SubjectJson {
    #[serde(default)]
    digest: std::collections::BTreeMap<String, String>,
}

const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The SHA-256 artifact digests a bundle says it signs: the message digest
/// (or, without one, the digest its hashedrekord log entry records), or the
/// subjects of its in-toto statement. Unauthenticated hints: a bundle
/// verified for one of them (`Verifier::verify`) proves it signs that digest,
/// so a file can be judged before it is read and checked when it is. Empty
/// when the bundle names none it could sign.
pub fn claimed_digests(bundle: &ParsedBundle) -> Vec<ArtifactDigest> {
    let mut out: Vec<ArtifactDigest> = Vec::new();
    let mut push = |d: &[u8]| {
        if let Ok(d) = <[u8; 32]>::try_from(d) {
            if !out.contains(&ArtifactDigest(d)) {
                out.push(ArtifactDigest(d));
            }
        }
    };
    match &bundle.content {
        SignedContent::MessageSignature {
            digest: Some((HashAlgorithm::Sha256, d)),
            ..
        } => push(d),
        SignedContent::MessageSignature { .. } => {
            for entry in &bundle.tlog_entries {
                if let Ok((
                    _,
                    _,
                    LoggedEntry::HashedRekord {
                        algorithm: HashAlgorithm::Sha256,
                        digest,
                        ..
                    },
                )) = parse_body(&entry.canonicalized_body)
                {
                    push(&digest);
                }
            }
        }
        SignedContent::Dsse(env) => {
            if let Ok(statement) = serde_json::from_slice::<StatementJson>(&env.payload) {
                for subject in &statement.subject {
                    if let Some(d) = subject
                        .digest
                        .get("sha256")
                        .and_then(|h| crate::encoding::hex32(h))
                    {
                        push(&d);
                    }
                }
            }
        }
    }
    out
}

impl Verifier {
    /// Builds a verifier over a parsed trusted root.
    pub fn new(root: TrustedRoot) -> Self {
        Verifier {
            root,
            verified_checkpoints: VerifiedOnce::default(),
            verified_leaves: VerifiedOnce::default(),
            cache_checkpoints: true,
        }
    }

    /// A verifier that re-verifies every checkpoint signature and every leaf
    /// certificate (benchmarks over a small set of repeated bundles use it,
    /// so repetition is not rewarded).
    pub fn without_checkpoint_cache(root: TrustedRoot) -> Self {
        Verifier {
            cache_checkpoints: false,
            ..Verifier::new(root)
        }
    }

    /// The trusted root.
    pub fn trusted_root(&self) -> &TrustedRoot {
        &self.root
    }

    /// Verifies `bundle` for `artifact` under `policy`, evaluating "future" against `now`.
    pub fn verify(
        &self,
        bundle: &ParsedBundle,
        artifact: &ArtifactDigest,
        policy: &SignerPolicy,
        now: DateTime<Utc>,
    ) -> Result<VerifiedBundle, F> {
        // Signing material must fit the policy's kind before anything else.
        let (leaf, key_policy) = match (&bundle.material, policy) {
            (SigningMaterial::Certificate(cert), SignerPolicy::AnyIdentity(_)) => {
                (Some(cert.as_ref()), None)
            }
            (SigningMaterial::Certificate(_), SignerPolicy::PublicKey(_)) => {
                return Err(F::CertificateNotExpected)
            }
            (SigningMaterial::PublicKey { hint }, SignerPolicy::AnyIdentity(_)) => {
                return Err(F::PublicKeyRequired { hint: hint.clone() })
            }
            (SigningMaterial::PublicKey { .. }, SignerPolicy::PublicKey(key)) => {
                (None, Some(key.as_ref()))
            }
        };

        if bundle.tlog_entries.len() != 1 {
            return Err(F::TlogEntryCount(bundle.tlog_entries.len()));
        }
        let entry = &bundle.tlog_entries[0];
        let tlog = self
            .root
            .tlog(&entry.log_id)
            .ok_or_else(|| F::TlogUnknownLog {
                log_id: b64_encode(&entry.log_id),
            })?;

        // 1. Verified times: SET-backed integrated time and RFC 3161 timestamps.
        let (times, tsa_times, set_verified) = self.verified_times(bundle, entry, tlog, now)?;

        // 2. Certificate: profile, chain at every verified time, SCT, identity.
        let (signing_key, signer) = match (leaf, key_policy) {
            (Some(leaf), _) => {
                self.verify_certificate(leaf, &times)?;
                let SignerPolicy::AnyIdentity(identities) = policy else {
                    return Err(F::CertificateNotExpected);
                };
                let identity = check_identity(leaf, identities)?;
                (
                    leaf.public_key(),
                    VerifiedSigner::Certificate {
                        identity,
                        issuer: leaf.oidc_issuer(),
                        certificate_der: leaf.der().to_vec(),
                    },
                )
            }
            (None, Some(key)) => (
                key,
                VerifiedSigner::PublicKey {
                    key_id: hex::encode(key.key_id()),
                },
            ),
            (None, None) => return Err(F::KeyMismatch),
        };

        // 3. The signature over the artifact (or the DSSE envelope).
        let (predicate_type, dsse_payload_type, dsse_payload) =
            verify_content(signing_key, bundle, artifact, key_policy.is_some())?;

        // 4. The log entry: body, inclusion proof and checkpoint, log key validity.
        self.verify_entry_body(entry, bundle, artifact, leaf, signing_key)?;
        let proof_verified = self.verify_inclusion(entry, tlog)?;
        if !set_verified && !proof_verified {
            return Err(F::TlogEntryUnproven);
        }
        check_log_validity(tlog, &times, set_verified)?;
        if bundle.version == BundleVersion::V0_1 && !set_verified {
            return Err(F::SetInvalid);
        }

        let log_index = reported_index(entry, set_verified)?;
        Ok(VerifiedBundle {
            signer,
            log_index,
            log_url: tlog.base_url.clone(),
            log_id: hex::encode(&entry.log_id),
            entry_kind: format!("{}/{}", entry.kind, entry.version),
            integrated_time: times
                .iter()
                .find(|t| t.source == TimeSource::IntegratedTime)
                .map(|t| t.at),
            timestamps: tsa_times,
            dsse_payload_type,
            predicate_type,
            dsse_payload,
        })
    }

    /// Step 1: the verified times (the SET-backed integrated time and every
    /// RFC 3161 timestamp), none in the future; also whether a SET verified.
    #[allow(clippy::type_complexity)]
    fn verified_times(
        &self,
        bundle: &ParsedBundle,
        entry: &TlogEntry,
        tlog: &TransparencyLog,
        now: DateTime<Utc>,
    ) -> Result<(Vec<VerifiedTime>, Vec<DateTime<Utc>>, bool), F> {
        let mut times = Vec::new();
        let set_verified = self.verify_set(entry, tlog)?;
        if set_verified {
            if let Some(t) = entry.integrated_time {
                times.push(VerifiedTime {
                    at: DateTime::from_timestamp(t, 0).ok_or(F::SetWithoutIntegratedTime)?,
                    source: TimeSource::IntegratedTime,
                });
            }
        }
        let signature_bytes = bundle.content.signature_bytes();
        let mut tsa_times = Vec::new();
        for (index, token) in bundle.timestamps.iter().enumerate() {
            if bundle.timestamps[..index].contains(token) {
                return Err(F::TimestampDuplicate(index));
            }
            let at = self.verify_timestamp(index, token, signature_bytes)?;
            tsa_times.push(at);
            times.push(VerifiedTime {
                at,
                source: TimeSource::Rfc3161Timestamp,
            });
        }
        if times.is_empty() {
            return Err(F::NoVerifiedTime);
        }
        for t in &times {
            if t.at > now {
                return Err(F::TimeInFuture {
                    at: t.at,
                    time_source: t.source,
                    now,
                });
            }
        }
        Ok((times, tsa_times, set_verified))
    }

    /// Verifies the SET if present. Ok(true) when a SET verified.
    fn verify_set(&self, entry: &TlogEntry, tlog: &TransparencyLog) -> Result<bool, F> {
        let Some(set) = &entry.inclusion_promise else {
            return Ok(false);
        };
        let integrated_time = entry.integrated_time.ok_or(F::SetWithoutIntegratedTime)?;
        let payload = set_payload(
            &entry.canonicalized_body,
            integrated_time,
            &entry.log_id,
            entry.log_index,
        );
        if tlog.key.verify(tlog.scheme, &payload, set) {
            Ok(true)
        } else {
            Err(F::SetInvalid)
        }
    }

    /// Verifies the inclusion proof and its checkpoint if present. Ok(true) when verified.
    fn verify_inclusion(&self, entry: &TlogEntry, tlog: &TransparencyLog) -> Result<bool, F> {
        let Some(proof) = &entry.inclusion_proof else {
            return Ok(false);
        };
        let leaf = merkle::leaf_hash(&entry.canonicalized_body);
        merkle::verify_inclusion(
            proof.log_index,
            proof.tree_size,
            &leaf,
            &proof.hashes,
            &proof.root_hash,
        )
        .map_err(F::InclusionProofInvalid)?;
        let Some(note_text) = &proof.checkpoint else {
            return Err(F::InclusionProofWithoutCheckpoint);
        };
        let note = SignedNote::parse(note_text).map_err(F::CheckpointMalformed)?;
        let checkpoint = Checkpoint::parse(&note.text).map_err(F::CheckpointMalformed)?;
        let name = tlog.checkpoint_name();
        let mut hint = [0u8; 4];
        if let Some(prefix) = entry.log_id.get(..4) {
            hint.copy_from_slice(prefix);
        }
        let key = cache_key(&[&entry.log_id, name.as_bytes(), note_text.as_bytes()]);
        let cached = self.cache_checkpoints && self.verified_checkpoints.contains(&key);
        let check = if cached {
            SignatureCheck::Valid
        } else {
            note.verify(&name, hint, &tlog.key)
        };
        match check {
            SignatureCheck::Valid => {
                if !cached && self.cache_checkpoints {
                    self.verified_checkpoints.insert(key);
                }
            }
            SignatureCheck::NoMatchingSignature => {
                return Err(F::CheckpointNoMatchingSignature {
                    name,
                    key_hint: hex::encode(hint),
                })
            }
            SignatureCheck::Invalid => return Err(F::CheckpointSignatureInvalid),
        }
        if checkpoint.size != proof.tree_size {
            return Err(F::CheckpointMismatch("tree size"));
        }
        if checkpoint.root_hash != proof.root_hash {
            return Err(F::CheckpointMismatch("root hash"));
        }
        Ok(true)
    }

    fn verify_certificate(&self, leaf: &Certificate, times: &[VerifiedTime]) -> Result<(), F> {
        if let Some(oid) = leaf.unknown_critical_extensions().first() {
            return Err(F::CertificateCriticalExtension(oid.clone()));
        }
        if leaf.is_ca() {
            return Err(F::CertificateUsage("it is a CA certificate"));
        }
        if leaf.key_usage_digital_signature() == Some(false) {
            return Err(F::CertificateUsage("keyUsage lacks digitalSignature"));
        }
        if !leaf.eku_code_signing() {
            return Err(F::CertificateUsage("extKeyUsage lacks codeSigning"));
        }

        // Find every trusted CA whose chain contains the leaf's issuer.
        let mut candidates: Vec<(&CertificateAuthority, usize)> = Vec::new();
        let mut verified_issuers: Vec<&[u8]> = Vec::new();
        for ca in &self.root.certificate_authorities {
            for (index, cert) in ca.chain.iter().enumerate() {
                if cert.subject_raw() != leaf.issuer_raw() {
                    continue;
                }
                let already =
                    verified_issuers.contains(&cert.der()) || self.leaf_verified(leaf, cert);
                if already || leaf.is_signed_by(cert) {
                    if !already {
                        verified_issuers.push(cert.der());
                    }
                    candidates.push((ca, index));
                    break;
                }
            }
        }
        if candidates.is_empty() {
            return Err(F::CertificateChainUntrusted);
        }
        for t in times {
            if !leaf.valid_at(t.at) {
                return Err(F::CertificateNotValidAt {
                    at: t.at,
                    time_source: t.source,
                    not_before: leaf.not_before(),
                    not_after: leaf.not_after(),
                });
            }
        }
        // Some candidate CA must be valid at every verified time.
        let mut first_failure = None;
        let mut issuer_cert = None;
        for (ca, index) in &candidates {
            let path = &ca.chain[*index..];
            let bad_time = times
                .iter()
                .find(|t| !ca.valid_for.contains(t.at) || path.iter().any(|c| !c.valid_at(t.at)));
            match bad_time {
                None => {
                    issuer_cert = Some(&ca.chain[*index]);
                    break;
                }
                Some(t) => {
                    first_failure.get_or_insert(F::CertificateAuthorityNotValidAt {
                        uri: ca.uri.clone(),
                        at: t.at,
                        time_source: t.source,
                    });
                }
            }
        }
        let issuer = match issuer_cert {
            Some(cert) => cert,
            None => return Err(first_failure.unwrap_or(F::CertificateChainUntrusted)),
        };
        if self.leaf_verified(leaf, issuer) {
            return Ok(());
        }
        self.verify_sct(leaf, issuer)?;
        if self.cache_checkpoints {
            self.verified_leaves
                .insert(cache_key(&[leaf.der(), issuer.der()]));
        }
        Ok(())
    }

    /// Leaves remembered as verified (for tests).
    #[cfg(test)]
    pub(crate) fn verified_leaf_count(&self) -> usize {
        self.verified_leaves.len()
    }

    /// True when this leaf's signature by `issuer` and its SCT already
    /// verified (exactly these bytes).
    fn leaf_verified(&self, leaf: &Certificate, issuer: &Certificate) -> bool {
        self.cache_checkpoints
            && self
                .verified_leaves
                .contains(&cache_key(&[leaf.der(), issuer.der()]))
    }

    fn verify_sct(&self, leaf: &Certificate, issuer: &Certificate) -> Result<(), F> {
        let scts = match leaf.embedded_scts() {
            None => return Err(F::SctMissing),
            Some(Err(e)) => return Err(F::SctMalformed(e)),
            Some(Ok(scts)) => scts,
        };
        if scts.len() != 1 {
            return Err(F::SctCount(scts.len()));
        }
        let sct = &scts[0];
        let ctlog = self
            .root
            .ctlog(&sct.log_id)
            .ok_or_else(|| F::SctUnknownLog {
                log_id: b64_encode(&sct.log_id),
            })?;
        let at = i64::try_from(sct.timestamp_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| F::SctMalformed("timestamp out of range".into()))?;
        if !ctlog.valid_for.contains(at) {
            return Err(F::SctLogNotValidAt { at });
        }
        let scheme = sct
            .scheme
            .ok_or_else(|| F::SctMalformed("unsupported SCT signature algorithm".into()))?;
        let tbs = leaf.precert_tbs().map_err(F::SctMalformed)?;
        let issuer_key_hash = sha256(issuer.public_key().spki_der());
        let signed = precert_signed_data(sct.timestamp_ms, &issuer_key_hash, &tbs, &sct.extensions)
            .map_err(|e| F::SctMalformed(e.to_string()))?;
        if ctlog.key.verify(scheme, &signed, &sct.signature) {
            Ok(())
        } else {
            Err(F::SctSignatureInvalid)
        }
    }

    fn verify_timestamp(
        &self,
        index: usize,
        token: &[u8],
        signature: &[u8],
    ) -> Result<DateTime<Utc>, F> {
        let token = rfc3161::parse(token).map_err(|e| F::TimestampMalformed {
            index,
            problem: e.to_string(),
        })?;
        if token.imprint != token.imprint_algorithm.digest(signature) {
            return Err(F::TimestampImprintMismatch(index));
        }
        if token.message_digest != token.digest_algorithm.digest(&token.tst_info) {
            return Err(F::TimestampSignatureInvalid(index));
        }
        let matches_signer = |cert: &Certificate| match &token.signer {
            SignerIdentifier::IssuerAndSerial { issuer, serial } => {
                cert.issuer_raw() == issuer.as_slice() && cert.serial() == serial.as_slice()
            }
            SignerIdentifier::SubjectKeyId(id) => cert.subject_key_id() == Some(id.as_slice()),
        };
        let mut best_error = F::TimestampUntrusted(index);
        for tsa in &self.root.timestamp_authorities {
            // Path: a certificate of the trusted chain, or an embedded one it issued.
            let path: Vec<&Certificate> = if let Some(pos) =
                tsa.chain.iter().position(matches_signer)
            {
                tsa.chain[pos..].iter().collect()
            } else if let Some(embedded) = token.certificates.iter().find(|c| matches_signer(c)) {
                let Some(pos) = tsa.chain.iter().position(|c| {
                    c.subject_raw() == embedded.issuer_raw()
                        && c.is_ca()
                        && embedded.is_signed_by(c)
                }) else {
                    continue;
                };
                std::iter::once(embedded)
                    .chain(tsa.chain[pos..].iter())
                    .collect()
            } else {
                continue;
            };
            let Some(signer) = path.first() else {
                continue;
            };
            if !signer.public_key().verify(
                token.signature_scheme,
                &token.signed_attributes,
                &token.signature,
            ) {
                best_error = F::TimestampSignatureInvalid(index);
                continue;
            }
            if !signer.eku_time_stamping() {
                best_error = F::TimestampSignerUsage(index);
                continue;
            }
            if path.iter().any(|c| !c.valid_at(token.gen_time)) {
                best_error = F::TimestampCertificateNotValidAt {
                    index,
                    at: token.gen_time,
                };
                continue;
            }
            if !tsa.valid_for.contains(token.gen_time) {
                best_error = F::TimestampAuthorityNotValidAt {
                    index,
                    uri: tsa.uri.clone(),
                    at: token.gen_time,
                };
                continue;
            }
            return Ok(token.gen_time);
        }
        Err(best_error)
    }

    fn verify_entry_body(
        &self,
        entry: &TlogEntry,
        bundle: &ParsedBundle,
        artifact: &ArtifactDigest,
        leaf: Option<&Certificate>,
        signing_key: &VerifyingKey,
    ) -> Result<(), F> {
        let (kind, version, logged) = parse_body(&entry.canonicalized_body)
            .map_err(|e| F::TlogBodyMalformed(e.to_string()))?;
        if kind != entry.kind || version != entry.version {
            return Err(F::TlogKindMismatch {
                bundle: format!("{}/{}", entry.kind, entry.version),
                body: format!("{kind}/{version}"),
            });
        }
        let verifier_matches = |v: &LoggedVerifier| match (v, leaf) {
            (LoggedVerifier::Certificate(der), Some(leaf)) => der.as_slice() == leaf.der(),
            (LoggedVerifier::PublicKey(spki), None) => spki.as_slice() == signing_key.spki_der(),
            _ => false,
        };
        let verifier_field = if leaf.is_some() {
            "certificate"
        } else {
            "public key"
        };
        match (&logged, &bundle.content) {
            (
                LoggedEntry::HashedRekord {
                    algorithm,
                    digest,
                    signature,
                    verifier,
                },
                content,
            ) => {
                let (expected_digest, bundle_signature) = match content {
                    SignedContent::MessageSignature { signature, .. } => {
                        (artifact.0, signature.as_slice())
                    }
                    SignedContent::Dsse(env) => {
                        if env.signatures.len() != 1 {
                            return Err(F::DsseSignatureCount(env.signatures.len()));
                        }
                        (sha256(&env.pae()), env.signatures[0].sig.as_slice())
                    }
                };
                if *algorithm != HashAlgorithm::Sha256 || digest.as_slice() != expected_digest {
                    return Err(F::TlogBodyMismatch("artifact digest"));
                }
                if signature.as_slice() != bundle_signature {
                    return Err(F::TlogBodyMismatch("signature"));
                }
                if !verifier_matches(verifier) {
                    return Err(F::TlogBodyMismatch(verifier_field));
                }
            }
            (
                LoggedEntry::Dsse {
                    payload_hash,
                    signatures,
                },
                SignedContent::Dsse(env),
            ) => {
                if *payload_hash != sha256(&env.payload) {
                    return Err(F::TlogBodyMismatch("DSSE payload hash"));
                }
                check_dsse_signatures(signatures, env, &verifier_matches, verifier_field)?;
            }
            (
                LoggedEntry::Intoto {
                    payload_type,
                    payload,
                    payload_hash,
                    signatures,
                },
                SignedContent::Dsse(env),
            ) => {
                if *payload_type != env.payload_type {
                    return Err(F::TlogBodyMismatch("in-toto payload type"));
                }
                if *payload != env.payload {
                    return Err(F::TlogBodyMismatch("in-toto payload"));
                }
                if payload_hash.is_some_and(|h| h != sha256(&env.payload)) {
                    return Err(F::TlogBodyMismatch("in-toto payload hash"));
                }
                check_dsse_signatures(signatures, env, &verifier_matches, verifier_field)?;
            }
            (
                LoggedEntry::Dsse { .. } | LoggedEntry::Intoto { .. },
                SignedContent::MessageSignature { .. },
            ) => {
                return Err(F::TlogBodyMismatch(
                    "content type (log has an envelope, bundle a message signature)",
                ));
            }
        }
        Ok(())
    }
}

fn check_dsse_signatures(
    logged: &[(Vec<u8>, LoggedVerifier)],
    env: &DsseEnvelope,
    verifier_matches: &dyn Fn(&LoggedVerifier) -> bool,
    verifier_field: &'static str,
) -> Result<(), F> {
    if logged.len() != env.signatures.len() {
        return Err(F::TlogBodyMismatch("DSSE signature count"));
    }
    for sig in &env.signatures {
        let Some((_, verifier)) = logged.iter().find(|(s, _)| *s == sig.sig) else {
            return Err(F::TlogBodyMismatch("DSSE signature"));
        };
        if !verifier_matches(verifier) {
            return Err(F::TlogBodyMismatch(verifier_field));
        }
    }
    Ok(())
}

fn check_identity(leaf: &Certificate, policies: &[IdentityPolicy]) -> Result<String, F> {
    let sans: Vec<String> = leaf.sans().iter().map(|s| s.value().to_string()).collect();
    let issuer = leaf.oidc_issuer();
    let mut identity_matched = false;
    for policy in policies {
        let Some(identity) = sans.iter().find(|san| policy.identity.matches(san)) else {
            continue;
        };
        identity_matched = true;
        if issuer.as_deref().is_some_and(|i| policy.issuer.matches(i)) {
            return Ok(identity.clone());
        }
    }
    if identity_matched {
        let expected = policies
            .iter()
            .filter(|p| sans.iter().any(|s| p.identity.matches(s)))
            .map(|p| p.issuer.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        Err(F::IssuerMismatch {
            expected,
            found: issuer,
        })
    } else {
        Err(F::IdentityMismatch {
            expected: SignerPolicy::describe_identities(policies),
            found: sans,
        })
    }
}

fn verify_message_signature(
    key: &VerifyingKey,
    digest: &[u8; 32],
    signature: &[u8],
    managed: bool,
) -> Result<(), F> {
    let scheme = match key.kind() {
        KeyKind::EcdsaP256 | KeyKind::EcdsaP384 | KeyKind::EcdsaP521 => {
            SignatureScheme::Ecdsa(HashAlgorithm::Sha256)
        }
        KeyKind::Rsa => SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256),
        KeyKind::Ed25519 => {
            return Err(F::UnsupportedSignatureAlgorithm(
                "Ed25519 message signatures cannot be verified from a digest".into(),
            ))
        }
    };
    let ok = key.verify_prehashed(scheme, digest, signature)
        || (key.kind() == KeyKind::Rsa
            && key.verify_prehashed(
                SignatureScheme::RsaPss(HashAlgorithm::Sha256),
                digest,
                signature,
            ));
    if ok {
        Ok(())
    } else if managed {
        Err(F::KeyMismatch)
    } else {
        Err(F::ArtifactSignatureInvalid)
    }
}

fn verify_dsse(
    key: &VerifyingKey,
    env: &DsseEnvelope,
    artifact: &ArtifactDigest,
    managed: bool,
) -> Result<Option<String>, F> {
    if env.signatures.len() != 1 {
        return Err(F::DsseSignatureCount(env.signatures.len()));
    }
    let pae = env.pae();
    if !key.verify_default(&pae, &env.signatures[0].sig) {
        return Err(if managed {
            F::KeyMismatch
        } else {
            F::DsseSignatureInvalid
        });
    }
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(F::DssePayloadNotInToto(format!(
            "payload type is {:?}",
            env.payload_type
        )));
    }
    let statement: StatementJson =
        serde_json::from_slice(&env.payload).map_err(|e| F::DssePayloadNotInToto(e.to_string()))?;
    if !statement
        .statement_type
        .starts_with("https://in-toto.io/Statement/")
    {
        return Err(F::DssePayloadNotInToto(format!(
            "_type is {:?}",
            statement.statement_type
        )));
    }
    let wanted = artifact.to_hex();
    let found = statement.subject.iter().any(|s| {
        s.digest
            .get("sha256")
            .is_some_and(|d| d.eq_ignore_ascii_case(&wanted))
    });
    if !found {
        return Err(F::DsseSubjectMismatch { digest: wanted });
    }
    Ok(statement.predicate_type)
}

/// Step 3: the signature over the artifact, or the DSSE envelope (its
/// predicate type, payload type and payload, as the signature covers them).
#[allow(clippy::type_complexity)]
fn verify_content(
    signing_key: &VerifyingKey,
    bundle: &ParsedBundle,
    artifact: &ArtifactDigest,
    is_key: bool,
) -> Result<(Option<String>, Option<String>, Option<Vec<u8>>), F> {
    let mut predicate_type = None;
    let mut dsse_payload_type = None;
    let mut dsse_payload = None;
    match &bundle.content {
        SignedContent::MessageSignature { digest, signature } => {
            if let Some((algorithm, value)) = digest {
                if *algorithm != HashAlgorithm::Sha256 || value.as_slice() != artifact.0 {
                    return Err(F::MessageDigestMismatch);
                }
            }
            verify_message_signature(signing_key, &artifact.0, signature, is_key)?;
        }
        SignedContent::Dsse(envelope) => {
            predicate_type = verify_dsse(signing_key, envelope, artifact, is_key)?;
            dsse_payload_type = Some(envelope.payload_type.clone());
            dsse_payload = Some(envelope.payload.clone());
        }
    }
    Ok((predicate_type, dsse_payload_type, dsse_payload))
}

/// The log key must be valid at the integrated time a SET covers, or else
/// at every verified time.
fn check_log_validity(
    tlog: &TransparencyLog,
    times: &[VerifiedTime],
    set_verified: bool,
) -> Result<(), F> {
    if set_verified {
        if let Some(t) = times
            .iter()
            .find(|t| t.source == TimeSource::IntegratedTime)
        {
            if !tlog.valid_for.contains(t.at) {
                return Err(F::TlogLogNotValidAt {
                    at: t.at,
                    time_source: t.source,
                });
            }
        }
    } else {
        for t in times {
            if !tlog.valid_for.contains(t.at) {
                return Err(F::TlogLogNotValidAt {
                    at: t.at,
                    time_source: t.source,
                });
            }
        }
    }
    Ok(())
}

/// The index reported is one a signature covers: the SET's, or else the
/// verified proof's (which the entry's unsigned field must equal).
fn reported_index(entry: &TlogEntry, set_verified: bool) -> Result<u64, F> {
    match (&entry.inclusion_proof, set_verified) {
        (_, true) => Ok(entry.log_index),
        (Some(proof), false) if proof.log_index == entry.log_index => Ok(proof.log_index),
        (Some(proof), false) => Err(F::TlogIndexMismatch {
            entry: entry.log_index,
            proof: proof.log_index,
        }),
        (None, false) => Err(F::TlogEntryUnproven),
    }
}
