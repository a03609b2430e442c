//! `airgate publish`: the read side as static files (see gateway::publish).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// Write everything clients read as plain files, incrementally.
#[derive(Args)]
pub struct PublishArgs {
    /// The state directory.
    #[arg(long)]
    state: PathBuf,
    /// The directory to publish into (served by nginx, a CDN or an object store).
    #[arg(long, value_name = "OUT")]
    to: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl PublishArgs {
    /// Runs the publish.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let report = gateway::publish::publish(&self.state, &self.to)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "Published {} artifact(s), {} conda package(s), log tree size {} to {}: {} file(s) written, {} unchanged",
                report.artifacts,
                report.conda_packages,
                report.tree_size,
                self.to.display(),
                report.written,
                report.unchanged
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
