//! Users of the LOCAL realm: the AAA "LOCAL" authentication server of connection
//! profiles. Only argon2 hashes are stored, and the hash is never serialised.

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, Listed, ObjectKind, Page, PasswordHash};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct LocalUser {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    /// Goes into the device configuration; never into JSON.
    #[serde(skip)]
    #[sqlx(try_from = "String")]
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
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO local_users (id, domain_id, name, password_hash) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(input.password_hash.as_phc())
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &input.name, "create a LOCAL user"))?;
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
) -> Result<LocalUser, DbError> {
    sqlx::query_as("SELECT * FROM local_users WHERE id = $1 AND domain_id = $2")
        .bind(id)
        .bind(domain_id)
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
    super::list_page(
        &mut *conn,
        &super::ListedBy {
            select: "SELECT * FROM local_users",
            from: "local_users",
            scope_column: "domain_id",
            name_column: "name",
            list_action: "list LOCAL users",
            count_action: "count LOCAL users",
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
    change: &LocalUserUpdate,
) -> Result<LocalUser, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM local_users WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        KIND,
        id,
        domain_id,
    )
    .await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, domain_id, id).await?;
    sqlx::query(
        "UPDATE local_users SET name = $2, password_hash = COALESCE($3, password_hash),
            version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&change.name)
    .bind(change.password_hash.as_ref().map(PasswordHash::as_phc))
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &change.name, "update a LOCAL user"))?;
    let after = get(&mut *tx, domain_id, id).await?;
    let mut after_json = super::snapshot(&after);
    if change.password_hash.is_some()
        && let Some(serde_json::Value::Object(fields)) = after_json.as_mut()
    {
        // The audit row says that the password changed, never what it is.
        fields.insert("passwordChanged".to_owned(), true.into());
    }
    audit::change(
        &mut *tx,
        actor,
        domain_id,
        AuditAction::Update,
        KIND,
        id,
        &after.name,
        super::snapshot(&before),
        after_json,
    )
    .await?;
    super::commit(tx).await?;
    Ok(after)
}

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
        "SELECT version FROM local_users WHERE id = $1 AND domain_id = $2 FOR UPDATE",
        KIND,
        id,
        domain_id,
    )
    .await?;
    if let Some(expected) = expected_version {
        super::check_version(KIND, id, expected, current)?;
    }
    let before = get(&mut *tx, domain_id, id).await?;
    sqlx::query("DELETE FROM local_users WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete a LOCAL user"))?;
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
