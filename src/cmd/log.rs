//! `airgate log`: inspect, prove and audit the private transparency log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gateway::encoding::b64_encode;
use gateway::state::StateReader;
use gateway::Error;

/// Inspect and audit the private transparency log.
#[derive(Args)]
pub struct LogArgs {
    #[command(subcommand)]
    command: LogCommand,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Size, root and latest checkpoint.
    Info(StateOnly),
    /// One entry as JSON (Rekor-style).
    Entry {
        #[command(flatten)]
        state: StateOnly,
        /// Entry index.
        index: u64,
    },
    /// Inclusion proof for an entry (against the latest checkpoint, or --size).
    Prove {
        #[command(flatten)]
        state: StateOnly,
        /// Entry index.
        index: u64,
        /// Tree size to prove against.
        #[arg(long)]
        size: Option<u64>,
    },
    /// Consistency proof between two tree sizes.
    Consistency {
        #[command(flatten)]
        state: StateOnly,
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
    /// Audit everything the state holds about the log (entries, nodes,
    /// checkpoints, metadata, import and artifact records, SQLite integrity),
    /// and prove it grew from checkpoints kept elsewhere (--checkpoint).
    Verify {
        #[command(flatten)]
        state: StateOnly,
        /// A signed checkpoint kept outside this host (printed by import,
        /// served at /checkpoint): the log must contain it and be consistent
        /// with it. Repeatable.
        #[arg(long, value_name = "FILE")]
        checkpoint: Vec<PathBuf>,
    },
    /// The latest signed checkpoint (C2SP signed note), to keep elsewhere.
    Checkpoint(StateOnly),
    /// Check a served log from a checkpoint kept elsewhere (no state needed):
    /// the served checkpoint must be signed by the log key, of the same log, no
    /// smaller, and proven consistent with the kept one. What a monitor or a
    /// witness runs, on another machine than the gateway.
    Monitor {
        /// Base URL of `airgate serve` (or a published tree), e.g. http://gateway:8080
        #[arg(long)]
        url: String,
        /// The checkpoint kept outside the gateway host.
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// The log's public key (PEM), kept with the checkpoint: never fetched
        /// from the server being checked. Repeat it across a log key rotation
        /// (`airgate ca rotate-log`): the old key signed the kept checkpoint,
        /// the new one signs the served one; the tree is the same.
        #[arg(long, value_name = "PEM", required = true)]
        log_key: Vec<PathBuf>,
        /// After a successful check, replace FILE with the served checkpoint
        /// (atomically), so the next run starts from it.
        #[arg(long)]
        update: bool,
    },
    /// Witnesses whose cosignatures of checkpoints (C2SP tlog-cosignature)
    /// `POST /tlog/cosignature` accepts and `/checkpoint` then carries.
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
}

#[derive(clap::Subcommand)]
enum WitnessCommand {
    /// Enroll a witness by its verifier key `NAME+HASH+BASE64(0x04||ed25519 key)`.
    Add {
        #[command(flatten)]
        state: StateOnly,
        /// The witness's verifier key.
        vkey: String,
    },
    /// The enrolled witnesses.
    List(StateOnly),
}

/// `log witness add|list`.
fn witness(command: WitnessCommand) -> anyhow::Result<ExitCode> {
    match command {
        WitnessCommand::Add { state, vkey } => {
            let dir = gateway::state::StateDir::open(&state.state)?;
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let key = dir.add_witness(&vkey, &now)?;
            println!(
                "Enrolled witness {} (key hint {}); its cosignatures are accepted at POST /tlog/cosignature",
                gateway::escape::quoted(&key.name),
                hex::encode(key.key_hint)
            );
        }
        WitnessCommand::List(state) => {
            let reader = StateReader::open(&state.state)?;
            for w in reader.witnesses()? {
                println!("{}", w.vkey);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
struct StateOnly {
    /// The state directory.
    #[arg(long)]
    state: PathBuf,
}

fn hashes(h: &[[u8; 32]]) -> Vec<String> {
    h.iter().map(hex::encode).collect()
}

impl LogArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            LogCommand::Monitor {
                url,
                checkpoint,
                log_key,
                update,
            } => monitor(&url, &checkpoint, &log_key, update),
            LogCommand::Witness { command } => witness(command),
            command => with_state(command),
        }
    }
}

/// The subcommands that read the state directory.
fn with_state(command: LogCommand) -> anyhow::Result<ExitCode> {
    {
        let dir = match &command {
            LogCommand::Monitor { .. } | LogCommand::Witness { .. } => {
                return Err(Error::internal("dispatching a log subcommand", "handled above").into())
            }
            LogCommand::Info(s) | LogCommand::Checkpoint(s) => &s.state,
            LogCommand::Verify { state, .. } => &state.state,
            LogCommand::Entry { state, .. }
            | LogCommand::Prove { state, .. }
            | LogCommand::Consistency { state, .. } => &state.state,
        };
        let state = StateReader::open(dir)?;
        let reader = state.log_reader();
        let out = match command {
            LogCommand::Info(_) => {
                let size = reader.size().map_err(Error::from)?;
                let checkpoint = reader.latest_checkpoint().map_err(Error::from)?;
                serde_json::json!({
                    "logId": reader.log_id().map_err(Error::from)?,
                    "treeSize": size,
                    "rootHash": hex::encode(reader.root(size).map_err(Error::from)?),
                    "checkpoint": checkpoint.map(|c| c.note),
                })
            }
            LogCommand::Entry { index, .. } => {
                let e = reader.entry(index).map_err(Error::from)?;
                serde_json::json!({
                    "logIndex": e.index,
                    "kind": e.kind.kind(),
                    "body": b64_encode(&e.body),
                    "integratedTime": e.integrated_time,
                    "signedEntryTimestamp": b64_encode(&e.signed_entry_timestamp),
                    "artifactSha256": hex::encode(e.artifact_sha256),
                })
            }
            LogCommand::Prove { index, size, .. } => {
                let size = match size {
                    Some(s) => s,
                    None => reader.size().map_err(Error::from)?,
                };
                let proof = reader.inclusion_proof(index, size).map_err(Error::from)?;
                serde_json::json!({
                    "logIndex": index,
                    "treeSize": size,
                    "rootHash": hex::encode(reader.root(size).map_err(Error::from)?),
                    "hashes": hashes(&proof),
                })
            }
            LogCommand::Consistency { old, new, .. } => {
                let proof = reader.consistency_proof(old, new).map_err(Error::from)?;
                serde_json::json!({
                    "firstSize": old,
                    "lastSize": new,
                    "firstRootHash": hex::encode(reader.root(old).map_err(Error::from)?),
                    "lastRootHash": hex::encode(reader.root(new).map_err(Error::from)?),
                    "hashes": hashes(&proof),
                })
            }
            LogCommand::Verify { checkpoint, .. } => {
                let audit = state.audit()?;
                println!(
                    "log OK: {} entries, {} nodes, {} checkpoints and {} witness cosignatures verified, import and artifact records consistent; root {}",
                    audit.size,
                    audit.nodes,
                    audit.checkpoints,
                    audit.cosignatures,
                    hex::encode(audit.root_hash)
                );
                for path in checkpoint {
                    let text = gateway::files::read_limited(&path, 64 << 10)?;
                    let note = String::from_utf8(text)
                        .map_err(|_| Error::Usage(format!("{}: not UTF-8 text", path.display())))?;
                    let kept = state.verify_kept_checkpoint(&note).map_err(|e| {
                        anyhow::Error::from(e).context(format!("checkpoint {}", path.display()))
                    })?;
                    println!(
                        "consistent with the checkpoint kept in {} (tree size {} -> {})",
                        path.display(),
                        kept.kept_size,
                        kept.size
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            LogCommand::Checkpoint(_) => {
                let checkpoint = reader
                    .latest_checkpoint()
                    .map_err(Error::from)?
                    .ok_or_else(|| Error::Usage("the log is empty: no checkpoint yet".into()))?;
                print!("{}", checkpoint.note);
                return Ok(ExitCode::SUCCESS);
            }
            LogCommand::Monitor { .. } | LogCommand::Witness { .. } => {
                return Err(Error::Usage("log monitor takes no state".into()).into())
            }
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        Ok(ExitCode::SUCCESS)
    }
}

/// Largest served checkpoint read (a signed note is far smaller).
const MAX_CHECKPOINT_BYTES: usize = 64 << 10;
/// Largest served proof body read (128 hex hashes and framing).
const MAX_PROOF_BYTES: usize = 64 << 10;

/// `airgate log monitor`: fetches, then lets the pure monitor decide.
fn monitor(
    url: &str,
    checkpoint: &std::path::Path,
    log_keys: &[PathBuf],
    update: bool,
) -> anyhow::Result<ExitCode> {
    let kept = text_file(checkpoint, MAX_CHECKPOINT_BYTES)?;
    let key = log_keys
        .iter()
        .map(|path| {
            gateway::crypto::VerifyingKey::from_pem(&text_file(path, 64 << 10)?)
                .map_err(|e| Error::Usage(format!("{}: {e}", path.display())).into())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kept_size = gateway::tlog::checkpoint::SignedNote::parse(&kept)
        .ok()
        .and_then(|n| gateway::tlog::checkpoint::Checkpoint::parse(&n.text).ok())
        .map(|c| c.size)
        .unwrap_or(0);
    let base = url.trim_end_matches('/');
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (served, proof) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Usage(format!("HTTP client: {e}")))?;
        let served = fetch(&client, &format!("{base}/checkpoint"), MAX_CHECKPOINT_BYTES).await?;
        let served = String::from_utf8(served).map_err(|_| {
            gateway::tlog::LogError::Tampered("the served checkpoint is not UTF-8".into())
        })?;
        let served_size = gateway::tlog::checkpoint::SignedNote::parse(&served)
            .ok()
            .and_then(|n| gateway::tlog::checkpoint::Checkpoint::parse(&n.text).ok())
            .map(|c| c.size)
            .unwrap_or(0);
        let proof = if kept_size > 0 && kept_size < served_size {
            let body = fetch(
                &client,
                &format!("{base}/api/v1/log/proof?firstSize={kept_size}&lastSize={served_size}"),
                MAX_PROOF_BYTES,
            )
            .await?;
            gateway::tlog::monitor::parse_proof(&body)?.1
        } else {
            Vec::new()
        };
        Ok::<_, Error>((served, proof))
    })?;
    let growth =
        gateway::tlog::monitor::check_growth(&kept, &served, &proof, &key).map_err(Error::from)?;
    println!(
        "served log {} is consistent with the checkpoint kept in {} (tree size {} -> {}, root {})",
        gateway::escape::quoted(&growth.origin),
        checkpoint.display(),
        growth.kept_size,
        growth.served_size,
        hex::encode(growth.served_root)
    );
    if update && growth.served_size > growth.kept_size {
        gateway::files::write_atomic(checkpoint, served.as_bytes(), None)?;
        println!("{} now holds the served checkpoint", checkpoint.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn text_file(path: &std::path::Path, limit: usize) -> anyhow::Result<String> {
    let bytes = gateway::files::read_limited(path, limit)?;
    Ok(String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: not UTF-8 text", path.display())))?)
}

/// GET with a body limit; HTTP failures are I/O (exit 2), not verdicts.
async fn fetch(client: &reqwest::Client, url: &str, limit: usize) -> Result<Vec<u8>, Error> {
    let io = |e: String| Error::Usage(format!("GET {}: {e}", gateway::escape::quoted(url)));
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| io(e.to_string()))?;
    if !response.status().is_success() {
        return Err(io(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| io(e.to_string()))? {
        if body.len() + chunk.len() > limit {
            return Err(io(format!("response larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
