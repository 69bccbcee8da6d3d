//! The manager's internal CA: it issues the certificates of the management channel,
//! the manager's (client authentication) and each registered sensor's (server
//! authentication, for the key the sensor already holds, so no private key of a
//! sensor ever leaves it).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How long the internal CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a channel certificate is valid.
pub const CHANNEL_CERTIFICATE_VALIDITY: Duration = Duration::days(5 * 365);
/// Certificates are back-dated by this much against clock skew.
const BACKDATE: Duration = Duration::minutes(5);

/// Why the CA could not be loaded or could not issue.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot generate or read the CA key")]
    Key(#[source] rcgen::Error),
    #[error("cannot read the CA certificate")]
    Certificate(#[source] rcgen::Error),
    #[error("the CA certificate and key do not belong together")]
    KeyMismatch,
    #[error("cannot issue the {what} certificate")]
    Issue {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("the sensor's certificate cannot be read: {0}")]
    SensorCertificate(String),
}

/// A certificate and its private key, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedIdentity {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

impl std::fmt::Debug for IssuedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedIdentity")
            .field("certificate_pem", &self.certificate_pem)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// The internal CA, ready to issue.
pub struct InternalCa {
    certificate_pem: String,
    private_key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for InternalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalCa")
            .field("certificate_pem", &self.certificate_pem)
            .finish_non_exhaustive()
    }
}

impl InternalCa {
    /// A new CA named `common_name` (ECDSA P-256), valid from `now` for [`CA_VALIDITY`].
    pub fn generate(common_name: &str, now: OffsetDateTime) -> Result<Self, CaError> {
        let key = KeyPair::generate().map_err(CaError::Key)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - BACKDATE;
        params.not_after = now + CA_VALIDITY;
        let certificate = params
            .self_signed(&key)
            .map_err(|source| CaError::Issue { what: "CA", source })?;
        let private_key_pem = key.serialize_pem();
        Ok(Self {
            certificate_pem: certificate.pem(),
            private_key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA kept from an earlier run.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(private_key_pem).map_err(CaError::Key)?;
        let der = vpn_core::pki::pem::certificates(certificate_pem)
            .ok()
            .and_then(|certs| certs.into_iter().next())
            .ok_or(CaError::KeyMismatch)?;
        let (_, parsed) =
            X509Certificate::from_der(der.as_ref()).map_err(|_| CaError::KeyMismatch)?;
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::KeyMismatch);
        }
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            private_key_pem: private_key_pem.to_owned(),
            issuer: Issuer::from_ca_cert_pem(certificate_pem, key).map_err(CaError::Certificate)?,
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The CA's key, for storage (encrypted) only.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// The manager's channel identity: a new key and a client-authentication certificate.
    pub fn issue_manager_identity(
        &self,
        manager_name: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedIdentity, CaError> {
        let key = KeyPair::generate().map_err(CaError::Key)?;
        let mut params = leaf_params(manager_name, now);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let certificate =
            params
                .signed_by(&key, &self.issuer)
                .map_err(|source| CaError::Issue {
                    what: "manager",
                    source,
                })?;
        Ok(IssuedIdentity {
            certificate_pem: certificate.pem(),
            private_key_pem: key.serialize_pem(),
        })
    }

    /// The manager's HTTPS certificate for `names` (IP addresses or DNS names; the first
    /// is the common name): a new key, server authentication.
    pub fn issue_server_identity(
        &self,
        names: &[String],
        now: OffsetDateTime,
    ) -> Result<IssuedIdentity, CaError> {
        let key = KeyPair::generate().map_err(CaError::Key)?;
        let common_name = names.first().map_or("mgmt-server", String::as_str);
        let mut params = leaf_params(common_name, now);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(address) => Ok(SanType::IpAddress(address)),
                Err(_) => name.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()
            .map_err(|source| CaError::Issue {
                what: "server",
                source,
            })?;
        let certificate =
            params
                .signed_by(&key, &self.issuer)
                .map_err(|source| CaError::Issue {
                    what: "server",
                    source,
                })?;
        Ok(IssuedIdentity {
            certificate_pem: format!("{}{}", certificate.pem(), self.certificate_pem),
            private_key_pem: key.serialize_pem(),
        })
    }

    /// The sensor's channel certificate, for the public key of the certificate it
    /// presented (`presented_der`): server authentication, named by the device id.
    pub fn issue_sensor_certificate(
        &self,
        presented_der: &[u8],
        device_id: Uuid,
        device_name: &str,
        now: OffsetDateTime,
    ) -> Result<String, CaError> {
        let (_, presented) = X509Certificate::from_der(presented_der)
            .map_err(|e| CaError::SensorCertificate(e.to_string()))?;
        let public_key = SubjectPublicKeyInfo::from_der(presented.public_key().raw)
            .map_err(|e| CaError::SensorCertificate(e.to_string()))?;
        let mut params = leaf_params(device_name, now);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, device_id.to_string());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.subject_alt_names = vec![SanType::URI(
            format!("urn:uuid:{device_id}")
                .try_into()
                .map_err(|source| CaError::Issue {
                    what: "sensor",
                    source,
                })?,
        )];
        let certificate = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|source| CaError::Issue {
                what: "sensor",
                source,
            })?;
        Ok(certificate.pem())
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn leaf_params(common_name: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - BACKDATE;
    params.not_after = now + CHANNEL_CERTIFICATE_VALIDITY;
    params.use_authority_key_identifier_extension = true;
    params
}

pub mod identity_pair;
pub mod store;

#[cfg(test)]
mod tests;
