//! What each device got from a cert enrollment (FMC installs enrollments per device:
//! Devices > Certificates). An RA VPN policy names an identity enrollment; every device
//! it targets presents its own certificate: one the manager's internal CA issued for
//! that device from an internal-CA enrollment ([`record_issued`]), or one an
//! administrator installed for it from a manual or PKCS#12 enrollment ([`install`]).
//! A device with neither uses the enrollment's own certificate. Private keys are stored
//! encrypted; reading a device certificate never returns its key, only [`private_key`]
//! does.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::cert_enrollments::{self, EnrollmentContent, EnrollmentType};
use super::versioned::{Change, domain_scoped};
use super::{Actor, DbError, EncryptionKey, Listed, ObjectKind, Page, Reference};

const KIND: ObjectKind = ObjectKind::DeviceCertificate;

/// Where a device's certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateSource {
    /// The manager's internal CA issued it from the enrollment.
    Issued,
    /// An administrator installed it.
    Installed,
}

/// A certificate one device presents for one enrollment (without its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCertificate {
    pub id: Uuid,
    pub domain_id: Uuid,
    /// The enrollment's name: the trustpoint name on the device.
    pub name: String,
    pub device: Reference,
    pub enrollment: Reference,
    pub source: CertificateSource,
    /// The enrollment's version the certificate was issued from.
    pub enrollment_version: i32,
    pub certificate_chain_pem: String,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<DeviceCertificate, DbError> {
    sqlx::query_as!(
        DeviceCertificateRow,
        r#"SELECT c.id, c.domain_id, e.name, json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  json_build_object('id', e.id, 'name', e.name) AS "enrollment!: Json<Reference>",
                  c.source, c.enrollment_version, c.certificate_chain_pem, c.version, c.issued_at
           FROM device_certificates c
           JOIN devices d ON d.id = c.device_id
           JOIN cert_enrollments e ON e.id = c.enrollment_id
           WHERE c.id = $1 AND c.domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(DeviceCertificate::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a device certificate"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

/// The certificate `device_id` has for `enrollment_id`, if any.
pub async fn for_device(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    device_id: Uuid,
    enrollment_id: Uuid,
) -> Result<Option<DeviceCertificate>, DbError> {
    sqlx::query_as!(
        DeviceCertificateRow,
        r#"SELECT c.id, c.domain_id, e.name, json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  json_build_object('id', e.id, 'name', e.name) AS "enrollment!: Json<Reference>",
                  c.source, c.enrollment_version, c.certificate_chain_pem, c.version, c.issued_at
           FROM device_certificates c
           JOIN devices d ON d.id = c.device_id
           JOIN cert_enrollments e ON e.id = c.enrollment_id
           WHERE c.device_id = $1 AND c.enrollment_id = $2 AND c.domain_id = $3"#,
        device_id,
        enrollment_id,
        domain_id,
    )
    .try_map(DeviceCertificate::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a device certificate"))
}

/// The certificates of one device, by enrollment name.
pub async fn list_for_device<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    device_id: Uuid,
    page: Page,
) -> Result<Listed<DeviceCertificate>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = sqlx::query_as!(
        DeviceCertificateRow,
        r#"SELECT c.id, c.domain_id, e.name, json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  json_build_object('id', e.id, 'name', e.name) AS "enrollment!: Json<Reference>",
                  c.source, c.enrollment_version, c.certificate_chain_pem, c.version, c.issued_at
           FROM device_certificates c
           JOIN devices d ON d.id = c.device_id
           JOIN cert_enrollments e ON e.id = c.enrollment_id
           WHERE c.device_id = $1 AND c.domain_id = $2
           ORDER BY e.name OFFSET $3 LIMIT $4"#,
        device_id,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(DeviceCertificate::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list device certificates"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM device_certificates WHERE device_id = $1 AND domain_id = $2"#,
        device_id,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count device certificates"))?;
    Ok(Listed { items, total })
}

/// The decrypted private key of a device certificate.
pub async fn private_key(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
    key: &EncryptionKey,
) -> Result<PrivateKeyPem, DbError> {
    let sealed = sqlx::query_scalar!(
        "SELECT private_key_encrypted FROM device_certificates WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a device certificate key"))?
    .ok_or(DbError::NotFound { kind: KIND, id })?;
    Ok(PrivateKeyPem(key.open_text(&sealed, &key_context(id))?))
}

/// Installs a certificate and key (checked by the caller to belong together) on
/// `device_id` for a manual or PKCS#12 identity enrollment. One per device and
/// enrollment ([`DbError::Conflict`]); an internal-CA enrollment is issued, not
/// installed ([`DbError::Invalid`]).
#[allow(clippy::too_many_arguments)]
pub async fn install(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    device_id: Uuid,
    enrollment_id: Uuid,
    certificate_chain_pem: &str,
    private_key_pem: &PrivateKeyPem,
    key: &EncryptionKey,
) -> Result<DeviceCertificate, DbError> {
    let enrollment = cert_enrollments::get(&mut *conn, domain_id, enrollment_id).await?;
    if !matches!(enrollment.content, EnrollmentContent::Identity { .. }) {
        return Err(DbError::WrongReference {
            kind: ObjectKind::CertEnrollment,
            id: enrollment_id,
            expected: "an identity certificate (this one is CA-only)",
        });
    }
    if enrollment.enrollment_type == EnrollmentType::SelfSignedCertificate {
        return Err(DbError::Invalid {
            kind: KIND,
            constraint: "device_certificates_source".to_owned(),
            message: format!(
                "{} is an internal-CA enrollment: the manager issues each device its certificate when it deploys",
                enrollment.name
            ),
        });
    }
    super::devices::get(&mut *conn, domain_id, device_id).await?;
    let id = Uuid::new_v4();
    let sealed = key.seal(private_key_pem.expose().as_bytes(), &key_context(id))?;
    let mut change = Change::<DeviceCertificate>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO device_certificates (id, domain_id, device_id, enrollment_id, source, enrollment_version,
                                          certificate_chain_pem, private_key_encrypted)
         VALUES ($1, $2, $3, $4, 'INSTALLED', $5, $6, $7)",
        id,
        domain_id,
        device_id,
        enrollment_id,
        enrollment.version,
        certificate_chain_pem,
        sealed,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        KIND,
        &enrollment.name,
        "install a device certificate",
    ))?;
    change.created(actor).await
}

/// Stores what the internal CA issued `device_id` from `enrollment_id` at
/// `enrollment_version`, replacing an earlier issue.
#[allow(clippy::too_many_arguments)]
pub async fn record_issued(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    device_id: Uuid,
    enrollment_id: Uuid,
    enrollment_version: i32,
    certificate_chain_pem: &str,
    private_key_pem: &PrivateKeyPem,
    key: &EncryptionKey,
) -> Result<DeviceCertificate, DbError> {
    let existing = for_device(&mut *conn, domain_id, device_id, enrollment_id).await?;
    let id = existing.as_ref().map_or_else(Uuid::new_v4, |c| c.id);
    let sealed = key.seal(private_key_pem.expose().as_bytes(), &key_context(id))?;
    let mut change = match existing {
        Some(_) => Change::<DeviceCertificate>::open(conn, domain_id, id, None).await?,
        None => Change::<DeviceCertificate>::create(conn, domain_id, id).await?,
    };
    sqlx::query!(
        "INSERT INTO device_certificates (id, domain_id, device_id, enrollment_id, source, enrollment_version,
                                          certificate_chain_pem, private_key_encrypted)
         VALUES ($1, $2, $3, $4, 'ISSUED', $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET source = 'ISSUED', enrollment_version = EXCLUDED.enrollment_version,
             certificate_chain_pem = EXCLUDED.certificate_chain_pem,
             private_key_encrypted = EXCLUDED.private_key_encrypted,
             issued_at = now(), version = device_certificates.version + 1",
        id,
        domain_id,
        device_id,
        enrollment_id,
        enrollment_version,
        certificate_chain_pem,
        sealed,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        KIND,
        "device certificate",
        "store an issued device certificate",
    ))?;
    if change.before().is_some() {
        change.updated(actor).await
    } else {
        change.created(actor).await
    }
}

/// Removes a device's certificate: the device falls back to the enrollment's own
/// (manual, PKCS#12) or is issued a new one at its next deploy (internal CA).
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change =
        Change::<DeviceCertificate>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM device_certificates WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a device certificate"))?;
    change.deleted(actor).await
}

/// The additional data that binds a sealed key to its row.
fn key_context(id: Uuid) -> String {
    format!("device_certificates.private_key_encrypted:{id}")
}

domain_scoped!(
    DeviceCertificate,
    KIND,
    get,
    "SELECT version FROM device_certificates WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock a device certificate"
);

struct DeviceCertificateRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    device: Json<Reference>,
    enrollment: Json<Reference>,
    source: String,
    enrollment_version: i32,
    certificate_chain_pem: String,
    version: i32,
    issued_at: OffsetDateTime,
}

impl TryFrom<DeviceCertificateRow> for DeviceCertificate {
    type Error = sqlx::Error;

    fn try_from(row: DeviceCertificateRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            device: row.device.0,
            enrollment: row.enrollment.0,
            source: super::enum_from_text("source", row.source)?,
            enrollment_version: row.enrollment_version,
            certificate_chain_pem: row.certificate_chain_pem,
            version: row.version,
            issued_at: row.issued_at,
        })
    }
}
