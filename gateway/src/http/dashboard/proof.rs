//! The log evidence an artifact page shows, checked when the page is
//! rendered: the latest checkpoint's signature by the log key (and its
//! origin), the entry's signed entry timestamp, the digest its signed body
//! records, and its inclusion proof against that checkpoint. Pure: the
//! caller reads the entry, the note and the proof from the database.

use crate::escape::quoted;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::entry::{derived_columns, set_payload};
use crate::tlog::merkle::{self, Hash};
use crate::tlog::{verify_note_by_any, StoredEntry};

/// A check's outcome: what was verified, or why it failed.
pub(super) type Check = Result<String, String>;

/// The log as the trusted root knows it.
#[derive(Clone, Copy)]
pub(super) struct LogKey<'a> {
    /// Every key of the log with its window in unix seconds (more than one
    /// after a log key rotation).
    pub keys: &'a [crate::tlog::OwnedLogKey],
    /// The signer name its checkpoints carry.
    pub name: &'a str,
    /// The origin line its checkpoints carry.
    pub origin: &'a str,
}

impl<'a> LogKey<'a> {
    fn all(&self) -> Vec<crate::tlog::LogKey<'a>> {
        self.keys
            .iter()
            .map(crate::tlog::OwnedLogKey::borrowed)
            .collect()
    }
}

/// Parses a signed checkpoint and checks the log's signature (by whichever
/// of its keys signed it) and origin on it.
pub(super) fn verify_checkpoint(note: &str, log: LogKey<'_>) -> Result<Checkpoint, String> {
    let cp = verify_note_by_any(note, log.name, &log.all())
        .map_err(|e| format!("the latest checkpoint {e}"))?;
    if cp.origin != log.origin {
        return Err(format!(
            "the latest checkpoint is of log {}, not {}",
            quoted(&cp.origin),
            quoted(log.origin)
        ));
    }
    Ok(cp)
}

/// The entry's signed entry timestamp verifies with the log key valid at
/// its integrated time.
pub(super) fn check_set(entry: &StoredEntry, log: LogKey<'_>) -> Check {
    let signed = log
        .all()
        .iter()
        .filter(|k| k.valid_at(entry.integrated_time))
        .any(|k| {
            let payload = set_payload(
                &entry.body,
                entry.integrated_time,
                &k.key.key_id(),
                entry.index,
            );
            k.key
                .verify_default(&payload, &entry.signed_entry_timestamp)
        });
    if signed {
        Ok(format!(
            "signed entry timestamp of entry {} verified with the log key",
            entry.index
        ))
    } else {
        Err(format!(
            "the signed entry timestamp of entry {} does not verify with the log key",
            entry.index
        ))
    }
}

/// The entry's signed body records the artifact's digest.
pub(super) fn check_body(body: &[u8], sha256_hex: &str) -> Check {
    match derived_columns(body) {
        Some((kind, Some(digest))) if hex::encode(digest) == sha256_hex => Ok(format!(
            "the signed {} body records sha256 {sha256_hex}",
            kind.kind()
        )),
        Some((kind, Some(digest))) => Err(format!(
            "the signed {} body records sha256 {}, not the artifact's {sha256_hex}",
            kind.kind(),
            hex::encode(digest)
        )),
        Some((kind, None)) => Err(format!(
            "the signed {} body does not record the artifact's digest",
            kind.kind()
        )),
        None => Err("the entry's body is neither a hashedrekord nor a dsse entry".into()),
    }
}

/// The entry's inclusion proof leads to the verified checkpoint's root.
pub(super) fn check_inclusion(entry: &StoredEntry, proof: &[Hash], cp: &Checkpoint) -> Check {
    let leaf = merkle::leaf_hash(&entry.body);
    match merkle::verify_inclusion(entry.index, cp.size, &leaf, proof, &cp.root_hash) {
        Ok(()) => Ok(format!(
            "inclusion proof verified against checkpoint of size {} (root {}, {} proof hashes)",
            cp.size,
            hex::encode(cp.root_hash),
            proof.len()
        )),
        Err(e) => Err(format!(
            "inclusion proof of entry {} failed against checkpoint of size {}: {e}",
            entry.index, cp.size
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::tlog::entry::{hashedrekord_body, EntryKind};
    use crate::tlog::{open_database, Log, LogReader, NewEntry};
    use private_ca::{Curve, SigningKey};

    struct Fixture {
        _dir: tempfile::TempDir,
        conn: rusqlite::Connection,
        log: Log,
        key: crate::tlog::OwnedLogKey,
    }

    /// A log of five hashedrekord entries (digest of entry i = [i; 32]), one checkpoint.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_database(&dir.path().join("log.db")).unwrap();
        let log = Log::new(
            SigningKey::generate(Curve::P256).unwrap(),
            "https://tlog.example.internal",
        );
        log.initialize(&conn).unwrap();
        let entries: Vec<NewEntry> = (0..5u8)
            .map(|i| NewEntry {
                kind: EntryKind::HashedRekord,
                body: hashedrekord_body(&[i; 32], b"sig", b"cert"),
                artifact_sha256: [i; 32],
            })
            .collect();
        let tx = conn.transaction().unwrap();
        log.append_batch(&tx, &entries, 1_700_000_000).unwrap();
        tx.commit().unwrap();
        let key = crate::tlog::OwnedLogKey {
            key: log.public_key().unwrap(),
            from: None,
            until: None,
        };
        Fixture {
            _dir: dir,
            conn,
            log,
            key,
        }
    }

    impl Fixture {
        fn key(&self) -> LogKey<'_> {
            LogKey {
                keys: std::slice::from_ref(&self.key),
                name: self.log.name(),
                origin: self.log.origin(),
            }
        }
    }

    #[test]
    fn a_genuine_entry_verifies_end_to_end() {
        let f = fixture();
        let reader = LogReader::new(&f.conn);
        let stored = reader.latest_checkpoint().unwrap().unwrap();
        let cp = verify_checkpoint(&stored.note, f.key()).unwrap();
        assert_eq!((cp.size, cp.root_hash), (5, stored.root_hash));
        for index in 0..5u64 {
            let entry = reader.entry(index).unwrap();
            let proof = reader.inclusion_proof(index, cp.size).unwrap();
            let text = check_inclusion(&entry, &proof, &cp).unwrap();
            assert!(
                text.starts_with("inclusion proof verified against checkpoint of size 5"),
                "{text}"
            );
            check_set(&entry, f.key()).unwrap();
            check_body(&entry.body, &hex::encode([index as u8; 32])).unwrap();
        }
    }

    #[test]
    fn a_wrong_proof_or_entry_fails_naming_why() {
        let f = fixture();
        let reader = LogReader::new(&f.conn);
        let stored = reader.latest_checkpoint().unwrap().unwrap();
        let cp = verify_checkpoint(&stored.note, f.key()).unwrap();
        let entry = reader.entry(2).unwrap();
        let mut proof = reader.inclusion_proof(2, cp.size).unwrap();
        proof[0][0] ^= 1;
        let err = check_inclusion(&entry, &proof, &cp).unwrap_err();
        assert!(err.contains("failed against checkpoint of size 5"), "{err}");
        assert!(check_inclusion(&entry, &proof[1..], &cp).is_err());

        let mut other = entry.clone();
        other.body = reader.entry(3).unwrap().body;
        let good = reader.inclusion_proof(2, cp.size).unwrap();
        assert!(check_inclusion(&other, &good, &cp).is_err());
        assert!(check_set(&other, f.key()).is_err());
        let err = check_body(&entry.body, &hex::encode([9u8; 32])).unwrap_err();
        assert!(err.contains("not the artifact's"), "{err}");
        assert!(check_body(b"{}", "00").is_err());
    }

    #[test]
    fn a_checkpoint_by_another_key_or_log_is_refused() {
        let f = fixture();
        let stored = LogReader::new(&f.conn)
            .latest_checkpoint()
            .unwrap()
            .unwrap();
        let stranger = SigningKey::generate(Curve::P256).unwrap();
        let stranger = [crate::tlog::OwnedLogKey {
            key: crate::crypto::VerifyingKey::from_spki_der(stranger.public_key_spki()).unwrap(),
            from: None,
            until: None,
        }];
        let key = LogKey {
            keys: &stranger,
            ..f.key()
        };
        assert!(verify_checkpoint(&stored.note, key).is_err());
        let key = LogKey {
            origin: "elsewhere - 1",
            ..f.key()
        };
        let err = verify_checkpoint(&stored.note, key).unwrap_err();
        assert!(err.contains("is of log"), "{err}");
        let tampered = stored.note.replacen("\n5\n", "\n6\n", 1);
        assert!(verify_checkpoint(&tampered, f.key()).is_err());
    }
}
