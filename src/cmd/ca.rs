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
    /// Rotate the intermediate CA: a new one signed by the root, the old one's
    /// validFor closed now; trusted_root.json lists both; new leaves come from
    /// the new key; the private TUF repository republishes the trusted root.
    Rotate(RotateArgs),
    /// Rotate the root CA: a new root key and certificate and a new
    /// intermediate it signs; trusted_root.json lists the old authority
    /// (closed now) and the new one; new leaves chain to the new root; the
    /// private TUF repository republishes the trusted root.
    RotateRoot(RotateRootArgs),
    /// Rotate the private CT log key: new leaves carry SCTs from a new key;
    /// trusted_root.json lists both keys with their windows (the old one
    /// closed now); the private TUF repository republishes the trusted root.
    RotateCt(RotateCtArgs),
    /// Rotate the transparency log's key: entries and checkpoints from now on
    /// are signed by a new key; the tree, its origin and its indexes go on;
    /// trusted_root.json lists both keys with their windows; the private TUF
    /// repository republishes the trusted root.
    RotateLog(RotateCtArgs),
    /// Revoke a retired intermediate, CT key or log key from a past time (a
    /// compromise): its validFor ends at --at; what it signed before still
    /// verifies, after not (with airgate; see the README for what other
    /// clients do).
    Revoke(RevokeArgs),
}

#[derive(Args)]
struct RotateRootArgs {
    /// The high-side state directory.
    #[arg(long, value_name = "STATE")]
    state: PathBuf,
    /// Where to write the new root's private key (must not exist; keep it
    /// offline). Default: it replaces STATE/root.key.pem.
    #[arg(long, value_name = "FILE")]
    root_key_out: Option<PathBuf>,
}

/// Runs `change` under the state lock (no import signs while the trust
/// material changes), then republishes the trusted root through the
/// private TUF repository from a freshly opened state; the published
/// timestamp version, if there is a repository.
fn change_trust<T>(
    state: &std::path::Path,
    change: impl FnOnce() -> Result<T, gateway::private_ca::Error>,
) -> anyhow::Result<(T, Option<u64>)> {
    let lock = gateway::state::StateDir::open(state)?;
    let changed = change().map_err(gateway::Error::from)?;
    drop(lock);
    let reopened = gateway::state::StateDir::open(state)?;
    let published = reopened.publish_trusted_root(chrono::Utc::now())?;
    Ok((changed, published))
}

/// The last line of a rotation's report.
fn print_published(published: Option<u64>, lists: &str) {
    match published {
        Some(v) => println!("  trusted_root.json lists {lists}; private TUF republished (timestamp v{v})"),
        None => println!("  trusted_root.json lists {lists}; no private TUF repository to republish (airgate tuf init-private)"),
    }
}

/// `ca rotate-root`.
fn rotate_root(args: RotateRootArgs) -> anyhow::Result<ExitCode> {
    let (rotation, published) = change_trust(&args.state, || {
        gateway::private_ca::rotate::rotate_root(
            &args.state,
            args.root_key_out.as_deref(),
            SystemTime::now(),
        )
    })?;
    println!("Rotated the root CA at {}", rotation.at);
    println!(
        "  retired: root sha256 {} with its intermediate (certificates kept in {}; what they signed before {} still verifies)",
        rotation.old_root_fingerprint,
        rotation
            .retired
            .first()
            .and_then(|p| p.parent())
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        rotation.at
    );
    println!(
        "  new:     root sha256 {}, intermediate sha256 {} (signs every leaf from now on)",
        rotation.new_root_fingerprint, rotation.new_intermediate_fingerprint
    );
    println!(
        "  the new root's key is {} (0600): keep it offline; `airgate ca rotate --root-key` needs it",
        rotation.root_key.display()
    );
    print_published(published, "both authorities");
    Ok(ExitCode::SUCCESS)
}

/// `ca rotate-log`.
fn rotate_log(args: RotateCtArgs) -> anyhow::Result<ExitCode> {
    let (rotation, published) = change_trust(&args.state, || {
        gateway::private_ca::rotate::rotate_log_key(&args.state, SystemTime::now())
    })?;
    println!("Rotated the transparency log key at {}", rotation.at);
    println!(
        "  retired: log ID {} (its entries and checkpoints before {} still verify)",
        rotation.old_log_id, rotation.at
    );
    println!(
        "  new:     log ID {} (signs every entry and checkpoint from now on; same tree, same origin)",
        rotation.new_log_id
    );
    print_published(published, "both keys");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
struct RotateCtArgs {
    /// The high-side state directory.
    #[arg(long, value_name = "STATE")]
    state: PathBuf,
}

/// `ca rotate-ct`.
fn rotate_ct(args: RotateCtArgs) -> anyhow::Result<ExitCode> {
    let (rotation, published) = change_trust(&args.state, || {
        gateway::private_ca::rotate::rotate_ct_key(&args.state, SystemTime::now())
    })?;
    println!("Rotated the CT log key at {}", rotation.at);
    println!(
        "  retired: log ID {} (its SCTs before {} still verify)",
        rotation.old_log_id, rotation.at
    );
    println!(
        "  new:     log ID {} (signs the SCT of every leaf from now on)",
        rotation.new_log_id
    );
    print_published(published, "both keys");
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
struct RevokeArgs {
    /// The high-side state directory.
    #[arg(long, value_name = "STATE")]
    state: PathBuf,
    /// SHA-256 of the retired intermediate certificate (as `ca rotate` printed it).
    #[arg(long, value_name = "SHA256", required_unless_present_any = ["ct_key", "log_key"], conflicts_with_all = ["ct_key", "log_key"])]
    intermediate: Option<String>,
    /// Log ID of the retired CT key (as `ca rotate-ct` printed it).
    #[arg(long, value_name = "LOG_ID", conflicts_with = "log_key")]
    ct_key: Option<String>,
    /// Log ID of the retired transparency log key (as `ca rotate-log` printed it).
    #[arg(long, value_name = "LOG_ID")]
    log_key: Option<String>,
    /// From when its signatures are not to be trusted (RFC 3339, a date, or seconds since 1970).
    #[arg(long, value_name = "TIME")]
    at: String,
}

/// `ca revoke`.
fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let at = crate::output::parse_time(&args.at, "--at")?
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    use gateway::private_ca::rotate::{revoke_intermediate, revoke_service_key, ServiceKey};
    let dir = &args.state;
    let ((), published) = match (&args.intermediate, &args.ct_key, &args.log_key) {
        (Some(fp), _, _) => change_trust(dir, || revoke_intermediate(dir, fp, &at))?,
        (_, Some(id), _) => change_trust(dir, || revoke_service_key(dir, ServiceKey::Ct, id, &at))?,
        (_, _, Some(id)) => {
            change_trust(dir, || revoke_service_key(dir, ServiceKey::Log, id, &at))?
        }
        _ => {
            return Err(
                gateway::Error::Usage("give --intermediate, --ct-key or --log-key".into()).into(),
            )
        }
    };
    let what = match (&args.intermediate, &args.ct_key, &args.log_key) {
        (Some(fp), _, _) => format!("intermediate sha256 {fp}: signatures it made"),
        (_, Some(id), _) => format!("CT key {id}: SCTs it signed"),
        (_, _, Some(id)) => format!("log key {id}: entries it signed"),
        _ => String::new(),
    };
    println!("Revoked {what} before {at} still verify, after do not");
    if let Some(v) = published {
        println!("  private TUF republished (timestamp v{v})");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
struct RotateArgs {
    /// The high-side state directory.
    #[arg(long, value_name = "STATE")]
    state: PathBuf,
    /// The root CA's private key (default: STATE/root.key.pem; keep it offline
    /// and give it here for the ceremony).
    #[arg(long, value_name = "FILE")]
    root_key: Option<PathBuf>,
}

/// `ca rotate`.
fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let root_key = args
        .root_key
        .unwrap_or_else(|| args.state.join(gateway::private_ca::ca::files::ROOT_KEY));
    let (rotation, published) = change_trust(&args.state, || {
        gateway::private_ca::rotate::rotate_intermediate(&args.state, &root_key, SystemTime::now())
    })?;
    println!("Rotated the intermediate CA at {}", rotation.at);
    println!(
        "  retired: sha256 {} (kept in {}; its key is gone)",
        rotation.old_fingerprint,
        rotation.retired_cert.display()
    );
    println!(
        "  new:     sha256 {} (signs every leaf from now on)",
        rotation.new_fingerprint
    );
    print_published(published, "both windows");
    Ok(ExitCode::SUCCESS)
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
            CaCommand::Rotate(args) => rotate(args),
            CaCommand::RotateCt(args) => rotate_ct(args),
            CaCommand::RotateLog(args) => rotate_log(args),
            CaCommand::RotateRoot(args) => rotate_root(args),
            CaCommand::Revoke(args) => revoke(args),
        }
    }
}
