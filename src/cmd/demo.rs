//! `airgate demo`: the whole low-to-high round trip on a SIMULATED upstream.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use anyhow::{bail, Context};
use clap::Args;
use gateway::demo::{
    write_conda_package, write_image_layout, ImageSigning, SimulatedUpstream, SIMULATED_IDENTITY,
};
use gateway::export::{export, ExportRequest};
use gateway::import::{import, ImportRequest};
use gateway::private_ca::{init_ceremony, CaConfig, Custody, Ed25519SigningKey};
use gateway::state::{blob_path, StateDir, StateReader};
use gateway::{crypto, Error};

/// Run a full low-to-high round trip on a simulated upstream Sigstore.
#[derive(Args)]
pub struct DemoArgs {
    /// Working directory (must be empty or absent; default: a new directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The repository the demo's image is carried as.
const DEMO_REPOSITORY: &str = "simulated/app";
/// The demo image's tag.
const DEMO_TAG: &str = "v1";

/// Number of steps the demo prints.
const STEPS: u32 = 9;

thread_local! {
    static STEP_STARTED: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Prints how long the previous step took, then the next step's title.
fn step(n: u32, text: &str) {
    finish_step();
    STEP_STARTED.with(|c| c.set(Some(std::time::Instant::now())));
    println!("\n[{n}/{STEPS}] {text}");
}

/// Prints the elapsed time of the step in progress, if any.
fn finish_step() {
    if let Some(started) = STEP_STARTED.with(|c| c.take()) {
        println!("      ({:.2} s)", started.elapsed().as_secs_f64());
    }
}

fn sample_artifacts(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("bin"))?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("app-1.0.0.tar.gz", (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect()),
        ("bin/app-linux-amd64", b"\x7fELF simulated binary for the airgate demo\n".repeat(1000)),
        (
            "app-1.0.0.spdx.json",
            br#"{"spdxVersion":"SPDX-2.3","name":"app-1.0.0","packages":[{"name":"app","versionInfo":"1.0.0"}]}"#.to_vec(),
        ),
    ];
    let mut out = Vec::new();
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::write(&path, data)?;
        out.push(path);
    }
    // A real conda package: served as a conda channel on the high side.
    out.push(write_conda_package(
        &dir.join("conda"),
        "app",
        "1.0.0",
        "0",
        "linux-64",
    )?);
    Ok(out)
}

impl DemoArgs {
    /// Runs the demo.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let dir = match self.dir {
            Some(d) => d,
            None => std::env::temp_dir().join(format!(
                "airgate-demo-{}",
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
            )),
        };
        if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
            bail!(Error::Usage(format!(
                "{} is not empty; give an empty or new --dir",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir)?;
        // Every later step joins paths onto `dir` and some run in other working
        // directories: resolve a relative --dir once, here.
        let dir = std::path::absolute(&dir)?;
        let result = round_trip(&dir);
        if result.is_err() {
            // Leave nothing half-built behind: a rerun with the same --dir works.
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => eprintln!("removed the half-built demo directory {}", dir.display()),
                Err(e) => eprintln!("could not remove {}: {e}", dir.display()),
            }
        }
        result
    }
}

/// Every step of the demo, in `dir` (absolute, empty).
fn round_trip(dir: &Path) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let now = SystemTime::now();
    println!(
        "== airgate demo: a full low-to-high round trip in {} ==",
        dir.display()
    );
    let (upstream, image) = upstream_release(dir, now)?;

    step(
        3,
        "Low side: exporter key, policy, export to a signed medium",
    );
    let (medium, key_dir, key) = low_side_export(dir, &upstream, now)?;

    let high = dir.join("high");
    high_side_setup(&high, &upstream, &key, &key_dir, now)?;
    let report = import_medium(&high, &medium)?;

    step(
        6,
        "Verify the re-signed artifacts with `airgate verify` against the PRIVATE trusted root",
    );
    let out_dir = dir.join("high-out");
    verify_re_signed(&exe, &high, &out_dir, &report)?;
    let ca = gateway::private_ca::PrivateCa::load(&high)?;

    audit_log(&high)?;

    step(
        8,
        "Private TUF repository distributing the enclave's trusted_root.json (what clients bootstrap from)",
    );
    private_tuf(&exe, &high)?;

    step(
        9,
        "Serve the enclave (airgate serve): a client fetches an artifact and its .sigs over HTTP and verifies them",
    );
    let first = report
        .artifacts
        .first()
        .map(|a| a.name.to_string())
        .unwrap_or_default();
    if !first.is_empty() {
        serve_and_fetch(
            &exe,
            &high,
            &first,
            &dir.join("client"),
            ca.config(),
            &image,
        )?;
    }
    finish_step();
    print_next(&high, &out_dir, ca.config(), &first, &medium, &key_dir);
    Ok(ExitCode::SUCCESS)
}

/// Steps 1 and 2: the simulated upstream Sigstore and its signed release.
fn upstream_release(dir: &Path, now: SystemTime) -> anyhow::Result<(SimulatedUpstream, DemoImage)> {
    step(
        1,
        "SIMULATED upstream Sigstore (a stand-in for sigstore.dev, NOT the public good instance):",
    );
    let upstream = SimulatedUpstream::create(&dir.join("upstream"), now)?;
    println!(
        "      CA + CT signer + transparency log: {}",
        upstream.ca_dir.display()
    );
    println!(
        "      TUF repository serving its trusted_root.json: {}",
        upstream.tuf_repo.display()
    );
    step(
        2,
        "Upstream release: sample artifacts signed by the simulated release workflow",
    );
    let artifacts_dir = dir.join("low/artifacts");
    let artifacts = sample_artifacts(&artifacts_dir)?;
    let bundles = upstream.sign_files(&artifacts, now)?;
    for (a, b) in artifacts.iter().zip(&bundles) {
        println!(
            "      {} + {}",
            a.display(),
            b.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
    }
    let image = upstream_image(dir, &upstream, now)?;
    println!("      signer: {SIMULATED_IDENTITY}");
    Ok((upstream, image))
}

/// The demo's container image: its digest upstream.
struct DemoImage {
    digest: String,
}

/// A SIMULATED multi-arch image, signed upstream in both cosign forms with
/// a SLSA provenance attestation, in an OCI layout.
fn upstream_image(
    dir: &Path,
    upstream: &SimulatedUpstream,
    now: SystemTime,
) -> anyhow::Result<DemoImage> {
    let layout = dir.join("low/images/app");
    let digest = write_image_layout(&layout, DEMO_TAG, b"SIMULATED base layer\n")?;
    upstream.sign_image(
        &layout,
        DEMO_REPOSITORY,
        DEMO_TAG,
        SIMULATED_IDENTITY,
        ImageSigning::ALL,
        now,
    )?;
    println!(
        "      {} (OCI layout): {DEMO_REPOSITORY}:{DEMO_TAG} {digest}, linux/amd64 + linux/arm64,",
        layout.display()
    );
    println!("        signed as cosign does: a .sig tag manifest, a bundle v0.3 referrer, a SLSA provenance referrer");
    Ok(DemoImage { digest })
}

/// Step 4: the CA ceremony, the pinned upstream root, the policy, the exporter.
fn high_side_setup(
    high: &Path,
    upstream: &SimulatedUpstream,
    key: &Ed25519SigningKey,
    key_dir: &Path,
    now: SystemTime,
) -> anyhow::Result<()> {
    step(
        4,
        "High side: private CA ceremony, exporter enrolled, high-side policy installed",
    );
    init_ceremony(high, CaConfig::with_defaults("airgate demo enclave"), now)?;
    let pinned = high.join("upstream-tuf-root.json");
    std::fs::copy(&upstream.tuf_root, &pinned)?;
    std::fs::write(high.join("policy.toml"), upstream.high_side_policy(&pinned))?;
    let state = StateDir::open(high)?;
    let public = crypto::VerifyingKey::from_spki_der(key.public_key_spki())
        .map_err(|e| Error::Usage(e.to_string()))?;
    state.enroll("demo-low-side", &public, &chrono::Utc::now().to_rfc3339())?;
    println!(
        "      state directory {} (private keys 0600, trusted_root.json, trust_config.json)",
        high.display()
    );
    println!(
        "      equivalent: airgate ca init --state {h} --name 'airgate demo enclave'; airgate exporter enroll --state {h} --name demo-low-side {}",
        key_dir.join("exporter.pub.pem").display(),
        h = high.display()
    );
    Ok(())
}

/// Step 5: the offline import.
fn import_medium(high: &Path, medium: &Path) -> anyhow::Result<gateway::import::ImportReport> {
    step(5, "Import, offline: medium signature and digests, TUF chain, every bundle under the high side's policy; re-sign; log");
    let mut state = StateDir::open(high)?;
    let report = import(
        &mut state,
        &ImportRequest {
            media: vec![medium.to_path_buf()],
            chunk_index: None,
            dry_run: false,
            now: chrono::Utc::now(),
        },
    )?;
    for a in &report.artifacts {
        println!(
            "      accepted {} (upstream {} #{}) -> private log index {}",
            a.name,
            a.upstream
                .as_ref()
                .map(|u| u.identity.as_str())
                .unwrap_or("?"),
            a.upstream.as_ref().map(|u| u.log_index).unwrap_or_default(),
            a.log_index.unwrap_or_default()
        );
    }
    for i in &report.images {
        let forms: Vec<&str> = i.signatures.iter().map(|s| s.form.as_str()).collect();
        println!(
            "      accepted image {} {} (upstream {}) -> re-signed as a .sig tag, a bundle referrer and a VSA referrer, private log index {}",
            i.reference,
            i.digest.as_deref().unwrap_or("?"),
            forms.join(" + "),
            i.log_index.unwrap_or_default()
        );
    }
    println!(
        "      equivalent: airgate import --state {} {}",
        high.display(),
        medium.display()
    );
    Ok(report)
}

/// Step 7: the log audit.
fn audit_log(high: &Path) -> anyhow::Result<()> {
    step(7, "Audit the private transparency log (airgate log verify)");
    let audit = StateReader::open(high)?.audit()?;
    println!(
        "      log OK: {} entries, {} checkpoints, root {}",
        audit.size,
        audit.checkpoints,
        hex::encode(audit.root_hash)
    );
    println!(
        "      equivalent: airgate log verify --state {}",
        high.display()
    );
    Ok(())
}

/// Step 3: the exporter key, the low side's policy and `airgate.toml`
/// (files and the image), and the signed medium.
fn low_side_export(
    dir: &Path,
    upstream: &SimulatedUpstream,
    now: SystemTime,
) -> anyhow::Result<(PathBuf, PathBuf, Ed25519SigningKey)> {
    let key_dir = dir.join("low/exporter-key");
    std::fs::create_dir_all(&key_dir)?;
    let key = Ed25519SigningKey::generate()?;
    key.save_new(&key_dir.join("exporter.key.pem"))?;
    let public_pem = crypto::pem_encode("PUBLIC KEY", key.public_key_spki());
    std::fs::write(key_dir.join("exporter.pub.pem"), &public_pem)?;
    let policy_path = dir.join("low/policy.toml");
    std::fs::write(&policy_path, upstream.low_side_policy()?)?;
    // The same configuration `airgate export --config` reads.
    let config_path = dir.join("low/airgate.toml");
    std::fs::write(
        &config_path,
        format!(
            "exporter = \"demo-low-side\"\npolicy = \"policy.toml\"\nartifacts = \"artifacts\"\n\n\
             [[image]]\nlayout = \"images/app\"\nrepository = \"{DEMO_REPOSITORY}\"\ntags = [\"{DEMO_TAG}\"]\n"
        ),
    )?;
    let config = gateway::export::ExportConfig::parse(
        &std::fs::read_to_string(&config_path)?,
        &dir.join("low"),
    )?;
    let transfer = dir.join("transfer");
    std::fs::create_dir_all(&transfer)?;
    let medium = transfer.join("media.tar");
    let no_env = |_: &str| None;
    let no_progress = |_: u64, _: u64| {};
    let report = export(&ExportRequest {
        policy_path: config.policy.clone().context("policy in airgate.toml")?,
        artifacts_dir: config.artifacts.clone(),
        collectors: Vec::new(),
        images: config.image.clone(),
        lock_path: None,
        frozen: false,
        exporter: config
            .exporter
            .clone()
            .context("exporter in airgate.toml")?,
        key: &key,
        out: medium.clone(),
        split: None,
        skip_rejected: false,
        sync: true,
        tuf_snapshot: None,
        tuf_mirror: None,
        now: now.into(),
        verify_at: now.into(),
        env: &no_env,
        progress: &no_progress,
    })?;
    for a in &report.accepted {
        println!(
            "      verified {} (signed by {}, upstream log index {})",
            a.name, a.upstream.identity, a.upstream.log_index
        );
    }
    for i in &report.images {
        let forms: Vec<&str> = i.signatures.iter().map(|s| s.form.as_str()).collect();
        println!(
            "      verified image {} {} ({} bytes; {}; attestations: {})",
            i.reference,
            i.digest,
            i.size,
            forms.join(" + "),
            i.attestations.join(", ")
        );
    }
    println!(
        "      medium {} ({} bytes, {} entries, TUF root v{}); equivalent: airgate export --config {} --key {} --out {}",
        medium.display(),
        report.medium_bytes,
        report.entries,
        report.tuf.root,
        config_path.display(),
        key_dir.join("exporter.key.pem").display(),
        medium.display()
    );
    Ok((medium, key_dir, key))
}

/// Step 6: each re-signed artifact written out with its bundle and `.sigs`,
/// then verified by `airgate verify` against the private trusted root.
fn verify_re_signed(
    exe: &Path,
    high: &Path,
    out_dir: &Path,
    report: &gateway::import::ImportReport,
) -> anyhow::Result<()> {
    let reader = StateReader::open(high)?;
    std::fs::create_dir_all(out_dir)?;
    let ca = gateway::private_ca::PrivateCa::load(high)?;
    for a in &report.artifacts {
        let (sigs, sha) = reader
            .artifact_sigs(&a.name)?
            .context("imported artifact row")?;
        let list: Vec<serde_json::Value> = serde_json::from_slice(&sigs)?;
        // [upstream, airgate signature, airgate VSA]
        let ours = list.get(1).context("our bundle")?;
        let vsa = list.get(2).context("our verification summary")?;
        let flat = a.name.replace('/', "_");
        let artifact_path = out_dir.join(&flat);
        std::fs::copy(blob_path(high, &sha), &artifact_path)?;
        let bundle_path = out_dir.join(format!("{flat}.sigstore.json"));
        std::fs::write(&bundle_path, serde_json::to_vec(ours)?)?;
        std::fs::write(out_dir.join(format!("{flat}.sigs")), &sigs)?;
        let vsa_path = out_dir.join(format!("{flat}.vsa.sigstore.json"));
        std::fs::write(&vsa_path, serde_json::to_vec(vsa)?)?;
        for (bundle, extra) in [(&bundle_path, None), (&vsa_path, Some("--require-vsa"))] {
            let out = Command::new(exe)
                .args(["verify", "--bundle"])
                .arg(bundle)
                .arg("--trusted-root")
                .arg(high.join("trusted_root.json"))
                .args([
                    "--certificate-identity",
                    &ca.config().default_identity,
                    "--certificate-oidc-issuer",
                    &ca.config().oidc_issuer,
                ])
                .args(extra)
                .arg(&artifact_path)
                .output()?;
            if !out.status.success() {
                bail!(
                    "airgate verify rejected {}: {}",
                    a.name,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            if extra.is_none() {
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    println!("      {}", gateway::escape::sanitized(line));
                }
            } else {
                println!(
                    "      verification summary (SLSA VSA v1) verified with --require-vsa: {}",
                    vsa_path.display()
                );
            }
        }
        let bundle: serde_json::Value = ours.clone();
        let cert_b64 = bundle["verificationMaterial"]["certificate"]["rawBytes"]
            .as_str()
            .unwrap_or_default();
        let cert = gateway::encoding::b64_decode(cert_b64).context("certificate")?;
        let parsed =
            gateway::x509::Certificate::from_der(&cert).map_err(|e| Error::Usage(e.to_string()))?;
        if let Some(ext) = parsed.extension(gateway::private_ca::ca::OID_CUSTODY) {
            if let Some(c) = Custody::from_der(&ext.value) {
                let index = c.upstream_log_index.map_or_else(
                    || "in each artifact's VSA: the leaf is this session's".to_string(),
                    |i| i.to_string(),
                );
                println!(
                    "      custody extension: upstream {} (issuer {}, log index {index})",
                    c.upstream_identity, c.upstream_issuer
                );
            }
        }
        let cep27 = if list.len() > 3 {
            ", airgate CEP 27 publish attestation"
        } else {
            ""
        };
        println!(
            "      .sigs [upstream bundle, airgate signature, airgate VSA{cep27}] written to {}",
            out_dir.join(format!("{flat}.sigs")).display()
        );
    }
    Ok(())
}

/// Step 8: the private TUF repository, as `airgate tuf init-private --state`.
fn private_tuf(exe: &Path, high: &Path) -> anyhow::Result<()> {
    let status = Command::new(exe)
        .args(["tuf", "init-private", "--state"])
        .arg(high)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("airgate tuf init-private failed");
    }
    println!(
        "      repository {} (keys in {}, 0700); equivalent: airgate tuf init-private --state {}",
        high.join(gateway::state::TUF_REPO).display(),
        high.join(gateway::state::TUF_KEYS).display(),
        high.display()
    );
    Ok(())
}

/// `airgate serve` as a child process, killed when dropped (on every path).
struct ServeChild(std::process::Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Step 9: start `airgate serve` on an ephemeral loopback port, fetch one
/// artifact and its `.sigs` like a client, verify them with `airgate
/// verify` against the enclave's trusted root, stop the server.
fn serve_and_fetch(
    exe: &Path,
    high: &Path,
    name: &str,
    client: &Path,
    ca: &CaConfig,
    image: &DemoImage,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut child = ServeChild(
        Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0", "--state"])
            .arg(high)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().context("serve's stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first_line = lines.next().transpose()?.unwrap_or_default();
    let base = first_line
        .strip_prefix("airgate serve: listening on ")
        .context("airgate serve did not start")?
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    println!(
        "      started: airgate serve --state {} (listening on {base})",
        high.display()
    );
    std::fs::create_dir_all(client)?;
    let file = name.rsplit('/').next().unwrap_or(name);
    let artifact = client.join(file);
    let sigs = client.join(format!("{file}.sigs"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for (url, path) in [
        (format!("{base}/artifacts/{name}"), &artifact),
        (format!("{base}/artifacts/{name}.sigs"), &sigs),
    ] {
        let bytes = runtime.block_on(fetch(&url))?;
        std::fs::write(path, &bytes)?;
        println!("      GET {url} -> {} bytes", bytes.len());
    }
    let status = Command::new(exe)
        .args(["verify", "--trusted-root"])
        .arg(high.join("trusted_root.json"))
        .arg("--bundle")
        .arg(&sigs)
        .args(["--certificate-identity", &ca.default_identity])
        .args(["--certificate-oidc-issuer", &ca.oidc_issuer])
        .arg(&artifact)
        .output()?;
    for line in String::from_utf8_lossy(&status.stderr).lines() {
        println!("      {}", gateway::escape::sanitized(line));
    }
    if !status.status.success() {
        bail!("the artifact fetched from airgate serve did not verify");
    }
    println!(
        "      verified {} with its .sigs against {}",
        artifact.display(),
        high.join("trusted_root.json").display()
    );
    conda_channel(&runtime, &base)?;
    pull_image(&runtime, &base, image)?;
    drop(child);
    println!("      server stopped");
    Ok(())
}

/// The conda channel: `repodata.json` lists the package from its own
/// metadata, with the digest of its `.sigs`.
fn conda_channel(runtime: &tokio::runtime::Runtime, base: &str) -> anyhow::Result<()> {
    let url = format!("{base}/conda/linux-64/repodata.json");
    let repodata: serde_json::Value = serde_json::from_slice(&runtime.block_on(fetch(&url))?)?;
    let packages = repodata["packages.conda"]
        .as_object()
        .map(|m| m.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    anyhow::ensure!(!packages.is_empty(), "{url} lists no package");
    println!(
        "      GET {url} -> conda channel listing {}; equivalent: pixi/conda/rattler with channel {base}/conda",
        gateway::escape::sanitized(&packages.join(", "))
    );
    Ok(())
}

/// The image through the read-only registry: the index by tag has the
/// upstream digest, and the tags list shows our signatures' tags.
fn pull_image(
    runtime: &tokio::runtime::Runtime,
    base: &str,
    image: &DemoImage,
) -> anyhow::Result<()> {
    let url = format!("{base}/v2/{DEMO_REPOSITORY}/manifests/{DEMO_TAG}");
    let bytes = runtime.block_on(fetch(&url))?;
    let served = format!("sha256:{}", hex::encode(crypto::sha256(&bytes)));
    if served != image.digest {
        bail!(
            "the registry served {served} for {DEMO_REPOSITORY}:{DEMO_TAG}, not the upstream {}",
            image.digest
        );
    }
    println!(
        "      GET {url} -> {} bytes, {served} (the upstream digest)",
        bytes.len()
    );
    let url = format!("{base}/v2/{DEMO_REPOSITORY}/tags/list");
    let tags: serde_json::Value = serde_json::from_slice(&runtime.block_on(fetch(&url))?)?;
    println!(
        "      GET {url} -> {}",
        gateway::escape::sanitized(&tags["tags"].to_string())
    );
    println!(
        "      equivalent: skopeo copy --all --preserve-digests --src-tls-verify=false docker://{}/{DEMO_REPOSITORY}:{DEMO_TAG} oci:./app",
        base.trim_start_matches("http://")
    );
    Ok(())
}

/// One GET, bounded: the demo's artifacts are small.
async fn fetch(url: &str) -> anyhow::Result<Vec<u8>> {
    let response = reqwest::get(url).await?.error_for_status()?;
    let bytes = response.bytes().await?;
    anyhow::ensure!(bytes.len() <= 64 << 20, "{url}: response over 64 MiB");
    Ok(bytes.to_vec())
}

/// What to run next, with this demo's paths.
fn print_next(
    high: &Path,
    out_dir: &Path,
    ca: &CaConfig,
    first: &str,
    medium: &Path,
    key_dir: &Path,
) {
    let first_name = first;
    let first = first.replace('/', "_");
    println!("\nRound trip complete. Try it yourself:");
    for bundle in [
        format!("{first}.sigstore.json"),
        format!("{first}.vsa.sigstore.json"),
    ] {
        println!(
            "  sigstore --trust-config {} verify identity --offline --bundle {} --cert-identity {} --cert-oidc-issuer {} {}",
            high.join("trust_config.json").display(),
            out_dir.join(bundle).display(),
            ca.default_identity,
            ca.oidc_issuer,
            out_dir.join(&first).display()
        );
    }
    println!("  airgate log info --state {}", high.display());
    println!("  airgate imports list --state {}", high.display());
    println!(
        "  airgate artifact get --state {} {first_name} --out ./airgate-out",
        high.display()
    );
    println!(
        "  airgate inspect {} --exporter-key {}",
        medium.display(),
        key_dir.join("exporter.pub.pem").display()
    );
    println!(
        "  airgate serve --state {}   # then http://127.0.0.1:8080/ (dashboard), /artifacts/, /tuf/1.root.json, /checkpoint",
        high.display()
    );
}
