//! Objects (FMC's Objects > Object Management): one service per kind of object, the only
//! place its rules live. Both doors (REST API and web UI) call these with typed inputs and
//! the acting administrator and map the answers; nothing is stored unless every rule holds.

pub mod cert_enrollments;
pub mod group_policies;
pub mod local_users;
pub mod pools;

use sqlx::PgPool;
use sqlx::pool::PoolConnection;

use crate::db::DbError;

/// A connection for one service call.
pub(crate) async fn acquire(pool: &PgPool) -> Result<PoolConnection<sqlx::Postgres>, DbError> {
    pool.acquire()
        .await
        .map_err(DbError::sql("get a connection"))
}
