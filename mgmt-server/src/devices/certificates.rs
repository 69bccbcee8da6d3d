//! Device identity certificates (FMC's Devices > Certificates), the one set of rules
//! for both doors: an administrator installs a certificate chain and its private key
//! on a device for a manual or PKCS#12 enrollment (the two must be usable together);
//! internal-CA enrollments are issued at deploy. Private keys never leave the service.

use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::Sensors;
use super::records::acquire;
use crate::db::cert_enrollments::{self, CertEnrollment, EnrollmentContent};
use crate::db::device_certificates::{self, DeviceCertificate};
use crate::db::devices::Device;
use crate::db::{Actor, DbError, Listed, ObjectKind, Page, devices, policies};
use crate::pki::identity_pair::{self, PairProblem};
use crate::rules::{self, ChangeError, Problem, Problems};

/// A field of an installed certificate a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CertificateChain,
    PrivateKey,
    /// The chain and key together.
    Identity,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::CertificateChain => "identityCertificate.certificateChainPem",
            Self::PrivateKey => "identityCertificate.privateKeyPem",
            Self::Identity => "identityCertificate",
        }
    }
}

/// Why a certificate was not installed.
pub type InstallError = ChangeError<Field>;

/// A certificate and key an administrator installs for an enrollment.
pub struct Installation {
    pub enrollment_id: Uuid,
    pub certificate_chain_pem: String,
    pub private_key_pem: PrivateKeyPem,
}

impl std::fmt::Debug for Installation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installation")
            .field("enrollment_id", &self.enrollment_id)
            .finish_non_exhaustive()
    }
}

/// Every rule an installation breaks: a readable chain, a readable key, and a key that
/// belongs to the chain's leaf.
pub fn check(installation: &Installation) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    let chain = installation.certificate_chain_pem.trim();
    let key = installation.private_key_pem.expose().trim();
    if chain.is_empty() {
        problems.add(Field::CertificateChain, "is required");
    }
    if key.is_empty() {
        problems.add(Field::PrivateKey, "is required");
    }
    if !chain.is_empty() {
        let key = Some(key).filter(|k| !k.is_empty());
        for problem in identity_pair::check(chain, key) {
            match problem {
                PairProblem::Chain(message) => problems.add(Field::CertificateChain, message),
                PairProblem::Key(message) => problems.add(Field::PrivateKey, message),
                PairProblem::Mismatch(message) => problems.add(Field::Identity, message),
            }
        }
    }
    problems.into_vec()
}

/// The identity a device presents for one enrollment.
#[derive(Debug)]
pub enum DeviceIdentity {
    /// A certificate of its own (issued by the internal CA or installed).
    Own(DeviceCertificate),
    /// The identity enrollment of the device's policy, for which it has none of its
    /// own: it presents the enrollment's certificate (or is issued one at deploy).
    Enrollment(CertEnrollment),
}

impl Sensors {
    /// The certificates of one device.
    pub async fn device_certificates(
        &self,
        domain_id: Uuid,
        device_id: Uuid,
        page: Page,
    ) -> Result<Listed<DeviceCertificate>, DbError> {
        devices::get(&self.pool, domain_id, device_id).await?;
        device_certificates::list_for_device(&self.pool, domain_id, device_id, page).await
    }

    /// A certificate of `device_id` (another device's is not found).
    pub async fn device_certificate(
        &self,
        domain_id: Uuid,
        device_id: Uuid,
        id: Uuid,
    ) -> Result<DeviceCertificate, DbError> {
        let certificate = device_certificates::get(&self.pool, domain_id, id).await?;
        if certificate.device.id != device_id {
            return Err(DbError::NotFound {
                kind: ObjectKind::DeviceCertificate,
                id,
            });
        }
        Ok(certificate)
    }

    /// Installs a certificate of a manual or PKCS#12 enrollment on the device.
    pub async fn install_certificate(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        device_id: Uuid,
        installation: &Installation,
    ) -> Result<DeviceCertificate, InstallError> {
        let problems = check(installation);
        if !problems.is_empty() {
            return Err(InstallError::Invalid(problems));
        }
        let mut conn = acquire(&self.pool).await?;
        Ok(device_certificates::install(
            &mut conn,
            actor,
            domain_id,
            device_id,
            installation.enrollment_id,
            installation.certificate_chain_pem.trim(),
            &installation.private_key_pem,
            &self.key,
        )
        .await?)
    }

    /// Removes a device's certificate (of `device_id`, when the caller names the
    /// device): the device falls back to the enrollment's own certificate, or is issued
    /// a new one at its next deploy.
    pub async fn remove_certificate(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        device_id: Option<Uuid>,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<(), DbError> {
        if let Some(device_id) = device_id {
            self.device_certificate(domain_id, device_id, id).await?;
        }
        let mut conn = acquire(&self.pool).await?;
        device_certificates::delete(&mut conn, actor, domain_id, id, expected_version).await
    }

    /// For every device, the identities it presents: its own certificates, then its
    /// policy's identity enrollment when it has no certificate of its own for it.
    pub async fn certificate_overview(
        &self,
        domain_id: Uuid,
    ) -> Result<Vec<(Device, Vec<DeviceIdentity>)>, DbError> {
        let mut overview = Vec::new();
        for device in devices::list(&self.pool, domain_id, Page::ALL).await?.items {
            let own =
                device_certificates::list_for_device(&self.pool, domain_id, device.id, Page::ALL)
                    .await?
                    .items;
            let policy = policies::for_device(&self.pool, domain_id, device.id).await?;
            let reference = policy
                .and_then(|p| p.ssl_identity_certificate)
                .filter(|r| !own.iter().any(|c| c.enrollment.id == r.id));
            let mut identities: Vec<DeviceIdentity> =
                own.into_iter().map(DeviceIdentity::Own).collect();
            if let Some(reference) = reference {
                let enrollment = cert_enrollments::get(&self.pool, domain_id, reference.id).await?;
                if matches!(enrollment.content, EnrollmentContent::Identity { .. }) {
                    identities.push(DeviceIdentity::Enrollment(enrollment));
                }
            }
            overview.push((device, identities));
        }
        Ok(overview)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(chain: &str, key: &str) -> Installation {
        Installation {
            enrollment_id: Uuid::nil(),
            certificate_chain_pem: chain.to_owned(),
            private_key_pem: PrivateKeyPem(key.to_owned()),
        }
    }

    fn fields(installation: &Installation) -> Vec<Field> {
        check(installation).iter().map(|p| p.field).collect()
    }

    #[test]
    fn an_installed_certificate_needs_a_chain_and_the_key_of_its_leaf() {
        let make = || {
            let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
            let params = rcgen::CertificateParams::new(vec!["vpn.example.com".to_owned()])
                .unwrap_or_else(|e| panic!("{e}"));
            let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
            (cert.pem(), key.serialize_pem())
        };
        let (chain, key) = make();
        let (_, other_key) = make();
        assert!(fields(&installation(&chain, &key)).is_empty());
        assert_eq!(
            fields(&installation("", "")),
            [Field::CertificateChain, Field::PrivateKey]
        );
        assert_eq!(
            fields(&installation("not pem", &key)),
            [Field::CertificateChain]
        );
        assert_eq!(fields(&installation(&chain, &other_key)), [Field::Identity]);
    }
}
