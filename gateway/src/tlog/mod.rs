//! The transparency log: RFC 6962 Merkle tree, checkpoints, and the SQLite store.

pub mod checkpoint;
pub mod merkle;
