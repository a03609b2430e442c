//! `GET /`: a read-only dashboard, rendered on the server with no external
//! assets (a strict Content-Security-Policy forbids any): the log state,
//! artifacts with their upstream and airgate signers, imports, and the
//! private TUF repository. `?q=` filters artifacts by name substring or
//! sha256 prefix. Every value is HTML-escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::db::{self, with_db, ArtifactRow, ImportRow, Search};
use super::error::ApiError;
use super::AppState;
use crate::state::TUF_REPO;
use crate::tlog::{LogReader, StoredCheckpoint};

/// Most artifact rows shown.
const MAX_ROWS: usize = 500;
/// Most imports shown.
const MAX_IMPORTS: usize = 50;
/// Longest search accepted.
const MAX_QUERY_BYTES: usize = 256;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff}\
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\
table{border-collapse:collapse;width:100%;font-size:.85rem}th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}code,pre{font-family:ui-monospace,monospace;font-size:.8rem}pre{background:#f6f8fa;padding:.5rem;overflow-x:auto}\
code.digest{display:inline-block;width:32ch;word-break:break-all}.muted{color:#57606a}form{margin:1rem 0}input[type=search]{width:28rem;max-width:90%;padding:.3rem}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}";

/// Escapes text for HTML element content and quoted attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL path of an artifact: every byte outside `A-Za-z0-9-._~/` percent-encoded.
fn artifact_href(name: &str) -> String {
    let mut out = String::from("/artifacts/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

struct Page {
    checkpoint: Option<StoredCheckpoint>,
    tree_id: Option<String>,
    artifacts: Vec<ArtifactRow>,
    total: u64,
    imports: Vec<ImportRow>,
}

/// `GET /` (and `GET /?q=...`).
pub(crate) async fn page(
    State(state): State<AppState>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) =
        q.map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
    let query = params
        .get("q")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if query.len() > MAX_QUERY_BYTES {
        return Err(ApiError::bad_request(format!(
            "the search is {} bytes, over the limit of {MAX_QUERY_BYTES}",
            query.len()
        )));
    }
    let search = (!query.is_empty()).then(|| Search::new(&query));
    let page = with_db(&state, move |c| {
        let reader = LogReader::new(c);
        let checkpoint = reader.latest_checkpoint()?;
        let tree_id = reader
            .origin()?
            .and_then(|o| o.rsplit_once(" - ").map(|(_, id)| id.to_owned()));
        let artifacts = db::artifacts(c, search.as_ref(), MAX_ROWS, false)?
            .into_iter()
            .map(|(row, _)| row)
            .collect();
        Ok(Page {
            checkpoint,
            tree_id,
            artifacts,
            total: db::artifact_count(c)?,
            imports: db::imports(c, MAX_IMPORTS)?,
        })
    })
    .await?;
    let tuf = tuf_summary(&state).await;
    let html = render(&state, &query, &page, tuf.as_ref());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        html,
    )
        .into_response())
}

struct TufSummary {
    version: u64,
    expires: String,
}

/// Version and expiry of the served `timestamp.json`, if there is one.
async fn tuf_summary(state: &AppState) -> Option<TufSummary> {
    let path = state.dir.join(TUF_REPO).join("timestamp.json");
    let bytes = tokio::fs::read(&path).await.ok()?;
    if bytes.len() > 1 << 20 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(TufSummary {
        version: doc["signed"]["version"].as_u64()?,
        expires: doc["signed"]["expires"].as_str()?.to_owned(),
    })
}

fn render(state: &AppState, query: &str, page: &Page, tuf: Option<&TufSummary>) -> String {
    let mut h = String::with_capacity(16 << 10);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>airgate high side</title><style>{STYLE}</style></head><body>\
         <header><h1>airgate high side</h1><p class=\"muted\">Artifacts imported across the air gap, \
         verified offline and re-signed by the enclave's private Sigstore stack.</p></header>\
         <form method=\"get\" action=\"/\" role=\"search\"><label for=\"q\">Search by name or sha256 </label>\
         <input type=\"search\" id=\"q\" name=\"q\" value=\"{}\"> <button type=\"submit\">Search</button>",
        esc(query)
    );
    if !query.is_empty() {
        h.push_str(" <a href=\"/\">clear</a>");
    }
    h.push_str("</form>");

    // Log.
    h.push_str("<section id=\"log\"><h2>Transparency log</h2>");
    match &page.checkpoint {
        Some(cp) => {
            let _ = write!(
                h,
                "<dl><dt>Tree size</dt><dd id=\"tree-size\">{}</dd><dt>Root hash</dt><dd><code>{}</code></dd>\
                 <dt>Tree ID</dt><dd>{}</dd><dt>Log ID</dt><dd><code>{}</code></dd></dl>\
                 <p>Signed checkpoint (<a href=\"/checkpoint\">/checkpoint</a>, <a href=\"/api/v1/log\">/api/v1/log</a>):</p>\
                 <pre id=\"checkpoint\">{}</pre>",
                cp.size,
                hex::encode(cp.root_hash),
                esc(page.tree_id.as_deref().unwrap_or("")),
                esc(&state.log.log_id_hex),
                esc(&cp.note)
            );
        }
        None => h.push_str("<p>The log is empty: nothing was signed or imported yet.</p>"),
    }
    h.push_str("</section>");

    // Artifacts.
    let shown = page.artifacts.len();
    let _ = write!(
        h,
        "<section id=\"artifacts\"><h2>Artifacts</h2><p class=\"muted\">{}</p>",
        if query.is_empty() {
            format!(
                "{} artifacts (latest import of each name; JSON index at <a href=\"/artifacts/\">/artifacts/</a>)",
                page.total
            )
        } else {
            format!(
                "{shown} of {} artifacts match &ldquo;{}&rdquo;",
                page.total,
                esc(query)
            )
        }
    );
    if shown > 0 {
        h.push_str(
            "<table><thead><tr><th>Name</th><th>sha256</th><th>Size</th><th>Upstream signer</th>\
             <th>Upstream issuer</th><th>Upstream log index</th><th>airgate signer</th>\
             <th>Log index</th><th>Import</th></tr></thead><tbody>",
        );
        for a in &page.artifacts {
            let href = artifact_href(&a.name);
            let _ = write!(
                h,
                "<tr class=\"artifact\"><td><a href=\"{href}\">{name}</a> (<a href=\"{href}.sigs\">.sigs</a>)</td>\
                 <td><code class=\"digest\">{sha}</code></td><td>{size}</td><td class=\"upstream-identity\">{ui}</td>\
                 <td class=\"upstream-issuer\">{uiss}</td><td>{uli}</td><td class=\"signer\">{signer}</td>\
                 <td><a href=\"/api/v1/log/entries?logIndex={li}\">{li}</a></td><td>{import}</td></tr>",
                href = esc(&href),
                name = esc(&a.name),
                sha = esc(&a.sha256),
                size = a.size,
                ui = esc(&a.upstream_identity),
                uiss = esc(&a.upstream_issuer),
                uli = a.upstream_log_index,
                signer = esc(&a.signer_identity),
                li = a.log_index,
                import = a.import_id,
            );
        }
        h.push_str("</tbody></table>");
        if shown >= MAX_ROWS {
            let _ = write!(
                h,
                "<p class=\"muted\">Showing the first {MAX_ROWS}; search to narrow the list.</p>"
            );
        }
    }
    h.push_str("</section>");

    // Imports.
    h.push_str("<section id=\"imports\"><h2>Imports</h2>");
    if page.imports.is_empty() {
        h.push_str("<p>No medium was imported yet.</p>");
    } else {
        h.push_str(
            "<table><thead><tr><th>#</th><th>Medium (manifest sha256)</th><th>Exporter</th>\
             <th>Exported</th><th>Imported</th><th>Artifacts</th><th>Log size after</th></tr></thead><tbody>",
        );
        for i in &page.imports {
            let _ = write!(
                h,
                "<tr class=\"import\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i.id,
                esc(&i.medium_id),
                esc(&i.exporter),
                esc(&i.export_time),
                esc(&i.imported_at),
                i.artifacts,
                i.checkpoint_size
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");

    // TUF.
    h.push_str("<section id=\"tuf\"><h2>Private TUF repository</h2>");
    match tuf {
        Some(t) => {
            let _ = write!(
                h,
                "<p>Serving <a href=\"/tuf/timestamp.json\">timestamp.json</a> version {} (expires {}); \
                 clients pin <a href=\"/tuf/1.root.json\">1.root.json</a> and use <code>/tuf</code> as the mirror.</p>",
                t.version,
                esc(&t.expires)
            );
        }
        None => h.push_str(
            "<p>No private TUF repository is published (create one with <code>airgate tuf init-private --state DIR</code>).</p>",
        ),
    }
    h.push_str("</section></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn artifact_links_percent_encode_all_but_safe_bytes() {
        assert_eq!(
            artifact_href("bin/app-linux-amd64"),
            "/artifacts/bin/app-linux-amd64"
        );
        assert_eq!(
            artifact_href("pkgs/@scope+pkg%1.tgz"),
            "/artifacts/pkgs/%40scope%2Bpkg%251.tgz"
        );
    }
}
