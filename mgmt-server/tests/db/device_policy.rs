use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::device_policy;
use mgmt_server::db::devices::{self, DeviceInput};
use mgmt_server::db::group_policies::{self, GroupPolicyInput};
use mgmt_server::db::local_users::{self, LocalUserInput};
use mgmt_server::db::policies::{self, RaVpnPolicyInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{EncryptionKey, GLOBAL_DOMAIN_ID, PasswordHash};
use time::OffsetDateTime;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, CertificateField, PrivateKeyPem, UsernameMapping,
    UsernameSource,
};

use crate::support;

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
            // Slot binding: the machine CA for the machine, the user CA for the user.
            machine_trustpoint_ids: vec![trustpoint_ids[0]],
            user_trustpoint_ids: vec![trustpoint_ids[1]],
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

    let config = mgmt_server::deploy::compile::device_config(&loaded, 1);
    if let Err(problems) = config.validate(OffsetDateTime::now_utc()) {
        panic!("the compiled document is invalid: {problems:#?}");
    }
    let compiled = &config.connection_profiles[0];
    assert_eq!(compiled.trustpoints, ["MACHINE-CA", "USER-CA"]);
    assert_eq!(compiled.machine_trustpoints, ["MACHINE-CA"]);
    assert_eq!(compiled.user_trustpoints, ["USER-CA"]);

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
