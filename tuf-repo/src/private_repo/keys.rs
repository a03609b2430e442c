//! Role keys of the private repository: Ed25519, generated with aws-lc-rs,
//! stored as PKCS#8 PEM files of mode 0600 in the keys directory, and handed
//! to tough as in-memory [`KeySource`]s. Key material never appears in a
//! `Debug` output or an error message.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{RoleType, Root};
use tough::sign::{parse_keypair, Sign};

use crate::fsutil::{read_limited, sync_dir, write_new_atomic};
use crate::{Error, Role};

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
const MAX_KEY_FILE_BYTES: u64 = 16 << 10;

/// File name of a role's key in the keys directory: `root-1.pem`,
/// `root-2.pem`, ... for root keys, `<role>.pem` for the online roles.
pub(crate) fn key_file_name(role: RoleType, index: u32) -> String {
    match role {
        RoleType::Root => format!("root-{index}.pem"),
        other => format!("{other}.pem"),
    }
}

/// The roles `publish` and `refresh` sign (their keys stay online).
pub(crate) const ONLINE_ROLES: [RoleType; 3] =
    [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp];

pub(crate) fn role_of_type(role: RoleType) -> Role {
    match role {
        RoleType::Root => Role::Root,
        RoleType::Timestamp => Role::Timestamp,
        RoleType::Snapshot => Role::Snapshot,
        RoleType::Targets => Role::Targets,
        RoleType::DelegatedTargets => Role::Delegated("(delegated)".to_owned()),
    }
}

/// A private key held in memory (PKCS#8 DER). `Debug` shows only its label.
pub(crate) struct MemKey {
    der: Vec<u8>,
    label: String,
}

impl fmt::Debug for MemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemKey({}, redacted)", self.label)
    }
}

impl MemKey {
    /// A fresh Ed25519 key, as a PKCS#8 v1 document (RFC 8410: what
    /// `openssl genpkey -algorithm ED25519` writes and OpenSSL 3.0 reads;
    /// OpenSSL 3.0 cannot read the v2 form aws-lc-rs writes by default).
    pub(crate) fn generate(label: String) -> Result<MemKey, Error> {
        let doc =
            Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| Error::Key {
                path: PathBuf::from(&label),
                detail: "the Ed25519 key could not be generated".to_owned(),
            })?;
        Ok(MemKey {
            der: doc.as_ref().to_vec(),
            label,
        })
    }

    fn signer(&self) -> Result<impl Sign, Error> {
        parse_keypair(&self.der).map_err(|_| Error::Key {
            path: PathBuf::from(&self.label),
            detail: "not an Ed25519 or ECDSA P-256 PKCS#8 private key".to_owned(),
        })
    }

    /// The public key as TUF metadata lists it.
    pub(crate) fn public(&self) -> Result<Key, Error> {
        Ok(self.signer()?.tuf_key())
    }

    /// The TUF key id of the public key.
    pub(crate) fn key_id(&self) -> Result<Decoded<Hex>, Error> {
        self.public()?.key_id().map_err(|e| Error::Key {
            path: PathBuf::from(&self.label),
            detail: format!("cannot compute the key id: {e}"),
        })
    }

    /// The key as a PKCS#8 PEM document.
    pub(crate) fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut pem = String::with_capacity(b64.len() + 80);
        pem.push_str(PEM_BEGIN);
        pem.push('\n');
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        pem
    }

    /// Reads a key file: PKCS#8 PEM, not readable by group or others.
    pub(crate) fn read(path: &Path) -> Result<MemKey, Error> {
        let key_error = |detail: &str| Error::Key {
            path: path.to_owned(),
            detail: detail.to_owned(),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(key_error(&format!(
                    "permissions {mode:04o} are too open: a private key must be readable by its owner only (chmod 600)"
                )));
            }
        }
        let data = read_limited(path, MAX_KEY_FILE_BYTES)?;
        let text = std::str::from_utf8(&data).map_err(|_| key_error("not a PEM file"))?;
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or_else(|| key_error("not a PKCS#8 PEM file (BEGIN/END PRIVATE KEY)"))?;
        let b64: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| key_error("the PEM body is not valid base64"))?;
        let key = MemKey {
            der,
            label: path.display().to_string(),
        };
        key.signer()?;
        Ok(key)
    }

    /// The file (or label) the key came from.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// A tough key source for this key.
    pub(crate) fn source(&self) -> Box<dyn KeySource> {
        Box::new(MemKey {
            der: self.der.clone(),
            label: self.label.clone(),
        })
    }
}

#[tough::async_trait]
impl KeySource for MemKey {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        match parse_keypair(&self.der) {
            Ok(pair) => Ok(Box::new(pair)),
            Err(_) => Err(format!("{}: not a usable private key", self.label).into()),
        }
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Err("airgate key sources are read-only".into())
    }
}

/// The online keys (targets, snapshot, timestamp) read from the keys directory.
pub(crate) struct OnlineKeys {
    keys: Vec<(RoleType, MemKey)>,
}

impl OnlineKeys {
    pub(crate) fn read(keys_dir: &Path) -> Result<OnlineKeys, Error> {
        let keys = ONLINE_ROLES
            .iter()
            .map(|&role| Ok((role, MemKey::read(&keys_dir.join(key_file_name(role, 0)))?)))
            .collect::<Result<_, Error>>()?;
        Ok(OnlineKeys { keys })
    }

    /// Checks that each key is authorized for its role by `root`, so a
    /// mismatched keys directory fails before anything is signed.
    pub(crate) fn check_against(&self, root: &Root) -> Result<(), Error> {
        for (role, key) in &self.keys {
            let id = key.key_id()?;
            let authorized = root
                .roles
                .get(role)
                .is_some_and(|keys| keys.keyids.contains(&id));
            if !authorized {
                return Err(Error::Key {
                    path: PathBuf::from(&key.label),
                    detail: format!(
                        "key {} is not a {role} key of root version {}: wrong keys directory for this repository?",
                        hex::encode(&id),
                        root.version
                    ),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.keys.iter().map(|(_, k)| k.source()).collect()
    }

    /// Fresh keys for the online roles, labelled with their file in `keys_dir`.
    pub(crate) fn generate(keys_dir: &Path) -> Result<OnlineKeys, Error> {
        let keys = ONLINE_ROLES
            .iter()
            .map(|&role| {
                let path = keys_dir.join(key_file_name(role, 0));
                Ok((role, MemKey::generate(path.display().to_string())?))
            })
            .collect::<Result<_, Error>>()?;
        Ok(OnlineKeys { keys })
    }

    /// Each role and its key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (RoleType, &MemKey)> + '_ {
        self.keys.iter().map(|(role, key)| (*role, key))
    }

    /// Writes the keys as `<role>.pem.next` (mode 0600), durably, before the
    /// root that authorizes them is committed.
    pub(crate) fn write_pending(&self, keys_dir: &Path) -> Result<(), Error> {
        for (role, key) in &self.keys {
            let path = pending_path(keys_dir, *role);
            write_new_atomic(&path, key.to_pem().as_bytes(), 0o600)?;
        }
        sync_dir(keys_dir);
        Ok(())
    }

    /// Puts the pending keys in place of the current ones.
    pub(crate) fn promote_pending(&self, keys_dir: &Path) -> Result<(), Error> {
        for (role, _) in &self.keys {
            promote(keys_dir, *role)?;
        }
        Ok(())
    }
}

fn pending_path(keys_dir: &Path, role: RoleType) -> PathBuf {
    keys_dir.join(format!("{}.next", key_file_name(role, 0)))
}

fn promote(keys_dir: &Path, role: RoleType) -> Result<(), Error> {
    let from = pending_path(keys_dir, role);
    let to = keys_dir.join(key_file_name(role, 0));
    std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
    sync_dir(keys_dir);
    Ok(())
}

/// Settles an online-key rotation a crashed run left behind: each pending
/// `<role>.pem.next` is promoted when `newest_root` authorizes it for its
/// role, and removed otherwise (its root was never committed).
pub(crate) fn settle_pending(keys_dir: &Path, newest_root: &Root) -> Result<(), Error> {
    for role in ONLINE_ROLES {
        let path = pending_path(keys_dir, role);
        if !path.exists() {
            continue;
        }
        let id = MemKey::read(&path)?.key_id()?;
        let authorized = newest_root
            .roles
            .get(&role)
            .is_some_and(|keys| keys.keyids.contains(&id));
        if authorized {
            promote(keys_dir, role)?;
        } else {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trip_and_redaction() {
        let dir = tempfile::tempdir().unwrap();
        let key = MemKey::generate("test".into()).unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with(PEM_BEGIN) && pem.ends_with("-----END PRIVATE KEY-----\n"));
        let path = dir.path().join("targets.pem");
        write_new_atomic(&path, pem.as_bytes(), 0o600).unwrap();
        // RFC 8410 PKCS#8 v1: version 0, id-Ed25519, a 32-byte seed; nothing else.
        assert_eq!(key.der.len(), 48);
        assert!(key
            .der
            .starts_with(&hex::decode("302e020100300506032b657004220420").unwrap()));
        let back = MemKey::read(&path).unwrap();
        assert_eq!(back.key_id().unwrap(), key.key_id().unwrap());
        let shown = format!("{back:?} {:?}", back.source());
        let body = pem.lines().nth(1).unwrap();
        assert!(!shown.contains(body), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[cfg(unix)]
    #[test]
    fn open_permissions_and_garbage_are_refused_without_echoing_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = MemKey::generate("x".into()).unwrap();
        let pem = key.to_pem();
        let path = dir.path().join("snapshot.pem");
        write_new_atomic(&path, pem.as_bytes(), 0o644).unwrap();
        let err = MemKey::read(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        MemKey::read(&path).unwrap();

        let body = base64::engine::general_purpose::STANDARD.encode([0x41u8; 48]);
        let garbled = format!("{PEM_BEGIN}\n{body}\n{PEM_END}\n");
        let bad = dir.path().join("bad.pem");
        write_new_atomic(&bad, garbled.as_bytes(), 0o600).unwrap();
        let err = MemKey::read(&bad).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&body), "{text}");
        assert!(text.contains("not an Ed25519 or ECDSA"), "{text}");
    }
}
