//! The deploy engine: registers sensors, compiles each targeted device's policy into a
//! `DeviceConfig` ([`compile`]), shows what a deploy would change as a CLI diff, queues
//! deployments with one queue per device (devices never wait for each other), pushes
//! over the mutual-TLS channel and records each sensor's answer, and rolls back to any
//! earlier deployed version. It also reaches the sensors for sessions and status.

pub mod compile;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::channel::{
    DEFAULT_SENSOR_API_PORT, NatId, RegistrationKey, SensorStatus, TerminateRequest,
    TerminateResult,
};
use vpn_core::cli::running_config;
use vpn_core::config::DeviceConfig;
use vpn_core::session::SessionRecord;

use crate::db::deployments::{self, Deployment, DeploymentKind, JobOutcome, JobRequest};
use crate::db::devices::{self, Device, RegistrationState};
use crate::db::{self, Actor, DbError, EncryptionKey};
use crate::pki::{CaError, InternalCa, IssuedIdentity};
use crate::sensor_client::{
    RegistrationOffer, SensorClient, SensorClientError, SensorEndpoint, error_chain, register,
};
pub use compile::{CompileError, compile};

/// Name of the channel CA in the `internal_cas` table.
pub const CHANNEL_CA_NAME: &str = "channel-ca";

/// Why a deploy engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("device {device}: {source}")]
    Sensor {
        device: String,
        #[source]
        source: SensorClientError,
    },
    #[error("device {device} is not registered")]
    NotRegistered { device: String },
    #[error("device {device} has no usable address: {host:?}")]
    BadHost { device: String, host: String },
    #[error("the internal CA")]
    Ca(#[from] CaError),
    #[error("no device was selected")]
    NoDevices,
}

/// What deploying a device would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingChanges {
    pub device_id: Uuid,
    pub device_name: String,
    /// Version and hash of the last configuration the device accepted.
    pub deployed_version: Option<u64>,
    pub deployed_hash: Option<String>,
    /// The configuration compiles and differs from the deployed one.
    pub has_changes: bool,
    /// `show running-config` of the deployed configuration vs the new one, unified diff.
    pub cli_diff: String,
    /// Why the device's configuration does not compile (nothing can be deployed).
    pub problems: Vec<String>,
}

/// The deploy engine. Cheap to clone.
#[derive(Clone)]
pub struct DeployEngine {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    key: EncryptionKey,
    ca: InternalCa,
    manager_name: String,
    /// Devices whose queue a worker is draining.
    workers: Mutex<HashSet<Uuid>>,
}

impl std::fmt::Debug for DeployEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployEngine")
            .field("manager_name", &self.inner.manager_name)
            .finish_non_exhaustive()
    }
}

impl DeployEngine {
    /// Loads the channel CA (creating it on first start) and resumes queued jobs.
    pub async fn start(
        pool: PgPool,
        key: EncryptionKey,
        manager_name: &str,
    ) -> Result<Self, DeployError> {
        let ca = load_or_create_ca(&pool, &key, OffsetDateTime::now_utc()).await?;
        let engine = Self {
            inner: Arc::new(Inner {
                pool,
                key,
                ca,
                manager_name: manager_name.to_owned(),
                workers: Mutex::new(HashSet::new()),
            }),
        };
        // Jobs queued before a restart: the manager has one domain (Global).
        let queued = queued_jobs(&engine.inner.pool, None).await?;
        let devices: HashSet<Uuid> = queued.iter().map(|job| job.device_id).collect();
        for device_id in devices {
            engine.kick(db::GLOBAL_DOMAIN_ID, device_id);
        }
        Ok(engine)
    }

    pub fn ca_certificate_pem(&self) -> &str {
        self.inner.ca.certificate_pem()
    }

    /// The internal CA (it also issues the manager's HTTPS certificate).
    pub fn ca(&self) -> &InternalCa {
        &self.inner.ca
    }

    /// Registers an added device with `registration_key`; records the outcome
    /// (REGISTERED with its channel certificates, or FAILED with the reason).
    pub async fn register_device(
        &self,
        actor: &Actor,
        device: &Device,
        registration_key: &RegistrationKey,
    ) -> Result<Device, DeployError> {
        let result = self.try_register(device, registration_key).await;
        let mut conn = self.connection().await?;
        match result {
            Ok(registration) => Ok(devices::mark_registered(
                &mut conn,
                actor,
                device.domain_id,
                device.id,
                &registration,
                &self.inner.key,
            )
            .await?),
            Err(e) => {
                let reason = error_chain(&e);
                tracing::warn!(device = %device.name, error = %reason, "registration failed");
                devices::mark_registration_failed(
                    &mut conn,
                    actor,
                    device.domain_id,
                    device.id,
                    &reason,
                )
                .await?;
                Err(e)
            }
        }
    }

    async fn try_register(
        &self,
        device: &Device,
        registration_key: &RegistrationKey,
    ) -> Result<devices::Registration, DeployError> {
        let endpoint = endpoint_of(device)?;
        let nat_id = device
            .nat_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map(NatId::new)
            .transpose()
            .map_err(|e| DeployError::BadHost {
                device: device.name.clone(),
                host: e.to_string(),
            })?;
        let now = OffsetDateTime::now_utc();
        let identity = self
            .inner
            .ca
            .issue_manager_identity(&self.inner.manager_name, now)?;
        let offer = RegistrationOffer {
            endpoint: &endpoint,
            key: registration_key,
            nat_id: nat_id.as_ref(),
            device_id: device.id,
            device_name: &device.name,
            manager_name: &self.inner.manager_name,
            ca: &self.inner.ca,
            manager_identity: &identity,
        };
        let registered = register(&offer, now)
            .await
            .map_err(|source| DeployError::Sensor {
                device: device.name.clone(),
                source,
            })?;
        Ok(devices::Registration {
            sensor_certificate_pem: registered.sensor_certificate_pem,
            manager_certificate_pem: identity.certificate_pem,
            manager_private_key_pem: vpn_core::config::PrivateKeyPem(identity.private_key_pem),
            software_version: Some(registered.agent_version),
        })
    }

    /// The mutual-TLS client of a registered device.
    pub async fn client(&self, device: &Device) -> Result<SensorClient, DeployError> {
        let (Some(sensor_pem), Some(manager_pem)) = (
            device.sensor_certificate_pem.as_deref(),
            device.manager_certificate_pem.as_deref(),
        ) else {
            return Err(DeployError::NotRegistered {
                device: device.name.clone(),
            });
        };
        let key = devices::manager_channel_key(
            &self.inner.pool,
            device.domain_id,
            device.id,
            &self.inner.key,
        )
        .await?;
        let identity = IssuedIdentity {
            certificate_pem: manager_pem.to_owned(),
            private_key_pem: key.expose().to_owned(),
        };
        SensorClient::new(
            endpoint_of(device)?,
            self.inner.ca.certificate_pem(),
            &identity,
            sensor_pem,
        )
        .map_err(|source| DeployError::Sensor {
            device: device.name.clone(),
            source,
        })
    }

    /// What deploying `device` now would change.
    pub async fn pending_changes(&self, device: &Device) -> Result<PendingChanges, DeployError> {
        let mut conn = self.connection().await?;
        let deployed = deployments::last_deployed_job(&mut *conn, device.id).await?;
        let deployed_config = match &deployed {
            Some(job) => Some(
                deployments::job_config(&mut *conn, device.domain_id, job.id, &self.inner.key)
                    .await?,
            ),
            None => None,
        };
        let version = deployed.as_ref().map_or(1, |job| job.config_version);
        let now = OffsetDateTime::now_utc();
        let compiled = compile(
            &self.inner.pool,
            &self.inner.key,
            device.domain_id,
            device.id,
            &device.name,
            version,
            now,
        )
        .await;
        let (has_changes, cli_diff, problems) = match compiled {
            Ok(new) => {
                let changed = deployed
                    .as_ref()
                    .is_none_or(|job| job.content_hash != new.content_hash());
                let old_text = deployed_config
                    .as_ref()
                    .map(running_config)
                    .unwrap_or_default();
                let new_text = running_config(&new);
                (
                    changed,
                    cli_diff(
                        &old_text,
                        &new_text,
                        deployed.as_ref().map(|j| j.config_version),
                    ),
                    Vec::new(),
                )
            }
            Err(CompileError::Invalid { problems, .. }) => (
                false,
                String::new(),
                problems.iter().map(ToString::to_string).collect(),
            ),
            Err(CompileError::Db(e)) => return Err(e.into()),
            Err(other) => (false, String::new(), vec![other.to_string()]),
        };
        Ok(PendingChanges {
            device_id: device.id,
            device_name: device.name.clone(),
            deployed_version: deployed.as_ref().map(|job| job.config_version),
            deployed_hash: deployed.map(|job| job.content_hash),
            has_changes,
            cli_diff,
            problems,
        })
    }

    /// Compiles every selected device and queues one deployment; nothing is queued if
    /// any device fails to compile. Workers push in the background.
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
        let mut jobs = Vec::with_capacity(device_ids.len());
        for device_id in device_ids {
            let device = devices::get(&mut *conn, domain_id, *device_id).await?;
            if device.registration_state != RegistrationState::Registered {
                return Err(DeployError::NotRegistered {
                    device: device.name,
                });
            }
            let version = deployments::next_config_version(&mut *conn, device.id).await?;
            let config = compile(
                &self.inner.pool,
                &self.inner.key,
                domain_id,
                device.id,
                &device.name,
                version,
                now,
            )
            .await?;
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
            &self.inner.key,
        )
        .await?;
        for job in &deployment.jobs {
            self.kick(domain_id, job.device_id);
        }
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
            deployments::job_config(&mut *conn, domain_id, job_id, &self.inner.key).await?;
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
            &self.inner.key,
        )
        .await?;
        self.kick(domain_id, job.device_id);
        Ok(deployment)
    }

    /// The sessions of a registered device.
    pub async fn sessions(&self, device: &Device) -> Result<Vec<SessionRecord>, DeployError> {
        let client = self.client(device).await?;
        client
            .sessions()
            .await
            .map(|list| list.items)
            .map_err(|source| DeployError::Sensor {
                device: device.name.clone(),
                source,
            })
    }

    pub async fn terminate(
        &self,
        device: &Device,
        request: &TerminateRequest,
    ) -> Result<TerminateResult, DeployError> {
        let client = self.client(device).await?;
        client
            .terminate(request)
            .await
            .map_err(|source| DeployError::Sensor {
                device: device.name.clone(),
                source,
            })
    }

    pub async fn status(&self, device: &Device) -> Result<SensorStatus, DeployError> {
        let client = self.client(device).await?;
        client.status().await.map_err(|source| DeployError::Sensor {
            device: device.name.clone(),
            source,
        })
    }

    /// Starts draining the device's queue unless a worker already does.
    fn kick(&self, domain_id: Uuid, device_id: Uuid) {
        {
            let mut workers = self.workers();
            if !workers.insert(device_id) {
                return;
            }
        }
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match engine.run_next_job(domain_id, device_id).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(%device_id, error = %error_chain(&e), "deploy worker stopped");
                    }
                }
                // Leave, unless a job was queued between the last look and now.
                engine.workers().remove(&device_id);
                match queued_jobs(&engine.inner.pool, Some(device_id)).await {
                    Ok(jobs) if !jobs.is_empty() && engine.workers().insert(device_id) => continue,
                    _ => break,
                }
            }
        });
    }

    /// Runs the device's next queued job; false when there was none.
    async fn run_next_job(&self, domain_id: Uuid, device_id: Uuid) -> Result<bool, DeployError> {
        let mut conn = self.connection().await?;
        let Some(job) = deployments::start_next_job(&mut conn, device_id).await? else {
            return Ok(false);
        };
        let device = devices::get(&mut *conn, domain_id, device_id).await?;
        let config =
            deployments::job_config(&mut *conn, domain_id, job.id, &self.inner.key).await?;
        drop(conn);
        tracing::info!(device = %device.name, version = job.config_version, "deploying");
        let outcome = match self.push(&device, &config).await {
            Ok(result) => {
                let mut transcript = result.transcript.join("\n");
                for warning in &result.warnings {
                    transcript.push_str(&format!("\nWARNING: {warning}"));
                }
                transcript.push_str(&format!(
                    "\nINFO: version {} applied (hash {}); {} session(s) ended",
                    result.version,
                    result.hash,
                    result.ended_sessions.len()
                ));
                JobOutcome::Deployed { transcript }
            }
            Err(e) => JobOutcome::Failed {
                transcript: String::new(),
                error: error_chain(&e),
            },
        };
        let mut conn = self.connection().await?;
        deployments::finish_job(&mut conn, &Actor::system(), domain_id, job.id, &outcome).await?;
        Ok(true)
    }

    async fn push(
        &self,
        device: &Device,
        config: &DeviceConfig,
    ) -> Result<vpn_core::channel::DeployResult, DeployError> {
        let client = self.client(device).await?;
        client
            .deploy(config.to_json())
            .await
            .map_err(|source| DeployError::Sensor {
                device: device.name.clone(),
                source,
            })
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, DeployError> {
        self.inner.pool.acquire().await.map_err(|source| {
            DeployError::Db(DbError::Sql {
                action: "get a connection",
                source,
            })
        })
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashSet<Uuid>> {
        self.inner
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Queued jobs of one device, or of every device.
async fn queued_jobs(
    pool: &PgPool,
    device_id: Option<Uuid>,
) -> Result<Vec<deployments::DeploymentJob>, DbError> {
    let filter = deployments::JobFilter {
        device_id,
        status: Some(deployments::JobStatus::Queued),
        deployment_id: None,
    };
    let page = db::Page {
        offset: 0,
        limit: 100_000,
    };
    Ok(
        deployments::list_jobs(pool, db::GLOBAL_DOMAIN_ID, &filter, page)
            .await?
            .items,
    )
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address of the device's API.
fn endpoint_of(device: &Device) -> Result<SensorEndpoint, DeployError> {
    let bad = || DeployError::BadHost {
        device: device.name.clone(),
        host: device.host_name.clone(),
    };
    let text = device.host_name.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(address) = text.parse::<std::net::IpAddr>() {
        return Ok(SensorEndpoint {
            host: address.to_string(),
            port: DEFAULT_SENSOR_API_PORT,
        });
    }
    if let Ok(socket) = text.parse::<std::net::SocketAddr>() {
        return Ok(SensorEndpoint {
            host: socket.ip().to_string(),
            port: socket.port(),
        });
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Ok(SensorEndpoint {
            host: host.to_owned(),
            port: port.parse().map_err(|_| bad())?,
        }),
        None => Ok(SensorEndpoint {
            host: text.to_owned(),
            port: DEFAULT_SENSOR_API_PORT,
        }),
    }
}

async fn load_or_create_ca(
    pool: &PgPool,
    key: &EncryptionKey,
    now: OffsetDateTime,
) -> Result<InternalCa, DeployError> {
    for _ in 0..2 {
        if let Some(stored) = db::internal_ca::get(pool, CHANNEL_CA_NAME).await? {
            let private_key = db::internal_ca::private_key(pool, CHANNEL_CA_NAME, key)
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
        let mut conn = pool.acquire().await.map_err(|source| DbError::Sql {
            action: "get a connection",
            source,
        })?;
        match db::internal_ca::create(
            &mut conn,
            &Actor::system(),
            CHANNEL_CA_NAME,
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

/// Unified diff of two `show running-config` texts.
fn cli_diff(old: &str, new: &str, deployed_version: Option<u64>) -> String {
    let old_name = deployed_version.map_or_else(
        || "deployed (nothing yet)".to_owned(),
        |v| format!("deployed version {v}"),
    );
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, "pending")
        .to_string()
}

#[cfg(test)]
mod tests;
