//! The audit log as administrators read it (System > Audit). Rows are written by the
//! services whose changes they record, in the same transaction.

use sqlx::PgPool;
use uuid::Uuid;

use crate::db::audit::{self, AuditFilter, AuditRecord};
use crate::db::{Actor, DbError, Listed, Page};

/// Records that `actor`'s role refused `what` (a 403 on either door): an audit row
/// (FORBIDDEN) and a log line.
pub async fn record_forbidden(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Option<Uuid>,
    what: &str,
) -> Result<(), DbError> {
    tracing::warn!(user = %actor.name, what, "change refused for the role");
    audit::forbidden(pool, actor, domain_id, what).await
}

/// The audit rows `filter` matches, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &AuditFilter,
    page: Page,
) -> Result<Listed<AuditRecord>, DbError> {
    audit::list(pool, filter, page).await
}
