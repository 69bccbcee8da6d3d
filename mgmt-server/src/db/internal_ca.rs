//! The manager's internal certificate authorities, by purpose (e.g. `device-channel`
//! for the management channel certificates). Keys are stored encrypted.

use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use vpn_core::config::PrivateKeyPem;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, EncryptionKey, ObjectKind};

/// The CA that issues the management channel certificates.
pub const DEVICE_CHANNEL_CA: &str = "device-channel";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalCa {
    pub name: String,
    pub certificate_pem: String,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const KIND: ObjectKind = ObjectKind::InternalCa;

/// The CA called `name`, if it has been created.
pub async fn get(exec: impl PgExecutor<'_>, name: &str) -> Result<Option<InternalCa>, DbError> {
    sqlx::query_as!(
        InternalCa,
        "SELECT name, certificate_pem, version, created_at, updated_at
         FROM internal_cas WHERE name = $1",
        name,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an internal CA"))
}

/// Stores a new CA; a CA of that name already there is [`DbError::Conflict`] (two
/// managers starting at once: the loser reads the winner's CA).
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    name: &str,
    certificate_pem: &str,
    private_key: &PrivateKeyPem,
    key: &EncryptionKey,
) -> Result<InternalCa, DbError> {
    let mut tx = super::begin(conn).await?;
    let sealed = key.seal(private_key.expose().as_bytes(), &key_context(name))?;
    let created = sqlx::query_as!(
        InternalCa,
        "INSERT INTO internal_cas (name, certificate_pem, private_key_encrypted) VALUES ($1, $2, $3)
         RETURNING name, certificate_pem, version, created_at, updated_at",
        name,
        certificate_pem,
        sealed,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(
        |error| match DbError::on_write(KIND, name, "store an internal CA")(error) {
            DbError::Conflict { kind, .. } => DbError::Conflict {
                kind,
                field: "name".to_owned(),
                value: name.to_owned(),
            },
            other => other,
        },
    )?;
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor,
            domain_id: None,
            action: AuditAction::Create,
            object_kind: KIND,
            object_id: None,
            object_name: Some(name),
            before: None,
            after: super::snapshot(&created),
            detail: None,
        },
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

/// The CA's decrypted private key.
pub async fn private_key(
    exec: impl PgExecutor<'_>,
    name: &str,
    key: &EncryptionKey,
) -> Result<Option<PrivateKeyPem>, DbError> {
    let sealed = sqlx::query_scalar!(
        "SELECT private_key_encrypted FROM internal_cas WHERE name = $1",
        name,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an internal CA key"))?;
    sealed
        .map(|sealed| Ok(PrivateKeyPem(key.open_text(&sealed, &key_context(name))?)))
        .transpose()
}

fn key_context(name: &str) -> String {
    format!("internal_cas.private_key_encrypted:{name}")
}
