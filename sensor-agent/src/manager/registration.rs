//! The sensor's checks of a registration, in FTD's order: the manager's address and the
//! NAT ID first, then the registration key (through the challenge and the proof), then
//! the certificates the manager hands over.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use vpn_core::channel::{CHALLENGE_BYTES, ManagerHost, RegistrationRequest, verify_manager_proof};
use vpn_core::pki::{CertificateInfo, pem};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::enrollment::{ChannelKey, PendingManager};

/// How long a challenge can be answered.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(60);
/// Most challenges outstanding at once; the oldest goes first.
pub const MAX_OUTSTANDING_CHALLENGES: usize = 16;
/// Wrong keys in a row before registrations are refused for [`LOCKOUT`].
pub const MAX_FAILED_PROOFS: u32 = 5;
pub const LOCKOUT: Duration = Duration::from_secs(300);

/// Why a registration was refused. The texts go back to the manager; none reveals the
/// expected key or NAT ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationRefusal {
    #[error(
        "no manager is configured on this sensor; run `configure manager add <host> <key> [<nat-id>]` on it first"
    )]
    NoManagerConfigured,
    #[error(
        "this sensor is already registered to manager {manager}; its registration key has been used"
    )]
    AlreadyRegistered { manager: String },
    #[error("the call comes from {peer}, but the manager configured on this sensor is {expected}")]
    AddressMismatch { peer: IpAddr, expected: String },
    #[error("the NAT ID does not match the one configured on this sensor")]
    NatIdMismatch,
    #[error("the registration challenge is unknown, used or expired; ask for a new one")]
    UnknownChallenge,
    #[error("the registration key does not match")]
    KeyMismatch,
    #[error("too many wrong registration keys; registration is refused for {secs} s")]
    LockedOut { secs: u64 },
    #[error("the {what} is not acceptable: {reason}")]
    BadCertificate { what: &'static str, reason: String },
}

/// Outstanding challenges and the count of wrong keys.
#[derive(Debug, Default)]
pub struct Challenges {
    issued: VecDeque<([u8; CHALLENGE_BYTES], Instant)>,
    failures: u32,
    locked_until: Option<Instant>,
}

impl Challenges {
    /// A new random challenge.
    pub fn issue(&mut self, now: Instant) -> Result<[u8; CHALLENGE_BYTES], RegistrationRefusal> {
        self.check_lockout(now)?;
        self.issued
            .retain(|(_, issued)| now.duration_since(*issued) < CHALLENGE_LIFETIME);
        if self.issued.len() >= MAX_OUTSTANDING_CHALLENGES {
            self.issued.pop_front();
        }
        let mut challenge = [0; CHALLENGE_BYTES];
        aws_lc_rs::rand::fill(&mut challenge).map_err(|_| RegistrationRefusal::UnknownChallenge)?;
        self.issued.push_back((challenge, now));
        Ok(challenge)
    }

    /// Removes and returns the challenge `hex_challenge`, if outstanding and fresh.
    pub fn take(
        &mut self,
        hex_challenge: &str,
        now: Instant,
    ) -> Result<[u8; CHALLENGE_BYTES], RegistrationRefusal> {
        self.check_lockout(now)?;
        let wanted =
            hex::decode(hex_challenge).map_err(|_| RegistrationRefusal::UnknownChallenge)?;
        let position = self
            .issued
            .iter()
            .position(|(challenge, _)| challenge.as_slice() == wanted.as_slice())
            .ok_or(RegistrationRefusal::UnknownChallenge)?;
        let (challenge, issued) = self
            .issued
            .remove(position)
            .ok_or(RegistrationRefusal::UnknownChallenge)?;
        if now.duration_since(issued) >= CHALLENGE_LIFETIME {
            return Err(RegistrationRefusal::UnknownChallenge);
        }
        Ok(challenge)
    }

    /// Counts a wrong key; the fifth in a row locks registration out.
    pub fn record_failure(&mut self, now: Instant) {
        self.failures += 1;
        if self.failures >= MAX_FAILED_PROOFS {
            self.failures = 0;
            self.locked_until = Some(now + LOCKOUT);
        }
    }

    pub fn record_success(&mut self) {
        self.failures = 0;
        self.issued.clear();
    }

    fn check_lockout(&mut self, now: Instant) -> Result<(), RegistrationRefusal> {
        match self.locked_until {
            Some(until) if now < until => Err(RegistrationRefusal::LockedOut {
                secs: until.duration_since(now).as_secs().max(1),
            }),
            _ => {
                self.locked_until = None;
                Ok(())
            }
        }
    }
}

/// Whether a call from `peer` can come from the configured manager. `resolved` are the
/// addresses of a configured host name.
pub fn check_address(
    pending: &PendingManager,
    peer: IpAddr,
    resolved: &[IpAddr],
) -> Result<(), RegistrationRefusal> {
    let peer = canonical(peer);
    let admitted = match &pending.address.host {
        ManagerHost::DontResolve => true,
        ManagerHost::Address(address) => canonical(*address) == peer,
        ManagerHost::Name(_) => resolved.iter().any(|address| canonical(*address) == peer),
    };
    if admitted {
        Ok(())
    } else {
        Err(RegistrationRefusal::AddressMismatch {
            peer,
            expected: pending.address.to_string(),
        })
    }
}

/// Both sides typed the same NAT ID, or neither typed one.
pub fn check_nat_id(
    pending: &PendingManager,
    request: &RegistrationRequest,
) -> Result<(), RegistrationRefusal> {
    let configured = pending.nat_id.as_ref().map(|id| id.as_str());
    if configured == request.nat_id.as_deref() {
        Ok(())
    } else {
        Err(RegistrationRefusal::NatIdMismatch)
    }
}

/// The manager's proof of the key, bound to `bootstrap_der` (what this sensor presented).
pub fn check_proof(
    pending: &PendingManager,
    challenge: &[u8],
    bootstrap_der: &[u8],
    request: &RegistrationRequest,
) -> Result<(), RegistrationRefusal> {
    verify_manager_proof(&pending.registration_key, challenge, bootstrap_der, request)
        .map_err(|_| RegistrationRefusal::KeyMismatch)
}

/// The CA is a CA; the sensor's certificate carries the channel key and chains to the CA
/// for server authentication; the manager's chains to it for client authentication.
pub fn check_certificates(
    key: &ChannelKey,
    request: &RegistrationRequest,
    now: OffsetDateTime,
) -> Result<(), RegistrationRefusal> {
    let ca = single("CA certificate", &request.ca_certificate_pem)?;
    let info = CertificateInfo::from_der(ca.as_ref()).map_err(|e| bad("CA certificate", e))?;
    if !info.is_ca {
        return Err(bad(
            "CA certificate",
            "it is not a CA (no basicConstraints CA flag)",
        ));
    }
    let sensor = single("sensor certificate", &request.sensor_certificate_pem)?;
    let (_, parsed) =
        X509Certificate::from_der(sensor.as_ref()).map_err(|e| bad("sensor certificate", e))?;
    if parsed.public_key().raw != key.public_key_der.as_slice() {
        return Err(bad(
            "sensor certificate",
            "it is not issued for this sensor's channel key",
        ));
    }
    chains(
        "sensor certificate",
        &ca,
        &sensor,
        webpki::KeyUsage::server_auth(),
        now,
    )?;
    let manager = single("manager certificate", &request.manager_certificate_pem)?;
    chains(
        "manager certificate",
        &ca,
        &manager,
        webpki::KeyUsage::client_auth(),
        now,
    )
}

fn single(what: &'static str, text: &str) -> Result<CertificateDer<'static>, RegistrationRefusal> {
    match pem::certificates(text) {
        Ok(certs) if certs.len() == 1 => certs.into_iter().next().ok_or_else(|| bad(what, "empty")),
        Ok(certs) => Err(bad(
            what,
            format!("expected one certificate, found {}", certs.len()),
        )),
        Err(e) => Err(bad(what, e)),
    }
}

fn chains(
    what: &'static str,
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    usage: webpki::KeyUsage,
    now: OffsetDateTime,
) -> Result<(), RegistrationRefusal> {
    let anchor = webpki::anchor_from_trusted_cert(ca).map_err(|e| bad("CA certificate", e))?;
    let cert = webpki::EndEntityCert::try_from(leaf).map_err(|e| bad(what, e))?;
    let seconds = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(Duration::from_secs(seconds)),
        usage,
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| bad(what, format!("it does not chain to the CA: {e}")))
}

fn bad(what: &'static str, reason: impl std::fmt::Display) -> RegistrationRefusal {
    RegistrationRefusal::BadCertificate {
        what,
        reason: reason.to_string(),
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
/// Whether two addresses are the same host (an IPv4-mapped IPv6 address is its IPv4).
pub fn same_address(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests;
