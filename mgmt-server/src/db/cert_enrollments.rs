//! Cert enrollments (`object/certenrollments`): CA-only trustpoints that client
//! certificates chain to, and identity certificates (the headend's TLS certificate and
//! private key). Identity private keys are stored encrypted with the caller's
//! [`EncryptionKey`]; reading an enrollment never returns a key, only
//! [`identity_private_key`] does.

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{PrivateKeyPem, Revocation, ValidationUsage};

use super::versioned::{Change, domain_scoped};
use super::{Actor, DbError, EncryptionKey, Listed, ObjectKind, Page};

/// FMC `enrollmentType` (only the kinds this product installs by hand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnrollmentType {
    #[default]
    Manual,
    Pkcs12,
    /// FMC's spelling (sic).
    #[serde(rename = "SELF_SIGNED_CERTFICATE")]
    SelfSignedCertificate,
}

/// A stored enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertEnrollment {
    pub id: Uuid,
    pub domain_id: Uuid,
    /// The trustpoint name on the device.
    pub name: String,
    pub description: String,
    pub enrollment_type: EnrollmentType,
    pub content: EnrollmentContent,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What an enrollment holds (without any private key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnrollmentContent {
    /// Manual, CA only: vpn-core's `Trustpoint` without its name.
    CaOnly(CaOnlySettings),
    /// The headend identity: certificate chain, leaf first. The key is kept apart.
    Identity { certificate_chain_pem: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaOnlySettings {
    pub ca_certificates_pem: String,
    pub validation_usage: ValidationUsage,
    pub skip_ca_flag_check: bool,
    pub require_client_auth_eku: bool,
    pub revocation: Revocation,
}

impl CaOnlySettings {
    /// FMC's defaults for a manual CA-only enrollment of `ca_certificates_pem`.
    pub fn new(ca_certificates_pem: impl Into<String>) -> Self {
        Self {
            ca_certificates_pem: ca_certificates_pem.into(),
            validation_usage: ValidationUsage::default(),
            skip_ca_flag_check: false,
            require_client_auth_eku: true,
            revocation: Revocation::None,
        }
    }
}

/// The editable fields of an enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEnrollmentInput {
    pub name: String,
    pub description: String,
    pub enrollment_type: EnrollmentType,
    pub content: EnrollmentInput,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentInput {
    CaOnly(CaOnlySettings),
    /// An identity certificate with its key. On update, `private_key_pem: None` keeps
    /// the stored key (a new chain for the same key, e.g. a renewal).
    Identity {
        certificate_chain_pem: String,
        private_key_pem: Option<PrivateKeyPem>,
    },
}

const KIND: ObjectKind = ObjectKind::CertEnrollment;

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &CertEnrollmentInput,
    key: &EncryptionKey,
) -> Result<CertEnrollment, DbError> {
    let id = Uuid::new_v4();
    if let EnrollmentInput::Identity {
        private_key_pem: None,
        ..
    } = &input.content
    {
        return Err(DbError::Invalid {
            kind: KIND,
            constraint: "cert_enrollments_identity_has_chain_and_key".to_owned(),
            message: "an identity certificate needs its private key".to_owned(),
        });
    }
    let mut change = Change::<CertEnrollment>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO cert_enrollments (id, domain_id, name, kind, ca_certificates_pem) VALUES ($1, $2, $3, 'CA_ONLY', '')",
        id,
        domain_id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "create a cert enrollment"))?;
    write_fields(change.conn(), id, input, key).await?;
    change.created(actor).await
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<CertEnrollment, DbError> {
    sqlx::query_as!(
        CertEnrollmentRow,
        "SELECT id, domain_id, name, description, kind, enrollment_type, ca_certificates_pem,
                validation_usage_ssl_client, validation_usage_ssl_server, validation_usage_ipsec_client,
                skip_ca_flag_check, require_client_auth_eku, revocation_mode, crls_pem,
                certificate_chain_pem, version, created_at, updated_at
         FROM cert_enrollments WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .try_map(CertEnrollment::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a cert enrollment"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<CertEnrollment>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = sqlx::query_as!(
        CertEnrollmentRow,
        "SELECT id, domain_id, name, description, kind, enrollment_type, ca_certificates_pem,
                validation_usage_ssl_client, validation_usage_ssl_server, validation_usage_ipsec_client,
                skip_ca_flag_check, require_client_auth_eku, revocation_mode, crls_pem,
                certificate_chain_pem, version, created_at, updated_at
         FROM cert_enrollments WHERE domain_id = $1 ORDER BY name OFFSET $2 LIMIT $3",
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(CertEnrollment::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list cert enrollments"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM cert_enrollments WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count cert enrollments"))?;
    Ok(Listed { items, total })
}

/// The decrypted private key of an identity enrollment.
pub async fn identity_private_key(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
    key: &EncryptionKey,
) -> Result<PrivateKeyPem, DbError> {
    let sealed = sqlx::query_scalar!(
        "SELECT private_key_encrypted FROM cert_enrollments WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an identity key"))?;
    match sealed {
        None => Err(DbError::NotFound { kind: KIND, id }),
        Some(None) => Err(DbError::WrongReference {
            kind: KIND,
            id,
            expected: "an identity certificate (this one is CA-only)",
        }),
        Some(Some(sealed)) => Ok(PrivateKeyPem(key.open_text(&sealed, &key_context(id))?)),
    }
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &CertEnrollmentInput,
    key: &EncryptionKey,
) -> Result<CertEnrollment, DbError> {
    let mut change =
        Change::<CertEnrollment>::open(conn, domain_id, id, Some(expected_version)).await?;
    let keeps_key = matches!(
        input.content,
        EnrollmentInput::Identity {
            private_key_pem: None,
            ..
        }
    );
    let was_identity = change
        .before()
        .is_some_and(|before| matches!(before.content, EnrollmentContent::Identity { .. }));
    if keeps_key && !was_identity {
        return Err(DbError::Invalid {
            kind: KIND,
            constraint: "cert_enrollments_identity_has_chain_and_key".to_owned(),
            message: "a CA-only enrollment becomes an identity certificate only with a private key"
                .to_owned(),
        });
    }
    sqlx::query!(
        "UPDATE cert_enrollments SET name = $2, version = version + 1, updated_at = now() WHERE id = $1",
        id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a cert enrollment"))?;
    write_fields(change.conn(), id, input, key).await?;
    change.updated(actor).await
}

/// Deletes an enrollment no profile or policy uses.
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<CertEnrollment>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM cert_enrollments WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a cert enrollment"))?;
    change.deleted(actor).await
}

/// The additional data that binds a sealed key to its row.
fn key_context(id: Uuid) -> String {
    format!("cert_enrollments.private_key_encrypted:{id}")
}

async fn write_fields(
    conn: &mut PgConnection,
    id: Uuid,
    input: &CertEnrollmentInput,
    key: &EncryptionKey,
) -> Result<(), DbError> {
    let result = match &input.content {
        EnrollmentInput::CaOnly(settings) => {
            let (mode, crls) = match &settings.revocation {
                Revocation::None => ("NONE", None),
                Revocation::Crl { crls_pem } => ("CRL", Some(crls_pem.as_str())),
            };
            sqlx::query!(
                "UPDATE cert_enrollments SET kind = 'CA_ONLY', description = $2, enrollment_type = $3,
                    ca_certificates_pem = $4, validation_usage_ssl_client = $5, validation_usage_ssl_server = $6,
                    validation_usage_ipsec_client = $7, skip_ca_flag_check = $8, require_client_auth_eku = $9,
                    revocation_mode = $10, crls_pem = $11, certificate_chain_pem = NULL, private_key_encrypted = NULL
                 WHERE id = $1",
                id,
                input.description,
                super::enum_text(&input.enrollment_type),
                settings.ca_certificates_pem,
                settings.validation_usage.ssl_client,
                settings.validation_usage.ssl_server,
                settings.validation_usage.ipsec_client,
                settings.skip_ca_flag_check,
                settings.require_client_auth_eku,
                mode,
                crls,
            )
            .execute(&mut *conn)
            .await
        }
        EnrollmentInput::Identity {
            certificate_chain_pem,
            private_key_pem,
        } => {
            let sealed = private_key_pem
                .as_ref()
                .map(|pem| key.seal(pem.expose().as_bytes(), &key_context(id)))
                .transpose()?;
            sqlx::query!(
                "UPDATE cert_enrollments SET kind = 'IDENTITY', description = $2, enrollment_type = $3,
                    ca_certificates_pem = NULL, revocation_mode = 'NONE', crls_pem = NULL,
                    certificate_chain_pem = $4, private_key_encrypted = COALESCE($5, private_key_encrypted)
                 WHERE id = $1",
                id,
                input.description,
                super::enum_text(&input.enrollment_type),
                certificate_chain_pem,
                sealed,
            )
            .execute(&mut *conn)
            .await
        }
    };
    result.map_err(DbError::on_write(
        KIND,
        &input.name,
        "write a cert enrollment",
    ))?;
    Ok(())
}

domain_scoped!(
    CertEnrollment,
    KIND,
    get,
    "SELECT version FROM cert_enrollments WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock a cert enrollment"
);

/// A `cert_enrollments` row as stored, without the private key.
struct CertEnrollmentRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    kind: String,
    enrollment_type: String,
    ca_certificates_pem: Option<String>,
    validation_usage_ssl_client: bool,
    validation_usage_ssl_server: bool,
    validation_usage_ipsec_client: bool,
    skip_ca_flag_check: bool,
    require_client_auth_eku: bool,
    revocation_mode: String,
    crls_pem: Option<String>,
    certificate_chain_pem: Option<String>,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<CertEnrollmentRow> for CertEnrollment {
    type Error = sqlx::Error;

    fn try_from(row: CertEnrollmentRow) -> Result<Self, sqlx::Error> {
        let content = match row.kind.as_str() {
            "CA_ONLY" => {
                let revocation = match row.revocation_mode.as_str() {
                    "CRL" => Revocation::Crl {
                        crls_pem: row.crls_pem.unwrap_or_default(),
                    },
                    _ => Revocation::None,
                };
                EnrollmentContent::CaOnly(CaOnlySettings {
                    ca_certificates_pem: row.ca_certificates_pem.unwrap_or_default(),
                    validation_usage: ValidationUsage {
                        ssl_client: row.validation_usage_ssl_client,
                        ssl_server: row.validation_usage_ssl_server,
                        ipsec_client: row.validation_usage_ipsec_client,
                    },
                    skip_ca_flag_check: row.skip_ca_flag_check,
                    require_client_auth_eku: row.require_client_auth_eku,
                    revocation,
                })
            }
            "IDENTITY" => EnrollmentContent::Identity {
                certificate_chain_pem: row.certificate_chain_pem.unwrap_or_default(),
            },
            other => return Err(super::column_error("kind", format!("unknown kind {other}"))),
        };
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            enrollment_type: super::enum_from_text("enrollment_type", row.enrollment_type)?,
            content,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
