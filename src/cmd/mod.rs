//! One module per subcommand; each has an `Args` struct with `run(self)`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod artifact;
mod bench;
mod bench_images;
mod bench_log;
mod bench_media;
mod bench_serve;
mod ca;
mod demo;
pub mod export;
mod export_key;
mod exporter;
mod import;
mod imports;
mod inspect;
mod lock;
mod log;
mod publish;
mod pull;
mod push;
mod recipe;
mod registry;
mod serve;
mod sign;
mod tuf;
mod verify;

/// airgate: carry signed software across an air gap, verifiably.
#[derive(Parser)]
#[command(name = "airgate", version, about, propagate_version = true)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Run the whole low-to-high round trip on a simulated upstream Sigstore.
    Demo(demo::DemoArgs),
    /// Verify a Sigstore bundle for an artifact, offline.
    Verify(verify::VerifyArgs),
    /// Copy an imported artifact and its bundles out of the state (no server needed).
    Artifact(artifact::ArtifactArgs),
    /// Manage the private certificate authority (key ceremony).
    Ca(ca::CaArgs),
    /// Sign a file with the private CA and record it in the private log.
    Sign(sign::SignArgs),
    /// Inspect, prove and audit the private transparency log.
    Log(log::LogArgs),
    /// Low side: verify artifacts and pack a signed, reproducible transfer medium.
    Export(export::ExportArgs),
    /// Manage the exporter's medium-signing key.
    #[command(name = "export-key")]
    ExportKey(export_key::ExportKeyArgs),
    /// High side: verify a medium offline, re-sign accepted artifacts, record the import.
    Import(import::ImportArgs),
    /// Read back the stored import reports (list, show).
    Imports(imports::ImportsArgs),
    /// Show what a medium carries, from its manifest; checks the signature given the key.
    Inspect(inspect::InspectArgs),
    /// Enroll the low side's medium-signing keys on the high side.
    Exporter(exporter::ExporterArgs),
    /// Pin collectors in airgate.lock.
    Lock(lock::LockArgs),
    /// Run a benchmark against its named baseline (figures for the team's notes).
    Bench(bench::BenchArgs),
    /// Snapshot a TUF repository (the Sigstore trust root) or verify a snapshot offline.
    Tuf(tuf::TufArgs),
    /// High side: write the read side (artifacts, .sigs, conda channel, TUF, log tiles, a static page) as plain files.
    Publish(publish::PublishArgs),
    /// High side: push the imported container images to a registry (blobs, manifests, signatures, tags).
    Push(push::PushArgs),
    /// High side: serve artifacts with .sigs, the private TUF repository, the log and a dashboard.
    Serve(serve::ServeArgs),
}

impl Command {
    /// Runs the chosen subcommand.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Demo(args) => args.run(),
            Command::Verify(args) => args.run(),
            Command::Artifact(args) => args.run(),
            Command::Ca(args) => args.run(),
            Command::Sign(args) => args.run(),
            Command::Log(args) => args.run(),
            Command::Export(args) => args.run(),
            Command::ExportKey(args) => args.run(),
            Command::Lock(args) => args.run(),
            Command::Import(args) => args.run(),
            Command::Inspect(args) => args.run(),
            Command::Imports(args) => args.run(),
            Command::Exporter(args) => args.run(),
            Command::Bench(args) => args.run(),
            Command::Tuf(args) => args.run(),
            Command::Push(args) => args.run(),
            Command::Serve(args) => args.run(),
            Command::Publish(args) => args.run(),
        }
    }
}
