//! End-to-end tests of the `airgate` binary (one test binary, many modules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod common;
mod conda;
mod conformance;
mod export;
mod fuzz;
mod images;
mod import_crash;
mod import_v2;
mod interop;
mod log_audit;
mod log_crash;
mod publish;
mod registry;
mod rotation;
mod roundtrip;
mod serve;
mod tiles;
mod world;
