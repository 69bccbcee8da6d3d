//! Cert enrollments (`object/certenrollments`, Objects > PKI > Cert Enrollment): the
//! rules of CA certificates, identity certificates and their keys, checked once here for
//! both doors, then the repository write (keys sealed with the manager's key). An
//! identity issued by the internal CA is made here too.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{ObjectKind as CoreKind, PrivateKeyPem, Revocation};
use vpn_core::pki::{CertificateInfo, pem};

use super::acquire;
use crate::db::cert_enrollments::{self, CertEnrollment, CertEnrollmentInput, EnrollmentInput};
use crate::db::{Actor, DbError, EncryptionKey, Listed, Page};
use crate::pki::InternalCa;
use crate::pki::identity_pair::{self, PairProblem};
use crate::rules::{self, ChangeError, Problems};

/// A field of a cert enrollment a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    CaCertificates,
    Crls,
    IdentityChain,
    PrivateKey,
    /// The names an internal-CA identity is issued for.
    SubjectNames,
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::CaCertificates => "caCertificate.base64Content",
            Self::Crls => "revocation.certRevocationListContent.staticCrlPem",
            Self::IdentityChain => "identityCertificate.certificateChainPem",
            Self::PrivateKey => "identityCertificate.privateKeyPem",
            Self::SubjectNames => "certificateParameters.commonName",
        }
    }
}

pub type EnrollmentError = ChangeError<Field>;

/// Whether an input adds an enrollment or changes a stored one (an identity may then
/// come without its key: the stored key is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Create,
    Update,
}

/// Every rule `input` breaks.
pub fn check(input: &CertEnrollmentInput, purpose: Purpose) -> Problems<Field> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, CoreKind::Trustpoint, &input.name);
    match &input.content {
        EnrollmentInput::CaOnly(settings) => {
            check_ca_certificates(
                &mut problems,
                &settings.ca_certificates_pem,
                settings.skip_ca_flag_check,
            );
            if let Revocation::Crl { crls_pem } = &settings.revocation
                && crls_pem.trim().is_empty()
            {
                problems.add(Field::Crls, "CRL checking is on but no CRL (PEM) is given");
            }
        }
        EnrollmentInput::Identity {
            certificate_chain_pem,
            private_key_pem,
        } => {
            if private_key_pem.is_none() && purpose == Purpose::Create {
                problems.add(
                    Field::PrivateKey,
                    "is required for a new identity certificate",
                );
            }
            let key = private_key_pem.as_ref().map(|k| k.0.as_str());
            for problem in identity_pair::check(certificate_chain_pem, key) {
                match problem {
                    PairProblem::Chain(message) => problems.add(Field::IdentityChain, message),
                    PairProblem::Key(message) | PairProblem::Mismatch(message) => {
                        problems.add(Field::PrivateKey, message);
                    }
                }
            }
        }
    }
    problems
}

/// The certificates of a PEM text (at least one), or the problem with it.
fn certificates(
    problems: &mut Problems<Field>,
    field: Field,
    text: &str,
) -> Option<Vec<rustls::pki_types::CertificateDer<'static>>> {
    match pem::certificates(text) {
        Ok(certs) if !certs.is_empty() => Some(certs),
        Ok(_) => {
            problems.add(
                field,
                "no certificate found: paste a PEM block starting with -----BEGIN CERTIFICATE-----",
            );
            None
        }
        Err(e) => {
            problems.add(field, e.to_string());
            None
        }
    }
}

fn check_ca_certificates(problems: &mut Problems<Field>, text: &str, skip_ca_flag_check: bool) {
    let Some(certs) = certificates(problems, Field::CaCertificates, text) else {
        return;
    };
    for (i, der) in certs.iter().enumerate() {
        match CertificateInfo::from_der(der.as_ref()) {
            Ok(info) if info.is_ca || skip_ca_flag_check => {}
            Ok(info) => problems.add(
                Field::CaCertificates,
                format!(
                    "certificate {} ({}) is not a CA certificate (no basicConstraints CA flag); skip the CA flag check to use it anyway",
                    i + 1,
                    info.subject
                ),
            ),
            Err(e) => problems.add(Field::CaCertificates, format!("certificate {}: {e}", i + 1)),
        }
    }
}

/// An identity the internal CA issues for `names` (the first is the common name), as
/// the content of an enrollment.
pub fn issue_internal_identity(
    ca: &InternalCa,
    names: &[String],
    now: OffsetDateTime,
) -> Result<EnrollmentInput, EnrollmentError> {
    let mut problems = Problems::default();
    if names.is_empty() {
        problems.add(
            Field::SubjectNames,
            "enter the names clients connect to, e.g. vpn.example.com",
        );
        return Err(ChangeError::Invalid(problems.into_vec()));
    }
    match ca.issue_server_identity(names, now) {
        Ok(identity) => Ok(EnrollmentInput::Identity {
            certificate_chain_pem: identity.certificate_pem,
            private_key_pem: Some(PrivateKeyPem(identity.private_key_pem)),
        }),
        Err(e) => {
            problems.add(Field::SubjectNames, format!("the internal CA refused: {e}"));
            Err(ChangeError::Invalid(problems.into_vec()))
        }
    }
}

pub async fn list(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<CertEnrollment>, DbError> {
    cert_enrollments::list(pool, domain_id, page).await
}

pub async fn get(pool: &PgPool, domain_id: Uuid, id: Uuid) -> Result<CertEnrollment, DbError> {
    cert_enrollments::get(pool, domain_id, id).await
}

pub async fn create(
    pool: &PgPool,
    key: &EncryptionKey,
    actor: &Actor,
    domain_id: Uuid,
    input: &CertEnrollmentInput,
) -> Result<CertEnrollment, EnrollmentError> {
    check(input, Purpose::Create).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(cert_enrollments::create(&mut conn, actor, domain_id, input, key).await?)
}

pub async fn update(
    pool: &PgPool,
    key: &EncryptionKey,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &CertEnrollmentInput,
) -> Result<CertEnrollment, EnrollmentError> {
    check(input, Purpose::Update).finish()?;
    let mut conn = acquire(pool).await?;
    Ok(cert_enrollments::update(
        &mut conn,
        actor,
        domain_id,
        id,
        expected_version,
        input,
        key,
    )
    .await?)
}

/// Deletes an enrollment no profile or policy uses.
pub async fn delete(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    cert_enrollments::delete(&mut conn, actor, domain_id, id, expected_version).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cert_enrollments::{CaOnlySettings, EnrollmentType};

    fn fields(input: &CertEnrollmentInput, purpose: Purpose) -> Vec<Field> {
        check(input, purpose)
            .into_vec()
            .iter()
            .map(|p| p.field)
            .collect()
    }

    fn issued(ca: &InternalCa) -> (String, PrivateKeyPem) {
        match issue_internal_identity(
            ca,
            &["vpn.example.com".to_owned()],
            OffsetDateTime::now_utc(),
        ) {
            Ok(EnrollmentInput::Identity {
                certificate_chain_pem,
                private_key_pem: Some(key),
            }) => (certificate_chain_pem, key),
            other => panic!("no identity: {other:?}"),
        }
    }

    fn test_ca() -> InternalCa {
        InternalCa::generate("Test CA", OffsetDateTime::now_utc()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_ca_only_enrollment_needs_ca_certificates_and_a_crl_when_checking_is_on() {
        let ca = test_ca();
        let (leaf, _) = issued(&ca);
        let mut settings = CaOnlySettings::new(leaf);
        settings.revocation = Revocation::Crl {
            crls_pem: " ".into(),
        };
        let input = CertEnrollmentInput {
            name: "Machine-CA".into(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::CaOnly(settings.clone()),
        };
        assert_eq!(
            fields(&input, Purpose::Create),
            [Field::CaCertificates, Field::Crls]
        );
        settings.skip_ca_flag_check = true;
        settings.revocation = Revocation::None;
        let input = CertEnrollmentInput {
            content: EnrollmentInput::CaOnly(settings),
            ..input
        };
        assert!(fields(&input, Purpose::Create).is_empty());
    }

    #[test]
    fn an_identity_needs_its_own_key_when_it_is_new() {
        let ca = test_ca();
        let (chain, key) = issued(&ca);
        let (_, other_key) = issued(&ca);
        let identity = |key: Option<PrivateKeyPem>| CertEnrollmentInput {
            name: "VPN-Identity".into(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain.clone(),
                private_key_pem: key,
            },
        };
        assert!(fields(&identity(Some(key)), Purpose::Create).is_empty());
        assert_eq!(
            fields(&identity(Some(other_key)), Purpose::Create),
            [Field::PrivateKey]
        );
        assert_eq!(
            fields(&identity(None), Purpose::Create),
            [Field::PrivateKey]
        );
        assert!(fields(&identity(None), Purpose::Update).is_empty());
        assert_eq!(
            fields(
                &identity(Some(PrivateKeyPem("not a key".into()))),
                Purpose::Create
            ),
            [Field::PrivateKey]
        );
    }

    #[test]
    fn the_internal_ca_issues_only_for_named_hosts() {
        let ca = test_ca();
        match issue_internal_identity(&ca, &[], OffsetDateTime::now_utc()) {
            Err(ChangeError::Invalid(problems)) => {
                assert_eq!(problems[0].field, Field::SubjectNames);
            }
            other => panic!("issued without names: {other:?}"),
        }
    }
}
