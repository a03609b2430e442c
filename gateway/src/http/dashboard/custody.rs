//! `GET /dashboard/artifact/{name}`: one artifact's chain of custody, drawn
//! as five linked steps: the upstream signature and its log entry, the low
//! side's verification, the medium and its exporter, the high side's
//! verification, and airgate's signature with its log entry. Every fact
//! comes from a stored, verified record (the artifact row, its import's row
//! and stored report) or from the log, whose evidence is checked while the
//! page is rendered (see [`super::proof`]).

use rusqlite::Connection;

use super::super::db::{self, ArtifactRow, ImportRecord};
use super::super::error::ApiError;
use super::html::{artifact_href, check_html, esc, import_href, nav};
use super::proof::{check_body, check_inclusion, check_set, verify_checkpoint, Check, LogKey};
use crate::medium::manifest::TufVersions;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::{LogReader, StoredEntry};

/// Most versions of one name listed.
const MAX_VERSIONS: usize = 50;

/// Everything the artifact page shows.
pub(super) struct Custody {
    /// The newest record of the name.
    pub artifact: ArtifactRow,
    /// The upstream log the verified upstream entry is in.
    pub upstream_log_url: String,
    /// The import that carried this version.
    pub import: ImportRecord,
    /// That import's verified TUF versions, when the stored value parses.
    pub tuf: Option<TufVersions>,
    /// This artifact's line in that import's stored report.
    pub reported: Option<Reported>,
    /// Our log entry, checked.
    pub log: LogEvidence,
    /// Every recorded version of the name, newest first.
    pub versions: Vec<ArtifactRow>,
}

/// An artifact's line in its import's stored report.
pub(super) struct Reported {
    /// `accepted` or `rejected`.
    pub decision: String,
    /// The upstream identity the high side verified.
    pub upstream_identity: Option<String>,
    /// The import whose version of the name this one replaced.
    pub replaces_import: Option<i64>,
}

/// Our log entry for the artifact and what was checked about it.
pub(super) struct LogEvidence {
    /// The index the record names.
    pub index: i64,
    /// Integrated time (unix seconds), when the entry was read.
    pub integrated_time: Option<i64>,
    /// Entry kind, when the entry was read.
    pub kind: Option<&'static str>,
    /// The signed entry timestamp.
    pub set: Check,
    /// The digest the signed body records.
    pub body: Check,
    /// The latest checkpoint's signature and origin.
    pub checkpoint: Check,
    /// The inclusion proof against the latest signed checkpoint.
    pub inclusion: Check,
}

/// Reads the custody of `name` (`None` when no artifact has that name).
pub(super) fn load(
    conn: &Connection,
    name: &str,
    log: LogKey<'_>,
) -> Result<Option<Custody>, ApiError> {
    let Some(artifact) = db::artifact(conn, name)? else {
        return Ok(None);
    };
    let import = db::import_record(conn, artifact.import_id)?.ok_or_else(|| {
        ApiError::internal(
            "reading an artifact's import",
            &format!(
                "artifact {name:?} names missing import #{}",
                artifact.import_id
            ),
        )
    })?;
    let upstream_log_url =
        db::upstream_log_url(conn, name, artifact.import_id)?.unwrap_or_default();
    let report: Option<serde_json::Value> = serde_json::from_str(&import.report).ok();
    let reported = report
        .as_ref()
        .and_then(|r| reported_line(r, &artifact.name, &artifact.sha256));
    let log = log_evidence(&LogReader::new(conn), &artifact, log);
    Ok(Some(Custody {
        tuf: serde_json::from_str(&import.tuf_versions).ok(),
        versions: db::artifact_versions(conn, name, MAX_VERSIONS)?,
        upstream_log_url,
        import,
        reported,
        log,
        artifact,
    }))
}

/// The report's line for this name and digest.
pub(super) fn reported_line(
    report: &serde_json::Value,
    name: &str,
    sha256: &str,
) -> Option<Reported> {
    let line = report["artifacts"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name && a["sha256"] == sha256)?;
    Some(Reported {
        decision: line["decision"].as_str()?.to_owned(),
        upstream_identity: line["upstream"]["identity"].as_str().map(str::to_owned),
        replaces_import: line["replacesImport"].as_i64(),
    })
}

fn log_evidence(reader: &LogReader<'_>, row: &ArtifactRow, log: LogKey<'_>) -> LogEvidence {
    let failed = |why: String| LogEvidence {
        index: row.log_index,
        integrated_time: None,
        kind: None,
        set: Err(why.clone()),
        body: Err(why.clone()),
        checkpoint: Err(why.clone()),
        inclusion: Err(why),
    };
    let Ok(index) = u64::try_from(row.log_index) else {
        return failed(format!("the record names log index {}", row.log_index));
    };
    let entry = match reader.entry(index) {
        Ok(e) => e,
        Err(e) => return failed(format!("log entry {index} cannot be read: {e}")),
    };
    let (checkpoint, inclusion) = match latest_verified(reader, log) {
        Ok((text, cp)) => (Ok(text), prove(reader, &entry, &cp)),
        Err(why) => (
            Err(why),
            Err("not checked: the latest checkpoint did not verify".to_owned()),
        ),
    };
    LogEvidence {
        index: row.log_index,
        integrated_time: Some(entry.integrated_time),
        kind: Some(entry.kind.kind()),
        set: check_set(&entry, log),
        body: check_body(&entry.body, &row.sha256),
        checkpoint,
        inclusion,
    }
}

/// The latest checkpoint, its signature by the log key and origin verified,
/// and equal to the size and root stored beside it.
fn latest_verified(
    reader: &LogReader<'_>,
    log: LogKey<'_>,
) -> Result<(String, Checkpoint), String> {
    let stored = reader
        .latest_checkpoint()
        .map_err(|e| format!("the latest checkpoint cannot be read: {e}"))?
        .ok_or("the log has no signed checkpoint")?;
    let cp = verify_checkpoint(&stored.note, log)?;
    if cp.size != stored.size || cp.root_hash != stored.root_hash {
        return Err(format!(
            "the latest checkpoint's stored size and root ({}, {}) are not what its signed note says ({}, {})",
            stored.size,
            hex::encode(stored.root_hash),
            cp.size,
            hex::encode(cp.root_hash)
        ));
    }
    let text = format!(
        "latest checkpoint (size {}) signed by {} with the log key from the trusted root",
        cp.size, log.name
    );
    Ok((text, cp))
}

/// Builds the entry's inclusion proof against `cp` from the log and verifies it.
fn prove(reader: &LogReader<'_>, entry: &StoredEntry, cp: &Checkpoint) -> Check {
    if entry.index >= cp.size {
        return Err(format!(
            "entry {} is not covered by the latest checkpoint (size {})",
            entry.index, cp.size
        ));
    }
    let proof = reader
        .inclusion_proof(entry.index, cp.size)
        .map_err(|e| format!("the inclusion proof cannot be built: {e}"))?;
    check_inclusion(entry, &proof, cp)
}

/// One step of the chain: a titled box of facts (values already HTML).
fn step(id: &str, title: &str, broken: bool, rows: &[(&str, String)], note: &str) -> String {
    let mut h = format!(
        "<li id=\"{id}\"{}><h3>{}</h3><dl>",
        if broken { " class=\"broken\"" } else { "" },
        esc(title)
    );
    for (term, value) in rows {
        h.push_str(&format!("<dt>{}</dt><dd>{value}</dd>", esc(term)));
    }
    h.push_str("</dl>");
    if !note.is_empty() {
        h.push_str(&format!("<p class=\"muted small\">{note}</p>"));
    }
    h.push_str("</li>");
    h
}

fn step_upstream(c: &Custody) -> String {
    let a = &c.artifact;
    step(
        "upstream",
        "1. Upstream signature and log entry",
        false,
        &[
            ("Signer", format!("<span class=\"upstream-identity\">{}</span>", esc(&a.upstream_identity))),
            ("Issuer", format!("<span class=\"upstream-issuer\">{}</span>", esc(&a.upstream_issuer))),
            ("Upstream log", esc(&c.upstream_log_url)),
            ("Upstream log index", format!("<span id=\"upstream-log-index\">{}</span>", a.upstream_log_index)),
        ],
        "As the high side verified the upstream bundle (the first element of the <code>.sigs</code> array), \
         with its certificate chain, signed timestamps and log inclusion, under the high side's policy.",
    )
}

fn step_low_side(c: &Custody) -> String {
    let i = &c.import;
    step(
        "low-side",
        "2. Low-side verification",
        false,
        &[
            ("Verified by", format!("exporter <span class=\"exporter\">{}</span>", esc(&i.exporter))),
            ("Low-side policy", format!("<code>policy.toml</code> sha256 <code>{}</code>", esc(&i.medium_policy_sha256))),
        ],
        "The exporter verified the upstream bundle before export and listed the artifact as accepted in the \
         manifest it signed (informative: the high side trusts none of it and re-verified everything).",
    )
}

fn step_medium(c: &Custody) -> String {
    let i = &c.import;
    step(
        "medium",
        "3. Medium and exporter",
        false,
        &[
            (
                "Medium",
                format!(
                    "manifest statement sha256 <code>{}</code>",
                    esc(&i.medium_id)
                ),
            ),
            (
                "Pack digest",
                format!("<code>{}</code>", esc(&i.pack_digest)),
            ),
            (
                "Exporter",
                format!(
                    "{} (manifest signature verified with its enrolled key)",
                    esc(&i.exporter)
                ),
            ),
            ("Signed export time", esc(&i.export_time)),
        ],
        "",
    )
}

fn decision_check(c: &Custody) -> Check {
    match &c.reported {
        Some(r) if r.decision == "accepted" => Ok(format!(
            "import #{}'s stored report records it as accepted",
            c.import.id
        )),
        Some(r) => Err(format!(
            "import #{}'s stored report records it as {}",
            c.import.id, r.decision
        )),
        None => Err(format!(
            "import #{}'s stored report has no line for this name and digest",
            c.import.id
        )),
    }
}

fn step_high_side(c: &Custody) -> String {
    let i = &c.import;
    let decision = decision_check(c);
    let tuf = c.tuf.map_or_else(
        || "(unreadable)".to_owned(),
        |t| {
            format!(
                "root v{} timestamp v{} snapshot v{} targets v{}",
                t.root, t.timestamp, t.snapshot, t.targets
            )
        },
    );
    let mut rows = vec![
        (
            "Import",
            format!(
                "<a href=\"{}\">#{}</a> at {}",
                esc(&import_href(i.id)),
                i.id,
                esc(&i.imported_at)
            ),
        ),
        (
            "High-side policy",
            format!("sha256 <code>{}</code>", esc(&i.policy_sha256)),
        ),
        ("TUF snapshot verified", esc(&tuf)),
        ("Decision", check_html(&decision)),
    ];
    if let Some(identity) = c
        .reported
        .as_ref()
        .and_then(|r| r.upstream_identity.as_ref())
    {
        rows.push(("Upstream signer verified", esc(identity)));
    }
    if let Some(old) = c.reported.as_ref().and_then(|r| r.replaces_import) {
        rows.push((
            "Replaces",
            format!(
                "the version of <a href=\"{}\">import #{old}</a>",
                esc(&import_href(old))
            ),
        ));
    }
    step(
        "high-side",
        "4. High-side verification",
        decision.is_err(),
        &rows,
        "",
    )
}

fn step_airgate(c: &Custody) -> String {
    let l = &c.log;
    let time = l
        .integrated_time
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or_else(
            || "(unknown)".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    let rows = [
        ("Signer", format!("<span class=\"signer\">{}</span>", esc(&c.artifact.signer_identity))),
        ("Log index", format!("<a id=\"log-index\" href=\"/api/v1/log/entries?logIndex={0}\">{0}</a> ({1}, integrated {2})", l.index, l.kind.unwrap_or("unread"), esc(&time))),
        ("Entry", check_html(&l.body)),
        ("Timestamp", check_html(&l.set)),
        ("Checkpoint", check_html(&l.checkpoint)),
        ("Inclusion", format!("<span id=\"inclusion\">{}</span>", check_html(&l.inclusion))),
    ];
    let broken = l.set.is_err() || l.body.is_err() || l.checkpoint.is_err() || l.inclusion.is_err();
    step(
        "airgate",
        "5. airgate signature and log entry",
        broken,
        &rows,
        "Checked now: the latest checkpoint's signature with the log key from the trusted root, \
         then the entry's inclusion proof, built from the log, against that checkpoint's root.",
    )
}

fn versions_html(c: &Custody) -> String {
    if c.versions.len() < 2 {
        return String::new();
    }
    let mut h = String::from(
        "<section id=\"versions\"><h2>Versions of this name</h2><table><colgroup><col class=\"w12\">\
         <col class=\"w40\"><col class=\"w12\"></colgroup><thead><tr><th>Import</th><th>sha256</th>\
         <th>Log index</th></tr></thead><tbody>",
    );
    for v in &c.versions {
        h.push_str(&format!(
            "<tr><td><a href=\"{}\">#{}</a></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&import_href(v.import_id)),
            v.import_id,
            esc(&v.sha256),
            v.log_index
        ));
    }
    h.push_str("</tbody></table></section>");
    h
}

/// The page body for `c`.
pub(super) fn render(c: &Custody) -> String {
    let a = &c.artifact;
    let href = artifact_href(&a.name);
    let mut h = format!(
        "{}<h1>{}</h1><p class=\"muted\">Chain of custody of the version served now.</p><dl>\
         <dt>sha256</dt><dd><code id=\"sha256\">{}</code></dd><dt>Size</dt><dd>{} bytes</dd>\
         <dt>Served at</dt><dd><a href=\"{href}\">{href}</a> (<a href=\"{href}.sigs\">.sigs</a>)</dd></dl>\
         <section id=\"custody\"><h2>Chain of custody</h2><ol class=\"chain\">",
        nav(),
        esc(&a.name),
        esc(&a.sha256),
        a.size,
        href = esc(&href),
    );
    for part in [
        step_upstream(c),
        step_low_side(c),
        step_medium(c),
        step_high_side(c),
        step_airgate(c),
    ] {
        h.push_str(&part);
    }
    h.push_str("</ol></section>");
    h.push_str(&versions_html(c));
    h
}

/// The page title for `c`.
pub(super) fn title(c: &Custody) -> String {
    format!("{} \u{2014} airgate chain of custody", c.artifact.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(inclusion: Check) -> Custody {
        Custody {
            artifact: ArtifactRow {
                name: "bin/<app>".into(),
                import_id: 2,
                sha256: "ab".repeat(32),
                size: 42,
                upstream_identity:
                    "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1".into(),
                upstream_issuer: "https://token.actions.example".into(),
                upstream_log_index: 123_456,
                signer_identity: "https://airgate.internal/gateway".into(),
                log_index: 7,
            },
            upstream_log_url: "https://rekor.example".into(),
            import: ImportRecord {
                id: 2,
                medium_id: "cd".repeat(32),
                exporter: "low-1".into(),
                export_time: "2025-01-02T03:04:05Z".into(),
                imported_at: "2025-01-02T04:00:00Z".into(),
                pack_digest: "ef".repeat(32),
                medium_policy_sha256: "01".repeat(32),
                policy_sha256: "23".repeat(32),
                tuf_versions: String::new(),
                checkpoint_size: 8,
                report: String::new(),
            },
            tuf: Some(TufVersions {
                root: 1,
                timestamp: 5,
                snapshot: 4,
                targets: 3,
            }),
            reported: Some(Reported {
                decision: "accepted".into(),
                upstream_identity: Some("https://github.com/org/app".into()),
                replaces_import: Some(1),
            }),
            log: LogEvidence {
                index: 7,
                integrated_time: Some(1_700_000_000),
                kind: Some("hashedrekord"),
                set: Ok("signed entry timestamp of entry 7 verified".into()),
                body: Ok("the signed hashedrekord body records sha256 abab".into()),
                checkpoint: Ok("latest checkpoint (size 8) signed by tlog".into()),
                inclusion,
            },
            versions: Vec::new(),
        }
    }

    #[test]
    fn the_chain_names_every_step_in_order() {
        let html = render(&sample(Ok(
            "inclusion proof verified against checkpoint of size 8".into(),
        )));
        let mut at = 0;
        for id in ["upstream", "low-side", "medium", "high-side", "airgate"] {
            let found = html[at..]
                .find(&format!("<li id=\"{id}\""))
                .unwrap_or_else(|| panic!("step {id} missing or out of order: {html}"));
            at += found;
        }
        for expected in [
            "release.yml@refs/tags/v1",
            "https://token.actions.example",
            "123456",
            "low-1",
            &"01".repeat(32),
            &"cd".repeat(32),
            "root v1 timestamp v5 snapshot v4 targets v3",
            "accepted",
            "import #1",
            "https://airgate.internal/gateway",
            "logIndex=7",
            "2023-11-14T22:13:20Z",
            "<span class=\"ok\">&#10003; inclusion proof verified against checkpoint of size 8</span>",
        ] {
            assert!(html.contains(expected), "lacks {expected:?}: {html}");
        }
        assert!(!html.contains("class=\"broken\""), "{html}");
        assert!(html.contains("<h1>bin/&lt;app&gt;</h1>"), "{html}");
        assert!(!html.contains("<app>"), "{html}");
    }

    #[test]
    fn a_failed_check_is_shown_as_failed_never_verified() {
        let mut c = sample(Err(
            "inclusion proof of entry 7 failed: root mismatch".into()
        ));
        c.reported = None;
        let html = render(&c);
        assert!(html.contains(
            "<span class=\"fail\">&#10007; inclusion proof of entry 7 failed: root mismatch</span>"
        ));
        assert!(!html.contains("inclusion proof verified"), "{html}");
        assert_eq!(html.matches("class=\"broken\"").count(), 2, "{html}");
        assert!(
            html.contains("has no line for this name and digest"),
            "{html}"
        );
    }

    #[test]
    fn the_report_line_must_match_name_and_digest() {
        let report = serde_json::json!({"artifacts": [
            {"name": "a", "sha256": "11", "decision": "accepted", "upstream": {"identity": "x"}},
            {"name": "b", "sha256": "22", "decision": "rejected", "upstream": null, "replacesImport": 3},
        ]});
        let a = reported_line(&report, "a", "11").unwrap();
        assert_eq!(
            (a.decision.as_str(), a.upstream_identity.as_deref()),
            ("accepted", Some("x"))
        );
        assert!(reported_line(&report, "a", "22").is_none());
        let b = reported_line(&report, "b", "22").unwrap();
        assert_eq!(
            (b.decision.as_str(), b.replaces_import),
            ("rejected", Some(3))
        );
        assert!(reported_line(&serde_json::json!({}), "a", "11").is_none());
    }
}
