//! The transparency log: RFC 6962 Merkle tree, checkpoints, entry bodies and
//! the SQLite store. `merkle`, `checkpoint` and `entry` are pure.

pub mod checkpoint;
pub mod cosignature;
pub mod entry;
pub mod merkle;
pub mod monitor;
pub mod store;
pub mod tiles;

pub use store::{
    open_database, origin_for, verify_note, verify_note_by_any, AppendedBatch, AppendedEntry,
    KeptCheckpoint, Log, LogAudit, LogError, LogKey, LogReader, NewEntry, OwnedLogKey,
    StoredCheckpoint, StoredEntry,
};
