//! The applied device configuration on disk, and deploys into the running agent.
//!
//! Layout of the data directory:
//!
//! ```text
//! DATA_DIR/running.json            the last applied configuration (loaded at start)
//! DATA_DIR/history/<version>.json  the last HISTORY_KEPT applied versions, for rollback
//! ```
//!
//! Every file is written atomically: a temporary file in the same directory, written and
//! fsynced, renamed over the target, then the directory fsynced. A process killed at
//! any point leaves either the old or the new `running.json`, never a mix; leftover
//! temporary files are removed by [`ConfigStore::open`]. A refused configuration leaves
//! memory and disk exactly as they were.
//!
//! [`Deployer`] puts an applied configuration into the running agent: the headend's
//! config watch channel, the session database's pools, the sessions whose connection
//! profile no longer admits them, and the [`LiveServices`] (headend listener and TLS
//! identity, TUN device MTU and routes; see [`crate::services`]). A deploy is
//! prepared first (everything that can fail: bind the new port, build the TLS server
//! configuration, add the new routes), then written, then activated; a deploy that
//! cannot be prepared is refused with memory and disk as they were.
//!
//! With nothing applied yet the agent runs [`nothing_applied`], a placeholder
//! (version 0) that [`ConfigStore::running`] does not report.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;
use vpn_core::cli::running_config;
use vpn_core::config::{
    ConfigError, ConfigProblem, DeviceConfig, Headend, IdentityCertificate, PrivateKeyPem,
    SCHEMA_VERSION,
};
use vpn_core::pool::{PoolError, PoolSet};

use crate::atomic_file;
use crate::dataplane::DataplaneError;
use crate::headend::TlsSetupError;
use crate::sessions::{EndReason, SessionDb};

/// How many applied versions `history/` keeps.
pub const HISTORY_KEPT: usize = 10;
/// Where `sensor-agent run` keeps its configuration unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/sensor-agent";

const RUNNING_FILE: &str = "running.json";
const HISTORY_DIR: &str = "history";

/// What an accepted configuration became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub version: u64,
    /// [`DeviceConfig::content_hash`] of the applied document.
    pub hash: String,
    /// `show running-config` of the applied document, line by line.
    pub transcript: Vec<String>,
    /// [`DeviceConfig::warnings`], rendered `path: problem`.
    pub warnings: Vec<String>,
}

/// Why a configuration was not applied. Memory and disk are unchanged in every case
/// but [`ApplyError::Write`], where only a leftover temporary file can remain.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the configuration cannot be read")]
    Parse(#[source] ConfigError),
    #[error("the configuration is for device {offered}; this device is {this_device}")]
    OtherDevice { this_device: Uuid, offered: Uuid },
    #[error("configuration version {offered} is not newer than the running version {running}")]
    NotNewer { running: u64, offered: u64 },
    #[error("the configuration is invalid:{}", ProblemList(.0))]
    Invalid(Vec<ConfigProblem>),
    #[error("the address pools cannot be set up")]
    Pools(#[source] PoolError),
    #[error(
        "the headend cannot listen on {address} (headend.ssl_port {})",
        address.port()
    )]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the headend cannot serve DTLS on UDP {address} (headend.dtls_port {})",
        address.port()
    )]
    DtlsListen {
        address: SocketAddr,
        #[source]
        source: crate::headend::dtls::DtlsSetupError,
    },
    #[error("the headend cannot use the identity certificate")]
    Identity(#[source] TlsSetupError),
    #[error("the TUN device cannot be set up for the configuration")]
    TunDevice(#[source] DataplaneError),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The configuration the agent runs while none has been applied: version 0, nil
/// device id, no profiles, pools or trustpoints, an empty identity (no headend).
/// Any deploy of version 1 or newer replaces it.
pub fn nothing_applied() -> DeviceConfig {
    DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version: 0,
        device_id: Uuid::nil(),
        headend: Headend {
            access_interface: "outside".to_owned(),
            ssl_port: 443,
            dtls_enabled: true,
            dtls_port: 443,
            allow_profile_selection: true,
            identity: IdentityCertificate {
                trustpoint: String::new(),
                certificate_chain_pem: String::new(),
                private_key_pem: PrivateKeyPem(String::new()),
            },
        },
        connection_profiles: Vec::new(),
        group_policies: Vec::new(),
        ipv4_pools: Vec::new(),
        ipv6_pools: Vec::new(),
        trustpoints: Vec::new(),
        local_users: Vec::new(),
    }
}

/// Whether `config` is the [`nothing_applied`] placeholder.
pub fn is_nothing_applied(config: &DeviceConfig) -> bool {
    config.version == 0
}

/// Why the data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the data directory {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid device configuration", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
}

/// The applied configuration and its files.
#[derive(Debug)]
pub struct ConfigStore {
    dir: PathBuf,
    running: Option<Arc<DeviceConfig>>,
}

/// A configuration that passed every check and is ready to be committed.
#[derive(Debug)]
pub struct CheckedConfig {
    config: DeviceConfig,
    warnings: Vec<String>,
}

impl CheckedConfig {
    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }
}

impl ConfigStore {
    /// Opens (creating it if needed) the data directory and loads the last applied
    /// configuration, if any. Leftover temporary files of an interrupted apply are removed.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let history = data_dir.join(HISTORY_DIR);
        // The documents hold the headend's private key and the local users' password
        // hashes: owner-only directories and files, also those an older agent wrote.
        atomic_file::private_dir(data_dir).map_err(io(data_dir))?;
        atomic_file::private_dir(&history).map_err(io(&history))?;
        atomic_file::remove_temporary_files(data_dir).map_err(io(data_dir))?;
        atomic_file::remove_temporary_files(&history).map_err(io(&history))?;
        let running_path = data_dir.join(RUNNING_FILE);
        atomic_file::make_private(&running_path).map_err(io(&running_path))?;
        for version in history_versions(&history) {
            let path = history.join(format!("{version}.json"));
            atomic_file::make_private(&path).map_err(io(&path))?;
        }
        let running = match std::fs::read(&running_path) {
            Ok(bytes) => Some(Arc::new(DeviceConfig::from_json(&bytes).map_err(
                |source| StoreError::Corrupt {
                    path: running_path.clone(),
                    source,
                },
            )?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(&running_path)(e)),
        };
        // A history copy newer than running.json is from an apply killed before its
        // rename: that version never ran.
        let running_version = running.as_ref().map_or(0, |config| config.version);
        for version in history_versions(&history) {
            if version > running_version {
                let path = history.join(format!("{version}.json"));
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        Ok(Self {
            dir: data_dir.to_owned(),
            running,
        })
    }

    /// The running configuration, if one was ever applied.
    pub fn running(&self) -> Option<&Arc<DeviceConfig>> {
        self.running.as_ref()
    }

    /// Versions kept in `history/`, oldest first.
    pub fn history(&self) -> Vec<u64> {
        history_versions(&self.dir.join(HISTORY_DIR))
    }

    /// A kept version, for rollback.
    pub fn history_config(&self, version: u64) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(HISTORY_DIR).join(format!("{version}.json"))).ok()
    }

    /// Parses, validates and applies a configuration, writing it to disk.
    ///
    /// `this_device` is the device the sensor is registered as; `None` (not registered
    /// yet) accepts the device of the running configuration, or any with none.
    pub fn apply(
        &mut self,
        document: &[u8],
        this_device: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<ApplyOutcome, ApplyError> {
        let checked = self.check(document, this_device, now)?;
        self.commit(checked)
    }

    /// Every check of [`Self::apply`], without touching memory or disk.
    pub fn check(
        &self,
        document: &[u8],
        this_device: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<CheckedConfig, ApplyError> {
        let config = DeviceConfig::from_json(document).map_err(ApplyError::Parse)?;
        // A push from the manager logs under the version it offers, refused or not.
        tracing::Span::current().record("version", config.version);
        let expected = this_device.or_else(|| self.running.as_ref().map(|r| r.device_id));
        if let Some(this_device) = expected
            && config.device_id != this_device
        {
            return Err(ApplyError::OtherDevice {
                this_device,
                offered: config.device_id,
            });
        }
        // Nothing applied counts as version 0 (the placeholder the agent runs).
        let running_version = self.running.as_ref().map_or(0, |r| r.version);
        if config.version <= running_version {
            return Err(ApplyError::NotNewer {
                running: running_version,
                offered: config.version,
            });
        }
        config.validate(now).map_err(ApplyError::Invalid)?;
        let warnings = config
            .warnings(now)
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(CheckedConfig { config, warnings })
    }

    /// Writes a checked configuration (history copy, then `running.json`) and makes it
    /// the running one.
    pub fn commit(&mut self, checked: CheckedConfig) -> Result<ApplyOutcome, ApplyError> {
        let CheckedConfig { config, warnings } = checked;
        let bytes = config.to_json();
        let history = self.dir.join(HISTORY_DIR);
        write_atomically(&history, &format!("{}.json", config.version), &bytes)?;
        write_atomically(&self.dir, RUNNING_FILE, &bytes)?;
        prune_history(&history, HISTORY_KEPT);
        let outcome = ApplyOutcome {
            version: config.version,
            hash: config.content_hash(),
            transcript: running_config(&config).lines().map(str::to_owned).collect(),
            warnings,
        };
        self.running = Some(Arc::new(config));
        Ok(outcome)
    }
}

/// What a deploy did to the running agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    pub applied: ApplyOutcome,
    /// Sessions ended because their address left every pool or their connection
    /// profile no longer admits them (`Admin Reset`).
    pub ended_sessions: Vec<u32>,
    /// What the deploy changed in the running services, one line each (e.g. `the
    /// headend listens on 0.0.0.0:8443`); empty when only the configuration changed.
    pub changes: Vec<String>,
}

/// The parts of the running agent a configuration drives besides the configuration
/// channel and the session database (implemented by [`crate::services::Services`]).
///
/// A deploy calls [`Self::prepare`] before anything is written: it does every step that
/// can fail, without changing what clients see, and refuses the deploy with a precise
/// error if one fails. The store is then written and [`PreparedServices::activate`]
/// makes the change live; dropping the prepared change instead undoes the preparation.
pub trait LiveServices: Send + Sync + fmt::Debug {
    fn prepare(&self, next: &DeviceConfig) -> Result<Box<dyn PreparedServices>, ApplyError>;
}

/// A change prepared by [`LiveServices::prepare`]; dropped without activation, it is
/// undone.
pub trait PreparedServices: Send {
    /// Makes the change live; cannot fail. Returns what changed, one line each.
    fn activate(self: Box<Self>) -> Vec<String>;
}

/// Applies configurations to the running agent: store, headend, sessions, services.
#[derive(Debug)]
pub struct Deployer {
    store: Mutex<ConfigStore>,
    config: watch::Sender<Arc<DeviceConfig>>,
    sessions: SessionDb,
    services: Option<Arc<dyn LiveServices>>,
}

impl Deployer {
    /// `config` is the channel the headend and the control socket read. Without
    /// [`Self::with_services`], a deploy changes only the configuration and sessions.
    pub fn new(
        store: ConfigStore,
        config: watch::Sender<Arc<DeviceConfig>>,
        sessions: SessionDb,
    ) -> Self {
        Self {
            store: Mutex::new(store),
            config,
            sessions,
            services: None,
        }
    }

    /// Deploys also prepare and activate `services`.
    #[must_use]
    pub fn with_services(mut self, services: Arc<dyn LiveServices>) -> Self {
        self.services = Some(services);
        self
    }

    /// Checks the configuration and prepares the services for it, then writes it,
    /// hands it to the headend, moves the session database to its pools, ends the
    /// sessions it no longer admits and activates the prepared services. A refusal
    /// leaves disk and memory as they were.
    pub fn deploy(
        &self,
        document: &[u8],
        this_device: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<DeployOutcome, ApplyError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let checked = store.check(document, this_device, now)?;
        PoolSet::from_device_config(checked.config()).map_err(ApplyError::Pools)?;
        let prepared = match &self.services {
            Some(services) => Some(services.prepare(checked.config())?),
            None => None,
        };
        // A failed write drops `prepared`, which undoes it.
        let applied = store.commit(checked)?;
        let Some(new) = store.running().map(Arc::clone) else {
            // `commit` just set it; nothing else to reconcile.
            return Ok(DeployOutcome {
                applied,
                ended_sessions: Vec::new(),
                changes: prepared.map(|p| p.activate()).unwrap_or_default(),
            });
        };
        let old = self.config.send_replace(Arc::clone(&new));
        let mut ended_sessions =
            match self
                .sessions
                .apply_pools(&new.ipv4_pools, &new.ipv6_pools, now)
            {
                Ok(ended) => ended,
                Err(e) => {
                    // The pools were checked above; a failure here means the old
                    // allocators stay, which keeps every session's address valid.
                    tracing::error!(error = %e, "the session database kept its old pools");
                    Vec::new()
                }
            };
        ended_sessions.extend(self.sessions.end_where(
            |record| !profile_still_admits(&old, &new, &record.tunnel_group),
            EndReason::AdminReset,
            now,
        ));
        ended_sessions.sort_unstable();
        ended_sessions.dedup();
        let changes = prepared.map(|p| p.activate()).unwrap_or_default();
        tracing::info!(
            version = applied.version,
            hash = %applied.hash,
            ended = ended_sessions.len(),
            ?changes,
            "configuration applied"
        );
        Ok(DeployOutcome {
            applied,
            ended_sessions,
            changes,
        })
    }
}

/// Whether sessions admitted by `profile` under `old` are still admitted under `new`:
/// the profile exists in both, its authentication settings and trustpoint list are
/// the same, and each of its trustpoints is unchanged.
pub fn profile_still_admits(old: &DeviceConfig, new: &DeviceConfig, profile: &str) -> bool {
    let (Some(before), Some(after)) = (
        old.connection_profile(profile),
        new.connection_profile(profile),
    ) else {
        return false;
    };
    before.aaa == after.aaa
        && before.trustpoints == after.trustpoints
        && after
            .trustpoints
            .iter()
            .all(|name| old.trustpoint(name) == new.trustpoint(name))
}

/// Renders every problem on its own line.
struct ProblemList<'a>(&'a [ConfigProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// [`atomic_file::write`] (mode 0600: the documents hold keys and password hashes),
/// with the error naming the target.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ApplyError> {
    atomic_file::write(dir, name, bytes, atomic_file::PRIVATE_FILE_MODE).map_err(|source| {
        ApplyError::Write {
            path: dir.join(name),
            source,
        }
    })
}

fn history_versions(history: &Path) -> Vec<u64> {
    let mut versions: Vec<u64> = std::fs::read_dir(history)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// Removes all but the `keep` highest versions. Failures only leave extra files.
fn prune_history(history: &Path, keep: usize) {
    let versions = history_versions(history);
    let excess = versions.len().saturating_sub(keep);
    for version in versions.iter().take(excess) {
        let path = history.join(format!("{version}.json"));
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot prune history");
        }
    }
}

#[cfg(test)]
mod tests;
