//! `airgate`: the air-gap import/export gateway CLI. Parses, wires, reports.
#![forbid(unsafe_code)]

mod cmd;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cli.command.run() {
        Ok(code) => code,
        Err(err) => output::report_error(&err),
    }
}
