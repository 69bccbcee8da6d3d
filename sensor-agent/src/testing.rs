//! Shared test data.

use std::net::{IpAddr, Ipv4Addr};

use vpn_core::config::DeviceConfig;
use vpn_core::session::{AuthMode, ClientInfo};

use crate::sessions::NewSession;

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

/// An MCA login of `username` on the sample config's profile and pool, as openconnect
/// 9.01 presents itself; tests override the fields they care about.
pub(crate) fn new_session(username: &str) -> NewSession {
    NewSession {
        username: username.to_owned(),
        tunnel_group: "RAVPN-MCA".to_owned(),
        group_policy: "GP-MCA".to_owned(),
        ipv4_pools: vec!["POOL4".to_owned()],
        ipv6_pools: Vec::new(),
        public_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        tcp_src_port: 50529,
        tcp_dst_port: 443,
        auth_mode: AuthMode::MultipleCertificate,
        client: ClientInfo {
            os: "linux-64".to_owned(),
            os_version: None,
            client_type: "AnyConnect".to_owned(),
            version: "Open AnyConnect VPN Agent v9.01-3".to_owned(),
        },
        machine_fingerprint: None,
        machine_certificate: None,
        user_certificate: None,
        username_derivation: "CN of the second certificate".to_owned(),
        idle_timeout_minutes: Some(30),
        max_connect_time_minutes: None,
        simultaneous_logins: 3,
    }
}
