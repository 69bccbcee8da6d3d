//! The manager's domain services, built once per process and shared by both doors (the
//! REST API and the web UI). Everything that matters lives in PostgreSQL, so several
//! processes built this way on one database serve side by side.

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::db::EncryptionKey;
use crate::deploy::{Deployments, WorkerSettings, Workers};
use crate::devices::Sensors;
use crate::pki::store::{self, CHANNEL_CA_NAME, CaStoreError};

/// The services of one manager process. Cheap to clone; this replica's deploy workers
/// run while any clone lives.
#[derive(Clone, Debug)]
pub struct Services {
    /// The registered sensors and the calls made to them.
    pub sensors: Sensors,
    /// Deploy previews, requests and rollbacks.
    pub deployments: Deployments,
    workers: Arc<Workers>,
}

impl Services {
    /// Loads (or creates) the internal CA and starts this replica's deploy workers with
    /// the default lease and poll.
    pub async fn start(
        pool: PgPool,
        key: EncryptionKey,
        manager_name: &str,
    ) -> Result<Self, CaStoreError> {
        Self::start_with(pool, key, manager_name, WorkerSettings::for_this_process()).await
    }

    pub async fn start_with(
        pool: PgPool,
        key: EncryptionKey,
        manager_name: &str,
        workers: WorkerSettings,
    ) -> Result<Self, CaStoreError> {
        let ca =
            store::load_or_create(&pool, &key, CHANNEL_CA_NAME, OffsetDateTime::now_utc()).await?;
        let sensors = Sensors::new(pool.clone(), key.clone(), Arc::new(ca), manager_name);
        let deployments = Deployments::new(pool, key);
        let workers = Arc::new(deployments.start_workers(sensors.clone(), workers));
        Ok(Self {
            sensors,
            deployments,
            workers,
        })
    }

    /// Stops claiming deploy jobs (the process is shutting down).
    pub fn stop_workers(&self) {
        self.workers.stop();
    }
}
