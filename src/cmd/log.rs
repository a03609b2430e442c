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
        let dir = match &self.command {
            LogCommand::Info(s) | LogCommand::Checkpoint(s) => &s.state,
            LogCommand::Verify { state, .. } => &state.state,
            LogCommand::Entry { state, .. }
            | LogCommand::Prove { state, .. }
            | LogCommand::Consistency { state, .. } => &state.state,
        };
        let state = StateReader::open(dir)?;
        let reader = state.log_reader();
        let out = match self.command {
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
                    "log OK: {} entries, {} nodes and {} checkpoints verified, import and artifact records consistent; root {}",
                    audit.size,
                    audit.nodes,
                    audit.checkpoints,
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
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        Ok(ExitCode::SUCCESS)
    }
}
