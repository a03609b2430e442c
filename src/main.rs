//! `airgate`: the air-gap import/export gateway CLI. Parses, wires, reports.
#![forbid(unsafe_code)]

mod cmd;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    output::quiet_on_closed_stdout();
    let json = output::json_requested(std::env::args_os());
    let cli = cmd::Cli::parse();
    match cli.command.run() {
        Ok(code) => code,
        Err(err) => output::report_error(&err, json),
    }
}
