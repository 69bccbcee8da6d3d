//! The login decision (protocol.md §2), sans-IO: one place that says what the headend
//! answers to each aggregate-auth message.
//!
//! The headend keeps the state that must survive between HTTP requests (the MCA
//! challenges in a [`ChallengeStore`](crate::mca::ChallengeStore), the logins waiting
//! for a password as [`PendingPassword`]s), checks password hashes and creates
//! sessions; everything else is decided here:
//!
//! * [`on_init`]: profile selection ([`select_profile`]), then the group-select form,
//!   the client certificate request, the MCA challenge, the password form, a login or
//!   a refusal.
//! * [`on_mca_reply`]: the signed MCA answer (`1U` chain count, signature, PKCS#7 bag),
//!   then the certificates.
//! * [`on_password_reply`]: the typed credentials against the waiting login, giving a
//!   [`PasswordCheck`] that the headend answers with the result of the hash check.
//! * [`evaluate_certificates`]: the certificate part alone (each chain against the
//!   trustpoints of its MCA slot, the slot binding, distinct keys, the username). The
//!   manager's MCA test bench calls it: it has no user key, so no signature to check.
//!
//! Every outcome is a [`Next`]; a refusal carries a [`LoginRefusal`] saying what is
//! wrong, for the headend's syslog line.

mod admission;
mod certificates;
mod flow;
mod password;
mod refusal;
mod selection;
mod slots;

use std::sync::Arc;

use crate::config::{ConnectionProfile, DeviceConfig};
use crate::pki::{TrustStore, TrustStoreError};

pub use admission::{Admission, CertificateIdentity, UsernameFrom};
pub use certificates::{CertificateVerdict, evaluate_certificates};
pub use flow::{LoginContext, Next, on_init, on_mca_reply};
pub use password::{PasswordCheck, PasswordForm, PendingPassword, on_password_reply};
pub use refusal::{LOGIN_FAILED, LoginRefusal, MCA_REQUIRED};
pub use selection::{Selection, select_profile};
pub use slots::Slot;

/// Where the decision gets a profile's parsed trust store. The sensor caches the stores
/// per configuration version; [`ParseEachTime`] parses them on every call.
pub trait TrustSource {
    fn trust_store(
        &self,
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Arc<TrustStore>, TrustStoreError>;
}

/// A [`TrustSource`] without a cache: for the manager's test bench and for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseEachTime;

impl TrustSource for ParseEachTime {
    fn trust_store(
        &self,
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Arc<TrustStore>, TrustStoreError> {
        TrustStore::for_profile(config, profile).map(Arc::new)
    }
}

#[cfg(test)]
mod tests;
