//! What the sensor knows about its manager, on disk under `DATA_DIR/manager/`:
//!
//! ```text
//! channel.key         the sensor's channel key (ECDSA P-256, PKCS#8 PEM, mode 0600)
//! pending.json        `configure manager add`: address, registration key, NAT ID (0600);
//!                     removed when a registration uses the key
//! registration.json   the registered manager: device id, CA, pinned manager certificate,
//!                     the sensor's channel certificate
//! ```
//!
//! Every file is written atomically (temporary file, fsync, rename, fsync directory).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::channel::{ManagerAddress, NatId, RegistrationKey};

use crate::atomic_file;

const KEY_FILE: &str = "channel.key";
const PENDING_FILE: &str = "pending.json";
const REGISTRATION_FILE: &str = "registration.json";

/// Why the manager files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("cannot use {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot create the channel key")]
    Key(#[source] rcgen::Error),
}

/// `configure manager add`, waiting for the manager to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingManager {
    pub address: ManagerAddress,
    pub registration_key: RegistrationKey,
    pub nat_id: Option<NatId>,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
}

/// The manager this sensor is registered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub device_id: Uuid,
    pub device_name: String,
    pub manager_name: String,
    pub address: ManagerAddress,
    pub nat_id: Option<NatId>,
    pub ca_certificate_pem: String,
    /// The only client certificate the management API accepts.
    pub manager_certificate_pem: String,
    /// The sensor's channel certificate (for [`ChannelKey`]).
    pub sensor_certificate_pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
}

/// The sensor's channel key and the self-signed certificate it presents until it is
/// registered.
pub struct ChannelKey {
    pub(super) private_key_pem: String,
    pub(super) bootstrap_certificate_pem: String,
    /// DER of the key's SubjectPublicKeyInfo.
    pub(super) public_key_der: Vec<u8>,
}

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelKey").finish_non_exhaustive()
    }
}

/// The manager files of one data directory.
#[derive(Debug, Clone)]
pub struct EnrollmentFiles {
    dir: PathBuf,
}

impl EnrollmentFiles {
    /// `DATA_DIR/manager`, created (mode 0700) if needed.
    pub fn open(data_dir: &Path) -> Result<Self, EnrollmentError> {
        let dir = data_dir.join("manager");
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;
        Ok(Self { dir })
    }

    /// The channel key, generated on first use; `hostname` names the bootstrap certificate.
    pub fn channel_key(&self, hostname: &str) -> Result<ChannelKey, EnrollmentError> {
        let path = self.dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| EnrollmentError::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate().map_err(EnrollmentError::Key)?;
                write_atomically(&self.dir, KEY_FILE, key.serialize_pem().as_bytes())?;
                key
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, hostname);
        name.push(
            DnType::OrganizationalUnitName,
            "sensor-agent (not registered)",
        );
        params.distinguished_name = name;
        let bootstrap = params.self_signed(&key).map_err(EnrollmentError::Key)?;
        Ok(ChannelKey {
            private_key_pem: key.serialize_pem(),
            bootstrap_certificate_pem: bootstrap.pem(),
            public_key_der: key.subject_public_key_info(),
        })
    }

    pub fn pending(&self) -> Result<Option<PendingManager>, EnrollmentError> {
        self.read(PENDING_FILE)
    }

    pub fn registration(&self) -> Result<Option<Registration>, EnrollmentError> {
        self.read(REGISTRATION_FILE)
    }

    pub fn save_pending(&self, pending: &PendingManager) -> Result<(), EnrollmentError> {
        self.write(PENDING_FILE, pending)
    }

    /// Writes the registration, then removes the pending entry: the key is spent.
    pub fn save_registration(&self, registration: &Registration) -> Result<(), EnrollmentError> {
        self.write(REGISTRATION_FILE, registration)?;
        self.remove(PENDING_FILE)
    }

    /// `configure manager delete`: forgets the pending and the registered manager.
    pub fn forget_manager(&self) -> Result<(), EnrollmentError> {
        self.remove(PENDING_FILE)?;
        self.remove(REGISTRATION_FILE)
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, EnrollmentError> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| EnrollmentError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), EnrollmentError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| EnrollmentError::Corrupt {
            path: self.dir.join(name),
            reason: e.to_string(),
        })?;
        write_atomically(&self.dir, name, &bytes)
    }

    fn remove(&self, name: &str) -> Result<(), EnrollmentError> {
        let path = self.dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        }
        std::fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(&self.dir))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrollmentError + use<> {
    let path = path.to_owned();
    move |source| EnrollmentError::Io { path, source }
}

/// [`atomic_file::write`] with mode 0600: these files hold keys.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), EnrollmentError> {
    atomic_file::write(dir, name, bytes, 0o600).map_err(io(&dir.join(name)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use time::macros::datetime;

    use super::*;

    fn pending() -> PendingManager {
        PendingManager {
            address: "192.0.2.10".parse().unwrap(),
            registration_key: RegistrationKey::new("cisco123").unwrap(),
            nat_id: Some(NatId::new("nat-1").unwrap()),
            added_at: datetime!(2026-11-27 0:00 UTC),
        }
    }

    #[test]
    fn the_channel_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnrollmentFiles::open(dir.path()).unwrap();
        let first = files.channel_key("ftd-1").unwrap();
        let second = files.channel_key("ftd-1").unwrap();
        assert_eq!(first.public_key_der, second.public_key_der);
        let mode = std::fs::metadata(dir.path().join("manager").join(KEY_FILE))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{first:?}").contains("PRIVATE"));
    }

    #[test]
    fn the_pending_manager_is_kept_private_and_spent_by_the_registration() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnrollmentFiles::open(dir.path()).unwrap();
        files.save_pending(&pending()).unwrap();
        let mode = std::fs::metadata(dir.path().join("manager").join(PENDING_FILE))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(files.pending().unwrap(), Some(pending()));
        let registration = Registration {
            device_id: Uuid::from_u128(1),
            device_name: "FTD-1".to_owned(),
            manager_name: "fmc".to_owned(),
            address: pending().address,
            nat_id: pending().nat_id,
            ca_certificate_pem: "CA".to_owned(),
            manager_certificate_pem: "M".to_owned(),
            sensor_certificate_pem: "S".to_owned(),
            registered_at: datetime!(2026-11-27 1:00 UTC),
        };
        files.save_registration(&registration).unwrap();
        assert_eq!(files.pending().unwrap(), None);
        assert_eq!(files.registration().unwrap(), Some(registration));
        files.forget_manager().unwrap();
        assert_eq!(files.registration().unwrap(), None);
    }

    #[test]
    fn a_damaged_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let files = EnrollmentFiles::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("manager").join(PENDING_FILE), b"{").unwrap();
        let error = files.pending().unwrap_err().to_string();
        assert!(error.contains("pending.json is damaged"), "{error}");
    }
}
