//! Certificate-level DER surgery: locate the TBS and SPKI, drop or re-label
//! one extension. Pure; used by issuance here and by the verifier in `gateway`.

use crate::der::{self, DerError};

/// The DER TBSCertificate inside a DER certificate.
pub fn tbs(cert_der: &[u8]) -> Option<&[u8]> {
    let outer = der::parse_single(cert_der, der::SEQUENCE, "Certificate").ok()?;
    let tbs = outer.reader().read(der::SEQUENCE, "TBSCertificate").ok()?;
    Some(tbs.raw)
}

/// The DER SubjectPublicKeyInfo inside a DER certificate.
pub fn spki(cert_der: &[u8]) -> Option<&[u8]> {
    let mut t = der::Reader::new(tbs(cert_der)?);
    let tbs = t.read(der::SEQUENCE, "TBSCertificate").ok()?;
    let mut r = tbs.reader();
    r.read_optional(der::context_constructed(0), "version")
        .ok()?;
    r.read(der::INTEGER, "serial").ok()?;
    r.read(der::SEQUENCE, "signature").ok()?;
    r.read(der::SEQUENCE, "issuer").ok()?;
    r.read(der::SEQUENCE, "validity").ok()?;
    r.read(der::SEQUENCE, "subject").ok()?;
    Some(r.read(der::SEQUENCE, "subjectPublicKeyInfo").ok()?.raw)
}

/// Rebuilds a TBSCertificate, transforming its extension list with `edit`
/// (which receives each Extension's raw DER and its OID content bytes).
fn edit_extensions(
    tbs: &[u8],
    mut edit: impl FnMut(&[u8], &[u8]) -> Result<Option<Vec<u8>>, DerError>,
) -> Result<Vec<u8>, DerError> {
    let context = "TBSCertificate";
    let outer = der::parse_single(tbs, der::SEQUENCE, context)?;
    let mut reader = outer.reader();
    let mut body = Vec::with_capacity(tbs.len());
    while !reader.is_empty() {
        let element = reader.read_any(context)?;
        if element.tag != der::context_constructed(3) {
            body.extend_from_slice(element.raw);
            continue;
        }
        let extensions = der::parse_single(element.content, der::SEQUENCE, "extensions")?;
        let mut ext_reader = extensions.reader();
        let mut kept = Vec::with_capacity(extensions.content.len());
        while !ext_reader.is_empty() {
            let ext = ext_reader.read(der::SEQUENCE, "extension")?;
            let oid = ext.reader().read(der::OID, "extension OID")?;
            if let Some(replacement) = edit(ext.raw, oid.content)? {
                kept.extend(replacement);
            }
        }
        if !kept.is_empty() {
            let seq = der::encode_tlv(der::SEQUENCE, &kept);
            body.extend(der::encode_tlv(der::context_constructed(3), &seq));
        }
    }
    Ok(der::encode_tlv(der::SEQUENCE, &body))
}

/// Re-encodes a DER TBSCertificate without the extension `oid` (dotted), which must be present.
pub fn tbs_without_extension(tbs: &[u8], oid: &str) -> Result<Vec<u8>, DerError> {
    let target = der::oid_from_dotted(oid).ok_or(DerError {
        context: "extension OID",
        problem: "invalid dotted OID",
    })?;
    let mut removed = false;
    let out = edit_extensions(tbs, |raw, ext_oid| {
        if ext_oid == target.as_slice() {
            removed = true;
            Ok(None)
        } else {
            Ok(Some(raw.to_vec()))
        }
    })?;
    if removed {
        Ok(out)
    } else {
        Err(DerError {
            context: "TBSCertificate",
            problem: "extension to remove is absent",
        })
    }
}

/// Re-signs a certificate's TBS with `sign` (keeping its signatureAlgorithm),
/// after relabelling an extension with OID content `from` to `to` if given.
pub fn resign<E>(
    cert_der: &[u8],
    rewrite: Option<(&[u8], &[u8])>,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E>
where
    E: From<crate::Error>,
{
    let malformed = |e: DerError| E::from(crate::Error::Issuance(format!("certificate DER: {e}")));
    let outer = der::parse_single(cert_der, der::SEQUENCE, "Certificate").map_err(malformed)?;
    let mut r = outer.reader();
    let tbs = r.read(der::SEQUENCE, "TBSCertificate").map_err(malformed)?;
    let algorithm = r
        .read(der::SEQUENCE, "signatureAlgorithm")
        .map_err(malformed)?;
    let new_tbs = edit_extensions(tbs.raw, |raw, oid| {
        let Some((from, to)) = rewrite else {
            return Ok(Some(raw.to_vec()));
        };
        if oid != from {
            return Ok(Some(raw.to_vec()));
        }
        let ext = der::parse_single(raw, der::SEQUENCE, "extension")?;
        let mut er = ext.reader();
        er.read(der::OID, "extension OID")?;
        let mut body = der::encode_tlv(der::OID, to);
        while !er.is_empty() {
            body.extend_from_slice(er.read_any("extension field")?.raw);
        }
        Ok(Some(der::encode_tlv(der::SEQUENCE, &body)))
    })
    .map_err(malformed)?;
    let signature = sign(&new_tbs)?;
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut body = new_tbs;
    body.extend_from_slice(algorithm.raw);
    body.extend(der::encode_tlv(der::BIT_STRING, &bits));
    Ok(der::encode_tlv(der::SEQUENCE, &body))
}
