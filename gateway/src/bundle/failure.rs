//! One typed failure per verification check.

use chrono::{DateTime, Utc};

use crate::tlog::checkpoint::NoteError;
use crate::tlog::merkle::ProofError;

/// Where a verified time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The transparency log's integrated time (backed by a verified SET).
    IntegratedTime,
    /// An RFC 3161 timestamp.
    Rfc3161Timestamp,
}

impl std::fmt::Display for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeSource::IntegratedTime => "log integrated time",
            TimeSource::Rfc3161Timestamp => "RFC 3161 timestamp",
        })
    }
}

/// A verification check that failed, with what it found.
///
/// [`VerificationFailure::check`] gives a stable, machine-readable name for
/// the failed check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerificationFailure {
    // --- signing material vs policy ---
    /// The bundle is signed with a managed key but no key was supplied.
    #[error("the bundle is signed with a public key (hint {hint:?}); verify it with --key")]
    PublicKeyRequired {
        /// The bundle's key hint.
        hint: String,
    },
    /// The bundle carries a certificate but a key policy was supplied.
    #[error("the bundle is signed with a certificate, not the supplied public key")]
    CertificateNotExpected,
    /// The supplied key does not match the bundle's signature or log entry.
    #[error("the bundle was not signed by the supplied public key")]
    KeyMismatch,

    // --- certificate ---
    /// The leaf has an unknown critical extension.
    #[error("signing certificate has an unsupported critical extension {0}")]
    CertificateCriticalExtension(String),
    /// The leaf is not usable for code signing.
    #[error("signing certificate is not valid for code signing ({0})")]
    CertificateUsage(&'static str),
    /// No trusted CA issued the leaf.
    #[error("signing certificate was not issued by any certificate authority in the trusted root")]
    CertificateChainUntrusted,
    /// The leaf was not valid at a verified time.
    #[error("signing certificate (valid {not_before} to {not_after}) was not valid at the {time_source} {at}")]
    CertificateNotValidAt {
        /// The verified time.
        at: DateTime<Utc>,
        /// Where the time came from.
        time_source: TimeSource,
        /// Leaf notBefore.
        not_before: DateTime<Utc>,
        /// Leaf notAfter.
        not_after: DateTime<Utc>,
    },
    /// The issuing CA (or its validity window in the trusted root) did not cover a verified time.
    #[error("certificate authority {uri} was not valid at the {time_source} {at}")]
    CertificateAuthorityNotValidAt {
        /// The CA's URI.
        uri: String,
        /// The verified time.
        at: DateTime<Utc>,
        /// Where the time came from.
        time_source: TimeSource,
    },

    // --- SCT ---
    /// The leaf carries no embedded SCT.
    #[error("signing certificate carries no embedded SCT")]
    SctMissing,
    /// The SCT list is malformed.
    #[error("embedded SCT list is malformed: {0}")]
    SctMalformed(String),
    /// Not exactly one SCT.
    #[error("signing certificate carries {0} SCTs; exactly one is required")]
    SctCount(usize),
    /// The SCT names a CT log not in the trusted root.
    #[error("SCT is from CT log {log_id} which is not in the trusted root")]
    SctUnknownLog {
        /// Base64 log ID.
        log_id: String,
    },
    /// The CT log key was not valid at the SCT time.
    #[error("SCT time {at} is outside the CT log key's validity window")]
    SctLogNotValidAt {
        /// SCT time.
        at: DateTime<Utc>,
    },
    /// The SCT signature does not verify.
    #[error("SCT signature does not verify with the CT log key")]
    SctSignatureInvalid,

    // --- identity policy ---
    /// The SAN does not satisfy the policy.
    #[error(
        "signer identity {} does not match the expected {expected}",
        quoted_list(found)
    )]
    IdentityMismatch {
        /// What the policy wanted.
        expected: String,
        /// The identities found.
        found: Vec<String>,
    },
    /// The OIDC issuer does not satisfy the policy.
    #[error("OIDC issuer {} does not match the expected {expected}", found.as_deref().map_or_else(|| "(none)".to_string(), crate::escape::quoted))]
    IssuerMismatch {
        /// What the policy wanted.
        expected: String,
        /// The issuer found, if any.
        found: Option<String>,
    },

    // --- signature over the artifact ---
    /// The bundle's messageDigest is not the artifact's digest.
    #[error("bundle messageDigest does not match the artifact's sha256 digest")]
    MessageDigestMismatch,
    /// The artifact signature does not verify.
    #[error("artifact signature does not verify with the signing key")]
    ArtifactSignatureInvalid,
    /// The signing key or scheme cannot be used here.
    #[error("unsupported signature algorithm: {0}")]
    UnsupportedSignatureAlgorithm(String),
    /// The DSSE envelope must carry exactly one signature.
    #[error("DSSE envelope carries {0} signatures; exactly one is required")]
    DsseSignatureCount(usize),
    /// The DSSE signature does not verify.
    #[error("DSSE envelope signature does not verify with the signing key")]
    DsseSignatureInvalid,
    /// The DSSE payload is not an in-toto statement.
    #[error("DSSE payload is not an in-toto statement: {0}")]
    DssePayloadNotInToto(String),
    /// The policy requires a verification summary this bundle is not.
    #[error("{0}")]
    VsaRequired(String),
    /// No in-toto subject carries the artifact's digest.
    #[error("no in-toto subject has the artifact's digest sha256:{digest}")]
    DsseSubjectMismatch {
        /// Hex artifact digest.
        digest: String,
    },

    // --- transparency log ---
    /// Not exactly one tlog entry.
    #[error("bundle carries {0} transparency log entries; exactly one is required")]
    TlogEntryCount(usize),
    /// The entry's log is not in the trusted root.
    #[error("transparency log {log_id} is not in the trusted root")]
    TlogUnknownLog {
        /// Base64 log ID.
        log_id: String,
    },
    /// The log key was not valid at the entry's time.
    #[error("transparency log key was not valid at the {time_source} {at}")]
    TlogLogNotValidAt {
        /// The time.
        at: DateTime<Utc>,
        /// Where it came from.
        time_source: TimeSource,
    },
    /// The entry body is malformed or of an unsupported kind.
    #[error("transparency log entry body: {0}")]
    TlogBodyMalformed(String),
    /// kindVersion disagrees with the body.
    #[error("kindVersion {bundle} does not match the entry body's {body}")]
    TlogKindMismatch {
        /// From kindVersion.
        bundle: String,
        /// From the body.
        body: String,
    },
    /// The body records something other than this bundle's content.
    #[error("transparency log entry does not match the bundle: {0} differs")]
    TlogBodyMismatch(&'static str),
    /// The signed entry timestamp is absent where required.
    #[error("transparency log entry has no signed entry timestamp and no inclusion proof")]
    TlogEntryUnproven,
    /// The SET has no integrated time to cover.
    #[error("signed entry timestamp present but integratedTime is missing")]
    SetWithoutIntegratedTime,
    /// The SET does not verify.
    #[error("signed entry timestamp does not verify with the log key")]
    SetInvalid,
    /// The inclusion proof does not verify.
    #[error("inclusion proof does not verify: {0}")]
    InclusionProofInvalid(ProofError),
    /// The checkpoint is malformed.
    #[error("checkpoint is malformed: {0}")]
    CheckpointMalformed(NoteError),
    /// No checkpoint signature line is from the log.
    #[error("checkpoint carries no signature from the log {name} (key hint {key_hint})")]
    CheckpointNoMatchingSignature {
        /// Expected signer name.
        name: String,
        /// Expected key hint (hex).
        key_hint: String,
    },
    /// The checkpoint signature does not verify.
    #[error("checkpoint signature does not verify with the log key")]
    CheckpointSignatureInvalid,
    /// The checkpoint disagrees with the inclusion proof.
    #[error("checkpoint {0} does not match the inclusion proof")]
    CheckpointMismatch(&'static str),
    /// An inclusion proof without its checkpoint (protobuf-specs: REQUIRED).
    #[error(
        "inclusion proof has no checkpoint (the checkpoint is required with every inclusion proof)"
    )]
    InclusionProofWithoutCheckpoint,
    /// Without a SET, nothing signs the entry's logIndex but the proof's position.
    #[error("the entry's logIndex {entry} is not the index {proof} its verified inclusion proof covers (no signed entry timestamp signs it)")]
    TlogIndexMismatch {
        /// The entry's unsigned `logIndex`.
        entry: u64,
        /// The inclusion proof's verified `logIndex`.
        proof: u64,
    },

    // --- time ---
    /// No verified source of time.
    #[error("no verified time: the bundle has neither a verified signed entry timestamp nor a verified RFC 3161 timestamp")]
    NoVerifiedTime,
    /// A verified time lies after `now`.
    #[error("the {time_source} {at} is in the future (now is {now})")]
    TimeInFuture {
        /// The time.
        at: DateTime<Utc>,
        /// Its source.
        time_source: TimeSource,
        /// The reference time.
        now: DateTime<Utc>,
    },

    // --- RFC 3161 ---
    /// The token is malformed.
    #[error("RFC 3161 timestamp {index} is malformed: {problem}")]
    TimestampMalformed {
        /// Index in the bundle.
        index: usize,
        /// What is wrong.
        problem: String,
    },
    /// The imprint is not the hash of the signature.
    #[error("RFC 3161 timestamp {0} does not cover the bundle's signature")]
    TimestampImprintMismatch(usize),
    /// The same token twice.
    #[error("RFC 3161 timestamp {0} is the same token as an earlier one")]
    TimestampDuplicate(usize),
    /// No TSA in the trusted root signed the token.
    #[error("RFC 3161 timestamp {0} was not issued by a timestamp authority in the trusted root")]
    TimestampUntrusted(usize),
    /// The token signature does not verify.
    #[error("RFC 3161 timestamp {0} signature does not verify")]
    TimestampSignatureInvalid(usize),
    /// The TSA signing certificate is not for timestamping.
    #[error("RFC 3161 timestamp {0} signer is not a timestamping certificate")]
    TimestampSignerUsage(usize),
    /// A TSA certificate was not valid at genTime.
    #[error("RFC 3161 timestamp {index}: TSA certificate chain was not valid at {at}")]
    TimestampCertificateNotValidAt {
        /// Index in the bundle.
        index: usize,
        /// genTime.
        at: DateTime<Utc>,
    },
    /// The TSA's trusted-root validity window does not cover genTime.
    #[error("RFC 3161 timestamp {index}: timestamp authority {uri} was not valid at {at}")]
    TimestampAuthorityNotValidAt {
        /// Index in the bundle.
        index: usize,
        /// TSA URI.
        uri: String,
        /// genTime.
        at: DateTime<Utc>,
    },
}

impl VerificationFailure {
    /// A stable name for the failed check (for reports and `--json`).
    pub fn check(&self) -> &'static str {
        use VerificationFailure::*;
        match self {
            PublicKeyRequired { .. } | CertificateNotExpected | KeyMismatch => "key",
            CertificateCriticalExtension(_) | CertificateUsage(_) => "certificate.profile",
            CertificateChainUntrusted => "certificate.chain",
            CertificateNotValidAt { .. } => "certificate.validity",
            CertificateAuthorityNotValidAt { .. } => "certificate.authority-validity",
            SctMissing | SctMalformed(_) | SctCount(_) => "sct.present",
            SctUnknownLog { .. } => "sct.log",
            SctLogNotValidAt { .. } => "sct.log-validity",
            SctSignatureInvalid => "sct.signature",
            IdentityMismatch { .. } => "policy.identity",
            IssuerMismatch { .. } => "policy.issuer",
            MessageDigestMismatch => "signature.message-digest",
            ArtifactSignatureInvalid | UnsupportedSignatureAlgorithm(_) => "signature",
            DsseSignatureCount(_) | DsseSignatureInvalid => "dsse.signature",
            DssePayloadNotInToto(_) => "dsse.payload",
            VsaRequired(_) => "policy.vsa",
            DsseSubjectMismatch { .. } => "dsse.subject",
            TlogEntryCount(_) | TlogEntryUnproven => "tlog.entry",
            TlogUnknownLog { .. } => "tlog.log",
            TlogLogNotValidAt { .. } => "tlog.log-validity",
            TlogBodyMalformed(_) | TlogKindMismatch { .. } | TlogBodyMismatch(_) => "tlog.body",
            SetWithoutIntegratedTime | SetInvalid => "tlog.set",
            InclusionProofInvalid(_) => "tlog.inclusion-proof",
            InclusionProofWithoutCheckpoint => "tlog.checkpoint",
            TlogIndexMismatch { .. } => "tlog.index",
            CheckpointMalformed(_)
            | CheckpointNoMatchingSignature { .. }
            | CheckpointSignatureInvalid => "tlog.checkpoint",
            CheckpointMismatch(_) => "tlog.checkpoint",
            NoVerifiedTime | TimeInFuture { .. } => "time",
            TimestampMalformed { .. }
            | TimestampDuplicate(_)
            | TimestampImprintMismatch(_)
            | TimestampUntrusted(_)
            | TimestampSignatureInvalid(_)
            | TimestampSignerUsage(_)
            | TimestampCertificateNotValidAt { .. }
            | TimestampAuthorityNotValidAt { .. } => "timestamp",
        }
    }
}

/// Identities as a quoted, comma-separated list (no Rust debug forms).
fn quoted_list(items: &[String]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items
        .iter()
        .map(|s| crate::escape::quoted(s))
        .collect::<Vec<_>>()
        .join(", ")
}
