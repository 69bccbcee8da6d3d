//! Reading and writing a [`DeviceConfig`] as JSON, and its content hash.
//!
//! The document arrives over the network (manager → sensor) and from disk, so
//! [`DeviceConfig::from_json`] caps its size at [`MAX_DOCUMENT_BYTES`] and refuses a
//! `schema_version` it does not know before looking at the rest. Nesting cannot
//! exhaust the stack: serde_json stops recursing at 128 levels, and the typed layout
//! bounds depth well below that.

use serde::Deserialize;

use super::{DeviceConfig, SCHEMA_VERSION};

/// The largest document [`DeviceConfig::from_json`] accepts: 16 MiB.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Why bytes are not a [`DeviceConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the document is {length} bytes long; at most {max} bytes are accepted")]
    TooLarge { length: usize, max: usize },
    #[error("schema_version {found} is not supported; this build reads schema_version {supported}")]
    UnsupportedSchemaVersion { found: u64, supported: u32 },
    #[error("invalid document at line {line}, column {column}: {message}")]
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
}

impl DeviceConfig {
    /// Parses a document. It is not validated: call [`DeviceConfig::validate`] next.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(ConfigError::TooLarge {
                length: bytes.len(),
                max: MAX_DOCUMENT_BYTES,
            });
        }
        let probe: SchemaProbe = serde_json::from_slice(bytes).map_err(invalid)?;
        if probe.schema_version != u64::from(SCHEMA_VERSION) {
            return Err(ConfigError::UnsupportedSchemaVersion {
                found: probe.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        serde_json::from_slice(bytes).map_err(invalid)
    }

    /// The document as indented JSON, for people and for disk.
    pub fn to_json(&self) -> Vec<u8> {
        // serde_json only fails on maps with non-string keys or a failing `Serialize`
        // impl; DeviceConfig is made of structs, strings, numbers, addresses and
        // derived enums, so serialising it cannot fail.
        serde_json::to_vec_pretty(self).expect("a DeviceConfig always serialises")
    }

    /// Hex SHA-256 of the canonical (compact) serialisation: equal documents hash the
    /// same whatever whitespace or field order they were read from.
    pub fn content_hash(&self) -> String {
        // Same argument as in `to_json`: serialising a DeviceConfig cannot fail.
        let canonical = serde_json::to_vec(self).expect("a DeviceConfig always serialises");
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &canonical,
        ))
    }
}

/// The one field read before the rest, so an unknown layout gets a precise error.
#[derive(Deserialize)]
struct SchemaProbe {
    schema_version: u64,
}

fn invalid(error: serde_json::Error) -> ConfigError {
    ConfigError::Invalid {
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::fixture;

    #[test]
    fn seed_config_round_trips_through_json() {
        let config = fixture::seed_config();
        let parsed = DeviceConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(parsed, config);
        assert_eq!(parsed.content_hash(), config.content_hash());
    }

    #[test]
    fn content_hash_ignores_formatting_but_not_content() {
        let config = fixture::seed_config();
        let compact = serde_json::to_vec(&config).unwrap();
        let from_compact = DeviceConfig::from_json(&compact).unwrap();
        assert_eq!(from_compact.content_hash(), config.content_hash());
        assert_eq!(config.content_hash().len(), 64);

        let mut changed = config.clone();
        changed.version += 1;
        assert_ne!(changed.content_hash(), config.content_hash());
    }

    #[test]
    fn unknown_schema_version_is_refused_by_number() {
        let mut value = serde_json::to_value(fixture::seed_config()).unwrap();
        value["schema_version"] = 2.into();
        let error = DeviceConfig::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert_eq!(
            error,
            ConfigError::UnsupportedSchemaVersion {
                found: 2,
                supported: SCHEMA_VERSION
            }
        );
        assert!(error.to_string().contains("schema_version 2"));
    }

    #[test]
    fn unknown_field_is_reported_with_line_and_column() {
        let text = "{\n  \"schema_version\": 1,\n  \"colour\": \"blue\"\n}";
        let ConfigError::Invalid {
            line,
            column,
            message,
        } = DeviceConfig::from_json(text.as_bytes()).unwrap_err()
        else {
            panic!("expected a parse error");
        };
        assert_eq!(line, 3);
        assert!(column > 0);
        assert!(message.contains("colour"), "{message}");
    }

    #[test]
    fn missing_schema_version_is_a_parse_error() {
        let error = DeviceConfig::from_json(b"{\"version\": 1}").unwrap_err();
        assert!(
            matches!(&error, ConfigError::Invalid { message, .. } if message.contains("schema_version")),
            "{error}"
        );
    }

    #[test]
    fn document_over_the_size_limit_is_refused_before_parsing() {
        let bytes = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(
            DeviceConfig::from_json(&bytes).unwrap_err(),
            ConfigError::TooLarge {
                length: MAX_DOCUMENT_BYTES + 1,
                max: MAX_DOCUMENT_BYTES
            }
        );
    }

    #[test]
    fn deeply_nested_documents_are_refused_without_overflowing_the_stack() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for text in [
            deep.clone(),
            format!("{{\"schema_version\": {deep}}}"),
            format!("{{\"schema_version\": 1, \"ignored\": {deep}}}"),
            format!("{{\"schema_version\": 1, \"connection_profiles\": {deep}}}"),
        ] {
            let error = DeviceConfig::from_json(text.as_bytes()).unwrap_err();
            assert!(matches!(error, ConfigError::Invalid { .. }), "{error}");
        }
    }

    proptest! {
        #[test]
        fn from_json_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = DeviceConfig::from_json(&bytes);
        }

        #[test]
        fn from_json_never_panics_on_a_damaged_seed_document(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)
        ) {
            let mut bytes = fixture::seed_config().to_json();
            for (index, byte) in edits {
                let at = index.index(bytes.len());
                bytes[at] = byte;
            }
            if let Ok(config) = DeviceConfig::from_json(&bytes) {
                let _ = config.validate(fixture::seed_now());
            }
        }
    }
}
