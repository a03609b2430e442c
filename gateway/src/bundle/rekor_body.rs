//! Rekor entry bodies (`canonicalizedBody`): hashedrekord 0.0.1 / 0.0.2,
//! dsse 0.0.1 / 0.0.2 and intoto 0.0.2, normalized into one shape so the
//! verifier can compare them with the bundle. Pure.

use serde_json::Value;

use crate::crypto::{pem_decode, HashAlgorithm};
use crate::encoding::{b64_decode, hex32};

/// The key or certificate an entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedVerifier {
    /// A DER X.509 certificate.
    Certificate(Vec<u8>),
    /// A DER SubjectPublicKeyInfo.
    PublicKey(Vec<u8>),
}

/// A normalized log entry body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedEntry {
    /// A signature over an artifact digest.
    HashedRekord {
        /// The digest algorithm.
        algorithm: HashAlgorithm,
        /// The digest the signature covers.
        digest: Vec<u8>,
        /// The signature.
        signature: Vec<u8>,
        /// Who signed.
        verifier: LoggedVerifier,
    },
    /// A DSSE envelope (payload recorded by hash).
    Dsse {
        /// SHA-256 of the payload.
        payload_hash: [u8; 32],
        /// Signatures with their verifiers.
        signatures: Vec<(Vec<u8>, LoggedVerifier)>,
    },
    /// An in-toto envelope recorded in full (intoto 0.0.2).
    Intoto {
        /// The payload type.
        payload_type: String,
        /// The payload.
        payload: Vec<u8>,
        /// SHA-256 of the payload, if recorded.
        payload_hash: Option<[u8; 32]>,
        /// Signatures with their verifiers.
        signatures: Vec<(Vec<u8>, LoggedVerifier)>,
    },
}

/// Why an entry body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON.
    #[error("entry body is not JSON: {0}")]
    Json(String),
    /// A field is missing or malformed.
    #[error("entry body field {0} is missing or malformed")]
    Field(&'static str),
    /// A kind/version airgate does not verify.
    #[error("unsupported entry kind {kind} {version}")]
    Unsupported {
        /// Kind.
        kind: String,
        /// API version.
        version: String,
    },
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn text<'a>(v: &'a Value, path: &[&str], name: &'static str) -> Result<&'a str, BodyError> {
    at(v, path)
        .and_then(Value::as_str)
        .ok_or(BodyError::Field(name))
}

fn b64(v: &Value, path: &[&str], name: &'static str) -> Result<Vec<u8>, BodyError> {
    b64_decode(text(v, path, name)?).ok_or(BodyError::Field(name))
}

fn pem_verifier(pem_bytes: &[u8], name: &'static str) -> Result<LoggedVerifier, BodyError> {
    let pem = std::str::from_utf8(pem_bytes).map_err(|_| BodyError::Field(name))?;
    if let Some(der) = pem_decode(pem, "CERTIFICATE") {
        return Ok(LoggedVerifier::Certificate(der));
    }
    if let Some(der) = pem_decode(pem, "PUBLIC KEY") {
        return Ok(LoggedVerifier::PublicKey(der));
    }
    Err(BodyError::Field(name))
}

fn v2_verifier(v: &Value, name: &'static str) -> Result<LoggedVerifier, BodyError> {
    if let Some(raw) = at(v, &["x509Certificate", "rawBytes"]).and_then(Value::as_str) {
        return b64_decode(raw)
            .map(LoggedVerifier::Certificate)
            .ok_or(BodyError::Field(name));
    }
    if let Some(raw) = at(v, &["publicKey", "rawBytes"]).and_then(Value::as_str) {
        return b64_decode(raw)
            .map(LoggedVerifier::PublicKey)
            .ok_or(BodyError::Field(name));
    }
    Err(BodyError::Field(name))
}

fn hash_algorithm_v1(name: &str) -> Option<HashAlgorithm> {
    match name {
        "sha256" => Some(HashAlgorithm::Sha256),
        "sha384" => Some(HashAlgorithm::Sha384),
        "sha512" => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

fn hash_algorithm_v2(name: &str) -> Option<HashAlgorithm> {
    match name {
        "SHA2_256" => Some(HashAlgorithm::Sha256),
        "SHA2_384" => Some(HashAlgorithm::Sha384),
        "SHA2_512" => Some(HashAlgorithm::Sha512),
        _ => None,
    }
}

/// Parses a canonicalized body. Returns the body's own kind and apiVersion too.
pub fn parse_body(body: &[u8]) -> Result<(String, String, LoggedEntry), BodyError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let kind = text(&v, &["kind"], "kind")?.to_string();
    let version = text(&v, &["apiVersion"], "apiVersion")?.to_string();
    let spec = v.get("spec").ok_or(BodyError::Field("spec"))?;
    let entry = match (kind.as_str(), version.as_str()) {
        ("hashedrekord", "0.0.1") => hashedrekord_v0_0_1(spec)?,
        ("hashedrekord", "0.0.2") => hashedrekord_v0_0_2(spec)?,
        ("dsse", "0.0.1") => dsse_v0_0_1(spec)?,
        ("dsse", "0.0.2") => dsse_v0_0_2(spec)?,
        ("intoto", "0.0.2") => intoto_v0_0_2(spec)?,
        _ => return Err(BodyError::Unsupported { kind, version }),
    };
    Ok((kind, version, entry))
}

/// A hashedrekord 0.0.1 body: digest, signature, PEM verifier.
fn hashedrekord_v0_0_1(spec: &Value) -> Result<LoggedEntry, BodyError> {
    let alg = text(
        spec,
        &["data", "hash", "algorithm"],
        "spec.data.hash.algorithm",
    )?;
    let algorithm = hash_algorithm_v1(alg).ok_or(BodyError::Field("spec.data.hash.algorithm"))?;
    let value = text(spec, &["data", "hash", "value"], "spec.data.hash.value")?;
    let digest = hex::decode(value).map_err(|_| BodyError::Field("spec.data.hash.value"))?;
    let signature = b64(spec, &["signature", "content"], "spec.signature.content")?;
    let pem = b64(
        spec,
        &["signature", "publicKey", "content"],
        "spec.signature.publicKey.content",
    )?;
    Ok(LoggedEntry::HashedRekord {
        algorithm,
        digest,
        signature,
        verifier: pem_verifier(&pem, "spec.signature.publicKey.content")?,
    })
}

/// A hashedrekord 0.0.2 body (Rekor v2).
fn hashedrekord_v0_0_2(spec: &Value) -> Result<LoggedEntry, BodyError> {
    let inner = spec
        .get("hashedRekordV002")
        .ok_or(BodyError::Field("spec.hashedRekordV002"))?;
    let alg = text(
        inner,
        &["data", "algorithm"],
        "spec.hashedRekordV002.data.algorithm",
    )?;
    let algorithm =
        hash_algorithm_v2(alg).ok_or(BodyError::Field("spec.hashedRekordV002.data.algorithm"))?;
    let digest = b64(
        inner,
        &["data", "digest"],
        "spec.hashedRekordV002.data.digest",
    )?;
    let signature = b64(
        inner,
        &["signature", "content"],
        "spec.hashedRekordV002.signature.content",
    )?;
    let verifier_value = at(inner, &["signature", "verifier"])
        .ok_or(BodyError::Field("spec.hashedRekordV002.signature.verifier"))?;
    Ok(LoggedEntry::HashedRekord {
        algorithm,
        digest,
        signature,
        verifier: v2_verifier(verifier_value, "spec.hashedRekordV002.signature.verifier")?,
    })
}

/// A dsse 0.0.1 body: payload hash and signatures with PEM verifiers.
fn dsse_v0_0_1(spec: &Value) -> Result<LoggedEntry, BodyError> {
    let alg = text(
        spec,
        &["payloadHash", "algorithm"],
        "spec.payloadHash.algorithm",
    )?;
    if alg != "sha256" {
        return Err(BodyError::Field("spec.payloadHash.algorithm"));
    }
    let payload_hash = hex32(text(
        spec,
        &["payloadHash", "value"],
        "spec.payloadHash.value",
    )?)
    .ok_or(BodyError::Field("spec.payloadHash.value"))?;
    let list = spec
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or(BodyError::Field("spec.signatures"))?;
    let mut signatures = Vec::new();
    for s in list {
        let sig = b64(s, &["signature"], "spec.signatures[].signature")?;
        let pem = b64(s, &["verifier"], "spec.signatures[].verifier")?;
        signatures.push((sig, pem_verifier(&pem, "spec.signatures[].verifier")?));
    }
    Ok(LoggedEntry::Dsse {
        payload_hash,
        signatures,
    })
}

/// A dsse 0.0.2 body (Rekor v2).
fn dsse_v0_0_2(spec: &Value) -> Result<LoggedEntry, BodyError> {
    let inner = spec
        .get("dsseV002")
        .ok_or(BodyError::Field("spec.dsseV002"))?;
    let alg = text(
        inner,
        &["payloadHash", "algorithm"],
        "spec.dsseV002.payloadHash.algorithm",
    )?;
    if alg != "SHA2_256" {
        return Err(BodyError::Field("spec.dsseV002.payloadHash.algorithm"));
    }
    let payload_hash: [u8; 32] = b64(
        inner,
        &["payloadHash", "digest"],
        "spec.dsseV002.payloadHash.digest",
    )?
    .try_into()
    .map_err(|_| BodyError::Field("spec.dsseV002.payloadHash.digest"))?;
    let list = inner
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or(BodyError::Field("spec.dsseV002.signatures"))?;
    let mut signatures = Vec::new();
    for s in list {
        let sig = b64(s, &["content"], "spec.dsseV002.signatures[].content")?;
        let verifier = s
            .get("verifier")
            .ok_or(BodyError::Field("spec.dsseV002.signatures[].verifier"))?;
        signatures.push((
            sig,
            v2_verifier(verifier, "spec.dsseV002.signatures[].verifier")?,
        ));
    }
    Ok(LoggedEntry::Dsse {
        payload_hash,
        signatures,
    })
}

/// An intoto 0.0.2 body: the envelope (base64 twice), payload hash, signatures.
fn intoto_v0_0_2(spec: &Value) -> Result<LoggedEntry, BodyError> {
    let envelope =
        at(spec, &["content", "envelope"]).ok_or(BodyError::Field("spec.content.envelope"))?;
    let payload_type = text(
        envelope,
        &["payloadType"],
        "spec.content.envelope.payloadType",
    )?
    .to_string();
    // intoto 0.0.2 stores the envelope's base64 fields base64-encoded once more.
    let payload_b64 = b64(envelope, &["payload"], "spec.content.envelope.payload")?;
    let payload = std::str::from_utf8(&payload_b64)
        .ok()
        .and_then(b64_decode)
        .ok_or(BodyError::Field("spec.content.envelope.payload"))?;
    let payload_hash = match at(spec, &["content", "payloadHash"]) {
        None => None,
        Some(h) => {
            if text(h, &["algorithm"], "spec.content.payloadHash.algorithm")? != "sha256" {
                return Err(BodyError::Field("spec.content.payloadHash.algorithm"));
            }
            Some(
                hex32(text(h, &["value"], "spec.content.payloadHash.value")?)
                    .ok_or(BodyError::Field("spec.content.payloadHash.value"))?,
            )
        }
    };
    let list = envelope
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or(BodyError::Field("spec.content.envelope.signatures"))?;
    let mut signatures = Vec::new();
    for s in list {
        let sig_b64 = b64(s, &["sig"], "spec.content.envelope.signatures[].sig")?;
        // Normally base64 twice; some producers encoded it once.
        let sig = std::str::from_utf8(&sig_b64)
            .ok()
            .and_then(b64_decode)
            .unwrap_or(sig_b64);
        let pem = b64(
            s,
            &["publicKey"],
            "spec.content.envelope.signatures[].publicKey",
        )?;
        signatures.push((
            sig,
            pem_verifier(&pem, "spec.content.envelope.signatures[].publicKey")?,
        ));
    }
    Ok(LoggedEntry::Intoto {
        payload_type,
        payload,
        payload_hash,
        signatures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_kinds_are_named() {
        let err = parse_body(br#"{"kind":"rpm","apiVersion":"0.0.1","spec":{}}"#).unwrap_err();
        assert_eq!(
            err,
            BodyError::Unsupported {
                kind: "rpm".into(),
                version: "0.0.1".into()
            }
        );
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        assert!(matches!(parse_body(b"not json"), Err(BodyError::Json(_))));
        assert!(parse_body(br#"{"kind":"hashedrekord","apiVersion":"0.0.1","spec":{}}"#).is_err());
        assert!(parse_body(br#"{"kind":"hashedrekord","apiVersion":"0.0.1"}"#).is_err());
    }
}
