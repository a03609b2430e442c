//! RFC 3161 time-stamp tokens (CMS SignedData over a TSTInfo). Pure parsing,
//! with RustCrypto's `cms` and `x509-tsp` (strict DER) doing the decoding.
//!
//! Accepts either a full `TimeStampResp` (status + token) or a bare
//! `TimeStampToken` (ContentInfo), as Sigstore bundles carry either.

use chrono::{DateTime, NaiveDate, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier as CmsSignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};

use crate::crypto::{HashAlgorithm, SignatureScheme};
use crate::x509::Certificate;

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
const OID_ATTR_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_ATTR_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// How the token names its signing certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignerIdentifier {
    /// issuerAndSerialNumber: raw issuer Name DER and serial content bytes.
    IssuerAndSerial {
        /// DER of the issuer Name.
        issuer: Vec<u8>,
        /// INTEGER content of the serial.
        serial: Vec<u8>,
    },
    /// subjectKeyIdentifier.
    SubjectKeyId(Vec<u8>),
}

/// A parsed (not yet verified) time-stamp token.
#[derive(Debug, Clone)]
pub struct TimestampToken {
    /// TSTInfo genTime (may carry fractional seconds).
    pub gen_time: DateTime<Utc>,
    /// Hash algorithm of the message imprint.
    pub imprint_algorithm: HashAlgorithm,
    /// The hashed message (must equal the hash of the bundle signature).
    pub imprint: Vec<u8>,
    /// The signer identifier.
    pub signer: SignerIdentifier,
    /// The signer's digest algorithm.
    pub digest_algorithm: HashAlgorithm,
    /// The signature scheme (with hash).
    pub signature_scheme: SignatureScheme,
    /// The signature.
    pub signature: Vec<u8>,
    /// DER of the signed attributes as a SET (what the signature covers).
    pub signed_attributes: Vec<u8>,
    /// The messageDigest signed attribute.
    pub message_digest: Vec<u8>,
    /// DER TSTInfo (eContent).
    pub tst_info: Vec<u8>,
    /// Certificates embedded in the token.
    pub certificates: Vec<Certificate>,
}

/// Why a token could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampParseError {
    /// Malformed DER (the decoder's message).
    #[error("{0}")]
    Der(String),
    /// Structurally valid but not what RFC 3161 requires.
    #[error("{0}")]
    Invalid(&'static str),
    /// The TSA refused the request.
    #[error("time-stamp response status is {0} (not granted)")]
    NotGranted(u64),
}

impl From<der::Error> for TimestampParseError {
    fn from(e: der::Error) -> Self {
        TimestampParseError::Der(e.to_string())
    }
}

fn hash_of(oid: &ObjectIdentifier) -> Result<HashAlgorithm, TimestampParseError> {
    HashAlgorithm::from_oid(&oid.to_string())
        .ok_or(TimestampParseError::Invalid("unsupported hash algorithm"))
}

/// Parses a `TimeStampResp` or `TimeStampToken`.
pub fn parse(input: &[u8]) -> Result<TimestampToken, TimestampParseError> {
    // A ContentInfo starts with an OID, a TimeStampResp with PKIStatusInfo.
    let content_info = match ContentInfo::from_der(input) {
        Ok(ci) => ci,
        Err(_) => {
            let resp = x509_tsp::TimeStampResp::from_der(input)?;
            let status = resp.status.status as u64;
            if status > 1 {
                return Err(TimestampParseError::NotGranted(status));
            }
            resp.time_stamp_token.ok_or(TimestampParseError::Invalid(
                "the response carries no token",
            ))?
        }
    };
    if content_info.content_type.to_string() != OID_SIGNED_DATA {
        return Err(TimestampParseError::Invalid("token is not CMS SignedData"));
    }
    let signed_data: SignedData = content_info.content.decode_as()?;
    parse_signed_data(&signed_data)
}

fn parse_signed_data(sd: &SignedData) -> Result<TimestampToken, TimestampParseError> {
    let encap = &sd.encap_content_info;
    if encap.econtent_type.to_string() != OID_TST_INFO {
        return Err(TimestampParseError::Invalid("eContentType is not TSTInfo"));
    }
    let econtent = encap
        .econtent
        .as_ref()
        .ok_or(TimestampParseError::Invalid("the token has no TSTInfo"))?;
    let tst_info = econtent.decode_as::<OctetString>()?.as_bytes().to_vec();
    let mut certificates = Vec::new();
    for choice in sd.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(cert) = choice {
            let der = cert.to_der()?;
            certificates.push(Certificate::from_der(&der).map_err(|_| {
                TimestampParseError::Invalid("embedded certificate does not parse")
            })?);
        }
    }
    let [signer_info] = sd.signer_infos.0.as_slice() else {
        return Err(TimestampParseError::Invalid(
            "token must have exactly one SignerInfo",
        ));
    };
    let signer = match &signer_info.sid {
        CmsSignerIdentifier::IssuerAndSerialNumber(is) => SignerIdentifier::IssuerAndSerial {
            issuer: is.issuer.to_der()?,
            serial: is.serial_number.as_bytes().to_vec(),
        },
        CmsSignerIdentifier::SubjectKeyIdentifier(ski) => {
            SignerIdentifier::SubjectKeyId(ski.0.as_bytes().to_vec())
        }
    };
    let digest_algorithm = hash_of(&signer_info.digest_alg.oid)?;
    let signed_attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or(TimestampParseError::Invalid(
            "SignerInfo has no signed attributes",
        ))?;
    let sig_oid = signer_info.signature_algorithm.oid.to_string();
    let signature_scheme = match SignatureScheme::from_x509_oid(&sig_oid) {
        Some(s) => s,
        None if sig_oid == OID_EC_PUBLIC_KEY => SignatureScheme::Ecdsa(digest_algorithm),
        None if sig_oid == OID_RSA_ENCRYPTION => SignatureScheme::RsaPkcs1(digest_algorithm),
        None => {
            return Err(TimestampParseError::Invalid(
                "unsupported signature algorithm",
            ))
        }
    };
    // The signature covers the signed attributes' DER with the SET tag.
    let signed_attributes = signed_attrs.to_der()?;
    let mut content_type_ok = false;
    let mut message_digest = None;
    for attr in signed_attrs.iter() {
        let values: Vec<_> = attr.values.iter().collect();
        match attr.oid.to_string().as_str() {
            OID_ATTR_CONTENT_TYPE => {
                let [v] = values.as_slice() else {
                    return Err(TimestampParseError::Invalid(
                        "contentType attribute is not one value",
                    ));
                };
                content_type_ok = v.decode_as::<ObjectIdentifier>()?.to_string() == OID_TST_INFO;
            }
            OID_ATTR_MESSAGE_DIGEST => {
                let [v] = values.as_slice() else {
                    return Err(TimestampParseError::Invalid(
                        "messageDigest attribute is not one value",
                    ));
                };
                let digest = v.decode_as::<OctetString>()?.as_bytes().to_vec();
                if message_digest.replace(digest).is_some() {
                    return Err(TimestampParseError::Invalid(
                        "duplicate messageDigest attribute",
                    ));
                }
            }
            _ => {}
        }
    }
    if !content_type_ok {
        return Err(TimestampParseError::Invalid(
            "contentType attribute is not TSTInfo",
        ));
    }
    let message_digest =
        message_digest.ok_or(TimestampParseError::Invalid("no messageDigest attribute"))?;
    let (gen_time, imprint_algorithm, imprint) = parse_tst_info(&tst_info)?;
    Ok(TimestampToken {
        gen_time,
        imprint_algorithm,
        imprint,
        signer,
        digest_algorithm,
        signature_scheme,
        signature: signer_info.signature.as_bytes().to_vec(),
        signed_attributes,
        message_digest,
        tst_info,
        certificates,
    })
}

/// TSTInfo (RFC 3161 §2.4.2) as `x509_tsp::TstInfo`, except `genTime`:
/// the `der` crate's GeneralizedTime refuses fractional seconds, which
/// RFC 3161 allows and real TSAs emit, so its content is read by
/// [`parse_generalized_time`] (kept hand-written for that reason; fuzzed by
/// `tests/fuzz.rs` through every timestamped bundle).
#[derive(der::Sequence)]
#[allow(dead_code)] // every field is decoded (strict DER); only some are used
struct TstInfo<'a> {
    version: x509_tsp::TspVersion,
    policy: ObjectIdentifier,
    message_imprint: x509_tsp::MessageImprint,
    serial_number: der::asn1::Int,
    gen_time: GeneralizedTimeRef<'a>,
    #[asn1(optional = "true")]
    accuracy: Option<x509_tsp::Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<der::asn1::Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<x509_cert::ext::pkix::name::GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<x509_cert::ext::Extensions>,
}

/// The raw content of a GeneralizedTime (fraction allowed).
#[derive(Clone, Copy)]
struct GeneralizedTimeRef<'a>(&'a [u8]);

impl<'a> der::DecodeValue<'a> for GeneralizedTimeRef<'a> {
    fn decode_value<R: der::Reader<'a>>(reader: &mut R, header: der::Header) -> der::Result<Self> {
        Ok(Self(reader.read_slice(header.length)?))
    }
}

impl der::EncodeValue for GeneralizedTimeRef<'_> {
    fn value_len(&self) -> der::Result<der::Length> {
        der::Length::try_from(self.0.len())
    }
    fn encode_value(&self, writer: &mut impl der::Writer) -> der::Result<()> {
        writer.write(self.0)
    }
}

impl der::FixedTag for GeneralizedTimeRef<'_> {
    const TAG: der::Tag = der::Tag::GeneralizedTime;
}

/// genTime, imprint algorithm and imprint of a DER TSTInfo.
fn parse_tst_info(
    tst_info: &[u8],
) -> Result<(DateTime<Utc>, HashAlgorithm, Vec<u8>), TimestampParseError> {
    let tst = TstInfo::from_der(tst_info)?;
    let imprint_algorithm = hash_of(&tst.message_imprint.hash_algorithm.oid)?;
    let gen_time = parse_generalized_time(tst.gen_time.0).ok_or(TimestampParseError::Invalid(
        "genTime is not a valid GeneralizedTime",
    ))?;
    Ok((
        gen_time,
        imprint_algorithm,
        tst.message_imprint.hashed_message.as_bytes().to_vec(),
    ))
}

/// Parses a DER GeneralizedTime `YYYYMMDDHHMMSS[.f+]Z`.
pub fn parse_generalized_time(content: &[u8]) -> Option<DateTime<Utc>> {
    let text = std::str::from_utf8(content).ok()?;
    let text = text.strip_suffix('Z')?;
    if text.len() < 14 || !text.is_char_boundary(14) {
        return None;
    }
    let (main, fraction) = text.split_at(14);
    if !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| main.get(range)?.parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(4..6)?, num(6..8)?)?;
    let mut nanos = 0u32;
    if !fraction.is_empty() {
        let digits = fraction.strip_prefix('.')?;
        if digits.is_empty()
            || digits.len() > 9
            || digits.ends_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let padded = format!("{digits:0<9}");
        nanos = padded.parse().ok()?;
    }
    let time = date.and_hms_nano_opt(num(8..10)?, num(10..12)?, num(12..14)?, nanos)?;
    Some(DateTime::from_naive_utc_and_offset(time, Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_forms() {
        let t = parse_generalized_time(b"20250612120216Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-06-12T12:02:16+00:00");
        let t = parse_generalized_time(b"20250612120216.123Z").unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 123);
        assert!(parse_generalized_time(b"20250612120216.120Z").is_none());
        assert!(parse_generalized_time(b"20251312120216Z").is_none());
        assert!(parse_generalized_time(b"2025061212021Z").is_none());
        assert!(parse_generalized_time(b"20250612120216").is_none());
        assert!(parse_generalized_time("2025061212021\u{e9}Z".as_bytes()).is_none());
    }

    fn tst_info_with(time: &[u8]) -> Vec<u8> {
        use der::asn1::Int;
        let tst = TstInfo {
            version: x509_tsp::TspVersion::V1,
            policy: ObjectIdentifier::new_unwrap("1.2.3.4"),
            message_imprint: x509_tsp::MessageImprint {
                hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                    oid: ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
                    parameters: None,
                },
                hashed_message: OctetString::new(vec![7u8; 32]).unwrap(),
            },
            serial_number: Int::new(&[1]).unwrap(),
            gen_time: GeneralizedTimeRef(time),
            accuracy: None,
            ordering: false,
            nonce: None,
            tsa: None,
            extensions: None,
        };
        tst.to_der().unwrap()
    }

    #[test]
    fn tst_info_gen_time_keeps_fractional_seconds() {
        let (t, alg, imprint) = parse_tst_info(&tst_info_with(b"20250612120216.25Z")).unwrap();
        assert_eq!(t.timestamp_subsec_millis(), 250);
        assert_eq!(alg, HashAlgorithm::Sha256);
        assert_eq!(imprint, vec![7u8; 32]);
        assert!(parse_tst_info(&tst_info_with(b"20250612120216")).is_err());
        let mut trailing = tst_info_with(b"20250612120216Z");
        trailing.push(0);
        assert!(parse_tst_info(&trailing).is_err());
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        for input in [
            &b""[..],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x05],
            &[0xff; 10],
        ] {
            assert!(parse(input).is_err());
        }
    }
}
