//! C2SP tlog-tiles paths and entry bundles (pure). The log keeps every
//! perfect-subtree node, so a hash tile at level L, index N is the
//! level-8L nodes `256N ..< 256N+W`, read back as stored.
//!
//! Paths: `tile/L/N[.p/W]` and `tile/entries/N[.p/W]`, where N is written
//! in 3-digit groups, all but the last prefixed with `x` (`x001/x234/067`).

/// Hashes (or entries) per full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: u32 = 8;

/// A tile the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// Hash tile level, or `None` for an entry bundle.
    pub level: Option<u8>,
    /// Tile index.
    pub index: u64,
    /// Width: 256 for a full tile, 1..=255 for `.p/W`.
    pub width: u64,
}

/// Parses the part of a tile path after `tile/`.
pub fn parse_tile_path(path: &str) -> Result<TilePath, String> {
    let (level_text, rest) = path
        .split_once('/')
        .ok_or_else(|| "a tile path is tile/L/N or tile/entries/N".to_string())?;
    let level = match level_text {
        "entries" => None,
        l if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => {
            let v: u8 = l.parse().map_err(|_| "bad level".to_string())?;
            if v > 7 || (l.len() > 1 && l.starts_with('0')) {
                return Err(format!("tile level {l} is out of range (0 to 7)"));
            }
            Some(v)
        }
        _ => return Err("the tile level is not a number".into()),
    };
    let (index_text, width) = match rest.split_once(".p/") {
        Some((i, w)) => {
            let w = parse_width(w)?;
            (i, w)
        }
        None => (rest, TILE_WIDTH),
    };
    Ok(TilePath {
        level,
        index: parse_index(index_text)?,
        width,
    })
}

fn parse_width(text: &str) -> Result<u64, String> {
    let ok = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with('0');
    let w: u64 = if ok { text.parse().unwrap_or(0) } else { 0 };
    if !(1..TILE_WIDTH).contains(&w) {
        return Err("a partial tile width is 1 to 255".into());
    }
    Ok(w)
}

/// Parses `x001/x234/067` into 1234067.
pub fn parse_index(text: &str) -> Result<u64, String> {
    let groups: Vec<&str> = text.split('/').collect();
    if groups.len() > 7 {
        return Err("the tile index has too many groups".into());
    }
    let mut n: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let last = i + 1 == groups.len();
        let digits = if last { Some(*g) } else { g.strip_prefix('x') };
        let digits = digits.filter(|d| d.len() == 3 && d.bytes().all(|b| b.is_ascii_digit()));
        let Some(digits) = digits else {
            return Err(
                "the tile index must be 3-digit groups, all but the last prefixed with x".into(),
            );
        };
        let v: u64 = digits.parse().map_err(|_| "bad index".to_string())?;
        n = n
            .checked_mul(1000)
            .and_then(|n| n.checked_add(v))
            .ok_or_else(|| "the tile index is too large".to_string())?;
    }
    if groups.len() > 1 && groups[0] == "x000" {
        return Err("the tile index has a leading zero group".into());
    }
    Ok(n)
}

/// Formats an index as tile path groups.
pub fn format_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// How many level-8L nodes a tree of `size` leaves has complete: the
/// hashes available for tiles at `level`.
pub fn available(size: u64, level: u8) -> u64 {
    size >> (TILE_HEIGHT * u32::from(level))
}

/// Whether `tile` is within a tree of `size` (full tiles only where full).
pub fn within(tile: &TilePath, size: u64) -> bool {
    let have = match tile.level {
        Some(l) => available(size, l),
        None => size,
    };
    tile.index
        .checked_mul(TILE_WIDTH)
        .and_then(|start| start.checked_add(tile.width))
        .is_some_and(|end| end <= have)
}

/// An entry bundle: each entry as a big-endian u16 length and its bytes.
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len())
            .map_err(|_| format!("an entry of {} bytes does not fit an entry bundle", e.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Splits an entry bundle back into entries (for clients and tests).
pub fn split_entry_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let [a, b, tail @ ..] = rest else {
            return Err("truncated entry length".into());
        };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        if tail.len() < len {
            return Err("truncated entry".into());
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn indexes_round_trip_in_groups_of_three() {
        for n in [0u64, 7, 999, 1000, 1234067, u64::MAX / 1000] {
            assert_eq!(parse_index(&format_index(n)).unwrap(), n, "{n}");
        }
        assert_eq!(format_index(1234067), "x001/x234/067");
        for bad in ["67", "x067", "067/x001", "x000/067", "0678", "x1/067", ""] {
            assert!(parse_index(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tile_paths_parse_with_partial_widths() {
        assert_eq!(
            parse_tile_path("0/x001/234.p/7").unwrap(),
            TilePath {
                level: Some(0),
                index: 1234,
                width: 7
            }
        );
        assert_eq!(
            parse_tile_path("entries/000").unwrap(),
            TilePath {
                level: None,
                index: 0,
                width: 256
            }
        );
        for bad in [
            "8/000",
            "00/000",
            "0/000.p/256",
            "0/000.p/0",
            "0/000.p/07",
            "x/000",
            "0",
        ] {
            assert!(parse_tile_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_tiles_inside_the_tree_are_within() {
        let full = |level, index| TilePath {
            level: Some(level),
            index,
            width: 256,
        };
        assert!(within(&full(0, 0), 256));
        assert!(!within(&full(0, 1), 300));
        assert!(within(
            &TilePath {
                level: Some(0),
                index: 1,
                width: 44
            },
            300
        ));
        assert!(!within(
            &TilePath {
                level: Some(0),
                index: 1,
                width: 45
            },
            300
        ));
        assert!(within(
            &TilePath {
                level: Some(1),
                index: 0,
                width: 1
            },
            300
        ));
        assert!(!within(
            &TilePath {
                level: Some(1),
                index: 0,
                width: 2
            },
            300
        ));
        assert!(!within(
            &TilePath {
                level: Some(0),
                index: u64::MAX,
                width: 1
            },
            u64::MAX
        ));
    }

    #[test]
    fn entry_bundles_round_trip() {
        let entries: [&[u8]; 3] = [b"a", b"", b"hello"];
        let bundle = entry_bundle(entries).unwrap();
        assert_eq!(split_entry_bundle(&bundle).unwrap(), entries.to_vec());
        assert!(split_entry_bundle(&bundle[..bundle.len() - 1]).is_err());
        assert!(entry_bundle([vec![0u8; 70_000].as_slice()]).is_err());
    }
}
