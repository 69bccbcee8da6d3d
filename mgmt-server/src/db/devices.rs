//! Managed devices (`devices/devicerecords`): where each sensor is, its registration
//! state and the management-channel certificates issued at registration. The device's
//! `id` is the `device_id` of every DeviceConfig compiled for it.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, EncryptionKey, Listed, ObjectKind, Page};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegistrationState {
    /// Added, not registered yet (or registration in progress).
    Pending,
    Registered,
    /// The last registration attempt failed; `registration_error` says why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    pub description: String,
    /// FMC `hostName`: "host" or "host:port" of the sensor's management API.
    pub host_name: String,
    /// FMC `natID`.
    pub nat_id: Option<String>,
    pub registration_state: RegistrationState,
    pub registration_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub registered_at: Option<OffsetDateTime>,
    /// The sensor's channel certificate (the manager pins it).
    pub sensor_certificate_pem: Option<String>,
    /// The manager's client certificate for this sensor.
    pub manager_certificate_pem: Option<String>,
    pub software_version: Option<String>,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub host_name: String,
    pub nat_id: Option<String>,
}

/// What a successful registration produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub sensor_certificate_pem: String,
    pub manager_certificate_pem: String,
    /// The manager's client key for this sensor; stored encrypted.
    pub manager_private_key_pem: PrivateKeyPem,
    pub software_version: Option<String>,
}

const KIND: ObjectKind = ObjectKind::Device;
const LOCK: &str = "SELECT version FROM devices WHERE id = $1 AND domain_id = $2 FOR UPDATE";

/// Adds a device in state [`RegistrationState::Pending`].
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &DeviceInput,
) -> Result<Device, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO devices (id, domain_id, name, description, host_name, nat_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(&input.host_name)
    .bind(&input.nat_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "add a device"))?;
    let created = get(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Create,
        KIND,
        id,
        &created.name,
        None,
        super::snapshot(&created),
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

pub async fn get(exec: impl PgExecutor<'_>, domain_id: Uuid, id: Uuid) -> Result<Device, DbError> {
    sqlx::query_as("SELECT * FROM devices WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
        .fetch_optional(exec)
        .await
        .map_err(DbError::sql("read a device"))?
        .ok_or(DbError::NotFound { kind: KIND, id })
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<Device>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    super::list_page(
        &mut conn,
        &super::ListedBy {
            select: "SELECT * FROM devices",
            from: "devices",
            scope_column: "domain_id",
            name_column: "name",
            list_action: "list devices",
            count_action: "count devices",
        },
        domain_id,
        page,
    )
    .await
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &DeviceInput,
) -> Result<Device, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(&mut tx, LOCK, KIND, id, domain_id).await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, domain_id, id).await?;
    sqlx::query(
        "UPDATE devices SET name = $2, description = $3, host_name = $4, nat_id = $5,
            version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(&input.host_name)
    .bind(&input.nat_id)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a device"))?;
    let after = get(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Update,
        KIND,
        id,
        &after.name,
        super::snapshot(&before),
        super::snapshot(&after),
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

/// Removes a device (and its deployment history); a device still assigned to an RA
/// VPN policy is [`DbError::InUse`].
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(&mut tx, LOCK, KIND, id, domain_id).await?;
    if let Some(expected) = expected_version {
        super::check_version(KIND, id, expected, current)?;
    }
    let before = get(&mut *tx, domain_id, id).await?;
    sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a device"))?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Delete,
        KIND,
        id,
        &before.name,
        super::snapshot(&before),
        None,
    )
    .await?;
    super::commit(tx).await?;
    Ok(())
}

/// Records a successful registration: the channel certificates, the manager's key
/// (encrypted) and the state `REGISTERED`, with a REGISTER audit row.
pub async fn mark_registered(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    registration: &Registration,
    key: &EncryptionKey,
) -> Result<Device, DbError> {
    let mut tx = super::begin(conn).await?;
    super::lock_version(&mut tx, LOCK, KIND, id, domain_id).await?;
    let before = get(&mut *tx, domain_id, id).await?;
    let sealed = key.seal(
        registration.manager_private_key_pem.expose().as_bytes(),
        &key_context(id),
    )?;
    sqlx::query(
        "UPDATE devices SET registration_state = 'REGISTERED', registration_error = NULL, registered_at = now(),
            sensor_certificate_pem = $2, manager_certificate_pem = $3, manager_key_encrypted = $4,
            software_version = $5, version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&registration.sensor_certificate_pem)
    .bind(&registration.manager_certificate_pem)
    .bind(sealed)
    .bind(&registration.software_version)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &before.name, "record a registration"))?;
    let after = get(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Register,
        KIND,
        id,
        &after.name,
        super::snapshot(&before),
        super::snapshot(&after),
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

/// Records a failed registration attempt; the device stays unregistered.
pub async fn mark_registration_failed(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    error: &str,
) -> Result<Device, DbError> {
    let mut tx = super::begin(conn).await?;
    super::lock_version(&mut tx, LOCK, KIND, id, domain_id).await?;
    let before = get(&mut *tx, domain_id, id).await?;
    if before.registration_state == RegistrationState::Registered {
        return Err(DbError::WrongState {
            kind: KIND,
            id,
            action: "fail registration",
            state: "registered".to_owned(),
        });
    }
    sqlx::query(
        "UPDATE devices SET registration_state = 'FAILED', registration_error = $2,
            version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(&mut *tx)
    .await
    .map_err(DbError::sql("record a failed registration"))?;
    let after = get(&mut *tx, domain_id, id).await?;
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor,
            domain_id: Some(domain_id),
            action: AuditAction::Register,
            object_kind: KIND,
            object_id: Some(id),
            object_name: Some(&after.name),
            before: super::snapshot(&before),
            after: super::snapshot(&after),
            detail: Some(error),
        },
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

/// The decrypted private key the manager uses on this device's channel.
pub async fn manager_channel_key(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
    key: &EncryptionKey,
) -> Result<PrivateKeyPem, DbError> {
    let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(
        "SELECT manager_key_encrypted FROM devices WHERE id = $1 AND domain_id = $2",
    )
    .bind(id)
    .bind(domain_id)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a channel key"))?;
    match sealed {
        None => Err(DbError::NotFound { kind: KIND, id }),
        Some(None) => Err(DbError::WrongState {
            kind: KIND,
            id,
            action: "give its channel key",
            state: "not registered".to_owned(),
        }),
        Some(Some(sealed)) => Ok(PrivateKeyPem(key.open_text(&sealed, &key_context(id))?)),
    }
}

fn key_context(id: Uuid) -> String {
    format!("devices.manager_key_encrypted:{id}")
}

impl<'r> FromRow<'r, PgRow> for Device {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            domain_id: row.try_get("domain_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            host_name: row.try_get("host_name")?,
            nat_id: row.try_get("nat_id")?,
            registration_state: super::enum_from_text(
                "registration_state",
                row.try_get("registration_state")?,
            )?,
            registration_error: row.try_get("registration_error")?,
            registered_at: row.try_get("registered_at")?,
            sensor_certificate_pem: row.try_get("sensor_certificate_pem")?,
            manager_certificate_pem: row.try_get("manager_certificate_pem")?,
            software_version: row.try_get("software_version")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
