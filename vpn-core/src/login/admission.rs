//! What an admitted login is: who the client is, how we know, and with which
//! certificates.

use crate::config::ConnectionProfile;
use crate::pki::CertificateInfo;
use crate::session::{AuthMode, CertificateSummary};

/// Which certificate the username was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameFrom {
    /// The TLS certificate of a login without MCA.
    TheClientCertificate,
    /// The machine certificate of an MCA login.
    FirstCertificate,
    /// The user certificate of an MCA login.
    SecondCertificate,
}

impl UsernameFrom {
    /// How the session detail names the source, e.g. `the second certificate (user)`.
    pub fn label(self) -> &'static str {
        match self {
            Self::TheClientCertificate => "the client certificate",
            Self::FirstCertificate => "the first certificate (machine)",
            Self::SecondCertificate => "the second certificate (user)",
        }
    }
}

/// Who the certificates say the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub username: String,
    /// The mapping used, e.g. `CN of subject`.
    pub mapping: String,
    pub from: UsernameFrom,
    pub machine: Option<CertificateSummary>,
    pub user: Option<CertificateSummary>,
}

impl CertificateIdentity {
    /// The username-derivation trace of the session, e.g. `CN of subject of the
    /// second certificate (user)`.
    pub fn derivation(&self) -> String {
        format!("{} of {}", self.mapping, self.from.label())
    }
}

/// A login to turn into a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission<'c> {
    pub profile: &'c ConnectionProfile,
    pub username: String,
    /// Empty for a login by password only.
    pub username_derivation: String,
    pub machine_certificate: Option<CertificateSummary>,
    pub user_certificate: Option<CertificateSummary>,
    pub auth_mode: AuthMode,
    /// SHA-256 of the TLS client certificate the session is bound to.
    pub machine_fingerprint: Option<[u8; 32]>,
}

impl<'c> Admission<'c> {
    pub(super) fn new(
        profile: &'c ConnectionProfile,
        identity: Option<CertificateIdentity>,
        username: String,
        machine_fingerprint: Option<[u8; 32]>,
    ) -> Self {
        let (derivation, machine, user) = match identity {
            Some(identity) => (identity.derivation(), identity.machine, identity.user),
            None => (String::new(), None, None),
        };
        Admission {
            profile,
            username,
            username_derivation: derivation,
            machine_certificate: machine,
            user_certificate: user,
            auth_mode: AuthMode::for_aaa_settings(&profile.aaa),
            machine_fingerprint,
        }
    }
}

pub(super) fn summary(info: &CertificateInfo) -> CertificateSummary {
    CertificateSummary {
        subject: info.subject.clone(),
        issuer: info.issuer.clone(),
        serial: info.serial.to_ascii_lowercase(),
    }
}
