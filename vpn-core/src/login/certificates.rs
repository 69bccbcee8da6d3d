//! The certificate part of the decision: each chain against its slot's trustpoints,
//! distinct keys, and the username.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::admission::summary;
use super::{CertificateIdentity, LoginRefusal, Slot, UsernameFrom, slots};
use crate::config::{ConnectionProfile, UsernameSource};
use crate::pki::{TrustStore, ValidatedChain, map_username, public_key_sha256};

/// Certificates that passed, and what they prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateVerdict {
    pub identity: CertificateIdentity,
    pub machine: ValidatedChain,
    /// `None` when the profile does not use MCA.
    pub user: Option<ValidatedChain>,
}

/// Checks the machine chain (`machine`, leaf first: the TLS client chain) and, for an
/// MCA profile, the user chain (`user`, leaf first: the PKCS#7 bag) of `profile` at
/// `now`, then maps the username. The MCA signature is not part of it: the headend
/// checks it before ([`super::on_mca_reply`]); the manager's test bench cannot.
pub fn evaluate_certificates(
    profile: &ConnectionProfile,
    store: &TrustStore,
    machine: &[CertificateDer<'static>],
    user: Option<&[CertificateDer<'static>]>,
    now: OffsetDateTime,
) -> Result<CertificateVerdict, LoginRefusal> {
    let machine_chain = slots::validate(store, profile, Slot::Machine, machine, now)?;
    let machine_leaf = machine_chain.chain.first().cloned();
    let same_key_as_machine = |leaf: Option<&CertificateDer<'static>>| match (&machine_leaf, leaf) {
        (Some(machine_leaf), Some(leaf)) => same_key(machine_leaf, leaf),
        _ => false,
    };
    let user_chain = match user {
        Some(user) => {
            // Before the user chain is validated, so that this is the reason given.
            if same_key_as_machine(user.first()) {
                return Err(LoginRefusal::SameKeyInBothSlots);
            }
            let validated = slots::validate(store, profile, Slot::User, user, now)?;
            // The presented chain may not start with its leaf (the bench's paste).
            if same_key_as_machine(validated.chain.first()) {
                return Err(LoginRefusal::SameKeyInBothSlots);
            }
            Some(validated)
        }
        None => None,
    };
    let aaa = &profile.aaa;
    let user_leaf = user_chain.as_ref().and_then(|c| c.chain.first());
    let (source, from) = match (aaa.username_from_certificate_source, user_leaf) {
        (UsernameSource::SecondCertificate, Some(leaf)) => {
            (Some(leaf), UsernameFrom::SecondCertificate)
        }
        (_, Some(_)) => (machine_leaf.as_ref(), UsernameFrom::FirstCertificate),
        (_, None) => (machine_leaf.as_ref(), UsernameFrom::TheClientCertificate),
    };
    let source = source.map(|der| der.as_ref()).unwrap_or_default();
    let mapped = map_username(source, &aaa.username_mapping).map_err(LoginRefusal::NoUsername)?;
    Ok(CertificateVerdict {
        identity: CertificateIdentity {
            username: mapped.username,
            mapping: mapped.derivation,
            from,
            machine: Some(summary(&machine_chain.leaf)),
            user: user_chain.as_ref().map(|c| summary(&c.leaf)),
        },
        machine: machine_chain,
        user: user_chain,
    })
}

/// Whether two certificates carry the same public key (unparsable ones are left to
/// chain validation).
fn same_key(a: &CertificateDer<'_>, b: &CertificateDer<'_>) -> bool {
    match (public_key_sha256(a.as_ref()), public_key_sha256(b.as_ref())) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
