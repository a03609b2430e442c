//! airgate's private Sigstore CA: a Fulcio-like certificate authority with a
//! private CT signer for embedded SCTs. Holds private keys: small and audited.
//! Key material never appears in `Debug`, logs or errors.
#![forbid(unsafe_code)]

pub mod ca;
mod der;
mod der_cert;
mod error;
pub mod keys;
mod pem;
pub mod rotate;
mod sct;
pub mod trust;

pub use ca::{
    init_ceremony, CaConfig, CeremonySummary, Custody, IssuedLeaf, LeafRequest, PrivateCa,
    SigningIdentity,
};
pub use error::{Error, Result};
pub use keys::{Curve, Ed25519SigningKey, SigningKey};
/// PEM encoding of the CA's own output (64-column lines, trailing newline).
pub use pem::encode as pem_encode;
/// The RFC 6962 `digitally-signed` input of a precertificate SCT (an encoder).
pub use sct::precert_signed_data;
