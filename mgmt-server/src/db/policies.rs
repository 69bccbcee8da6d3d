//! RA VPN policies (`policy/ravpns`): the Access Interfaces settings that become
//! DeviceConfig's `headend`, and the policy assignment (target devices). A device runs
//! at most one RA VPN policy. Connection profiles are in [`super::profiles`].

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
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
const LOCK: &str = "SELECT version FROM ravpn_policies WHERE id = $1 AND domain_id = $2 FOR UPDATE";
const SELECT: &str = "SELECT r.*,
    (SELECT json_build_object('id', c.id, 'name', c.name) FROM cert_enrollments c
      WHERE c.id = r.ssl_identity_certificate_id) AS ssl_identity_certificate,
    COALESCE((SELECT json_agg(json_build_object('id', d.id, 'name', d.name) ORDER BY d.name)
              FROM ravpn_policy_devices x JOIN devices d ON d.id = x.device_id
              WHERE x.policy_id = r.id), '[]') AS target_devices
    FROM ravpn_policies r";

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO ravpn_policies (id, domain_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(domain_id)
        .bind(&input.name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_write(
            KIND,
            &input.name,
            "create an RA VPN policy",
        ))?;
    write_fields(&mut tx, domain_id, id, input).await?;
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

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<RaVpnPolicy, DbError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.id = $1 AND r.domain_id = $2"
    )))
    .bind(id)
    .bind(domain_id)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an RA VPN policy"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

/// The policy assigned to `device_id`, if any (what a deploy compiles).
pub async fn for_device(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    device_id: Uuid,
) -> Result<Option<RaVpnPolicy>, DbError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE r.domain_id = $2 AND r.id = (SELECT policy_id FROM ravpn_policy_devices WHERE device_id = $1)"
    )))
    .bind(device_id)
    .bind(domain_id)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("find a device's RA VPN policy"))
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
    super::list_page(
        &mut conn,
        &super::ListedBy {
            select: SELECT,
            from: "ravpn_policies r",
            scope_column: "r.domain_id",
            name_column: "r.name",
            list_action: "list RA VPN policies",
            count_action: "count RA VPN policies",
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
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(&mut tx, LOCK, KIND, id, domain_id).await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, domain_id, id).await?;
    sqlx::query("UPDATE ravpn_policies SET name = $2, version = version + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&input.name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_write(KIND, &input.name, "update an RA VPN policy"))?;
    write_fields(&mut tx, domain_id, id, input).await?;
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

/// Deletes a policy with its connection profiles and assignments.
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
    sqlx::query("DELETE FROM ravpn_policies WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete an RA VPN policy"))?;
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

/// [`DbError::NotFound`] unless policy `id` exists in `domain_id`.
pub(crate) async fn require(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<(), DbError> {
    sqlx::query_scalar::<_, Uuid>("SELECT id FROM ravpn_policies WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
        .fetch_optional(exec)
        .await
        .map_err(DbError::sql("look up an RA VPN policy"))?
        .map(|_| ())
        .ok_or(DbError::NotFound { kind: KIND, id })
}

async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &RaVpnPolicyInput,
) -> Result<(), DbError> {
    if let Some(certificate) = input.ssl_identity_certificate_id {
        let kind: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM cert_enrollments WHERE id = $1 AND domain_id = $2",
        )
        .bind(certificate)
        .bind(domain_id)
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
    super::require_all(
        conn,
        "SELECT id FROM devices WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::Device,
        domain_id,
        &input.target_device_ids,
    )
    .await?;
    sqlx::query(
        "UPDATE ravpn_policies SET description = $2, configure_ssl = $3, configure_ipsec = $4,
            access_interface = $5, web_port = $6, dtls_enabled = $7, dtls_port = $8,
            allow_connection_profile_selection = $9, ssl_identity_certificate_id = $10,
            bypass_access_control = $11
         WHERE id = $1",
    )
    .bind(id)
    .bind(&input.description)
    .bind(input.configure_ssl)
    .bind(input.configure_ipsec)
    .bind(&input.access_interface)
    .bind(i32::from(input.web_port))
    .bind(input.dtls_enabled)
    .bind(i32::from(input.dtls_port))
    .bind(input.allow_connection_profile_selection)
    .bind(input.ssl_identity_certificate_id)
    .bind(input.bypass_access_control)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "write an RA VPN policy",
    ))?;
    sqlx::query("DELETE FROM ravpn_policy_devices WHERE policy_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(DbError::sql("clear a policy's devices"))?;
    sqlx::query(
        "INSERT INTO ravpn_policy_devices (policy_id, device_id) SELECT $1, unnest($2::uuid[])",
    )
    .bind(id)
    .bind(&input.target_device_ids)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "assign a policy's devices",
    ))?;
    Ok(())
}

impl<'r> FromRow<'r, PgRow> for RaVpnPolicy {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let port = |column: &str| -> Result<u16, sqlx::Error> {
            let value: i32 = row.try_get(column)?;
            u16::try_from(value)
                .map_err(|_| super::column_error(column, format!("{value} is not a port")))
        };
        let identity: Option<Json<Reference>> = row.try_get("ssl_identity_certificate")?;
        let Json(target_devices) = row.try_get::<Json<Vec<Reference>>, _>("target_devices")?;
        Ok(Self {
            id: row.try_get("id")?,
            domain_id: row.try_get("domain_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            configure_ssl: row.try_get("configure_ssl")?,
            configure_ipsec: row.try_get("configure_ipsec")?,
            access_interface: row.try_get("access_interface")?,
            web_port: port("web_port")?,
            dtls_enabled: row.try_get("dtls_enabled")?,
            dtls_port: port("dtls_port")?,
            allow_connection_profile_selection: row
                .try_get("allow_connection_profile_selection")?,
            ssl_identity_certificate: identity.map(|Json(reference)| reference),
            bypass_access_control: row.try_get("bypass_access_control")?,
            target_devices,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
