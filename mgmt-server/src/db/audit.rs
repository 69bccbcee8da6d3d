//! The append-only audit log: who, what, when (UTC), from where, before and after.
//!
//! Repositories write a row for every change they make, in the same transaction. The
//! API layer writes logins (success and failure), logouts and session terminations
//! with [`record`]. The database refuses UPDATE, DELETE and TRUNCATE on the table, so
//! not even this module can rewrite history.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Actor, DbError, Listed, ObjectKind, Page};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    Create,
    Update,
    Delete,
    Login,
    LoginFailed,
    Logout,
    Deploy,
    Rollback,
    Register,
    TerminateSessions,
    /// A change refused for the caller's role (HTTP 403).
    Forbidden,
}

/// One audit row to write.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub actor: &'a Actor,
    pub domain_id: Option<Uuid>,
    pub action: AuditAction,
    pub object_kind: ObjectKind,
    pub object_id: Option<Uuid>,
    pub object_name: Option<&'a str>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// Free text, e.g. why a login failed.
    pub detail: Option<&'a str>,
}

/// One audit row as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub actor: String,
    pub actor_id: Option<Uuid>,
    pub source_address: SourceAddress,
    pub domain_id: Option<Uuid>,
    pub action: StoredAction,
    pub object_type: String,
    pub object_id: Option<Uuid>,
    pub object_name: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub detail: Option<String>,
}

/// Which audit rows to list; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub object_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// Writes one audit row.
pub async fn record(exec: impl PgExecutor<'_>, entry: &NewAuditEntry<'_>) -> Result<i64, DbError> {
    sqlx::query_scalar!(
        "INSERT INTO audit_log (actor, actor_id, source_address, domain_id, action, object_type,
                                object_id, object_name, before, after, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         RETURNING id",
        entry.actor.name,
        entry.actor.id,
        entry.actor.source_address.map(super::inet),
        entry.domain_id,
        super::enum_text(&entry.action),
        entry.object_kind.fmc_type(),
        entry.object_id,
        entry.object_name,
        entry.before,
        entry.after,
        entry.detail,
    )
    .fetch_one(exec)
    .await
    .map_err(DbError::sql("write an audit row"))
}

/// Records a refused login: the name that was tried, from where, and why.
/// Records a change `actor` tried and was refused for their role (HTTP 403); `what` says
/// what was tried (method and path, or the page's action).
pub async fn forbidden(
    exec: impl PgExecutor<'_>,
    actor: &Actor,
    domain_id: Option<Uuid>,
    what: &str,
) -> Result<(), DbError> {
    let what: String = what.chars().take(512).collect();
    record(
        exec,
        &NewAuditEntry {
            actor,
            domain_id,
            action: AuditAction::Forbidden,
            object_kind: ObjectKind::Administrator,
            object_id: actor.id,
            object_name: Some(&actor.name),
            before: None,
            after: None,
            detail: Some(&what),
        },
    )
    .await?;
    Ok(())
}

pub async fn login_failed(
    exec: impl PgExecutor<'_>,
    attempted_name: &str,
    source_address: Option<IpAddr>,
    reason: &str,
) -> Result<(), DbError> {
    let actor = Actor {
        name: if attempted_name.is_empty() {
            "(no name)".to_owned()
        } else {
            attempted_name.chars().take(128).collect()
        },
        id: None,
        source_address,
    };
    record(
        exec,
        &NewAuditEntry {
            actor: &actor,
            domain_id: None,
            action: AuditAction::LoginFailed,
            object_kind: ObjectKind::ApiSession,
            object_id: None,
            object_name: None,
            before: None,
            after: None,
            detail: Some(reason),
        },
    )
    .await?;
    Ok(())
}

/// Audit rows, newest first. Each filter that is `None` matches every row; the page is
/// cut by the database.
pub async fn list<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    filter: &AuditFilter,
    page: Page,
) -> Result<Listed<AuditRecord>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let action = filter.action.as_ref().map(super::enum_text);
    let items = sqlx::query_as!(
        AuditRow,
        "SELECT id, occurred_at, actor, actor_id, source_address, domain_id, action, object_type,
                object_id, object_name, before, after, detail
         FROM audit_log
         WHERE ($1::uuid IS NULL OR object_id = $1)
           AND ($2::text IS NULL OR actor = $2)
           AND ($3::text IS NULL OR action = $3)
           AND ($4::timestamptz IS NULL OR occurred_at >= $4)
           AND ($5::timestamptz IS NULL OR occurred_at < $5)
         ORDER BY id DESC OFFSET $6 LIMIT $7",
        filter.object_id,
        filter.actor,
        action,
        filter.since,
        filter.until,
        page.offset,
        page.limit,
    )
    .try_map(AuditRecord::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list audit rows"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM audit_log
         WHERE ($1::uuid IS NULL OR object_id = $1)
           AND ($2::text IS NULL OR actor = $2)
           AND ($3::text IS NULL OR action = $3)
           AND ($4::timestamptz IS NULL OR occurred_at >= $4)
           AND ($5::timestamptz IS NULL OR occurred_at < $5)"#,
        filter.object_id,
        filter.actor,
        action,
        filter.since,
        filter.until,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count audit rows"))?;
    Ok(Listed { items, total })
}

/// An `audit_log` row as stored.
struct AuditRow {
    id: i64,
    occurred_at: OffsetDateTime,
    actor: String,
    actor_id: Option<Uuid>,
    source_address: Option<ipnet::IpNet>,
    domain_id: Option<Uuid>,
    action: String,
    object_type: String,
    object_id: Option<Uuid>,
    object_name: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    detail: Option<String>,
}

impl TryFrom<AuditRow> for AuditRecord {
    type Error = sqlx::Error;

    fn try_from(row: AuditRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            occurred_at: row.occurred_at,
            actor: row.actor,
            actor_id: row.actor_id,
            source_address: SourceAddress::from(row.source_address),
            domain_id: row.domain_id,
            action: StoredAction::try_from(row.action)?,
            object_type: row.object_type,
            object_id: row.object_id,
            object_name: row.object_name,
            before: row.before,
            after: row.after,
            detail: row.detail,
        })
    }
}

/// The source address of an audit row (an `inet` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SourceAddress(pub Option<IpAddr>);

impl From<Option<ipnet::IpNet>> for SourceAddress {
    fn from(value: Option<ipnet::IpNet>) -> Self {
        Self(value.map(|net| net.addr()))
    }
}

/// The action of a stored audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct StoredAction(pub AuditAction);

impl TryFrom<String> for StoredAction {
    type Error = sqlx::Error;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        super::enum_from_text("action", text).map(Self)
    }
}
