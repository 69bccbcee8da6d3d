//! The internal CA kept in the database (table `internal_cas`, key encrypted), so every
//! manager replica on one database issues from the same CA.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CaError, InternalCa};
use crate::db::{self, Actor, DbError, EncryptionKey};

/// Name of the channel CA in the `internal_cas` table.
pub const CHANNEL_CA_NAME: &str = "channel-ca";

/// Why the stored CA could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum CaStoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the internal CA")]
    Ca(#[from] CaError),
}

/// Loads the CA named `name`, creating it on first start. When two replicas start at
/// once, the one that loses the race reads the winner's CA.
pub async fn load_or_create(
    pool: &PgPool,
    key: &EncryptionKey,
    name: &str,
    now: OffsetDateTime,
) -> Result<InternalCa, CaStoreError> {
    for _ in 0..2 {
        if let Some(stored) = db::internal_ca::get(pool, name).await? {
            let private_key =
                db::internal_ca::private_key(pool, name, key)
                    .await?
                    .ok_or(DbError::NotFound {
                        kind: db::ObjectKind::InternalCa,
                        id: Uuid::nil(),
                    })?;
            return Ok(InternalCa::from_pem(
                &stored.certificate_pem,
                private_key.expose(),
            )?);
        }
        let ca = InternalCa::generate("Manager Internal CA", now)?;
        let mut conn = pool
            .acquire()
            .await
            .map_err(DbError::sql("get a connection"))?;
        match db::internal_ca::create(
            &mut conn,
            &Actor::system(),
            name,
            ca.certificate_pem(),
            &vpn_core::config::PrivateKeyPem(ca.private_key_pem().to_owned()),
            key,
        )
        .await
        {
            Ok(_) => return Ok(ca),
            // Another manager process created it first: read theirs.
            Err(DbError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DbError::NotFound {
        kind: db::ObjectKind::InternalCa,
        id: Uuid::nil(),
    }
    .into())
}
