//! Reading the device configuration from disk.

use std::io::Read;
use std::path::{Path, PathBuf};

use vpn_core::config::DeviceConfig;

/// Largest configuration file accepted.
pub const MAX_CONFIG_BYTES: u64 = vpn_core::config::MAX_DOCUMENT_BYTES as u64;

/// Why the configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadConfigError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_CONFIG_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} is not a valid device configuration", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: vpn_core::config::ConfigError,
    },
}

/// Loads the device configuration (JSON) the agent runs.
///
/// Checks size, schema version and shape (`DeviceConfig::from_json`). Semantic validation
/// (`DeviceConfig::validate`) runs where the document is applied, with the clock at hand.
pub fn load_config(path: &Path) -> Result<DeviceConfig, LoadConfigError> {
    let bytes = read_config_bytes(path)?;
    DeviceConfig::from_json(&bytes).map_err(|source| LoadConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The bytes of a configuration file, at most [`MAX_CONFIG_BYTES`], for
/// [`crate::config_store::ConfigStore::apply`].
pub fn read_config_bytes(path: &Path) -> Result<Vec<u8>, LoadConfigError> {
    let read_error = |source| LoadConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(LoadConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SAMPLE_CONFIG_JSON;

    #[test]
    fn sample_configuration_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.json");
        std::fs::write(&path, SAMPLE_CONFIG_JSON).unwrap();
        let config = load_config(&path).unwrap();
        assert_eq!(config.connection_profiles[0].name, "RAVPN-MCA");
    }

    #[test]
    fn missing_malformed_or_oversized_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.json");
        let error = load_config(&missing).unwrap_err();
        assert!(matches!(error, LoadConfigError::Read { .. }));
        assert!(error.to_string().contains("missing.json"));

        let malformed = dir.path().join("bad.json");
        std::fs::write(&malformed, "{\"schema_version\": 1,").unwrap();
        assert!(matches!(
            load_config(&malformed),
            Err(LoadConfigError::Parse { .. })
        ));

        let huge = dir.path().join("huge.json");
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        assert!(matches!(
            load_config(&huge),
            Err(LoadConfigError::TooLarge { .. })
        ));
    }
}
