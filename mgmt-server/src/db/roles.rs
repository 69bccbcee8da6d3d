//! Two database roles: the owner of the schema, which runs the migrations, and the
//! application role every request uses, which owns nothing and may not rewrite the
//! audit log (migration `0007_application_role.sql`).

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{DbError, MIGRATOR};

/// The role that owns the schema in the private cluster.
pub const OWNER_ROLE: &str = "mgmt_owner";
/// The role the application connects as in the private cluster.
pub const APPLICATION_ROLE: &str = "mgmt_app";
/// The advisory lock replicas take while granting ("mgmt-rol" in ASCII).
const GRANT_LOCK: i64 = 0x6d67_6d74_2d72_6f6c;
/// How long a request waits for a connection before it is answered 503.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Who the pool connects as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub superuser: bool,
    /// Owns tables of the schema (can ALTER them and disable their triggers).
    pub owns_tables: bool,
}

/// Migrates as `owner` (when given; otherwise as the application itself), grants the
/// application role its privileges, and opens the application's pool.
pub async fn connect_as_application(
    owner: Option<PgConnectOptions>,
    application: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, DbError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(application)
        .await
        .map_err(DbError::sql("connect to the database"))?;
    match owner {
        Some(owner) => {
            let owner_pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(owner)
                .await
                .map_err(DbError::sql("connect to the database as the schema owner"))?;
            MIGRATOR.run(&owner_pool).await.map_err(DbError::Migrate)?;
            let application_role = role_info(&pool).await?.name;
            let owner_role = role_info(&owner_pool).await?.name;
            if application_role != owner_role {
                grant_application_role(&owner_pool, &application_role).await?;
            }
            owner_pool.close().await;
        }
        None => MIGRATOR.run(&pool).await.map_err(DbError::Migrate)?,
    }
    Ok(pool)
}

/// Grants `role` what the application needs (run by the schema owner). Replicas that
/// start together take turns: PostgreSQL refuses two GRANTs on the same objects at once
/// ("tuple concurrently updated").
pub async fn grant_application_role(owner: &PgPool, role: &str) -> Result<(), DbError> {
    let mut tx = owner
        .begin()
        .await
        .map_err(DbError::sql("begin granting the application role"))?;
    sqlx::query!("SELECT FROM pg_advisory_xact_lock($1)", GRANT_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(DbError::sql("wait for another replica's grants"))?;
    sqlx::query!("SELECT FROM grant_application_role($1)", role)
        .execute(&mut *tx)
        .await
        .map_err(DbError::sql("grant the application role its privileges"))?;
    tx.commit()
        .await
        .map_err(DbError::sql("commit the application role's privileges"))?;
    Ok(())
}

/// The role `pool` connects as.
pub async fn role_info(pool: &PgPool) -> Result<RoleInfo, DbError> {
    sqlx::query_as!(
        RoleInfo,
        r#"SELECT current_user::text AS "name!", r.rolsuper AS "superuser!",
                  EXISTS (SELECT 1 FROM pg_tables t
                          WHERE t.schemaname = 'public' AND t.tableowner = current_user)
                    AS "owns_tables!"
           FROM pg_roles r WHERE r.rolname = current_user"#
    )
    .fetch_one(pool)
    .await
    .map_err(DbError::sql("read the database role"))
}
