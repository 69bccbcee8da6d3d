//! Deploys: compile each targeted device's policy into a `DeviceConfig` ([`compile`]),
//! show what a deploy would change ([`preview`]), queue deploys and rollbacks as one
//! job per device ([`request`]), and push them from a lease-based queue that several
//! manager replicas share and that survives a replica dying mid-push ([`worker`]).
//! Reaching the sensors (registration, the mutual-TLS client) is [`crate::devices`]'s.

pub mod compile;
pub mod identity;
pub mod overlap;
pub mod preview;
pub mod request;
pub mod worker;

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Notify;

use crate::db::deployments::{self, Deployment, DeploymentJob, JobFilter};
use crate::db::{DbError, EncryptionKey, Listed, Page};
pub use compile::{CompileError, compile};
pub use preview::PendingChanges;
pub use worker::{WorkerSettings, Workers};

/// Why a deploy request failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("device {device} is not registered")]
    NotRegistered { device: String },
    #[error("no device was selected")]
    NoDevices,
}

/// Deploy requests and previews. Cheap to clone.
#[derive(Clone)]
pub struct Deployments {
    pool: PgPool,
    key: EncryptionKey,
    /// Wakes this replica's workers at once (others learn of new jobs by NOTIFY).
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Deployments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deployments").finish_non_exhaustive()
    }
}

impl Deployments {
    pub fn new(pool: PgPool, key: EncryptionKey) -> Self {
        Self {
            pool,
            key,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The deploy jobs `filter` matches, newest first.
    pub async fn jobs(
        &self,
        domain_id: uuid::Uuid,
        filter: &JobFilter,
        page: Page,
    ) -> Result<Listed<DeploymentJob>, DbError> {
        deployments::list_jobs(&self.pool, domain_id, filter, page).await
    }

    /// A deployment with its jobs.
    pub async fn deployment(
        &self,
        domain_id: uuid::Uuid,
        id: uuid::Uuid,
    ) -> Result<Deployment, DbError> {
        deployments::get(&self.pool, domain_id, id).await
    }

    /// Starts this replica's workers on the shared queue.
    pub fn start_workers(
        &self,
        sensors: crate::devices::Sensors,
        settings: WorkerSettings,
    ) -> Workers {
        Workers::spawn(
            self.pool.clone(),
            self.key.clone(),
            sensors,
            settings,
            Arc::clone(&self.wake),
        )
    }

    fn wake_workers(&self) {
        self.wake.notify_one();
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, DbError> {
        self.pool
            .acquire()
            .await
            .map_err(DbError::sql("get a connection"))
    }
}
