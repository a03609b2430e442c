//! `GET /dashboard/import/{id}`: one import as recorded: the medium, its
//! exporter and times, the policies and TUF versions it was verified under,
//! and its stored report (every artifact's decision, the log indexes, the
//! checkpoint signed after it, warnings), with the report itself as JSON.

use serde_json::Value;

use super::super::db::ImportRecord;
use super::html::{check_html, custody_href, esc, nav, short_digest};
use super::proof::{verify_checkpoint, Check, LogKey};
use crate::medium::manifest::TufVersions;
use crate::tlog::LogReader;

/// Longest import id accepted in a URL (decimal digits).
const MAX_ID_DIGITS: usize = 18;

/// Parses an import number from a URL: 1 to 18 decimal digits, no sign, no
/// leading zero.
pub(super) fn parse_id(raw: &str) -> Option<i64> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_ID_DIGITS
        && raw.bytes().all(|b| b.is_ascii_digit())
        && !raw.starts_with('0');
    ok.then(|| raw.parse().ok()).flatten()
}

/// The checkpoint the log holds at the size an import recorded.
pub(super) struct CheckpointAfter {
    /// The signed note, when the log holds one at that size.
    pub note: Option<String>,
    /// Its signature by the log key, origin and size.
    pub check: Check,
}

/// Reads and verifies the checkpoint at the size import `r` recorded.
pub(super) fn checkpoint_after(
    reader: &LogReader<'_>,
    r: &ImportRecord,
    log: LogKey<'_>,
) -> CheckpointAfter {
    let Ok(size) = u64::try_from(r.checkpoint_size) else {
        return CheckpointAfter {
            note: None,
            check: Err(format!(
                "the import records tree size {}",
                r.checkpoint_size
            )),
        };
    };
    let stored = match reader.checkpoint(size) {
        Ok(cp) => cp,
        Err(e) => {
            return CheckpointAfter {
                note: None,
                check: Err(format!("the log holds no checkpoint at size {size}: {e}")),
            }
        }
    };
    let check = verify_checkpoint(&stored.note, log).and_then(|cp| {
        if cp.size == size && cp.root_hash == stored.root_hash {
            Ok(format!(
                "checkpoint of size {size} signed by {} with the log key from the trusted root",
                log.name
            ))
        } else {
            Err(format!(
                "the signed note at size {size} says size {} and another root",
                cp.size
            ))
        }
    });
    CheckpointAfter {
        note: Some(stored.note),
        check,
    }
}

/// A JSON scalar as escaped text (strings unquoted; anything else as JSON).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => String::new(),
        other => esc(&other.to_string()),
    }
}

fn summary(r: &ImportRecord) -> String {
    let tuf = serde_json::from_str::<TufVersions>(&r.tuf_versions).map_or_else(
        |_| "(unreadable)".to_owned(),
        |t| {
            format!(
                "root v{} timestamp v{} snapshot v{} targets v{}",
                t.root, t.timestamp, t.snapshot, t.targets
            )
        },
    );
    format!(
        "<dl><dt>Medium</dt><dd>manifest statement sha256 <code id=\"medium-id\">{}</code></dd>\
         <dt>Exporter</dt><dd id=\"exporter\">{}</dd><dt>Signed export time</dt><dd>{}</dd>\
         <dt>Imported at</dt><dd>{}</dd><dt>Pack digest</dt><dd><code>{}</code></dd>\
         <dt>Low-side policy</dt><dd>sha256 <code>{}</code> (carried, informative)</dd>\
         <dt>High-side policy</dt><dd>sha256 <code>{}</code></dd><dt>TUF snapshot verified</dt><dd>{}</dd>\
         <dt>Log size after</dt><dd id=\"checkpoint-size\">{}</dd></dl>",
        esc(&r.medium_id),
        esc(&r.exporter),
        esc(&r.export_time),
        esc(&r.imported_at),
        esc(&r.pack_digest),
        esc(&r.medium_policy_sha256),
        esc(&r.policy_sha256),
        esc(&tuf),
        r.checkpoint_size
    )
}

fn artifact_line(a: &Value) -> String {
    let name = a["name"].as_str().unwrap_or_default();
    let accepted = a["decision"] == "accepted";
    let name_html = if accepted {
        format!("<a href=\"{}\">{}</a>", esc(&custody_href(name)), esc(name))
    } else {
        esc(name)
    };
    let decision = if accepted {
        "<span class=\"ok\">accepted</span>".to_owned()
    } else {
        format!(
            "<span class=\"fail\">{}</span> {}: {}",
            text(&a["decision"]),
            text(&a["check"]),
            text(&a["reason"])
        )
    };
    let log_index = match a["logIndex"].as_u64() {
        Some(i) => format!("<a href=\"/api/v1/log/entries?logIndex={i}\">{i}</a>"),
        None => String::new(),
    };
    format!(
        "<tr class=\"report-artifact\"><td>{name_html}</td><td>{}</td><td>{}</td>\
         <td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td>{decision}</td><td>{log_index}</td></tr>",
        short_digest(a["sha256"].as_str().unwrap_or_default()),
        text(&a["size"]),
        text(&a["upstream"]["identity"]),
        text(&a["upstream"]["issuer"]),
        text(&a["upstream"]["logIndex"]),
    )
}

fn artifacts(report: &Value) -> String {
    let lines = report["artifacts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut h = format!(
        "<section id=\"report-artifacts\"><h2>Artifacts ({})</h2>",
        lines.len()
    );
    if lines.is_empty() {
        h.push_str("<p>The report lists no artifact.</p></section>");
        return h;
    }
    h.push_str(
        "<table><colgroup><col class=\"w20\"><col class=\"w10\"><col class=\"w8\"><col class=\"w30\">\
         <col class=\"w8\"><col class=\"w16\"><col class=\"w8\"></colgroup><thead><tr><th>Name</th>\
         <th>sha256</th><th>Size</th><th>Upstream signer (verified)</th><th>Upstream log index</th>\
         <th>Decision</th><th>Log index</th></tr></thead><tbody>",
    );
    for a in lines {
        h.push_str(&artifact_line(a));
    }
    h.push_str("</tbody></table></section>");
    h
}

fn checkpoint_section(cp: &CheckpointAfter) -> String {
    format!(
        "<section id=\"import-checkpoint\"><h2>Checkpoint signed after this import</h2><p id=\"checkpoint-check\">{}</p>{}</section>",
        check_html(&cp.check),
        cp.note
            .as_deref()
            .map(|n| format!("<pre>{}</pre>", esc(n)))
            .unwrap_or_default()
    )
}

fn warnings(report: &Value) -> String {
    let mut h = String::new();
    if let Some(warnings) = report["warnings"].as_array().filter(|w| !w.is_empty()) {
        h.push_str("<section id=\"warnings\"><h2>Warnings</h2><ul>");
        for w in warnings {
            h.push_str(&format!("<li>{}</li>", text(w)));
        }
        h.push_str("</ul></section>");
    }
    h
}

/// The page body for import `r`.
pub(super) fn render(r: &ImportRecord, cp: &CheckpointAfter) -> String {
    let mut h = format!(
        "{}<h1>Import #{}</h1><p class=\"muted\">What the high side verified and recorded for this medium.</p>{}",
        nav(),
        r.id,
        summary(r)
    );
    match serde_json::from_str::<Value>(&r.report) {
        Ok(report) => {
            h.push_str(&artifacts(&report));
            h.push_str(&warnings(&report));
            h.push_str(&checkpoint_section(cp));
            let pretty = serde_json::to_string_pretty(&report).unwrap_or_default();
            h.push_str(&format!(
                "<section id=\"report\"><h2>Stored report</h2><details><summary>JSON, as recorded \
                 (<code>airgate imports show {}</code>)</summary><pre>{}</pre></details></section>",
                r.id,
                esc(&pretty)
            ));
        }
        Err(e) => h.push_str(&format!(
            "<section id=\"report\"><h2>Stored report</h2><p class=\"fail\">The stored report is not JSON: {}</p>\
             <pre>{}</pre></section>",
            esc(&e.to_string()),
            esc(&r.report)
        )),
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids_are_positive_bounded_decimals() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(
            parse_id("123456789012345678"),
            Some(123_456_789_012_345_678)
        );
        for bad in [
            "",
            "0",
            "01",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "abc",
            " 1",
            "1234567890123456789",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_report_is_rendered_escaped_with_links_for_accepted_artifacts() {
        let report = serde_json::json!({
            "mediumId": "m", "exporter": "low-1", "artifacts": [
                {"name": "ok.tgz", "sha256": "aa".repeat(32), "size": 3, "decision": "accepted",
                 "upstream": {"identity": "id", "issuer": "iss", "logIndex": 9, "logUrl": "u"},
                 "check": null, "reason": null, "logIndex": 4},
                {"name": "<bad>", "sha256": "bb".repeat(32), "size": 1, "decision": "rejected",
                 "upstream": null, "check": "policy", "reason": "no rule <matches>", "logIndex": null}
            ],
            "warnings": ["w<1>"]
        });
        let record = ImportRecord {
            id: 3,
            medium_id: "cd".repeat(32),
            exporter: "low-1".into(),
            export_time: "t1".into(),
            imported_at: "t2".into(),
            pack_digest: "p".into(),
            medium_policy_sha256: "lp".into(),
            policy_sha256: "hp".into(),
            tuf_versions: r#"{"root":1,"timestamp":2,"snapshot":3,"targets":4}"#.into(),
            checkpoint_size: 5,
            report: report.to_string(),
        };
        let cp = CheckpointAfter {
            note: Some("tlog - 1\n5\n<root>\n".into()),
            check: Ok("checkpoint of size 5 signed by tlog".into()),
        };
        let html = render(&record, &cp);
        assert!(html.contains("<h1>Import #3</h1>"), "{html}");
        assert!(
            html.contains("&#10003; checkpoint of size 5 signed by tlog"),
            "{html}"
        );
        assert!(html.contains("&lt;root&gt;"), "{html}");
        assert!(
            html.contains("root v1 timestamp v2 snapshot v3 targets v4"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"/dashboard/artifact/ok.tgz\">ok.tgz</a>"),
            "{html}"
        );
        assert!(html.contains("logIndex=4\">4</a>"), "{html}");
        assert!(
            html.contains("&lt;bad&gt;") && !html.contains("<bad>"),
            "{html}"
        );
        assert!(html.contains("policy: no rule &lt;matches&gt;"), "{html}");
        assert!(html.contains("<li>w&lt;1&gt;</li>"), "{html}");
        assert_eq!(html.matches("class=\"report-artifact\"").count(), 2);

        let broken = ImportRecord {
            report: "not json <x>".into(),
            ..record
        };
        let html = render(&broken, &cp);
        assert!(html.contains("The stored report is not JSON"), "{html}");
        assert!(html.contains("not json &lt;x&gt;"), "{html}");
    }
}
