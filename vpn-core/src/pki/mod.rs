//! Certificates: PEM decoding, chain validation against trustpoints, revocation,
//! and username mapping.

pub mod certificate_info;
pub mod pem;
#[cfg(any(test, feature = "test-pki"))]
pub mod testpki;

pub use certificate_info::{
    CertificateInfo, CertificateInfoError, KeyType, MAX_CERTIFICATE_BYTES, fingerprint_sha256,
};
pub mod username;
pub use username::{MappedUsername, UsernameError, map_username};
