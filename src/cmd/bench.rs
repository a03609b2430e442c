//! `airgate bench`: measured performance against named baselines, in one run.
//!
//! `airgate bench verify` verifies real bundles in-process and, in the same
//! run, with sigstore-python's library, like for like: airgate on 1 thread vs
//! 1 sigstore-python process, and airgate on N threads vs N concurrent
//! sigstore-python processes (N = airgate's thread count); then where
//! airgate's time per bundle goes (each kind of signature verification, timed
//! alone, vs parsing and the rest), and one `airgate verify` process against
//! one `sigstore verify` process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gateway::bundle::{
    ArtifactDigest, BundleLimits, IdentityPolicy, ParsedBundle, SignerPolicy, TrustedRoot, Verifier,
};
use rayon::prelude::*;

#[path = "bench_signatures.rs"]
mod signatures;

/// Run a benchmark.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Bundle verification throughput vs sigstore-python (1 thread vs 1 process, N vs N).
    Verify(VerifyBench),
    /// Durable log appends (single and batched) vs raw rusqlite inserts; proof latency.
    Log(crate::cmd::bench_log::LogBench),
    /// Export and import vs tar -cf / tar -xf / openssl dgst.
    Media(crate::cmd::bench_media::MediaBench),
    /// Export and import of a large signed image vs `skopeo copy oci:A oci:B`; medium sizes of images sharing layers.
    Images(crate::cmd::bench_images::ImagesBench),
    /// `airgate serve` vs nginx on the same files, loopback: requests/s, p50/p99 and their ratio.
    Serve(crate::cmd::bench_serve::ServeBench),
}

#[derive(Args)]
struct VerifyBench {
    /// The third-party test data (holding conformance/ and trust-config/);
    /// by default the checkout's `tests/data`.
    #[arg(long, env = "AIRGATE_FIXTURES", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"))]
    fixtures: PathBuf,
    /// Seconds to run each in-process measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Python interpreter with `sigstore` installed (skip the comparison with
    /// --no-python); by default the interop venv that tests/run-all.sh makes.
    #[arg(long, env = "AIRGATE_PYTHON", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/.venv/bin/python"))]
    python: String,
    /// Skip the sigstore-python comparison.
    #[arg(long)]
    no_python: bool,
    /// Process runs for the one-process comparison.
    #[arg(long, default_value_t = 5)]
    process_runs: usize,
}

impl BenchArgs {
    /// Runs the benchmark.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.which {
            BenchCommand::Verify(b) => b.run(),
            BenchCommand::Log(b) => b.run(),
            BenchCommand::Media(b) => b.run(),
            BenchCommand::Serve(b) => b.run(),
            BenchCommand::Images(b) => b.run(),
        }
    }
}

struct BenchBundle {
    name: String,
    bundle_path: PathBuf,
    bundle: Vec<u8>,
    artifact_path: PathBuf,
    artifact: ArtifactDigest,
    identity: String,
    issuer: String,
    root_path: PathBuf,
    verifier: usize,
}

const PYTHON_BENCH: &str = r#"
import json, sys, time
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier, policy
seconds, items = float(sys.argv[1]), json.loads(sys.argv[2])
verifiers = {}
for i in items:
    if i["root"] not in verifiers:
        verifiers[i["root"]] = Verifier(trusted_root=TrustedRoot.from_file(i["root"]))
loaded = [(Bundle.from_json(open(i["bundle"], "rb").read()), open(i["artifact"], "rb").read(),
           policy.Identity(identity=i["identity"], issuer=i["issuer"]), i["bundle"], verifiers[i["root"]]) for i in items]
raw = {path: open(path, "rb").read() for _, _, _, path, _ in loaded}
def verify(verifier, data, bundle, pol):
    # DSSE bundles go through verify_dsse (sigstore-python's verify_artifact refuses them).
    if bundle._dsse_envelope is not None:
        verifier.verify_dsse(bundle, pol)
    else:
        verifier.verify_artifact(data, bundle, pol)
for b, data, pol, _, v in loaded:
    verify(v, data, b, pol)
# Start together with the other processes of the run.
print("ready", flush=True)
sys.stdin.readline()
n, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    for _, data, pol, path, v in loaded:
        # Parse the bundle each time, as airgate does.
        verify(v, data, Bundle.from_json(raw[path]), pol)
        n += 1
print(json.dumps({"verified": n, "seconds": time.perf_counter() - start}))
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

impl VerifyBench {
    /// Every real bundle of the conformance suite that should verify with an
    /// identity policy and that sigstore-python also verifies (so both sides
    /// verify the same set), each under its own trusted root.
    fn load(&self) -> anyhow::Result<(Vec<TrustedRoot>, Vec<PathBuf>, Vec<BenchBundle>)> {
        let tsv_path = self.fixtures.join("conformance/CASES.tsv");
        let tsv = std::fs::read_to_string(&tsv_path)
            .with_context(|| format!("reading {}", tsv_path.display()))?;
        let python_ok: std::collections::BTreeSet<String> = std::fs::read_to_string(
            self.fixtures
                .join("conformance/RESULTS-sigstore-python-4.5.1.tsv"),
        )
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.get(2) == Some(&"pass")).then(|| f[0].to_string())
        })
        .collect();
        let mut lines = tsv.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (
            Some(c_case),
            Some(c_exp),
            Some(c_bundle),
            Some(c_art),
            Some(c_root),
            Some(c_mode),
            Some(c_id),
            Some(c_iss),
        ) = (
            col("case"),
            col("expected"),
            col("bundle"),
            col("artifact"),
            col("trusted_root"),
            col("verify_mode"),
            col("identity"),
            col("issuer"),
        )
        else {
            bail!("{} lacks the expected columns", tsv_path.display());
        };
        let mut roots: Vec<TrustedRoot> = Vec::new();
        let mut root_paths: Vec<PathBuf> = Vec::new();
        let mut out = Vec::new();
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("");
            if get(c_exp) != "pass" || get(c_mode) != "identity" || !python_ok.contains(get(c_case))
            {
                continue;
            }
            let root_path = self.fixtures.join(get(c_root));
            let verifier = match root_paths.iter().position(|p| *p == root_path) {
                Some(i) => i,
                None => {
                    roots.push(TrustedRoot::from_json(&std::fs::read(&root_path)?)?);
                    root_paths.push(root_path.clone());
                    roots.len() - 1
                }
            };
            let bundle_path = self.fixtures.join(get(c_bundle));
            let artifact_path = self.fixtures.join(get(c_art));
            out.push(BenchBundle {
                name: get(c_case).to_string(),
                bundle: std::fs::read(&bundle_path)?,
                bundle_path,
                artifact: gateway::files::hash_file(&artifact_path)?,
                artifact_path,
                identity: get(c_id).to_string(),
                issuer: get(c_iss).to_string(),
                root_path,
                verifier,
            });
        }
        if out.is_empty() {
            bail!("no verifiable cases in {}", tsv_path.display());
        }
        Ok((roots, root_paths, out))
    }

    fn run(self) -> anyhow::Result<ExitCode> {
        let (roots, _, bundles) = self.load()?;
        let verifiers: Vec<Verifier> = roots
            .into_iter()
            .map(Verifier::without_checkpoint_cache)
            .collect();
        let now = chrono::Utc::now();
        let policies: Vec<SignerPolicy> = bundles
            .iter()
            .map(|b| SignerPolicy::identity(IdentityPolicy::exact(&b.identity, &b.issuer)))
            .collect();
        for (b, p) in bundles.iter().zip(&policies) {
            verifiers[b.verifier]
                .verify_bytes(&b.bundle, &b.artifact, p, now)
                .with_context(|| format!("{} does not verify", b.name))?;
        }
        let threads = rayon::current_num_threads();
        println!(
            "bundles: {} real bundles (conformance cases sigstore-python also verifies), {} trusted roots; \
             {} s per measurement; N = {threads} (airgate's thread count, one per core)",
            bundles.len(),
            verifiers.len(),
            self.seconds
        );
        let work = || {
            for (b, p) in bundles.iter().zip(&policies) {
                let _ = verifiers[b.verifier].verify_bytes(&b.bundle, &b.artifact, p, now);
            }
            bundles.len() as u64
        };
        let items = serde_json::to_string(
            &bundles
                .iter()
                .map(|b| {
                    serde_json::json!({"bundle": b.bundle_path, "artifact": b.artifact_path,
                                       "identity": b.identity, "issuer": b.issuer, "root": b.root_path})
                })
                .collect::<Vec<_>>(),
        )?;
        // Like for like: 1 thread vs 1 process, then N threads vs N processes.
        let single = measure(self.seconds, 1, &work)?;
        let py_single = self.python_throughput(&items, 1)?;
        let all = measure(self.seconds, threads, &work)?;
        let py_all = self.python_throughput(&items, threads)?;
        let one = "airgate 1 thread / sigstore-python 1 process".to_string();
        let n = format!("airgate {threads} threads / sigstore-python {threads} processes");
        let width = one.len().max(n.len());
        if let (Some(py1), Some(pyn)) = (py_single, py_all) {
            println!(
                "RATIO per core:  {one:<width$} = {:.1}x  ({single:.0} vs {py1:.0} bundles/s)",
                single / py1
            );
            println!(
                "RATIO all cores: {n:<width$} = {:.1}x  ({all:.0} vs {pyn:.0} bundles/s)",
                all / pyn
            );
        }
        let row = |label: String, value: f64, note: String| {
            println!("{label:<40} {value:>8.0} bundles/s{note}");
        };
        row(
            "airgate in-process, 1 thread:".into(),
            single,
            String::new(),
        );
        row(
            format!("airgate in-process, {threads} threads:"),
            all,
            format!(" ({:.2}x its 1 thread)", all / single),
        );
        if let (Some(py1), Some(pyn)) = (py_single, py_all) {
            row(
                "sigstore-python library, 1 process:".into(),
                py1,
                String::new(),
            );
            row(
                format!("sigstore-python library, {threads} processes:"),
                pyn,
                format!(
                    " (summed; each verifies the whole set for {} s from a common start)",
                    self.seconds
                ),
            );
        }
        self.breakdown(&bundles, &verifiers, single)?;
        if !self.no_python {
            self.process_comparison(&bundles)?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// sigstore-python's library in `processes` concurrent processes, each
    /// verifying the whole set for `--seconds` from one common start; the
    /// sum of their bundles/s. None with --no-python.
    fn python_throughput(&self, items: &str, processes: usize) -> anyhow::Result<Option<f64>> {
        if self.no_python {
            return Ok(None);
        }
        let mut children = Children(Vec::new());
        for _ in 0..processes.max(1) {
            let child = Command::new(&self.python)
                .args(["-c", PYTHON_BENCH, &self.seconds.to_string(), items])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("running {}", self.python))?;
            children.0.push(child);
        }
        // Each loads and warms up, says "ready", then waits for "go".
        let mut outputs = Vec::new();
        for child in &mut children.0 {
            let mut out = BufReader::new(child.stdout.take().context("python stdout")?);
            let mut line = String::new();
            out.read_line(&mut line)?;
            if line.trim() != "ready" {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                bail!("sigstore-python benchmark failed (is `pip install sigstore` done?): {err}");
            }
            outputs.push(out);
        }
        for child in &mut children.0 {
            let stdin = child.stdin.as_mut().context("python stdin")?;
            stdin.write_all(b"go\n")?;
            stdin.flush()?;
        }
        let mut total = 0.0;
        for (child, mut out) in children.0.iter_mut().zip(outputs) {
            let mut text = String::new();
            out.read_to_string(&mut text)?;
            let status = child.wait()?;
            let v: serde_json::Value = serde_json::from_str(text.trim())
                .with_context(|| format!("sigstore-python printed {text:?} ({status})"))?;
            total += v["verified"].as_f64().unwrap_or(0.0) / v["seconds"].as_f64().unwrap_or(1.0);
        }
        Ok(Some(total))
    }

    /// Where one thread's time per bundle goes: every signature verification
    /// the verifier makes (rebuilt by `bench_signatures` with the same keys
    /// and calls, timed by kind), parsing, and the rest.
    fn breakdown(
        &self,
        bundles: &[BenchBundle],
        verifiers: &[Verifier],
        single: f64,
    ) -> anyhow::Result<()> {
        let budget = Duration::from_secs_f64((self.seconds as f64 / 10.0).max(0.3));
        let limits = BundleLimits::default();
        let parsed = bundles
            .iter()
            .map(|b| ParsedBundle::from_json(&b.bundle, &limits))
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_kind: BTreeMap<String, Vec<signatures::Check>> = BTreeMap::new();
        for (p, b) in parsed.iter().zip(bundles) {
            for check in signatures::inventory(p, verifiers[b.verifier].trusted_root(), &b.artifact)
            {
                by_kind.entry(check.kind.clone()).or_default().push(check);
            }
        }
        let n = bundles.len() as f64;
        let total_us = 1e6 / single;
        let parse_us = time_per_item(budget, bundles.len(), || {
            for b in bundles {
                let _ = ParsedBundle::from_json(&b.bundle, &limits);
            }
        });
        let mut rows = Vec::new();
        let mut sig_us = 0.0;
        let mut sig_count = 0.0;
        for (kind, checks) in &by_kind {
            let mut wrong = false;
            let each = time_per_item(budget, checks.len(), || {
                for c in checks {
                    wrong |= !c.run();
                }
            });
            if wrong {
                bail!("{kind}: a verification gave another result than the first time");
            }
            let per_bundle = checks.len() as f64 / n;
            sig_us += per_bundle * each;
            sig_count += per_bundle;
            rows.push((kind, per_bundle, each));
        }
        rows.sort_by(|a, b| (b.1 * b.2).total_cmp(&(a.1 * a.2)));
        let pct = |us: f64| 100.0 * us / total_us;
        let line = |label: &str, us: f64| {
            println!("  {label:<78} {us:>7.1} us  {:>3.0}%", pct(us));
        };
        println!("airgate's time per bundle, 1 thread (averaged over the set; same run):");
        line(
            "whole verification (1 / the 1-thread throughput above)",
            total_us,
        );
        line(
            &format!("signature verifications: {sig_count:.2} per bundle, each kind timed alone"),
            sig_us,
        );
        for (kind, per_bundle, each) in rows {
            println!(
                "    {per_bundle:.2} x {kind:<56} {each:>6.1} us each = {:>6.1} us",
                per_bundle * each
            );
        }
        line(
            "parsing (ParsedBundle::from_json: JSON, base64, X.509 leaf)",
            parse_us,
        );
        line(
            "the rest (policy, times, Merkle proof, SCT TBS, RFC 3161 parse, hashing)",
            total_us - sig_us - parse_us,
        );
        println!(
            "  signature-verification bound (aws-lc-rs, these keys): {:.0} bundles/s per core; airgate reaches {:.0}% of it",
            1e6 / sig_us.max(1e-9),
            100.0 * sig_us / total_us
        );
        Ok(())
    }

    fn process_comparison(&self, bundles: &[BenchBundle]) -> anyhow::Result<()> {
        let Some(b) = bundles
            .iter()
            .find(|b| b.name == "happy-path-v0.3")
            .or(bundles.first())
        else {
            return Ok(());
        };
        let exe = std::env::current_exe()?;
        let mut ours = Vec::new();
        for _ in 0..self.process_runs.max(1) * 4 {
            let start = Instant::now();
            let status = Command::new(&exe)
                .args(["verify", "--bundle"])
                .arg(&b.bundle_path)
                .arg("--trusted-root")
                .arg(&b.root_path)
                .args([
                    "--certificate-identity",
                    &b.identity,
                    "--certificate-oidc-issuer",
                    &b.issuer,
                ])
                .arg(&b.artifact_path)
                .output()?;
            ours.push(start.elapsed());
            if !status.status.success() {
                bail!(
                    "airgate verify failed: {}",
                    String::from_utf8_lossy(&status.stderr)
                );
            }
        }
        let trust_config = self
            .fixtures
            .join("trust-config/prod.clienttrustconfig.json");
        let mut theirs = Vec::new();
        for _ in 0..self.process_runs.max(1) {
            let start = Instant::now();
            let out = Command::new(&self.python)
                .args(["-m", "sigstore", "--trust-config"])
                .arg(&trust_config)
                .args(["verify", "identity", "--offline", "--bundle"])
                .arg(&b.bundle_path)
                .args([
                    "--cert-identity",
                    &b.identity,
                    "--cert-oidc-issuer",
                    &b.issuer,
                ])
                .arg(&b.artifact_path)
                .output()?;
            theirs.push(start.elapsed());
            if !out.status.success() {
                bail!(
                    "sigstore verify failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "one `airgate verify` process:        {:>8.1} ms (median)",
            ours.as_secs_f64() * 1e3
        );
        println!(
            "one `sigstore verify identity --offline` process: {:>8.1} ms (median)",
            theirs.as_secs_f64() * 1e3
        );
        println!(
            "RATIO process time: airgate / sigstore-python = 1/{:.0}",
            theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
        );
        Ok(())
    }
}

/// Runs `f` (which handles `items` items) repeatedly for `budget`; microseconds per item.
fn time_per_item(budget: Duration, items: usize, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        f();
        rounds += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / (rounds.max(1) as f64 * items.max(1) as f64)
}

/// Children killed (by their own handles) if the benchmark stops early.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs `work` on `threads` threads for `seconds`; returns operations per second.
fn measure(seconds: u64, threads: usize, work: &(dyn Fn() -> u64 + Sync)) -> anyhow::Result<f64> {
    let done = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| {
        (0..threads).into_par_iter().for_each(|_| {
            while Instant::now() < deadline {
                done.fetch_add(work(), Ordering::Relaxed);
            }
        })
    });
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
