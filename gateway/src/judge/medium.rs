//! The high side's rules about a medium, one function each: entries against
//! the signed manifest, the transit window, export order per exporter, the
//! TUF claim against the verified snapshot, immutable names. Pure: every
//! fact comes in as a value (the high side's clock included).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::collector::CollectorError;
use crate::escape::quoted;
use crate::medium::manifest::{ManifestEntry, ManifestError, TufVersions, UpstreamSigner};
use crate::medium::unpack::MediumError;

/// Allowed clock skew between the low and the high side.
pub const CLOCK_SKEW_SECS: i64 = 300;

/// What is wrong with one entry of a medium.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The signed manifest does not list it.
    #[error("is not in the signed manifest")]
    NotInManifest,
    /// Listed, but not where the manifest puts it.
    #[error("is out of the manifest's order (expected {expected} here)")]
    OutOfOrder {
        /// The entry the manifest lists at this position (quoted).
        expected: String,
    },
    /// Listed but absent.
    #[error("is listed in the signed manifest but missing from the medium")]
    Missing,
    /// Another size than the manifest's.
    #[error(
        "is {found} bytes; the signed manifest says {listed}: the medium was altered in transit"
    )]
    Size {
        /// Size in the tar header.
        found: u64,
        /// Size in the manifest.
        listed: u64,
    },
    /// Other bytes than the manifest's.
    #[error(
        "has sha256 {found}; the signed manifest says {listed}: the medium was altered in transit"
    )]
    Digest {
        /// Hex digest of the bytes read.
        found: String,
        /// Hex digest in the manifest.
        listed: String,
    },
}

/// What is wrong with the export time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeProblem {
    /// Not RFC 3339.
    #[error("is not an RFC 3339 time")]
    Unreadable,
    /// Later than the high side's clock allows.
    #[error("is in the future (high-side time is {now})")]
    Future {
        /// The high side's time.
        now: String,
    },
    /// Older than the transit window.
    #[error("is older than the {days}-day transit window (high-side time is {now}); [import] max-transit-age-days in the high side's policy sets the window")]
    TooOld {
        /// The window.
        days: u32,
        /// The high side's time.
        now: String,
    },
}

/// Why a medium was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportRejected {
    /// A chunk is missing, extra or altered.
    #[error("chunk {chunk}: {problem}")]
    Chunk {
        /// Chunk file name (quoted).
        chunk: String,
        /// What is wrong.
        problem: String,
    },
    /// The tar itself.
    #[error("{0}")]
    Medium(#[from] MediumError),
    /// The manifest or chunk index.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// An entry disagrees with the signed manifest.
    #[error("medium entry {name}: {problem}")]
    Entry {
        /// Entry name (quoted).
        name: String,
        /// What is wrong.
        problem: EntryProblem,
    },
    /// Export time outside the transit window.
    #[error("export time {export_time}: {problem}")]
    Time {
        /// The signed export time (quoted).
        export_time: String,
        /// What is wrong.
        problem: TimeProblem,
    },
    /// Older than the last medium imported from the same exporter.
    #[error("export time {export_time} is before {last_export_time}, the export time of import #{last_import} from exporter {exporter}: media from one exporter are imported in export order only, so a replayed or reordered medium cannot roll back what the enclave serves")]
    OutOfOrder {
        /// The exporter (quoted).
        exporter: String,
        /// This medium's signed export time.
        export_time: String,
        /// The latest export time already imported from this exporter.
        last_export_time: String,
        /// The import that carried it.
        last_import: i64,
    },
    /// The medium carries no TUF snapshot.
    #[error("the medium carries no TUF snapshot (no tuf/ entries): the high side re-verifies every bundle against the public trust root, which only a snapshot delivers")]
    NoTufSnapshot,
    /// The carried TUF snapshot.
    #[error("TUF snapshot: {0}")]
    Tuf(tuf_repo::Error),
    /// The manifest's TUF claim differs from the verified snapshot.
    #[error("the manifest claims {claimed}, but the carried snapshot verifies as {verified}")]
    TufClaim {
        /// What the manifest says.
        claimed: String,
        /// What verified.
        verified: String,
    },
    /// A carried collector.
    #[error("collector {name}: {problem}")]
    Collector {
        /// Collector name (quoted).
        name: String,
        /// What is wrong.
        problem: CollectorError,
    },
    /// A name already imported with other bytes.
    #[error("artifact {name} was imported by import #{import_id} with sha256 {imported}; this medium carries sha256 {offered} under the same name, and names are immutable unless a rule of the high side's policy sets allow-replace = true")]
    NameTaken {
        /// The artifact name (quoted).
        name: String,
        /// Digest already imported.
        imported: String,
        /// The import that carried it.
        import_id: i64,
        /// Digest on this medium.
        offered: String,
    },
    /// One or more artifacts failed under the high side's policy.
    #[error("{} artifact(s) rejected under the high side's policy: {}", rejected_count(.0), rejected_list(.0))]
    Artifacts(Vec<ArtifactDecision>),
    /// One or more container images failed under the high side's policy,
    /// or the carried OCI layout is broken.
    #[error("{} image(s) rejected under the high side's policy: {}", .0.iter().filter(|d| d.decision == Decision::Rejected).count(), image_list(.0))]
    Images(Vec<ImageDecision>),
}

/// The reviewer's view of one container image, from verified facts only.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDecision {
    /// `repository:tag` (`oci/` for a problem of the carried layout).
    pub reference: String,
    /// `sha256:<hex>` of the tagged manifest or index, as the layout names it.
    pub digest: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// Verified upstream signatures.
    pub signatures: Vec<crate::medium::manifest::ImageSignatureRecord>,
    /// Predicate types of verified attestations.
    pub attestations: Vec<String>,
    /// The failed check, for rejections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Why, for rejections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Our log index (of our `.sig` signature, after a real import).
    pub log_index: Option<u64>,
}

fn image_list(d: &[ImageDecision]) -> String {
    d.iter()
        .filter(|d| d.decision == Decision::Rejected)
        .map(|d| {
            format!(
                "{} [{}]: {}",
                quoted(&d.reference),
                d.check.as_deref().unwrap_or(""),
                d.reason.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn rejected_count(d: &[ArtifactDecision]) -> usize {
    d.iter()
        .filter(|d| d.decision == Decision::Rejected)
        .count()
}

fn rejected_list(d: &[ArtifactDecision]) -> String {
    d.iter()
        .filter(|d| d.decision == Decision::Rejected)
        .map(|d| {
            format!(
                "{} [{}]: {}",
                quoted(&d.name),
                d.check.as_deref().unwrap_or(""),
                d.reason.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl ImportRejected {
    /// A line suggesting what to do about this refusal.
    pub fn hint(&self) -> &'static str {
        match self {
            ImportRejected::Chunk { .. } => {
                "a chunk was lost or altered in transit: bring every chunk of the medium, unmodified"
            }
            ImportRejected::Manifest(ManifestError::UnknownKey { .. }) => {
                "enroll the exporter's public key with `airgate exporter enroll`, if you trust it"
            }
            ImportRejected::Time { .. } => {
                "re-export the content, or widen [import] max-transit-age-days in STATE/policy.toml after review; check both clocks"
            }
            ImportRejected::OutOfOrder { .. } => {
                "a newer medium from this exporter was imported already: export the content again"
            }
            ImportRejected::NoTufSnapshot | ImportRejected::Tuf(_) | ImportRejected::TufClaim { .. } => {
                "the carried TUF snapshot is missing, stale, rolled back or invalid: re-export with a fresh snapshot"
            }
            ImportRejected::Artifacts(_) => {
                "the high side's policy refuses these artifacts; nothing was imported"
            }
            ImportRejected::Images(_) => {
                "the high side's policy refuses these images, or the carried layout is broken; nothing was imported"
            }
            ImportRejected::NameTaken { .. } => {
                "publish the new bytes under a new name (a version in the file name), or allow replacement for this rule after review"
            }
            ImportRejected::Collector { .. } => {
                "the carried collector does not match its carried lock: re-export it"
            }
            _ => "the medium was altered or damaged in transit: re-export it; nothing was imported",
        }
    }
}

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Re-signed and stored.
    Accepted,
    /// Refused.
    Rejected,
}

/// The reviewer's view of one artifact, from verified facts only.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactDecision {
    /// Artifact name.
    pub name: String,
    /// Hex SHA-256 of the bytes the medium delivered.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// The upstream signer, as the high side verified it (None if it did not verify).
    pub upstream: Option<UpstreamSigner>,
    /// The decision.
    pub decision: Decision,
    /// The failed check, for rejections.
    pub check: Option<String>,
    /// Why, for rejections.
    pub reason: Option<String>,
    /// Our log index (after a real import).
    pub log_index: Option<u64>,
    /// The import whose version of this name this one replaces, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces_import: Option<i64>,
}

/// The entry the medium delivers at a position must be the one the signed
/// manifest lists there, with its size (checked from the tar header, before
/// a byte of it is read).
pub fn check_entry_header(
    expected: Option<&ManifestEntry>,
    listed: &dyn Fn(&str) -> bool,
    name: &str,
    size: u64,
) -> Result<(), ImportRejected> {
    let entry = |problem| ImportRejected::Entry {
        name: quoted(name),
        problem,
    };
    match expected {
        Some(e) if e.name == name => {
            if e.size == size {
                Ok(())
            } else {
                Err(entry(EntryProblem::Size {
                    found: size,
                    listed: e.size,
                }))
            }
        }
        Some(e) if listed(name) => Err(entry(EntryProblem::OutOfOrder {
            expected: quoted(&e.name),
        })),
        _ => Err(entry(EntryProblem::NotInManifest)),
    }
}

/// The bytes read for an entry must hash to the manifest's digest.
pub fn check_entry_digest(
    expected: &ManifestEntry,
    found: &[u8; 32],
) -> Result<(), ImportRejected> {
    let found = hex::encode(found);
    if found == expected.sha256 {
        return Ok(());
    }
    Err(ImportRejected::Entry {
        name: quoted(&expected.name),
        problem: EntryProblem::Digest {
            found,
            listed: expected.sha256.clone(),
        },
    })
}

/// Every entry the manifest lists must have arrived.
pub fn check_all_arrived(listed: &[ManifestEntry], arrived: usize) -> Result<(), ImportRejected> {
    match listed.get(arrived) {
        None => Ok(()),
        Some(missing) => Err(ImportRejected::Entry {
            name: quoted(&missing.name),
            problem: EntryProblem::Missing,
        }),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The signed export time must be readable, not in the future (beyond
/// [`CLOCK_SKEW_SECS`]) and within the transit window; returns it.
pub fn check_transit(
    export_time: &str,
    now: DateTime<Utc>,
    max_transit_age_days: u32,
) -> Result<DateTime<Utc>, ImportRejected> {
    let time = |problem| ImportRejected::Time {
        export_time: quoted(export_time),
        problem,
    };
    let t = DateTime::parse_from_rfc3339(export_time)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| time(TimeProblem::Unreadable))?;
    if t > now + chrono::Duration::seconds(CLOCK_SKEW_SECS) {
        return Err(time(TimeProblem::Future { now: rfc3339(now) }));
    }
    if now - t > chrono::Duration::days(i64::from(max_transit_age_days)) {
        return Err(time(TimeProblem::TooOld {
            days: max_transit_age_days,
            now: rfc3339(now),
        }));
    }
    Ok(t)
}

/// The latest medium already imported from an exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastImport {
    /// Its import number.
    pub id: i64,
    /// Its signed export time.
    pub export_time: DateTime<Utc>,
}

/// Media from one exporter move forward: one exported before the latest
/// imported from the same exporter is refused (the same time is not older).
pub fn check_export_order(
    exporter: &str,
    export_time: DateTime<Utc>,
    last: Option<LastImport>,
) -> Result<(), ImportRejected> {
    match last {
        Some(last) if export_time < last.export_time => Err(ImportRejected::OutOfOrder {
            exporter: quoted(exporter),
            export_time: rfc3339(export_time),
            last_export_time: rfc3339(last.export_time),
            last_import: last.id,
        }),
        _ => Ok(()),
    }
}

fn versions(v: &TufVersions) -> String {
    format!(
        "root v{}, timestamp v{}, snapshot v{}, targets v{}",
        v.root, v.timestamp, v.snapshot, v.targets
    )
}

/// What the manifest says of the TUF snapshot must be what verified: role
/// versions and the derived trusted root.
pub fn check_tuf_claim(
    claimed: &TufVersions,
    claimed_root_sha256: &str,
    verified: &TufVersions,
    derived_root_sha256: &str,
) -> Result<(), ImportRejected> {
    if claimed != verified {
        return Err(ImportRejected::TufClaim {
            claimed: versions(claimed),
            verified: versions(verified),
        });
    }
    if claimed_root_sha256 != derived_root_sha256 {
        return Err(ImportRejected::TufClaim {
            claimed: format!("trusted root sha256 {}", quoted(claimed_root_sha256)),
            verified: format!("trusted root sha256 {derived_root_sha256}"),
        });
    }
    Ok(())
}

/// The version of a name already imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedVersion {
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// The import that carried it.
    pub import_id: i64,
}

/// What importing an artifact does to its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameChange {
    /// The name is new.
    New,
    /// The same bytes again under the same name.
    Same,
    /// Other bytes, allowed by the policy: replaces the given import's version.
    Replaces(i64),
}

/// Names are immutable: other bytes under an imported name are refused,
/// naming both digests, unless a matching rule allows replacement.
pub fn check_name(
    name: &str,
    offered_sha256: &str,
    current: Option<&ImportedVersion>,
    allow_replace: bool,
) -> Result<NameChange, ImportRejected> {
    match current {
        None => Ok(NameChange::New),
        Some(c) if c.sha256 == offered_sha256 => Ok(NameChange::Same),
        Some(c) if allow_replace => Ok(NameChange::Replaces(c.import_id)),
        Some(c) => Err(ImportRejected::NameTaken {
            name: quoted(name),
            imported: c.sha256.clone(),
            import_id: c.import_id,
            offered: offered_sha256.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medium::manifest::EntryKind;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn entry(name: &str, size: u64) -> ManifestEntry {
        ManifestEntry {
            name: name.into(),
            sha256: "ab".repeat(32),
            size,
            kind: EntryKind::Artifact,
        }
    }

    #[test]
    fn entry_not_listed_out_of_order_or_resized() {
        let e = entry("artifacts/a", 3);
        let listed = |n: &str| n == "artifacts/a" || n == "artifacts/b";
        assert!(check_entry_header(Some(&e), &listed, "artifacts/a", 3).is_ok());
        assert!(matches!(
            check_entry_header(Some(&e), &listed, "artifacts/zz", 3),
            Err(ImportRejected::Entry {
                problem: EntryProblem::NotInManifest,
                ..
            })
        ));
        assert!(matches!(
            check_entry_header(Some(&e), &listed, "artifacts/b", 3),
            Err(ImportRejected::Entry {
                problem: EntryProblem::OutOfOrder { .. },
                ..
            })
        ));
        assert!(matches!(
            check_entry_header(Some(&e), &listed, "artifacts/a", 4),
            Err(ImportRejected::Entry {
                problem: EntryProblem::Size {
                    found: 4,
                    listed: 3
                },
                ..
            })
        ));
        assert!(matches!(
            check_entry_header(None, &listed, "artifacts/a", 3),
            Err(ImportRejected::Entry {
                problem: EntryProblem::NotInManifest,
                ..
            })
        ));
    }

    #[test]
    fn entry_with_other_bytes_and_missing_entry() {
        let e = entry("artifacts/a", 3);
        assert!(check_entry_digest(&e, &[0xab; 32]).is_ok());
        assert!(matches!(
            check_entry_digest(&e, &[0; 32]),
            Err(ImportRejected::Entry {
                problem: EntryProblem::Digest { .. },
                ..
            })
        ));
        assert!(check_all_arrived(std::slice::from_ref(&e), 1).is_ok());
        assert!(matches!(
            check_all_arrived(&[e], 0),
            Err(ImportRejected::Entry {
                problem: EntryProblem::Missing,
                ..
            })
        ));
    }

    #[test]
    fn export_time_in_the_future_too_old_or_unreadable() {
        let now = t("2026-12-01T00:00:00Z");
        assert!(check_transit("2026-11-30T00:00:00Z", now, 30).is_ok());
        assert!(check_transit("2026-12-01T00:04:00Z", now, 30).is_ok());
        assert!(matches!(
            check_transit("2026-12-01T00:06:00Z", now, 30),
            Err(ImportRejected::Time {
                problem: TimeProblem::Future { .. },
                ..
            })
        ));
        let old = check_transit("2026-10-01T00:00:00Z", now, 30).unwrap_err();
        assert!(old.to_string().contains("max-transit-age-days"), "{old}");
        assert!(matches!(
            check_transit("yesterday\u{1b}[2K", now, 30),
            Err(ImportRejected::Time { problem: TimeProblem::Unreadable, ref export_time }) if !export_time.contains('\u{1b}')
        ));
    }

    #[test]
    fn medium_older_than_the_last_from_its_exporter() {
        let last = Some(LastImport {
            id: 4,
            export_time: t("2026-12-01T10:00:00Z"),
        });
        assert!(check_export_order("low-1", t("2026-12-01T10:00:00Z"), last).is_ok());
        assert!(check_export_order("low-1", t("2026-12-01T11:00:00Z"), last).is_ok());
        let e = check_export_order("low-1", t("2026-12-01T09:00:00Z"), last).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("2026-12-01T09:00:00Z")
                && text.contains("2026-12-01T10:00:00Z")
                && text.contains("#4"),
            "{text}"
        );
    }

    #[test]
    fn tuf_claim_other_than_the_verified_snapshot() {
        let v = TufVersions {
            root: 14,
            timestamp: 3,
            snapshot: 2,
            targets: 9,
        };
        assert!(check_tuf_claim(&v, "aa", &v, "aa").is_ok());
        let claimed = TufVersions { root: 99, ..v };
        assert!(matches!(
            check_tuf_claim(&claimed, "aa", &v, "aa"),
            Err(ImportRejected::TufClaim { .. })
        ));
        assert!(matches!(
            check_tuf_claim(&v, "bb", &v, "aa"),
            Err(ImportRejected::TufClaim { .. })
        ));
    }

    #[test]
    fn name_imported_with_other_bytes() {
        let current = ImportedVersion {
            sha256: "aa".repeat(32),
            import_id: 2,
        };
        assert_eq!(
            check_name("x", &"aa".repeat(32), None, false).unwrap(),
            NameChange::New
        );
        assert_eq!(
            check_name("x", &"aa".repeat(32), Some(&current), false).unwrap(),
            NameChange::Same
        );
        assert_eq!(
            check_name("x", &"bb".repeat(32), Some(&current), true).unwrap(),
            NameChange::Replaces(2)
        );
        let e = check_name("x", &"bb".repeat(32), Some(&current), false).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&"aa".repeat(32)) && text.contains(&"bb".repeat(32)),
            "{text}"
        );
    }
}
