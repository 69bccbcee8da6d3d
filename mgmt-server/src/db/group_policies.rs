//! Group policies (`object/grouppolicies`), with FMC's defaults. `DfltGrpPolicy` is
//! built in: it can be edited but not renamed or deleted.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::SplitTunnelPolicy;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, Listed, ObjectKind, Page, Reference};

/// The id of the built-in `DfltGrpPolicy` of the Global domain.
pub const DEFAULT_GROUP_POLICY_ID: Uuid = Uuid::from_u128(1);
/// Its name, as on FMC and FTD.
pub const DEFAULT_GROUP_POLICY_NAME: &str = "DfltGrpPolicy";

/// A stored group policy. Field meanings and ranges are vpn-core's `GroupPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPolicy {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    pub description: String,
    pub built_in: bool,
    pub enable_ssl_protocol: bool,
    pub enable_ipsec_ikev2_protocol: bool,
    pub banner: Option<String>,
    pub dns_servers: Vec<IpAddr>,
    pub default_domain: Option<String>,
    pub split_tunnel_policy: SplitTunnelPolicy,
    pub split_tunnel_networks: Vec<IpNet>,
    /// General > IP Address Pools, in order.
    pub ipv4_pools: Vec<Reference>,
    pub mtu: u16,
    pub keepalive_secs: Option<u32>,
    pub gateway_dpd_secs: Option<u32>,
    pub client_dpd_secs: Option<u32>,
    pub idle_timeout_minutes: Option<u32>,
    pub max_connect_time_minutes: Option<u32>,
    pub simultaneous_logins: u32,
    pub dtls_enabled: bool,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of a group policy; pools by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupPolicyInput {
    pub name: String,
    pub description: String,
    pub enable_ssl_protocol: bool,
    pub enable_ipsec_ikev2_protocol: bool,
    pub banner: Option<String>,
    pub dns_servers: Vec<IpAddr>,
    pub default_domain: Option<String>,
    pub split_tunnel_policy: SplitTunnelPolicy,
    pub split_tunnel_networks: Vec<IpNet>,
    pub ipv4_pool_ids: Vec<Uuid>,
    pub mtu: u16,
    pub keepalive_secs: Option<u32>,
    pub gateway_dpd_secs: Option<u32>,
    pub client_dpd_secs: Option<u32>,
    pub idle_timeout_minutes: Option<u32>,
    pub max_connect_time_minutes: Option<u32>,
    pub simultaneous_logins: u32,
    pub dtls_enabled: bool,
}

impl GroupPolicyInput {
    /// A new policy with FMC's defaults (those of vpn-core's `GroupPolicy::new`).
    pub fn new(name: impl Into<String>) -> Self {
        let defaults = vpn_core::config::GroupPolicy::new(name);
        Self {
            name: defaults.name,
            description: String::new(),
            enable_ssl_protocol: true,
            enable_ipsec_ikev2_protocol: true,
            banner: defaults.banner,
            dns_servers: defaults.dns_servers,
            default_domain: defaults.default_domain,
            split_tunnel_policy: defaults.split_tunnel_policy,
            split_tunnel_networks: defaults.split_tunnel_networks,
            ipv4_pool_ids: Vec::new(),
            mtu: defaults.mtu,
            keepalive_secs: defaults.keepalive_secs,
            gateway_dpd_secs: defaults.gateway_dpd_secs,
            client_dpd_secs: defaults.client_dpd_secs,
            idle_timeout_minutes: defaults.idle_timeout_minutes,
            max_connect_time_minutes: defaults.max_connect_time_minutes,
            simultaneous_logins: defaults.simultaneous_logins,
            dtls_enabled: defaults.dtls_enabled,
        }
    }
}

impl From<&GroupPolicy> for GroupPolicyInput {
    /// The stored policy as an input, to change some fields and keep the others.
    fn from(policy: &GroupPolicy) -> Self {
        Self {
            name: policy.name.clone(),
            description: policy.description.clone(),
            enable_ssl_protocol: policy.enable_ssl_protocol,
            enable_ipsec_ikev2_protocol: policy.enable_ipsec_ikev2_protocol,
            banner: policy.banner.clone(),
            dns_servers: policy.dns_servers.clone(),
            default_domain: policy.default_domain.clone(),
            split_tunnel_policy: policy.split_tunnel_policy,
            split_tunnel_networks: policy.split_tunnel_networks.clone(),
            ipv4_pool_ids: policy.ipv4_pools.iter().map(|p| p.id).collect(),
            mtu: policy.mtu,
            keepalive_secs: policy.keepalive_secs,
            gateway_dpd_secs: policy.gateway_dpd_secs,
            client_dpd_secs: policy.client_dpd_secs,
            idle_timeout_minutes: policy.idle_timeout_minutes,
            max_connect_time_minutes: policy.max_connect_time_minutes,
            simultaneous_logins: policy.simultaneous_logins,
            dtls_enabled: policy.dtls_enabled,
        }
    }
}

const KIND: ObjectKind = ObjectKind::GroupPolicy;

const SELECT: &str = "SELECT g.*,
    COALESCE((SELECT json_agg(json_build_object('id', p.id, 'name', p.name) ORDER BY x.position)
              FROM group_policy_ipv4_pools x JOIN ipv4_address_pools p ON p.id = x.pool_id
              WHERE x.group_policy_id = g.id), '[]') AS ipv4_pools
    FROM group_policies g";

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query("INSERT INTO group_policies (id, domain_id, name) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(domain_id)
        .bind(&input.name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_write(
            KIND,
            &input.name,
            "create a group policy",
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
) -> Result<GroupPolicy, DbError> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE g.id = $1 AND g.domain_id = $2"
    )))
    .bind(id)
    .bind(domain_id)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a group policy"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<GroupPolicy>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    super::list_page(
        &mut conn,
        &super::ListedBy {
            select: SELECT,
            from: "group_policies g",
            scope_column: "g.domain_id",
            name_column: "g.name",
            list_action: "list group policies",
            count_action: "count group policies",
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
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM group_policies WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        KIND,
        id,
        domain_id,
    )
    .await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, domain_id, id).await?;
    if before.built_in && before.name != input.name {
        return Err(DbError::BuiltIn {
            kind: KIND,
            name: before.name,
        });
    }
    sqlx::query("UPDATE group_policies SET name = $2, version = version + 1, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(&input.name)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_write(KIND, &input.name, "update a group policy"))?;
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

/// Deletes a group policy no connection profile uses. `DfltGrpPolicy` stays.
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM group_policies WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        KIND,
        id,
        domain_id,
    )
    .await?;
    if let Some(expected) = expected_version {
        super::check_version(KIND, id, expected, current)?;
    }
    let before = get(&mut *tx, domain_id, id).await?;
    if before.built_in {
        return Err(DbError::BuiltIn {
            kind: KIND,
            name: before.name,
        });
    }
    sqlx::query("DELETE FROM group_policies WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a group policy"))?;
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

/// Writes every field but the name, and replaces the pool list.
async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &GroupPolicyInput,
) -> Result<(), DbError> {
    super::require_all(
        conn,
        "SELECT id FROM ipv4_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        ObjectKind::Ipv4AddressPool,
        domain_id,
        &input.ipv4_pool_ids,
    )
    .await?;
    sqlx::query(
        "UPDATE group_policies SET
            description = $2, enable_ssl_protocol = $3, enable_ipsec_ikev2_protocol = $4, banner = $5,
            dns_servers = $6, default_domain = $7, split_tunnel_policy = $8, split_tunnel_networks = $9,
            mtu = $10, keepalive_secs = $11, gateway_dpd_secs = $12, client_dpd_secs = $13,
            idle_timeout_minutes = $14, max_connect_time_minutes = $15, simultaneous_logins = $16,
            dtls_enabled = $17
         WHERE id = $1",
    )
    .bind(id)
    .bind(&input.description)
    .bind(input.enable_ssl_protocol)
    .bind(input.enable_ipsec_ikev2_protocol)
    .bind(&input.banner)
    .bind(&input.dns_servers)
    .bind(&input.default_domain)
    .bind(super::enum_text(&input.split_tunnel_policy))
    .bind(&input.split_tunnel_networks)
    .bind(i32::from(input.mtu))
    .bind(super::opt_int_field(KIND, "keepalive_secs", input.keepalive_secs)?)
    .bind(super::opt_int_field(KIND, "gateway_dpd_secs", input.gateway_dpd_secs)?)
    .bind(super::opt_int_field(KIND, "client_dpd_secs", input.client_dpd_secs)?)
    .bind(super::opt_int_field(KIND, "idle_timeout_minutes", input.idle_timeout_minutes)?)
    .bind(super::opt_int_field(KIND, "max_connect_time_minutes", input.max_connect_time_minutes)?)
    .bind(super::int_field(KIND, "simultaneous_logins", input.simultaneous_logins)?)
    .bind(input.dtls_enabled)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a group policy"))?;
    sqlx::query("DELETE FROM group_policy_ipv4_pools WHERE group_policy_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(DbError::sql("clear a group policy's pools"))?;
    sqlx::query(
        "INSERT INTO group_policy_ipv4_pools (group_policy_id, position, pool_id)
         SELECT $1, ord::int, pool FROM unnest($2::uuid[]) WITH ORDINALITY AS t(pool, ord)",
    )
    .bind(id)
    .bind(&input.ipv4_pool_ids)
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "write a group policy's pools",
    ))?;
    Ok(())
}

impl<'r> FromRow<'r, PgRow> for GroupPolicy {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let mtu: i32 = row.try_get("mtu")?;
        let Json(ipv4_pools) = row.try_get::<Json<Vec<Reference>>, _>("ipv4_pools")?;
        Ok(Self {
            id: row.try_get("id")?,
            domain_id: row.try_get("domain_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            built_in: row.try_get("built_in")?,
            enable_ssl_protocol: row.try_get("enable_ssl_protocol")?,
            enable_ipsec_ikev2_protocol: row.try_get("enable_ipsec_ikev2_protocol")?,
            banner: row.try_get("banner")?,
            dns_servers: row.try_get("dns_servers")?,
            default_domain: row.try_get("default_domain")?,
            split_tunnel_policy: super::enum_from_text(
                "split_tunnel_policy",
                row.try_get("split_tunnel_policy")?,
            )?,
            split_tunnel_networks: row.try_get("split_tunnel_networks")?,
            ipv4_pools,
            mtu: u16::try_from(mtu)
                .map_err(|_| super::column_error("mtu", format!("{mtu} is out of range")))?,
            keepalive_secs: super::opt_u32_column(row, "keepalive_secs")?,
            gateway_dpd_secs: super::opt_u32_column(row, "gateway_dpd_secs")?,
            client_dpd_secs: super::opt_u32_column(row, "client_dpd_secs")?,
            idle_timeout_minutes: super::opt_u32_column(row, "idle_timeout_minutes")?,
            max_connect_time_minutes: super::opt_u32_column(row, "max_connect_time_minutes")?,
            simultaneous_logins: super::u32_column(row, "simultaneous_logins")?,
            dtls_enabled: row.try_get("dtls_enabled")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
