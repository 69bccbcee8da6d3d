//! Group policies (`object/grouppolicies`), with FMC's defaults. `DfltGrpPolicy` is
//! built in: it can be edited but not renamed or deleted.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::SplitTunnelPolicy;

use super::versioned::{Change, domain_scoped};
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

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<GroupPolicy>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO group_policies (id, domain_id, name) VALUES ($1, $2, $3)",
        id,
        domain_id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "create a group policy",
    ))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.created(actor).await
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<GroupPolicy, DbError> {
    select(exec, domain_id, Some(id), Page::ALL)
        .await
        .map_err(DbError::sql("read a group policy"))?
        .pop()
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
    let items = select(&mut *conn, domain_id, None, page)
        .await
        .map_err(DbError::sql("list group policies"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM group_policies WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count group policies"))?;
    Ok(Listed { items, total })
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, DbError> {
    let mut change =
        Change::<GroupPolicy>::open(conn, domain_id, id, Some(expected_version)).await?;
    if let Some(before) = change.before()
        && before.built_in
        && before.name != input.name
    {
        return Err(DbError::BuiltIn {
            kind: KIND,
            name: before.name.clone(),
        });
    }
    sqlx::query!(
        "UPDATE group_policies SET name = $2, version = version + 1, updated_at = now() WHERE id = $1",
        id,
        input.name,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "update a group policy"))?;
    write_fields(change.conn(), domain_id, id, input).await?;
    change.updated(actor).await
}

/// Deletes a group policy no connection profile uses. `DfltGrpPolicy` stays.
pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<GroupPolicy>::open(conn, domain_id, id, expected_version).await?;
    if let Some(before) = change.before()
        && before.built_in
    {
        return Err(DbError::BuiltIn {
            kind: KIND,
            name: before.name.clone(),
        });
    }
    sqlx::query!("DELETE FROM group_policies WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a group policy"))?;
    change.deleted(actor).await
}

/// The domain's policies by name (or the one called `id`), with their pools.
async fn select(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Option<Uuid>,
    page: Page,
) -> Result<Vec<GroupPolicy>, sqlx::Error> {
    sqlx::query_as!(
        GroupPolicyRow,
        r#"SELECT g.id, g.domain_id, g.name, g.description, g.built_in, g.enable_ssl_protocol,
                  g.enable_ipsec_ikev2_protocol, g.banner, g.dns_servers AS "dns_servers: Vec<IpAddr>",
                  g.default_domain, g.split_tunnel_policy, g.split_tunnel_networks, g.mtu,
                  g.keepalive_secs, g.gateway_dpd_secs, g.client_dpd_secs, g.idle_timeout_minutes,
                  g.max_connect_time_minutes, g.simultaneous_logins, g.dtls_enabled, g.version,
                  g.created_at, g.updated_at,
                  COALESCE((SELECT json_agg(json_build_object('id', p.id, 'name', p.name) ORDER BY x.position)
                            FROM group_policy_ipv4_pools x JOIN ipv4_address_pools p ON p.id = x.pool_id
                            WHERE x.group_policy_id = g.id), '[]') AS "ipv4_pools!: Json<Vec<Reference>>"
           FROM group_policies g
           WHERE g.domain_id = $1 AND ($2::uuid IS NULL OR g.id = $2)
           ORDER BY g.name OFFSET $3 LIMIT $4"#,
        domain_id,
        id,
        page.offset,
        page.limit,
    )
    .try_map(GroupPolicy::try_from)
    .fetch_all(exec)
    .await
}

/// Writes every field but the name, and replaces the pool list.
async fn write_fields(
    conn: &mut PgConnection,
    domain_id: Uuid,
    id: Uuid,
    input: &GroupPolicyInput,
) -> Result<(), DbError> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM ipv4_address_pools WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &input.ipv4_pool_ids,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::Ipv4AddressPool, &input.ipv4_pool_ids, &found)?;
    let dns_servers: Vec<IpNet> = input.dns_servers.iter().map(|&a| super::inet(a)).collect();
    sqlx::query!(
        "UPDATE group_policies SET
            description = $2, enable_ssl_protocol = $3, enable_ipsec_ikev2_protocol = $4, banner = $5,
            dns_servers = $6, default_domain = $7, split_tunnel_policy = $8, split_tunnel_networks = $9,
            mtu = $10, keepalive_secs = $11, gateway_dpd_secs = $12, client_dpd_secs = $13,
            idle_timeout_minutes = $14, max_connect_time_minutes = $15, simultaneous_logins = $16,
            dtls_enabled = $17
         WHERE id = $1",
        id,
        input.description,
        input.enable_ssl_protocol,
        input.enable_ipsec_ikev2_protocol,
        input.banner,
        &dns_servers,
        input.default_domain,
        super::enum_text(&input.split_tunnel_policy),
        &input.split_tunnel_networks,
        i32::from(input.mtu),
        super::opt_int_field(KIND, "keepalive_secs", input.keepalive_secs)?,
        super::opt_int_field(KIND, "gateway_dpd_secs", input.gateway_dpd_secs)?,
        super::opt_int_field(KIND, "client_dpd_secs", input.client_dpd_secs)?,
        super::opt_int_field(KIND, "idle_timeout_minutes", input.idle_timeout_minutes)?,
        super::opt_int_field(KIND, "max_connect_time_minutes", input.max_connect_time_minutes)?,
        super::int_field(KIND, "simultaneous_logins", input.simultaneous_logins)?,
        input.dtls_enabled,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "write a group policy"))?;
    sqlx::query!(
        "DELETE FROM group_policy_ipv4_pools WHERE group_policy_id = $1",
        id
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::sql("clear a group policy's pools"))?;
    sqlx::query!(
        "INSERT INTO group_policy_ipv4_pools (group_policy_id, position, pool_id)
         SELECT $1, ord::int, pool FROM unnest($2::uuid[]) WITH ORDINALITY AS t(pool, ord)",
        id,
        &input.ipv4_pool_ids,
    )
    .execute(&mut *conn)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "write a group policy's pools",
    ))?;
    Ok(())
}

domain_scoped!(
    GroupPolicy,
    KIND,
    get,
    "SELECT version FROM group_policies WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock a group policy"
);

/// A `group_policies` row as stored, with its pools.
struct GroupPolicyRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    built_in: bool,
    enable_ssl_protocol: bool,
    enable_ipsec_ikev2_protocol: bool,
    banner: Option<String>,
    dns_servers: Vec<IpAddr>,
    default_domain: Option<String>,
    split_tunnel_policy: String,
    split_tunnel_networks: Vec<IpNet>,
    ipv4_pools: Json<Vec<Reference>>,
    mtu: i32,
    keepalive_secs: Option<i32>,
    gateway_dpd_secs: Option<i32>,
    client_dpd_secs: Option<i32>,
    idle_timeout_minutes: Option<i32>,
    max_connect_time_minutes: Option<i32>,
    simultaneous_logins: i32,
    dtls_enabled: bool,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<GroupPolicyRow> for GroupPolicy {
    type Error = sqlx::Error;

    fn try_from(row: GroupPolicyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            built_in: row.built_in,
            enable_ssl_protocol: row.enable_ssl_protocol,
            enable_ipsec_ikev2_protocol: row.enable_ipsec_ikev2_protocol,
            banner: row.banner,
            dns_servers: row.dns_servers,
            default_domain: row.default_domain,
            split_tunnel_policy: super::enum_from_text(
                "split_tunnel_policy",
                row.split_tunnel_policy,
            )?,
            split_tunnel_networks: row.split_tunnel_networks,
            ipv4_pools: row.ipv4_pools.0,
            mtu: super::unsigned_column("mtu", row.mtu)?,
            keepalive_secs: super::opt_unsigned_column("keepalive_secs", row.keepalive_secs)?,
            gateway_dpd_secs: super::opt_unsigned_column("gateway_dpd_secs", row.gateway_dpd_secs)?,
            client_dpd_secs: super::opt_unsigned_column("client_dpd_secs", row.client_dpd_secs)?,
            idle_timeout_minutes: super::opt_unsigned_column(
                "idle_timeout_minutes",
                row.idle_timeout_minutes,
            )?,
            max_connect_time_minutes: super::opt_unsigned_column(
                "max_connect_time_minutes",
                row.max_connect_time_minutes,
            )?,
            simultaneous_logins: super::unsigned_column(
                "simultaneous_logins",
                row.simultaneous_logins,
            )?,
            dtls_enabled: row.dtls_enabled,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
