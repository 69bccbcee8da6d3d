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
//! config watch channel, the session database's pools, and the sessions whose
//! connection profile no longer admits them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;
use vpn_core::cli::running_config;
use vpn_core::config::{ConfigError, ConfigProblem, DeviceConfig};
use vpn_core::pool::{PoolError, PoolSet};

use crate::dataplane::TunSettings;
use crate::sessions::{EndReason, SessionDb};

/// How many applied versions `history/` keeps.
pub const HISTORY_KEPT: usize = 10;
/// Where `sensor-agent run` keeps its configuration unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/sensor-agent";

const RUNNING_FILE: &str = "running.json";
const HISTORY_DIR: &str = "history";
/// Temporary files start with this; [`ConfigStore::open`] removes any it finds.
const TEMP_PREFIX: &str = ".tmp-";

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
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
        std::fs::create_dir_all(&history).map_err(io(&history))?;
        remove_temporary_files(data_dir).map_err(io(data_dir))?;
        remove_temporary_files(&history).map_err(io(&history))?;
        let running_path = data_dir.join(RUNNING_FILE);
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
        let expected = this_device.or_else(|| self.running.as_ref().map(|r| r.device_id));
        if let Some(this_device) = expected
            && config.device_id != this_device
        {
            return Err(ApplyError::OtherDevice {
                this_device,
                offered: config.device_id,
            });
        }
        if let Some(running) = &self.running
            && config.version <= running.version
        {
            return Err(ApplyError::NotNewer {
                running: running.version,
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
    /// Parts of the new configuration the running agent only picks up when it
    /// restarts (the headend's identity and port, the TUN device's MTU and routes).
    pub pending_restart: Vec<String>,
}

/// Applies configurations to the running agent: store, headend, sessions.
#[derive(Debug)]
pub struct Deployer {
    store: Mutex<ConfigStore>,
    config: watch::Sender<Arc<DeviceConfig>>,
    sessions: SessionDb,
}

impl Deployer {
    /// `config` is the channel the headend and the control socket read.
    pub fn new(
        store: ConfigStore,
        config: watch::Sender<Arc<DeviceConfig>>,
        sessions: SessionDb,
    ) -> Self {
        Self {
            store: Mutex::new(store),
            config,
            sessions,
        }
    }

    /// Checks and writes the configuration, hands it to the headend, moves the
    /// session database to its pools and ends the sessions it no longer admits.
    pub fn deploy(
        &self,
        document: &[u8],
        this_device: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<DeployOutcome, ApplyError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let checked = store.check(document, this_device, now)?;
        PoolSet::from_device_config(checked.config()).map_err(ApplyError::Pools)?;
        let applied = store.commit(checked)?;
        let Some(new) = store.running().map(Arc::clone) else {
            // `commit` just set it; nothing else to reconcile.
            return Ok(DeployOutcome {
                applied,
                ended_sessions: Vec::new(),
                pending_restart: Vec::new(),
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
        tracing::info!(
            version = applied.version,
            hash = %applied.hash,
            ended = ended_sessions.len(),
            "configuration applied"
        );
        Ok(DeployOutcome {
            applied,
            ended_sessions,
            pending_restart: changes_needing_restart(&old, &new),
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

/// What differs between `old` and `new` that only a restart of the agent applies.
pub fn changes_needing_restart(old: &DeviceConfig, new: &DeviceConfig) -> Vec<String> {
    let mut pending = Vec::new();
    if old.headend != new.headend {
        pending.push("the headend settings (identity certificate, ports)".to_owned());
    }
    let tun = |config: &DeviceConfig| TunSettings::for_config(config, "", None, None);
    let (before, after) = (tun(old), tun(new));
    if before.mtu != after.mtu {
        pending.push(format!(
            "the TUN device MTU ({} -> {})",
            before.mtu, after.mtu
        ));
    }
    if before.routes != after.routes {
        pending.push("the address pool routes on the TUN device".to_owned());
    }
    pending
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

/// Temp file in `dir`, write, fsync, rename over `dir/name`, fsync `dir`.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ApplyError> {
    let target = dir.join(name);
    let temp = dir.join(format!("{TEMP_PREFIX}{name}.{}", std::process::id()));
    let error = |path: &Path| {
        let path = path.to_owned();
        move |source| ApplyError::Write { path, source }
    };
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        pause_for_tests(name);
        std::fs::rename(&temp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(error(&target)(source));
    }
    Ok(())
}

/// Tests that kill the agent mid-apply set `SENSOR_AGENT_TEST_PAUSE_BEFORE_RENAME` to
/// a file name; the write of that file then stops before its rename, after printing
/// a marker on stderr, until the process is killed.
fn pause_for_tests(name: &str) {
    if std::env::var_os("SENSOR_AGENT_TEST_PAUSE_BEFORE_RENAME").is_some_and(|n| n == name) {
        eprintln!("paused before renaming {name}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

fn remove_temporary_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
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
