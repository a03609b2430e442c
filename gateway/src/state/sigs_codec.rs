//! How `.sigs` arrays are stored in the `artifacts` table: zstd-compressed
//! (about 1.8x smaller: an import's largest write) since this version; rows
//! written before hold the JSON array itself and are read unchanged. Pure:
//! bytes in, bytes out; decompression is bounded.

/// The zstd frame magic number.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// zstd level: fast, and most of the gain.
const LEVEL: i32 = 1;
/// Largest `.sigs` array a stored row may expand to.
pub const MAX_SIGS_BYTES: usize = 64 << 20;

thread_local! {
    /// One compression context per thread, reused: an import compresses
    /// one `.sigs` per artifact, and a fresh context costs more than a small
    /// array's compression.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// The stored form of a `.sigs` JSON array.
pub fn encode(json: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|slot| {
        let mut slot = slot.borrow_mut();
        let compressor = match slot.as_mut() {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(LEVEL)?),
        };
        compressor.compress(json)
    })
}

/// The `.sigs` JSON array from its stored form (compressed, or an older
/// row's JSON as is).
pub fn decode(stored: Vec<u8>) -> Result<Vec<u8>, String> {
    if stored.first() == Some(&b'[') {
        return Ok(stored);
    }
    if !stored.starts_with(&ZSTD_MAGIC) {
        return Err("neither a JSON array nor a zstd frame".into());
    }
    zstd::bulk::decompress(&stored, MAX_SIGS_BYTES)
        .map_err(|e| format!("does not decompress within {MAX_SIGS_BYTES} bytes: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_old_rows_read_unchanged() {
        let json = br#"[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"},{"a":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]"#.to_vec();
        let stored = encode(&json).unwrap();
        assert!(stored.starts_with(&ZSTD_MAGIC));
        assert_eq!(decode(stored).unwrap(), json);
        assert_eq!(decode(json.clone()).unwrap(), json);
    }

    #[test]
    fn garbage_and_bombs_are_refused() {
        assert!(decode(b"{not an array".to_vec())
            .unwrap_err()
            .contains("neither"));
        let mut truncated = encode(&[b'['; 4096]).unwrap();
        truncated.truncate(truncated.len() - 3);
        assert!(decode(truncated).is_err());
        let bomb = zstd::bulk::compress(&vec![b' '; MAX_SIGS_BYTES + 1], 19).unwrap();
        assert!(decode(bomb).unwrap_err().contains("within"));
    }
}
