//! `airgate bench media`: export and import against their named baselines, in one run.
//!
//! - export of one large artifact vs `tar -cf` of the same file and `openssl dgst -sha256`;
//! - import of the same medium vs `tar -xf`, `sync`, `openssl dgst -sha256`
//!   (as durable as the import, which syncs the filesystem before committing);
//! - import of many small artifacts vs `tar -xf` of the same medium and `sync`.
//!
//! Peak RSS is read from `/proc/<pid>/status` (VmHWM) of the airgate child process.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use clap::Args;
use gateway::crypto::{pem_encode, VerifyingKey};
use gateway::demo::SimulatedUpstream;
use gateway::private_ca::{init_ceremony, CaConfig, Ed25519SigningKey};
use gateway::state::StateDir;

/// Media benchmark.
#[derive(Args)]
pub struct MediaBench {
    /// Working directory (needs about 5x --size free space).
    #[arg(long)]
    dir: PathBuf,
    /// Size of the large artifact (e.g. 2G).
    #[arg(long, default_value = "2G")]
    size: String,
    /// Number of small artifacts for the many-files import.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Size of each small artifact in bytes.
    #[arg(long, default_value_t = 4096)]
    small_size: usize,
    /// Skip the large-artifact part.
    #[arg(long)]
    no_large: bool,
    /// Skip the many-files part.
    #[arg(long)]
    no_small: bool,
    /// Keep the working files (for inspection).
    #[arg(long)]
    keep: bool,
    /// Alternating rounds per comparison (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Another airgate build (e.g. the commit before a change) whose import of the
    /// same many-files medium is timed in the same rounds, alternating, each into
    /// a state its own `ca init` made.
    #[arg(long, value_name = "EXE")]
    baseline_exe: Option<PathBuf>,
}

pub(super) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Another high-side state trusting the same upstream and exporter.
pub(super) fn fresh_high(root: &Path, round: usize, s: &Sides) -> anyhow::Result<PathBuf> {
    let high = root.join(format!("high-{round}"));
    init_ceremony(
        &high,
        CaConfig::with_defaults("bench enclave"),
        SystemTime::now(),
    )?;
    std::fs::copy(s.high.join("policy.toml"), high.join("policy.toml"))?;
    std::fs::copy(
        s.high.join("upstream-tuf-root.json"),
        high.join("upstream-tuf-root.json"),
    )?;
    let policy = std::fs::read_to_string(high.join("policy.toml"))?
        .replace(&s.high.display().to_string(), &high.display().to_string());
    std::fs::write(high.join("policy.toml"), policy)?;
    let state = StateDir::open(&high)?;
    let pem = std::fs::read_to_string(s.key.with_file_name("exporter.pub.pem"))?;
    let public = VerifyingKey::from_pem(&pem).map_err(|e| anyhow::anyhow!("{e}"))?;
    state.enroll("bench", &public, "2026-01-01T00:00:00Z")?;
    Ok(high)
}

/// A high-side state made by `exe`'s own CLI (`ca init`, `exporter enroll`),
/// trusting the same upstream and exporter as `s.high`.
fn high_made_by(exe: &Path, high: &Path, s: &Sides) -> anyhow::Result<()> {
    let status = Command::new(exe)
        .args(["ca", "init", "--state"])
        .arg(high)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("{} ca init failed", exe.display());
    }
    std::fs::copy(
        s.high.join("upstream-tuf-root.json"),
        high.join("upstream-tuf-root.json"),
    )?;
    // The many-files medium carries no image: an `images` rule line is
    // left out so builds from before container images read the policy.
    let policy = std::fs::read_to_string(s.high.join("policy.toml"))?
        .replace(&s.high.display().to_string(), &high.display().to_string())
        .replace("images = [\"**\"]\n", "");
    std::fs::write(high.join("policy.toml"), policy)?;
    let status = Command::new(exe)
        .args(["exporter", "enroll", "--state"])
        .arg(high)
        .args(["--name", "bench"])
        .arg(s.key.with_file_name("exporter.pub.pem"))
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("{} exporter enroll failed", exe.display());
    }
    Ok(())
}

pub(super) struct Run {
    /// Wall time.
    pub(super) elapsed: Duration,
    /// Peak RSS of the child (VmHWM), KiB.
    pub(super) peak_rss_kib: u64,
}

pub(super) fn run(cmd: &mut Command) -> anyhow::Result<Run> {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path) {
            if let Some(v) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
            {
                peak = peak.max(v);
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        bail!("{cmd:?} failed: {err}");
    }
    Ok(Run {
        elapsed,
        peak_rss_kib: peak,
    })
}

pub(super) fn sh(script: &str) -> anyhow::Result<Run> {
    run(Command::new("sh").args(["-c", script]))
}

/// The simulated upstream, the exporter key, the low-side policy and a high side.
pub(super) struct Sides {
    pub(super) upstream: SimulatedUpstream,
    pub(super) key: PathBuf,
    pub(super) policy: PathBuf,
    pub(super) high: PathBuf,
}

pub(super) fn sides(root: &Path) -> anyhow::Result<Sides> {
    let now = SystemTime::now();
    let upstream = SimulatedUpstream::create(&root.join("upstream"), now)?;
    let key_dir = root.join("key");
    std::fs::create_dir_all(&key_dir)?;
    let key = Ed25519SigningKey::generate()?;
    key.save_new(&key_dir.join("exporter.key.pem"))?;
    std::fs::write(
        key_dir.join("exporter.pub.pem"),
        pem_encode("PUBLIC KEY", key.public_key_spki()),
    )?;
    let policy = root.join("policy.toml");
    std::fs::write(&policy, upstream.low_side_policy()?)?;
    let high = root.join("high");
    init_ceremony(&high, CaConfig::with_defaults("bench enclave"), now)?;
    let pinned = high.join("upstream-tuf-root.json");
    std::fs::copy(&upstream.tuf_root, &pinned)?;
    std::fs::write(high.join("policy.toml"), upstream.high_side_policy(&pinned))?;
    let state = StateDir::open(&high)?;
    let public =
        VerifyingKey::from_spki_der(key.public_key_spki()).map_err(|e| anyhow::anyhow!("{e}"))?;
    state.enroll("bench", &public, "2026-01-01T00:00:00Z")?;
    Ok(Sides {
        upstream,
        key: key_dir.join("exporter.key.pem"),
        policy,
        high,
    })
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

impl MediaBench {
    /// Runs the benchmark.
    pub fn run(mut self) -> anyhow::Result<ExitCode> {
        let exe = std::env::current_exe()?;
        std::fs::create_dir_all(&self.dir)?;
        // Policies written below name paths relative to their own directory:
        // a relative --dir would be resolved twice.
        self.dir = std::path::absolute(&self.dir)?;
        if !self.no_large {
            let size = crate::cmd::export::parse_size(&self.size).context("--size")?;
            self.large(&exe, size)?;
        }
        if !self.no_small {
            self.small(&exe)?;
        }
        Ok(ExitCode::SUCCESS)
    }

    fn large(&self, exe: &Path, size: u64) -> anyhow::Result<()> {
        let root = self.dir.join("large");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("artifacts"))?;
        let s = sides(&root)?;
        let artifact = root.join("artifacts/big.bin");
        write_pseudorandom(&artifact, size)?;
        s.upstream
            .sign_files(std::slice::from_ref(&artifact), SystemTime::now())?;
        println!(
            "large artifact: {} bytes ({:.2} GiB)",
            size,
            size as f64 / (1u64 << 30) as f64
        );
        // Warm the page cache equally for everyone.
        sh(&format!("cat {} > /dev/null", artifact.display()))?;

        // Alternate baseline and airgate runs (syncing in between) and take medians,
        // so neither side inherits the other's dirty pages or a cold cache.
        let rounds = self.rounds.max(1);
        let tar_out = root.join("baseline.tar");
        let medium = root.join("medium.tar");
        let mut tar_times = Vec::new();
        let mut export_runs = Vec::new();
        for _ in 0..rounds {
            let _ = Command::new("sync").status();
            let _ = std::fs::remove_file(&tar_out);
            tar_times.push(
                sh(&format!(
                    "tar -cf {} -C {} artifacts/big.bin",
                    tar_out.display(),
                    root.display()
                ))?
                .elapsed,
            );
            let _ = std::fs::remove_file(&tar_out);
            let _ = Command::new("sync").status();
            let _ = std::fs::remove_file(&medium);
            export_runs.push(run(Command::new(exe)
                .args(["export", "--policy"])
                .arg(&s.policy)
                .arg("--artifacts")
                .arg(root.join("artifacts"))
                .arg("--key")
                .arg(&s.key)
                .args(["--exporter", "bench", "--out"])
                .arg(&medium))?);
        }
        let _ = Command::new("sync").status();
        let dgst = sh(&format!("openssl dgst -sha256 {}", artifact.display()))?;
        let tar = median(tar_times);
        let export_peak = export_runs
            .iter()
            .map(|r| r.peak_rss_kib)
            .max()
            .unwrap_or(0);
        let export = median(export_runs.iter().map(|r| r.elapsed).collect());
        println!("medians of {rounds} alternating runs, `sync` between runs");
        println!(
            "tar -cf (baseline):           {:>6.2} s  {:>5.2} GB/s",
            tar.as_secs_f64(),
            gbps(size, tar)
        );
        println!(
            "openssl dgst -sha256:         {:>6.2} s  {:>5.2} GB/s",
            dgst.elapsed.as_secs_f64(),
            gbps(size, dgst.elapsed)
        );
        println!(
            "airgate export (verify + pack + hash): {:>6.2} s  {:>5.2} GB/s  peak RSS {:.1} MiB",
            export.as_secs_f64(),
            gbps(size, export),
            export_peak as f64 / 1024.0
        );
        println!(
            "RATIO export throughput / tar -cf = {:.2}x",
            tar.as_secs_f64() / export.as_secs_f64()
        );

        self.large_import(&root, exe, &medium, &s)?;
        if !self.keep {
            let _ = std::fs::remove_dir_all(&root);
        }
        Ok(())
    }

    /// The large medium imported into fresh states vs `tar -xf` + `sync` +
    /// `openssl dgst`, alternating.
    fn large_import(
        &self,
        root: &Path,
        exe: &Path,
        medium: &Path,
        s: &Sides,
    ) -> anyhow::Result<()> {
        let rounds = self.rounds.max(1);
        // Import of the same medium vs tar -xf followed by openssl dgst, into fresh states.
        let mut base_times = Vec::new();
        let mut import_runs = Vec::new();
        for round in 0..rounds {
            // Nothing is deleted between timed runs: ext4 scans recently
            // deleted inodes when it creates files, so a deletion just before
            // one side's run would slow that side alone.
            let extract = root.join(format!("extract-{round}"));
            std::fs::create_dir_all(&extract)?;
            let _ = Command::new("sync").status();
            base_times.push(
                sh(&format!(
                    "tar -xf {} -C {} && sync && openssl dgst -sha256 {}/artifacts/big.bin",
                    medium.display(),
                    extract.display(),
                    extract.display()
                ))?
                .elapsed,
            );
            let high = if round == 0 {
                s.high.clone()
            } else {
                fresh_high(root, round, s)?
            };
            let _ = Command::new("sync").status();
            import_runs.push(run(Command::new(exe)
                .args(["import", "--state"])
                .arg(&high)
                .arg(medium))?);
        }
        let base = median(base_times);
        let import_peak = import_runs
            .iter()
            .map(|r| r.peak_rss_kib)
            .max()
            .unwrap_or(0);
        let import = median(import_runs.iter().map(|r| r.elapsed).collect());
        println!(
            "tar -xf + sync + openssl dgst (baseline, durable): {:>6.2} s",
            base.as_secs_f64()
        );
        println!(
            "airgate import (verify + stage + re-sign + store, durable): {:>6.2} s  peak RSS {:.1} MiB",
            import.as_secs_f64(),
            import_peak as f64 / 1024.0
        );
        println!(
            "RATIO import time / (tar -xf + sync + openssl dgst) = {:.2}x",
            import.as_secs_f64() / base.as_secs_f64()
        );
        Ok(())
    }

    fn small(&self, exe: &Path) -> anyhow::Result<()> {
        let root = self.dir.join("small");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("artifacts"))?;
        let s = sides(&root)?;
        let mut files = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let path = root.join(format!("artifacts/pkg-{i:06}.bin"));
            let mut data = format!("small artifact {i}\n").into_bytes();
            data.resize(self.small_size, b'.');
            std::fs::write(&path, data)?;
            files.push(path);
        }
        let t = Instant::now();
        s.upstream.sign_files(&files, SystemTime::now())?;
        println!(
            "\n{} small artifacts of {} bytes (upstream signing took {:.1} s)",
            self.count,
            self.small_size,
            t.elapsed().as_secs_f64()
        );
        let medium = root.join("medium.tar");
        let export = run(Command::new(exe)
            .args(["export", "--policy"])
            .arg(&s.policy)
            .arg("--artifacts")
            .arg(root.join("artifacts"))
            .arg("--key")
            .arg(&s.key)
            .args(["--exporter", "bench", "--out"])
            .arg(&medium))?;
        println!(
            "airgate export of {} artifacts: {:.2} s",
            self.count,
            export.elapsed.as_secs_f64()
        );
        let rounds = self.rounds.max(1);
        let mut xf_times = Vec::new();
        let mut import_runs = Vec::new();
        let mut baseline_runs = Vec::new();
        for round in 0..rounds {
            // As for the large medium: nothing deleted between timed runs.
            let extract = root.join(format!("extract-{round}"));
            std::fs::create_dir_all(&extract)?;
            let _ = Command::new("sync").status();
            xf_times.push(
                sh(&format!(
                    "tar -xf {} -C {} && sync",
                    medium.display(),
                    extract.display()
                ))?
                .elapsed,
            );
            let mut order: Vec<(&Path, &mut Vec<Run>)> = vec![(exe, &mut import_runs)];
            if let Some(base) = &self.baseline_exe {
                order.push((base.as_path(), &mut baseline_runs));
            }
            if round % 2 == 1 {
                order.reverse();
            }
            for (which, (binary, runs)) in order.into_iter().enumerate() {
                let high = root.join(format!("high-{round}-{which}"));
                high_made_by(binary, &high, &s)?;
                let _ = Command::new("sync").status();
                runs.push(run(Command::new(binary)
                    .args(["import", "--state"])
                    .arg(&high)
                    .arg(&medium))?);
            }
        }
        let xf = median(xf_times);
        println!("medians of {rounds} alternating runs, `sync` between runs");
        println!(
            "tar -xf + sync (baseline, durable):  {:>6.2} s",
            xf.as_secs_f64()
        );
        let import = summarize(&import_runs);
        println!(
            "airgate import (re-verify {n} bundles, re-sign and attest {n} artifacts, log, store): {:>6.2} s  peak RSS {:.1} MiB",
            import.elapsed.as_secs_f64(),
            import.peak_rss_kib as f64 / 1024.0,
            n = self.count
        );
        if let Some(base) = &self.baseline_exe {
            let b = summarize(&baseline_runs);
            println!(
                "baseline import ({}):  {:>6.2} s  peak RSS {:.1} MiB",
                base.display(),
                b.elapsed.as_secs_f64(),
                b.peak_rss_kib as f64 / 1024.0
            );
            println!(
                "RATIO import / baseline import = {:.3}x (rounds: {})",
                import.elapsed.as_secs_f64() / b.elapsed.as_secs_f64(),
                paired(&import_runs, &baseline_runs)
            );
        }
        println!(
            "RATIO import / (tar -xf + sync) = {:.2}x; import time: {:.2} s",
            import.elapsed.as_secs_f64() / xf.as_secs_f64(),
            import.elapsed.as_secs_f64()
        );
        if !self.keep {
            let _ = std::fs::remove_dir_all(&root);
        }
        Ok(())
    }
}

/// The median time and the highest peak RSS of `runs`.
pub(super) fn summarize(runs: &[Run]) -> Run {
    Run {
        elapsed: median(runs.iter().map(|r| r.elapsed).collect()),
        peak_rss_kib: runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0),
    }
}

/// Each round's two times, `a/b s`, for the record.
pub(super) fn paired(a: &[Run], b: &[Run]) -> String {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            format!(
                "{:.2}/{:.2}",
                x.elapsed.as_secs_f64(),
                y.elapsed.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `size` bytes of cheap pseudo-random data (incompressible enough,
/// each MiB block numbered) to `path`.
pub(super) fn write_pseudorandom(path: &Path, size: u64) -> anyhow::Result<()> {
    write_pseudorandom_seeded(path, size, 0)
}

/// [`write_pseudorandom`] from another seed (different seeds, different bytes).
pub(super) fn write_pseudorandom_seeded(path: &Path, size: u64, seed: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    let mut written = 0u64;
    let mut i = 0u64;
    while written < size {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        written += n as u64;
        i += 1;
    }
    f.flush()?;
    Ok(())
}
