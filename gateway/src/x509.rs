//! X.509 certificates: the facts the verifier needs, extracted once.
//!
//! Parsing uses `x509-parser` (which rejects malformed DER); this module turns
//! the borrowed parse into an owned [`Certificate`] with the Sigstore-specific
//! fields (OIDC issuer extensions, SANs, embedded SCT list) already read.

use chrono::{DateTime, Utc};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::crypto::{KeyError, SignatureScheme, VerifyingKey};
use crate::der::{self, Reader};

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
    tbs: std::ops::Range<usize>,
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
        let tbs_range = tbs_range(der_bytes)
            .ok_or_else(|| CertificateParseError::Malformed("TBSCertificate not found".into()))?;
        let tbs = &cert.tbs_certificate;
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
            let oid =
                der::oid_to_string(ext.oid.as_bytes()).unwrap_or_else(|| ext.oid.to_id_string());
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
            tbs: tbs_range,
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
        self.der.get(self.tbs.clone()).unwrap_or_default()
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

    /// The OIDC issuer: extension .1.8 (UTF8String), falling back to .1.1 (raw).
    pub fn oidc_issuer(&self) -> Option<String> {
        if let Some(ext) = self.extension(OID_FULCIO_ISSUER_V2) {
            if let Ok(element) = der::parse_single(&ext.value, der::UTF8_STRING, "issuer") {
                if let Ok(text) = std::str::from_utf8(element.content) {
                    return Some(text.to_string());
                }
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

    /// The embedded SCT list extension's TLS-encoded content, if present.
    pub fn sct_list(&self) -> Option<Result<Vec<u8>, der::DerError>> {
        let ext = self.extension(OID_SCT_LIST)?;
        Some(
            der::parse_single(&ext.value, der::OCTET_STRING, "SCT list")
                .map(|e| e.content.to_vec()),
        )
    }

    /// The TBSCertificate with the SCT list extension removed, as the CT log signed it
    /// (RFC 6962 section 3.2, precertificate entry).
    pub fn tbs_without_sct_list(&self) -> Result<Vec<u8>, der::DerError> {
        tbs_without_extension(self.tbs(), OID_SCT_LIST)
    }
}

/// Locates the TBSCertificate (first element of the Certificate SEQUENCE).
fn tbs_range(der_bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let outer = der::parse_single(der_bytes, der::SEQUENCE, "Certificate").ok()?;
    let tbs = outer.reader().read(der::SEQUENCE, "TBSCertificate").ok()?;
    let header = der_bytes.len() - outer.content.len();
    Some(header..header + tbs.raw.len())
}

/// Reads the UTF8String inside an otherName's `[0] EXPLICIT` value.
fn other_name_utf8(value: &[u8]) -> Option<String> {
    let mut reader = Reader::new(value);
    let explicit = reader
        .read(der::context_constructed(0), "otherName value")
        .ok()?;
    let inner = der::parse_single(explicit.content, der::UTF8_STRING, "otherName").ok()?;
    std::str::from_utf8(inner.content).ok().map(str::to_string)
}

/// Re-encodes a DER TBSCertificate without the extension `oid`.
pub use private_ca::der_cert::tbs_without_extension;
