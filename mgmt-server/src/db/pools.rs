//! IPv4 and IPv6 address pools (`object/ipv4addresspools`, `object/ipv6addresspools`).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres, Row as _};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
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

pub async fn create_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO ipv4_address_pools (id, domain_id, name, description, start_address, end_address, mask, overridable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(std::net::IpAddr::V4(input.start))
    .bind(std::net::IpAddr::V4(input.end))
    .bind(std::net::IpAddr::V4(input.mask))
    .bind(input.overridable)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(V4, &input.name, "create an IPv4 pool"))?;
    let created = get_ipv4(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Create,
        V4,
        id,
        &created.name,
        None,
        super::snapshot(&created),
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

pub async fn get_ipv4(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv4AddressPool, DbError> {
    sqlx::query_as("SELECT * FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
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
    super::list_page(
        &mut conn,
        &super::ListedBy {
            select: "SELECT * FROM ipv4_address_pools",
            from: "ipv4_address_pools",
            scope_column: "domain_id",
            name_column: "name",
            list_action: "list IPv4 pools",
            count_action: "count IPv4 pools",
        },
        domain_id,
        page,
    )
    .await
}

pub async fn update_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv4AddressPoolInput,
) -> Result<Ipv4AddressPool, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        V4,
        id,
        domain_id,
    )
    .await?;
    super::check_version(V4, id, expected_version, current)?;
    let before = get_ipv4(&mut *tx, domain_id, id).await?;
    sqlx::query(
        "UPDATE ipv4_address_pools
         SET name = $3, description = $4, start_address = $5, end_address = $6, mask = $7, overridable = $8,
             version = version + 1, updated_at = now()
         WHERE id = $1 AND domain_id = $2",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(std::net::IpAddr::V4(input.start))
    .bind(std::net::IpAddr::V4(input.end))
    .bind(std::net::IpAddr::V4(input.mask))
    .bind(input.overridable)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(V4, &input.name, "update an IPv4 pool"))?;
    let after = get_ipv4(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Update,
        V4,
        id,
        &after.name,
        super::snapshot(&before),
        super::snapshot(&after),
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

/// Deletes a pool that no profile or group policy uses ([`DbError::InUse`] otherwise).
pub async fn delete_ipv4(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        V4,
        id,
        domain_id,
    )
    .await?;
    if let Some(expected) = expected_version {
        super::check_version(V4, id, expected, current)?;
    }
    let before = get_ipv4(&mut *tx, domain_id, id).await?;
    sqlx::query("DELETE FROM ipv4_address_pools WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(V4, id, "delete an IPv4 pool"))?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Delete,
        V4,
        id,
        &before.name,
        super::snapshot(&before),
        None,
    )
    .await?;
    super::commit(tx).await?;
    Ok(())
}

pub async fn create_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO ipv6_address_pools (id, domain_id, name, description, start_address, prefix_length, number_of_addresses, overridable)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(std::net::IpAddr::V6(input.start))
    .bind(i16::from(input.prefix_length))
    .bind(count_column(input.number_of_addresses))
    .bind(input.overridable)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(V6, &input.name, "create an IPv6 pool"))?;
    let created = get_ipv6(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Create,
        V6,
        id,
        &created.name,
        None,
        super::snapshot(&created),
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

pub async fn get_ipv6(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Ipv6AddressPool, DbError> {
    sqlx::query_as("SELECT * FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
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
    super::list_page(
        &mut conn,
        &super::ListedBy {
            select: "SELECT * FROM ipv6_address_pools",
            from: "ipv6_address_pools",
            scope_column: "domain_id",
            name_column: "name",
            list_action: "list IPv6 pools",
            count_action: "count IPv6 pools",
        },
        domain_id,
        page,
    )
    .await
}

pub async fn update_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &Ipv6AddressPoolInput,
) -> Result<Ipv6AddressPool, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        V6,
        id,
        domain_id,
    )
    .await?;
    super::check_version(V6, id, expected_version, current)?;
    let before = get_ipv6(&mut *tx, domain_id, id).await?;
    sqlx::query(
        "UPDATE ipv6_address_pools
         SET name = $3, description = $4, start_address = $5, prefix_length = $6, number_of_addresses = $7,
             overridable = $8, version = version + 1, updated_at = now()
         WHERE id = $1 AND domain_id = $2",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(&input.description)
    .bind(std::net::IpAddr::V6(input.start))
    .bind(i16::from(input.prefix_length))
    .bind(count_column(input.number_of_addresses))
    .bind(input.overridable)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(V6, &input.name, "update an IPv6 pool"))?;
    let after = get_ipv6(&mut *tx, domain_id, id).await?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Update,
        V6,
        id,
        &after.name,
        super::snapshot(&before),
        super::snapshot(&after),
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

pub async fn delete_ipv6(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        V6,
        id,
        domain_id,
    )
    .await?;
    if let Some(expected) = expected_version {
        super::check_version(V6, id, expected, current)?;
    }
    let before = get_ipv6(&mut *tx, domain_id, id).await?;
    sqlx::query("DELETE FROM ipv6_address_pools WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(V6, id, "delete an IPv6 pool"))?;
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Delete,
        V6,
        id,
        &before.name,
        super::snapshot(&before),
        None,
    )
    .await?;
    super::commit(tx).await?;
    Ok(())
}

/// `number_of_addresses` is an `integer`; larger counts fail the column's check.
fn count_column(count: u32) -> i32 {
    i32::try_from(count).unwrap_or(-1)
}

impl<'r> FromRow<'r, PgRow> for Ipv4AddressPool {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            domain_id: row.try_get("domain_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            start: super::ipv4_column(row, "start_address")?,
            end: super::ipv4_column(row, "end_address")?,
            mask: super::ipv4_column(row, "mask")?,
            overridable: row.try_get("overridable")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

impl<'r> FromRow<'r, PgRow> for Ipv6AddressPool {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let prefix: i16 = row.try_get("prefix_length")?;
        let count: i32 = row.try_get("number_of_addresses")?;
        Ok(Self {
            id: row.try_get("id")?,
            domain_id: row.try_get("domain_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            start: super::ipv6_column(row, "start_address")?,
            prefix_length: u8::try_from(prefix).map_err(|_| {
                super::column_error("prefix_length", format!("{prefix} is out of range"))
            })?,
            number_of_addresses: u32::try_from(count).map_err(|_| {
                super::column_error("number_of_addresses", format!("{count} is out of range"))
            })?,
            overridable: row.try_get("overridable")?,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}
