//! Test repositories with freshly generated Ed25519 keys, built with tough:
//! roots by hand (tough's editor has no root editor) and signed over tough's
//! canonical form, the other roles by `RepositoryEditor`. Tampering helpers
//! re-sign individual roles the way an attacker holding some keys would.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use tough::editor::signed::PathExists;
use tough::editor::RepositoryEditor;
use tough::key_source::KeySource;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::{Hashes, Metafile, Role, RoleKeys, RoleType, Root, Signature, Signed};
use tough::sign::Sign;

/// One Ed25519 key.
#[derive(Clone)]
pub struct Key {
    pkcs8: Vec<u8>,
    pub id: Decoded<Hex>,
    pub public: tough::schema::key::Key,
}

impl Key {
    pub fn generate() -> Key {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pkcs8 = doc.as_ref().to_vec();
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let public = Sign::tuf_key(&pair);
        let id = public.key_id().unwrap();
        assert_eq!(pair.public_key().as_ref().len(), 32);
        Key { pkcs8, id, public }
    }

    fn pair(&self) -> Ed25519KeyPair {
        Ed25519KeyPair::from_pkcs8(&self.pkcs8).unwrap()
    }

    pub fn source(&self) -> Box<dyn KeySource> {
        Box::new(MemKey(self.pkcs8.clone()))
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature {
            keyid: self.id.clone(),
            sig: self.pair().sign(msg).as_ref().to_vec().into(),
        }
    }
}

/// A `KeySource` holding a PKCS#8 Ed25519 key in memory.
#[derive(Debug)]
struct MemKey(Vec<u8>);

#[tough::async_trait]
impl KeySource for MemKey {
    async fn as_sign(
        &self,
    ) -> Result<Box<dyn Sign>, Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(Box::new(Ed25519KeyPair::from_pkcs8(&self.0)?))
    }

    async fn write(
        &self,
        _value: &str,
        _key_id_hex: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>> {
        Ok(())
    }
}

/// The keys of one repository: root 2-of-3, targets 2-of-3, snapshot and timestamp 1-of-1.
#[derive(Clone)]
pub struct Keys {
    pub root: Vec<Key>,
    pub targets: Vec<Key>,
    pub snapshot: Key,
    pub timestamp: Key,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            root: (0..3).map(|_| Key::generate()).collect(),
            targets: (0..3).map(|_| Key::generate()).collect(),
            snapshot: Key::generate(),
            timestamp: Key::generate(),
        }
    }

    pub fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.root
            .iter()
            .chain(&self.targets)
            .chain([&self.snapshot, &self.timestamp])
            .map(Key::source)
            .collect()
    }
}

pub fn jiff(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

pub fn nz(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap()
}

fn role_keys(keys: &[&Key], threshold: u64) -> RoleKeys {
    RoleKeys {
        keyids: keys.iter().map(|k| k.id.clone()).collect(),
        threshold: nz(threshold),
        _extra: HashMap::new(),
    }
}

/// An unsigned root of `version` for `keys` (consistent snapshots, expiring 2030).
pub fn root_role(version: u64, keys: &Keys) -> Root {
    let all: Vec<&Key> = keys
        .root
        .iter()
        .chain(&keys.targets)
        .chain([&keys.snapshot, &keys.timestamp])
        .collect();
    Root {
        spec_version: "1.0.0".to_owned(),
        consistent_snapshot: true,
        version: nz(version),
        expires: jiff("2030-01-01T00:00:00Z"),
        keys: all
            .iter()
            .map(|k| (k.id.clone(), k.public.clone()))
            .collect(),
        roles: HashMap::from([
            (
                RoleType::Root,
                role_keys(&keys.root.iter().collect::<Vec<_>>(), 2),
            ),
            (
                RoleType::Targets,
                role_keys(&keys.targets.iter().collect::<Vec<_>>(), 2),
            ),
            (RoleType::Snapshot, role_keys(&[&keys.snapshot], 1)),
            (RoleType::Timestamp, role_keys(&[&keys.timestamp], 1)),
        ]),
        _extra: HashMap::new(),
    }
}

/// `role` signed by `signers` over tough's canonical form, as pretty JSON.
pub fn signed_json<T: Role + Serialize>(role: T, signers: &[&Key]) -> Vec<u8> {
    let canonical = role.canonical_form().unwrap();
    let signed = Signed {
        signatures: signers.iter().map(|k| k.sign(&canonical)).collect(),
        signed: role,
    };
    let mut json = serde_json::to_vec_pretty(&signed).unwrap();
    json.push(b'\n');
    json
}

/// Versions and expiry of the online roles of one generation of the repository.
#[derive(Clone, Copy)]
pub struct Generation {
    pub timestamp: u64,
    pub snapshot: u64,
    pub targets: u64,
    pub expires: &'static str,
}

impl Default for Generation {
    fn default() -> Self {
        Generation {
            timestamp: 1,
            snapshot: 1,
            targets: 1,
            expires: "2030-01-01T00:00:00Z",
        }
    }
}

/// A generated repository on disk (metadata at the top, targets under `targets/`).
pub struct TestRepo {
    pub dir: tempfile::TempDir,
    pub keys: Keys,
}

pub const TRUSTED_ROOT: &[u8] =
    b"{\"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\"}\n";

impl TestRepo {
    /// Roots 1..=`roots` (same keys, each signed by a threshold of them) and
    /// one generation of timestamp, snapshot and targets written by tough's
    /// `RepositoryEditor`, with targets `trusted_root.json` and `notes.txt`.
    pub fn build(roots: u64, generation: Generation) -> TestRepo {
        let repo = TestRepo {
            dir: tempfile::tempdir().unwrap(),
            keys: Keys::generate(),
        };
        for version in 1..=roots {
            repo.write_root(version, &repo.keys.root.iter().collect::<Vec<_>>());
        }
        repo.publish(generation);
        repo
    }

    /// A new repository with the same keys and the same roots, and nothing else.
    pub fn fork(&self) -> TestRepo {
        let fork = TestRepo {
            dir: tempfile::tempdir().unwrap(),
            keys: self.keys.clone(),
        };
        for v in 1..=self.newest_root_version() {
            let rel = format!("{v}.root.json");
            fork.write(&rel, &self.read(&rel));
        }
        fork
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.file(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        std::fs::write(self.file(rel), data).unwrap();
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.file(rel)).unwrap();
    }

    /// The bytes of root version 1 (what a client pins).
    pub fn pinned_root(&self) -> Vec<u8> {
        self.read("1.root.json")
    }

    /// The newest `N.root.json`.
    pub fn newest_root_version(&self) -> u64 {
        (1..)
            .take_while(|v| self.file(&format!("{v}.root.json")).exists())
            .last()
            .unwrap()
    }

    /// Writes root `version` for this repository's keys, signed by `signers`.
    pub fn write_root(&self, version: u64, signers: &[&Key]) {
        let json = signed_json(root_role(version, &self.keys), signers);
        self.write(&format!("{version}.root.json"), &json);
    }

    /// Publishes a generation with tough's `RepositoryEditor` (snapshot meta
    /// with lengths and hashes, as tough writes it), from the newest root.
    pub fn publish(&self, generation: Generation) {
        let root_path = self.file(&format!("{}.root.json", self.newest_root_version()));
        let content = tempfile::tempdir().unwrap();
        std::fs::write(content.path().join("trusted_root.json"), TRUSTED_ROOT).unwrap();
        std::fs::write(
            content.path().join("notes.txt"),
            format!("targets version {}\n", generation.targets),
        )
        .unwrap();
        let expires = jiff(generation.expires);
        let out = self.path().to_owned();
        let keys = self.keys.sources();
        runtime().block_on(async move {
            let mut editor = RepositoryEditor::new(&root_path).await.unwrap();
            editor
                .targets_version(nz(generation.targets))
                .unwrap()
                .targets_expires(expires)
                .unwrap()
                .snapshot_version(nz(generation.snapshot))
                .snapshot_expires(expires)
                .timestamp_version(nz(generation.timestamp))
                .timestamp_expires(expires);
            editor
                .add_target_paths(vec![
                    content.path().join("trusted_root.json"),
                    content.path().join("notes.txt"),
                ])
                .await
                .unwrap();
            let signed = editor.sign(&keys).await.unwrap();
            signed.write(&out).await.unwrap();
            signed
                .copy_targets(content.path(), out.join("targets"), PathExists::Skip)
                .await
                .unwrap();
        });
    }

    pub fn parse<T: serde::de::DeserializeOwned>(&self, rel: &str) -> Signed<T> {
        serde_json::from_slice(&self.read(rel)).unwrap()
    }

    /// Re-signs the snapshot listing `N.targets.json` as it is on disk now
    /// (with length and hash when `with_hashes`), then the timestamp listing
    /// that snapshot: what an attacker holding the online keys can do.
    pub fn reseal(&self, generation: Generation, with_hashes: bool) {
        let targets_rel = format!("{}.targets.json", generation.targets);
        let mut snapshot: Signed<tough::schema::Snapshot> =
            self.parse(&format!("{}.snapshot.json", generation.snapshot));
        snapshot.signed.meta.insert(
            "targets.json".to_owned(),
            self.meta(&targets_rel, generation.targets, with_hashes),
        );
        let snapshot_rel = format!("{}.snapshot.json", generation.snapshot);
        self.write(
            &snapshot_rel,
            &signed_json(snapshot.signed, &[&self.keys.snapshot]),
        );
        let mut timestamp: Signed<tough::schema::Timestamp> = self.parse("timestamp.json");
        timestamp.signed.meta.insert(
            "snapshot.json".to_owned(),
            self.meta(&snapshot_rel, generation.snapshot, with_hashes),
        );
        self.write(
            "timestamp.json",
            &signed_json(timestamp.signed, &[&self.keys.timestamp]),
        );
    }

    fn meta(&self, rel: &str, version: u64, with_hashes: bool) -> Metafile {
        let bytes = self.read(rel);
        Metafile {
            length: with_hashes.then_some(bytes.len() as u64),
            hashes: with_hashes.then(|| Hashes {
                sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes)
                    .as_ref()
                    .to_vec()
                    .into(),
                _extra: HashMap::new(),
            }),
            version: nz(version),
            _extra: HashMap::new(),
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}
