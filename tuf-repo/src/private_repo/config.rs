//! The private repository's configuration: how long each role's metadata is
//! valid once signed, and the shape of the root role. Kept as
//! `config.json` in the keys directory, where `publish` and `refresh` read it
//! on every run (edit it to change the expiry of future signatures).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::Error;

/// File name of the configuration in the keys directory.
pub const CONFIG_FILE: &str = "config.json";

const MAX_CONFIG_BYTES: u64 = 64 << 10;
/// Longest expiry accepted: 100 years.
const MAX_EXPIRY: Duration = Duration::from_secs(100 * 365 * 86_400);
/// Most root keys `init_private` generates.
const MAX_ROOT_KEYS: u32 = 16;

/// How long metadata of each top-level role is valid after it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDurations {
    /// Root (only used by `init_private`: there is no root rotation yet).
    #[serde(with = "human")]
    pub root: Duration,
    /// Top-level targets.
    #[serde(with = "human")]
    pub targets: Duration,
    /// Snapshot.
    #[serde(with = "human")]
    pub snapshot: Duration,
    /// Timestamp (the job running `refresh` must run well within this).
    #[serde(with = "human")]
    pub timestamp: Duration,
}

impl Default for RoleDurations {
    /// Root 365 days, targets 90 days, snapshot 7 days, timestamp 1 day.
    fn default() -> Self {
        const DAY: u64 = 86_400;
        RoleDurations {
            root: Duration::from_secs(365 * DAY),
            targets: Duration::from_secs(90 * DAY),
            snapshot: Duration::from_secs(7 * DAY),
            timestamp: Duration::from_secs(DAY),
        }
    }
}

/// Configuration of a private TUF repository (see [`crate::init_private`]).
///
/// Serialized as `config.json` in the keys directory, durations as text
/// with a unit (`"365d"`, `"12h"`, `"30m"`, `"45s"`):
///
/// ```json
/// { "expiry": { "root": "365d", "targets": "90d", "snapshot": "7d", "timestamp": "1d" },
///   "rootKeys": 1, "rootThreshold": 1 }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivateRepoConfig {
    /// Validity of each role's metadata from the time it is signed.
    #[serde(default)]
    pub expiry: RoleDurations,
    /// How many root keys `init_private` generates (1 to 16).
    #[serde(default = "one")]
    pub root_keys: u32,
    /// How many of them must sign a root (1 to `root_keys`).
    #[serde(default = "one")]
    pub root_threshold: u32,
}

fn one() -> u32 {
    1
}

impl Default for PrivateRepoConfig {
    /// [`RoleDurations::default`], one root key, threshold 1.
    fn default() -> Self {
        PrivateRepoConfig {
            expiry: RoleDurations::default(),
            root_keys: 1,
            root_threshold: 1,
        }
    }
}

impl PrivateRepoConfig {
    /// Checks the values: every expiry between one second and 100 years,
    /// 1 to 16 root keys, a root threshold between 1 and `root_keys`.
    pub fn validate(&self) -> Result<(), Error> {
        let e = &self.expiry;
        for (role, d) in [
            ("root", e.root),
            ("targets", e.targets),
            ("snapshot", e.snapshot),
            ("timestamp", e.timestamp),
        ] {
            if d.as_secs() == 0 || d > MAX_EXPIRY {
                return Err(Error::Usage(format!(
                    "{role} expiry {} is out of range (1s to 100 years)",
                    format_duration(d)
                )));
            }
        }
        if self.root_keys == 0 || self.root_keys > MAX_ROOT_KEYS {
            return Err(Error::Usage(format!(
                "{} root keys requested; between 1 and {MAX_ROOT_KEYS} are supported",
                self.root_keys
            )));
        }
        if self.root_threshold == 0 || self.root_threshold > self.root_keys {
            return Err(Error::Usage(format!(
                "root threshold {} must be between 1 and the number of root keys ({})",
                self.root_threshold, self.root_keys
            )));
        }
        Ok(())
    }

    /// Reads and validates `config.json` from `keys_dir`.
    pub fn load(keys_dir: &Path) -> Result<Self, Error> {
        let path = keys_dir.join(CONFIG_FILE);
        let data = crate::fsutil::read_limited(&path, MAX_CONFIG_BYTES)?;
        let config: PrivateRepoConfig = serde_json::from_slice(&data)
            .map_err(|e| Error::malformed(path.display().to_string(), e))?;
        config.validate()?;
        Ok(config)
    }

    /// Writes `config.json` into `keys_dir` atomically (replacing any).
    pub fn save(&self, keys_dir: &Path) -> Result<(), Error> {
        self.validate()?;
        let path = keys_dir.join(CONFIG_FILE);
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Usage(format!("cannot serialize the configuration: {e}")))?;
        json.push(b'\n');
        write_atomic(&path, &json)
    }
}

/// Parses a duration: a whole number followed by `d` (days), `h`, `m` or `s`;
/// a bare number means days. `"365d"`, `"12h"`, `"90"`.
pub fn parse_duration(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "d"),
    };
    let bad = || {
        Error::Usage(format!(
            "{text:?} is not a duration (a whole number with d, h, m or s; a bare number means days)"
        ))
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// Formats a duration (whole seconds) in the largest unit that is exact.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

mod human {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("365d").unwrap().as_secs(), 365 * 86_400);
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90 * 86_400);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 12 * 3_600);
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1_800);
        assert_eq!(parse_duration("45s").unwrap().as_secs(), 45);
        for bad in ["", "d", "1w", "-1d", "1.5d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(format_duration(Duration::from_secs(86_400 * 7)), "7d");
        assert_eq!(format_duration(Duration::from_secs(5_400)), "90m");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
    }

    #[test]
    fn config_round_trips_and_validates() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PrivateRepoConfig::default();
        config.expiry.timestamp = Duration::from_secs(6 * 3_600);
        config.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        assert!(text.contains("\"timestamp\": \"6h\""), "{text}");
        assert!(text.contains("\"rootThreshold\": 1"), "{text}");
        assert_eq!(PrivateRepoConfig::load(dir.path()).unwrap(), config);

        let bad = PrivateRepoConfig {
            root_keys: 2,
            root_threshold: 3,
            ..PrivateRepoConfig::default()
        };
        assert!(bad.validate().is_err());
        let mut bad = PrivateRepoConfig::default();
        bad.expiry.snapshot = Duration::ZERO;
        assert!(bad.validate().is_err());

        std::fs::write(
            dir.path().join(CONFIG_FILE),
            b"{\"expiry\":{\"root\":\"1d\"}}",
        )
        .unwrap();
        assert!(
            PrivateRepoConfig::load(dir.path()).is_err(),
            "partial expiry accepted"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), b"{\"rootKeyz\":1}").unwrap();
        assert!(
            PrivateRepoConfig::load(dir.path()).is_err(),
            "unknown field accepted"
        );
        std::fs::write(dir.path().join(CONFIG_FILE), b"{}").unwrap();
        assert_eq!(
            PrivateRepoConfig::load(dir.path()).unwrap(),
            PrivateRepoConfig::default()
        );
    }
}
