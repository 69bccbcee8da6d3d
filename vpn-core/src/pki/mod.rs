//! Certificates: PEM decoding, chain validation against trustpoints, revocation,
//! and username mapping.

pub mod pem;
