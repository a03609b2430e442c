//! `trusted_root.json` (protobuf-specs `dev.sigstore.trustroot.v1.TrustedRoot`).
//!
//! Parsing pre-computes everything the hot path needs: keys are parsed once,
//! and the links *inside* each CA chain are verified once here, so bundle
//! verification only checks the leaf's own signature.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::crypto::{HashAlgorithm, KeyKind, SignatureScheme, VerifyingKey};
use crate::encoding::b64_decode;
use crate::x509::Certificate;

/// Media types of trusted roots airgate understands.
pub const TRUSTED_ROOT_MEDIA_TYPES: &[&str] = &[
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.1+json",
    "application/vnd.dev.sigstore.trustedroot+json;version=0.2",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];

/// Upper bound on a trusted root's size.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 4 << 20;

/// Why a trusted root is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustRootError {
    /// Not JSON, or not the expected shape.
    #[error("trusted root is not valid JSON: {0}")]
    Json(String),
    /// Over the size limit.
    #[error("trusted root is {0} bytes, over the {MAX_TRUSTED_ROOT_BYTES}-byte limit")]
    TooLarge(usize),
    /// Unknown media type.
    #[error("unsupported trusted root media type {0:?}")]
    MediaType(String),
    /// A field is malformed.
    #[error("{location}: {problem}")]
    Invalid {
        /// Where in the document.
        location: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(location: impl Into<String>, problem: impl Into<String>) -> TrustRootError {
    TrustRootError::Invalid {
        location: location.into(),
        problem: problem.into(),
    }
}

/// A closed time interval `[start, end]`; `end` absent means open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityWindow {
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (inclusive), if any.
    pub end: Option<DateTime<Utc>>,
}

impl ValidityWindow {
    /// True when `at` lies inside the window (both ends inclusive).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        at >= self.start && self.end.is_none_or(|end| at <= end)
    }
}

/// A transparency log (Rekor) or CT log entry of the trusted root.
#[derive(Debug, Clone)]
pub struct TransparencyLog {
    /// Base URL of the log.
    pub base_url: String,
    /// The log's public key.
    pub key: VerifyingKey,
    /// The scheme the key signs with.
    pub scheme: SignatureScheme,
    /// The log ID (SHA-256 of the key, as published).
    pub log_id: Vec<u8>,
    /// When the key may be used.
    pub valid_for: ValidityWindow,
}

impl TransparencyLog {
    /// The signer name checkpoints carry: the host (and port) of the base URL.
    pub fn checkpoint_name(&self) -> String {
        let rest = self
            .base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, r)| r);
        rest.split('/').next().unwrap_or(rest).to_string()
    }
}

/// A certificate authority (Fulcio) or timestamp authority of the trusted root.
#[derive(Debug, Clone)]
pub struct CertificateAuthority {
    /// The authority's URI.
    pub uri: String,
    /// The chain, issuing certificate first, trust anchor last.
    pub chain: Vec<Certificate>,
    /// When certificates from this authority are trusted.
    pub valid_for: ValidityWindow,
}

/// A parsed, pre-checked trusted root.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// Rekor logs.
    pub tlogs: Vec<TransparencyLog>,
    /// CT logs.
    pub ctlogs: Vec<TransparencyLog>,
    /// Fulcio CAs.
    pub certificate_authorities: Vec<CertificateAuthority>,
    /// RFC 3161 TSAs.
    pub timestamp_authorities: Vec<CertificateAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
    #[serde(default)]
    timestamp_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    hash_algorithm: Option<String>,
    public_key: Option<PublicKeyJson>,
    log_id: Option<LogIdJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyJson {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ValidForJson {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    #[serde(default)]
    uri: String,
    cert_chain: Option<CertChainJson>,
    valid_for: Option<ValidForJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertChainJson {
    #[serde(default)]
    certificates: Vec<RawBytesJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytesJson {
    raw_bytes: String,
}

fn parse_time(text: &str, location: &str) -> Result<DateTime<Utc>, TrustRootError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| invalid(location, format!("invalid timestamp {text:?}: {e}")))
}

fn parse_window(
    valid_for: Option<&ValidForJson>,
    location: &str,
) -> Result<ValidityWindow, TrustRootError> {
    let valid_for = valid_for.ok_or_else(|| invalid(location, "validFor is missing"))?;
    let start = valid_for.start.as_deref().ok_or_else(|| {
        invalid(
            location,
            "validFor.start is missing (an unbounded start is not allowed)",
        )
    })?;
    let start = parse_time(start, location)?;
    let end = valid_for
        .end
        .as_deref()
        .map(|e| parse_time(e, location))
        .transpose()?;
    if end.is_some_and(|e| e < start) {
        return Err(invalid(location, "validFor ends before it starts"));
    }
    Ok(ValidityWindow { start, end })
}

fn scheme_for_key_details(details: &str) -> Option<(Option<KeyKind>, SignatureScheme)> {
    use HashAlgorithm::*;
    Some(match details {
        "PKIX_ECDSA_P256_SHA_256" => (Some(KeyKind::EcdsaP256), SignatureScheme::Ecdsa(Sha256)),
        "PKIX_ECDSA_P384_SHA_384" => (Some(KeyKind::EcdsaP384), SignatureScheme::Ecdsa(Sha384)),
        "PKIX_ECDSA_P521_SHA_512" => (Some(KeyKind::EcdsaP521), SignatureScheme::Ecdsa(Sha512)),
        "PKIX_ED25519" | "PKIX_ED25519_PH" => (Some(KeyKind::Ed25519), SignatureScheme::Ed25519),
        "PKIX_RSA_PKCS1V15_2048_SHA256"
        | "PKIX_RSA_PKCS1V15_3072_SHA256"
        | "PKIX_RSA_PKCS1V15_4096_SHA256"
        | "PKCS1_RSA_PKCS1V5"
        | "PKIX_RSA_PKCS1V5" => (Some(KeyKind::Rsa), SignatureScheme::RsaPkcs1(Sha256)),
        "PKIX_RSA_PSS_2048_SHA256"
        | "PKIX_RSA_PSS_3072_SHA256"
        | "PKIX_RSA_PSS_4096_SHA256"
        | "PKCS1_RSA_PSS"
        | "PKIX_RSA_PSS" => (Some(KeyKind::Rsa), SignatureScheme::RsaPss(Sha256)),
        _ => return None,
    })
}

fn parse_log(log: &LogJson, location: &str) -> Result<TransparencyLog, TrustRootError> {
    if let Some(alg) = &log.hash_algorithm {
        if alg != "SHA2_256" {
            return Err(invalid(
                location,
                format!("unsupported hashAlgorithm {alg}"),
            ));
        }
    }
    let public_key = log
        .public_key
        .as_ref()
        .ok_or_else(|| invalid(location, "publicKey is missing"))?;
    let raw = public_key
        .raw_bytes
        .as_deref()
        .and_then(b64_decode)
        .ok_or_else(|| invalid(location, "publicKey.rawBytes is missing or not base64"))?;
    let details = public_key.key_details.as_deref().unwrap_or("");
    let (expected_kind, scheme) = scheme_for_key_details(details)
        .ok_or_else(|| invalid(location, format!("unsupported keyDetails {details:?}")))?;
    let key = match VerifyingKey::from_spki_der(&raw) {
        Ok(key) => key,
        Err(spki_error) if expected_kind == Some(KeyKind::Rsa) => {
            VerifyingKey::from_pkcs1_rsa(&raw)
                .map_err(|_| invalid(location, format!("publicKey: {spki_error}")))?
        }
        Err(e) => return Err(invalid(location, format!("publicKey: {e}"))),
    };
    if expected_kind.is_some_and(|k| k != key.kind()) {
        return Err(invalid(
            location,
            format!(
                "keyDetails {details} does not match a {} key",
                key.kind().name()
            ),
        ));
    }
    let valid_for = parse_window(
        public_key.valid_for.as_ref(),
        &format!("{location}.publicKey"),
    )?;
    let log_id = log
        .log_id
        .as_ref()
        .and_then(|l| b64_decode(&l.key_id))
        .ok_or_else(|| invalid(location, "logId.keyId is missing or not base64"))?;
    Ok(TransparencyLog {
        base_url: log.base_url.clone(),
        key,
        scheme,
        log_id,
        valid_for,
    })
}

fn parse_authority(
    authority: &AuthorityJson,
    location: &str,
    kind: AuthorityKind,
) -> Result<CertificateAuthority, TrustRootError> {
    let certificates = authority
        .cert_chain
        .as_ref()
        .map(|c| c.certificates.as_slice())
        .unwrap_or_default();
    if certificates.is_empty() {
        return Err(invalid(location, "certChain is empty"));
    }
    let mut chain = Vec::with_capacity(certificates.len());
    for (i, raw) in certificates.iter().enumerate() {
        let der = b64_decode(&raw.raw_bytes).ok_or_else(|| {
            invalid(
                format!("{location}.certChain[{i}]"),
                "rawBytes is not base64",
            )
        })?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| invalid(format!("{location}.certChain[{i}]"), e.to_string()))?;
        chain.push(cert);
    }
    // Verify every link inside the chain once, here, not per bundle.
    for i in 0..chain.len().saturating_sub(1) {
        let (child, parent) = (&chain[i], &chain[i + 1]);
        if child.issuer_raw() != parent.subject_raw() || !child.is_signed_by(parent) {
            return Err(invalid(
                format!("{location}.certChain[{i}]"),
                format!("not issued by certChain[{}]", i + 1),
            ));
        }
        if !parent.is_ca() || parent.key_usage_cert_sign() == Some(false) {
            return Err(invalid(
                format!("{location}.certChain[{}]", i + 1),
                "issuing certificate is not a CA",
            ));
        }
    }
    if kind == AuthorityKind::Fulcio {
        if let Some(first) = chain.first() {
            if !first.is_ca() {
                return Err(invalid(
                    format!("{location}.certChain[0]"),
                    "Fulcio chain must start with a CA",
                ));
            }
        }
    }
    let valid_for = parse_window(authority.valid_for.as_ref(), location)?;
    Ok(CertificateAuthority {
        uri: authority.uri.clone(),
        chain,
        valid_for,
    })
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum AuthorityKind {
    Fulcio,
    Timestamp,
}

impl TrustedRoot {
    /// Parses `trusted_root.json` bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(TrustRootError::TooLarge(bytes.len()));
        }
        let json: RootJson =
            serde_json::from_slice(bytes).map_err(|e| TrustRootError::Json(e.to_string()))?;
        if !TRUSTED_ROOT_MEDIA_TYPES.contains(&json.media_type.as_str()) {
            return Err(TrustRootError::MediaType(json.media_type));
        }
        let tlogs = json
            .tlogs
            .iter()
            .enumerate()
            .map(|(i, l)| parse_log(l, &format!("tlogs[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let ctlogs = json
            .ctlogs
            .iter()
            .enumerate()
            .map(|(i, l)| parse_log(l, &format!("ctlogs[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let certificate_authorities = json
            .certificate_authorities
            .iter()
            .enumerate()
            .map(|(i, a)| {
                parse_authority(
                    a,
                    &format!("certificateAuthorities[{i}]"),
                    AuthorityKind::Fulcio,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timestamp_authorities = json
            .timestamp_authorities
            .iter()
            .enumerate()
            .map(|(i, a)| {
                parse_authority(
                    a,
                    &format!("timestampAuthorities[{i}]"),
                    AuthorityKind::Timestamp,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedRoot {
            tlogs,
            ctlogs,
            certificate_authorities,
            timestamp_authorities,
        })
    }

    /// The Rekor log with this log ID.
    pub fn tlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.tlogs.iter().find(|l| l.log_id == log_id)
    }

    /// The CT log with this log ID.
    pub fn ctlog(&self, log_id: &[u8]) -> Option<&TransparencyLog> {
        self.ctlogs.iter().find(|l| l.log_id == log_id)
    }
}

/// The production Sigstore trusted root embedded in airgate (from the production TUF
/// repository, target `trusted_root.json`).
pub const PRODUCTION_TRUSTED_ROOT: &[u8] =
    include_bytes!("../../data/production_trusted_root.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_production_root_parses() {
        let root = TrustedRoot::from_json(PRODUCTION_TRUSTED_ROOT).unwrap();
        assert_eq!(root.tlogs.len(), 2);
        assert_eq!(root.certificate_authorities.len(), 2);
        assert_eq!(root.tlogs[0].checkpoint_name(), "rekor.sigstore.dev");
        // The log ID of Rekor v1 is the SHA-256 of its key.
        assert_eq!(root.tlogs[0].log_id, root.tlogs[0].key.key_id().to_vec());
    }

    #[test]
    fn missing_validity_start_is_rejected() {
        let text = String::from_utf8(PRODUCTION_TRUSTED_ROOT.to_vec()).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["tlogs"][0]["publicKey"]["validFor"]
            .as_object_mut()
            .unwrap()
            .remove("start");
        let err = TrustedRoot::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(
            err.to_string().contains("validFor.start is missing"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(matches!(
            TrustedRoot::from_json(b"{"),
            Err(TrustRootError::Json(_))
        ));
        assert!(matches!(
            TrustedRoot::from_json(br#"{"mediaType":"x"}"#),
            Err(TrustRootError::MediaType(_))
        ));
    }

    #[test]
    fn windows_are_inclusive() {
        let start = DateTime::from_timestamp(100, 0).unwrap();
        let end = DateTime::from_timestamp(200, 0).unwrap();
        let w = ValidityWindow {
            start,
            end: Some(end),
        };
        assert!(w.contains(start) && w.contains(end));
        assert!(!w.contains(DateTime::from_timestamp(201, 0).unwrap()));
    }
}
