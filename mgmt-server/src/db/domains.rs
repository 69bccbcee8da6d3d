//! Domains (FMC's `DOMAINS` header and the `{domainUUID}` of every path). There is one,
//! Global, created by the first migration; the table allows child domains later.

use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{DbError, ObjectKind};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
}

/// Every domain, Global first.
pub async fn list(exec: impl PgExecutor<'_>) -> Result<Vec<Domain>, DbError> {
    sqlx::query_as!(
        Domain,
        "SELECT id, name, parent_id FROM domains ORDER BY parent_id NULLS FIRST, name"
    )
    .fetch_all(exec)
    .await
    .map_err(DbError::sql("list domains"))
}

pub async fn get(exec: impl PgExecutor<'_>, id: Uuid) -> Result<Domain, DbError> {
    sqlx::query_as!(
        Domain,
        "SELECT id, name, parent_id FROM domains WHERE id = $1",
        id
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a domain"))?
    .ok_or(DbError::NotFound {
        kind: ObjectKind::Domain,
        id,
    })
}
