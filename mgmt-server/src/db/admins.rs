//! Administrators of the manager, their roles, and REST API sessions
//! (`X-auth-access-token` / `X-auth-refresh-token`). Passwords are argon2 hashes;
//! session tokens are stored as SHA-256 digests only.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, FromRow, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::{Actor, DbError, Listed, ObjectKind, Page, PasswordHash};

/// FMC user roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Administrator,
    #[serde(rename = "Network Admin")]
    NetworkAdmin,
    #[serde(rename = "Read-Only")]
    ReadOnly,
}

impl Role {
    /// Whether the role may change configuration and deploy.
    pub fn can_edit(self) -> bool {
        matches!(self, Self::Administrator | Self::NetworkAdmin)
    }

    /// Whether the role may manage administrators.
    pub fn can_manage_administrators(self) -> bool {
        matches!(self, Self::Administrator)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Administrator {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    #[serde(skip)]
    #[sqlx(try_from = "String")]
    pub password_hash: PasswordHash,
    #[sqlx(try_from = "String")]
    pub role: StoredRole,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_login_at: Option<OffsetDateTime>,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A [`Role`] read from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StoredRole(pub Role);

impl TryFrom<String> for StoredRole {
    type Error = sqlx::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        super::enum_from_text("role", text).map(Self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdministratorInput {
    pub name: String,
    pub password_hash: PasswordHash,
    pub role: Role,
    pub enabled: bool,
}

/// A change to an administrator; `password_hash: None` keeps the password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdministratorUpdate {
    pub name: String,
    pub password_hash: Option<PasswordHash>,
    pub role: Role,
    pub enabled: bool,
}

/// A REST session, without its tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ApiSession {
    pub id: Uuid,
    pub administrator_id: Uuid,
    pub domain_id: Uuid,
    #[sqlx(try_from = "Option<ipnet::IpNet>")]
    pub source_address: audit::SourceAddress,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub access_expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_expires_at: OffsetDateTime,
    pub refresh_count: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The tokens of a new or refreshed session, as the client receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTokens<'a> {
    pub access_token: &'a str,
    pub refresh_token: &'a str,
    pub access_expires_at: OffsetDateTime,
    pub refresh_expires_at: OffsetDateTime,
}

const KIND: ObjectKind = ObjectKind::Administrator;

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &AdministratorInput,
) -> Result<Administrator, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO administrators (id, domain_id, name, password_hash, role, enabled)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(domain_id)
    .bind(&input.name)
    .bind(input.password_hash.as_phc())
    .bind(super::enum_text(&input.role))
    .bind(input.enabled)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "create an administrator",
    ))?;
    let created = get(&mut *tx, id).await?;
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

pub async fn get(exec: impl PgExecutor<'_>, id: Uuid) -> Result<Administrator, DbError> {
    sqlx::query_as("SELECT * FROM administrators WHERE id = $1")
        .bind(id)
        .fetch_optional(exec)
        .await
        .map_err(DbError::sql("read an administrator"))?
        .ok_or(DbError::NotFound { kind: KIND, id })
}

/// The administrator called `name`, for logins; `None` if there is none.
pub async fn find_by_name(
    exec: impl PgExecutor<'_>,
    name: &str,
) -> Result<Option<Administrator>, DbError> {
    sqlx::query_as("SELECT * FROM administrators WHERE name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await
        .map_err(DbError::sql("look up an administrator"))
}

/// How many administrators exist (zero on a new installation).
pub async fn count(exec: impl PgExecutor<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar("SELECT count(*) FROM administrators")
        .fetch_one(exec)
        .await
        .map_err(DbError::sql("count administrators"))
}

pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    page: Page,
) -> Result<Listed<Administrator>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let items = sqlx::query_as("SELECT * FROM administrators ORDER BY name OFFSET $1 LIMIT $2")
        .bind(page.offset)
        .bind(page.limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(DbError::sql("list administrators"))?;
    let total = count(&mut *conn).await?;
    Ok(Listed { items, total })
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: i32,
    change: &AdministratorUpdate,
) -> Result<Administrator, DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM administrators WHERE id = $1 AND $2::uuid IS NOT NULL FOR UPDATE",
        KIND,
        id,
        id,
    )
    .await?;
    super::check_version(KIND, id, expected_version, current)?;
    let before = get(&mut *tx, id).await?;
    sqlx::query(
        "UPDATE administrators SET name = $2, password_hash = COALESCE($3, password_hash), role = $4,
            enabled = $5, version = version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&change.name)
    .bind(change.password_hash.as_ref().map(PasswordHash::as_phc))
    .bind(super::enum_text(&change.role))
    .bind(change.enabled)
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, &change.name, "update an administrator"))?;
    let after = get(&mut *tx, id).await?;
    let mut after_json = super::snapshot(&after);
    if change.password_hash.is_some()
        && let Some(serde_json::Value::Object(fields)) = after_json.as_mut()
    {
        fields.insert("passwordChanged".to_owned(), true.into());
    }
    audit::change(
        &mut *tx,
        actor,
        after.domain_id,
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
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    let current = super::lock_version(
        &mut tx,
        "SELECT version FROM administrators WHERE id = $1 AND $2::uuid IS NOT NULL FOR UPDATE",
        KIND,
        id,
        id,
    )
    .await?;
    if let Some(expected) = expected_version {
        super::check_version(KIND, id, expected, current)?;
    }
    let before = get(&mut *tx, id).await?;
    sqlx::query("DELETE FROM administrators WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_delete(KIND, id, "delete an administrator"))?;
    audit::change(
        &mut *tx,
        actor,
        before.domain_id,
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

/// Opens a REST session after a successful login: stores the session, marks the login
/// time and writes the LOGIN audit row, in one transaction.
pub async fn open_session(
    conn: &mut PgConnection,
    administrator: &Administrator,
    source_address: Option<IpAddr>,
    tokens: &SessionTokens<'_>,
) -> Result<ApiSession, DbError> {
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    let session: ApiSession = sqlx::query_as(
        "INSERT INTO api_sessions (id, administrator_id, domain_id, access_token_sha256, refresh_token_sha256,
                                   source_address, access_expires_at, refresh_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING *",
    )
    .bind(id)
    .bind(administrator.id)
    .bind(administrator.domain_id)
    .bind(token_digest(tokens.access_token))
    .bind(token_digest(tokens.refresh_token))
    .bind(source_address)
    .bind(tokens.access_expires_at)
    .bind(tokens.refresh_expires_at)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::on_write(ObjectKind::ApiSession, "", "open a session"))?;
    sqlx::query("UPDATE administrators SET last_login_at = now() WHERE id = $1")
        .bind(administrator.id)
        .execute(&mut *tx)
        .await
        .map_err(DbError::sql("record a login time"))?;
    let actor = Actor::administrator(&administrator.name, administrator.id, source_address);
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor: &actor,
            domain_id: Some(administrator.domain_id),
            action: AuditAction::Login,
            object_kind: ObjectKind::ApiSession,
            object_id: Some(id),
            object_name: Some(&administrator.name),
            before: None,
            after: None,
            detail: None,
        },
    )
    .await?;
    super::commit(tx).await?;
    Ok(session)
}

/// The live (not revoked, not expired at `now`) session of an access token.
pub async fn session_by_access_token(
    exec: impl PgExecutor<'_>,
    access_token: &str,
    now: OffsetDateTime,
) -> Result<Option<ApiSession>, DbError> {
    sqlx::query_as(
        "SELECT * FROM api_sessions
         WHERE access_token_sha256 = $1 AND revoked_at IS NULL AND access_expires_at > $2",
    )
    .bind(token_digest(access_token))
    .bind(now)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("look up a session"))
}

/// Replaces both tokens of the live session whose tokens are `access_token` and
/// `refresh_token` (FMC `refreshtoken`); `None` if there is no such session.
pub async fn refresh_session(
    exec: impl PgExecutor<'_>,
    access_token: &str,
    refresh_token: &str,
    now: OffsetDateTime,
    new_tokens: &SessionTokens<'_>,
) -> Result<Option<ApiSession>, DbError> {
    sqlx::query_as(
        "UPDATE api_sessions SET access_token_sha256 = $4, refresh_token_sha256 = $5,
            access_expires_at = $6, refresh_expires_at = $7, refresh_count = refresh_count + 1
         WHERE access_token_sha256 = $1 AND refresh_token_sha256 = $2
           AND revoked_at IS NULL AND refresh_expires_at > $3
         RETURNING *",
    )
    .bind(token_digest(access_token))
    .bind(token_digest(refresh_token))
    .bind(now)
    .bind(token_digest(new_tokens.access_token))
    .bind(token_digest(new_tokens.refresh_token))
    .bind(new_tokens.access_expires_at)
    .bind(new_tokens.refresh_expires_at)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("refresh a session"))
}

/// Ends a session (logout, or an administrator disabled).
pub async fn revoke_session(exec: impl PgExecutor<'_>, session_id: Uuid) -> Result<(), DbError> {
    sqlx::query("UPDATE api_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .execute(exec)
        .await
        .map_err(DbError::sql("revoke a session"))?;
    Ok(())
}

/// Ends `session_id` at its administrator's request and writes the LOGOUT audit row, in
/// one transaction.
pub async fn log_out(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    session_id: Uuid,
) -> Result<(), DbError> {
    let mut tx = super::begin(conn).await?;
    revoke_session(&mut *tx, session_id).await?;
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor,
            domain_id: Some(domain_id),
            action: AuditAction::Logout,
            object_kind: ObjectKind::ApiSession,
            object_id: Some(session_id),
            object_name: Some(&actor.name),
            before: None,
            after: None,
            detail: None,
        },
    )
    .await?;
    super::commit(tx).await
}

fn token_digest(token: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}
