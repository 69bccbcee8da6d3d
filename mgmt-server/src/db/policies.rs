//! RA VPN policies (`policy/ravpns`): the Access Interfaces settings that become
//! DeviceConfig's `headend`, and the policy assignment (target devices). A device runs
//! at most one RA VPN policy. Connection profiles are in [`super::profiles`].

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::versioned::{Change, domain_scoped};
use super::{Actor, DbError, Listed, ObjectKind, Page, Reference};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaVpnPolicy {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    pub description: String,
    pub configure_ssl: bool,
    pub configure_ipsec: bool,
    /// Rendered as `enable <ifname>` under `webvpn`.
    pub access_interface: String,
    /// Web Access Port Number.
    pub web_port: u16,
    pub dtls_enabled: bool,
    pub dtls_port: u16,
    pub allow_connection_profile_selection: bool,
    /// SSL Global Identity Certificate (an identity cert enrollment).
    pub ssl_identity_certificate: Option<Reference>,
    /// Bypass Access Control policy for decrypted traffic (`sysopt permit-vpn`).
    pub bypass_access_control: bool,
    /// Policy assignment.
    pub target_devices: Vec<Reference>,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of a policy; references by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaVpnPolicyInput {
    pub name: String,
    pub description: String,
    pub configure_ssl: bool,
    pub configure_ipsec: bool,
    pub access_interface: String,
    pub web_port: u16,
    pub dtls_enabled: bool,
    pub dtls_port: u16,
    pub allow_connection_profile_selection: bool,
    pub ssl_identity_certificate_id: Option<Uuid>,
    pub bypass_access_control: bool,
    pub target_device_ids: Vec<Uuid>,
}

impl RaVpnPolicyInput {
    /// A policy with FMC's defaults: SSL on, interface `outside`, ports 443, DTLS on,
    /// profile selection allowed, no identity certificate and no devices yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            configure_ssl: true,
            configure_ipsec: false,
            access_interface: "outside".to_owned(),
            web_port: 443,
            dtls_enabled: true,
            dtls_port: 443,
            allow_connection_profile_selection: true,
            ssl_identity_certificate_id: None,
            bypass_access_control: false,
            target_device_ids: Vec::new(),
        }
    }
}

const KIND: ObjectKind = ObjectKind::RaVpnPolicy;

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<RaVpnPolicy>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO ravpn_policies (id, domain_id, name) VALUES ($1, $2, $3)",
        id,
        domain_id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "create an RA VPN policy",
    ))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.created(actor).await
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<RaVpnPolicy, DbError> {
    select(exec, domain_id, Selected::Id(id), Page::ALL)
        .await
        .map_err(DbError::sql("read an RA VPN policy"))?
        .pop()
        .ok_or(DbError::NotFound { kind: KIND, id })
}

/// The policy assigned to `device_id`, if any (what a deploy compiles).
pub async fn for_device(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    device_id: Uuid,
) -> Result<Option<RaVpnPolicy>, DbError> {
    Ok(
        select(exec, domain_id, Selected::AssignedTo(device_id), Page::ALL)
            .await
            .map_err(DbError::sql("find a device's RA VPN policy"))?
            .pop(),
    )
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<RaVpnPolicy>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = select(&mut *conn, domain_id, Selected::All, page)
        .await
        .map_err(DbError::sql("list RA VPN policies"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ravpn_policies WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count RA VPN policies"))?;
    Ok(Listed { items, total })
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, DbError> {
    let mut change =
        Change::<RaVpnPolicy>::open(conn, domain_id, id, Some(expected_version)).await?;
    sqlx::query!(
        "UPDATE ravpn_policies SET name = $2, version = version + 1, updated_at = now() WHERE id = $1",
        id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update an RA VPN policy"))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.updated(actor).await
}

/// Deletes a policy with its connection profiles and assignments.
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<RaVpnPolicy>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM ravpn_policies WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete an RA VPN policy"))?;
    change.deleted(actor).await
}

/// [`DbError::NotFound`] unless policy `id` exists in `domain_id`.
pub(crate) async fn require(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<(), DbError> {
    sqlx::query_scalar!(
        "SELECT id FROM ravpn_policies WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("look up an RA VPN policy"))?
    .map(|_| ())
    .ok_or(DbError::NotFound { kind: KIND, id })
}

/// Which of a domain's policies [`select`] reads.
#[derive(Clone, Copy)]
enum Selected {
    All,
    Id(Uuid),
    /// The one a device is assigned to.
    AssignedTo(Uuid),
}

/// The `selected` policies of a domain by name, with the identity certificate's and
/// target devices' names.
async fn select(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    selected: Selected,
    page: Page,
) -> Result<Vec<RaVpnPolicy>, sqlx::Error> {
    let (id, device_id) = match selected {
        Selected::All => (None, None),
        Selected::Id(id) => (Some(id), None),
        Selected::AssignedTo(device_id) => (None, Some(device_id)),
    };
    sqlx::query_as!(
        RaVpnPolicyRow,
        r#"SELECT r.id, r.domain_id, r.name, r.description, r.configure_ssl, r.configure_ipsec,
                  r.access_interface, r.web_port, r.dtls_enabled, r.dtls_port,
                  r.allow_connection_profile_selection, r.bypass_access_control, r.version,
                  r.created_at, r.updated_at,
                  (SELECT json_build_object('id', c.id, 'name', c.name) FROM cert_enrollments c
                    WHERE c.id = r.ssl_identity_certificate_id) AS "ssl_identity_certificate: Json<Reference>",
                  COALESCE((SELECT json_agg(json_build_object('id', d.id, 'name', d.name) ORDER BY d.name)
                            FROM ravpn_policy_devices x JOIN devices d ON d.id = x.device_id
                            WHERE x.policy_id = r.id), '[]') AS "target_devices!: Json<Vec<Reference>>"
           FROM ravpn_policies r
           WHERE r.domain_id = $1 AND ($2::uuid IS NULL OR r.id = $2)
             AND ($3::uuid IS NULL
                  OR r.id = (SELECT policy_id FROM ravpn_policy_devices WHERE device_id = $3))
           ORDER BY r.name OFFSET $4 LIMIT $5"#,
        domain_id,
        id,
        device_id,
        page.offset,
        page.limit,
    )
    .try_map(RaVpnPolicy::try_from)
    .fetch_all(exec)
    .await
}

async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &RaVpnPolicyInput,
) -> Result<(), DbError> {
    if let Some(certificate) = input.ssl_identity_certificate_id {
        let kind = sqlx::query_scalar!(
            "SELECT kind FROM cert_enrollments WHERE id = $1 AND domain_id = $2",
            certificate,
            domain_id,
        )
        .fetch_optional(&mut *conn)
        .await
        .map_err(DbError::sql("look up the identity certificate"))?;
        match kind.as_deref() {
            None => {
                return Err(DbError::NotFound {
                    kind: ObjectKind::CertEnrollment,
                    id: certificate,
                });
            }
            Some("IDENTITY") => {}
            Some(_) => {
                return Err(DbError::WrongReference {
                    kind: ObjectKind::CertEnrollment,
                    id: certificate,
                    expected: "an identity certificate (with a private key), not a CA-only trustpoint",
                });
            }
        }
    }
    let found = sqlx::query_scalar!(
        "SELECT id FROM devices WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &input.target_device_ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::Device, &input.target_device_ids, &found)?;
    sqlx::query!(
        "UPDATE ravpn_policies SET description = $2, configure_ssl = $3, configure_ipsec = $4,
            access_interface = $5, web_port = $6, dtls_enabled = $7, dtls_port = $8,
            allow_connection_profile_selection = $9, ssl_identity_certificate_id = $10,
            bypass_access_control = $11
         WHERE id = $1",
        id,
        input.description,
        input.configure_ssl,
        input.configure_ipsec,
        input.access_interface,
        i32::from(input.web_port),
        input.dtls_enabled,
        i32::from(input.dtls_port),
        input.allow_connection_profile_selection,
        input.ssl_identity_certificate_id,
        input.bypass_access_control,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "write an RA VPN policy",
    ))?;
    sqlx::query!("DELETE FROM ravpn_policy_devices WHERE policy_id = $1", id)
        .execute(&mut *conn)
        .await
        .map_err(DbError::sql("clear a policy's devices"))?;
    sqlx::query!(
        "INSERT INTO ravpn_policy_devices (policy_id, device_id) SELECT $1, unnest($2::uuid[])",
        id,
        &input.target_device_ids,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "assign a policy's devices",
    ))?;
    Ok(())
}

domain_scoped!(
    RaVpnPolicy,
    KIND,
    get,
    "SELECT version FROM ravpn_policies WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock an RA VPN policy"
);

/// A `ravpn_policies` row as stored, with the names of what it refers to.
struct RaVpnPolicyRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    configure_ssl: bool,
    configure_ipsec: bool,
    access_interface: String,
    web_port: i32,
    dtls_enabled: bool,
    dtls_port: i32,
    allow_connection_profile_selection: bool,
    ssl_identity_certificate: Option<Json<Reference>>,
    bypass_access_control: bool,
    target_devices: Json<Vec<Reference>>,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<RaVpnPolicyRow> for RaVpnPolicy {
    type Error = sqlx::Error;

    fn try_from(row: RaVpnPolicyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            configure_ssl: row.configure_ssl,
            configure_ipsec: row.configure_ipsec,
            access_interface: row.access_interface,
            web_port: super::unsigned_column("web_port", row.web_port)?,
            dtls_enabled: row.dtls_enabled,
            dtls_port: super::unsigned_column("dtls_port", row.dtls_port)?,
            allow_connection_profile_selection: row.allow_connection_profile_selection,
            ssl_identity_certificate: row
                .ssl_identity_certificate
                .map(|Json(reference)| reference),
            bypass_access_control: row.bypass_access_control,
            target_devices: row.target_devices.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
