//! May this artifact pass? Its bundle (or every bundle of a `.sigs` array)
//! under the rules of a policy that match its name, against a trusted root.
//! Used by export (before the artifact is read, for the digests its bundles
//! claim) and by import (for the digest the medium carried). Pure.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::bundle::{
    claimed_digests, ArtifactDigest, BundleFormatError, BundleLimits, BundleRejection,
    ParsedBundle, SignerPolicy, SigningMaterial, VerifiedBundle, VerifiedSigner, Verifier,
};
use crate::crypto::VerifyingKey;
use crate::escape::quoted;
use crate::medium::manifest::{RejectedRecord, UpstreamSigner};
use crate::medium::EntryName;
use crate::policy::Policy;

/// Most bundles a `.sigs` array may hold.
pub const MAX_SIGS_BUNDLES: usize = 16;

/// Why an artifact may not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactRejection {
    /// No rule of the policy matches its name.
    #[error("no policy rule allows this artifact (default deny)")]
    DefaultDeny,
    /// A `.sigs` file that is not a JSON array of 1 to 16 bundles.
    #[error(".sigs {0}")]
    SigsArray(String),
    /// Its bundle(s) did not verify under the policy (the first failure).
    #[error("{0}")]
    Bundle(BundleRejection),
    /// None of its bundles names a SHA-256 digest it could sign.
    #[error("its bundle names no SHA-256 artifact digest")]
    NoClaimedDigest,
    /// The artifact's bytes are not what its verified bundle signs.
    #[error("its sha256 {found} is not what its verified bundle signs ({signed})")]
    DigestNotSigned {
        /// Hex digests the bundle(s) verified for.
        signed: String,
        /// Hex digest of the bytes.
        found: String,
    },
    /// Found on disk but not exportable (orphan bundle, no bundle, two
    /// bundles, oversized bundle, unsafe name, two artifacts with one name,
    /// unreadable file): the check names which.
    #[error("{reason}")]
    Discovery {
        /// The stable check name (`bundle.missing`, `name`, ...).
        check: &'static str,
        /// What was found.
        reason: String,
    },
}

impl ArtifactRejection {
    /// The stable name of the failed check.
    pub fn check(&self) -> &'static str {
        match self {
            ArtifactRejection::DefaultDeny => "policy.default-deny",
            ArtifactRejection::SigsArray(_) | ArtifactRejection::NoClaimedDigest => "format",
            ArtifactRejection::Bundle(b) => b.check(),
            ArtifactRejection::DigestNotSigned { .. } => "artifact.digest",
            ArtifactRejection::Discovery { check, .. } => check,
        }
    }

    /// The record the manifest and reports carry for `name`.
    pub fn record(&self, name: &str) -> RejectedRecord {
        RejectedRecord {
            name: name.to_string(),
            check: self.check().to_string(),
            reason: self.to_string(),
        }
    }
}

/// The one bundle that let an artifact pass.
#[derive(Debug, Clone)]
pub struct AcceptedBundle {
    /// What the verification established.
    pub verified: VerifiedBundle,
    /// That bundle's JSON, byte for byte: the input itself, or for a `.sigs`
    /// array the one element that verified (the others are dropped).
    pub json: Vec<u8>,
    /// The rules that allowed it.
    pub rules: Vec<String>,
    /// True when a matching rule allows replacing an imported name.
    pub allow_replace: bool,
}

impl AcceptedBundle {
    /// The upstream signer, from the verified bundle only.
    pub fn upstream(&self) -> UpstreamSigner {
        upstream_of(&self.verified)
    }
}

/// Judges artifacts under one policy, trusted root and reference time.
pub struct ArtifactJudge<'a> {
    /// Verifier over the trusted root.
    pub verifier: &'a Verifier,
    /// The policy.
    pub policy: &'a Policy,
    /// The policy's managed keys, by path.
    pub policy_keys: &'a BTreeMap<PathBuf, VerifyingKey>,
    /// The reference time.
    pub now: DateTime<Utc>,
}

type Judged = Result<AcceptedBundle, ArtifactRejection>;

impl ArtifactJudge<'_> {
    /// Judges an artifact whose SHA-256 is known.
    pub fn judge(
        &self,
        name: &EntryName,
        digest: &ArtifactDigest,
        bundle_bytes: &[u8],
        is_array: bool,
    ) -> Judged {
        let lookup = |p: &Path| self.policy_keys.get(p).cloned();
        let allowed = self
            .policy
            .allowed(name, &lookup)
            .ok_or(ArtifactRejection::DefaultDeny)?;
        self.judge_under(&allowed, digest, bundle_bytes, is_array)
    }

    /// Judges bundles for a known digest under what the policy allows
    /// (for images, whose rules match repositories rather than names).
    pub fn judge_under(
        &self,
        allowed: &crate::policy::Allowed,
        digest: &ArtifactDigest,
        bundle_bytes: &[u8],
        is_array: bool,
    ) -> Judged {
        let bundles = parse_bundles(bundle_bytes, is_array)?;
        let mut first_failure = None;
        for (json, parsed) in &bundles {
            match parsed {
                Ok(p) => match self.verify_one(allowed, p, digest) {
                    Ok(verified) => return Ok(accepted(verified, json, allowed)),
                    Err(f) => {
                        first_failure.get_or_insert(f);
                    }
                },
                Err(e) => {
                    first_failure.get_or_insert(BundleRejection::Malformed(e.clone()));
                }
            }
        }
        Err(failure(first_failure))
    }

    /// Judges an artifact before it is read: for every digest its bundles
    /// claim, whether a bundle verifies for it. Returns each digest that
    /// verified with the first bundle that did, in bundle order; the bytes
    /// must then hash to one of them (see [`ArtifactRejection::DigestNotSigned`]).
    pub fn judge_claimed(
        &self,
        name: &EntryName,
        bundle_bytes: &[u8],
        is_array: bool,
    ) -> Result<Vec<(ArtifactDigest, AcceptedBundle)>, ArtifactRejection> {
        let (allowed, bundles) = self.prepare(name, bundle_bytes, is_array)?;
        let mut out: Vec<(ArtifactDigest, AcceptedBundle)> = Vec::new();
        let mut first_failure = None;
        let mut claimed_any = false;
        for (json, parsed) in &bundles {
            let p = match parsed {
                Ok(p) => p,
                Err(e) => {
                    first_failure.get_or_insert(BundleRejection::Malformed(e.clone()));
                    continue;
                }
            };
            for digest in claimed_digests(p) {
                claimed_any = true;
                if out.iter().any(|(d, _)| *d == digest) {
                    continue;
                }
                match self.verify_one(&allowed, p, &digest) {
                    Ok(verified) => out.push((digest, accepted(verified, json, &allowed))),
                    Err(f) => {
                        first_failure.get_or_insert(f);
                    }
                }
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
        if !claimed_any && first_failure.is_none() {
            return Err(ArtifactRejection::NoClaimedDigest);
        }
        Err(failure(first_failure))
    }

    fn prepare<'b>(
        &self,
        name: &EntryName,
        bundle_bytes: &'b [u8],
        is_array: bool,
    ) -> Result<(crate::policy::Allowed, ParsedBundles<'b>), ArtifactRejection> {
        let lookup = |p: &Path| self.policy_keys.get(p).cloned();
        let allowed = self
            .policy
            .allowed(name, &lookup)
            .ok_or(ArtifactRejection::DefaultDeny)?;
        Ok((allowed, parse_bundles(bundle_bytes, is_array)?))
    }

    /// Tries the signer policies that fit the bundle's signing material.
    fn verify_one(
        &self,
        allowed: &crate::policy::Allowed,
        parsed: &ParsedBundle,
        digest: &ArtifactDigest,
    ) -> Result<VerifiedBundle, BundleRejection> {
        let policies = allowed.signer_policies();
        let mut first = None;
        for signer in &policies {
            let fits = matches!(
                (&parsed.material, signer),
                (
                    SigningMaterial::Certificate(_),
                    SignerPolicy::AnyIdentity(_)
                ) | (
                    SigningMaterial::PublicKey { .. },
                    SignerPolicy::PublicKey(_)
                )
            );
            if !fits && policies.len() > 1 {
                continue;
            }
            match self.verifier.verify(parsed, digest, signer, self.now) {
                Ok(v) => return Ok(v),
                Err(f) => {
                    first.get_or_insert(BundleRejection::from(f));
                }
            }
        }
        Err(
            first.unwrap_or(BundleRejection::Malformed(BundleFormatError::Missing(
                "signer policy",
            ))),
        )
    }
}

type ParsedBundles<'b> = Vec<(Cow<'b, [u8]>, Result<ParsedBundle, BundleFormatError>)>;

fn parse_bundles(bytes: &[u8], is_array: bool) -> Result<ParsedBundles<'_>, ArtifactRejection> {
    Ok(split_bundles(bytes, is_array)?
        .into_iter()
        .map(|json| {
            let parsed = ParsedBundle::from_json(&json, &BundleLimits::default());
            (json, parsed)
        })
        .collect())
}

fn accepted(
    verified: VerifiedBundle,
    json: &[u8],
    allowed: &crate::policy::Allowed,
) -> AcceptedBundle {
    AcceptedBundle {
        verified,
        json: json.to_vec(),
        rules: allowed.rules.clone(),
        allow_replace: allowed.allow_replace,
    }
}

fn failure(first: Option<BundleRejection>) -> ArtifactRejection {
    ArtifactRejection::Bundle(first.unwrap_or(BundleRejection::Malformed(
        BundleFormatError::Missing("bundle"),
    )))
}

/// The bundles of one bundle file: itself, or each element of a `.sigs`
/// array (byte for byte, as received).
pub fn split_bundles(
    bytes: &[u8],
    is_array: bool,
) -> Result<Vec<Cow<'_, [u8]>>, ArtifactRejection> {
    if !is_array {
        return Ok(vec![Cow::Borrowed(bytes)]);
    }
    match serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(bytes) {
        Ok(list) if !list.is_empty() && list.len() <= MAX_SIGS_BUNDLES => Ok(list
            .iter()
            .map(|v| Cow::Owned(v.get().as_bytes().to_vec()))
            .collect()),
        Ok(list) => Err(ArtifactRejection::SigsArray(format!(
            "holds {} bundles (1 to {MAX_SIGS_BUNDLES} allowed)",
            list.len()
        ))),
        Err(e) => Err(ArtifactRejection::SigsArray(format!(
            "is not a JSON array of bundles: {}",
            quoted(&e.to_string())
        ))),
    }
}

/// The upstream signer a verified bundle establishes: identity and issuer
/// from the verified certificate (or the key's ID), the log index a
/// signature or the verified inclusion proof covers, the log's URL from the
/// trusted root.
pub fn upstream_of(v: &VerifiedBundle) -> UpstreamSigner {
    let (identity, issuer) = match &v.signer {
        VerifiedSigner::Certificate {
            identity, issuer, ..
        } => (identity.clone(), issuer.clone().unwrap_or_default()),
        VerifiedSigner::PublicKey { key_id } => (format!("key:sha256:{key_id}"), String::new()),
    };
    UpstreamSigner {
        identity,
        issuer,
        log_index: v.log_index,
        log_url: v.log_url.clone(),
    }
}
