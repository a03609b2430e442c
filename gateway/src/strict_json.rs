//! One reading of every signed document: JSON with a key twice in one object
//! is refused before it is parsed, so no two parsers (first wins, last wins)
//! can read different values out of the same signed bytes. Pure.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Checks that `bytes` is one JSON value with no duplicate key in any
/// object; the error names the key (escaped) and the nesting depth limit of
/// `serde_json` (128) applies.
pub fn check_unique_keys(bytes: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

/// Parses `bytes` as `T` after [`check_unique_keys`].
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check_unique_keys(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {}",
                    crate::escape::quoted(&key)
                )));
            }
            map.next_value_seed(UniqueKeys)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_key_at_any_depth_is_refused() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"sha256":"00","sha256":"11"}}"#,
            r#"[{"k":[{"d":1,"d":1}]}]"#,
        ] {
            let e = check_unique_keys(bad.as_bytes()).unwrap_err();
            assert!(e.contains("duplicate key"), "{bad}: {e}");
        }
    }

    #[test]
    fn distinct_keys_and_trailing_garbage() {
        assert!(check_unique_keys(br#"{"a":{"a":1},"b":[1,2,{"a":null}]}"#).is_ok());
        assert!(check_unique_keys(br#"{"a":1} {"b":2}"#).is_err());
        assert!(check_unique_keys(b"{").is_err());
    }

    #[test]
    fn escaped_duplicate_key_is_reported_escaped() {
        let e = check_unique_keys(b"{\"\\u001b[2K\":1,\"\\u001b[2K\":2}").unwrap_err();
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = "[".repeat(100_000);
        assert!(check_unique_keys(deep.as_bytes()).is_err());
    }
}
