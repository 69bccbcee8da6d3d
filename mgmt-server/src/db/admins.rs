//! Administrators of the manager, their roles, and REST API sessions
//! (`X-auth-access-token` / `X-auth-refresh-token`). Passwords are argon2 hashes;
//! session tokens are stored as SHA-256 digests only.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{self, AuditAction};
use super::versioned::{Change, Versioned};
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Administrator {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub name: String,
    #[serde(skip)]
    pub password_hash: PasswordHash,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSession {
    pub id: Uuid,
    pub administrator_id: Uuid,
    pub domain_id: Uuid,
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
    let id = Uuid::new_v4();
    let mut change = Change::<Administrator>::create(conn, (), id).await?;
    sqlx::query!(
        "INSERT INTO administrators (id, domain_id, name, password_hash, role, enabled)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        domain_id,
        input.name,
        input.password_hash.as_phc(),
        super::enum_text(&input.role),
        input.enabled,
    )
    .execute(change.conn())
    .await
    .map_err(DbError::on_write(
        KIND,
        &input.name,
        "create an administrator",
    ))?;
    change.created(actor).await
}

pub async fn get(exec: impl PgExecutor<'_>, id: Uuid) -> Result<Administrator, DbError> {
    sqlx::query_as!(
        AdministratorRow,
        "SELECT id, domain_id, name, password_hash, role, enabled, last_login_at, version,
                created_at, updated_at
         FROM administrators WHERE id = $1",
        id,
    )
    .try_map(Administrator::try_from)
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
    sqlx::query_as!(
        AdministratorRow,
        "SELECT id, domain_id, name, password_hash, role, enabled, last_login_at, version,
                created_at, updated_at
         FROM administrators WHERE name = $1",
        name,
    )
    .try_map(Administrator::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("look up an administrator"))
}

/// How many administrators exist (zero on a new installation).
pub async fn count(exec: impl PgExecutor<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM administrators"#)
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
    let items = sqlx::query_as!(
        AdministratorRow,
        "SELECT id, domain_id, name, password_hash, role, enabled, last_login_at, version,
                created_at, updated_at
         FROM administrators ORDER BY name OFFSET $1 LIMIT $2",
        page.offset,
        page.limit,
    )
    .try_map(Administrator::try_from)
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
    let mut update = Change::<Administrator>::open(conn, (), id, Some(expected_version)).await?;
    sqlx::query!(
        "UPDATE administrators SET name = $2, password_hash = COALESCE($3, password_hash), role = $4,
            enabled = $5, version = version + 1, updated_at = now()
         WHERE id = $1",
        id,
        change.name,
        change.password_hash.as_ref().map(PasswordHash::as_phc),
        super::enum_text(&change.role),
        change.enabled,
    )
    .execute(update.conn())
    .await
    .map_err(DbError::on_write(KIND, &change.name, "update an administrator"))?;
    update.note_password_changed(change.password_hash.is_some());
    update.updated(actor).await
}

pub async fn delete(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut change = Change::<Administrator>::open(conn, (), id, expected_version).await?;
    sqlx::query!("DELETE FROM administrators WHERE id = $1", id)
        .execute(change.conn())
        .await
        .map_err(DbError::on_delete(KIND, id, "delete an administrator"))?;
    change.deleted(actor).await
}

/// Locks the enabled accounts of the Administrator role (until the transaction ends)
/// and returns their ids: what "the last enabled Administrator" is decided on, so two
/// administrators disabling each other at once cannot both succeed.
pub async fn lock_enabled_administrators(conn: &mut PgConnection) -> Result<Vec<Uuid>, DbError> {
    sqlx::query_scalar!(
        "SELECT id FROM administrators WHERE role = 'Administrator' AND enabled
         ORDER BY id FOR UPDATE"
    )
    .fetch_all(conn)
    .await
    .map_err(DbError::sql("lock the enabled administrators"))
}

/// Ends every live session (web UI and REST) of `administrator_id` but `keep`;
/// returns how many were ended.
pub async fn revoke_sessions_of(
    exec: impl PgExecutor<'_>,
    administrator_id: Uuid,
    keep: Option<Uuid>,
) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "UPDATE api_sessions SET revoked_at = now()
         WHERE administrator_id = $1 AND revoked_at IS NULL AND id IS DISTINCT FROM $2",
        administrator_id,
        keep,
    )
    .execute(exec)
    .await
    .map_err(DbError::sql("revoke an administrator's sessions"))?;
    Ok(done.rows_affected())
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
    let session = sqlx::query_as!(
        ApiSessionRow,
        "INSERT INTO api_sessions (id, administrator_id, domain_id, access_token_sha256, refresh_token_sha256,
                                   source_address, access_expires_at, refresh_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING id, administrator_id, domain_id, source_address, created_at, access_expires_at,
                   refresh_expires_at, refresh_count, revoked_at",
        id,
        administrator.id,
        administrator.domain_id,
        token_digest(tokens.access_token),
        token_digest(tokens.refresh_token),
        source_address.map(super::inet),
        tokens.access_expires_at,
        tokens.refresh_expires_at,
    )
    .map(ApiSession::from)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::on_write(ObjectKind::ApiSession, "", "open a session"))?;
    sqlx::query!(
        "UPDATE administrators SET last_login_at = now() WHERE id = $1",
        administrator.id,
    )
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
    sqlx::query_as!(
        ApiSessionRow,
        "SELECT id, administrator_id, domain_id, source_address, created_at, access_expires_at,
                refresh_expires_at, refresh_count, revoked_at
         FROM api_sessions
         WHERE access_token_sha256 = $1 AND revoked_at IS NULL AND access_expires_at > $2",
        token_digest(access_token),
        now,
    )
    .map(ApiSession::from)
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
    sqlx::query_as!(
        ApiSessionRow,
        "UPDATE api_sessions SET access_token_sha256 = $4, refresh_token_sha256 = $5,
            access_expires_at = $6, refresh_expires_at = $7, refresh_count = refresh_count + 1
         WHERE access_token_sha256 = $1 AND refresh_token_sha256 = $2
           AND revoked_at IS NULL AND refresh_expires_at > $3
         RETURNING id, administrator_id, domain_id, source_address, created_at, access_expires_at,
                   refresh_expires_at, refresh_count, revoked_at",
        token_digest(access_token),
        token_digest(refresh_token),
        now,
        token_digest(new_tokens.access_token),
        token_digest(new_tokens.refresh_token),
        new_tokens.access_expires_at,
        new_tokens.refresh_expires_at,
    )
    .map(ApiSession::from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("refresh a session"))
}

/// Ends a session (logout, or an administrator disabled).
pub async fn revoke_session(exec: impl PgExecutor<'_>, session_id: Uuid) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE api_sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
        session_id,
    )
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

impl Versioned for Administrator {
    const KIND: ObjectKind = KIND;
    /// Administrators are looked up by id alone; the audit row names their domain.
    type Scope = ();

    async fn lock_version(
        conn: &mut PgConnection,
        (): (),
        id: Uuid,
    ) -> Result<Option<i32>, DbError> {
        sqlx::query_scalar!(
            "SELECT version FROM administrators WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(conn)
        .await
        .map_err(DbError::sql("lock an administrator"))
    }

    async fn load(conn: &mut PgConnection, (): (), id: Uuid) -> Result<Self, DbError> {
        get(conn, id).await
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn audit_domain(&self, (): ()) -> Uuid {
        self.domain_id
    }
}

/// An `administrators` row as stored.
struct AdministratorRow {
    id: Uuid,
    domain_id: Uuid,
    name: String,
    password_hash: String,
    role: String,
    enabled: bool,
    last_login_at: Option<OffsetDateTime>,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<AdministratorRow> for Administrator {
    type Error = sqlx::Error;

    fn try_from(row: AdministratorRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            name: row.name,
            password_hash: PasswordHash::try_from(row.password_hash)
                .map_err(super::column_decode("password_hash"))?,
            role: StoredRole::try_from(row.role)?,
            enabled: row.enabled,
            last_login_at: row.last_login_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// An `api_sessions` row without its token digests.
struct ApiSessionRow {
    id: Uuid,
    administrator_id: Uuid,
    domain_id: Uuid,
    source_address: Option<ipnet::IpNet>,
    created_at: OffsetDateTime,
    access_expires_at: OffsetDateTime,
    refresh_expires_at: OffsetDateTime,
    refresh_count: i32,
    revoked_at: Option<OffsetDateTime>,
}

impl From<ApiSessionRow> for ApiSession {
    fn from(row: ApiSessionRow) -> Self {
        Self {
            id: row.id,
            administrator_id: row.administrator_id,
            domain_id: row.domain_id,
            source_address: audit::SourceAddress::from(row.source_address),
            created_at: row.created_at,
            access_expires_at: row.access_expires_at,
            refresh_expires_at: row.refresh_expires_at,
            refresh_count: row.refresh_count,
            revoked_at: row.revoked_at,
        }
    }
}
