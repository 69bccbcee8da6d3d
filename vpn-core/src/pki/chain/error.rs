//! What went wrong, said so that an FTD administrator reading syslog understands it.

use std::fmt;

use time::OffsetDateTime;

use crate::pki::pem::PemError;
use crate::pki::revocation::CrlError;

/// Where a certificate sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRole {
    Leaf,
    Intermediate,
    Anchor,
}

impl fmt::Display for CertificateRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Leaf => "client",
            Self::Intermediate => "intermediate CA",
            Self::Anchor => "trusted CA",
        })
    }
}

/// Which certificate: role, subject DN and serial (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateId {
    pub role: CertificateRole,
    pub subject: String,
    pub serial: String,
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} certificate '{}' (serial {})",
            self.role, self.subject, self.serial
        )
    }
}

/// Why a trustpoint cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustStoreError {
    #[error("no trustpoint to validate client certificates against")]
    NoTrustpoints,
    #[error("connection profile {profile} names trustpoint {trustpoint}, which does not exist")]
    UnknownTrustpoint { profile: String, trustpoint: String },
    #[error("trustpoint {trustpoint}: CA certificates: {source}")]
    CaCertificates {
        trustpoint: String,
        source: PemError,
    },
    #[error("trustpoint {trustpoint}: {count} CA certificates, more than the {max} allowed")]
    TooManyCaCertificates {
        trustpoint: String,
        count: usize,
        max: usize,
    },
    #[error("trustpoint {trustpoint}: CA certificate #{index} cannot be used: {reason}")]
    CaCertificate {
        trustpoint: String,
        index: usize,
        reason: String,
    },
    #[error("trustpoint {trustpoint}: CRL: {source}")]
    Crl {
        trustpoint: String,
        source: CrlError,
    },
}

/// Why a presented chain is refused. The texts are syslog-ready reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("no client certificate was presented")]
    NoCertificate,
    #[error("{count} certificates presented, more than the {max} allowed")]
    TooManyCertificates { count: usize, max: usize },
    #[error("presented certificate #{index} cannot be read: {reason}")]
    Malformed { index: usize, reason: String },
    #[error("no client certificate among the presented ones: every one issues another")]
    NoLeaf,
    #[error("more than one client certificate presented: {}", subjects.join("; "))]
    MultipleLeaves { subjects: Vec<String> },
    #[error("{cert} is self-signed and not trusted")]
    SelfSignedLeaf { cert: CertificateId },
    #[error("{cert} was issued by '{issuer}', which is not a trusted CA nor presented")]
    UnknownIssuer { cert: CertificateId, issuer: String },
    #[error(
        "{cert} chains to trustpoint {trustpoint}, whose validation usage excludes SSL clients"
    )]
    TrustpointNotForSslClients {
        cert: CertificateId,
        trustpoint: String,
    },
    #[error("{cert} expired on {}", utc(*not_after))]
    Expired {
        cert: CertificateId,
        not_after: OffsetDateTime,
    },
    #[error("{cert} is not valid before {}", utc(*not_before))]
    NotYetValid {
        cert: CertificateId,
        not_before: OffsetDateTime,
    },
    #[error("{cert} issues certificates but is not a CA (basic constraints)")]
    IssuerNotCa { cert: CertificateId },
    #[error("{cert} is a CA certificate, not a client certificate")]
    LeafIsCa { cert: CertificateId },
    #[error(
        "{cert} allows {path_len} intermediate CA(s) below it but the chain has {intermediates_below}"
    )]
    PathLenExceeded {
        cert: CertificateId,
        path_len: u32,
        intermediates_below: usize,
    },
    #[error("{cert} has no extended key usage; clientAuth is required")]
    MissingClientAuthEku { cert: CertificateId },
    #[error("{cert} is not for client authentication (extended key usage: {})", found.join(", "))]
    WrongEku {
        cert: CertificateId,
        found: Vec<String>,
    },
    #[error("{cert} is signed with the weak or unsupported algorithm {algorithm}")]
    WeakSignatureAlgorithm {
        cert: CertificateId,
        algorithm: String,
    },
    #[error("{cert} has a {bits}-bit RSA key; at least 2048 bits are required")]
    WeakRsaKey { cert: CertificateId, bits: u32 },
    #[error("{cert} uses the EC curve {curve}; only P-256 and P-384 are accepted")]
    UnsupportedCurve { cert: CertificateId, curve: String },
    #[error("{cert} has an unsupported key type {algorithm}")]
    UnsupportedKeyType {
        cert: CertificateId,
        algorithm: String,
    },
    #[error("the signatures of the chain of {cert} do not verify")]
    BadSignature { cert: CertificateId },
    #[error("{cert} is revoked{}", revoked_at.map(|t| format!(" since {}", utc(t))).unwrap_or_default())]
    Revoked {
        cert: CertificateId,
        revoked_at: Option<OffsetDateTime>,
    },
    #[error(
        "revocation status of {cert} is unknown: trustpoint {trustpoint} has no CRL from '{issuer}'"
    )]
    RevocationUnknown {
        cert: CertificateId,
        issuer: String,
        trustpoint: String,
    },
    #[error("the CRL from '{crl_issuer}' in trustpoint {trustpoint} has an invalid signature")]
    CrlSignatureInvalid {
        crl_issuer: String,
        trustpoint: String,
    },
    #[error(
        "the CRL from '{crl_issuer}' in trustpoint {trustpoint} expired (nextUpdate {})", utc(*next_update)
    )]
    CrlExpired {
        crl_issuer: String,
        trustpoint: String,
        next_update: OffsetDateTime,
    },
    #[error("{cert} was refused: {reason}")]
    Rejected { cert: CertificateId, reason: String },
}

/// `2026-01-01 00:00:00 UTC`: how times appear in reasons.
pub(crate) fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
