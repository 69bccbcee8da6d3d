//! IPv4 and IPv6 address pools (`object/ipv4addresspools`, `object/ipv6addresspools`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::versioned::{Change, domain_scoped};
use super::{Actor, DbError, Listed, ObjectKind, Page};

/// `ip local pool NAME START-END mask MASK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv4AddressPool {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    pub description: String,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub overridable: bool,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of an IPv4 pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv4AddressPoolInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub mask: Ipv4Addr,
    #[serde(default)]
    pub overridable: bool,
}

/// `ipv6 local pool NAME START/PREFIX COUNT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6AddressPool {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    pub description: String,
    pub start: Ipv6Addr,
    pub prefix_length: u8,
    pub number_of_addresses: u32,
    pub overridable: bool,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The editable fields of an IPv6 pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6AddressPoolInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub start: Ipv6Addr,
    pub prefix_length: u8,
    pub number_of_addresses: u32,
    #[serde(default)]
    pub overridable: bool,
}

const V4: ObjectKind = ObjectKind::Ipv4AddressPool;
const V6: ObjectKind = ObjectKind::Ipv6AddressPool;

/// A pool with per-device overrides stays overridable until they are removed.
fn still_overridden(kind: ObjectKind, overrides: i64) -> Result<(), DbError> {
    if overrides == 0 {
        return Ok(());
    }
    Err(DbError::Invalid {
        kind,
        constraint: "overridable".to_owned(),
        message: format!(
            "the pool has {overrides} per-device override(s): remove them before making it not overridable"
        ),
    })
}

pub async fn create_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<Ipv4AddressPool>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO ipv4_address_pools (id, domain_id, name, description, start_address, end_address, mask, overridable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        domain_id,
        input.name,
        input.description,
        super::inet(input.start),
        super::inet(input.end),
        super::inet(input.mask),
        input.overridable,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V4, &input.name, "create an IPv4 pool"))?;
    change.created(actor).await
}

pub async fn get_ipv4(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv4AddressPool, DbError> {
    sqlx::query_as!(
        Ipv4PoolRow,
        r#"SELECT id, domain_id, name, description, start_address AS "start_address: IpAddr",
                  end_address AS "end_address: IpAddr", mask AS "mask: IpAddr", overridable,
                  version, created_at, updated_at
           FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(Ipv4AddressPool::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an IPv4 pool"))?
    .ok_or(DbError::NotFound { kind: V4, id })
}

pub async fn list_ipv4<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv4AddressPool>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = sqlx::query_as!(
        Ipv4PoolRow,
        r#"SELECT id, domain_id, name, description, start_address AS "start_address: IpAddr",
                  end_address AS "end_address: IpAddr", mask AS "mask: IpAddr", overridable,
                  version, created_at, updated_at
           FROM ipv4_address_pools WHERE domain_id = $1 ORDER BY name OFFSET $2 LIMIT $3"#,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(Ipv4AddressPool::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list IPv4 pools"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ipv4_address_pools WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count IPv4 pools"))?;
    Ok(Listed { items, total })
}

pub async fn update_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, DbError> {
    let mut change =
        Change::<Ipv4AddressPool>::open(conn, domain_id, id, Some(expected_version)).await?;
    if !input.overridable {
        let overrides = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM ipv4_address_pool_overrides WHERE pool_id = $1"#,
            id,
        )
        .fetch_one(change.conn())
        .await
        .map_err(DbError::sql("count IPv4 pool overrides"))?;
        still_overridden(V4, overrides)?;
    }
    sqlx::query!(
        "UPDATE ipv4_address_pools
         SET name = $3, description = $4, start_address = $5, end_address = $6, mask = $7, overridable = $8,
             version = version + 1, updated_at = now()
         WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
        input.name,
        input.description,
        super::inet(input.start),
        super::inet(input.end),
        super::inet(input.mask),
        input.overridable,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V4, &input.name, "update an IPv4 pool"))?;
    change.updated(actor).await
}

/// Deletes a pool that no profile or group policy uses ([`DbError::InUse`] otherwise).
pub async fn delete_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<Ipv4AddressPool>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!(
        "DELETE FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_delete(V4, id, "delete an IPv4 pool"))?;
    change.deleted(actor).await
}

pub async fn create_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<Ipv6AddressPool>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO ipv6_address_pools (id, domain_id, name, description, start_address, prefix_length, number_of_addresses, overridable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        domain_id,
        input.name,
        input.description,
        super::inet(input.start),
        i16::from(input.prefix_length),
        count_column(input.number_of_addresses),
        input.overridable,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V6, &input.name, "create an IPv6 pool"))?;
    change.created(actor).await
}

pub async fn get_ipv6(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv6AddressPool, DbError> {
    sqlx::query_as!(
        Ipv6PoolRow,
        r#"SELECT id, domain_id, name, description, start_address AS "start_address: IpAddr",
                  prefix_length, number_of_addresses, overridable, version, created_at, updated_at
           FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(Ipv6AddressPool::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an IPv6 pool"))?
    .ok_or(DbError::NotFound { kind: V6, id })
}

pub async fn list_ipv6<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv6AddressPool>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = sqlx::query_as!(
        Ipv6PoolRow,
        r#"SELECT id, domain_id, name, description, start_address AS "start_address: IpAddr",
                  prefix_length, number_of_addresses, overridable, version, created_at, updated_at
           FROM ipv6_address_pools WHERE domain_id = $1 ORDER BY name OFFSET $2 LIMIT $3"#,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(Ipv6AddressPool::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list IPv6 pools"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ipv6_address_pools WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count IPv6 pools"))?;
    Ok(Listed { items, total })
}

pub async fn update_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, DbError> {
    let mut change =
        Change::<Ipv6AddressPool>::open(conn, domain_id, id, Some(expected_version)).await?;
    if !input.overridable {
        let overrides = sqlx::query_scalar!(
            r#"SELECT count(*) AS "count!" FROM ipv6_address_pool_overrides WHERE pool_id = $1"#,
            id,
        )
        .fetch_one(change.conn())
        .await
        .map_err(DbError::sql("count IPv6 pool overrides"))?;
        still_overridden(V6, overrides)?;
    }
    sqlx::query!(
        "UPDATE ipv6_address_pools
         SET name = $3, description = $4, start_address = $5, prefix_length = $6, number_of_addresses = $7,
             overridable = $8, version = version + 1, updated_at = now()
         WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
        input.name,
        input.description,
        super::inet(input.start),
        i16::from(input.prefix_length),
        count_column(input.number_of_addresses),
        input.overridable,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V6, &input.name, "update an IPv6 pool"))?;
    change.updated(actor).await
}

pub async fn delete_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<Ipv6AddressPool>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!(
        "DELETE FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_delete(V6, id, "delete an IPv6 pool"))?;
    change.deleted(actor).await
}

/// `number_of_addresses` is an `integer`; larger counts fail the column's check.
fn count_column(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(-1)
}

domain_scoped!(
    Ipv4AddressPool,
    V4,
    get_ipv4,
    "SELECT version FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock an IPv4 pool"
);

domain_scoped!(
    Ipv6AddressPool,
    V6,
    get_ipv6,
    "SELECT version FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock an IPv6 pool"
);

/// An `ipv4_address_pools` row as stored.
struct Ipv4PoolRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    start_address: IpAddr,
    end_address: IpAddr,
    mask: IpAddr,
    overridable: bool,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Ipv4PoolRow> for Ipv4AddressPool {
    type Error = sqlx::Error;

    fn try_from(row: Ipv4PoolRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            start: super::ipv4_column("start_address", row.start_address)?,
            end: super::ipv4_column("end_address", row.end_address)?,
            mask: super::ipv4_column("mask", row.mask)?,
            overridable: row.overridable,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// An `ipv6_address_pools` row as stored.
struct Ipv6PoolRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    description: String,
    start_address: IpAddr,
    prefix_length: i16,
    number_of_addresses: i32,
    overridable: bool,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Ipv6PoolRow> for Ipv6AddressPool {
    type Error = sqlx::Error;

    fn try_from(row: Ipv6PoolRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            description: row.description,
            start: super::ipv6_column("start_address", row.start_address)?,
            prefix_length: super::unsigned_column("prefix_length", row.prefix_length)?,
            number_of_addresses: super::unsigned_column(
                "number_of_addresses",
                row.number_of_addresses,
            )?,
            overridable: row.overridable,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
