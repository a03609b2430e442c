//! private-ca
