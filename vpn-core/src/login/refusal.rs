//! Why a login is refused, and what the client is told.

use crate::aggauth::CERTIFICATE_VALIDATION_FAILURE;
use crate::mca::McaError;
use crate::pki::{ChainError, TrustStoreError, UsernameError};

use super::Slot;

/// Text of the error form when a profile needs MCA and the client did not offer it.
pub const MCA_REQUIRED: &str = "Multiple certificate authentication required";
/// Text of the error form for a refused password or an unusable request.
pub const LOGIN_FAILED: &str = "Login failed.";

/// Why a login is refused. The text is for logs; the client only gets
/// [`LoginRefusal::client_message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("no enabled connection profile for path {path:?} and the group the client named")]
    UnknownProfile { path: String },
    #[error("the client sent no client certificate and gave up on it")]
    NoClientCertificate,
    #[error(
        "the profile requires multiple certificate authentication and the client did not offer multiple-cert"
    )]
    McaNotOffered,
    #[error("the profile's trustpoints cannot be used: {0}")]
    TrustpointsUnusable(TrustStoreError),
    #[error("the {slot} certificate chain failed validation: {source}")]
    Chain { slot: Slot, source: ChainError },
    #[error(
        "the {slot} certificate chains to trustpoint {trustpoint:?}, which connection profile {profile:?} does not allow for {slot} certificates ({field})"
    )]
    WrongSlot {
        slot: Slot,
        trustpoint: String,
        profile: String,
        /// `machine_trustpoints` or `user_trustpoints`.
        field: &'static str,
    },
    #[error("the machine and the user certificate have the same public key")]
    SameKeyInBothSlots,
    #[error("the auth-reply carries {count} user (1U) certificate chains; exactly one is expected")]
    SeveralUserChains { count: usize },
    #[error("{0}")]
    Mca(McaError),
    #[error(
        "connection profile {profile:?} of the MCA challenge is gone or no longer requires MCA"
    )]
    ProfileNoLongerMca { profile: String },
    #[error("no username from the certificate: {0}")]
    NoUsername(UsernameError),
    #[error("the reply carries neither an MCA answer nor credentials")]
    NoCredentials,
    #[error("password reply for an unknown or expired login")]
    UnknownPendingLogin,
    #[error("password reply on a connection with another machine certificate")]
    MachineCertificateChanged,
    #[error("username {typed:?} differs from the certificate")]
    UsernameDiffers { typed: String },
    #[error("the password form was answered without a username")]
    NoUsernameTyped,
    #[error("AAA failure for user {username:?}")]
    AaaFailure { username: String },
}

impl LoginRefusal {
    /// The text of the error form sent to the client: openconnect prints "Server
    /// reported certificate error" for [`CERTIFICATE_VALIDATION_FAILURE`].
    pub fn client_message(&self) -> &'static str {
        match self {
            Self::NoClientCertificate
            | Self::TrustpointsUnusable(_)
            | Self::Chain { .. }
            | Self::WrongSlot { .. }
            | Self::SameKeyInBothSlots
            | Self::SeveralUserChains { .. }
            | Self::Mca(_)
            | Self::NoUsername(_) => CERTIFICATE_VALIDATION_FAILURE,
            Self::McaNotOffered => MCA_REQUIRED,
            Self::UnknownProfile { .. }
            | Self::ProfileNoLongerMca { .. }
            | Self::NoCredentials
            | Self::UnknownPendingLogin
            | Self::MachineCertificateChanged
            | Self::UsernameDiffers { .. }
            | Self::NoUsernameTyped
            | Self::AaaFailure { .. } => LOGIN_FAILED,
        }
    }
}
