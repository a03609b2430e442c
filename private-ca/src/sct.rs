//! RFC 6962 signed certificate timestamps: encoders for the CA's own SCTs. Pure.
//! Parsing SCTs from untrusted certificates is the verifier's job (gateway,
//! with `x509-cert`), not this key-holding crate's.

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
    fn list_encoding_is_length_prefixed() {
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
        let one = 1 + 32 + 8 + 2 + 2 + 2 + 2 + 70;
        assert_eq!(encoded.len(), 2 + 2 + one);
        assert_eq!(&encoded[..2], &((one + 2) as u16).to_be_bytes());
        assert_eq!(&encoded[2..4], &(one as u16).to_be_bytes());
    }

    #[test]
    fn precert_signed_data_refuses_oversized_input() {
        let big = vec![0u8; 1 << 24];
        assert!(precert_signed_data(1, &[0; 32], &big, &[]).is_err());
        assert!(precert_signed_data(1, &[0; 32], b"tbs", &[]).is_ok());
    }
}
