//! conda packages carried across the gap, served as a real conda channel:
//! each package's repodata record is built by the rattler crates from the
//! package's own `info/index.json`, read from the verified bytes, with the
//! size and SHA-256 airgate hashed itself; `repodata.json` per subdir lists
//! them, each with the SHA-256 of its `.sigs` (CEP 142).

use std::path::Path;

use rattler_conda_types::package::{CondaArchiveType, IndexJson, PackageFile};
use rattler_conda_types::{PackageRecord, Subdir};

/// The largest `info/index.json` read (real ones are a few KiB).
pub const MAX_INDEX_JSON_BYTES: usize = 1 << 20;

/// A conda package's channel record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaRecord {
    /// The subdir its metadata names (`linux-64`, `noarch`, ...).
    pub subdir: String,
    /// The package filename (`NAME-VERSION-BUILD.conda` or `.tar.bz2`).
    pub filename: String,
    /// The repodata record (rattler's `PackageRecord`) as JSON.
    pub record_json: String,
}

/// Builds the channel record of the package at `path` (named `filename`,
/// with the size and SHA-256 airgate verified), or says why it cannot be
/// listed in a channel.
pub fn record_of(
    path: &Path,
    filename: &str,
    sha256_hex: &str,
    size: u64,
) -> Result<CondaRecord, String> {
    let archive = CondaArchiveType::try_from(Path::new(filename))
        .ok_or_else(|| format!("{filename}: not a .conda or .tar.bz2 file name"))?;
    let file = std::fs::File::open(path).map_err(|e| format!("{filename}: {e}"))?;
    let reader = std::io::BufReader::new(file);
    let found = match archive {
        CondaArchiveType::TarBz2 => {
            bounded_index_json(rattler_package_streaming::read::stream_tar_bz2(reader))
        }
        CondaArchiveType::Conda => rattler_package_streaming::seek::stream_conda_info(reader)
            .map_err(|e| e.to_string())
            .and_then(bounded_index_json),
    };
    let bytes = found.map_err(|e| format!("{filename}: info/index.json: {e}"))?;
    index_record(&bytes, filename, sha256_hex, size)
}

/// `info/index.json` from a package's (info) tar stream, read at most
/// [`MAX_INDEX_JSON_BYTES`] + 1 bytes: a huge or endless entry (a
/// decompression bomb) is refused without being held in memory.
fn bounded_index_json<R: std::io::Read>(mut archive: tar::Archive<R>) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let wanted = IndexJson::package_path();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let is_index = entry.path().map(|p| p == wanted).unwrap_or(false);
        if !is_index {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .take(MAX_INDEX_JSON_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        return Ok(bytes);
    }
    Err("missing".into())
}

/// The record built from `info/index.json` bytes (pure).
pub fn index_record(
    index_json: &[u8],
    filename: &str,
    sha256_hex: &str,
    size: u64,
) -> Result<CondaRecord, String> {
    if index_json.len() > MAX_INDEX_JSON_BYTES {
        return Err(format!(
            "{filename}: info/index.json is {} bytes, over {MAX_INDEX_JSON_BYTES}",
            index_json.len()
        ));
    }
    let text = std::str::from_utf8(index_json)
        .map_err(|_| format!("{filename}: info/index.json is not UTF-8"))?;
    let index =
        IndexJson::from_str(text).map_err(|e| format!("{filename}: info/index.json: {e}"))?;
    let expected = format!(
        "{}-{}-{}",
        index.name.as_normalized(),
        index.version,
        index.build
    );
    let stem = filename
        .strip_suffix(".conda")
        .or_else(|| filename.strip_suffix(".tar.bz2"))
        .unwrap_or(filename);
    if stem != expected {
        return Err(format!(
            "{filename}: its info/index.json names the package {expected}, not this file"
        ));
    }
    let sha256 = rattler_digest::parse_digest_from_hex::<rattler_digest::Sha256>(sha256_hex)
        .ok_or_else(|| format!("{filename}: malformed sha256"))?;
    let record = PackageRecord::from_index_json(index, Some(size), Some(sha256), None)
        .map_err(|e| format!("{filename}: {e}"))?;
    let subdir = record.subdir.clone();
    subdir
        .parse::<Subdir>()
        .map_err(|e| format!("{filename}: subdir {}: {e}", crate::escape::quoted(&subdir)))?;
    let record_json = serde_json::to_string(&record).map_err(|e| format!("{filename}: {e}"))?;
    Ok(CondaRecord {
        subdir,
        filename: filename.to_string(),
        record_json,
    })
}

/// One package listed in a subdir's `repodata.json`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The package filename.
    pub filename: String,
    /// Its record JSON (from [`CondaRecord::record_json`]).
    pub record_json: String,
    /// SHA-256 (hex) of the `.sigs` served beside it.
    pub sigs_sha256: String,
}

/// `repodata.json` for `subdir`: `.tar.bz2` packages under `packages`,
/// `.conda` ones under `packages.conda`, each record advertising its `.sigs`
/// by `attestations_sha256` (CEP 50: served at `FILE.sigs.SHA256`).
pub fn repodata(subdir: &str, listed: &[Listed]) -> Result<Vec<u8>, String> {
    let mut packages = serde_json::Map::new();
    let mut conda = serde_json::Map::new();
    for l in listed {
        let mut record: PackageRecord =
            serde_json::from_str(&l.record_json).map_err(|e| format!("{}: {e}", l.filename))?;
        record.attestations_sha256 =
            rattler_digest::parse_digest_from_hex::<rattler_digest::Sha256>(&l.sigs_sha256);
        let record = serde_json::to_value(&record).map_err(|e| format!("{}: {e}", l.filename))?;
        let target = if l.filename.ends_with(".conda") {
            &mut conda
        } else {
            &mut packages
        };
        target.insert(l.filename.clone(), record);
    }
    let doc = serde_json::json!({
        "info": {"subdir": subdir},
        "packages": packages,
        "packages.conda": conda,
        "removed": [],
        "repodata_version": 1,
    });
    serde_json::to_vec(&doc).map_err(|e| e.to_string())
}

/// A channel file name: the package, its `.sigs` (CEP 142), or its
/// content-addressed `.sigs.SHA256` (CEP 50).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelFile<'a> {
    /// The package bytes.
    Package(&'a str),
    /// The current `.sigs`.
    Sigs(&'a str),
    /// The `.sigs` whose SHA-256 (hex) is given.
    SigsAt(&'a str, &'a str),
}

/// Parses a file name under `/conda/SUBDIR/`.
pub fn channel_file(file: &str) -> ChannelFile<'_> {
    if let Some((base, hash)) = file.rsplit_once(".sigs.") {
        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return ChannelFile::SigsAt(base, hash);
        }
    }
    match file.strip_suffix(".sigs") {
        Some(base) => ChannelFile::Sigs(base),
        None => ChannelFile::Package(file),
    }
}

/// True when `subdir` is a conda platform name.
pub fn is_subdir(subdir: &str) -> bool {
    subdir.parse::<Subdir>().is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const INDEX: &[u8] = br#"{"name":"tool","version":"1.0","build":"h0_0","build_number":0,"subdir":"linux-64","depends":["libc >=2"],"license":"MIT"}"#;

    #[test]
    fn record_comes_from_the_index_with_our_digest_and_size() {
        let r = index_record(INDEX, "tool-1.0-h0_0.conda", &"ab".repeat(32), 1234).unwrap();
        assert_eq!(r.subdir, "linux-64");
        let v: serde_json::Value = serde_json::from_str(&r.record_json).unwrap();
        assert_eq!(v["name"], "tool");
        assert_eq!(v["sha256"], "ab".repeat(32));
        assert_eq!(v["size"], 1234);
        assert_eq!(v["depends"][0], "libc >=2");
    }

    #[test]
    fn an_index_naming_another_package_is_refused() {
        let err = index_record(INDEX, "other-1.0-h0_0.conda", &"ab".repeat(32), 1).unwrap_err();
        assert!(err.contains("names the package tool-1.0-h0_0"), "{err}");
    }

    #[test]
    fn malformed_or_huge_index_is_refused_by_name() {
        assert!(index_record(b"{", "tool-1.0-h0_0.conda", &"ab".repeat(32), 1).is_err());
        let huge = vec![b' '; MAX_INDEX_JSON_BYTES + 1];
        let err = index_record(&huge, "tool-1.0-h0_0.conda", &"ab".repeat(32), 1).unwrap_err();
        assert!(err.contains("over"), "{err}");
    }

    #[test]
    fn channel_file_names_parse() {
        let h = "ab".repeat(32);
        assert_eq!(
            channel_file("a-1-0.conda"),
            ChannelFile::Package("a-1-0.conda")
        );
        assert_eq!(
            channel_file("a-1-0.conda.sigs"),
            ChannelFile::Sigs("a-1-0.conda")
        );
        assert_eq!(
            channel_file(&format!("a-1-0.conda.sigs.{h}")),
            ChannelFile::SigsAt("a-1-0.conda", &h)
        );
        assert_eq!(
            channel_file("a-1-0.conda.sigs.xyz"),
            ChannelFile::Package("a-1-0.conda.sigs.xyz")
        );
    }

    #[test]
    fn repodata_files_conda_and_tar_bz2_under_their_keys() {
        let r = index_record(INDEX, "tool-1.0-h0_0.conda", &"ab".repeat(32), 1).unwrap();
        let listed = [Listed {
            filename: r.filename,
            record_json: r.record_json,
            sigs_sha256: "cd".repeat(32),
        }];
        let v: serde_json::Value =
            serde_json::from_slice(&repodata("linux-64", &listed).unwrap()).unwrap();
        assert_eq!(v["info"]["subdir"], "linux-64");
        assert_eq!(
            v["packages.conda"]["tool-1.0-h0_0.conda"]["attestations_sha256"],
            "cd".repeat(32)
        );
        assert!(v["packages"].as_object().unwrap().is_empty());
    }
}
