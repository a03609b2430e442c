//! `airgate log verify` never says OK over a damaged log: each test damages
//! the database behind airgate's back (triggers dropped, as with the sqlite3
//! shell) and expects a refusal naming what is wrong.

use std::path::PathBuf;

use crate::common::{airgate, stderr};
use crate::world::World;

/// A high side with two imports (so truncating the last keeps a log).
fn two_imports() -> (World, String) {
    let world = World::new(3);
    let (first, out) = world.export("first.tar", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = world.import(&[&first], &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = report["checkpoint"].as_str().unwrap().to_string();
    let name = "pkg-extra.bin";
    std::fs::write(world.artifacts.join(name), b"another artifact\n").unwrap();
    world
        .upstream
        .sign_files(&[world.artifacts.join(name)], std::time::SystemTime::now())
        .unwrap();
    let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let second = world.export_at("second.tar", &later);
    let out = world.import(&[&second], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    (world, kept)
}

fn verify(world: &World, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["log", "verify", "--state", world.high.to_str().unwrap()];
    args.extend_from_slice(extra);
    airgate(args)
}

fn refused(world: &World, extra: &[&str], expect: &str) {
    let out = verify(world, extra);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "log verify said OK over a damaged log: {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
}

/// Opens the database with the append-only triggers dropped.
fn tamper(world: &World) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(world.high.join("state.db")).unwrap();
    let triggers: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in triggers {
        conn.execute_batch(&format!("DROP TRIGGER {t}")).unwrap();
    }
    conn
}

fn size(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM tlog_entries", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn intact_log_verifies_with_its_kept_checkpoint() {
    let (world, kept) = two_imports();
    let file = world.root().join("kept-checkpoint");
    std::fs::write(&file, &kept).unwrap();
    let out = verify(&world, &["--checkpoint", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("log OK") && text.contains("consistent with the checkpoint"),
        "{text}"
    );
}

#[test]
fn every_checkpoint_deleted() {
    let (world, _) = two_imports();
    tamper(&world)
        .execute_batch("DELETE FROM tlog_checkpoints")
        .unwrap();
    refused(&world, &[], "checkpoint");
}

#[test]
fn last_entry_its_nodes_and_checkpoint_deleted_while_records_point_at_it() {
    let (world, _) = two_imports();
    let conn = tamper(&world);
    let last = size(&conn) - 1;
    conn.execute("DELETE FROM tlog_entries WHERE idx = ?1", [last])
        .unwrap();
    // The leaf, and every node whose range included it.
    for level in 0..20 {
        conn.execute(
            "DELETE FROM tlog_nodes WHERE level = ?1 AND idx = ?2",
            rusqlite::params![level, last >> level],
        )
        .unwrap();
    }
    conn.execute("DELETE FROM tlog_checkpoints WHERE tree_size > ?1", [last])
        .unwrap();
    drop(conn);
    refused(&world, &[], "log integrity violation");
}

#[test]
fn consistent_truncation_is_caught_by_a_checkpoint_kept_elsewhere() {
    let (world, _) = two_imports();
    // Keep the latest checkpoint outside "the host".
    let out = airgate(["log", "checkpoint", "--state", world.high.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = world.root().join("kept");
    std::fs::write(&kept, &out.stdout).unwrap();
    // Remove the whole second import, its entries, nodes and checkpoint:
    // what remains is a consistent, smaller log.
    let conn = tamper(&world);
    let first_size: i64 = conn
        .query_row(
            "SELECT checkpoint_size FROM imports WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch(
        "DELETE FROM artifacts WHERE import_id = 2; DELETE FROM imports WHERE id = 2",
    )
    .unwrap();
    conn.execute("DELETE FROM tlog_entries WHERE idx >= ?1", [first_size])
        .unwrap();
    conn.execute(
        "DELETE FROM tlog_checkpoints WHERE tree_size > ?1",
        [first_size],
    )
    .unwrap();
    let mut nodes: Vec<(i64, i64)> = conn
        .prepare("SELECT level, idx FROM tlog_nodes")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    nodes.retain(|(level, idx)| ((idx + 1) << level) > first_size);
    for (level, idx) in nodes {
        conn.execute(
            "DELETE FROM tlog_nodes WHERE level = ?1 AND idx = ?2",
            rusqlite::params![level, idx],
        )
        .unwrap();
    }
    drop(conn);
    // From inside the database this cannot be told from a smaller log...
    let out = verify(&world, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // ...but the kept checkpoint proves the log once was larger.
    refused(
        &world,
        &["--checkpoint", kept.to_str().unwrap()],
        "truncated",
    );
}

#[test]
fn stored_nodes_deleted() {
    let (world, _) = two_imports();
    tamper(&world)
        .execute_batch("DELETE FROM tlog_nodes")
        .unwrap();
    refused(&world, &[], "nodes were removed");
}

#[test]
fn derived_kind_and_artifact_digest_columns_edited() {
    let (world, _) = two_imports();
    tamper(&world)
        .execute_batch("UPDATE tlog_entries SET kind = 'dsse' WHERE idx = 0")
        .unwrap();
    refused(&world, &[], "kind column");
    let (world, _) = two_imports();
    tamper(&world)
        .execute(
            // idx 1 is the first artifact's attestation (a dsse entry records only
            // its payload's hash); idx 2 the second artifact's signature.
            "UPDATE tlog_entries SET artifact_sha256 = ?1 WHERE idx = 2",
            [vec![0u8; 32]],
        )
        .unwrap();
    refused(&world, &[], "artifact_sha256 column");
}

#[test]
fn log_metadata_edited_or_deleted() {
    let (world, _) = two_imports();
    tamper(&world)
        .execute_batch("UPDATE tlog_meta SET value = 'tlog.evil.example - 1' WHERE key = 'origin'")
        .unwrap();
    refused(&world, &[], "origin");
    let (world, _) = two_imports();
    tamper(&world)
        .execute_batch("DELETE FROM tlog_meta WHERE key = 'log_id'")
        .unwrap();
    refused(&world, &[], "log_id");
}

#[test]
fn database_failing_its_integrity_check() {
    let (world, _) = two_imports();
    let conn = tamper(&world);
    // The index no longer matches its table: integrity_check reports it.
    conn.execute_batch(
        "PRAGMA writable_schema = ON; \
         UPDATE sqlite_master SET sql = 'CREATE INDEX tlog_entries_by_artifact ON tlog_entries(integrated_time)' \
         WHERE name = 'tlog_entries_by_artifact'; \
         PRAGMA writable_schema = OFF;",
    )
    .unwrap();
    drop(conn);
    refused(&world, &[], "integrity_check");
}

#[test]
fn kept_checkpoint_of_another_log_or_forged() {
    let (world, kept) = two_imports();
    let other = World::new(1);
    let (m, out) = other.export("m.tar", &[]);
    assert!(out.status.success());
    let out = other.import(&[&m], &["--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let foreign: PathBuf = world.root().join("foreign");
    std::fs::write(&foreign, report["checkpoint"].as_str().unwrap()).unwrap();
    refused(
        &world,
        &["--checkpoint", foreign.to_str().unwrap()],
        "checkpoint",
    );
    let forged = world.root().join("forged");
    std::fs::write(&forged, kept.replacen('\n', "\n1", 1)).unwrap();
    refused(
        &world,
        &["--checkpoint", forged.to_str().unwrap()],
        "checkpoint",
    );
}
