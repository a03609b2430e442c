//! `airgate bench images`: a large multi-layer image, signed upstream in
//! both cosign forms, exported and imported, against `skopeo copy
//! --preserve-digests oci:A oci:B` of the same image, in one run,
//! alternating, every side durable (`export --sync`, `skopeo copy && sync`,
//! import syncs before committing). Then the medium sizes of two images
//! that share their base layers, carried alone and together.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;
use gateway::demo::{ImageSigning, SIMULATED_IDENTITY};
use gateway::oci::cosign::{tagged_descriptor, Blob};
use gateway::oci::{LayoutDir, MEDIA_OCI_CONFIG, MEDIA_OCI_MANIFEST};
use sha2::{Digest as _, Sha256};

use super::bench_media::{
    fresh_high, paired, run, sh, sides, summarize, write_pseudorandom_seeded, Run, Sides,
};

/// The repository the benchmark's images are carried as.
const REPOSITORY: &str = "bench/app";
/// Uncompressed layers: nothing anyone copies them with recompresses them.
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Image benchmark.
#[derive(Args)]
pub struct ImagesBench {
    /// Working directory (needs about 6x --size free space).
    #[arg(long)]
    dir: PathBuf,
    /// Total size of the large image's layers (e.g. 2G).
    #[arg(long, default_value = "2G")]
    size: String,
    /// Number of layers of the large image.
    #[arg(long, default_value_t = 8)]
    layers: u64,
    /// Alternating rounds per comparison (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the shared base layers in the sharing part (e.g. 256M).
    #[arg(long, default_value = "256M")]
    shared_size: String,
    /// Skip the large-image timing.
    #[arg(long)]
    no_large: bool,
    /// Skip the shared-base-layers medium sizes.
    #[arg(long)]
    no_shared: bool,
    /// Keep the working files.
    #[arg(long)]
    keep: bool,
}

impl ImagesBench {
    /// Runs the benchmark.
    pub fn run(mut self) -> anyhow::Result<ExitCode> {
        let exe = std::env::current_exe()?;
        std::fs::create_dir_all(&self.dir)?;
        self.dir = std::path::absolute(&self.dir)?;
        which_skopeo()?;
        if !self.no_large {
            let size = crate::cmd::export::parse_size(&self.size).context("--size")?;
            self.large(&exe, size)?;
        }
        if !self.no_shared {
            let size =
                crate::cmd::export::parse_size(&self.shared_size).context("--shared-size")?;
            self.shared(&exe, size)?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Export and import of one large image vs `skopeo copy` + `sync`.
    fn large(&self, exe: &Path, size: u64) -> anyhow::Result<()> {
        let root = self.dir.join("large-image");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        let s = sides(&root)?;
        let layout = root.join("layout");
        let layers = self.layers.max(1);
        let each = size / layers;
        let files: Vec<LayerFile> = (0..layers)
            .map(|i| LayerFile::write(&layout, each, 1 + i))
            .collect::<anyhow::Result<_>>()?;
        write_image(&layout, "v1", &files)?;
        s.upstream.sign_image(
            &layout,
            REPOSITORY,
            "v1",
            SIMULATED_IDENTITY,
            ImageSigning::ALL,
            SystemTime::now(),
        )?;
        let config = write_config(&root, &layout, &["v1"])?;
        println!(
            "large image: {layers} layers of {each} bytes ({:.2} GiB), signed in both cosign forms with a provenance attestation",
            (each * layers) as f64 / (1u64 << 30) as f64
        );
        sh(&format!(
            "cat {}/blobs/sha256/* > /dev/null",
            layout.display()
        ))?;
        let rounds = self.rounds.max(1);
        let (mut copies, mut exports, mut imports) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let copy = root.join(format!("skopeo-{round}"));
            let _ = Command::new("sync").status();
            copies.push(sh(&format!(
                "skopeo copy -q --preserve-digests oci:{}:v1 oci:{}:v1 && sync",
                layout.display(),
                copy.display()
            ))?);
            let medium = root.join(format!("medium-{round}.tar"));
            let _ = Command::new("sync").status();
            exports.push(export(exe, &s, &config, &medium)?);
            let high = if round == 0 {
                s.high.clone()
            } else {
                fresh_high(&root, round, &s)?
            };
            let _ = Command::new("sync").status();
            imports.push(run(Command::new(exe)
                .args(["import", "--state"])
                .arg(&high)
                .arg(&medium))?);
        }
        report_large(&copies, &exports, &imports, each * layers, rounds);
        if !self.keep {
            let _ = std::fs::remove_dir_all(&root);
        }
        Ok(())
    }

    /// Two images sharing base layers: medium sizes alone and together.
    fn shared(&self, exe: &Path, base: u64) -> anyhow::Result<()> {
        let root = self.dir.join("shared-images");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        let s = sides(&root)?;
        let layout = root.join("layout");
        let own = (base / 16).max(1);
        let bases = [
            LayerFile::write(&layout, base / 2, 101)?,
            LayerFile::write(&layout, base / 2, 102)?,
        ];
        for (i, tag) in ["a", "b"].into_iter().enumerate() {
            let mut files = bases.to_vec();
            files.push(LayerFile::write(&layout, own, 200 + i as u64)?);
            write_image(&layout, tag, &files)?;
            s.upstream.sign_image(
                &layout,
                REPOSITORY,
                tag,
                SIMULATED_IDENTITY,
                ImageSigning::ALL,
                SystemTime::now(),
            )?;
        }
        let mut sizes = Vec::new();
        for tags in [&["a"][..], &["b"], &["a", "b"]] {
            let config = write_config(&root, &layout, tags)?;
            let medium = root.join(format!("medium-{}.tar", tags.join("")));
            export(exe, &s, &config, &medium)?;
            sizes.push(std::fs::metadata(&medium)?.len());
        }
        let unique = 2 * (base / 2) + 2 * own;
        println!(
            "two images sharing 2 base layers ({} bytes) with one own layer each ({own} bytes): unique layer bytes {unique}",
            2 * (base / 2)
        );
        println!(
            "RATIO medium(a+b) / (medium(a) + medium(b)) = {:.3}  (medium a {} bytes, b {} bytes, a+b {} bytes; a+b / unique layer bytes = {:.4})",
            sizes[2] as f64 / (sizes[0] + sizes[1]) as f64,
            sizes[0],
            sizes[1],
            sizes[2],
            sizes[2] as f64 / unique as f64
        );
        if !self.keep {
            let _ = std::fs::remove_dir_all(&root);
        }
        Ok(())
    }
}

fn which_skopeo() -> anyhow::Result<()> {
    let ok = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    anyhow::ensure!(
        ok,
        "skopeo is the baseline: install it (apt-get install skopeo)"
    );
    Ok(())
}

/// `airgate export --config … --sync` of the configured images.
fn export(exe: &Path, s: &Sides, config: &Path, medium: &Path) -> anyhow::Result<Run> {
    run(Command::new(exe)
        .args(["export", "--config"])
        .arg(config)
        .arg("--policy")
        .arg(&s.policy)
        .arg("--key")
        .arg(&s.key)
        .args(["--exporter", "bench", "--sync", "--out"])
        .arg(medium))
}

fn report_large(copies: &[Run], exports: &[Run], imports: &[Run], bytes: u64, rounds: usize) {
    let copy = summarize(copies);
    let exp = summarize(exports);
    let imp = summarize(imports);
    let secs = |r: &Run| r.elapsed.as_secs_f64();
    let gbps = |r: &Run| bytes as f64 / secs(r) / 1e9;
    println!("medians of {rounds} alternating rounds, `sync` between runs");
    println!(
        "RATIO export time / skopeo copy = {:.2}x; import time / skopeo copy = {:.2}x; (export + import) / skopeo copy = {:.2}x",
        secs(&exp) / secs(&copy),
        secs(&imp) / secs(&copy),
        (secs(&exp) + secs(&imp)) / secs(&copy)
    );
    println!(
        "skopeo copy --preserve-digests oci:A oci:B && sync (baseline): {:>6.2} s  {:>5.2} GB/s",
        secs(&copy),
        gbps(&copy)
    );
    println!(
        "airgate export --sync (close + verify both forms + pack, hash once): {:>6.2} s  {:>5.2} GB/s  peak RSS {:.1} MiB",
        secs(&exp),
        gbps(&exp),
        exp.peak_rss_kib as f64 / 1024.0
    );
    println!(
        "airgate import (authenticate + stage + re-verify + re-sign + store, durable): {:>6.2} s  {:>5.2} GB/s  peak RSS {:.1} MiB",
        secs(&imp),
        gbps(&imp),
        imp.peak_rss_kib as f64 / 1024.0
    );
    println!("rounds skopeo/export: {}", paired(copies, exports));
    println!("rounds skopeo/import: {}", paired(copies, imports));
}

/// One layer written into a layout's blob directory.
#[derive(Clone)]
struct LayerFile {
    digest: String,
    size: u64,
}

impl LayerFile {
    /// `size` pseudo-random bytes from `seed`, stored under their digest.
    fn write(layout: &Path, size: u64, seed: u64) -> anyhow::Result<LayerFile> {
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        let tmp = blobs.join(format!(".layer-{seed}"));
        write_pseudorandom_seeded(&tmp, size, seed)?;
        let mut hasher = Sha256::new();
        let mut f = std::fs::File::open(&tmp)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let hex = hex::encode(hasher.finalize());
        std::fs::rename(&tmp, blobs.join(&hex))?;
        Ok(LayerFile {
            digest: format!("sha256:{hex}"),
            size,
        })
    }
}

/// An image manifest over `layers` (with a config naming their diff IDs),
/// tagged `tag` in the layout (created if needed).
fn write_image(dir: &Path, tag: &str, layers: &[LayerFile]) -> anyhow::Result<()> {
    let oci = |e: gateway::oci::LayoutError| anyhow::anyhow!("{e}");
    let layout = match LayoutDir::open(dir, false) {
        Ok(l) if dir.join("index.json").exists() => l,
        _ => LayoutDir::create(dir).map_err(oci)?,
    };
    let descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": LAYER_TYPE, "digest": l.digest, "size": l.size}))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.digest).collect::<Vec<_>>()},
    });
    let config = Blob::new(MEDIA_OCI_CONFIG, serde_json::to_vec(&config)?);
    layout.put(&config).map_err(oci)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": config.descriptor,
        "layers": descriptors,
    });
    let manifest = Blob::new(MEDIA_OCI_MANIFEST, serde_json::to_vec(&manifest)?);
    layout.put(&manifest).map_err(oci)?;
    let mut entries = layout.index().map_err(oci)?.manifests().clone();
    entries.push(tagged_descriptor(&manifest.descriptor, tag));
    layout.write_index(&entries).map_err(oci)
}

/// An `airgate.toml` carrying `tags` of the layout.
fn write_config(root: &Path, layout: &Path, tags: &[&str]) -> anyhow::Result<PathBuf> {
    let path = root.join(format!("airgate-{}.toml", tags.join("")));
    let tags: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
    std::fs::write(
        &path,
        format!(
            "[[image]]\nlayout = \"{}\"\nrepository = \"{REPOSITORY}\"\ntags = [{}]\n",
            layout.display(),
            tags.join(", ")
        ),
    )?;
    Ok(path)
}
