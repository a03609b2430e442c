//! `airgate bench log`: durable appends/s of the private transparency log
//! (each entry with its SET signed, one checkpoint per batch) against plain
//! rusqlite inserts of the same rows with the same durability settings, and
//! inclusion-proof latency at the final tree size.
//!
//! With `--report-acks` it instead appends until killed, printing
//! `acked <size>` after each commit (the crash test drives it with kill -9).

use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use gateway::private_ca::{Curve, SigningKey};
use gateway::tlog::entry::{hashedrekord_body, EntryKind};
use gateway::tlog::{merkle, open_database, Log, LogReader, NewEntry};
use rusqlite::params;

/// Log append and proof benchmark.
#[derive(Args)]
pub struct LogBench {
    /// Directory for the databases (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Entries appended in batches.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u64,
    /// Entries per batch (one transaction, one checkpoint).
    #[arg(long, default_value_t = 1000)]
    batch: u64,
    /// Entries appended one per transaction (each with its own checkpoint).
    #[arg(long, default_value_t = 2000)]
    single: u64,
    /// Inclusion proofs to time at the final size.
    #[arg(long, default_value_t = 2000)]
    proofs: u64,
    /// Crash-test mode: append batches forever, printing `acked <size>` after each commit.
    #[arg(long)]
    report_acks: bool,
}

fn body(i: u64, cert: &[u8], sig: &[u8]) -> NewEntry {
    let digest = gateway::crypto::sha256(&i.to_be_bytes());
    NewEntry {
        kind: EntryKind::HashedRekord,
        body: hashedrekord_body(&digest, sig, cert),
        artifact_sha256: digest,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

impl LogBench {
    /// Runs the benchmark.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let tmp;
        let dir = match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                d.clone()
            }
            None => {
                tmp = tempfile::tempdir()?;
                tmp.path().to_path_buf()
            }
        };
        // Realistic bodies: a real P-256 certificate-sized PEM and signature.
        let ca_dir = dir.join("ca");
        if !ca_dir.join("ca.json").exists() {
            gateway::private_ca::init_ceremony(
                &ca_dir,
                gateway::private_ca::CaConfig::with_defaults("bench"),
                std::time::SystemTime::now(),
            )?;
        }
        let ca = gateway::private_ca::PrivateCa::load(&ca_dir)?;
        let leaf = ca.issue_leaf(
            &gateway::private_ca::LeafRequest {
                identity: gateway::private_ca::SigningIdentity::parse(
                    "https://airgate.internal/bench",
                )?,
                custody: None,
            },
            std::time::SystemTime::now(),
        )?;
        let sig = leaf.key.sign(b"bench")?;
        let cert = leaf.certificate_der;
        let key = || SigningKey::load(&ca_dir.join("tlog.key.pem"), Curve::P256, "tlog");

        if self.report_acks {
            let log = Log::new(key()?, &ca.config().tlog_url);
            return self.crash_mode(&ca_dir, log, &cert, &sig);
        }

        let now = 1_700_000_000;
        let single_rate = self.single_rate(&dir, key()?, &cert, &sig, now)?;
        let log = Log::new(key()?, "https://tlog.airgate.internal");
        let batch_db = dir.join("batched.db");
        let (conn, batched_rate) = self.batched_rate(&batch_db, &log, &cert, &sig, now)?;
        let raw_rate = self.raw_rate(&dir, &cert, &sig, now)?;
        let (size, times) = self.proof_times(&conn)?;
        let db_size = std::fs::metadata(&batch_db).map(|m| m.len()).unwrap_or(0);

        println!(
            "log benchmark ({} entries of {} bytes, batches of {}, WAL + synchronous=FULL)",
            self.entries,
            body(0, &cert, &sig).body.len(),
            self.batch
        );
        println!("single durable appends (1 entry + SET + checkpoint per transaction): {single_rate:>9.0} appends/s");
        println!("batched durable appends (SET per entry, 1 checkpoint per batch):     {batched_rate:>9.0} appends/s");
        println!("raw rusqlite inserts of the same rows, same durability:               {raw_rate:>9.0} rows/s");
        println!(
            "RATIO batched appends / raw inserts = {:.2}x",
            batched_rate / raw_rate
        );
        println!(
            "inclusion proof at {size} entries: median {:.1} us, p99 {:.1} us (database {:.1} MiB)",
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
            db_size as f64 / (1 << 20) as f64
        );
        Ok(ExitCode::SUCCESS)
    }

    /// Single durable appends (1 entry, its SET and a checkpoint per transaction).
    fn single_rate(
        &self,
        dir: &Path,
        key: SigningKey,
        cert: &[u8],
        sig: &[u8],
        now: i64,
    ) -> anyhow::Result<f64> {
        let single_db = dir.join("single.db");
        let _ = std::fs::remove_file(&single_db);
        let mut conn = open_database(&single_db)?;
        let log = Log::new(key, "https://tlog.airgate.internal");
        log.initialize(&conn)?;
        let start = Instant::now();
        for i in 0..self.single {
            let tx = conn.transaction()?;
            log.append_batch(&tx, &[body(i, cert, sig)], now)?;
            tx.commit()?;
        }
        let single_rate = self.single as f64 / start.elapsed().as_secs_f64();
        drop(conn);

        Ok(single_rate)
    }

    /// Batched durable appends (a SET per entry, one checkpoint per batch).
    fn batched_rate(
        &self,
        batch_db: &Path,
        log: &Log,
        cert: &[u8],
        sig: &[u8],
        now: i64,
    ) -> anyhow::Result<(rusqlite::Connection, f64)> {
        let _ = std::fs::remove_file(batch_db);
        let mut conn = open_database(batch_db)?;
        log.initialize(&conn)?;
        let mut appended = 0u64;
        let mut append_time = Duration::ZERO;
        while appended < self.entries {
            let n = self.batch.min(self.entries - appended);
            let entries: Vec<NewEntry> = (appended..appended + n)
                .map(|i| body(i, cert, sig))
                .collect();
            let t = Instant::now();
            let tx = conn.transaction()?;
            log.append_batch(&tx, &entries, now)?;
            tx.commit()?;
            append_time += t.elapsed();
            appended += n;
            if appended % 100_000 < self.batch {
                eprint!("\r  appended {appended}/{}", self.entries);
            }
        }
        eprintln!();
        let batched_rate = self.entries as f64 / append_time.as_secs_f64();

        Ok((conn, batched_rate))
    }

    /// Raw baseline: the same rows (entries + nodes + one checkpoint row per
    /// batch), same pragmas and batch size, no hashing or signing.
    fn raw_rate(&self, dir: &Path, cert: &[u8], sig: &[u8], now: i64) -> anyhow::Result<f64> {
        // same pragmas and batch size, no hashing or signing.
        let raw_db = dir.join("raw.db");
        let _ = std::fs::remove_file(&raw_db);
        let mut raw = open_database(&raw_db)?;
        raw.execute_batch(
            "CREATE TABLE e (idx INTEGER PRIMARY KEY, kind TEXT NOT NULL, body BLOB NOT NULL, \
             integrated_time INTEGER NOT NULL, set_signature BLOB NOT NULL, artifact_sha256 BLOB NOT NULL);
             CREATE INDEX e_art ON e(artifact_sha256);
             CREATE TABLE n (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx)) WITHOUT ROWID;
             CREATE TABLE c (tree_size INTEGER PRIMARY KEY, root_hash BLOB NOT NULL, note TEXT NOT NULL);",
        )?;
        let fake_set = vec![0x30u8; 71];
        let mut done = 0u64;
        let mut raw_time = Duration::ZERO;
        while done < self.entries {
            let n = self.batch.min(self.entries - done);
            let entries: Vec<NewEntry> = (done..done + n).map(|i| body(i, cert, sig)).collect();
            let t = Instant::now();
            let tx = raw.transaction()?;
            {
                let mut ie = tx.prepare_cached("INSERT INTO e VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
                let mut inn = tx.prepare_cached("INSERT INTO n VALUES (?1, ?2, ?3)")?;
                for (k, e) in entries.iter().enumerate() {
                    let idx = done + k as u64;
                    ie.execute(params![
                        idx as i64,
                        "hashedrekord",
                        e.body,
                        now,
                        fake_set,
                        e.artifact_sha256.as_slice()
                    ])?;
                    // Same node rows as the log writes: one per completed level.
                    let mut level = 0u32;
                    let mut node = idx;
                    inn.execute(params![0, idx as i64, e.artifact_sha256.as_slice()])?;
                    while node & 1 == 1 {
                        level += 1;
                        node >>= 1;
                        inn.execute(params![level, node as i64, e.artifact_sha256.as_slice()])?;
                    }
                }
                tx.execute(
                    "INSERT INTO c VALUES (?1, ?2, ?3)",
                    params![(done + n) as i64, [0u8; 32].as_slice(), "x".repeat(200)],
                )?;
            }
            tx.commit()?;
            raw_time += t.elapsed();
            done += n;
        }
        let raw_rate = self.entries as f64 / raw_time.as_secs_f64();

        Ok(raw_rate)
    }

    /// Inclusion proof latencies at the final size, each proof verified.
    fn proof_times(&self, conn: &rusqlite::Connection) -> anyhow::Result<(u64, Vec<Duration>)> {
        let reader = LogReader::new(conn);
        let size = reader.size()?;
        let root = reader.root(size)?;
        let mut times = Vec::with_capacity(self.proofs as usize);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..self.proofs {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let index = x % size;
            let t = Instant::now();
            let proof = reader.inclusion_proof(index, size)?;
            times.push(t.elapsed());
            let e = reader.entry(index)?;
            merkle::verify_inclusion(index, size, &merkle::leaf_hash(&e.body), &proof, &root)
                .context("benchmark proof does not verify")?;
        }
        times.sort();
        Ok((size, times))
    }

    /// Appends to the state database of the bench CA (`<dir>/ca/state.db`), so
    /// `airgate log verify --state <dir>/ca` audits it afterwards.
    fn crash_mode(
        &self,
        state_dir: &std::path::Path,
        log: Log,
        cert: &[u8],
        sig: &[u8],
    ) -> anyhow::Result<ExitCode> {
        // The state's own tables first, as every state directory has them.
        drop(gateway::state::StateDir::open(state_dir)?);
        let mut conn = open_database(&state_dir.join(gateway::state::DATABASE))?;
        log.initialize(&conn)?;
        let mut stdout = std::io::stdout();
        loop {
            let size = LogReader::new(&conn).size()?;
            let entries: Vec<NewEntry> = (size..size + self.batch)
                .map(|i| body(i, cert, sig))
                .collect();
            let tx = conn.transaction()?;
            // Integrated now: the audit checks each SET against the log key
            // valid at its time, and the key's window opened at `ca init`.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let batch = log.append_batch(&tx, &entries, now)?;
            tx.commit()?;
            writeln!(stdout, "acked {}", batch.checkpoint.size)?;
            stdout.flush()?;
        }
    }
}
