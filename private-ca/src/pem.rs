//! PEM encoding (64-column lines, trailing newline) and decoding.

use base64::Engine;

/// Encodes DER as a PEM block.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes every PEM block with `label`, in order.
pub fn decode_all(text: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else {
            break;
        };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(body) {
            out.push(bytes);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

/// Decodes the first PEM block with `label`.
pub fn decode(text: &str, label: &str) -> Option<Vec<u8>> {
    decode_all(text, label).into_iter().next()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_line_length() {
        let data: Vec<u8> = (0..200u8).collect();
        let pem = encode("CERTIFICATE", &data);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
        assert_eq!(decode(&pem, "CERTIFICATE").unwrap(), data);
        assert!(decode(&pem, "PUBLIC KEY").is_none());
    }
}
