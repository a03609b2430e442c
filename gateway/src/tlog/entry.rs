//! Log entry bodies and the signed entry timestamp payload. Pure.

use serde_json::json;

use crate::crypto::{pem_encode, sha256};
use crate::encoding::{b64_encode, canonical_json};

/// The kinds of entries airgate's log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// hashedrekord 0.0.1: a signature over an artifact digest.
    HashedRekord,
    /// dsse 0.0.1: a DSSE envelope (attestations).
    Dsse,
}

impl EntryKind {
    /// Rekor's kind name.
    pub fn kind(self) -> &'static str {
        match self {
            EntryKind::HashedRekord => "hashedrekord",
            EntryKind::Dsse => "dsse",
        }
    }

    /// The entry API version.
    pub fn version(self) -> &'static str {
        "0.0.1"
    }

    /// Parses a stored kind name.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "hashedrekord" => Some(EntryKind::HashedRekord),
            "dsse" => Some(EntryKind::Dsse),
            _ => None,
        }
    }
}

/// RFC 8785 canonical hashedrekord 0.0.1 body: artifact digest, signature, signer certificate.
pub fn hashedrekord_body(
    artifact_sha256: &[u8; 32],
    signature: &[u8],
    certificate_der: &[u8],
) -> Vec<u8> {
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(artifact_sha256)}},
            "signature": {
                "content": b64_encode(signature),
                "publicKey": {"content": b64_encode(pem_encode("CERTIFICATE", certificate_der).as_bytes())},
            },
        },
    });
    // Only strings and objects: canonicalization cannot fail.
    canonical_json(&body).unwrap_or_default()
}

/// RFC 8785 canonical dsse 0.0.1 body for a one-signature envelope.
pub fn dsse_body(
    envelope_json: &[u8],
    payload: &[u8],
    signature: &[u8],
    certificate_der: &[u8],
) -> Vec<u8> {
    let body = json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha256(envelope_json))},
            "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha256(payload))},
            "signatures": [{
                "signature": b64_encode(signature),
                "verifier": b64_encode(pem_encode("CERTIFICATE", certificate_der).as_bytes()),
            }],
        },
    });
    canonical_json(&body).unwrap_or_default()
}

/// The canonical JSON a log signs as the SET (inclusion promise).
pub fn set_payload(body: &[u8], integrated_time: i64, log_id: &[u8], log_index: u64) -> Vec<u8> {
    format!(
        r#"{{"body":"{}","integratedTime":{},"logID":"{}","logIndex":{}}}"#,
        b64_encode(body),
        integrated_time,
        hex::encode(log_id),
        log_index
    )
    .into_bytes()
}

/// What the `kind` and `artifact_sha256` columns of an entry must be, read
/// from its signed body: the kind, and for hashedrekord the digest it
/// records (a dsse body records only the payload's hash, so the subject
/// digest is not derivable from it). `None` for a body of neither kind.
pub fn derived_columns(body: &[u8]) -> Option<(EntryKind, Option<[u8; 32]>)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let kind = EntryKind::from_kind(value.get("kind")?.as_str()?)?;
    match kind {
        EntryKind::HashedRekord => {
            let hash = value.pointer("/spec/data/hash")?;
            if hash.get("algorithm")?.as_str()? != "sha256" {
                return None;
            }
            let digest = crate::encoding::hex32(hash.get("value")?.as_str()?)?;
            Some((kind, Some(digest)))
        }
        EntryKind::Dsse => Some((kind, None)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn set_payload_is_canonical_json() {
        let payload = set_payload(b"{}", 1700000000, &[0xab, 0xcd], 7);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(canonical_json(&v).unwrap(), payload);
    }

    #[test]
    fn hashedrekord_body_parses_back() {
        let body = hashedrekord_body(&[1; 32], b"sig", b"\x30\x00");
        let (kind, version, _) = crate::bundle::rekor_body::parse_body(&body).unwrap();
        assert_eq!((kind.as_str(), version.as_str()), ("hashedrekord", "0.0.1"));
        assert!(std::str::from_utf8(&body)
            .unwrap()
            .starts_with(r#"{"apiVersion":"0.0.1","kind":"hashedrekord""#));
    }
}
