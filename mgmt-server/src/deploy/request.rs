//! Deploy and rollback requests: compile (or take an earlier document), store one job
//! per device in one transaction, and wake the workers. Nothing is queued when any
//! device fails to compile.

use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::DeviceConfig;

use super::compile::compile_alone;
use super::{DeployError, Deployments};
use crate::db::Actor;
use crate::db::deployments::{self, Deployment, DeploymentKind, JobRequest};
use crate::db::devices::{self, RegistrationState};

impl Deployments {
    /// Compiles every selected device and queues one deployment; workers push in the
    /// background (in this replica or another).
    pub async fn deploy(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        device_ids: &[Uuid],
        note: &str,
    ) -> Result<Deployment, DeployError> {
        if device_ids.is_empty() {
            return Err(DeployError::NoDevices);
        }
        let mut conn = self.connection().await?;
        let now = OffsetDateTime::now_utc();
        let mut planned = Vec::with_capacity(device_ids.len());
        for device_id in device_ids {
            let device = devices::get(&mut *conn, domain_id, *device_id).await?;
            let version = deployments::next_config_version(&mut *conn, device.id).await?;
            let compiled = compile_alone(
                &self.pool,
                &self.key,
                domain_id,
                device.id,
                &device.name,
                version,
                now,
            )
            .await;
            let config = match compiled {
                Ok(config) => config,
                // A device that is not registered yet cannot run anything: say that
                // rather than what its policy lacks.
                Err(_) if device.registration_state != RegistrationState::Registered => {
                    return Err(DeployError::NotRegistered {
                        device: device.name,
                    });
                }
                Err(e) => return Err(e.into()),
            };
            planned.push((device, config));
        }
        // Two devices of this request (or one of them and a device already deployed)
        // must not hand out the same addresses.
        super::overlap::check_configs(
            &self.pool,
            domain_id,
            planned
                .iter()
                .map(|(device, config)| (device.id, device.name.as_str(), config)),
        )
        .await?;
        let mut jobs = Vec::with_capacity(planned.len());
        for (device, config) in planned {
            if device.registration_state != RegistrationState::Registered {
                return Err(DeployError::NotRegistered {
                    device: device.name,
                });
            }
            jobs.push(JobRequest {
                config,
                rollback_of_job_id: None,
            });
        }
        let deployment = deployments::create(
            &mut conn,
            actor,
            domain_id,
            DeploymentKind::Deployment,
            note,
            &jobs,
            &self.key,
        )
        .await?;
        self.wake_workers();
        Ok(deployment)
    }

    /// Deploys again what job `job_id` deployed, as a new version.
    pub async fn rollback(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        job_id: Uuid,
    ) -> Result<Deployment, DeployError> {
        let mut conn = self.connection().await?;
        let job = deployments::get_job(&mut *conn, domain_id, job_id).await?;
        let mut config: DeviceConfig =
            deployments::job_config(&mut *conn, domain_id, job_id, &self.key).await?;
        config.version = deployments::next_config_version(&mut *conn, job.device_id).await?;
        let deployment = deployments::create(
            &mut conn,
            actor,
            domain_id,
            DeploymentKind::Rollback,
            &format!("rollback to version {}", job.config_version),
            &[JobRequest {
                config,
                rollback_of_job_id: Some(job_id),
            }],
            &self.key,
        )
        .await?;
        self.wake_workers();
        Ok(deployment)
    }
}
