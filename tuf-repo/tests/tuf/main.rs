//! Integration tests of `tuf-repo`: the real Sigstore repositories, named
//! negative repositories for each TUF attack, state across runs, and a
//! round trip over loopback HTTP; and airgate's private repository. One test binary keeps link time low.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attacks;
mod common;
mod http;
mod mirror;
mod private;
mod sigstore;
mod state;
mod testrepo;
