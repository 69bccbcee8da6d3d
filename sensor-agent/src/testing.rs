//! Shared test data.

use vpn_core::config::DeviceConfig;

/// A small but complete device configuration: one MCA profile, its group policy and
/// an IPv4 pool 10.77.0.10-10.77.0.20.
pub(crate) const SAMPLE_CONFIG_JSON: &str = r#"{
  "schema_version": 1,
  "version": 3,
  "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
  "headend": {
    "identity": {
      "trustpoint": "VPN-ID",
      "certificate_chain_pem": "",
      "private_key_pem": ""
    }
  },
  "connection_profiles": [{
    "name": "RAVPN-MCA",
    "group_policy": "GP-MCA",
    "ipv4_pools": ["POOL4"],
    "aaa": {
      "authentication_method": "CLIENT_CERTIFICATE_ONLY",
      "enable_multiple_certificate_authentication": true
    }
  }],
  "group_policies": [{ "name": "GP-MCA", "mtu": 1399 }],
  "ipv4_pools": [{
    "name": "POOL4",
    "start": "10.77.0.10",
    "end": "10.77.0.20",
    "mask": "255.255.255.0"
  }]
}"#;

pub(crate) fn sample_config() -> DeviceConfig {
    serde_json::from_str(SAMPLE_CONFIG_JSON).unwrap()
}
