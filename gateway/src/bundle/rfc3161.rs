//! RFC 3161 time-stamp tokens (CMS SignedData over a TSTInfo). Pure parsing.
//!
//! Accepts either a full `TimeStampResp` (status + token) or a bare
//! `TimeStampToken` (ContentInfo), as Sigstore bundles carry either.

use chrono::{DateTime, NaiveDate, Utc};

use crate::crypto::{HashAlgorithm, SignatureScheme};
use crate::der::{self, Element};
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
    /// Malformed DER.
    #[error("{0}")]
    Der(#[from] der::DerError),
    /// Structurally valid but not what RFC 3161 requires.
    #[error("{0}")]
    Invalid(&'static str),
    /// The TSA refused the request.
    #[error("time-stamp response status is {0} (not granted)")]
    NotGranted(u64),
}

fn oid(element: &Element<'_>) -> Result<String, TimestampParseError> {
    der::oid_to_string(element.content).ok_or(TimestampParseError::Invalid("invalid OID"))
}

fn algorithm_oid(element: &Element<'_>) -> Result<String, TimestampParseError> {
    let mut r = element.reader();
    oid(&r.read(der::OID, "AlgorithmIdentifier")?)
}

fn hash_of(element: &Element<'_>) -> Result<HashAlgorithm, TimestampParseError> {
    HashAlgorithm::from_oid(&algorithm_oid(element)?)
        .ok_or(TimestampParseError::Invalid("unsupported hash algorithm"))
}

/// Parses a `TimeStampResp` or `TimeStampToken`.
pub fn parse(input: &[u8]) -> Result<TimestampToken, TimestampParseError> {
    let outer = der::parse_single(input, der::SEQUENCE, "TimeStampResp")?;
    let mut r = outer.reader();
    let first = r.read_any("TimeStampResp")?;
    // TimeStampResp starts with PKIStatusInfo (a SEQUENCE); ContentInfo with an OID.
    let content_info = if first.tag == der::SEQUENCE {
        let mut status_reader = first.reader();
        let status = status_reader.read(der::INTEGER, "PKIStatus")?;
        let status = der::integer_to_u64(status.content)
            .ok_or(TimestampParseError::Invalid("bad PKIStatus"))?;
        if status > 1 {
            return Err(TimestampParseError::NotGranted(status));
        }
        let token = r.read(der::SEQUENCE, "TimeStampToken")?;
        r.finish("TimeStampResp")?;
        token
    } else if first.tag == der::OID {
        outer
    } else {
        return Err(TimestampParseError::Invalid(
            "neither TimeStampResp nor ContentInfo",
        ));
    };
    parse_content_info(content_info)
}

fn parse_content_info(content_info: Element<'_>) -> Result<TimestampToken, TimestampParseError> {
    let mut r = content_info.reader();
    let content_type = r.read(der::OID, "contentType")?;
    if oid(&content_type)? != OID_SIGNED_DATA {
        return Err(TimestampParseError::Invalid("token is not CMS SignedData"));
    }
    let explicit = r.read(der::context_constructed(0), "content")?;
    r.finish("ContentInfo")?;
    let signed_data = der::parse_single(explicit.content, der::SEQUENCE, "SignedData")?;
    let mut sd = signed_data.reader();
    sd.read(der::INTEGER, "SignedData version")?;
    sd.read(der::SET, "digestAlgorithms")?;
    let encap = sd.read(der::SEQUENCE, "encapContentInfo")?;
    let mut er = encap.reader();
    let econtent_type = er.read(der::OID, "eContentType")?;
    if oid(&econtent_type)? != OID_TST_INFO {
        return Err(TimestampParseError::Invalid("eContentType is not TSTInfo"));
    }
    let econtent_explicit = er.read(der::context_constructed(0), "eContent")?;
    er.finish("encapContentInfo")?;
    let econtent = der::parse_single(econtent_explicit.content, der::OCTET_STRING, "eContent")?;
    let tst_info = econtent.content;

    let mut certificates = Vec::new();
    if let Some(certs) = sd.read_optional(der::context_constructed(0), "certificates")? {
        let mut cr = certs.reader();
        while !cr.is_empty() {
            let choice = cr.read_any("CertificateChoices")?;
            if choice.tag == der::SEQUENCE {
                let cert = Certificate::from_der(choice.raw).map_err(|_| {
                    TimestampParseError::Invalid("embedded certificate does not parse")
                })?;
                certificates.push(cert);
            }
        }
    }
    sd.read_optional(der::context_constructed(1), "crls")?;
    let signer_infos = sd.read(der::SET, "signerInfos")?;
    sd.finish("SignedData")?;
    let mut sir = signer_infos.reader();
    let signer_info = sir.read(der::SEQUENCE, "SignerInfo")?;
    if !sir.is_empty() {
        return Err(TimestampParseError::Invalid(
            "token has more than one SignerInfo",
        ));
    }

    let mut si = signer_info.reader();
    si.read(der::INTEGER, "SignerInfo version")?;
    let sid = si.read_any("SignerIdentifier")?;
    let signer = if sid.tag == der::SEQUENCE {
        let mut ir = sid.reader();
        let issuer = ir.read(der::SEQUENCE, "issuer")?;
        let serial = ir.read(der::INTEGER, "serialNumber")?;
        ir.finish("IssuerAndSerialNumber")?;
        SignerIdentifier::IssuerAndSerial {
            issuer: issuer.raw.to_vec(),
            serial: serial.content.to_vec(),
        }
    } else if sid.tag == der::context_primitive(0) {
        SignerIdentifier::SubjectKeyId(sid.content.to_vec())
    } else {
        return Err(TimestampParseError::Invalid("unknown SignerIdentifier"));
    };
    let digest_algorithm_element = si.read(der::SEQUENCE, "digestAlgorithm")?;
    let digest_algorithm = hash_of(&digest_algorithm_element)?;
    let signed_attrs = si
        .read_optional(der::context_constructed(0), "signedAttrs")?
        .ok_or(TimestampParseError::Invalid(
            "SignerInfo has no signed attributes",
        ))?;
    let signature_algorithm = si.read(der::SEQUENCE, "signatureAlgorithm")?;
    let signature = si.read(der::OCTET_STRING, "signature")?;
    si.read_optional(der::context_constructed(1), "unsignedAttrs")?;
    si.finish("SignerInfo")?;

    let sig_oid = algorithm_oid(&signature_algorithm)?;
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

    // Signed attributes: the signature covers their DER with the SET tag.
    let mut signed_attributes = signed_attrs.raw.to_vec();
    if let Some(first) = signed_attributes.first_mut() {
        *first = der::SET;
    }
    let mut content_type_ok = false;
    let mut message_digest = None;
    let mut ar = signed_attrs.reader();
    while !ar.is_empty() {
        let attr = ar.read(der::SEQUENCE, "Attribute")?;
        let mut a = attr.reader();
        let attr_type = oid(&a.read(der::OID, "attrType")?)?;
        let values = a.read(der::SET, "attrValues")?;
        let mut vr = values.reader();
        match attr_type.as_str() {
            OID_ATTR_CONTENT_TYPE => {
                let v = vr.read(der::OID, "contentType value")?;
                content_type_ok = oid(&v)? == OID_TST_INFO;
            }
            OID_ATTR_MESSAGE_DIGEST => {
                let v = vr.read(der::OCTET_STRING, "messageDigest value")?;
                if message_digest.replace(v.content.to_vec()).is_some() {
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

    // TSTInfo.
    let tst = der::parse_single(tst_info, der::SEQUENCE, "TSTInfo")?;
    let mut tr = tst.reader();
    tr.read(der::INTEGER, "TSTInfo version")?;
    tr.read(der::OID, "policy")?;
    let imprint = tr.read(der::SEQUENCE, "messageImprint")?;
    let mut mr = imprint.reader();
    let imprint_algorithm = hash_of(&mr.read(der::SEQUENCE, "hashAlgorithm")?)?;
    let hashed = mr.read(der::OCTET_STRING, "hashedMessage")?;
    mr.finish("messageImprint")?;
    tr.read(der::INTEGER, "serialNumber")?;
    let gen_time = tr.read(der::GENERALIZED_TIME, "genTime")?;
    let gen_time = parse_generalized_time(gen_time.content).ok_or(TimestampParseError::Invalid(
        "genTime is not a valid GeneralizedTime",
    ))?;

    Ok(TimestampToken {
        gen_time,
        imprint_algorithm,
        imprint: hashed.content.to_vec(),
        signer,
        digest_algorithm,
        signature_scheme,
        signature: signature.content.to_vec(),
        signed_attributes,
        message_digest,
        tst_info: tst_info.to_vec(),
        certificates,
    })
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
