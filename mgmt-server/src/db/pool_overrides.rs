//! Per-device overrides of address pools (FMC object overrides,
//! `object/ipv4addresspools/{id}/overrides` with `target: {type: Device, id}`): the
//! range one device hands out instead of the pool's own, so that several devices on
//! one RA VPN policy give clients different addresses. Only an `overridable` pool may
//! be overridden; one override per pool and device.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::versioned::{Change, Versioned};
use super::{Actor, DbError, Listed, ObjectKind, Page, Reference, pools};

const V4: ObjectKind = ObjectKind::Ipv4AddressPoolOverride;
const V6: ObjectKind = ObjectKind::Ipv6AddressPoolOverride;

/// The range `device` hands out for `pool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv4PoolOverride {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub pool: Reference,
    pub device: Reference,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4PoolOverrideInput {
    pub device_id: Uuid,
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
    pub mask: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6PoolOverride {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub pool: Reference,
    pub device: Reference,
    pub start: Ipv6Addr,
    pub prefix_length: u8,
    pub number_of_addresses: u32,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6PoolOverrideInput {
    pub device_id: Uuid,
    pub start: Ipv6Addr,
    pub prefix_length: u8,
    pub number_of_addresses: u32,
}

fn not_overridable(kind: ObjectKind, pool: &str) -> DbError {
    DbError::Invalid {
        kind,
        constraint: "overridable".to_owned(),
        message: format!("pool {pool} is not overridable: allow overrides on the pool first"),
    }
}

// ---------------------------------------------------------------------------------
// IPv4

pub async fn create_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    input: &Ipv4PoolOverrideInput,
) -> Result<Ipv4PoolOverride, DbError> {
    let pool = pools::get_ipv4(&mut *conn, domain_id, pool_id).await?;
    if !pool.overridable {
        return Err(not_overridable(V4, &pool.name));
    }
    let device = super::devices::get(&mut *conn, domain_id, input.device_id).await?;
    let id = Uuid::new_v4();
    let mut change = Change::<Ipv4PoolOverride>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO ipv4_address_pool_overrides (id, pool_id, device_id, start_address, end_address, mask)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        pool_id,
        input.device_id,
        super::inet(input.start),
        super::inet(input.end),
        super::inet(input.mask),
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V4, &device.name, "create an IPv4 pool override"))?;
    change.created(actor).await
}

pub async fn get_ipv4(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv4PoolOverride, DbError> {
    sqlx::query_as!(
        Ipv4OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.end_address AS "end_address: IpAddr",
                  o.mask AS "mask: IpAddr", o.version, o.created_at, o.updated_at
           FROM ipv4_address_pool_overrides o
           JOIN ipv4_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.id = $1 AND p.domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(Ipv4PoolOverride::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an IPv4 pool override"))?
    .ok_or(DbError::NotFound { kind: V4, id })
}

/// The overrides of one pool, by device name.
pub async fn list_ipv4<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    pool_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv4PoolOverride>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    pools::get_ipv4(&mut *conn, domain_id, pool_id).await?;
    let items = sqlx::query_as!(
        Ipv4OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.end_address AS "end_address: IpAddr",
                  o.mask AS "mask: IpAddr", o.version, o.created_at, o.updated_at
           FROM ipv4_address_pool_overrides o
           JOIN ipv4_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.pool_id = $1 AND p.domain_id = $2
           ORDER BY d.name OFFSET $3 LIMIT $4"#,
        pool_id,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(Ipv4PoolOverride::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list IPv4 pool overrides"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ipv4_address_pool_overrides WHERE pool_id = $1"#,
        pool_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count IPv4 pool overrides"))?;
    Ok(Listed { items, total })
}

/// Every IPv4 override of one device (what its configuration uses).
pub async fn ipv4_for_device(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    device_id: Uuid,
) -> Result<Vec<Ipv4PoolOverride>, DbError> {
    sqlx::query_as!(
        Ipv4OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.end_address AS "end_address: IpAddr",
                  o.mask AS "mask: IpAddr", o.version, o.created_at, o.updated_at
           FROM ipv4_address_pool_overrides o
           JOIN ipv4_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.device_id = $1 AND p.domain_id = $2
           ORDER BY p.name"#,
        device_id,
        domain_id,
    )
    .try_map(Ipv4PoolOverride::try_from)
    .fetch_all(exec)
    .await
    .map_err(DbError::sql("read a device's IPv4 pool overrides"))
}

pub async fn update_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv4PoolOverrideInput,
) -> Result<Ipv4PoolOverride, DbError> {
    let mut change =
        Change::<Ipv4PoolOverride>::open(conn, domain_id, id, Some(expected_version)).await?;
    let device = super::devices::get(change.conn(), domain_id, input.device_id).await?;
    sqlx::query!(
        "UPDATE ipv4_address_pool_overrides
         SET device_id = $2, start_address = $3, end_address = $4, mask = $5,
             version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        input.device_id,
        super::inet(input.start),
        super::inet(input.end),
        super::inet(input.mask),
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        V4,
        &device.name,
        "update an IPv4 pool override",
    ))?;
    change.updated(actor).await
}

pub async fn delete_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change =
        Change::<Ipv4PoolOverride>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM ipv4_address_pool_overrides WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(V4, id, "delete an IPv4 pool override"))?;
    change.deleted(actor).await
}

// ---------------------------------------------------------------------------------
// IPv6

pub async fn create_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    pool_id: Uuid,
    input: &Ipv6PoolOverrideInput,
) -> Result<Ipv6PoolOverride, DbError> {
    let pool = pools::get_ipv6(&mut *conn, domain_id, pool_id).await?;
    if !pool.overridable {
        return Err(not_overridable(V6, &pool.name));
    }
    let device = super::devices::get(&mut *conn, domain_id, input.device_id).await?;
    let count = super::int_field(V6, "number_of_addresses", input.number_of_addresses)?;
    let id = Uuid::new_v4();
    let mut change = Change::<Ipv6PoolOverride>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO ipv6_address_pool_overrides (id, pool_id, device_id, start_address, prefix_length, number_of_addresses)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        pool_id,
        input.device_id,
        super::inet(input.start),
        i16::from(input.prefix_length),
        count,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(V6, &device.name, "create an IPv6 pool override"))?;
    change.created(actor).await
}

pub async fn get_ipv6(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv6PoolOverride, DbError> {
    sqlx::query_as!(
        Ipv6OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.prefix_length, o.number_of_addresses,
                  o.version, o.created_at, o.updated_at
           FROM ipv6_address_pool_overrides o
           JOIN ipv6_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.id = $1 AND p.domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(Ipv6PoolOverride::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read an IPv6 pool override"))?
    .ok_or(DbError::NotFound { kind: V6, id })
}

pub async fn list_ipv6<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    pool_id: Uuid,
    page: Page,
) -> Result<Listed<Ipv6PoolOverride>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    pools::get_ipv6(&mut *conn, domain_id, pool_id).await?;
    let items = sqlx::query_as!(
        Ipv6OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.prefix_length, o.number_of_addresses,
                  o.version, o.created_at, o.updated_at
           FROM ipv6_address_pool_overrides o
           JOIN ipv6_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.pool_id = $1 AND p.domain_id = $2
           ORDER BY d.name OFFSET $3 LIMIT $4"#,
        pool_id,
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(Ipv6PoolOverride::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list IPv6 pool overrides"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM ipv6_address_pool_overrides WHERE pool_id = $1"#,
        pool_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count IPv6 pool overrides"))?;
    Ok(Listed { items, total })
}

pub async fn ipv6_for_device(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    device_id: Uuid,
) -> Result<Vec<Ipv6PoolOverride>, DbError> {
    sqlx::query_as!(
        Ipv6OverrideRow,
        r#"SELECT o.id, p.domain_id, json_build_object('id', p.id, 'name', p.name) AS "pool!: Json<Reference>",
                  json_build_object('id', d.id, 'name', d.name) AS "device!: Json<Reference>",
                  o.start_address AS "start_address: IpAddr", o.prefix_length, o.number_of_addresses,
                  o.version, o.created_at, o.updated_at
           FROM ipv6_address_pool_overrides o
           JOIN ipv6_address_pools p ON p.id = o.pool_id
           JOIN devices d ON d.id = o.device_id
           WHERE o.device_id = $1 AND p.domain_id = $2
           ORDER BY p.name"#,
        device_id,
        domain_id,
    )
    .try_map(Ipv6PoolOverride::try_from)
    .fetch_all(exec)
    .await
    .map_err(DbError::sql("read a device's IPv6 pool overrides"))
}

pub async fn update_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv6PoolOverrideInput,
) -> Result<Ipv6PoolOverride, DbError> {
    let count = super::int_field(V6, "number_of_addresses", input.number_of_addresses)?;
    let mut change =
        Change::<Ipv6PoolOverride>::open(conn, domain_id, id, Some(expected_version)).await?;
    let device = super::devices::get(change.conn(), domain_id, input.device_id).await?;
    sqlx::query!(
        "UPDATE ipv6_address_pool_overrides
         SET device_id = $2, start_address = $3, prefix_length = $4, number_of_addresses = $5,
             version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        input.device_id,
        super::inet(input.start),
        i16::from(input.prefix_length),
        count,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        V6,
        &device.name,
        "update an IPv6 pool override",
    ))?;
    change.updated(actor).await
}

pub async fn delete_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change =
        Change::<Ipv6PoolOverride>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM ipv6_address_pool_overrides WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(V6, id, "delete an IPv6 pool override"))?;
    change.deleted(actor).await
}

// ---------------------------------------------------------------------------------
// Rows and versioning

impl Versioned for Ipv4PoolOverride {
    const KIND: ObjectKind = V4;
    type Scope = Uuid;

    async fn lock_version(
        conn: &mut PgConnection,
        domain_id: Uuid,
        id: Uuid,
    ) -> Result<Option<i32>, DbError> {
        sqlx::query_scalar!(
            "SELECT o.version FROM ipv4_address_pool_overrides o JOIN ipv4_address_pools p ON p.id = o.pool_id
             WHERE o.id = $1 AND p.domain_id = $2 FOR UPDATE OF o",
            id,
            domain_id,
        )
        .fetch_optional(conn)
        .await
        .map_err(DbError::sql("lock an IPv4 pool override"))
    }

    async fn load(conn: &mut PgConnection, domain_id: Uuid, id: Uuid) -> Result<Self, DbError> {
        get_ipv4(conn, domain_id, id).await
    }

    fn name(&self) -> &str {
        &self.pool.name
    }

    fn audit_domain(&self, domain_id: Uuid) -> Uuid {
        domain_id
    }
}

impl Versioned for Ipv6PoolOverride {
    const KIND: ObjectKind = V6;
    type Scope = Uuid;

    async fn lock_version(
        conn: &mut PgConnection,
        domain_id: Uuid,
        id: Uuid,
    ) -> Result<Option<i32>, DbError> {
        sqlx::query_scalar!(
            "SELECT o.version FROM ipv6_address_pool_overrides o JOIN ipv6_address_pools p ON p.id = o.pool_id
             WHERE o.id = $1 AND p.domain_id = $2 FOR UPDATE OF o",
            id,
            domain_id,
        )
        .fetch_optional(conn)
        .await
        .map_err(DbError::sql("lock an IPv6 pool override"))
    }

    async fn load(conn: &mut PgConnection, domain_id: Uuid, id: Uuid) -> Result<Self, DbError> {
        get_ipv6(conn, domain_id, id).await
    }

    fn name(&self) -> &str {
        &self.pool.name
    }

    fn audit_domain(&self, domain_id: Uuid) -> Uuid {
        domain_id
    }
}

struct Ipv4OverrideRow {
    id: Uuid,
    domain_id: Uuid,
    pool: Json<Reference>,
    device: Json<Reference>,
    start_address: IpAddr,
    end_address: IpAddr,
    mask: IpAddr,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Ipv4OverrideRow> for Ipv4PoolOverride {
    type Error = sqlx::Error;

    fn try_from(row: Ipv4OverrideRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            pool: row.pool.0,
            device: row.device.0,
            start: super::ipv4_column("start_address", row.start_address)?,
            end: super::ipv4_column("end_address", row.end_address)?,
            mask: super::ipv4_column("mask", row.mask)?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

struct Ipv6OverrideRow {
    id: Uuid,
    domain_id: Uuid,
    pool: Json<Reference>,
    device: Json<Reference>,
    start_address: IpAddr,
    prefix_length: i16,
    number_of_addresses: i32,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<Ipv6OverrideRow> for Ipv6PoolOverride {
    type Error = sqlx::Error;

    fn try_from(row: Ipv6OverrideRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            pool: row.pool.0,
            device: row.device.0,
            start: super::ipv6_column("start_address", row.start_address)?,
            prefix_length: super::unsigned_column("prefix_length", row.prefix_length)?,
            number_of_addresses: super::unsigned_column(
                "number_of_addresses",
                row.number_of_addresses,
            )?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
