//! Test fixtures: the seed's device configuration, built from the config types.

use std::net::Ipv4Addr;

use uuid::Uuid;

use crate::config::{
    AaaSettings, AuthenticationMethod, ConnectionProfile, DeviceConfig, GroupAlias, GroupPolicy,
    Headend, IdentityCertificate, Ipv4Pool, PrivateKeyPem, SCHEMA_VERSION, Trustpoint,
    ValidationUsage,
};

/// Client Certificate Only + MCA + Second Certificate + default CN/OU mapping, as in
/// the seed document. The PEM texts are placeholders: rendering never parses them.
pub(crate) fn seed_config() -> DeviceConfig {
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version: 1,
        device_id: Uuid::nil(),
        headend: Headend {
            access_interface: "outside".to_owned(),
            ssl_port: 443,
            dtls_enabled: true,
            dtls_port: 443,
            allow_profile_selection: true,
            identity: IdentityCertificate {
                trustpoint: "FTD-ID".to_owned(),
                certificate_chain_pem: "placeholder".to_owned(),
                private_key_pem: PrivateKeyPem("placeholder".to_owned()),
            },
        },
        connection_profiles: vec![ConnectionProfile {
            name: "RA-VPN-Multi-Cert".to_owned(),
            group_policy: "RAVPN-Multi-Cert-GP".to_owned(),
            ipv4_pools: vec!["RAVPN-MultiCert-Pool".to_owned()],
            ipv6_pools: Vec::new(),
            aaa,
            trustpoints: vec!["Cisco-CA".to_owned()],
            machine_trustpoints: Vec::new(),
            user_trustpoints: Vec::new(),
            group_aliases: vec![GroupAlias {
                name: "RAVPN-MultiCert".to_owned(),
                enabled: true,
            }],
            group_urls: Vec::new(),
        }],
        group_policies: vec![GroupPolicy::new("RAVPN-Multi-Cert-GP")],
        ipv4_pools: vec![Ipv4Pool {
            name: "RAVPN-MultiCert-Pool".to_owned(),
            start: Ipv4Addr::new(192, 168, 13, 1),
            end: Ipv4Addr::new(192, 168, 13, 100),
            mask: Ipv4Addr::new(255, 255, 255, 0),
        }],
        ipv6_pools: Vec::new(),
        trustpoints: vec![Trustpoint {
            name: "Cisco-CA".to_owned(),
            ca_certificates_pem: "placeholder".to_owned(),
            validation_usage: ValidationUsage::default(),
            skip_ca_flag_check: false,
            require_client_auth_eku: true,
            revocation: Default::default(),
        }],
        local_users: Vec::new(),
    }
}
