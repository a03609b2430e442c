//! Mutation fuzzing of the three verifiers that read hostile bytes: bundle
//! verification, TUF snapshot verification and the log audit. Each run
//! mutates a real input (a conformance bundle, a file of the production TUF
//! mirror, a row of a real log), verifies it in-process, and counts the
//! outcomes. A panic, or an accepted mutant that means something else than
//! the original, fails the test.
//!
//! `cargo test` replays a fixed seed set (a few hundred runs per target).
//! For a long run: `AIRGATE_FUZZ_RUNS=20000 cargo test --release --test tests fuzz:: -- --nocapture`
//! (seeds are derived from the run number, so a failure names its seed).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gateway::bundle::{
    ArtifactDigest, BundleLimits, IdentityPolicy, Matcher, ParsedBundle, SignerPolicy, TrustedRoot,
    Verifier,
};

use crate::common::fixtures;

/// Runs per target: `$AIRGATE_FUZZ_RUNS`, or a quick replay.
fn runs(quick: u64) -> u64 {
    std::env::var("AIRGATE_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(quick)
}

/// xorshift64*: deterministic, seeded per run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"0",
    b"-1",
    b"18446744073709551616",
    b"\"\"",
    b"null",
    b"[]",
    b"{}",
    b"true",
    b"\"AAAA\"",
    b"\"=\"",
    b"1e999",
    b"\"\\u0000\"",
    b"\"\\u001b[2K\"",
    b"9999999999",
];

/// One mutation of `input`: a bit flip, a byte insertion or deletion, a
/// splice of an interesting token, a copied span, or a truncation.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let steps = 1 + rng.below(3);
    for _ in 0..steps {
        if out.is_empty() {
            out.push(b'{');
        }
        let at = rng.below(out.len());
        match rng.below(7) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => out.insert(at, rng.next() as u8),
            2 => {
                out.remove(at);
            }
            3 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.splice(at..end, token.iter().copied());
            }
            4 => {
                let len = 1 + rng.below(32);
                let from = rng.below(out.len());
                let span: Vec<u8> = out[from..(from + len).min(out.len())].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, span);
            }
            5 => out.truncate(at),
            _ => {
                // A digit changed inside a number or base64 run.
                if out[at].is_ascii_alphanumeric() {
                    out[at] = b"0123456789ABCDEFabcdef+/"[rng.below(24)];
                }
            }
        }
    }
    out
}

/// What the runs of one target came to.
#[derive(Default, Debug)]
struct Tally {
    runs: u64,
    rejected: u64,
    accepted_same: u64,
    accepted_different: Vec<u64>,
    panics: Vec<u64>,
}

impl Tally {
    fn report(&self, target: &str) {
        eprintln!(
            "fuzz {target}: {} runs, {} rejected, {} accepted unchanged in meaning, {} accepted with another meaning {:?}, {} panics {:?}",
            self.runs,
            self.rejected,
            self.accepted_same,
            self.accepted_different.len(),
            self.accepted_different,
            self.panics.len(),
            self.panics
        );
        assert!(
            self.panics.is_empty(),
            "{target}: panics at seeds {:?}",
            self.panics
        );
        assert!(
            self.accepted_different.is_empty(),
            "{target}: mutants that mean something else were accepted at seeds {:?}",
            self.accepted_different
        );
        assert!(
            self.rejected > 0,
            "{target}: nothing was rejected: the fuzzer is broken"
        );
    }
}

/// Outcome of one run: rejected, or accepted with what it means.
enum Outcome<M> {
    Rejected,
    Accepted(M),
}

fn fuzz<M: PartialEq>(
    target: &str,
    quick: u64,
    baseline: &M,
    run: &dyn Fn(&mut Rng) -> Outcome<M>,
) {
    let mut tally = Tally::default();
    for seed in 0..runs(quick) {
        tally.runs += 1;
        let mut rng = Rng::new(seed ^ 0xA1F6_A7E5);
        match catch_unwind(AssertUnwindSafe(|| run(&mut rng))) {
            Err(_) => tally.panics.push(seed),
            Ok(Outcome::Rejected) => tally.rejected += 1,
            Ok(Outcome::Accepted(meaning)) if &meaning == baseline => tally.accepted_same += 1,
            Ok(Outcome::Accepted(_)) => tally.accepted_different.push(seed),
        }
    }
    tally.report(target);
}

fn conformance(case: &str) -> Vec<u8> {
    std::fs::read(
        fixtures()
            .join("conformance/bundle-verify")
            .join(case)
            .join("bundle.sigstore.json"),
    )
    .unwrap()
}

fn prod_root() -> TrustedRoot {
    TrustedRoot::from_json(
        &std::fs::read(fixtures().join(
            "tuf-sigstore-prod/targets/6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66.trusted_root.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

/// What a verified bundle means: signer, log index, times, content type.
fn meaning(v: &gateway::bundle::VerifiedBundle) -> String {
    format!(
        "{:?}|{}|{}|{:?}|{:?}|{:?}",
        v.signer, v.log_index, v.log_id, v.integrated_time, v.timestamps, v.predicate_type
    )
}

#[test]
fn fuzz_bundle_verification_replay() {
    let a_txt = std::fs::read(fixtures().join("conformance/bundle-verify/a.txt")).unwrap();
    let digest = ArtifactDigest::of_bytes(&a_txt);
    let policy = SignerPolicy::identity(IdentityPolicy {
        identity: Matcher::regex("^https://github.com/sigstore-conformance/").unwrap(),
        issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
    });
    let verifier = Verifier::without_checkpoint_cache(prod_root());
    let now = "2026-08-22T00:00:00Z".parse().unwrap();
    for case in [
        "happy-path-v0.3",
        "happy-path-v0.1",
        "happy-path-intoto-in-dsse-v3",
    ] {
        let original = conformance(case);
        let check = |bytes: &[u8]| -> Outcome<String> {
            match ParsedBundle::from_json(bytes, &BundleLimits::default())
                .map_err(|_| ())
                .and_then(|p| verifier.verify(&p, &digest, &policy, now).map_err(|_| ()))
            {
                Ok(v) => Outcome::Accepted(meaning(&v)),
                Err(()) => Outcome::Rejected,
            }
        };
        let Outcome::Accepted(baseline) = check(&original) else {
            panic!("{case} does not verify unmutated");
        };
        fuzz(&format!("verify {case}"), 200, &baseline, &|rng| {
            check(&mutate(rng, &original))
        });
    }
}

/// Copies a directory tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fuzz_tuf_snapshot_verification_replay() {
    let mirror = fixtures().join("tuf-sigstore-prod");
    let pinned = gateway::tuf_repo::PRODUCTION_ROOT;
    let at = "2026-08-22T00:00:00Z".parse().unwrap();
    let limits = gateway::tuf_repo::Limits::default();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("repo");
    copy_tree(&mirror, &work);
    let files = files_of(&work);
    let originals: BTreeMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();
    let check = || -> Outcome<String> {
        match gateway::tuf_repo::verify_snapshot(pinned, &work, at, None, &limits) {
            Ok(v) => Outcome::Accepted(format!(
                "{:?}|{}",
                v.versions,
                hex::encode(gateway::crypto::sha256(&v.trusted_root_json))
            )),
            Err(_) => Outcome::Rejected,
        }
    };
    let Outcome::Accepted(baseline) = check() else {
        panic!("the production mirror does not verify unmutated");
    };
    // What verification reads: the roots after the embedded one (v12), the
    // top-level metadata and the targets it verifies.
    let targets: Vec<&PathBuf> = files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let root_version = name
                .strip_suffix(".root.json")
                .and_then(|v| v.parse::<u64>().ok());
            match root_version {
                Some(v) => v > 12,
                None => name.ends_with(".json") && !name.contains("registry.npmjs.org"),
            }
        })
        .collect();
    fuzz("tuf verify", 120, &baseline, &|rng| {
        let path = targets[rng.below(targets.len())];
        let mutant = mutate(rng, &originals[path]);
        std::fs::write(path, &mutant).unwrap();
        let outcome = check();
        if std::env::var_os("AIRGATE_FUZZ_DEBUG").is_some()
            && matches!(outcome, Outcome::Accepted(_))
        {
            let orig = &originals[path];
            let at = orig
                .iter()
                .zip(&mutant)
                .position(|(a, b)| a != b)
                .unwrap_or(orig.len().min(mutant.len()));
            eprintln!(
                "accepted mutant of {}: at {at}: {:?} -> {:?}",
                path.display(),
                String::from_utf8_lossy(&orig[at.saturating_sub(10)..(at + 20).min(orig.len())]),
                String::from_utf8_lossy(
                    &mutant[at.saturating_sub(10)..(at + 20).min(mutant.len())]
                )
            );
        }
        std::fs::write(path, &originals[path]).unwrap();
        outcome
    });
}

#[test]
fn fuzz_log_audit_replay() {
    let world = crate::world::World::new(3);
    let (medium, out) = world.export("m.tar", &[]);
    assert!(out.status.success());
    let out = world.import(&[&medium], &[]);
    assert!(out.status.success());
    let db = world.high.join(gateway::state::DATABASE);
    // A pristine copy (checkpointed, no WAL) to restore after every run.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let pristine = std::fs::read(&db).unwrap();
    let audit = || -> Outcome<String> {
        match gateway::state::StateReader::open(&world.high).and_then(|r| r.audit()) {
            Ok(a) => Outcome::Accepted(format!(
                "{}|{}|{}",
                a.size,
                a.checkpoints,
                hex::encode(a.root_hash)
            )),
            Err(_) => Outcome::Rejected,
        }
    };
    let Outcome::Accepted(baseline) = audit() else {
        panic!("the log does not verify unmutated");
    };
    // What the audit vouches for: the log's tables and the records' references to it.
    let columns: &[(&str, &str)] = &[
        ("tlog_entries", "body"),
        ("tlog_entries", "integrated_time"),
        ("tlog_entries", "set_signature"),
        ("tlog_entries", "kind"),
        ("tlog_entries", "artifact_sha256"),
        ("tlog_entries", "idx"),
        ("tlog_nodes", "hash"),
        ("tlog_nodes", "idx"),
        ("tlog_nodes", "level"),
        ("tlog_checkpoints", "note"),
        ("tlog_checkpoints", "root_hash"),
        ("tlog_checkpoints", "tree_size"),
        ("tlog_meta", "value"),
        ("artifacts", "log_index"),
        ("artifacts", "sha256"),
        ("imports", "checkpoint_size"),
    ];
    fuzz("log verify", 150, &baseline, &|rng| {
        std::fs::write(&db, &pristine).unwrap();
        let _ = std::fs::remove_file(db.with_extension("db-wal"));
        let _ = std::fs::remove_file(db.with_extension("db-shm"));
        let (table, column) = columns[rng.below(columns.len())];
        let changed = {
            let conn = rusqlite::Connection::open(&db).unwrap();
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
            let keys: &[&str] = match table {
                "tlog_entries" => &["idx"],
                "tlog_nodes" => &["level", "idx"],
                "tlog_checkpoints" => &["tree_size"],
                "tlog_meta" => &["key"],
                "artifacts" => &["name", "import_id"],
                _ => &["id"],
            };
            let select = format!("SELECT {column}, {} FROM {table}", keys.join(", "));
            let rows: Vec<Vec<rusqlite::types::Value>> = conn
                .prepare(&select)
                .unwrap()
                .query_map([], |r| (0..=keys.len()).map(|i| r.get(i)).collect())
                .unwrap()
                .map(Result::unwrap)
                .collect();
            if rows.is_empty() {
                return Outcome::Rejected;
            }
            let row = &rows[rng.below(rows.len())];
            use rusqlite::types::Value as V;
            let value = &row[0];
            let new = match value {
                V::Integer(i) => V::Integer(i ^ (1 << rng.below(8))),
                V::Text(t) => {
                    V::Text(String::from_utf8_lossy(&mutate(rng, t.as_bytes())).into_owned())
                }
                V::Blob(b) => V::Blob(mutate(rng, b)),
                other => other.clone(),
            };
            let filter: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = ?{}", i + 2))
                .collect();
            let mut params: Vec<rusqlite::types::Value> = vec![new.clone()];
            params.extend(row[1..].iter().cloned());
            &new != value
                && conn
                    .execute(
                        &format!(
                            "UPDATE {table} SET {column} = ?1 WHERE {}",
                            filter.join(" AND ")
                        ),
                        rusqlite::params_from_iter(params),
                    )
                    .is_ok_and(|n| n == 1)
        };
        if !changed {
            // A no-op mutation means nothing: count it as rejected-equivalent.
            return Outcome::Rejected;
        }
        audit()
    });
    std::fs::write(&db, &pristine).unwrap();
}
