//! Storage: the PostgreSQL schema (`migrations/`), one repository module per aggregate,
//! and the private cluster mgmt-server runs when it has no `DATABASE_URL`.
//!
//! All SQL of mgmt-server lives under this module. Every query of the repositories
//! (the deploy queue's lease claims and the shared login and request counters included)
//! is checked when mgmt-server is compiled (`sqlx::query!`, `query_as!`,
//! `query_scalar!`): its parameter and column types against the schema that
//! `migrations/` creates, through the offline data in `.sqlx/` at the workspace root
//! (builds need no database; `.cargo/config.toml` sets `SQLX_OFFLINE=true`). After
//! changing a query or a migration, run `scripts/sqlx-prepare.sh` and commit `.sqlx/`;
//! `scripts/test.sh` fails while it is stale. Queries name their columns (no `SELECT *`)
//! and are not assembled at run time: optional filters are `($n::type IS NULL OR column
//! = $n)` predicates. Each aggregate reads rows into a private `…Row` struct of the
//! stored types and converts it to its domain type with checks (`u32` from `integer`,
//! `Ipv4Addr` from `inet`, enums from `text`) that fail as a column decode error, never
//! a panic. Child rows read with their parent in one query come as a `json_agg` array
//! (`"col!: Json<Vec<…>>"`).
//!
//! The one exception is [`cluster`], which provisions the private cluster on its
//! maintenance database, outside the migrated schema: its few statements are run-time
//! queries, and `CREATE DATABASE` / `ALTER DATABASE … OWNER` take the database name as
//! an identifier (checked against `[a-z0-9_]` and quoted: the only SQL built with
//! `format!`).
//!
//! Conventions of every repository:
//! - Reads take any executor (`impl PgExecutor`): the pool, a connection or a
//!   transaction.
//! - Changes take `&mut PgConnection` (pass `&mut *tx` inside a transaction) and the
//!   [`Actor`] who makes them. Each one runs in its own transaction, or a savepoint of
//!   the caller's, and writes its audit row (before/after JSON) in that same
//!   transaction: a change without its audit row never becomes visible.
//! - Updates and deletes take the version the caller last read. A different current
//!   version is [`DbError::Stale`] and nothing is written; a clashing name is
//!   [`DbError::Conflict`]; a missing row is [`DbError::NotFound`]. Every create, update
//!   and delete of an aggregate goes through one helper, `versioned::Change`: begin, lock,
//!   check the version, before image, the change's own statements, after image, audit
//!   row, commit.
//! - Secrets: private keys are stored encrypted with an [`EncryptionKey`] the caller
//!   provides, passwords as argon2 hashes ([`PasswordHash`]); neither is serialised.

pub mod address_claims;
pub mod admins;
pub mod audit;
pub mod cert_enrollments;
pub mod cluster;
pub mod deployments;
pub mod device_certificates;
pub mod device_policy;
pub mod devices;
pub mod domains;
mod error;
pub mod group_policies;
pub mod internal_ca;
pub mod local_users;
mod password;
pub mod policies;
pub mod pool_overrides;
pub mod pools;
pub mod profiles;
pub mod roles;
mod secret;
pub mod throttles;
mod versioned;

pub use error::{DbError, ObjectKind};
pub use password::{PasswordError, PasswordHash};
pub use secret::{ENCRYPTION_KEY_LEN, EncryptionKey, SecretError};

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The schema, from the workspace's `migrations/` directory.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// FMC's Global domain: the same UUID on every FMC, and here.
pub const GLOBAL_DOMAIN_ID: Uuid = Uuid::from_u128(0xe276abec_e0f2_11e3_8169_6d9ed49b625f);

/// Opens a pool and brings the schema up to date.
pub async fn connect(options: PgConnectOptions, max_connections: u32) -> Result<PgPool, DbError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(options)
        .await
        .map_err(|source| DbError::Sql {
            action: "connect to the database",
            source,
        })?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Runs the migrations that have not run yet.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    MIGRATOR.run(pool).await.map_err(DbError::Migrate)
}

/// Who makes a change, and from where: what the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Administrator name, or `system` for the manager's own work.
    pub name: String,
    pub id: Option<Uuid>,
    pub source_address: Option<IpAddr>,
}

impl Actor {
    /// The manager itself (deploy engine, start-up).
    pub fn system() -> Self {
        Self {
            name: "system".to_owned(),
            id: None,
            source_address: None,
        }
    }

    pub fn administrator(
        name: impl Into<String>,
        id: Uuid,
        source_address: Option<IpAddr>,
    ) -> Self {
        Self {
            name: name.into(),
            id: Some(id),
            source_address,
        }
    }
}

/// A reference to another object, as FMC writes them (`{id, type, name}`; the type is
/// implied by the field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    pub id: Uuid,
    pub name: String,
}

/// Which slice of a list to return (FMC `offset` / `limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

impl Page {
    /// FMC's default page: the first 25.
    pub const DEFAULT: Self = Self {
        offset: 0,
        limit: 25,
    };
    /// Everything (for compiling and exports).
    pub const ALL: Self = Self {
        offset: 0,
        limit: i64::MAX,
    };
}

impl Default for Page {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One page of a list and the size of the whole list (FMC `paging.count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: i64,
}

// ---------------------------------------------------------------------------------------
// Helpers shared by the repositories.

/// A transaction of its own, or a savepoint inside the caller's.
async fn begin(conn: &mut PgConnection) -> Result<sqlx::Transaction<'_, sqlx::Postgres>, DbError> {
    sqlx::Connection::begin(conn)
        .await
        .map_err(DbError::sql("begin a transaction"))
}

async fn commit(tx: sqlx::Transaction<'_, sqlx::Postgres>) -> Result<(), DbError> {
    tx.commit().await.map_err(DbError::sql("commit"))
}

/// Every id in `wanted` is among the ids `found`; the first that is not is
/// [`DbError::NotFound`].
fn require_found(kind: ObjectKind, wanted: &[Uuid], found: &[Uuid]) -> Result<(), DbError> {
    match wanted.iter().find(|id| !found.contains(id)) {
        Some(&id) => Err(DbError::NotFound { kind, id }),
        None => Ok(()),
    }
}

/// A count or duration the schema stores as `integer`.
fn int_field(kind: ObjectKind, field: &'static str, value: u32) -> Result<i32, DbError> {
    i32::try_from(value).map_err(|_| DbError::Invalid {
        kind,
        constraint: field.to_owned(),
        message: format!("{value} is larger than {}", i32::MAX),
    })
}

fn opt_int_field(
    kind: ObjectKind,
    field: &'static str,
    value: Option<u32>,
) -> Result<Option<i32>, DbError> {
    value.map(|v| int_field(kind, field, v)).transpose()
}

/// An `integer` column that holds a `u32` (or a smaller unsigned type).
fn unsigned_column<T: TryFrom<i64>>(column: &str, value: impl Into<i64>) -> Result<T, sqlx::Error> {
    let value = value.into();
    T::try_from(value).map_err(|_| column_error(column, format!("{value} is out of range")))
}

fn opt_unsigned_column<T: TryFrom<i64>>(
    column: &str,
    value: Option<impl Into<i64>>,
) -> Result<Option<T>, sqlx::Error> {
    value.map(|v| unsigned_column(column, v)).transpose()
}

/// [`DbError::Stale`] unless the caller saw the current version.
fn check_version(kind: ObjectKind, id: Uuid, expected: i32, current: i32) -> Result<(), DbError> {
    if expected == current {
        Ok(())
    } else {
        Err(DbError::Stale {
            kind,
            id,
            expected,
            current,
        })
    }
}

/// The serde (wire) spelling of a unit enum variant, e.g. `SECOND_CERTIFICATE`: the
/// same text is stored in the database, so vpn-core's enums are used as they are.
fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        // Only unit variants are stored this way; anything else is a programming error
        // that the round-trip unit test catches.
        Ok(other) => other.to_string(),
        Err(error) => error.to_string(),
    }
}

/// The enum value stored as `text` in `column`.
fn enum_from_text<T: DeserializeOwned>(column: &str, text: String) -> Result<T, sqlx::Error> {
    serde_json::from_value(serde_json::Value::String(text)).map_err(|error| {
        sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(error),
        }
    })
}

/// Turns the error of a column's conversion (e.g. [`PasswordHash::try_from`]) into
/// the error sqlx reports for a column it cannot decode.
fn column_decode<E>(column: &str) -> impl FnOnce(E) -> sqlx::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |error| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(error),
    }
}

fn column_error(column: &str, message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: message.into().into(),
    }
}

/// An `inet` column that holds an IPv4 address.
fn ipv4_column(column: &str, address: IpAddr) -> Result<std::net::Ipv4Addr, sqlx::Error> {
    match address {
        IpAddr::V4(address) => Ok(address),
        IpAddr::V6(address) => Err(column_error(column, format!("{address} is not IPv4"))),
    }
}

/// An `inet` column that holds an IPv6 address.
fn ipv6_column(column: &str, address: IpAddr) -> Result<std::net::Ipv6Addr, sqlx::Error> {
    match address {
        IpAddr::V6(address) => Ok(address),
        IpAddr::V4(address) => Err(column_error(column, format!("{address} is not IPv6"))),
    }
}

/// An address as an `inet` parameter of a checked query (a host: /32 or /128).
fn inet(address: impl Into<IpAddr>) -> ipnet::IpNet {
    ipnet::IpNet::from(address.into())
}

/// A serialised copy of a row for the audit log.
fn snapshot<T: Serialize>(value: &T) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

#[cfg(test)]
mod tests {
    use vpn_core::config::{AuthenticationMethod, CertificateField, UsernameSource};

    use super::*;

    #[test]
    fn stored_enum_text_round_trips_through_the_serde_spelling() {
        assert_eq!(
            enum_text(&UsernameSource::FirstCertificate),
            "FIRST_CERTIFICATE"
        );
        assert_eq!(enum_text(&CertificateField::Cn), "CN");
        assert_eq!(
            enum_text(&AuthenticationMethod::AaaAndClientCertificate),
            "AAA_AND_CLIENT_CERTIFICATE"
        );
        let back: UsernameSource = enum_from_text("c", "SECOND_CERTIFICATE".to_owned()).unwrap();
        assert_eq!(back, UsernameSource::SecondCertificate);
        assert!(enum_from_text::<CertificateField>("c", "XX".to_owned()).is_err());
    }

    #[test]
    fn global_domain_has_fmcs_uuid() {
        assert_eq!(
            GLOBAL_DOMAIN_ID.to_string(),
            "e276abec-e0f2-11e3-8169-6d9ed49b625f"
        );
    }
}
