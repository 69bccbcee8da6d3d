//! Users of the LOCAL realm: the AAA "LOCAL" authentication server of connection
//! profiles. Only argon2 hashes are stored, and the hash is never serialised.

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::versioned::{Change, domain_scoped};
use super::{Actor, DbError, Listed, ObjectKind, Page, PasswordHash};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalUser {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    /// Goes into the device configuration; never into JSON.
    #[serde(skip)]
    pub password_hash: PasswordHash,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A new LOCAL user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LocalUserInput {
    pub name: String,
    pub password_hash: PasswordHash,
}

/// A change to a LOCAL user; `password_hash: None` keeps the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LocalUserUpdate {
    pub name: String,
    pub password_hash: Option<PasswordHash>,
}

const KIND: ObjectKind = ObjectKind::LocalUser;

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &LocalUserInput,
) -> Result<LocalUser, DbError> {
    let id = Uuid::new_v4();
    let mut change = Change::<LocalUser>::create(conn, domain_id, id).await?;
    sqlx::query!(
        "INSERT INTO local_users (id, domain_id, name, password_hash) VALUES ($1, $2, $3, $4)",
        id,
        domain_id,
        input.name,
        input.password_hash.as_phc(),
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(KIND, &input.name, "create a LOCAL user"))?;
    change.created(actor).await
}

pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<LocalUser, DbError> {
    sqlx::query_as!(
        LocalUserRow,
        "SELECT id, domain_id, name, password_hash, version, created_at, updated_at
         FROM local_users WHERE id = $1 AND domain_id = $2",
        id,
        domain_id,
    )
    .try_map(LocalUser::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a LOCAL user"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<LocalUser>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    list_in(&mut conn, domain_id, page).await
}

/// [`list`] on a connection the caller holds (e.g. inside a snapshot transaction).
pub async fn list_in(
    conn: &mut PgConnection,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<LocalUser>, DbError> {
    let items = sqlx::query_as!(
        LocalUserRow,
        "SELECT id, domain_id, name, password_hash, version, created_at, updated_at
         FROM local_users WHERE domain_id = $1 ORDER BY name OFFSET $2 LIMIT $3",
        domain_id,
        page.offset,
        page.limit,
    )
    .try_map(LocalUser::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list LOCAL users"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM local_users WHERE domain_id = $1"#,
        domain_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count LOCAL users"))?;
    Ok(Listed { items, total })
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    change: &LocalUserUpdate,
) -> Result<LocalUser, DbError> {
    let mut update = Change::<LocalUser>::open(conn, domain_id, id, Some(expected_version)).await?;
    sqlx::query!(
        "UPDATE local_users SET name = $2, password_hash = COALESCE($3, password_hash),
            version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        change.name,
        change.password_hash.as_ref().map(PasswordHash::as_phc),
    )
    .execute(update.conn())
    .await
    .map_err(DbError::on_write(KIND, &change.name, "update a LOCAL user"))?;
    update.note_password_changed(change.password_hash.is_some());
    update.updated(actor).await
}

pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<LocalUser>::open(conn, domain_id, id, expected_version).await?;
    sqlx::query!("DELETE FROM local_users WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a LOCAL user"))?;
    change.deleted(actor).await
}

domain_scoped!(
    LocalUser,
    KIND,
    get,
    "SELECT version FROM local_users WHERE id = $1 AND domain_id = $2 FOR UPDATE",
    "lock a LOCAL user"
);

/// A `local_users` row as stored.
struct LocalUserRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    password_hash: String,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<LocalUserRow> for LocalUser {
    type Error = sqlx::Error;

    fn try_from(row: LocalUserRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            password_hash: PasswordHash::try_from(row.password_hash)
                .map_err(super::column_decode("password_hash"))?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
