//! RFC 6962 signed certificate timestamps embedded in certificates. Pure.

/// One SCT from an embedded SCT list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificateTimestamp {
    /// SCT version (0 = v1).
    pub version: u8,
    /// SHA-256 of the CT log's public key.
    pub log_id: [u8; 32],
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Opaque CT extensions (non-empty for static CT logs).
    pub extensions: Vec<u8>,
    /// TLS HashAlgorithm (4 = SHA-256).
    pub hash_algorithm: u8,
    /// TLS SignatureAlgorithm (3 = ECDSA, 1 = RSA, 7 = Ed25519).
    pub signature_algorithm: u8,
    /// The signature.
    pub signature: Vec<u8>,
}

struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.data.len() < n {
            return Err("truncated");
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, &'static str> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// Parses a TLS-encoded `SignedCertificateTimestampList`.
pub fn parse_sct_list(data: &[u8]) -> Result<Vec<SignedCertificateTimestamp>, &'static str> {
    let mut outer = Cursor { data };
    let list_len = outer.u16()?;
    let list = outer.take(list_len)?;
    if !outer.data.is_empty() {
        return Err("trailing data after SCT list");
    }
    let mut cursor = Cursor { data: list };
    let mut out = Vec::new();
    while !cursor.data.is_empty() {
        let len = cursor.u16()?;
        let raw = cursor.take(len)?;
        out.push(parse_sct(raw)?);
    }
    Ok(out)
}

fn parse_sct(raw: &[u8]) -> Result<SignedCertificateTimestamp, &'static str> {
    let mut c = Cursor { data: raw };
    let version = c.u8()?;
    if version != 0 {
        return Err("unsupported SCT version");
    }
    let mut log_id = [0u8; 32];
    log_id.copy_from_slice(c.take(32)?);
    let timestamp_ms = c.u64()?;
    let ext_len = c.u16()?;
    let extensions = c.take(ext_len)?.to_vec();
    let hash_algorithm = c.u8()?;
    let signature_algorithm = c.u8()?;
    let sig_len = c.u16()?;
    let signature = c.take(sig_len)?.to_vec();
    if !c.data.is_empty() {
        return Err("trailing data in SCT");
    }
    Ok(SignedCertificateTimestamp {
        version,
        log_id,
        timestamp_ms,
        extensions,
        hash_algorithm,
        signature_algorithm,
        signature,
    })
}

/// Encodes one SCT into a list extension value (TLS `SignedCertificateTimestampList`).
pub fn encode_sct_list(scts: &[SignedCertificateTimestamp]) -> Vec<u8> {
    let mut list = Vec::new();
    for sct in scts {
        let mut raw = vec![sct.version];
        raw.extend_from_slice(&sct.log_id);
        raw.extend_from_slice(&sct.timestamp_ms.to_be_bytes());
        raw.extend_from_slice(&(sct.extensions.len() as u16).to_be_bytes());
        raw.extend_from_slice(&sct.extensions);
        raw.push(sct.hash_algorithm);
        raw.push(sct.signature_algorithm);
        raw.extend_from_slice(&(sct.signature.len() as u16).to_be_bytes());
        raw.extend_from_slice(&sct.signature);
        list.extend_from_slice(&(raw.len() as u16).to_be_bytes());
        list.extend_from_slice(&raw);
    }
    let mut out = (list.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&list);
    out
}

/// The data a CT log signs for a precertificate entry (RFC 6962 section 3.2).
pub fn precert_signed_data(
    timestamp_ms: u64,
    issuer_key_hash: &[u8; 32],
    tbs_without_sct: &[u8],
    extensions: &[u8],
) -> Result<Vec<u8>, &'static str> {
    if tbs_without_sct.len() >= 1 << 24 || extensions.len() >= 1 << 16 {
        return Err("precertificate too large");
    }
    let mut out = Vec::with_capacity(tbs_without_sct.len() + 64);
    out.push(0); // sct_version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    out.extend_from_slice(issuer_key_hash);
    let len = tbs_without_sct.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(tbs_without_sct);
    out.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    out.extend_from_slice(extensions);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_list() {
        let sct = SignedCertificateTimestamp {
            version: 0,
            log_id: [7; 32],
            timestamp_ms: 1_700_000_000_000,
            extensions: vec![1, 2],
            hash_algorithm: 4,
            signature_algorithm: 3,
            signature: vec![9; 70],
        };
        let encoded = encode_sct_list(std::slice::from_ref(&sct));
        assert_eq!(parse_sct_list(&encoded).unwrap(), vec![sct]);
    }

    #[test]
    fn truncated_lists_are_rejected() {
        let sct = SignedCertificateTimestamp {
            version: 0,
            log_id: [7; 32],
            timestamp_ms: 1,
            extensions: vec![],
            hash_algorithm: 4,
            signature_algorithm: 3,
            signature: vec![9; 8],
        };
        let encoded = encode_sct_list(&[sct]);
        for cut in 0..encoded.len() {
            assert!(parse_sct_list(&encoded[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = encoded.clone();
        extra.push(0);
        assert!(parse_sct_list(&extra).is_err());
    }
}
