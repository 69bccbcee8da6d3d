//! The audit log as administrators read it (System > Audit). Rows are written by the
//! services whose changes they record, in the same transaction.

use sqlx::PgPool;

use crate::db::audit::{self, AuditFilter, AuditRecord};
use crate::db::{DbError, Listed, Page};

/// The audit rows `filter` matches, newest first.
pub async fn list(
    pool: &PgPool,
    filter: &AuditFilter,
    page: Page,
) -> Result<Listed<AuditRecord>, DbError> {
    audit::list(pool, filter, page).await
}
