//! The JSON documents of the management API.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::DeviceConfig;
use crate::pki::{CertificateInfo, pem};
use crate::session::SessionRecord;

/// `POST /api/v1/registration/challenge`: a single-use challenge for one registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationChallenge {
    /// [`super::CHALLENGE_BYTES`] random bytes, hex.
    pub challenge: String,
    /// How long the sensor keeps it.
    pub expires_in_secs: u32,
}

/// `POST /api/v1/registration`: the manager proves the key and hands over the channel
/// certificates its internal CA issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The challenge (hex) this request answers.
    pub challenge: String,
    /// The id the manager gives the device; every configuration it deploys carries it.
    pub device_id: Uuid,
    /// The device's display name on the manager.
    pub device_name: String,
    /// Must equal the NAT ID typed on the sensor (both absent, or both the same).
    pub nat_id: Option<String>,
    pub manager_name: String,
    /// The manager's internal CA.
    pub ca_certificate_pem: String,
    /// The certificate the manager presents from now on (client authentication).
    pub manager_certificate_pem: String,
    /// The sensor's certificate from now on, issued for the key of the certificate the
    /// sensor presented in this handshake.
    pub sensor_certificate_pem: String,
    /// [`super::manager_proof`], hex.
    pub manager_proof: String,
}

/// The sensor's answer to a registration it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationResponse {
    pub device_id: Uuid,
    /// [`super::sensor_proof`], hex.
    pub sensor_proof: String,
    pub agent_version: String,
    pub hostname: String,
}

/// The answer to an accepted configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployResult {
    pub version: u64,
    /// [`DeviceConfig::content_hash`] of the applied document.
    pub hash: String,
    /// `show running-config` of the applied document, line by line.
    pub transcript: Vec<String>,
    pub warnings: Vec<String>,
    /// Sessions the deploy ended (their profile, pool or trust was removed or changed).
    pub ended_sessions: Vec<u32>,
}

/// Every refusal of the management API: a stable code, a sentence, and for a
/// configuration that fails validation one line per problem (`path: problem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelError {
    /// `not-registered`, `already-registered`, `registration-refused`,
    /// `bad-request`, `other-device`, `not-newer`, `invalid-config`, `apply-failed`, ...
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// `GET /api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorStatus {
    pub agent_version: String,
    pub hostname: String,
    /// The id given at registration.
    pub device_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub uptime_secs: u64,
    /// `None` until a configuration has been applied.
    pub running: Option<RunningConfigSummary>,
    pub sessions: SessionCounts,
    /// The headend's identity certificate (the leaf of the running configuration's).
    pub identity_certificate: Option<CertificateExpiry>,
    /// Every CA certificate of every trustpoint of the running configuration.
    pub trustpoints: Vec<CertificateExpiry>,
    /// The sensor's channel certificate issued at registration.
    pub channel_certificate: Option<CertificateExpiry>,
}

/// Version and hash of the running configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunningConfigSummary {
    pub version: u64,
    pub hash: String,
    pub connection_profiles: u32,
}

/// Session counts of `show vpn-sessiondb summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCounts {
    pub active: u32,
    pub inactive: u32,
    pub ssl_tunnels: u32,
    pub dtls_tunnels: u32,
    pub cumulative: u64,
    pub peak_concurrent: u64,
    pub device_capacity: u32,
}

/// When one certificate expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateExpiry {
    /// The trustpoint's name (or `identity`, `channel`).
    pub name: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// SHA-256 over the DER, hex upper-case.
    pub fingerprint_sha256: String,
}

impl CertificateExpiry {
    /// The first certificate of `pem_text`, or `None` when there is none readable.
    pub fn of_first(name: &str, pem_text: &str) -> Option<Self> {
        let der = pem::certificates(pem_text).ok()?.into_iter().next()?;
        Self::of_der(name, der.as_ref())
    }

    pub fn of_der(name: &str, der: &[u8]) -> Option<Self> {
        let info = CertificateInfo::from_der(der).ok()?;
        Some(Self {
            name: name.to_owned(),
            subject: info.subject,
            not_after: info.not_after,
            fingerprint_sha256: info.fingerprint_sha256,
        })
    }

    /// Whole days from `now` to expiry; negative once expired.
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }
}

/// The identity certificate's and every trustpoint CA certificate's expiry.
pub fn certificate_expiries(
    config: &DeviceConfig,
) -> (Option<CertificateExpiry>, Vec<CertificateExpiry>) {
    let identity = &config.headend.identity;
    let identity =
        CertificateExpiry::of_first(&identity.trustpoint, &identity.certificate_chain_pem);
    let trustpoints = config
        .trustpoints
        .iter()
        .flat_map(|trustpoint| {
            pem::certificates(&trustpoint.ca_certificates_pem)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|der| CertificateExpiry::of_der(&trustpoint.name, der.as_ref()))
                .collect::<Vec<_>>()
        })
        .collect();
    (identity, trustpoints)
}

/// `GET /api/v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionList {
    pub items: Vec<SessionRecord>,
}

/// `POST /api/v1/sessions/terminate`, as FMC's `terminateravpnsessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "terminate_by",
    rename_all = "SCREAMING_SNAKE_CASE",
    deny_unknown_fields
)]
pub enum TerminateRequest {
    /// The sessions with these indexes.
    Session { indexes: Vec<u32> },
    /// Every session of these users.
    User { usernames: Vec<String> },
    /// Every session of the device.
    Device,
}

/// How many sessions a terminate ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminateResult {
    pub terminated: u32,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::config::fixture;

    #[test]
    fn terminate_requests_read_as_fmc_writes_them() {
        let by_user: TerminateRequest =
            serde_json::from_str(r#"{"terminate_by":"USER","usernames":["alice"]}"#).unwrap();
        assert_eq!(
            by_user,
            TerminateRequest::User {
                usernames: vec!["alice".to_owned()]
            }
        );
        let all: TerminateRequest = serde_json::from_str(r#"{"terminate_by":"DEVICE"}"#).unwrap();
        assert_eq!(all, TerminateRequest::Device);
        assert!(
            serde_json::from_str::<TerminateRequest>(r#"{"terminate_by":"EVERYONE"}"#).is_err()
        );
    }

    #[test]
    fn expiries_cover_the_identity_and_every_trustpoint_certificate() {
        let config = fixture::seed_config();
        let (identity, trustpoints) = certificate_expiries(&config);
        let expected_trust: usize = config
            .trustpoints
            .iter()
            .map(|t| pem::certificates(&t.ca_certificates_pem).unwrap().len())
            .sum();
        assert_eq!(trustpoints.len(), expected_trust);
        assert!(trustpoints.iter().all(|e| !e.fingerprint_sha256.is_empty()));
        if config
            .headend
            .identity
            .certificate_chain_pem
            .trim()
            .is_empty()
        {
            assert_eq!(identity, None);
        } else {
            assert!(identity.is_some());
        }
    }

    #[test]
    fn days_left_turn_negative_after_expiry() {
        let expiry = CertificateExpiry {
            name: "t".to_owned(),
            subject: "CN=t".to_owned(),
            not_after: datetime!(2026-12-01 0:00 UTC),
            fingerprint_sha256: String::new(),
        };
        assert_eq!(expiry.days_left(datetime!(2026-11-27 0:00 UTC)), 4);
        assert_eq!(expiry.days_left(datetime!(2026-12-03 0:00 UTC)), -2);
    }
}
