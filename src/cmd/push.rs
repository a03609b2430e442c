//! `airgate push`: seeds an enclave registry with the imported images,
//! exactly as stored (upstream bytes and digests, our `.sig` manifest, the
//! referrers and the referrers fallback tag), through the distribution API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gateway::oci::layout::{is_index, parse_index, MAX_MANIFEST_BYTES};
use gateway::state::oci::ManifestRow;
use gateway::state::{blob_path, StateReader};
use gateway::Error;
use serde::Serialize;

use super::registry::{digest_of, Credentials, Registry};

/// Push imported images to a registry (blobs, manifests, signatures, tags).
#[derive(Args)]
pub struct PushArgs {
    /// The state directory.
    #[arg(long)]
    state: PathBuf,
    /// The registry, optionally with a repository prefix
    /// (`registry.enclave:5000` or `registry.enclave:5000/mirror`).
    #[arg(long, value_name = "REGISTRY")]
    to: String,
    /// Push only this repository (repeatable; default: every one imported).
    #[arg(long)]
    repository: Vec<String>,
    /// Talk plain HTTP (a registry on a trusted network only).
    #[arg(long)]
    plain_http: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What was pushed for one repository.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Pushed {
    repository: String,
    target: String,
    blobs_uploaded: usize,
    blobs_present: usize,
    bytes_uploaded: u64,
    manifests: usize,
    tags: Vec<String>,
}

impl PushArgs {
    /// Runs the push.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (host, prefix) = split_target(&self.to)?;
        let reader = StateReader::open(&self.state)?;
        let conn = reader.connection();
        let known = gateway::state::oci::catalog(conn, "", i64::MAX as usize)?;
        for r in &self.repository {
            if !known.contains(r) {
                return Err(Error::Usage(format!(
                    "--repository {}: no image of that repository was imported",
                    gateway::escape::quoted(r)
                ))
                .into());
            }
        }
        let chosen: Vec<String> = known
            .into_iter()
            .filter(|r| self.repository.is_empty() || self.repository.contains(r))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let mut report = Vec::new();
        for repository in chosen {
            let target = match prefix {
                Some(p) => format!("{p}/{repository}"),
                None => repository.clone(),
            };
            gateway::oci::check_repository(&target).map_err(Error::Usage)?;
            let mut registry = Registry::new(
                host,
                &target,
                self.plain_http,
                true,
                Credentials::from_env()?,
            )?;
            let pushed = runtime
                .block_on(push_repository(
                    &self.state,
                    conn,
                    &mut registry,
                    &repository,
                    &target,
                ))
                .with_context(|| format!("pushing {repository} to {host}/{target}"))?;
            report.push(pushed);
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for p in &report {
                println!(
                    "pushed {} to {host}/{}: {} blob(s) uploaded ({} bytes), {} already there, {} manifest(s), tags {}",
                    p.repository,
                    p.target,
                    p.blobs_uploaded,
                    p.bytes_uploaded,
                    p.blobs_present,
                    p.manifests,
                    p.tags.join(", ")
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// `host[:port]` and an optional repository prefix, checked.
fn split_target(to: &str) -> anyhow::Result<(&str, Option<&str>)> {
    if to.contains('/') {
        let (host, prefix) =
            gateway::oci::split_registry(to).map_err(|e| Error::Usage(format!("--to: {e}")))?;
        return Ok((host, Some(prefix)));
    }
    gateway::oci::split_registry(&format!("{to}/x"))
        .map_err(|e| Error::Usage(format!("--to: {e}")))?;
    Ok((to, None))
}

/// Blobs first, then manifests children before parents, then tags.
async fn push_repository(
    state: &Path,
    conn: &rusqlite::Connection,
    registry: &mut Registry,
    repository: &str,
    target: &str,
) -> anyhow::Result<Pushed> {
    let mut pushed = Pushed {
        repository: repository.to_string(),
        target: target.to_string(),
        ..Pushed::default()
    };
    for (hex, size) in gateway::state::oci::layers(conn, repository)? {
        let digest = format!("sha256:{hex}");
        if registry.has_blob(&digest).await? {
            pushed.blobs_present += 1;
            continue;
        }
        registry
            .upload_blob(&digest, &blob_path(state, &hex), size)
            .await?;
        pushed.blobs_uploaded += 1;
        pushed.bytes_uploaded += size;
    }
    let manifests = gateway::state::oci::manifests(conn, repository)?;
    for (row, bytes) in in_push_order(state, &manifests)? {
        registry
            .put_manifest(&row.digest, &row.media_type, &bytes)
            .await?;
        pushed.manifests += 1;
    }
    for (tag, row) in gateway::state::oci::current_tags(conn, repository)? {
        let bytes = stored_manifest(state, &row)?;
        registry.put_manifest(&tag, &row.media_type, &bytes).await?;
        pushed.tags.push(tag);
    }
    Ok(pushed)
}

/// A stored manifest's bytes, re-hashed against its digest.
fn stored_manifest(state: &Path, row: &ManifestRow) -> anyhow::Result<Vec<u8>> {
    let hex = row.digest.strip_prefix("sha256:").unwrap_or_default();
    let path = blob_path(state, hex);
    let bytes = gateway::files::read_limited(&path, MAX_MANIFEST_BYTES as usize)?;
    if digest_of(&bytes) != row.digest {
        return Err(Error::Usage(format!(
            "{}: the stored bytes of {} do not hash to it: the state was modified; run airgate log verify",
            path.display(),
            row.digest
        ))
        .into());
    }
    Ok(bytes)
}

/// Manifests with their bytes, image manifests first, then each index
/// after every index it lists (a registry refuses an index naming an
/// unknown manifest).
fn in_push_order(
    state: &Path,
    rows: &[ManifestRow],
) -> anyhow::Result<Vec<(ManifestRow, Vec<u8>)>> {
    let mut done: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    let mut indexes = Vec::new();
    for row in rows {
        let bytes = stored_manifest(state, row)?;
        if is_index(&row.media_type) {
            let children: Vec<String> = parse_index(&bytes, &row.digest)
                .map_err(|e| Error::Usage(e.to_string()))?
                .manifests()
                .iter()
                .map(|d| d.digest().to_string())
                .collect();
            indexes.push((row.clone(), bytes, children));
        } else {
            done.insert(row.digest.clone());
            out.push((row.clone(), bytes));
        }
    }
    while !indexes.is_empty() {
        let before = indexes.len();
        let (ready, waiting): (Vec<_>, Vec<_>) = indexes
            .into_iter()
            .partition(|(_, _, children)| children.iter().all(|c| done.contains(c)));
        for (row, bytes, _) in ready {
            done.insert(row.digest.clone());
            out.push((row, bytes));
        }
        indexes = waiting;
        if indexes.len() == before {
            // Children stored elsewhere (or a cycle): push as they are and
            // let the registry say what it lacks.
            out.extend(indexes.drain(..).map(|(row, bytes, _)| (row, bytes)));
        }
    }
    Ok(out)
}
