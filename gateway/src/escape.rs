//! The one way a message quotes input: in double quotes, with every control,
//! format (bidi) and non-printable character escaped, and cut to a bounded
//! length, so no input can paint over a terminal or forge a log line. Pure.

/// Longest quoted text, in characters, before it is cut.
pub const MAX_QUOTED_CHARS: usize = 200;

/// `text` quoted and escaped (`"a\u{1b}[2K"`), cut after
/// [`MAX_QUOTED_CHARS`] characters with the full length noted.
pub fn quoted(text: &str) -> String {
    let count = text.chars().count();
    if count <= MAX_QUOTED_CHARS {
        return format!("{text:?}");
    }
    let cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    format!("{cut:?}... ({} bytes in all)", text.len())
}

/// Raw bytes quoted: UTF-8 as [`quoted`], anything else with `\xNN` escapes.
pub fn quoted_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => quoted(text),
        Err(_) => {
            let shown = &bytes[..bytes.len().min(MAX_QUOTED_CHARS)];
            let mut out = format!("\"{}\"", shown.escape_ascii());
            if shown.len() < bytes.len() {
                out.push_str(&format!("... ({} bytes in all)", bytes.len()));
            }
            out
        }
    }
}

/// A TOML parse error as one bounded line: the parser's message, the line
/// and column, and the offending line quoted and cut (a megabyte line is
/// never echoed).
pub fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = quoted(error.message());
    let Some(span) = error.span() else {
        return format!("TOML: {message}");
    };
    let start = span.start.min(text.len());
    let before = &text.as_bytes()[..start];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = text.get(line_start..start).map_or(0, |t| t.chars().count()) + 1;
    let line_text = text[line_start..].split('\n').next().unwrap_or_default();
    format!(
        "TOML line {line}, column {column}: {message} (in {})",
        quoted(line_text)
    )
}

/// `text` with control and format characters escaped but not quoted (for
/// multi-line output such as a TOML parser's message): newlines are kept.
pub fn sanitized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split('\n') {
        if !out.is_empty() || text.starts_with('\n') {
            out.push('\n');
        }
        for c in line.chars() {
            if c == '\t' || (!c.is_control() && !is_format(c)) {
                out.push(c);
            } else {
                out.extend(c.escape_unicode());
            }
        }
    }
    out
}

/// Unicode format characters that reorder or hide text (bidi controls,
/// zero-width characters).
fn is_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        let q = quoted("ok\u{1b}[2K\rimported 3 artifact(s)\u{202e}");
        assert!(
            !q.contains('\u{1b}') && !q.contains('\r') && !q.contains('\u{202e}'),
            "{q}"
        );
        assert!(q.starts_with('"'));
    }

    #[test]
    fn long_input_is_cut() {
        let q = quoted(&"x".repeat(1 << 20));
        assert!(q.len() < 300, "{}", q.len());
        assert!(q.contains("1048576 bytes"));
    }

    #[test]
    fn invalid_utf8_is_hex_escaped() {
        assert_eq!(quoted_bytes(b"a\xff\x1b"), "\"a\\xff\\x1b\"");
    }

    #[test]
    fn toml_error_on_a_megabyte_line_is_short() {
        let text = format!("a = 1\nb = \"{}\u{1b}[2K", "x".repeat(1 << 20));
        let e = toml::from_str::<toml::Table>(&text).unwrap_err();
        let msg = toml_error(&text, &e);
        assert!(msg.len() < 1000, "{}", msg.len());
        assert!(msg.contains("line 2"), "{msg}");
        assert!(!msg.contains('\u{1b}'));
    }

    #[test]
    fn sanitized_keeps_newlines_only() {
        assert_eq!(sanitized("a\nb\u{1b}c"), "a\nb\\u{1b}c");
    }
}
