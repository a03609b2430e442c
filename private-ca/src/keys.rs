//! ECDSA signing keys: generation, PKCS#8 PEM files (0600, atomic, never
//! overwritten) and signing. Key bytes never reach `Debug`, logs or errors.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// The curves the private stack uses (both satisfy sigstore-python and sigstore-js).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 with SHA-256: leaves, log and CT keys.
    P256,
    /// NIST P-384 with SHA-384: root and intermediate CA keys.
    P384,
}

impl Curve {
    fn algorithm(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }
}

/// An ECDSA private key.
pub struct SigningKey {
    curve: Curve,
    pair: EcdsaKeyPair,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("curve", &self.curve)
            .field("key_id", &hex_prefix(&self.key_id()))
            .finish_non_exhaustive()
    }
}

fn hex_prefix(id: &[u8; 32]) -> String {
    id.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl SigningKey {
    /// Generates a fresh key.
    pub fn generate(curve: Curve) -> Result<Self> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(curve.algorithm(), &SystemRandom::new()).map_err(
            |_| Error::Key {
                what: "generation",
                problem: "the crypto backend could not generate a key".into(),
            },
        )?;
        Self::from_pkcs8_der(curve, pkcs8.as_ref(), "generated")
    }

    /// Loads a PKCS#8 DER key.
    pub fn from_pkcs8_der(curve: Curve, der: &[u8], what: &'static str) -> Result<Self> {
        let pair = EcdsaKeyPair::from_pkcs8(curve.algorithm(), der).map_err(|_| Error::Key {
            what,
            problem: format!("not a PKCS#8 ECDSA {curve:?} private key"),
        })?;
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| Error::Key {
                what,
                problem: "public key cannot be encoded".into(),
            })?
            .as_ref()
            .to_vec();
        Ok(SigningKey {
            curve,
            pair,
            spki_der,
        })
    }

    /// Loads a PKCS#8 PEM key file, refusing files readable by group or others.
    pub fn load(path: &Path, curve: Curve, what: &'static str) -> Result<Self> {
        let der = read_private_pem(path, what)?;
        Self::from_pkcs8_der(curve, &der, what)
    }

    /// Writes the key as PKCS#8 PEM with mode 0600, atomically, refusing to overwrite.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        let pkcs8 = self.pair.to_pkcs8v1().map_err(|_| Error::Key {
            what: "export",
            problem: "key cannot be exported as PKCS#8".into(),
        })?;
        let pem = crate::pem::encode("PRIVATE KEY", pkcs8.as_ref());
        write_new_file(path, pem.as_bytes(), 0o600)
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the SubjectPublicKeyInfo (Sigstore log ID / key ID).
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// The raw public key (uncompressed EC point).
    pub fn public_point(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// Signs `message` (hashing it with the curve's hash), ASN.1 DER signature.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::Issuance("signing failed".into()))
    }

    /// Signs a precomputed SHA-256 digest (P-256 keys): the message-signature form
    /// Sigstore uses for artifacts hashed while streaming.
    pub fn sign_sha256_digest(&self, sha256_digest: &[u8; 32]) -> Result<Vec<u8>> {
        if self.curve != Curve::P256 {
            return Err(Error::Issuance("digest signing needs a P-256 key".into()));
        }
        let digest = digest::Digest::import_less_safe(sha256_digest, &digest::SHA256)
            .map_err(|_| Error::Issuance("bad digest".into()))?;
        self.pair
            .sign_digest(&digest)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::Issuance("signing failed".into()))
    }

    pub(crate) fn pkcs8_der(&self) -> Result<Vec<u8>> {
        self.pair
            .to_pkcs8v1()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| Error::Key {
                what: "export",
                problem: "key cannot be exported as PKCS#8".into(),
            })
    }
}

/// Writes a new file atomically (temp file, fsync, no-clobber rename) with `mode`.
pub fn write_new_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if path.exists() {
        return Err(Error::AlreadyExists(path.to_path_buf()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".airgate-ca-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.write_all(data).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::AlreadyExists(path.to_path_buf())
        } else {
            Error::io(path, e.error)
        }
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// An Ed25519 private key (deterministic signatures): the exporter's medium-signing key.
pub struct Ed25519SigningKey {
    pair: aws_lc_rs::signature::Ed25519KeyPair,
    spki_der: Vec<u8>,
}

impl std::fmt::Debug for Ed25519SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ed25519SigningKey")
            .field("key_id", &hex_prefix(&self.key_id()))
            .finish_non_exhaustive()
    }
}

impl Ed25519SigningKey {
    /// Generates a fresh key.
    pub fn generate() -> Result<Self> {
        let pair = aws_lc_rs::signature::Ed25519KeyPair::generate().map_err(|_| Error::Key {
            what: "generation",
            problem: "the crypto backend could not generate a key".into(),
        })?;
        Self::from_pair(pair, "generated")
    }

    fn from_pair(pair: aws_lc_rs::signature::Ed25519KeyPair, what: &'static str) -> Result<Self> {
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| Error::Key {
                what,
                problem: "public key cannot be encoded".into(),
            })?
            .as_ref()
            .to_vec();
        Ok(Ed25519SigningKey { pair, spki_der })
    }

    /// Loads a PKCS#8 PEM key file, refusing files readable by group or others.
    pub fn load(path: &Path, what: &'static str) -> Result<Self> {
        let der = read_private_pem(path, what)?;
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(
            |_| Error::Key {
                what,
                problem: "not a PKCS#8 Ed25519 private key".into(),
            },
        )?;
        Self::from_pair(pair, what)
    }

    /// Writes the key as PKCS#8 PEM with mode 0600, atomically, refusing to overwrite.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        let pkcs8 = self.pair.to_pkcs8().map_err(|_| Error::Key {
            what: "export",
            problem: "key cannot be exported as PKCS#8".into(),
        })?;
        let pem = crate::pem::encode("PRIVATE KEY", pkcs8.as_ref());
        write_new_file(path, pem.as_bytes(), 0o600)
    }

    /// DER SubjectPublicKeyInfo of the public key.
    pub fn public_key_spki(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the SubjectPublicKeyInfo.
    pub fn key_id(&self) -> [u8; 32] {
        Sha256::digest(&self.spki_der).into()
    }

    /// Signs `message` (Ed25519 is deterministic: same input, same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// Reads a PEM `PRIVATE KEY` file kept at mode 0600; a public key given
/// where the private one belongs is named as such.
fn read_private_pem(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(Error::Key {
            what,
            problem: format!(
                "{} is {} bytes, too large for a key file",
                path.display(),
                meta.len()
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if crate::pem::decode(&text, "PUBLIC KEY").is_some() {
        return Err(Error::Key {
            what,
            problem: format!(
                "{} is a public key; give the private key file (PEM PRIVATE KEY) here",
                path.display()
            ),
        });
    }
    check_private_mode(path)?;
    crate::pem::decode(&text, "PRIVATE KEY").ok_or(Error::Key {
        what,
        problem: format!("{} is not a PEM PRIVATE KEY file", path.display()),
    })
}

/// Key files are a few hundred bytes; anything far larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

fn check_private_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_files_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let key = SigningKey::generate(Curve::P256).unwrap();
        key.save_new(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(key.save_new(&path), Err(Error::AlreadyExists(_))));
        let loaded = SigningKey::load(&path, Curve::P256, "test").unwrap();
        assert_eq!(loaded.public_key_spki(), key.public_key_spki());
        assert!(!format!("{loaded:?}").contains("PRIVATE"));
    }

    #[test]
    fn loose_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        SigningKey::generate(Curve::P256)
            .unwrap()
            .save_new(&path)
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                SigningKey::load(&path, Curve::P256, "test"),
                Err(Error::KeyPermissions { .. })
            ));
        }
    }

    #[test]
    fn digest_signing_matches_message_signing() {
        use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
        let key = SigningKey::generate(Curve::P256).unwrap();
        let msg = b"artifact bytes";
        let digest: [u8; 32] = Sha256::digest(msg).into();
        let sig = key.sign_sha256_digest(&digest).unwrap();
        let point = key.pair.public_key().as_ref().to_vec();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(msg, &sig)
            .unwrap();
    }
}
