//! airgate's gateway library: bundle verification, media, the private log,
//! export, import and the HTTP server. The `airgate` binary only wires these.
#![forbid(unsafe_code)]

pub mod attest;
pub mod bundle;
pub mod bundle_json;
pub mod collector;
pub mod conda;
pub mod crypto;
pub mod demo;
pub mod encoding;
mod error;
pub mod escape;
pub mod export;
pub mod files;
pub mod http;
pub mod import;
pub mod judge;
pub mod lock;
pub mod medium;
pub mod oci;
pub mod policy;
pub mod progress;
pub mod publish;
pub mod signing;
pub mod state;
pub mod strict_json;
pub mod tlog;
pub mod x509;

pub use private_ca;
pub use tuf_repo;

pub use error::{Error, Result};
