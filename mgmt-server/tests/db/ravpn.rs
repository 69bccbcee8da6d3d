use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::devices::{self, DeviceInput};
use mgmt_server::db::group_policies::{self, DEFAULT_GROUP_POLICY_ID, GroupPolicyInput};
use mgmt_server::db::policies::{self, RaVpnPolicyInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput, Ipv6AddressPoolInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{Actor, DbError, EncryptionKey, GLOBAL_DOMAIN_ID, ObjectKind, Page};
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, CertificateField, GroupAlias,
    GroupUrl, PrivateKeyPem, UsernameMapping, UsernameSource,
};

use crate::support;

/// The objects an MCA profile refers to.
struct Objects {
    v4_pool: Uuid,
    v6_pool: Uuid,
    machine_ca: Uuid,
    user_ca: Uuid,
    identity: Uuid,
    group_policy: Uuid,
    device: Uuid,
}

async fn objects(pool: &PgPool, admin: &Actor, key: &EncryptionKey) -> Objects {
    let mut conn = pool.acquire().await.unwrap();
    let v4_pool = pools::create_ipv4(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &Ipv4AddressPoolInput {
            name: "VPN-POOL".to_owned(),
            description: String::new(),
            start: "10.50.0.10".parse().unwrap(),
            end: "10.50.0.250".parse().unwrap(),
            mask: "255.255.255.0".parse().unwrap(),
            overridable: false,
        },
    )
    .await
    .unwrap()
    .id;
    let v6_pool = pools::create_ipv6(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &Ipv6AddressPoolInput {
            name: "VPN-POOL6".to_owned(),
            description: String::new(),
            start: "2001:db8:50::10".parse().unwrap(),
            prefix_length: 64,
            number_of_addresses: 200,
            overridable: false,
        },
    )
    .await
    .unwrap()
    .id;
    let trustpoint = |name: &'static str| {
        let (pem, _) = support::certificate(name);
        CertEnrollmentInput {
            name: name.to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::CaOnly(CaOnlySettings::new(pem)),
        }
    };
    let machine_ca = cert_enrollments::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &trustpoint("MACHINE-CA"),
        key,
    )
    .await
    .unwrap()
    .id;
    let user_ca = cert_enrollments::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &trustpoint("USER-CA"),
        key,
    )
    .await
    .unwrap()
    .id;
    let (chain, private_key) = support::certificate("vpn");
    let identity = cert_enrollments::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "VPN-ID".to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain,
                private_key_pem: Some(PrivateKeyPem(private_key)),
            },
        },
        key,
    )
    .await
    .unwrap()
    .id;
    let group_policy = group_policies::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &GroupPolicyInput::new("MCA-GP"),
    )
    .await
    .unwrap()
    .id;
    let device = devices::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: "ftd-1".to_owned(),
            description: String::new(),
            host_name: "192.0.2.1:8305".to_owned(),
            nat_id: Some("NAT-1".to_owned()),
        },
    )
    .await
    .unwrap()
    .id;
    Objects {
        v4_pool,
        v6_pool,
        machine_ca,
        user_ca,
        identity,
        group_policy,
        device,
    }
}

/// The seed's MCA profile: certificate only, MCA on, username from the first
/// (machine) certificate's CN, both CAs trusted.
fn mca_profile(o: &Objects) -> ConnectionProfileInput {
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Cn,
        secondary: None,
    };
    ConnectionProfileInput {
        name: "ftdvpn-aaa-cert-mca".to_owned(),
        description: "machine + user certificate".to_owned(),
        group_policy_id: o.group_policy,
        ipv4_pool_ids: vec![o.v4_pool],
        ipv6_pool_ids: vec![o.v6_pool],
        trustpoint_ids: vec![o.machine_ca, o.user_ca],
        machine_trustpoint_ids: Vec::new(),
        user_trustpoint_ids: Vec::new(),
        aaa,
        group_aliases: vec![
            GroupAlias {
                name: "mca".to_owned(),
                enabled: true,
            },
            GroupAlias {
                name: "old".to_owned(),
                enabled: false,
            },
        ],
        group_urls: vec![GroupUrl {
            url: "https://vpn.example.com/mca".to_owned(),
            enabled: true,
        }],
    }
}

#[tokio::test]
async fn a_policy_keeps_its_access_settings_identity_certificate_and_devices() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let mut conn = pool.acquire().await.unwrap();

    let mut input = RaVpnPolicyInput::new("RAVPN");
    input.web_port = 8443;
    input.dtls_enabled = false;
    input.ssl_identity_certificate_id = Some(o.identity);
    input.target_device_ids = vec![o.device];
    let created = policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input)
        .await
        .unwrap();
    assert_eq!(created.web_port, 8443);
    assert!(!created.dtls_enabled);
    assert_eq!(created.access_interface, "outside");
    assert_eq!(
        created
            .ssl_identity_certificate
            .as_ref()
            .map(|r| r.name.as_str()),
        Some("VPN-ID")
    );
    assert_eq!(
        created
            .target_devices
            .iter()
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        vec![o.device]
    );
    assert_eq!(
        policies::for_device(&pool, GLOBAL_DOMAIN_ID, o.device)
            .await
            .unwrap(),
        Some(created.clone())
    );

    // A device runs one RA VPN policy only.
    let mut second = RaVpnPolicyInput::new("OTHER");
    second.target_device_ids = vec![o.device];
    let error = policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &second)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, DbError::Conflict { field, .. } if field == "ravpn_policy_devices_one_policy_per_device"),
        "{error}"
    );

    // A CA-only trustpoint is not an identity certificate.
    let mut wrong = RaVpnPolicyInput::new("RAVPN");
    wrong.ssl_identity_certificate_id = Some(o.machine_ca);
    let error = policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::WrongReference { .. }), "{error}");

    // The device is assigned: deleting it is refused; unassigned, it goes.
    let error = devices::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, o.device, None)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::InUse { .. }), "{error}");
    input.target_device_ids.clear();
    let updated = policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &input)
        .await
        .unwrap();
    assert!(updated.target_devices.is_empty());
    assert_eq!(updated.version, 2);
    let error = policies::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &input)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    devices::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, o.device, None)
        .await
        .unwrap();
    assert_eq!(
        policies::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn an_mca_connection_profile_round_trips_every_aaa_field() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let mut conn = pool.acquire().await.unwrap();
    let policy = policies::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();

    let input = mca_profile(&o);
    let created = profiles::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, policy.id, &input)
        .await
        .unwrap();
    assert_eq!(created.aaa, input.aaa);
    assert_eq!(created.group_policy.name, "MCA-GP");
    assert_eq!(
        created
            .ipv4_pools
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["VPN-POOL"]
    );
    assert_eq!(
        created
            .ipv6_pools
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["VPN-POOL6"]
    );
    assert_eq!(
        created
            .trustpoints
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["MACHINE-CA", "USER-CA"]
    );
    assert_eq!(created.group_aliases, input.group_aliases);
    assert_eq!(created.group_urls, input.group_urls);
    assert_eq!(
        profiles::get(&pool, GLOBAL_DOMAIN_ID, policy.id, created.id)
            .await
            .unwrap(),
        created
    );

    // Certificate & AAA with prefill/hide, entire DN, RADIUS, stripping, and the
    // trustpoints in the other order.
    let mut aaa = AaaSettings::new(AuthenticationMethod::AaaAndClientCertificate);
    aaa.authentication_server = AuthenticationServer::Radius {
        server_group: "ISE".to_owned(),
    };
    aaa.fallback_to_local = true;
    aaa.enable_multiple_certificate_authentication = true;
    aaa.username_from_certificate_source = UsernameSource::SecondCertificate;
    aaa.username_mapping = UsernameMapping::EntireDn;
    aaa.prefill_username = true;
    aaa.hide_username = true;
    aaa.strip_realm = true;
    aaa.strip_group = true;
    let changed = ConnectionProfileInput {
        aaa: aaa.clone(),
        trustpoint_ids: vec![o.user_ca, o.machine_ca],
        machine_trustpoint_ids: Vec::new(),
        user_trustpoint_ids: Vec::new(),
        group_policy_id: DEFAULT_GROUP_POLICY_ID,
        group_aliases: vec![],
        group_urls: vec![],
        ..input.clone()
    };
    let updated = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &changed,
    )
    .await
    .unwrap();
    assert_eq!(updated.aaa, aaa);
    assert_eq!(updated.group_policy.name, "DfltGrpPolicy");
    assert_eq!(
        updated
            .trustpoints
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["USER-CA", "MACHINE-CA"]
    );
    assert!(updated.group_aliases.is_empty());
    assert_eq!(updated.version, 2);

    // Secondary field none, LDAP, AAA only.
    let mut aaa = AaaSettings::new(AuthenticationMethod::AaaOnly);
    aaa.authentication_server = AuthenticationServer::Ldap {
        realm: "corp".to_owned(),
    };
    aaa.username_mapping = UsernameMapping::SpecificField {
        primary: CertificateField::Upn,
        secondary: Some(CertificateField::O),
    };
    let ldap = ConnectionProfileInput {
        aaa: aaa.clone(),
        ..changed.clone()
    };
    let updated = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        2,
        &ldap,
    )
    .await
    .unwrap();
    assert_eq!(updated.aaa, aaa);

    let listed = profiles::list(&pool, GLOBAL_DOMAIN_ID, policy.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(listed.total, 1);

    // Pools and trustpoints in use by the profile cannot be deleted.
    let error = cert_enrollments::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, o.user_ca, None)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::InUse { .. }), "{error}");
    let error = pools::delete_ipv6(&mut conn, &admin, GLOBAL_DOMAIN_ID, o.v6_pool, None)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::InUse { .. }), "{error}");

    profiles::delete(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        Some(3),
    )
    .await
    .unwrap();
    cert_enrollments::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, o.user_ca, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn profile_rules_stale_versions_and_duplicate_names_leave_the_profile_unchanged() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let mut conn = pool.acquire().await.unwrap();
    let policy = policies::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();
    let created = profiles::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        &mca_profile(&o),
    )
    .await
    .unwrap();
    let other = ConnectionProfileInput {
        name: "second".to_owned(),
        ..mca_profile(&o)
    };
    profiles::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, policy.id, &other)
        .await
        .unwrap();

    let renamed = ConnectionProfileInput {
        name: "second".to_owned(),
        ..mca_profile(&o)
    };
    let error = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &renamed,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Conflict { kind: ObjectKind::ConnectionProfile, value, .. } if value == "second"),
        "{error}"
    );

    let mut hidden_without_prefill = mca_profile(&o);
    hidden_without_prefill.aaa.hide_username = true;
    let error = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &hidden_without_prefill,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Invalid { constraint, .. } if constraint == "connection_profiles_hide_needs_prefill"),
        "{error}"
    );

    let mut identity_as_trustpoint = mca_profile(&o);
    identity_as_trustpoint.trustpoint_ids = vec![o.identity];
    let error = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &identity_as_trustpoint,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::WrongReference { .. }), "{error}");

    let mut changed = mca_profile(&o);
    changed.description = "changed".to_owned();
    profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &changed,
    )
    .await
    .unwrap();
    let mut stale = mca_profile(&o);
    stale.aaa.enable_multiple_certificate_authentication = false;
    let error = profiles::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        created.id,
        1,
        &stale,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            error,
            DbError::Stale {
                expected: 1,
                current: 2,
                ..
            }
        ),
        "{error}"
    );

    let stored = profiles::get(&pool, GLOBAL_DOMAIN_ID, policy.id, created.id)
        .await
        .unwrap();
    assert_eq!(stored.description, "changed");
    assert!(stored.aaa.enable_multiple_certificate_authentication);
    assert_eq!(stored.trustpoints.len(), 2);

    // Profiles go with their policy.
    policies::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, policy.id, None)
        .await
        .unwrap();
    let error = profiles::get(&pool, GLOBAL_DOMAIN_ID, policy.id, created.id)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::NotFound { .. }), "{error}");
}

/// The fields the broken rules of a refused change are about.
fn refused<F: mgmt_server::rules::Field, T: std::fmt::Debug>(
    result: Result<T, mgmt_server::rules::ChangeError<F>>,
) -> Vec<(F, String)> {
    match result {
        Err(mgmt_server::rules::ChangeError::Invalid(problems)) => {
            problems.into_iter().map(|p| (p.field, p.message)).collect()
        }
        other => panic!("not refused by a rule: {other:?}"),
    }
}

#[tokio::test]
async fn a_policy_needs_a_manager_name_an_interface_name_ports_and_no_ipsec() {
    use mgmt_server::ravpn::policies::{self as service, Field};
    let pool = support::fresh_database().await;
    let admin = support::admin();
    let mut input = RaVpnPolicyInput::new("two words");
    input.configure_ipsec = true;
    input.access_interface = "out/side".to_owned();
    input.web_port = 0;
    input.dtls_port = 0;
    let problems = refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, &input).await);
    let fields: Vec<Field> = problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            Field::Name,
            Field::ConfigureIpsec,
            Field::AccessInterface,
            Field::WebPort,
            Field::DtlsPort
        ],
        "{problems:?}"
    );
    // The interface is a token of the sensor's CLI: vpn-core's 64-character rule.
    let mut long = RaVpnPolicyInput::new("x".repeat(128));
    long.access_interface = "i".repeat(65);
    let problems = refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, &long).await);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, Field::AccessInterface);
    assert!(problems[0].1.contains("65 characters"), "{problems:?}");
    assert_eq!(
        service::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );

    // A 128-character name without spaces is a manager name; the policy is stored.
    let created = service::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("x".repeat(128)),
    )
    .await
    .unwrap();
    let mut renamed = RaVpnPolicyInput::new("x".repeat(129));
    renamed.web_port = 8443;
    let problems =
        refused(service::update(&pool, &admin, GLOBAL_DOMAIN_ID, created.id, 1, &renamed).await);
    assert_eq!(problems[0].0, Field::Name);
    service::delete(&pool, &admin, GLOBAL_DOMAIN_ID, created.id, Some(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn profile_and_alias_names_follow_vpn_cores_rule_and_group_urls_are_absolute() {
    use mgmt_server::ravpn::profiles::{self as service, Field};
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let policy = mgmt_server::ravpn::policies::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();
    let mut input = mca_profile(&o);
    input.name = "p".repeat(65);
    input.group_aliases = vec![
        GroupAlias {
            name: "two words".to_owned(),
            enabled: true,
        },
        GroupAlias {
            name: "Eng".to_owned(),
            enabled: true,
        },
        GroupAlias {
            name: "eng".to_owned(),
            enabled: false,
        },
    ];
    input.group_urls = vec![GroupUrl {
        url: "vpn.example.com/eng".to_owned(),
        enabled: true,
    }];
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &input).await);
    let fields: Vec<Field> = problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            Field::Name,
            Field::GroupAliases,
            Field::GroupAliases,
            Field::GroupUrls
        ],
        "{problems:?}"
    );
    assert!(problems[0].1.contains("at most 64"), "{problems:?}");
    assert!(problems[1].1.contains("\"two words\""), "{problems:?}");
    assert!(problems[2].1.contains("\"eng\""), "{problems:?}");
    assert!(problems[3].1.contains("https://"), "{problems:?}");
    assert_eq!(
        service::list(&pool, GLOBAL_DOMAIN_ID, policy.id, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn the_aaa_tab_rules_are_vpn_cores_and_a_certificate_method_needs_a_trustpoint() {
    use mgmt_server::ravpn::profiles::{self as service, Field};
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let policy = mgmt_server::ravpn::policies::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();

    // AAA only: no MCA, prefill, hide or first certificate; a RADIUS group has a name.
    let mut aaa_only = mca_profile(&o);
    aaa_only.aaa.authentication_method = AuthenticationMethod::AaaOnly;
    aaa_only.aaa.authentication_server = AuthenticationServer::Radius {
        server_group: " ".to_owned(),
    };
    aaa_only.aaa.prefill_username = true;
    aaa_only.aaa.hide_username = true;
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &aaa_only).await);
    let fields: Vec<Field> = problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            Field::AuthenticationServer,
            Field::MultipleCertificates,
            Field::PrefillUsername,
            Field::HideUsername,
            Field::UsernameSource
        ],
        "{problems:?}"
    );

    // A certificate method checks certificates against at least one CA trustpoint;
    // hide needs prefill.
    let mut no_trustpoint = mca_profile(&o);
    no_trustpoint.trustpoint_ids.clear();
    no_trustpoint.aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
    no_trustpoint.aaa.hide_username = true;
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &no_trustpoint).await);
    let fields: Vec<Field> = problems.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [Field::HideUsername, Field::Trustpoints],
        "{problems:?}"
    );
    assert!(problems[1].1.contains("no CA trustpoint"), "{problems:?}");

    // The seed's MCA profile keeps every rule and is stored.
    service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &mca_profile(&o))
        .await
        .unwrap();
}

#[tokio::test]
async fn mca_slots_name_only_the_profiles_trustpoints_and_unseparated_slots_are_a_warning() {
    use mgmt_server::ravpn::profiles::{self as service, Field};
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let policy = mgmt_server::ravpn::policies::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();

    // A slot may only name one of the profile's trustpoints.
    let mut foreign = mca_profile(&o);
    foreign.trustpoint_ids = vec![o.machine_ca];
    foreign.machine_trustpoint_ids = vec![o.machine_ca];
    foreign.user_trustpoint_ids = vec![o.user_ca];
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &foreign).await);
    assert_eq!(
        problems,
        [(
            Field::UserTrustpoints,
            "names a trustpoint the profile does not list under trustpoints".to_owned()
        )]
    );

    // Unbound (FMC's behaviour) is stored, with a warning while MCA is on.
    let unbound = service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &mca_profile(&o))
        .await
        .unwrap();
    assert!(unbound.machine_trustpoints.is_empty() && unbound.user_trustpoints.is_empty());
    let warnings = service::profile_warnings(&unbound);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].field, Field::MachineTrustpoints);
    assert!(
        warnings[0].message.contains("not separated"),
        "{warnings:?}"
    );

    // One CA in both slots: still a warning.
    let mut shared = mca_profile(&o);
    shared.machine_trustpoint_ids = vec![o.machine_ca, o.user_ca];
    shared.user_trustpoint_ids = vec![o.user_ca];
    let stored = service::update(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        unbound.id,
        unbound.version,
        &shared,
    )
    .await
    .unwrap();
    let warnings = service::profile_warnings(&stored);
    assert_eq!(
        warnings.iter().map(|w| w.field).collect::<Vec<_>>(),
        [Field::UserTrustpoints]
    );

    // Separated: stored in the profile's trustpoint order, no warning.
    let mut separated = mca_profile(&o);
    separated.machine_trustpoint_ids = vec![o.machine_ca];
    separated.user_trustpoint_ids = vec![o.user_ca];
    let stored = service::update(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        stored.id,
        stored.version,
        &separated,
    )
    .await
    .unwrap();
    let ids = |r: &[mgmt_server::db::Reference]| r.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&stored.machine_trustpoints), [o.machine_ca]);
    assert_eq!(ids(&stored.user_trustpoints), [o.user_ca]);
    assert_eq!(stored.machine_trustpoints[0].name, "MACHINE-CA");
    assert!(service::profile_warnings(&stored).is_empty());

    // Without MCA the slots are not a concern.
    let mut no_mca = mca_profile(&o);
    no_mca.aaa.enable_multiple_certificate_authentication = false;
    no_mca.aaa.username_from_certificate_source = UsernameSource::SecondCertificate;
    assert!(service::warnings(&no_mca.aaa, &[], &[]).is_empty());
}

#[tokio::test]
async fn a_profile_without_pools_is_refused_only_when_its_group_policy_has_none() {
    use mgmt_server::ravpn::profiles::{self as service, Field};
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let policy = mgmt_server::ravpn::policies::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();
    let mut input = mca_profile(&o);
    input.ipv4_pool_ids.clear();
    input.ipv6_pool_ids.clear();
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &input).await);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, Field::AddressPools);
    assert!(problems[0].1.contains("\"MCA-GP\""), "{problems:?}");

    // The group policy's pool serves the profile's clients.
    let mut with_pool = GroupPolicyInput::new("POOLED-GP");
    with_pool.ipv4_pool_ids = vec![o.v4_pool];
    let pooled =
        mgmt_server::objects::group_policies::create(&pool, &admin, GLOBAL_DOMAIN_ID, &with_pool)
            .await
            .unwrap();
    input.group_policy_id = pooled.id;
    let created = service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &input)
        .await
        .unwrap();
    assert!(created.ipv4_pools.is_empty());
}

#[tokio::test]
async fn aliases_and_profile_names_of_one_policy_are_one_list_ignoring_case() {
    use mgmt_server::ravpn::profiles::{self as service, Field};
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let policy = mgmt_server::ravpn::policies::create(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("RAVPN"),
    )
    .await
    .unwrap();
    let first = service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &mca_profile(&o))
        .await
        .unwrap();
    let mut second = mca_profile(&o);
    second.name = "second".to_owned();
    second.group_aliases = vec![
        GroupAlias {
            name: "MCA".to_owned(),
            enabled: true,
        },
        GroupAlias {
            name: "FTDVPN-AAA-CERT-MCA".to_owned(),
            enabled: true,
        },
    ];
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &second).await);
    assert_eq!(
        problems.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        [Field::GroupAliases, Field::GroupAliases],
        "{problems:?}"
    );
    assert!(problems[0].1.contains("already used"), "{problems:?}");
    assert!(problems[1].1.contains("name of another"), "{problems:?}");

    // Nor may a profile be named as another's alias.
    let mut named_as_alias = mca_profile(&o);
    named_as_alias.name = "Old".to_owned();
    named_as_alias.group_aliases.clear();
    let problems =
        refused(service::create(&pool, &admin, GLOBAL_DOMAIN_ID, policy.id, &named_as_alias).await);
    assert_eq!(
        problems.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        [Field::Name],
        "{problems:?}"
    );
    assert!(problems[0].1.contains("\"old\""), "{problems:?}");

    // A profile's own aliases are not a clash when it is saved again.
    service::update(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        first.id,
        1,
        &mca_profile(&o),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_wizard_reports_the_rules_of_the_policy_and_the_profile_and_stores_neither() {
    use mgmt_server::ravpn::policies::{self as service, Field, WizardField};
    use mgmt_server::ravpn::profiles::Field as ProfileField;
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let o = objects(&pool, &admin, &key).await;
    let mut policy = RaVpnPolicyInput::new("RAVPN");
    policy.web_port = 0;
    let mut profile = mca_profile(&o);
    profile.name = "two words".to_owned();
    let problems = refused(
        service::create_with_profile(&pool, &admin, GLOBAL_DOMAIN_ID, &policy, &profile).await,
    );
    assert_eq!(
        problems.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        [
            WizardField::Policy(Field::WebPort),
            WizardField::Profile(ProfileField::Name)
        ],
        "{problems:?}"
    );
    assert_eq!(
        service::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
    policy.web_port = 443;
    profile.name = "ftdvpn-aaa-cert-mca".to_owned();
    let created = service::create_with_profile(&pool, &admin, GLOBAL_DOMAIN_ID, &policy, &profile)
        .await
        .unwrap();
    assert_eq!(created.name, "RAVPN");
}
