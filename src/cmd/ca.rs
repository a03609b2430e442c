//! `airgate ca`: the private CA key ceremony.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use gateway::private_ca::{init_ceremony, CaConfig};

/// Manage the private certificate authority.
#[derive(Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create the root, intermediate, CT and log keys and the public trust material.
    Init(InitArgs),
}

#[derive(Args)]
struct InitArgs {
    /// The high-side state directory to create the CA in (new or empty).
    #[arg(long = "state", visible_alias = "dir", value_name = "STATE")]
    dir: PathBuf,
    /// Organization name on the CA certificates.
    #[arg(long, default_value = "airgate private CA")]
    name: String,
    /// Default signing identity (URI or email) for leaves.
    #[arg(long)]
    identity: Option<String>,
    /// OIDC issuer recorded in leaves.
    #[arg(long)]
    issuer: Option<String>,
    /// Base URL of the transparency log (its host signs checkpoints).
    #[arg(long)]
    tlog_url: Option<String>,
    /// Leaf certificate lifetime in seconds.
    #[arg(long, default_value_t = 600)]
    leaf_validity_secs: u64,
}

impl CaArgs {
    /// Runs the subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            CaCommand::Init(args) => {
                let mut config = CaConfig::with_defaults(&args.name);
                if let Some(identity) = args.identity {
                    config.default_identity = identity;
                }
                if let Some(issuer) = args.issuer {
                    config.oidc_issuer = issuer;
                }
                if let Some(url) = args.tlog_url {
                    config.tlog_url = url;
                }
                config.leaf_validity_secs = args.leaf_validity_secs;
                let summary = init_ceremony(&args.dir, config, SystemTime::now())
                    .map_err(gateway::Error::from)?;
                println!("Created private CA in {}", summary.dir.display());
                println!("  root certificate sha256: {}", summary.root_fingerprint);
                println!("  transparency log id:     {}", summary.tlog_id);
                println!("  CT log id:               {}", summary.ctlog_id);
                println!("  private keys (mode 0600): root.key.pem (keep offline), intermediate.key.pem, ctlog.key.pem, tlog.key.pem");
                println!("  public: trusted_root.json, trust_config.json (sigstore-python --trust-config)");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
