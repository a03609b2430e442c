//! Public keys and signature verification (aws-lc-rs backend).
//!
//! Keys are parsed once from their SubjectPublicKeyInfo and keep a lazily
//! built, per-algorithm `ParsedPublicKey`, so keys from the trusted root are
//! never re-parsed on the hot path.

use std::sync::OnceLock;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use sha2::{Digest as _, Sha256};

use der::asn1::{ObjectIdentifier, UintRef};
use der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoRef;

/// The kind of a public key, read from its SubjectPublicKeyInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA on NIST P-256.
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// ECDSA on NIST P-521.
    EcdsaP521,
    /// Ed25519.
    Ed25519,
    /// RSA (any size aws-lc accepts).
    Rsa,
}

impl KeyKind {
    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::EcdsaP256 => "ECDSA P-256",
            KeyKind::EcdsaP384 => "ECDSA P-384",
            KeyKind::EcdsaP521 => "ECDSA P-521",
            KeyKind::Ed25519 => "Ed25519",
            KeyKind::Rsa => "RSA",
        }
    }
}

/// A hash function used with a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    /// Reads a hash AlgorithmIdentifier OID (dotted form).
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Some(HashAlgorithm::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(HashAlgorithm::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(HashAlgorithm::Sha512),
            _ => None,
        }
    }

    fn aws(self) -> &'static digest::Algorithm {
        match self {
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        }
    }
}

/// A signature scheme, independent of the key's curve or size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ECDSA (ASN.1 DER signature) with the given hash.
    Ecdsa(HashAlgorithm),
    /// Ed25519 over the whole message.
    Ed25519,
    /// RSASSA-PKCS1-v1_5 with the given hash.
    RsaPkcs1(HashAlgorithm),
    /// RSASSA-PSS with the given hash (MGF1 with the same hash).
    RsaPss(HashAlgorithm),
}

impl SignatureScheme {
    /// Reads an X.509 / CMS signature AlgorithmIdentifier OID.
    pub fn from_x509_oid(oid: &str) -> Option<Self> {
        use HashAlgorithm::*;
        match oid {
            "1.2.840.10045.4.3.2" => Some(SignatureScheme::Ecdsa(Sha256)),
            "1.2.840.10045.4.3.3" => Some(SignatureScheme::Ecdsa(Sha384)),
            "1.2.840.10045.4.3.4" => Some(SignatureScheme::Ecdsa(Sha512)),
            "1.3.101.112" => Some(SignatureScheme::Ed25519),
            "1.2.840.113549.1.1.11" => Some(SignatureScheme::RsaPkcs1(Sha256)),
            "1.2.840.113549.1.1.12" => Some(SignatureScheme::RsaPkcs1(Sha384)),
            "1.2.840.113549.1.1.13" => Some(SignatureScheme::RsaPkcs1(Sha512)),
            _ => None,
        }
    }

    /// The scheme a key is used with by default (Sigstore conventions).
    pub fn default_for(kind: KeyKind) -> Self {
        match kind {
            KeyKind::EcdsaP256 => SignatureScheme::Ecdsa(HashAlgorithm::Sha256),
            KeyKind::EcdsaP384 => SignatureScheme::Ecdsa(HashAlgorithm::Sha384),
            KeyKind::EcdsaP521 => SignatureScheme::Ecdsa(HashAlgorithm::Sha512),
            KeyKind::Ed25519 => SignatureScheme::Ed25519,
            KeyKind::Rsa => SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256),
        }
    }
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The SubjectPublicKeyInfo is not valid DER.
    #[error("malformed SubjectPublicKeyInfo: {0}")]
    Malformed(String),
    /// The key algorithm or curve is not supported.
    #[error("unsupported key algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The key bytes were rejected by the crypto backend.
    #[error("{0} key rejected by the crypto backend")]
    Rejected(&'static str),
}

const SLOT_COUNT: usize = 12;

/// A parsed public key that can verify signatures.
pub struct VerifyingKey {
    kind: KeyKind,
    spki_der: Vec<u8>,
    key_bytes: Vec<u8>,
    parsed: [OnceLock<Option<ParsedPublicKey>>; SLOT_COUNT],
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kind", &self.kind)
            .field("key_id", &hex::encode(self.key_id()))
            .finish()
    }
}

impl Clone for VerifyingKey {
    fn clone(&self) -> Self {
        VerifyingKey::new(self.kind, self.spki_der.clone(), self.key_bytes.clone())
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.key_bytes == other.key_bytes
    }
}

fn slot(
    kind: KeyKind,
    scheme: SignatureScheme,
) -> Option<(usize, &'static dyn VerificationAlgorithm)> {
    use HashAlgorithm::*;
    use SignatureScheme::*;
    let entry: (usize, &'static dyn VerificationAlgorithm) = match (kind, scheme) {
        (KeyKind::EcdsaP256, Ecdsa(Sha256)) => (0, &signature::ECDSA_P256_SHA256_ASN1),
        (KeyKind::EcdsaP256, Ecdsa(Sha384)) => (1, &signature::ECDSA_P256_SHA384_ASN1),
        (KeyKind::EcdsaP384, Ecdsa(Sha256)) => (2, &signature::ECDSA_P384_SHA256_ASN1),
        (KeyKind::EcdsaP384, Ecdsa(Sha384)) => (3, &signature::ECDSA_P384_SHA384_ASN1),
        (KeyKind::EcdsaP521, Ecdsa(Sha512)) => (4, &signature::ECDSA_P521_SHA512_ASN1),
        (KeyKind::Ed25519, Ed25519) => (5, &signature::ED25519),
        (KeyKind::Rsa, RsaPkcs1(Sha256)) => (6, &signature::RSA_PKCS1_2048_8192_SHA256),
        (KeyKind::Rsa, RsaPkcs1(Sha384)) => (7, &signature::RSA_PKCS1_2048_8192_SHA384),
        (KeyKind::Rsa, RsaPkcs1(Sha512)) => (8, &signature::RSA_PKCS1_2048_8192_SHA512),
        (KeyKind::Rsa, RsaPss(Sha256)) => (9, &signature::RSA_PSS_2048_8192_SHA256),
        (KeyKind::Rsa, RsaPss(Sha384)) => (10, &signature::RSA_PSS_2048_8192_SHA384),
        (KeyKind::Rsa, RsaPss(Sha512)) => (11, &signature::RSA_PSS_2048_8192_SHA512),
        _ => return None,
    };
    Some(entry)
}

fn scheme_hash(scheme: SignatureScheme) -> Option<HashAlgorithm> {
    match scheme {
        SignatureScheme::Ecdsa(h) | SignatureScheme::RsaPkcs1(h) | SignatureScheme::RsaPss(h) => {
            Some(h)
        }
        SignatureScheme::Ed25519 => None,
    }
}

impl VerifyingKey {
    fn new(kind: KeyKind, spki_der: Vec<u8>, key_bytes: Vec<u8>) -> Self {
        VerifyingKey {
            kind,
            spki_der,
            key_bytes,
            parsed: Default::default(),
        }
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        let malformed = |e: der::Error| KeyError::Malformed(e.to_string());
        let info = SubjectPublicKeyInfoRef::from_der(spki).map_err(malformed)?;
        let kind = match info.algorithm.oid.to_string().as_str() {
            "1.2.840.10045.2.1" => {
                let curve = info
                    .algorithm
                    .parameters
                    .ok_or_else(|| KeyError::Malformed("EC key without namedCurve".into()))?
                    .decode_as::<ObjectIdentifier>()
                    .map_err(malformed)?;
                match curve.to_string().as_str() {
                    "1.2.840.10045.3.1.7" => KeyKind::EcdsaP256,
                    "1.3.132.0.34" => KeyKind::EcdsaP384,
                    "1.3.132.0.35" => KeyKind::EcdsaP521,
                    other => {
                        return Err(KeyError::UnsupportedAlgorithm(format!("EC curve {other}")))
                    }
                }
            }
            "1.3.101.112" => KeyKind::Ed25519,
            "1.2.840.113549.1.1.1" => KeyKind::Rsa,
            other => return Err(KeyError::UnsupportedAlgorithm(other.to_string())),
        };
        let key_bytes = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::Malformed("subjectPublicKey has unused bits".into()))?;
        if key_bytes.is_empty() {
            return Err(KeyError::Malformed("empty subjectPublicKey".into()));
        }
        let key = VerifyingKey::new(kind, spki.to_vec(), key_bytes.to_vec());
        // Validate the key bytes once with the default scheme.
        key.prepared(SignatureScheme::default_for(kind))
            .ok_or(KeyError::Rejected(kind.name()))?;
        Ok(key)
    }

    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_pem(pem_text: &str) -> Result<Self, KeyError> {
        let der = pem_decode(pem_text, "PUBLIC KEY")
            .ok_or_else(|| KeyError::Malformed("not a PEM PUBLIC KEY block".into()))?;
        VerifyingKey::from_spki_der(&der)
    }

    /// Builds an RSA key from a PKCS#1 RSAPublicKey (as some trusted roots carry).
    pub fn from_pkcs1_rsa(der_bytes: &[u8]) -> Result<Self, KeyError> {
        RsaPublicKey::from_der(der_bytes)
            .map_err(|e| KeyError::Malformed(format!("RSAPublicKey: {e}")))?;
        let key = VerifyingKey::new(KeyKind::Rsa, der_bytes.to_vec(), der_bytes.to_vec());
        key.prepared(SignatureScheme::RsaPkcs1(HashAlgorithm::Sha256))
            .ok_or(KeyError::Rejected("RSA"))?;
        Ok(key)
    }

    /// The key kind.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The DER SubjectPublicKeyInfo this key was parsed from.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the DER SubjectPublicKeyInfo (the Sigstore log/key ID).
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    fn prepared(&self, scheme: SignatureScheme) -> Option<&ParsedPublicKey> {
        let (index, algorithm) = slot(self.kind, scheme)?;
        self.parsed
            .get(index)?
            .get_or_init(|| ParsedPublicKey::new(algorithm, &self.key_bytes).ok())
            .as_ref()
    }

    /// Verifies `sig` over `message` with `scheme`.
    pub fn verify(&self, scheme: SignatureScheme, message: &[u8], sig: &[u8]) -> bool {
        match self.prepared(scheme) {
            Some(key) => key.verify_sig(message, sig).is_ok(),
            None => false,
        }
    }

    /// Verifies `sig` over a message given only by its `digest` (hash of `scheme`).
    pub fn verify_prehashed(
        &self,
        scheme: SignatureScheme,
        digest_bytes: &[u8],
        sig: &[u8],
    ) -> bool {
        let Some(hash) = scheme_hash(scheme) else {
            return false;
        };
        let Ok(imported) = digest::Digest::import_less_safe(digest_bytes, hash.aws()) else {
            return false;
        };
        match self.prepared(scheme) {
            Some(key) => key.verify_digest_sig(&imported, sig).is_ok(),
            None => false,
        }
    }

    /// Verifies with the key's default Sigstore scheme.
    pub fn verify_default(&self, message: &[u8], sig: &[u8]) -> bool {
        self.verify(SignatureScheme::default_for(self.kind), message, sig)
    }

    /// PEM `PUBLIC KEY` encoding of this key.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki_der)
    }
}

/// Encodes DER as PEM with 64-column lines and a trailing newline.
pub use private_ca::pem_encode;

/// Decodes the single PEM block in `text` (surrounding whitespace allowed) when
/// its label is `label`, via the `pem` crate; `None` when the text holds no
/// block, several blocks, or another label. Line length is not enforced: Go's
/// `encoding/pem` writes what Rekor stores, and real entries carry long lines.
pub fn pem_decode(text: &str, label: &str) -> Option<Vec<u8>> {
    let mut blocks = pem::parse_many(text.trim().as_bytes()).ok()?;
    if blocks.len() != 1 {
        return None;
    }
    let block = blocks.pop()?;
    (block.tag() == label).then(|| block.into_contents())
}

/// PKCS#1 RSAPublicKey (RFC 8017 appendix A.1.1), decoded only to check its shape.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

    fn p256_spki(public_point: &[u8]) -> Vec<u8> {
        use der::Encode;
        use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
        let ec = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
        let p256 = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ec,
                parameters: Some(der::Any::from(&p256)),
            },
            subject_public_key: der::asn1::BitString::from_bytes(public_point).unwrap(),
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn p256_sign_verify_and_prehash() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let sig = pair.sign(&rng, b"hello").unwrap();
        let key = VerifyingKey::from_spki_der(&p256_spki(pair.public_key().as_ref())).unwrap();
        assert_eq!(key.kind(), KeyKind::EcdsaP256);
        let scheme = SignatureScheme::Ecdsa(HashAlgorithm::Sha256);
        assert!(key.verify(scheme, b"hello", sig.as_ref()));
        assert!(!key.verify(scheme, b"hellO", sig.as_ref()));
        assert!(key.verify_prehashed(scheme, &sha256(b"hello"), sig.as_ref()));
        assert!(!key.verify_prehashed(scheme, &sha256(b"other"), sig.as_ref()));
        let pem = key.to_pem();
        assert_eq!(VerifyingKey::from_pem(&pem).unwrap(), key);
    }

    #[test]
    fn garbage_spki_is_rejected() {
        assert!(VerifyingKey::from_spki_der(b"").is_err());
        assert!(VerifyingKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        // Valid structure, bogus point.
        assert!(VerifyingKey::from_spki_der(&p256_spki(&[4u8; 65])).is_err());
    }
}
