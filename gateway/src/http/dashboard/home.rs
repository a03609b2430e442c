//! `GET /`: the log state, the artifacts (latest import of each name, each
//! linked to its chain of custody), the imports (each linked to its page),
//! the refused imports and the private TUF repository.

use super::super::db::{ArtifactRow, ImportRow, RefusalRow};
use super::html::{artifact_href, custody_href, esc, import_href, short_digest};
use super::MAX_ROWS;
use crate::tlog::StoredCheckpoint;

/// What the front page shows.
pub(super) struct Home {
    /// The newest checkpoint.
    pub checkpoint: Option<StoredCheckpoint>,
    /// The tree ID from the log's origin line.
    pub tree_id: Option<String>,
    /// Artifacts shown (at most [`MAX_ROWS`]).
    pub artifacts: Vec<ArtifactRow>,
    /// Distinct artifact names in all.
    pub total: u64,
    /// The newest imports.
    pub imports: Vec<ImportRow>,
    /// The newest refused imports.
    pub refusals: Vec<RefusalRow>,
}

/// Version and expiry of the served `timestamp.json`.
pub(super) struct TufSummary {
    /// Its version.
    pub version: u64,
    /// Its expiry.
    pub expires: String,
}

fn header(query: &str) -> String {
    let mut h = format!(
        "<header><h1>airgate high side</h1><p class=\"muted\">Artifacts imported across the air gap, \
         verified offline and re-signed by the enclave's private Sigstore stack.</p></header>\
         <form method=\"get\" action=\"/\" role=\"search\"><label for=\"q\">Search by name or sha256 </label>\
         <input type=\"search\" id=\"q\" name=\"q\" maxlength=\"256\" value=\"{}\"> <button type=\"submit\">Search</button>",
        esc(query)
    );
    if !query.is_empty() {
        h.push_str(" <a href=\"/\">clear</a>");
    }
    h.push_str("</form>");
    h
}

fn log_section(log_id_hex: &str, home: &Home) -> String {
    let mut h = String::from("<section id=\"log\"><h2>Transparency log</h2>");
    match &home.checkpoint {
        Some(cp) => h.push_str(&format!(
            "<dl><dt>Tree size</dt><dd id=\"tree-size\">{}</dd><dt>Root hash</dt><dd><code>{}</code></dd>\
             <dt>Tree ID</dt><dd>{}</dd><dt>Log ID</dt><dd><code>{}</code></dd></dl>\
             <p>Signed checkpoint (<a href=\"/checkpoint\">/checkpoint</a>, <a href=\"/api/v1/log\">/api/v1/log</a>):</p>\
             <pre id=\"checkpoint\">{}</pre>",
            cp.size,
            hex::encode(cp.root_hash),
            esc(home.tree_id.as_deref().unwrap_or("")),
            esc(log_id_hex),
            esc(&cp.note)
        )),
        None => h.push_str("<p>The log is empty: nothing was signed or imported yet.</p>"),
    }
    h.push_str("</section>");
    h
}

fn artifact_line(a: &ArtifactRow) -> String {
    let bytes = esc(&artifact_href(&a.name));
    format!(
        "<tr class=\"artifact\"><td><a href=\"{custody}\">{name}</a><br><span class=\"small\">\
         <a href=\"{bytes}\">bytes</a> &middot; <a href=\"{bytes}.sigs\">.sigs</a></span></td>\
         <td>{sha}</td><td>{size}</td><td><span class=\"upstream-identity\">{ui}</span><br>\
         <span class=\"upstream-issuer muted\">{uiss}</span></td><td>{uli}</td><td class=\"signer\">{signer}</td>\
         <td><a href=\"/api/v1/log/entries?logIndex={li}\">{li}</a></td><td><a href=\"{import}\">#{id}</a></td></tr>",
        custody = esc(&custody_href(&a.name)),
        name = esc(&a.name),
        sha = short_digest(&a.sha256),
        size = a.size,
        ui = esc(&a.upstream_identity),
        uiss = esc(&a.upstream_issuer),
        uli = a.upstream_log_index,
        signer = esc(&a.signer_identity),
        li = a.log_index,
        import = esc(&import_href(a.import_id)),
        id = a.import_id,
    )
}

fn artifacts_section(query: &str, home: &Home) -> String {
    let shown = home.artifacts.len();
    let count = if query.is_empty() {
        format!(
            "{} artifacts (latest import of each name; JSON index at <a href=\"/artifacts/\">/artifacts/</a>); \
             a name opens its chain of custody",
            home.total
        )
    } else {
        format!(
            "{shown} of {} artifacts match &ldquo;{}&rdquo;",
            home.total,
            esc(query)
        )
    };
    let mut h =
        format!("<section id=\"artifacts\"><h2>Artifacts</h2><p class=\"muted\">{count}</p>");
    if shown > 0 {
        h.push_str(
            "<table class=\"artifacts\"><colgroup><col class=\"w20\"><col class=\"w10\"><col class=\"w6\">\
             <col class=\"w26\"><col class=\"w8\"><col class=\"w16\"><col class=\"w6\"><col class=\"w8\"></colgroup>\
             <thead><tr><th>Name</th><th>sha256</th><th>Size</th><th>Upstream signer and issuer</th>\
             <th>Upstream log index</th><th>airgate signer</th><th>Log index</th><th>Import</th></tr></thead><tbody>",
        );
        for a in &home.artifacts {
            h.push_str(&artifact_line(a));
        }
        h.push_str("</tbody></table>");
        if shown >= MAX_ROWS {
            h.push_str(&format!(
                "<p class=\"muted\">Showing the first {MAX_ROWS}; search to narrow the list.</p>"
            ));
        }
    }
    h.push_str("</section>");
    h
}

fn imports_section(home: &Home) -> String {
    let mut h = String::from("<section id=\"imports\"><h2>Imports</h2>");
    if home.imports.is_empty() {
        h.push_str("<p>No medium was imported yet.</p></section>");
        return h;
    }
    h.push_str(
        "<table><colgroup><col class=\"w6\"><col class=\"w16\"><col class=\"w16\"><col class=\"w20\">\
         <col class=\"w20\"><col class=\"w10\"><col class=\"w12\"></colgroup><thead><tr><th>#</th>\
         <th>Medium (manifest sha256)</th><th>Exporter</th><th>Exported</th><th>Imported</th>\
         <th>Artifacts</th><th>Log size after</th></tr></thead><tbody>",
    );
    for i in &home.imports {
        h.push_str(&format!(
            "<tr class=\"import\"><td><a href=\"{}\">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&import_href(i.id)),
            i.id,
            short_digest(&i.medium_id),
            esc(&i.exporter),
            esc(&i.export_time),
            esc(&i.imported_at),
            i.artifacts,
            i.checkpoint_size
        ));
    }
    h.push_str("</tbody></table></section>");
    h
}

/// The refused imports table (newest first).
pub(super) fn refusals_section(refusals: &[RefusalRow]) -> String {
    let mut h = String::from(
        "<section id=\"refusals\"><h2>Refused imports</h2><p class=\"muted\">Append-only: media the high side \
         refused, and why (<code>airgate imports refused</code>).</p>",
    );
    if refusals.is_empty() {
        h.push_str("<p>No import was refused.</p></section>");
        return h;
    }
    h.push_str(
        "<table><colgroup><col class=\"w6\"><col class=\"w16\"><col class=\"w20\"><col class=\"w10\">\
         <col class=\"w40\"></colgroup><thead><tr><th>#</th><th>Refused at</th><th>Media</th>\
         <th>Manifest sha256</th><th>Reason</th></tr></thead><tbody>",
    );
    for r in refusals {
        h.push_str(&format!(
            "<tr class=\"refusal\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td></tr>",
            r.id,
            esc(&r.refused_at),
            esc(&r.media),
            r.manifest_sha256
                .as_deref()
                .map_or_else(|| "<span class=\"muted\">(none read)</span>".to_owned(), short_digest),
            esc(&r.reason)
        ));
    }
    h.push_str("</tbody></table></section>");
    h
}

fn tuf_section(tuf: Option<&TufSummary>) -> String {
    let body = match tuf {
        Some(t) => format!(
            "<p>Serving <a href=\"/tuf/timestamp.json\">timestamp.json</a> version {} (expires {}); \
             clients pin <a href=\"/tuf/1.root.json\">1.root.json</a> and use <code>/tuf</code> as the mirror.</p>",
            t.version,
            esc(&t.expires)
        ),
        None => "<p>No private TUF repository is published (create one with \
                 <code>airgate tuf init-private --state DIR</code>).</p>"
            .to_owned(),
    };
    format!("<section id=\"tuf\"><h2>Private TUF repository</h2>{body}</section>")
}

/// The front page's body.
pub(super) fn render(
    log_id_hex: &str,
    query: &str,
    home: &Home,
    tuf: Option<&TufSummary>,
) -> String {
    [
        header(query),
        log_section(log_id_hex, home),
        artifacts_section(query, home),
        imports_section(home),
        refusals_section(&home.refusals),
        tuf_section(tuf),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_listed_escaped_newest_first_as_given() {
        let rows = vec![
            RefusalRow {
                id: 2,
                refused_at: "2025-01-02T00:00:00Z".into(),
                media: "/media/<x>.tar".into(),
                manifest_sha256: Some("ab".repeat(32)),
                reason: "entry \"artifacts/a\" is sha256 1, the manifest lists 2 & <more>".into(),
            },
            RefusalRow {
                id: 1,
                refused_at: "2025-01-01T00:00:00Z".into(),
                media: "m.tar".into(),
                manifest_sha256: None,
                reason: "not a tar".into(),
            },
        ];
        let html = refusals_section(&rows);
        assert_eq!(html.matches("<tr class=\"refusal\">").count(), 2);
        assert!(html.find("<td>2</td>") < html.find("<td>1</td>"));
        assert!(html.contains("&amp; &lt;more&gt;") && !html.contains("<more>"));
        assert!(html.contains("(none read)"));
        assert!(refusals_section(&[]).contains("No import was refused."));
    }

    #[test]
    fn artifact_rows_link_to_custody_bytes_sigs_and_import() {
        let row = ArtifactRow {
            name: "bin/app".into(),
            import_id: 4,
            sha256: "ab".repeat(32),
            size: 1,
            upstream_identity: "id".into(),
            upstream_issuer: "iss".into(),
            upstream_log_index: 9,
            signer_identity: "airgate".into(),
            log_index: 2,
        };
        let html = artifact_line(&row);
        for expected in [
            "href=\"/dashboard/artifact/bin/app\"",
            "href=\"/artifacts/bin/app\"",
            "href=\"/artifacts/bin/app.sigs\"",
            "href=\"/dashboard/import/4\">#4</a>",
            &format!("title=\"{}\"", "ab".repeat(32)),
        ] {
            assert!(html.contains(expected), "lacks {expected:?}: {html}");
        }
    }
}
