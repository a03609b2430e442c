//! Base64, hex and RFC 8785 canonical JSON helpers.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard base64; decoding accepts input with or without padding
/// (as the protobuf JSON mapping does).
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe base64 with optional padding.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes protobuf-JSON `bytes`: standard or URL-safe alphabet, padding optional,
/// line breaks ignored (as Go's and Python's decoders do).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    if text.contains(['\r', '\n']) {
        let joined: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        return b64_decode(&joined);
    }
    STANDARD_LENIENT
        .decode(text)
        .or_else(|_| URL_SAFE_LENIENT.decode(text))
        .ok()
}

/// Decodes strictly standard, padded base64 (signed notes, PEM bodies).
pub fn b64_decode_strict(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Encodes standard padded base64.
pub fn b64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes a 32-byte SHA-256 value from lowercase or uppercase hex.
pub fn hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

/// Serializes a JSON value per RFC 8785 (JSON Canonicalization Scheme), with
/// `serde_json_canonicalizer`.
///
/// A float is refused: nothing airgate signs carries one, and a float in a
/// body to be signed means the input is not what it claims to be.
pub fn canonical_json(value: &serde_json::Value) -> Result<Vec<u8>, &'static str> {
    if has_float(value) {
        return Err("floating-point numbers are not supported in canonical JSON");
    }
    serde_json_canonicalizer::to_vec(value).map_err(|_| "value cannot be canonicalized")
}

fn has_float(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => !(n.is_i64() || n.is_u64()),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_and_strips_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x\n"], "A": {"z": -5, "y": "é"}});
        let out = String::from_utf8(canonical_json(&v).unwrap()).unwrap();
        assert_eq!(out, r#"{"A":{"y":"é","z":-5},"a":[true,null,"x\n"],"b":1}"#);
    }

    #[test]
    fn canonical_refuses_floats() {
        assert!(canonical_json(&json!({"a": 1.5})).is_err());
    }

    #[test]
    fn canonical_escapes_control_characters() {
        let out = canonical_json(&json!("\u{1}")).unwrap();
        assert_eq!(out, br#""\u0001""#);
    }

    #[test]
    fn base64_lenient_and_strict() {
        assert_eq!(b64_decode("aGk").unwrap(), b"hi");
        assert_eq!(b64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(b64_decode("aG\nk=").unwrap(), b"hi");
        assert!(b64_decode("INVALID!!!BASE64!!!ENCODING====").is_none());
        assert!(b64_decode_strict("aGk").is_none());
    }
}
