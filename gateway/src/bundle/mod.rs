//! Sigstore bundles: parsing and complete offline verification.
//!
//! ```text
//! bytes --ParsedBundle::from_json--> ParsedBundle --Verifier::verify(artifact, policy, now)--> VerifiedBundle
//! ```
//! Nothing here reads files, sockets or clocks.

mod failure;
mod model;
mod policy;
pub mod rekor_body;
pub mod rfc3161;
mod trust_root;
mod verify;

pub use failure::{TimeSource, VerificationFailure};
pub use model::{
    pae, BundleFormatError, BundleLimits, BundleVersion, DsseEnvelope, DsseSignature,
    InclusionProof, ParsedBundle, SignedContent, SigningMaterial, TlogEntry, MEDIA_TYPE_V0_1,
    MEDIA_TYPE_V0_2, MEDIA_TYPE_V0_3,
};
pub use policy::{IdentityPolicy, Matcher, SignerPolicy};
pub use trust_root::{
    CertificateAuthority, TransparencyLog, TrustRootError, TrustedRoot, ValidityWindow,
    MAX_TRUSTED_ROOT_BYTES, PRODUCTION_TRUSTED_ROOT,
};
pub use verify::{claimed_digests, ArtifactDigest, VerifiedBundle, VerifiedSigner, Verifier};

/// Why a bundle was not accepted: malformed, or a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleRejection {
    /// The bundle does not parse or is structurally invalid.
    #[error("malformed bundle: {0}")]
    Malformed(#[from] BundleFormatError),
    /// A verification check failed.
    #[error("check {check} failed: {failure}", check = .failure.check())]
    Failed {
        /// The failed check.
        failure: VerificationFailure,
    },
}

impl BundleRejection {
    /// Stable name of the failed check (`format` for malformed bundles).
    pub fn check(&self) -> &'static str {
        match self {
            BundleRejection::Malformed(_) => "format",
            BundleRejection::Failed { failure } => failure.check(),
        }
    }
}

impl From<VerificationFailure> for BundleRejection {
    fn from(failure: VerificationFailure) -> Self {
        BundleRejection::Failed { failure }
    }
}

impl Verifier {
    /// Parses bundle bytes and verifies them in one step.
    pub fn verify_bytes(
        &self,
        bundle_json: &[u8],
        artifact: &ArtifactDigest,
        policy: &SignerPolicy,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<VerifiedBundle, BundleRejection> {
        let bundle = ParsedBundle::from_json(bundle_json, &BundleLimits::default())?;
        Ok(self.verify(&bundle, artifact, policy, now)?)
    }
}

#[cfg(test)]
mod vectors;
