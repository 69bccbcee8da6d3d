use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentContent, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::device_policy::{self, DevicePolicy};
use mgmt_server::db::devices::{self, DeviceInput};
use mgmt_server::db::group_policies::{self, GroupPolicyInput};
use mgmt_server::db::local_users::{self, LocalUserInput};
use mgmt_server::db::policies::{self, RaVpnPolicyInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{EncryptionKey, GLOBAL_DOMAIN_ID, PasswordHash};
use time::OffsetDateTime;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, CertificateField, DeviceConfig, Headend,
    IdentityCertificate, Ipv4Pool, LocalUser, PrivateKeyPem, SCHEMA_VERSION, Trustpoint,
    UsernameMapping, UsernameSource,
};

use crate::support;

/// The conversion the deploy engine makes: references become names.
fn compile(input: &DevicePolicy, version: u64) -> DeviceConfig {
    let identity = input.identity.as_ref().unwrap();
    DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version,
        device_id: input.device.id,
        headend: Headend {
            access_interface: input.policy.access_interface.clone(),
            ssl_port: input.policy.web_port,
            dtls_enabled: input.policy.dtls_enabled,
            dtls_port: input.policy.dtls_port,
            allow_profile_selection: input.policy.allow_connection_profile_selection,
            identity: IdentityCertificate {
                trustpoint: identity.trustpoint.clone(),
                certificate_chain_pem: identity.certificate_chain_pem.clone(),
                private_key_pem: identity.private_key_pem.clone(),
            },
        },
        connection_profiles: input
            .connection_profiles
            .iter()
            .map(|p| vpn_core::config::ConnectionProfile {
                name: p.name.clone(),
                group_policy: p.group_policy.name.clone(),
                ipv4_pools: p.ipv4_pools.iter().map(|r| r.name.clone()).collect(),
                ipv6_pools: p.ipv6_pools.iter().map(|r| r.name.clone()).collect(),
                aaa: p.aaa.clone(),
                trustpoints: p.trustpoints.iter().map(|r| r.name.clone()).collect(),
                group_aliases: p.group_aliases.clone(),
                group_urls: p.group_urls.clone(),
            })
            .collect(),
        group_policies: input
            .group_policies
            .iter()
            .map(|g| vpn_core::config::GroupPolicy {
                name: g.name.clone(),
                banner: g.banner.clone(),
                dns_servers: g.dns_servers.clone(),
                default_domain: g.default_domain.clone(),
                split_tunnel_policy: g.split_tunnel_policy,
                split_tunnel_networks: g.split_tunnel_networks.clone(),
                ipv4_pools: g.ipv4_pools.iter().map(|r| r.name.clone()).collect(),
                mtu: g.mtu,
                keepalive_secs: g.keepalive_secs,
                gateway_dpd_secs: g.gateway_dpd_secs,
                client_dpd_secs: g.client_dpd_secs,
                idle_timeout_minutes: g.idle_timeout_minutes,
                max_connect_time_minutes: g.max_connect_time_minutes,
                simultaneous_logins: g.simultaneous_logins,
                dtls_enabled: g.dtls_enabled,
            })
            .collect(),
        ipv4_pools: input
            .ipv4_pools
            .iter()
            .map(|p| Ipv4Pool {
                name: p.name.clone(),
                start: p.start,
                end: p.end,
                mask: p.mask,
            })
            .collect(),
        ipv6_pools: Vec::new(),
        trustpoints: input
            .trustpoints
            .iter()
            .map(|t| {
                let EnrollmentContent::CaOnly(settings) = &t.content else {
                    panic!("trustpoints are CA-only");
                };
                Trustpoint {
                    name: t.name.clone(),
                    ca_certificates_pem: settings.ca_certificates_pem.clone(),
                    validation_usage: settings.validation_usage,
                    skip_ca_flag_check: settings.skip_ca_flag_check,
                    require_client_auth_eku: settings.require_client_auth_eku,
                    revocation: settings.revocation.clone(),
                }
            })
            .collect(),
        local_users: input
            .local_users
            .iter()
            .map(|u| LocalUser {
                name: u.name.clone(),
                password_hash: u.password_hash.as_phc().to_owned(),
            })
            .collect(),
    }
}

#[tokio::test]
async fn a_device_policy_loads_everything_the_device_runs_and_compiles_into_a_valid_device_config()
{
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();

    let device = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: "ftd-1".to_owned(),
            description: String::new(),
            host_name: "192.0.2.1".to_owned(),
            nat_id: None,
        },
    )
    .await
    .unwrap();
    let idle = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: "ftd-2".to_owned(),
            description: String::new(),
            host_name: "192.0.2.2".to_owned(),
            nat_id: None,
        },
    )
    .await
    .unwrap();
    assert!(
        device_policy::load(&pool, GLOBAL_DOMAIN_ID, idle.id, &key)
            .await
            .unwrap()
            .is_none()
    );

    let v4 = |name: &str, third: u8| Ipv4AddressPoolInput {
        name: name.to_owned(),
        description: String::new(),
        start: std::net::Ipv4Addr::new(10, 60, third, 10),
        end: std::net::Ipv4Addr::new(10, 60, third, 99),
        mask: "255.255.255.0".parse().unwrap(),
        overridable: false,
    };
    let profile_pool =
        pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("PROFILE-POOL", 1))
            .await
            .unwrap();
    let gp_pool = pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("GP-POOL", 2))
        .await
        .unwrap();
    pools::create_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, &v4("UNUSED", 3))
        .await
        .unwrap();
    let mut gp = GroupPolicyInput::new("MCA-GP");
    gp.ipv4_pool_ids = vec![gp_pool.id];
    let group_policy = group_policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &gp)
        .await
        .unwrap();

    let mut trustpoint_ids = Vec::new();
    for name in ["MACHINE-CA", "USER-CA"] {
        let (pem, _) = support::certificate(name);
        let input = CertEnrollmentInput {
            name: name.to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::CaOnly(CaOnlySettings::new(pem)),
        };
        trustpoint_ids.push(
            cert_enrollments::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input, &key)
                .await
                .unwrap()
                .id,
        );
    }
    let (chain, private_key) = support::certificate("vpn");
    let identity = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "VPN-ID".to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain.clone(),
                private_key_pem: Some(PrivateKeyPem(private_key.clone())),
            },
        },
        &key,
    )
    .await
    .unwrap();
    let mut policy = RaVpnPolicyInput::new("RAVPN");
    policy.ssl_identity_certificate_id = Some(identity.id);
    policy.target_device_ids = vec![device.id];
    let policy = policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &policy)
        .await
        .unwrap();
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Cn,
        secondary: None,
    };
    profiles::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        &ConnectionProfileInput {
            name: "ftdvpn-aaa-cert-mca".to_owned(),
            description: String::new(),
            group_policy_id: group_policy.id,
            ipv4_pool_ids: vec![profile_pool.id],
            ipv6_pool_ids: vec![],
            trustpoint_ids,
            aaa,
            group_aliases: vec![],
            group_urls: vec![],
        },
    )
    .await
    .unwrap();
    local_users::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &LocalUserInput {
            name: "alice".to_owned(),
            password_hash: PasswordHash::new("pw").unwrap(),
        },
    )
    .await
    .unwrap();

    let loaded = device_policy::load(&pool, GLOBAL_DOMAIN_ID, device.id, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.policy.id, policy.id);
    assert_eq!(loaded.connection_profiles.len(), 1);
    assert_eq!(
        loaded
            .group_policies
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["MCA-GP"]
    );
    assert_eq!(
        loaded
            .ipv4_pools
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["GP-POOL", "PROFILE-POOL"]
    );
    assert_eq!(
        loaded
            .trustpoints
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["MACHINE-CA", "USER-CA"]
    );
    assert_eq!(loaded.local_users.len(), 1);
    let material = loaded.identity.as_ref().unwrap();
    assert_eq!(material.trustpoint, "VPN-ID");
    assert_eq!(material.private_key_pem.expose(), private_key);
    assert!(
        !serde_json::to_string(&loaded)
            .unwrap()
            .contains("PRIVATE KEY")
    );

    let config = compile(&loaded, 1);
    if let Err(problems) = config.validate(OffsetDateTime::now_utc()) {
        panic!("the compiled document is invalid: {problems:#?}");
    }

    // What the policy would give a device it does not target yet (the UI's preview and
    // MCA test bench): the same objects, for that device.
    let preview =
        device_policy::load_for_policy(&pool, GLOBAL_DOMAIN_ID, policy.id, idle.clone(), &key)
            .await
            .unwrap();
    assert_eq!(preview.device.id, idle.id);
    assert_eq!(preview.policy, loaded.policy);
    assert_eq!(preview.connection_profiles, loaded.connection_profiles);
    assert_eq!(preview.group_policies, loaded.group_policies);
    assert_eq!(preview.ipv4_pools, loaded.ipv4_pools);
    assert_eq!(preview.trustpoints, loaded.trustpoints);
    assert_eq!(preview.identity, loaded.identity);
    assert_eq!(preview.local_users, loaded.local_users);
}
