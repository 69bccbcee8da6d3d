//! The managed sensors as the manager reaches them: registration with a one-time key,
//! the mutual-TLS client of a registered device, and the calls an administrator makes
//! through it (status, VPN sessions, terminate); the device records and their
//! certificates, with their rules.

pub mod certificates;
mod endpoint;
pub mod records;
pub mod sessions;

use std::sync::Arc;

use sqlx::PgPool;
use time::OffsetDateTime;
use vpn_core::channel::{
    DeployResult, NatId, RegistrationKey, SensorStatus, TerminateRequest, TerminateResult,
};
use vpn_core::session::SessionRecord;

use crate::db::devices::{self, Device};
use crate::db::{Actor, DbError, EncryptionKey};
use crate::pki::{CaError, InternalCa, IssuedIdentity};
use crate::sensor_client::{
    RegistrationOffer, SensorClient, SensorClientError, error_chain, register,
};
pub use certificates::{DeviceIdentity, InstallError, Installation};
pub use endpoint::endpoint_of;
pub use records::DeviceError;
pub use sessions::{Termination, TerminationOutcome};

/// Why a call to a device failed.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(transparent)]
    Db(#[from] DbError),
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
}

/// The registered sensors and how to reach them. Cheap to clone.
#[derive(Clone)]
pub struct Sensors {
    pool: PgPool,
    key: EncryptionKey,
    ca: Arc<InternalCa>,
    manager_name: Arc<str>,
}

impl std::fmt::Debug for Sensors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sensors")
            .field("manager_name", &self.manager_name)
            .finish_non_exhaustive()
    }
}

impl Sensors {
    pub fn new(pool: PgPool, key: EncryptionKey, ca: Arc<InternalCa>, manager_name: &str) -> Self {
        Self {
            pool,
            key,
            ca,
            manager_name: manager_name.into(),
        }
    }

    /// The internal CA that issues the channel certificates (and the HTTPS one).
    pub fn ca(&self) -> &InternalCa {
        &self.ca
    }

    /// Registers an added device with `registration_key`; records the outcome
    /// (REGISTERED with its channel certificates, or FAILED with the reason).
    pub async fn register_device(
        &self,
        actor: &Actor,
        device: &Device,
        registration_key: &RegistrationKey,
    ) -> Result<Device, SensorError> {
        let result = self.try_register(device, registration_key).await;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(DbError::sql("get a connection"))?;
        match result {
            Ok(registration) => Ok(devices::mark_registered(
                &mut conn,
                actor,
                device.domain_id,
                device.id,
                &registration,
                &self.key,
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
    ) -> Result<devices::Registration, SensorError> {
        let endpoint = endpoint_of(device)?;
        let nat_id = device
            .nat_id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map(NatId::new)
            .transpose()
            .map_err(|e| SensorError::BadHost {
                device: device.name.clone(),
                host: e.to_string(),
            })?;
        let now = OffsetDateTime::now_utc();
        let identity = self.ca.issue_manager_identity(&self.manager_name, now)?;
        let offer = RegistrationOffer {
            endpoint: &endpoint,
            key: registration_key,
            nat_id: nat_id.as_ref(),
            device_id: device.id,
            device_name: &device.name,
            manager_name: &self.manager_name,
            ca: &self.ca,
            manager_identity: &identity,
        };
        let registered = register(&offer, now)
            .await
            .map_err(|source| SensorError::Sensor {
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
    pub async fn client(&self, device: &Device) -> Result<SensorClient, SensorError> {
        let (Some(sensor_pem), Some(manager_pem)) = (
            device.sensor_certificate_pem.as_deref(),
            device.manager_certificate_pem.as_deref(),
        ) else {
            return Err(SensorError::NotRegistered {
                device: device.name.clone(),
            });
        };
        let key = devices::manager_channel_key(&self.pool, device.domain_id, device.id, &self.key)
            .await?;
        let identity = IssuedIdentity {
            certificate_pem: manager_pem.to_owned(),
            private_key_pem: key.expose().to_owned(),
        };
        SensorClient::new(
            endpoint_of(device)?,
            self.ca.certificate_pem(),
            &identity,
            sensor_pem,
        )
        .map_err(|source| SensorError::Sensor {
            device: device.name.clone(),
            source,
        })
    }

    /// Pushes a configuration document (`DeviceConfig` JSON) to the device.
    pub async fn deploy(
        &self,
        device: &Device,
        document: Vec<u8>,
    ) -> Result<DeployResult, SensorError> {
        let client = self.client(device).await?;
        client
            .deploy(document)
            .await
            .map_err(|source| sensor_error(device, source))
    }

    /// The sessions of a registered device.
    pub async fn sessions(&self, device: &Device) -> Result<Vec<SessionRecord>, SensorError> {
        let client = self.client(device).await?;
        client
            .sessions()
            .await
            .map(|list| list.items)
            .map_err(|source| sensor_error(device, source))
    }

    pub async fn terminate(
        &self,
        device: &Device,
        request: &TerminateRequest,
    ) -> Result<TerminateResult, SensorError> {
        let client = self.client(device).await?;
        client
            .terminate(request)
            .await
            .map_err(|source| sensor_error(device, source))
    }

    pub async fn status(&self, device: &Device) -> Result<SensorStatus, SensorError> {
        let client = self.client(device).await?;
        client
            .status()
            .await
            .map_err(|source| sensor_error(device, source))
    }
}

fn sensor_error(device: &Device, source: SensorClientError) -> SensorError {
    SensorError::Sensor {
        device: device.name.clone(),
        source,
    }
}
