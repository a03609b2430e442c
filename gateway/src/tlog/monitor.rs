//! Monitoring a served log from a checkpoint kept elsewhere. Pure: the caller
//! fetches the served checkpoint and consistency proof, this module decides.
//!
//! This is what a C2SP tlog-witness does before cosigning: the new checkpoint
//! must be signed by the log key, name the same origin, be at least as large
//! as the kept one, and be proven consistent with it.

use serde::Deserialize;

use super::checkpoint::SignedNote;
use super::merkle::{self, Hash};
use super::store::verify_note_by_any;
use super::LogError;
use crate::crypto::VerifyingKey;
use crate::escape::quoted;

/// Largest consistency proof accepted: 2 x 64 levels of a tree of size < 2^64.
pub const MAX_PROOF_HASHES: usize = 128;

/// What the monitor established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    /// The log's origin line.
    pub origin: String,
    /// Tree size of the kept checkpoint.
    pub kept_size: u64,
    /// Tree size of the served checkpoint.
    pub served_size: u64,
    /// Root hash of the served checkpoint.
    pub served_root: Hash,
}

/// The JSON the server answers `GET /api/v1/log/proof` with.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProofBody {
    root_hash: String,
    hashes: Vec<String>,
}

/// The name of the signature on a note by one of `keys`: the kept
/// checkpoint, which the operator trusts, says which name the log signs under.
fn signer_name(note: &str, keys: &[VerifyingKey]) -> Result<String, LogError> {
    let parsed = SignedNote::parse(note)
        .map_err(|e| LogError::Tampered(format!("the kept checkpoint is malformed: {e}")))?;
    let hints: Vec<[u8; 4]> = keys
        .iter()
        .map(|k| {
            let id = k.key_id();
            [id[0], id[1], id[2], id[3]]
        })
        .collect();
    parsed
        .signatures
        .iter()
        .find(|s| hints.contains(&s.key_hint))
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            LogError::Tampered(
                "the kept checkpoint carries no signature by the given log key".into(),
            )
        })
}

/// Parses the proof body, bounded and strict, into hashes.
pub fn parse_proof(body: &[u8]) -> Result<(Hash, Vec<Hash>), LogError> {
    let bad = |what: String| LogError::Tampered(format!("served consistency proof: {what}"));
    let proof: ProofBody = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    if proof.hashes.len() > MAX_PROOF_HASHES {
        return Err(bad(format!(
            "{} hashes (at most {MAX_PROOF_HASHES})",
            proof.hashes.len()
        )));
    }
    let hash = |text: &str| {
        crate::encoding::hex32(text)
            .ok_or_else(|| bad(format!("{} is not a SHA-256 hash", quoted(text))))
    };
    let root = hash(&proof.root_hash)?;
    let hashes = proof
        .hashes
        .iter()
        .map(|h| hash(h))
        .collect::<Result<_, _>>()?;
    Ok((root, hashes))
}

/// Checks that the served checkpoint grew consistently from the kept one,
/// each signed by one of the log's `keys` (more than one across a log key
/// rotation: the same tree goes on under the new key).
/// `proof` is the consistency proof from the kept size to the served size
/// (ignored when the sizes are equal or the kept tree is empty).
pub fn check_growth(
    kept_note: &str,
    served_note: &str,
    proof: &[Hash],
    keys: &[VerifyingKey],
) -> Result<Growth, LogError> {
    let name = signer_name(kept_note, keys)?;
    let any: Vec<crate::tlog::LogKey<'_>> = keys.iter().map(crate::tlog::LogKey::always).collect();
    let kept = verify_note_by_any(kept_note, &name, &any)
        .map_err(|e| LogError::Tampered(format!("the kept checkpoint {e}")))?;
    let served = verify_note_by_any(served_note, &name, &any)
        .map_err(|e| LogError::Tampered(format!("the served checkpoint {e}")))?;
    if served.origin != kept.origin {
        return Err(LogError::Tampered(format!(
            "the served checkpoint is of log {}, the kept one of {}",
            quoted(&served.origin),
            quoted(&kept.origin)
        )));
    }
    if served.size < kept.size {
        return Err(LogError::Tampered(format!(
            "the served checkpoint is at tree size {}, smaller than the kept {}: the log was truncated",
            served.size, kept.size
        )));
    }
    if served.size == kept.size && served.root_hash != kept.root_hash {
        return Err(LogError::Tampered(format!(
            "two checkpoints at tree size {} with different roots ({} kept, {} served): the log forked",
            kept.size,
            hex::encode(kept.root_hash),
            hex::encode(served.root_hash)
        )));
    }
    if kept.size > 0 && kept.size < served.size {
        merkle::verify_consistency(
            kept.size,
            served.size,
            &kept.root_hash,
            &served.root_hash,
            proof,
        )
        .map_err(|e| {
            LogError::Tampered(format!(
                "the served log is not consistent with the kept checkpoint ({} -> {}): {e}",
                kept.size, served.size
            ))
        })?;
    }
    Ok(Growth {
        origin: served.origin,
        kept_size: kept.size,
        served_size: served.size,
        served_root: served.root_hash,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tlog::entry::{hashedrekord_body, EntryKind};
    use crate::tlog::{open_database, Log, LogReader, NewEntry};
    use private_ca::{Curve, SigningKey};

    struct Fixture {
        _dir: tempfile::TempDir,
        conn: rusqlite::Connection,
        log: Log,
        notes: Vec<String>,
    }

    fn fixture(url: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_database(&dir.path().join("log.db")).unwrap();
        let log = Log::new(SigningKey::generate(Curve::P256).unwrap(), url);
        log.initialize(&conn).unwrap();
        Fixture {
            _dir: dir,
            conn,
            log,
            notes: Vec::new(),
        }
    }

    fn grow(f: &mut Fixture, n: u64) {
        let start = LogReader::new(&f.conn).size().unwrap();
        let batch_no = f.notes.len() as u64;
        let entries: Vec<NewEntry> = (start..start + n)
            .map(|i| {
                let digest = crate::crypto::sha256(&[i, batch_no].map(u64::to_be_bytes).concat());
                NewEntry {
                    kind: EntryKind::HashedRekord,
                    body: hashedrekord_body(&digest, b"sig", b"cert"),
                    artifact_sha256: digest,
                }
            })
            .collect();
        let tx = f.conn.transaction().unwrap();
        let batch = f.log.append_batch(&tx, &entries, 1_700_000_000).unwrap();
        tx.commit().unwrap();
        f.notes.push(batch.checkpoint.note);
    }

    fn proof(f: &Fixture, old: u64, new: u64) -> Vec<Hash> {
        LogReader::new(&f.conn).consistency_proof(old, new).unwrap()
    }

    fn key(f: &Fixture) -> Vec<VerifyingKey> {
        vec![f.log.public_key().unwrap()]
    }

    #[test]
    fn grown_log_is_consistent_with_the_kept_checkpoint() {
        let mut f = fixture("https://tlog.example.internal");
        grow(&mut f, 3);
        grow(&mut f, 5);
        let g = check_growth(&f.notes[0], &f.notes[1], &proof(&f, 3, 8), &key(&f)).unwrap();
        assert_eq!((g.kept_size, g.served_size), (3, 8));
        let same = check_growth(&f.notes[1], &f.notes[1], &[], &key(&f)).unwrap();
        assert_eq!(same.served_size, 8);
    }

    #[test]
    fn served_truncation_is_refused() {
        let mut f = fixture("https://tlog.example.internal");
        grow(&mut f, 3);
        grow(&mut f, 5);
        let e = check_growth(&f.notes[1], &f.notes[0], &[], &key(&f)).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn served_fork_at_the_same_size_is_refused() {
        // Two trees of the same size signed by the same log key: a fork.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.key");
        SigningKey::generate(Curve::P256)
            .unwrap()
            .save_new(&path)
            .unwrap();
        let url = "https://tlog.example.internal";
        let with_key = || {
            let mut f = fixture(url);
            f.log = Log::new(
                SigningKey::load(&path, Curve::P256, "log key").unwrap(),
                url,
            );
            let d = tempfile::tempdir().unwrap();
            f.conn = open_database(&d.path().join("log.db")).unwrap();
            f.log.initialize(&f.conn).unwrap();
            f._dir = d;
            f
        };
        let mut a = with_key();
        let mut b = with_key();
        grow(&mut a, 3);
        grow(&mut b, 1);
        grow(&mut b, 2);
        let e = check_growth(&a.notes[0], &b.notes[1], &[], &key(&a)).unwrap_err();
        assert!(e.to_string().contains("forked"), "{e}");
    }

    #[test]
    fn wrong_consistency_proof_is_refused() {
        let mut f = fixture("https://tlog.example.internal");
        grow(&mut f, 3);
        grow(&mut f, 5);
        let mut p = proof(&f, 3, 8);
        p[0][0] ^= 1;
        let e = check_growth(&f.notes[0], &f.notes[1], &p, &key(&f)).unwrap_err();
        assert!(e.to_string().contains("not consistent"), "{e}");
    }

    #[test]
    fn checkpoint_of_another_log_key_is_refused() {
        let mut f = fixture("https://tlog.example.internal");
        grow(&mut f, 3);
        let mut other = fixture("https://tlog.example.internal");
        grow(&mut other, 4);
        let e = check_growth(&f.notes[0], &other.notes[0], &[], &key(&f)).unwrap_err();
        assert!(e.to_string().contains("served checkpoint"), "{e}");
        let e = check_growth(&f.notes[0], &f.notes[0], &[], &key(&other)).unwrap_err();
        assert!(e.to_string().contains("kept checkpoint"), "{e}");
    }

    #[test]
    fn proof_body_is_parsed_strictly_and_bounded() {
        let h = hex::encode([7u8; 32]);
        let ok = format!(r#"{{"rootHash":"{h}","hashes":["{h}"]}}"#);
        assert_eq!(parse_proof(ok.as_bytes()).unwrap().1.len(), 1);
        let extra = format!(r#"{{"rootHash":"{h}","hashes":[],"x":1}}"#);
        assert!(parse_proof(extra.as_bytes()).is_err());
        let short = r#"{"rootHash":"00","hashes":[]}"#;
        assert!(parse_proof(short.as_bytes()).is_err());
        let many: Vec<String> = (0..=MAX_PROOF_HASHES).map(|_| format!("\"{h}\"")).collect();
        let big = format!(r#"{{"rootHash":"{h}","hashes":[{}]}}"#, many.join(","));
        assert!(parse_proof(big.as_bytes()).is_err());
    }
}
