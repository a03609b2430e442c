//! `airgate.lock`: collectors pinned by digest and signer, reviewed like code.
//!
//! ```toml
//! # airgate.lock: collectors pinned by `airgate lock`. Review changes like code.
//! version = 1
//!
//! [[collector]]
//! name = "fetch-release"
//! version = "1.2.0"
//! source = "https://github.com/org/fetch-release/releases/tag/v1.2.0"
//! signer-identity = "https://github.com/org/fetch-release/.github/workflows/release.yml@refs/tags/v1.2.0"
//! signer-issuer = "https://token.actions.githubusercontent.com"
//!
//! [[collector.platform]]
//! target = "x86_64-linux"
//! sha256 = "…"
//! size = 1234567
//! bundle = "…base64 of the binary's Sigstore bundle…"
//! ```
//! The file is always written in one canonical form (sorted, fixed layout);
//! a hand-edited, non-canonical lock is refused with the command that fixes it.

use serde::{Deserialize, Serialize};

use crate::encoding::{b64_decode, b64_encode};

/// The only lockfile version.
pub const LOCK_VERSION: u32 = 1;
/// Largest lockfile accepted.
pub const MAX_LOCK_BYTES: usize = crate::policy::MAX_POLICY_BYTES;
const HEADER: &str =
    "# airgate.lock: collectors pinned by `airgate lock`. Review changes like code.\n";

/// Why a lockfile is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Not TOML or not the lock schema.
    #[error("airgate.lock: {0}")]
    Toml(String),
    /// Unsupported version.
    #[error("airgate.lock: version {0} is not supported (expected {LOCK_VERSION})")]
    Version(u32),
    /// A field is invalid.
    #[error("airgate.lock: collector {name:?}: {problem}")]
    Invalid {
        /// Collector name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// Not in canonical form.
    #[error("airgate.lock is not in canonical form (edited by hand?); run `airgate lock fmt` and review the diff")]
    NotCanonical,
}

/// One pinned build of a collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPlatform {
    /// Platform key (`<arch>-<os>`, e.g. `x86_64-linux`).
    pub target: String,
    /// Hex SHA-256 of the binary.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Base64 of the binary's Sigstore bundle JSON.
    pub bundle: String,
}

impl LockedPlatform {
    /// The bundle JSON bytes.
    pub fn bundle_json(&self) -> Option<Vec<u8>> {
        b64_decode(&self.bundle)
    }

    /// Encodes bundle JSON for the lock.
    pub fn encode_bundle(json: &[u8]) -> String {
        b64_encode(json)
    }
}

/// One pinned collector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedCollector {
    /// Collector name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Where the binary came from (informative).
    pub source: String,
    /// The signer identity its bundle must carry.
    pub signer_identity: String,
    /// The OIDC issuer of that identity.
    pub signer_issuer: String,
    /// Builds per platform.
    #[serde(default)]
    pub platform: Vec<LockedPlatform>,
}

impl LockedCollector {
    /// The build for `target`.
    pub fn for_target(&self, target: &str) -> Option<&LockedPlatform> {
        self.platform.iter().find(|p| p.target == target)
    }
}

/// The lockfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// Format version.
    pub version: u32,
    /// Collectors, sorted by name.
    #[serde(default)]
    pub collector: Vec<LockedCollector>,
}

/// The platform key of this machine (`<arch>-<os>`).
pub fn current_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Lockfile {
    /// An empty lock.
    pub fn new() -> Self {
        Lockfile {
            version: LOCK_VERSION,
            collector: Vec::new(),
        }
    }

    /// Parses lock TOML, refusing invalid or non-canonical files.
    pub fn parse(text: &str) -> Result<Self, LockError> {
        let lock: Lockfile = toml::from_str(text)
            .map_err(|e| LockError::Toml(crate::escape::toml_error(text, &e)))?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version(lock.version));
        }
        lock.validate()?;
        if lock.to_canonical()? != text {
            return Err(LockError::NotCanonical);
        }
        Ok(lock)
    }

    /// Parses without requiring canonical form (for `airgate lock fmt`).
    pub fn parse_lenient(text: &str) -> Result<Self, LockError> {
        let mut lock: Lockfile = toml::from_str(text)
            .map_err(|e| LockError::Toml(crate::escape::toml_error(text, &e)))?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version(lock.version));
        }
        lock.sort();
        lock.validate()?;
        Ok(lock)
    }

    fn validate(&self) -> Result<(), LockError> {
        let mut previous: Option<&str> = None;
        for c in &self.collector {
            let invalid = |problem: &str| LockError::Invalid {
                name: c.name.clone(),
                problem: problem.to_string(),
            };
            if !valid_name(&c.name) {
                return Err(invalid(
                    "names are 1-64 characters of a-z, 0-9, '-' and '_'",
                ));
            }
            if previous.is_some_and(|p| p >= c.name.as_str()) {
                return Err(invalid("collectors must be unique and sorted by name"));
            }
            previous = Some(&c.name);
            if c.signer_identity.is_empty() || c.signer_issuer.is_empty() {
                return Err(invalid("signer-identity and signer-issuer are required"));
            }
            let mut previous_target: Option<&str> = None;
            for p in &c.platform {
                if p.sha256.len() != 64
                    || !p
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(invalid(&format!(
                        "platform {}: sha256 is not 64 lowercase hex digits",
                        p.target
                    )));
                }
                if p.bundle_json().is_none() {
                    return Err(invalid(&format!(
                        "platform {}: bundle is not base64",
                        p.target
                    )));
                }
                if previous_target.is_some_and(|t| t >= p.target.as_str()) {
                    return Err(invalid("platforms must be unique and sorted"));
                }
                previous_target = Some(&p.target);
            }
        }
        Ok(())
    }

    fn sort(&mut self) {
        self.collector.sort_by(|a, b| a.name.cmp(&b.name));
        for c in &mut self.collector {
            c.platform.sort_by(|a, b| a.target.cmp(&b.target));
        }
    }

    /// The canonical text of this lock.
    pub fn to_canonical(&self) -> Result<String, LockError> {
        let mut sorted = self.clone();
        sorted.sort();
        let body = toml::to_string(&sorted).map_err(|e| LockError::Toml(e.to_string()))?;
        Ok(format!("{HEADER}{body}"))
    }

    /// The collector named `name`.
    pub fn get(&self, name: &str) -> Option<&LockedCollector> {
        self.collector.iter().find(|c| c.name == name)
    }

    /// Inserts or replaces a collector's pin for one platform.
    pub fn pin(&mut self, collector: LockedCollector) -> Result<(), LockError> {
        if !valid_name(&collector.name) {
            return Err(LockError::Invalid {
                name: collector.name,
                problem: "names are 1-64 characters of a-z, 0-9, '-' and '_'".into(),
            });
        }
        match self.collector.iter_mut().find(|c| c.name == collector.name) {
            Some(existing) => {
                let mut platforms = existing.platform.clone();
                for p in collector.platform.iter() {
                    platforms.retain(|q| q.target != p.target);
                    platforms.push(p.clone());
                }
                *existing = LockedCollector {
                    platform: platforms,
                    ..collector
                };
            }
            None => self.collector.push(collector),
        }
        self.sort();
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LockedCollector {
        LockedCollector {
            name: "fetch".into(),
            version: "1.0.0".into(),
            source: "https://example.com/fetch".into(),
            signer_identity: "https://example.com/ci".into(),
            signer_issuer: "https://issuer.example".into(),
            platform: vec![LockedPlatform {
                target: "x86_64-linux".into(),
                sha256: "ab".repeat(32),
                size: 10,
                bundle: LockedPlatform::encode_bundle(b"{}"),
            }],
        }
    }

    #[test]
    fn canonical_round_trip() {
        let mut lock = Lockfile::new();
        lock.pin(sample()).unwrap();
        let mut second = sample();
        second.name = "another".into();
        lock.pin(second).unwrap();
        let text = lock.to_canonical().unwrap();
        assert!(text.starts_with(HEADER));
        let parsed = Lockfile::parse(&text).unwrap();
        assert_eq!(parsed, lock);
        assert_eq!(parsed.collector[0].name, "another");
    }

    #[test]
    fn hand_edited_lock_is_refused_until_formatted() {
        let mut lock = Lockfile::new();
        lock.pin(sample()).unwrap();
        let text = lock
            .to_canonical()
            .unwrap()
            .replace("version = \"1.0.0\"", "version   =   \"1.0.0\"");
        assert_eq!(Lockfile::parse(&text), Err(LockError::NotCanonical));
        assert_eq!(Lockfile::parse_lenient(&text).unwrap(), lock);
    }

    #[test]
    fn invalid_locks() {
        assert!(matches!(
            Lockfile::parse("version = 2\n"),
            Err(LockError::Version(2))
        ));
        assert!(matches!(
            Lockfile::parse("garbage"),
            Err(LockError::Toml(_))
        ));
        let mut c = sample();
        c.platform[0].sha256 = "XYZ".into();
        let mut lock = Lockfile::new();
        assert!(lock.pin(c).is_err());
        let mut c = sample();
        c.name = "Bad Name".into();
        assert!(lock.pin(c).is_err());
    }

    #[test]
    fn pin_replaces_the_same_platform_only() {
        let mut lock = Lockfile::new();
        lock.pin(sample()).unwrap();
        let mut arm = sample();
        arm.platform[0].target = "aarch64-linux".into();
        lock.pin(arm).unwrap();
        assert_eq!(lock.get("fetch").unwrap().platform.len(), 2);
        let mut newer = sample();
        newer.version = "1.1.0".into();
        newer.platform[0].sha256 = "cd".repeat(32);
        lock.pin(newer).unwrap();
        let c = lock.get("fetch").unwrap();
        assert_eq!(c.version, "1.1.0");
        assert_eq!(
            c.for_target("x86_64-linux").unwrap().sha256,
            "cd".repeat(32)
        );
        assert!(c.for_target("aarch64-linux").is_some());
    }
}
