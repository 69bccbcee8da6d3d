//! Certificates: PEM decoding, chain validation against trustpoints, revocation,
//! and username mapping.
//!
//! Time is always a parameter (`time::OffsetDateTime`), like in `config::validate`.

pub mod certificate_info;
pub mod chain;
mod checks;
#[cfg(test)]
mod openssl_cli;
pub mod pem;
pub mod revocation;
#[cfg(any(test, feature = "test-pki"))]
pub mod testpki;
pub mod username;

pub use certificate_info::{
    CertificateInfo, CertificateInfoError, KeyType, MAX_CERTIFICATE_BYTES, fingerprint_sha256,
    public_key_sha256,
};
pub use chain::{
    CertificateId, CertificateRole, ChainError, MAX_CHAIN_CERTIFICATES, TrustStore,
    TrustStoreError, ValidatedChain,
};
pub use checks::MIN_RSA_BITS;
pub use revocation::CrlError;
pub use username::{MappedUsername, UsernameError, map_username};
