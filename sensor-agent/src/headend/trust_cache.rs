//! Parsed trust stores per connection profile, built once per applied configuration.
//!
//! Parsing a profile's CA certificates and CRLs (CRLs may be megabytes) on every TLS
//! connection of every login would repeat the same work several times per login; the
//! stores only change when a new configuration version is applied.

use std::collections::HashMap;
use std::sync::Arc;

use vpn_core::config::{ConnectionProfile, DeviceConfig};
use vpn_core::pki::{TrustStore, TrustStoreError};

/// The stores of one configuration version, keyed by profile name.
#[derive(Debug, Default)]
pub(crate) struct TrustCache {
    version: Option<u64>,
    by_profile: HashMap<String, Arc<TrustStore>>,
}

impl TrustCache {
    /// The profile's store for `config`, parsed on first use after each new version.
    pub(crate) fn store(
        &mut self,
        config: &DeviceConfig,
        profile: &ConnectionProfile,
    ) -> Result<Arc<TrustStore>, TrustStoreError> {
        if self.version != Some(config.version) {
            self.version = Some(config.version);
            self.by_profile.clear();
        }
        if let Some(store) = self.by_profile.get(&profile.name) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(TrustStore::for_profile(config, profile)?);
        self.by_profile
            .insert(profile.name.clone(), Arc::clone(&store));
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use vpn_core::config::{Revocation, Trustpoint, ValidationUsage};
    use vpn_core::pki::testpki::TestCa;

    use super::*;
    use crate::testing::sample_config;

    fn config_trusting(ca: &TestCa, version: u64) -> DeviceConfig {
        let mut config = sample_config();
        config.version = version;
        config.trustpoints = vec![Trustpoint {
            name: "USER-CA".to_owned(),
            ca_certificates_pem: ca.cert.cert_pem.clone(),
            validation_usage: ValidationUsage::default(),
            skip_ca_flag_check: false,
            require_client_auth_eku: true,
            revocation: Revocation::None,
        }];
        config.connection_profiles[0].trustpoints = vec!["USER-CA".to_owned()];
        config
    }

    #[test]
    fn a_profile_store_is_parsed_once_per_configuration_version() {
        let ca = TestCa::root("Cache CA").unwrap();
        let mut cache = TrustCache::default();
        let v3 = config_trusting(&ca, 3);
        let profile = &v3.connection_profiles[0];
        let first = cache.store(&v3, profile).unwrap();
        let again = cache.store(&v3, profile).unwrap();
        assert!(Arc::ptr_eq(&first, &again));

        let v4 = config_trusting(&ca, 4);
        let rebuilt = cache.store(&v4, &v4.connection_profiles[0]).unwrap();
        assert!(!Arc::ptr_eq(&first, &rebuilt));
    }
}
