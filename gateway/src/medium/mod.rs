//! The transfer medium: entry names, the signed manifest, and writing/reading
//! the reproducible tar.

pub mod manifest;
mod name;
pub mod pack;
pub mod unpack;

pub use name::{EntryName, NameError, MAX_NAME_BYTES};
