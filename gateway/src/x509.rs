//! X.509 certificates: the facts the verifier needs, extracted once.
//!
//! Parsing uses `x509-parser` (which rejects malformed DER); this module turns
//! the borrowed parse into an owned [`Certificate`] with the Sigstore-specific
//! fields (OIDC issuer extensions, SANs, embedded SCT list) already read.

use chrono::{DateTime, Utc};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::crypto::{HashAlgorithm, KeyError, SignatureScheme, VerifyingKey};
use der::asn1::{ContextSpecific, ObjectIdentifier, Utf8StringRef};
use der::{Any, Decode, Encode, Tag, TagNumber, Tagged};
use x509_cert::ext::pkix::sct::{self as ct, SignedCertificateTimestampList};

/// OID of the Fulcio OIDC issuer extension (raw string value, deprecated).
pub const OID_FULCIO_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
/// OID of the Fulcio OIDC issuer extension (DER UTF8String).
pub const OID_FULCIO_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
/// OID of the Fulcio "username" otherName SAN.
pub const OID_FULCIO_OTHERNAME_SAN: &str = "1.3.6.1.4.1.57264.1.7";
/// OID of the embedded SCT list extension (RFC 6962).
pub const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// OID of the precertificate poison extension (RFC 6962).
pub const OID_CT_POISON: &str = "1.3.6.1.4.1.11129.2.4.3";

const KNOWN_CRITICAL: &[&str] = &[
    "2.5.29.15", // keyUsage
    "2.5.29.19", // basicConstraints
    "2.5.29.17", // subjectAltName
    "2.5.29.37", // extKeyUsage
    "2.5.29.32", // certificatePolicies
];

/// One subject alternative name value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAltName {
    /// rfc822Name.
    Email(String),
    /// uniformResourceIdentifier.
    Uri(String),
    /// dNSName.
    Dns(String),
    /// otherName 1.3.6.1.4.1.57264.1.7 (Fulcio username).
    FulcioUsername(String),
}

impl SubjectAltName {
    /// The textual value, whatever its kind.
    pub fn value(&self) -> &str {
        match self {
            SubjectAltName::Email(v)
            | SubjectAltName::Uri(v)
            | SubjectAltName::Dns(v)
            | SubjectAltName::FulcioUsername(v) => v,
        }
    }
}

/// One non-standard extension, kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExtension {
    /// Dotted OID.
    pub oid: String,
    /// Criticality flag.
    pub critical: bool,
    /// The extnValue OCTET STRING content.
    pub value: Vec<u8>,
}

/// Why a certificate could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateParseError {
    /// Not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    Malformed(String),
    /// Bytes after the certificate.
    #[error("trailing data after the certificate")]
    TrailingData,
    /// The public key could not be used.
    #[error("certificate public key: {0}")]
    Key(#[from] KeyError),
}

/// An owned, parsed X.509 certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Vec<u8>,
    signature_oid: String,
    signature: Vec<u8>,
    issuer: Vec<u8>,
    subject: Vec<u8>,
    serial: Vec<u8>,
    not_before: i64,
    not_after: i64,
    key: VerifyingKey,
    is_ca: bool,
    path_len: Option<u32>,
    key_usage_cert_sign: Option<bool>,
    key_usage_digital_signature: Option<bool>,
    eku_code_signing: bool,
    eku_time_stamping: bool,
    eku_present: bool,
    subject_key_id: Option<Vec<u8>>,
    sans: Vec<SubjectAltName>,
    unknown_critical: Vec<String>,
    extensions: Vec<RawExtension>,
}

fn time_from_secs(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Certificate {
    /// Parses a DER certificate, rejecting trailing data.
    pub fn from_der(der_bytes: &[u8]) -> Result<Self, CertificateParseError> {
        let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(der_bytes)
            .map_err(|e| CertificateParseError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateParseError::TrailingData);
        }
        let tbs = &cert.tbs_certificate;
        let tbs_der = tbs.as_ref().to_vec();
        let key = VerifyingKey::from_spki_der(tbs.subject_pki.raw)?;

        let mut is_ca = false;
        let mut path_len = None;
        let mut key_usage_cert_sign = None;
        let mut key_usage_digital_signature = None;
        let mut eku_code_signing = false;
        let mut eku_time_stamping = false;
        let mut eku_present = false;
        let mut subject_key_id = None;
        let mut sans = Vec::new();
        let mut unknown_critical = Vec::new();
        let mut extensions = Vec::new();
        let mut seen = std::collections::HashSet::new();

        for ext in tbs.extensions() {
            let oid = dotted(&ext.oid);
            if !seen.insert(oid.clone()) {
                return Err(CertificateParseError::Malformed(format!(
                    "duplicate extension {oid}"
                )));
            }
            if ext.critical && !KNOWN_CRITICAL.contains(&oid.as_str()) {
                unknown_critical.push(oid.clone());
            }
            use x509_parser::extensions::ParsedExtension as P;
            match ext.parsed_extension() {
                P::BasicConstraints(bc) => {
                    is_ca = bc.ca;
                    path_len = bc.path_len_constraint;
                }
                P::KeyUsage(ku) => {
                    key_usage_cert_sign = Some(ku.key_cert_sign());
                    key_usage_digital_signature = Some(ku.digital_signature());
                }
                P::ExtendedKeyUsage(eku) => {
                    eku_present = true;
                    eku_code_signing = eku.code_signing;
                    eku_time_stamping = eku.time_stamping;
                }
                P::SubjectKeyIdentifier(ski) => subject_key_id = Some(ski.0.to_vec()),
                P::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::RFC822Name(v) => {
                                sans.push(SubjectAltName::Email(v.to_string()))
                            }
                            GeneralName::URI(v) => sans.push(SubjectAltName::Uri(v.to_string())),
                            GeneralName::DNSName(v) => {
                                sans.push(SubjectAltName::Dns(v.to_string()))
                            }
                            GeneralName::OtherName(oid, value)
                                if oid.to_id_string() == OID_FULCIO_OTHERNAME_SAN =>
                            {
                                if let Some(text) = other_name_utf8(value) {
                                    sans.push(SubjectAltName::FulcioUsername(text));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                P::ParseError { .. } => {
                    return Err(CertificateParseError::Malformed(format!(
                        "extension {oid} does not parse"
                    )))
                }
                _ => {}
            }
            extensions.push(RawExtension {
                oid,
                critical: ext.critical,
                value: ext.value.to_vec(),
            });
        }

        Ok(Certificate {
            der: der_bytes.to_vec(),
            tbs: tbs_der,
            signature_oid: cert.signature_algorithm.algorithm.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            subject: tbs.subject.as_raw().to_vec(),
            serial: tbs.raw_serial().to_vec(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            key,
            is_ca,
            path_len,
            key_usage_cert_sign,
            key_usage_digital_signature,
            eku_code_signing,
            eku_time_stamping,
            eku_present,
            subject_key_id,
            sans,
            unknown_critical,
            extensions,
        })
    }

    /// The full DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER TBSCertificate.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The subject public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Raw DER of the issuer name.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.issuer
    }

    /// Raw DER of the subject name.
    pub fn subject_raw(&self) -> &[u8] {
        &self.subject
    }

    /// Raw serial number content bytes.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// notBefore.
    pub fn not_before(&self) -> DateTime<Utc> {
        time_from_secs(self.not_before)
    }

    /// notAfter.
    pub fn not_after(&self) -> DateTime<Utc> {
        time_from_secs(self.not_after)
    }

    /// True when `at` lies within [notBefore, notAfter] (inclusive).
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.not_before() && at <= self.not_after()
    }

    /// basicConstraints cA.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    /// basicConstraints pathLenConstraint.
    pub fn path_len(&self) -> Option<u32> {
        self.path_len
    }

    /// keyUsage keyCertSign, if keyUsage is present.
    pub fn key_usage_cert_sign(&self) -> Option<bool> {
        self.key_usage_cert_sign
    }

    /// keyUsage digitalSignature, if keyUsage is present.
    pub fn key_usage_digital_signature(&self) -> Option<bool> {
        self.key_usage_digital_signature
    }

    /// True when extKeyUsage lists codeSigning.
    pub fn eku_code_signing(&self) -> bool {
        self.eku_code_signing
    }

    /// True when extKeyUsage lists timeStamping.
    pub fn eku_time_stamping(&self) -> bool {
        self.eku_time_stamping
    }

    /// True when an extKeyUsage extension is present.
    pub fn has_eku(&self) -> bool {
        self.eku_present
    }

    /// subjectKeyIdentifier.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.subject_key_id.as_deref()
    }

    /// Subject alternative names Sigstore understands.
    pub fn sans(&self) -> &[SubjectAltName] {
        &self.sans
    }

    /// Critical extensions this verifier does not understand.
    pub fn unknown_critical_extensions(&self) -> &[String] {
        &self.unknown_critical
    }

    /// All extensions, raw.
    pub fn extensions(&self) -> &[RawExtension] {
        &self.extensions
    }

    /// An extension's raw extnValue content by OID.
    pub fn extension(&self, oid: &str) -> Option<&RawExtension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// True when subject and issuer names are identical (self-issued).
    pub fn is_self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// The OIDC issuer: extension .1.8 (DER UTF8String), falling back to .1.1 (raw).
    pub fn oidc_issuer(&self) -> Option<String> {
        if let Some(ext) = self.extension(OID_FULCIO_ISSUER_V2) {
            if let Ok(text) = Utf8StringRef::from_der(&ext.value) {
                return Some(text.as_str().to_string());
            }
        }
        let ext = self.extension(OID_FULCIO_ISSUER_V1)?;
        std::str::from_utf8(&ext.value).ok().map(str::to_string)
    }

    /// The signature scheme named by the certificate's signatureAlgorithm.
    pub fn signature_scheme(&self) -> Option<SignatureScheme> {
        SignatureScheme::from_x509_oid(&self.signature_oid)
    }

    /// The signatureAlgorithm OID.
    pub fn signature_oid(&self) -> &str {
        &self.signature_oid
    }

    /// True when `issuer`'s key verifies this certificate's signature.
    pub fn is_signed_by(&self, issuer: &Certificate) -> bool {
        let Some(scheme) = self.signature_scheme() else {
            return false;
        };
        issuer
            .public_key()
            .verify(scheme, self.tbs(), &self.signature)
    }

    /// The embedded SCTs (RFC 6962 section 3.3), parsed by `x509-cert`'s SCT
    /// support; `None` when the certificate has no SCT list extension.
    pub fn embedded_scts(&self) -> Option<Result<Vec<Sct>, String>> {
        let ext = self.extension(OID_SCT_LIST)?;
        Some(parse_sct_list(&ext.value))
    }

    /// The TBSCertificate with the SCT list extension removed, as the CT log signed it
    /// (RFC 6962 section 3.2, precertificate entry). The TBS is walked with `der`'s
    /// generic `Any` (so OIDs with arcs beyond 64 bits pass through untouched) and
    /// must re-encode to the very bytes that were signed.
    pub fn precert_tbs(&self) -> Result<Vec<u8>, String> {
        precert_tbs(&self.tbs).map_err(|e| format!("TBSCertificate: {e}"))
    }
}

/// Removes the one SCT list extension from a DER TBSCertificate.
fn precert_tbs(tbs: &[u8]) -> Result<Vec<u8>, String> {
    let der_err = |e: der::Error| e.to_string();
    let sct_oid = ObjectIdentifier::new_unwrap(OID_SCT_LIST);
    let extensions_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N3,
    };
    let mut fields = Vec::<Any>::from_der(tbs).map_err(der_err)?;
    if fields.to_der().map_err(der_err)? != tbs {
        return Err("not canonical DER".into());
    }
    let at = fields
        .iter()
        .position(|f| f.tag() == extensions_tag)
        .ok_or("no extensions")?;
    let extensions = Vec::<Any>::from_der(fields[at].value()).map_err(der_err)?;
    let before = extensions.len();
    let mut kept = Vec::with_capacity(before);
    for ext in extensions {
        let parts = Vec::<Any>::from_der(&ext.to_der().map_err(der_err)?).map_err(der_err)?;
        let is_sct = parts.first().is_some_and(|oid| {
            oid.tag() == Tag::ObjectIdentifier && oid.value() == sct_oid.as_bytes()
        });
        if !is_sct {
            kept.push(ext);
        }
    }
    if kept.len() + 1 != before {
        return Err("expected exactly one SCT list extension".into());
    }
    if kept.is_empty() {
        fields.remove(at);
    } else {
        let encoded = kept.to_der().map_err(der_err)?;
        fields[at] = Any::new(extensions_tag, encoded).map_err(der_err)?;
    }
    fields.to_der().map_err(der_err)
}

/// One signed certificate timestamp from a certificate's embedded SCT list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sct {
    /// SHA-256 of the CT log's public key.
    pub log_id: [u8; 32],
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Opaque CT extensions (non-empty for static CT logs).
    pub extensions: Vec<u8>,
    /// The signature scheme named by the SCT, `None` when unsupported.
    pub scheme: Option<SignatureScheme>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// Parses the SCT list extension value (a DER OCTET STRING around the TLS list).
fn parse_sct_list(ext_value: &[u8]) -> Result<Vec<Sct>, String> {
    let list = SignedCertificateTimestampList::from_der(ext_value)
        .map_err(|e| format!("SCT list: {e}"))?;
    let serialized = list
        .parse_timestamps()
        .map_err(|e| format!("SCT list: {}", sct_error(&e)))?;
    serialized
        .iter()
        .map(|raw| {
            let sct = raw
                .parse_timestamp()
                .map_err(|e| format!("SCT: {}", sct_error(&e)))?;
            Ok(Sct {
                log_id: sct.log_id.key_id,
                timestamp_ms: sct.timestamp,
                extensions: sct.extensions.as_slice().to_vec(),
                scheme: sct_scheme(&sct.signature.algorithm),
                signature: sct.signature.signature.as_slice().to_vec(),
            })
        })
        .collect()
}

/// Maps a TLS SignatureAndHashAlgorithm to the schemes the verifier supports.
fn sct_scheme(alg: &ct::SignatureAndHashAlgorithm) -> Option<SignatureScheme> {
    use ct::{HashAlgorithm as H, SignatureAlgorithm as S};
    match (&alg.hash, &alg.signature) {
        (H::Sha256, S::Ecdsa) => Some(SignatureScheme::Ecdsa(HashAlgorithm::Sha256)),
        (H::Sha384, S::Ecdsa) => Some(SignatureScheme::Ecdsa(HashAlgorithm::Sha384)),
        (H::Sha256, S::Rsa) => Some(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256)),
        (_, S::Ed25519) => Some(SignatureScheme::Ed25519),
        _ => None,
    }
}

/// The dotted form of an OID. `asn1-rs` with its `bigint` feature prints arcs of
/// any size (airgate's own custody OID sits under the UUID arc 2.25, whose arc
/// is 128 bits); without it such OIDs would print as hex and never match.
fn dotted(oid: &asn1_rs::Oid<'_>) -> String {
    oid.to_id_string()
}

/// Reads the UTF8String inside an otherName's `[0] EXPLICIT` value.
fn other_name_utf8(value: &[u8]) -> Option<String> {
    let explicit = ContextSpecific::<Utf8StringRef<'_>>::from_der(value).ok()?;
    if explicit.tag_number.value() != 0 {
        return None;
    }
    Some(explicit.value.as_str().to_string())
}

/// An SCT decoding error in words (the crate's error has no Display).
fn sct_error(e: &x509_cert::ext::pkix::Error) -> String {
    match e {
        x509_cert::ext::pkix::Error::Der(d) => format!("DER: {d}"),
        x509_cert::ext::pkix::Error::Tls(t) => format!("TLS encoding: {t:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ext(oid: &str, value: &[u8]) -> Any {
        let parts = vec![
            Any::from(&ObjectIdentifier::new_unwrap(oid)),
            Any::new(Tag::OctetString, value.to_vec()).unwrap(),
        ];
        Any::from_der(&parts.to_der().unwrap()).unwrap()
    }

    fn tbs(exts: Vec<Any>) -> Vec<u8> {
        let tag = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber::N3,
        };
        let fields = vec![
            Any::new(Tag::Integer, vec![1]).unwrap(),
            Any::new(tag, exts.to_der().unwrap()).unwrap(),
        ];
        fields.to_der().unwrap()
    }

    #[test]
    fn precert_tbs_drops_only_the_sct_list() {
        let bc = ext("2.5.29.19", &[0x30, 0x00]);
        let with = tbs(vec![ext(OID_SCT_LIST, &[0x04, 0x00]), bc.clone()]);
        assert_eq!(precert_tbs(&with).unwrap(), tbs(vec![bc]));
    }

    #[test]
    fn precert_tbs_drops_the_extensions_field_when_it_empties() {
        let only = tbs(vec![ext(OID_SCT_LIST, &[0x04, 0x00])]);
        let expected = vec![Any::new(Tag::Integer, vec![1]).unwrap()];
        assert_eq!(precert_tbs(&only).unwrap(), expected.to_der().unwrap());
    }

    #[test]
    fn precert_tbs_without_sct_list_is_refused() {
        let none = tbs(vec![ext("2.5.29.19", &[0x30, 0x00])]);
        assert!(precert_tbs(&none).unwrap_err().contains("exactly one"));
    }

    #[test]
    fn precert_tbs_with_two_sct_lists_is_refused() {
        let two = tbs(vec![
            ext(OID_SCT_LIST, &[0x04, 0x00]),
            ext(OID_SCT_LIST, &[0x04, 0x00]),
        ]);
        assert!(precert_tbs(&two).is_err());
    }

    #[test]
    fn precert_tbs_with_long_form_length_is_refused() {
        let mut good = tbs(vec![ext(OID_SCT_LIST, &[0x04, 0x00])]);
        let len = good[1];
        good.splice(1..2, [0x81, len]);
        assert!(precert_tbs(&good).is_err());
    }

    #[test]
    fn sct_list_that_is_not_an_octet_string_is_refused() {
        assert!(parse_sct_list(&[0x02, 0x01, 0x00]).is_err());
        assert!(parse_sct_list(&[0x04, 0x02, 0x00, 0x05]).is_err());
        assert_eq!(parse_sct_list(&[0x04, 0x02, 0x00, 0x00]).unwrap(), vec![]);
    }
}
