//! The judges both sides share: pure functions from bytes and types to a
//! decision, no I/O. Each rule of the low and the high side has one home here:
//!
//! - [`artifact`]: may this artifact pass, given its bundle(s), the policy and
//!   the trusted root (the policy match, `.sigs` arrays, the verified digest);
//! - [`collector`]: do a collector's bytes match the lock, and are they signed
//!   by the locked signer;
//! - [`medium`]: the high side's rules about a medium: entries against the
//!   signed manifest, the transit window, export order per exporter, the TUF
//!   claim against the verified snapshot, immutable names.
//!
//! `export` and `import` are pipelines that read files, call these, and write.

pub mod artifact;
pub mod collector;
pub mod medium;

pub use artifact::{upstream_of, AcceptedBundle, ArtifactJudge, ArtifactRejection};
pub use medium::ImportRejected;
