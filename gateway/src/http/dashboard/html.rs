//! Shared HTML pieces: escaping, links, short digests, the page frame, the
//! response headers (a strict Content-Security-Policy: no script, no
//! external asset, inline style only) and the HTML error page.

use std::fmt::Write as _;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::error::ApiError;

/// The policy every dashboard page is served with.
pub(super) const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Hex digits of a digest shown in tables (the full digest is in the title).
const SHORT_DIGEST: usize = 12;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;background:#fff}\
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}h3{font-size:1rem;margin:0 0 .4rem}\
nav{margin:0 0 .75rem;font-size:.9rem}\
table{border-collapse:collapse;width:100%;table-layout:fixed;font-size:.85rem}\
th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f6f8fa}code,pre{font-family:ui-monospace,monospace;font-size:.8rem;overflow-wrap:anywhere}\
pre{background:#f6f8fa;padding:.5rem;white-space:pre-wrap;max-width:100%}\
.muted{color:#57606a}.small{font-size:.8rem}form{margin:1rem 0}input[type=search]{width:28rem;max-width:90%;padding:.3rem}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem 1rem;margin:.25rem 0}dt{font-weight:600}dd{margin:0;min-width:0;overflow-wrap:anywhere}\
.ok{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}\
ol.chain{list-style:none;padding:0;margin:0;max-width:64rem}\
ol.chain>li{border:1px solid #d0d7de;border-left:4px solid #0969da;border-radius:6px;padding:.6rem .8rem;position:relative}\
ol.chain>li.broken{border-left-color:#cf222e}ol.chain>li+li{margin-top:1.75rem}\
ol.chain>li+li::before{content:\"\\2193\";position:absolute;top:-1.6rem;left:1.2rem;font-size:1.2rem;color:#57606a}\
col.w4{width:4%}col.w6{width:6%}col.w8{width:8%}col.w10{width:10%}col.w12{width:12%}col.w16{width:16%}\
col.w20{width:20%}col.w26{width:26%}col.w30{width:30%}col.w40{width:40%}";

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn esc(text: &str) -> String {
    crate::escape::html(text)
}

/// `prefix` then `name` with every byte outside `A-Za-z0-9-._~/` percent-encoded.
fn encoded_path(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The URL path of an artifact's bytes.
pub(super) fn artifact_href(name: &str) -> String {
    encoded_path("/artifacts/", name)
}

/// The URL path of an artifact's chain-of-custody page.
pub(super) fn custody_href(name: &str) -> String {
    encoded_path(super::CUSTODY_PREFIX, name)
}

/// The URL path of an import's page.
pub(super) fn import_href(id: i64) -> String {
    format!("{}{id}", super::IMPORT_PREFIX)
}

/// A digest shortened for a table, the full one in its title.
pub(super) fn short_digest(hex: &str) -> String {
    let short: String = hex.chars().take(SHORT_DIGEST).collect();
    let more = if hex.chars().count() > SHORT_DIGEST {
        "\u{2026}"
    } else {
        ""
    };
    format!(
        "<code class=\"digest\" title=\"{}\">{}{more}</code>",
        esc(hex),
        esc(&short)
    )
}

/// A check's outcome, marked as verified (green tick) or failed (red cross).
pub(super) fn check_html(check: &Result<String, String>) -> String {
    match check {
        Ok(text) => format!("<span class=\"ok\">&#10003; {}</span>", esc(text)),
        Err(text) => format!("<span class=\"fail\">&#10007; {}</span>", esc(text)),
    }
}

/// A whole page: `title` (escaped) and `body` (already HTML).
pub(super) fn frame(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(title)
    )
}

/// The navigation line of the detail pages.
pub(super) fn nav() -> &'static str {
    "<nav><a href=\"/\">&larr; airgate high side</a> &middot; <a href=\"/#artifacts\">artifacts</a> \
     &middot; <a href=\"/#imports\">imports</a> &middot; <a href=\"/#refusals\">refused imports</a></nav>"
}

/// An HTML response with the dashboard's headers.
pub(super) fn html_response(status: StatusCode, html: String) -> Response {
    (
        status,
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
        .into_response()
}

/// Why a dashboard page cannot be shown: a client error as an HTML page, or
/// a server-side failure as the API's JSON error.
#[derive(Debug)]
pub(crate) enum PageError {
    /// 400 or 404, with a message for the reader (escaped when rendered).
    Client(StatusCode, String),
    /// Anything else.
    Api(ApiError),
}

impl PageError {
    /// 400.
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        PageError::Client(StatusCode::BAD_REQUEST, message.into())
    }

    /// 404.
    pub(super) fn not_found(message: impl Into<String>) -> Self {
        PageError::Client(StatusCode::NOT_FOUND, message.into())
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<crate::Error> for PageError {
    fn from(e: crate::Error) -> Self {
        PageError::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Api(e) => e.into_response(),
            PageError::Client(status, message) => {
                let title = format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                );
                let body = format!(
                    "{}<h1>{}</h1><p class=\"fail\" id=\"error\">{}</p>",
                    nav(),
                    esc(&title),
                    esc(&message)
                );
                html_response(status, frame(&title, &body))
            }
        }
    }
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
    fn links_percent_encode_all_but_safe_bytes() {
        assert_eq!(
            artifact_href("bin/app-linux-amd64"),
            "/artifacts/bin/app-linux-amd64"
        );
        assert_eq!(
            artifact_href("pkgs/@scope+pkg%1.tgz"),
            "/artifacts/pkgs/%40scope%2Bpkg%251.tgz"
        );
        assert_eq!(custody_href("a b\"<"), "/dashboard/artifact/a%20b%22%3C");
        assert_eq!(import_href(7), "/dashboard/import/7");
    }

    #[test]
    fn short_digests_keep_the_full_one_in_the_title() {
        let full = "ab".repeat(32);
        let html = short_digest(&full);
        assert!(html.contains(&format!("title=\"{full}\"")), "{html}");
        assert!(html.contains(">abababababab\u{2026}</code>"), "{html}");
        assert_eq!(
            short_digest("\"x"),
            "<code class=\"digest\" title=\"&quot;x\">&quot;x</code>"
        );
    }

    #[test]
    fn client_errors_are_escaped_html_pages() {
        let r = PageError::not_found("no artifact named \"<b>\"").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            HeaderValue::from_static(CSP)
        );
    }
}
