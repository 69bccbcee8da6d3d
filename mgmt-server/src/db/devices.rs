//! Managed devices (`devices/devicerecords`): where each sensor is, its registration
//! state and the management-channel certificates issued at registration. The device's
//! `id` is the `device_id` of every DeviceConfig compiled for it.

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::audit::AuditAction;
use super::versioned::{Change, domain_scoped};
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

/// Adds a device in state [`RegistrationState::Pending`].
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &DeviceInput,
) -> Result<Device, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<Device>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO devices (id, domain_id, name, description, host_name, nat_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        domain_id,
        input.name,
        input.description,
        input.host_name,
        input.nat_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "add a device"))?;
    change.created(actor).await
}

pub async fn get(exec: impl PgExecutor<'_>, domain_id: Uuid, id: Uuid) -> Result<Device, DbError> {
    sqlx::query_as!(
        DeviceRow,
        "SELECT id, domain_id, name, description, host_name, nat_id, registration_state,
                registration_error, registered_at, sensor_certificate_pem, manager_certificate_pem,
                software_version, version, created_at, updated_at
         FROM devices WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .try_map(Device::try_from)
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
    let items = sqlx::query_as!(
        DeviceRow,
        "SELECT id, domain_id, name, description, host_name, nat_id, registration_state,
                registration_error, registered_at, sensor_certificate_pem, manager_certificate_pem,
                software_version, version, created_at, updated_at
         FROM devices WHERE domain_id = $1 ORDER BY name OFFSET $2 LIMIT $3",
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(Device::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list devices"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM devices WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count devices"))?;
    Ok(Listed { items, total })
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &DeviceInput,
) -> Result<Device, DbError> {
    let mut change = Change::<Device>::open(conn, domain_id, id, Some(expected_version)).await?;
    sqlx::query!(
        "UPDATE devices SET name = $2, description = $3, host_name = $4, nat_id = $5,
            version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        input.name,
        input.description,
        input.host_name,
        input.nat_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a device"))?;
    change.updated(actor).await
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
    let mut change = Change::<Device>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM devices WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a device"))?;
    change.deleted(actor).await
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
    let mut change = Change::<Device>::open(conn, domain_id, id, None).await?;
    let name = change
        .before()
        .map(|before| before.name.clone())
        .unwrap_or_default();
    let sealed = key.seal(
        registration.manager_private_key_pem.expose().as_bytes(),
        &key_context(id),
    )?;
    sqlx::query!(
        "UPDATE devices SET registration_state = 'REGISTERED', registration_error = NULL, registered_at = now(),
            sensor_certificate_pem = $2, manager_certificate_pem = $3, manager_key_encrypted = $4,
            software_version = $5, version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        registration.sensor_certificate_pem,
        registration.manager_certificate_pem,
        sealed,
        registration.software_version,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &name, "record a registration"))?;
    change.finish(actor, AuditAction::Register, None).await
}

/// Records a failed registration attempt; the device stays unregistered.
pub async fn mark_registration_failed(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    error: &str,
) -> Result<Device, DbError> {
    let mut change = Change::<Device>::open(conn, domain_id, id, None).await?;
    if change
        .before()
        .is_some_and(|before| before.registration_state == RegistrationState::Registered)
    {
        return Err(DbError::WrongState {
            kind: KIND,
            id,
            action: "fail registration",
            state: "registered".to_owned(),
        });
    }
    sqlx::query!(
        "UPDATE devices SET registration_state = 'FAILED', registration_error = $2,
            version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        error,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::sql("record a failed registration"))?;
    change
        .finish(actor, AuditAction::Register, Some(error))
        .await
}

/// The decrypted private key the manager uses on this device's channel.
pub async fn manager_channel_key(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
    key: &EncryptionKey,
) -> Result<PrivateKeyPem, DbError> {
    let sealed = sqlx::query_scalar!(
        "SELECT manager_key_encrypted FROM devices WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
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

domain_scoped!(
    Device,
    KIND,
    get,
    "SELECT version FROM devices WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock a device"
);

/// A `devices` row as stored, without the manager's key.
struct DeviceRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    host_name: String,
    nat_id: Option<String>,
    registration_state: String,
    registration_error: Option<String>,
    registered_at: Option<OffsetDateTime>,
    sensor_certificate_pem: Option<String>,
    manager_certificate_pem: Option<String>,
    software_version: Option<String>,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<DeviceRow> for Device {
    type Error = sqlx::Error;

    fn try_from(row: DeviceRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            host_name: row.host_name,
            nat_id: row.nat_id,
            registration_state: super::enum_from_text(
                "registration_state",
                row.registration_state,
            )?,
            registration_error: row.registration_error,
            registered_at: row.registered_at,
            sensor_certificate_pem: row.sensor_certificate_pem,
            manager_certificate_pem: row.manager_certificate_pem,
            software_version: row.software_version,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
