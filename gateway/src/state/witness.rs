//! Witnesses the log's checkpoints may be cosigned by, and the cosignatures
//! received (append-only, one per witness and tree size), each verified
//! against the exact checkpoint text airgate signed before it is stored.

use rusqlite::{params, Connection};

use crate::encoding::b64_encode;
use crate::escape::quoted;
use crate::tlog::checkpoint::{Checkpoint, SignedNote};
use crate::tlog::cosignature::{self, WitnessKey};
use crate::tlog::{LogError, LogReader};
use crate::{Error, Result};

fn sql(e: rusqlite::Error) -> Error {
    LogError::from(e).into()
}

/// Enrolls a witness; a malformed key or a second key under one name is a
/// usage error.
pub fn add(conn: &Connection, vkey: &str, now: &str) -> Result<WitnessKey> {
    let key = cosignature::parse_vkey(vkey)
        .map_err(|e| Error::Usage(format!("witness key {}: {e}", quoted(vkey.trim()))))?;
    let inserted = conn
        .execute(
            "INSERT OR IGNORE INTO witnesses (name, vkey, added_at) VALUES (?1, ?2, ?3)",
            params![key.name, key.vkey, now],
        )
        .map_err(sql)?;
    if inserted == 0 {
        return Err(Error::Usage(format!(
            "a witness named {} is already enrolled",
            quoted(&key.name)
        )));
    }
    Ok(key)
}

/// The enrolled witnesses.
pub fn witnesses(conn: &Connection) -> Result<Vec<WitnessKey>> {
    let mut stmt = conn
        .prepare_cached("SELECT vkey FROM witnesses ORDER BY name")
        .map_err(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql)?;
    rows.map(|v| {
        let v = v.map_err(sql)?;
        cosignature::parse_vkey(&v).map_err(|e| {
            LogError::Tampered(format!("stored witness key {}: {e}", quoted(&v))).into()
        })
    })
    .collect()
}

/// The stored cosignature lines for the checkpoint of `size`.
pub fn cosignature_lines(conn: &Connection, size: u64) -> Result<Vec<String>> {
    if !super::queries::table_exists(conn, "checkpoint_cosignatures")? {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT line FROM checkpoint_cosignatures WHERE tree_size = ?1 ORDER BY witness",
        )
        .map_err(sql)?;
    let lines = stmt
        .query_map([size as i64], |r| r.get(0))
        .map_err(sql)?
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(sql)?;
    Ok(lines)
}

/// Audits every stored cosignature: its witness is enrolled, the checkpoint
/// it cosigns is one this log signed (`reader`), and the line verifies with
/// the witness key at its recorded time. Returns how many were checked.
pub fn audit(conn: &Connection, reader: &LogReader<'_>) -> Result<u64> {
    if !super::queries::table_exists(conn, "checkpoint_cosignatures")? {
        return Ok(0);
    }
    let tampered = |m: String| Error::Log(LogError::Tampered(m));
    let witnesses = witnesses(conn)?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT tree_size, witness, line, cosigned_at FROM checkpoint_cosignatures ORDER BY tree_size, witness",
        )
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql)?;
    let mut checked = 0u64;
    for row in rows {
        let (size, name, line, time) = row.map_err(sql)?;
        let what = format!(
            "the stored cosignature of witness {} for the checkpoint of size {size}",
            quoted(&name)
        );
        let w = witnesses
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| tampered(format!("{what}: no such witness is enrolled")))?;
        let ours = u64::try_from(size)
            .ok()
            .and_then(|s| reader.checkpoint(s).ok())
            .ok_or_else(|| tampered(format!("{what}: this log holds no such checkpoint")))?;
        let text = SignedNote::parse(&ours.note)
            .map_err(|e| tampered(format!("{what}: our checkpoint: {e}")))?
            .text;
        let note = SignedNote::parse(&format!("{text}\n{line}\n"))
            .map_err(|e| tampered(format!("{what}: {e}")))?;
        let sig = note
            .signatures
            .first()
            .ok_or_else(|| tampered(format!("{what}: not a signature line")))?;
        let at =
            cosignature::verify(w, sig, &text).map_err(|e| tampered(format!("{what}: {e}")))?;
        if i64::try_from(at).ok() != Some(time) {
            return Err(tampered(format!(
                "{what}: it signs time {at}, the record says {time}"
            )));
        }
        checked += 1;
    }
    Ok(checked)
}

/// What a submission of cosignatures did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Submission {
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// Witnesses whose cosignature verified and is now stored.
    pub accepted: Vec<String>,
    /// Witnesses whose cosignature for this checkpoint was already stored.
    pub already: Vec<String>,
    /// Signature lines by names that are not enrolled witnesses (airgate's own included).
    pub ignored: Vec<String>,
    /// Enrolled witnesses whose cosignature did not verify, with why.
    pub rejected: Vec<(String, String)>,
}

/// Verifies and stores the cosignatures a cosigned checkpoint `note`
/// carries. The note's text must be a checkpoint this log signed; `Err`
/// when it is not, or when no cosignature verified.
pub fn submit(conn: &Connection, note: &str) -> Result<Submission> {
    let refuse = |why: String| Error::Usage(format!("cosigned checkpoint refused: {why}"));
    let parsed = SignedNote::parse(note).map_err(|e| refuse(e.to_string()))?;
    let checkpoint = Checkpoint::parse(&parsed.text).map_err(|e| refuse(e.to_string()))?;
    let ours = match LogReader::new(conn).checkpoint(checkpoint.size) {
        Ok(cp) => cp,
        Err(LogError::NoCheckpoint(size)) => {
            return Err(refuse(format!(
                "this log signed no checkpoint of size {size}"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let ours_text = SignedNote::parse(&ours.note)
        .map_err(|e| refuse(e.to_string()))?
        .text;
    if ours_text != parsed.text {
        return Err(refuse(format!(
            "its text is not the checkpoint of size {} this log signed",
            checkpoint.size
        )));
    }
    let witnesses = witnesses(conn)?;
    let mut out = Submission {
        tree_size: checkpoint.size,
        ..Submission::default()
    };
    for sig in &parsed.signatures {
        let Some(w) = witnesses
            .iter()
            .find(|w| w.name == sig.name && w.key_hint == sig.key_hint)
        else {
            out.ignored.push(sig.name.clone());
            continue;
        };
        match cosignature::verify(w, sig, &parsed.text) {
            Err(why) => out.rejected.push((w.name.clone(), why)),
            Ok(time) => {
                let mut raw = sig.key_hint.to_vec();
                raw.extend_from_slice(&sig.signature);
                let line = format!("\u{2014} {} {}", sig.name, b64_encode(&raw));
                let stored = conn
                    .execute(
                        "INSERT OR IGNORE INTO checkpoint_cosignatures (tree_size, witness, line, cosigned_at) VALUES (?1, ?2, ?3, ?4)",
                        params![checkpoint.size as i64, w.name, line, time as i64],
                    )
                    .map_err(sql)?;
                if stored == 1 {
                    &mut out.accepted
                } else {
                    &mut out.already
                }
                .push(w.name.clone());
            }
        }
    }
    if out.accepted.is_empty() && out.already.is_empty() {
        let why = match out.rejected.first() {
            Some((name, why)) => {
                format!("the cosignature of {} does not verify: {why}", quoted(name))
            }
            None => "it carries no cosignature by an enrolled witness".into(),
        };
        return Err(refuse(why));
    }
    Ok(out)
}

/// The note of the checkpoint of `size` with its stored cosignatures
/// appended (as C2SP notes carry them: more signature lines).
pub fn cosigned_note(conn: &Connection, note: &str, size: u64) -> Result<String> {
    let mut out = note.to_string();
    for line in cosignature_lines(conn, size)? {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}
