//! airgate's private Sigstore CA: a Fulcio-like certificate authority with a
//! private CT signer for embedded SCTs. Holds private keys: small and audited.
//! Key material never appears in `Debug`, logs or errors.
#![forbid(unsafe_code)]

pub mod ca;
pub mod der;
pub mod der_cert;
mod error;
pub mod keys;
pub mod pem;
pub mod sct;
pub mod trust;

pub use ca::{
    init_ceremony, CaConfig, CeremonySummary, Custody, IssuedLeaf, LeafRequest, PrivateCa,
    SigningIdentity,
};
pub use error::{Error, Result};
pub use keys::{Curve, Ed25519SigningKey, SigningKey};
