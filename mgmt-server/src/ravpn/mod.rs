//! RA VPN policies: what the wizard creates in one step.

use sqlx::PgPool;
use uuid::Uuid;

use crate::db::policies::{self, RaVpnPolicy, RaVpnPolicyInput};
use crate::db::profiles::{self, ConnectionProfileInput};
use crate::db::{Actor, DbError};

/// Creates a policy with its first connection profile in one transaction: a refused
/// profile leaves no policy behind.
pub async fn create_with_profile(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    policy: &RaVpnPolicyInput,
    profile: &ConnectionProfileInput,
) -> Result<RaVpnPolicy, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::sql("begin"))?;
    let created = policies::create(&mut tx, actor, domain_id, policy).await?;
    profiles::create(&mut tx, actor, domain_id, created.id, profile).await?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(created)
}
