//! MCA slot binding: which of a profile's trustpoints may issue the machine certificate
//! (the TLS one) and which the user certificate (the MCA one).

use std::fmt;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::LoginRefusal;
use crate::config::ConnectionProfile;
use crate::pki::{TrustStore, ValidatedChain};

/// The two certificates of an MCA login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The certificate of the TLS handshake (the only one without MCA).
    Machine,
    /// The certificate of the MCA auth-reply's PKCS#7 bag.
    User,
}

impl Slot {
    /// The profile field that binds this slot.
    pub fn field(self) -> &'static str {
        match self {
            Self::Machine => "machine_trustpoints",
            Self::User => "user_trustpoints",
        }
    }

    /// The trustpoints bound to this slot; empty means every trustpoint of the profile.
    pub fn bound_trustpoints(self, profile: &ConnectionProfile) -> &[String] {
        match self {
            Self::Machine => &profile.machine_trustpoints,
            Self::User => &profile.user_trustpoints,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Machine => "machine",
            Self::User => "user",
        })
    }
}

/// Validates `chain` for `slot`: against the slot's trustpoints when the profile binds
/// it, else against all of the profile's. A chain that only another slot's trustpoint
/// validates is refused as [`LoginRefusal::WrongSlot`], naming that trustpoint.
pub(super) fn validate(
    store: &TrustStore,
    profile: &ConnectionProfile,
    slot: Slot,
    chain: &[CertificateDer<'static>],
    now: OffsetDateTime,
) -> Result<ValidatedChain, LoginRefusal> {
    let bound = slot.bound_trustpoints(profile);
    let refused = |source| LoginRefusal::Chain { slot, source };
    if bound.is_empty() {
        return store.validate(chain, now).map_err(refused);
    }
    let allowed = |trustpoint: &str| bound.iter().any(|name| name == trustpoint);
    match store.validate_among(chain, now, allowed) {
        Ok(validated) => Ok(validated),
        Err(source) => match store.validate(chain, now) {
            Ok(elsewhere) => Err(LoginRefusal::WrongSlot {
                slot,
                trustpoint: elsewhere.trustpoint,
                profile: profile.name.clone(),
                field: slot.field(),
            }),
            Err(_) => Err(refused(source)),
        },
    }
}
