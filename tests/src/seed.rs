//! The seed scenario (Cisco's "Configure Multiple Certificate Authentication on FTD
//! for RAVPN") as manager objects, created through the repositories: pool
//! `RAVPN-MultiCert-Pool`, group policy `RAVPN-Multi-Cert-GP`, the machine and user CA
//! trustpoints, the headend identity, and the RA VPN policy whose connection profile
//! `RA-VPN-Multi-Cert` (alias `RAVPN-MultiCert`) is Client Certificate Only + MCA,
//! username from the Second Certificate's CN.

#![allow(clippy::unwrap_used)] // a fixture that cannot be built fails the test loudly

use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::group_policies::{self, GroupPolicyInput};
use mgmt_server::db::policies::{self, RaVpnPolicyInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID};
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, CertificateField, GroupAlias, PrivateKeyPem,
    SplitTunnelPolicy, UsernameMapping, UsernameSource,
};

/// What the seed needs from outside: the certificates and where the headend listens.
#[derive(Debug, Clone)]
pub struct SeedInputs<'a> {
    pub machine_ca_pem: &'a str,
    pub user_ca_pem: &'a str,
    pub identity_chain_pem: &'a str,
    pub identity_key_pem: &'a str,
    pub ssl_port: u16,
    /// Networks the group policy tunnels (split-include); empty tunnels everything.
    pub split_include: Vec<ipnet::IpNet>,
    pub devices: Vec<Uuid>,
}

/// Ids of what [`create`] made.
#[derive(Debug, Clone, Copy)]
pub struct SeedObjects {
    pub pool: Uuid,
    pub group_policy: Uuid,
    pub policy: Uuid,
    pub profile: Uuid,
}

pub const PROFILE: &str = "RA-VPN-Multi-Cert";
pub const ALIAS: &str = "RAVPN-MultiCert";
pub const POOL: &str = "RAVPN-MultiCert-Pool";
pub const GROUP_POLICY: &str = "RAVPN-Multi-Cert-GP";

pub async fn create(pool: &PgPool, key: &EncryptionKey, inputs: &SeedInputs<'_>) -> SeedObjects {
    let admin = Actor::administrator("admin", Uuid::new_v4(), None);
    let mut conn = pool.acquire().await.unwrap();
    let address_pool = pools::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &Ipv4AddressPoolInput {
            name: POOL.to_owned(),
            description: String::new(),
            start: "192.168.77.10".parse().unwrap(),
            end: "192.168.77.250".parse().unwrap(),
            mask: "255.255.255.0".parse().unwrap(),
            overridable: false,
        },
    )
    .await
    .unwrap();
    let mut group_policy = GroupPolicyInput::new(GROUP_POLICY);
    if !inputs.split_include.is_empty() {
        group_policy.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
        group_policy.split_tunnel_networks = inputs.split_include.clone();
    }
    group_policy.simultaneous_logins = 25;
    let group_policy = group_policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &group_policy)
        .await
        .unwrap();
    let mut trustpoints = Vec::new();
    for (name, pem) in [
        ("ftd-machine-ca", inputs.machine_ca_pem),
        ("ftd-user-ca", inputs.user_ca_pem),
    ] {
        let created = cert_enrollments::create(
            &mut conn,
            &admin,
            GLOBAL_DOMAIN_ID,
            &CertEnrollmentInput {
                name: name.to_owned(),
                description: String::new(),
                enrollment_type: EnrollmentType::Manual,
                content: EnrollmentInput::CaOnly(CaOnlySettings::new(pem)),
            },
            key,
        )
        .await
        .unwrap();
        trustpoints.push(created.id);
    }
    let identity = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "ftd-vpn-identity".to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Pkcs12,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: inputs.identity_chain_pem.to_owned(),
                private_key_pem: Some(PrivateKeyPem(inputs.identity_key_pem.to_owned())),
            },
        },
        key,
    )
    .await
    .unwrap();
    let mut policy = RaVpnPolicyInput::new("RAVPN-MCA");
    policy.web_port = inputs.ssl_port;
    policy.dtls_enabled = false;
    policy.ssl_identity_certificate_id = Some(identity.id);
    policy.target_device_ids = inputs.devices.clone();
    let policy = policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &policy)
        .await
        .unwrap();
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    aaa.username_from_certificate_source = UsernameSource::SecondCertificate;
    aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Cn,
        secondary: None,
    };
    let profile = profiles::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        &ConnectionProfileInput {
            name: PROFILE.to_owned(),
            description: String::new(),
            group_policy_id: group_policy.id,
            ipv4_pool_ids: vec![address_pool.id],
            ipv6_pool_ids: Vec::new(),
            // Slot binding: the machine CA issues the machine certificate, the user CA
            // the user certificate.
            machine_trustpoint_ids: vec![trustpoints[0]],
            user_trustpoint_ids: vec![trustpoints[1]],
            trustpoint_ids: trustpoints,
            aaa,
            group_aliases: vec![GroupAlias {
                name: ALIAS.to_owned(),
                enabled: true,
            }],
            group_urls: Vec::new(),
        },
    )
    .await
    .unwrap();
    SeedObjects {
        pool: address_pool.id,
        group_policy: group_policy.id,
        policy: policy.id,
        profile: profile.id,
    }
}
