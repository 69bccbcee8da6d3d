//! Many sensors on one RA VPN policy: per-device identity certificates, per-device
//! pool overrides, and the refusal of deploys whose devices would hand out the same
//! addresses.

use std::net::Ipv4Addr;

use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::deployments::{self, DeploymentKind, JobRequest};
use mgmt_server::db::device_certificates::{self, CertificateSource};
use mgmt_server::db::devices::{self, Device, DeviceInput};
use mgmt_server::db::policies::{self, RaVpnPolicyInput};
use mgmt_server::db::pool_overrides::{self, Ipv4PoolOverrideInput};
use mgmt_server::db::pools::{self, Ipv4AddressPool, Ipv4AddressPoolInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{DbError, EncryptionKey, GLOBAL_DOMAIN_ID, Page};
use mgmt_server::deploy::{CompileError, compile, overlap};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{AaaSettings, AuthenticationMethod, DeviceConfig, PrivateKeyPem};

use crate::support;

const DEFAULT_GROUP_POLICY: Uuid = Uuid::from_u128(1);

async fn device(pool: &PgPool, name: &str, host: &str) -> Device {
    let mut conn = pool.acquire().await.unwrap();
    devices::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: name.to_owned(),
            description: String::new(),
            host_name: host.to_owned(),
            nat_id: None,
        },
    )
    .await
    .unwrap()
}

fn pool_input(name: &str, third: u8, overridable: bool) -> Ipv4AddressPoolInput {
    Ipv4AddressPoolInput {
        name: name.to_owned(),
        description: String::new(),
        start: Ipv4Addr::new(10, 70, third, 10),
        end: Ipv4Addr::new(10, 70, third, 99),
        mask: "255.255.255.0".parse().unwrap(),
        overridable,
    }
}

fn override_for(device: &Device, third: u8) -> Ipv4PoolOverrideInput {
    Ipv4PoolOverrideInput {
        device_id: device.id,
        start: Ipv4Addr::new(10, 70, third, 10),
        end: Ipv4Addr::new(10, 70, third, 99),
        mask: "255.255.255.0".parse().unwrap(),
    }
}

/// One policy with one client-certificate profile using `address_pool`, the identity
/// enrollment `identity`, targeting `targets`.
async fn policy(
    pool: &PgPool,
    key: &EncryptionKey,
    identity: Uuid,
    address_pool: Uuid,
    targets: &[Uuid],
) {
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let (ca, _) = support::certificate("Client CA");
    let trustpoint = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "CLIENT-CA".to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::CaOnly(CaOnlySettings::new(ca)),
        },
        key,
    )
    .await
    .unwrap();
    let mut input = RaVpnPolicyInput::new("RAVPN");
    input.ssl_identity_certificate_id = Some(identity);
    input.target_device_ids = targets.to_vec();
    let policy = policies::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input)
        .await
        .unwrap();
    profiles::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        policy.id,
        &ConnectionProfileInput {
            name: "certs".to_owned(),
            description: String::new(),
            group_policy_id: DEFAULT_GROUP_POLICY,
            ipv4_pool_ids: vec![address_pool],
            ipv6_pool_ids: vec![],
            trustpoint_ids: vec![trustpoint.id],
            machine_trustpoint_ids: Vec::new(),
            user_trustpoint_ids: Vec::new(),
            aaa: AaaSettings::new(AuthenticationMethod::ClientCertificateOnly),
            group_aliases: vec![],
            group_urls: vec![],
        },
    )
    .await
    .unwrap();
}

async fn identity(
    pool: &PgPool,
    key: &EncryptionKey,
    enrollment_type: EnrollmentType,
) -> (Uuid, String) {
    let mut conn = pool.acquire().await.unwrap();
    let (chain, private_key) = support::certificate("vpn");
    let enrollment = cert_enrollments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "VPN-ID".to_owned(),
            description: String::new(),
            enrollment_type,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain.clone(),
                private_key_pem: Some(PrivateKeyPem(private_key)),
            },
        },
        key,
    )
    .await
    .unwrap();
    (enrollment.id, chain)
}

async fn compiled(pool: &PgPool, key: &EncryptionKey, device: &Device) -> DeviceConfig {
    try_compile(pool, key, device).await.unwrap()
}

async fn try_compile(
    pool: &PgPool,
    key: &EncryptionKey,
    device: &Device,
) -> Result<DeviceConfig, CompileError> {
    compile(
        pool,
        key,
        GLOBAL_DOMAIN_ID,
        device.id,
        &device.name,
        1,
        OffsetDateTime::now_utc(),
    )
    .await
}

async fn queue(pool: &PgPool, key: &EncryptionKey, config: DeviceConfig) {
    let mut conn = pool.acquire().await.unwrap();
    deployments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "",
        &[JobRequest {
            config,
            rollback_of_job_id: None,
        }],
        key,
    )
    .await
    .unwrap();
}

async fn address_pool(pool: &PgPool, input: &Ipv4AddressPoolInput) -> Ipv4AddressPool {
    let mut conn = pool.acquire().await.unwrap();
    pools::create_ipv4(&mut conn, &support::admin(), GLOBAL_DOMAIN_ID, input)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_device_of_a_policy_gets_its_own_certificate_from_an_internal_ca_enrollment() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let a = device(&pool, "ftd-a", "192.0.2.1:8305").await;
    let b = device(&pool, "ftd-b", "192.0.2.2:8305").await;
    let (enrollment, template) = identity(&pool, &key, EnrollmentType::SelfSignedCertificate).await;
    let addresses = address_pool(&pool, &pool_input("VPN-POOL", 1, true)).await;
    policy(&pool, &key, enrollment, addresses.id, &[a.id, b.id]).await;
    let mut conn = pool.acquire().await.unwrap();
    pool_overrides::create_ipv4(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        addresses.id,
        &override_for(&b, 2),
    )
    .await
    .unwrap();

    let config_a = compiled(&pool, &key, &a).await;
    let config_b = compiled(&pool, &key, &b).await;
    let chain_a = &config_a.headend.identity.certificate_chain_pem;
    let chain_b = &config_b.headend.identity.certificate_chain_pem;
    assert_ne!(chain_a, chain_b, "two devices present the same certificate");
    assert_ne!(chain_a, &template);
    assert_ne!(
        config_a.headend.identity.private_key_pem.expose(),
        config_b.headend.identity.private_key_pem.expose()
    );
    assert_eq!(config_a.headend.identity.trustpoint, "VPN-ID");
    let leaf_b = vpn_core::pki::pem::certificates(chain_b).unwrap();
    let info = vpn_core::pki::CertificateInfo::from_der(leaf_b[0].as_ref()).unwrap();
    assert!(info.subject.contains("vpn"), "{}", info.subject);

    // Stored per device, issued once: compiling again presents the same certificate.
    let again = compiled(&pool, &key, &a).await;
    assert_eq!(&again.headend.identity.certificate_chain_pem, chain_a);
    let stored = device_certificates::list_for_device(&pool, GLOBAL_DOMAIN_ID, a.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(stored.total, 1);
    assert_eq!(stored.items[0].source, CertificateSource::Issued);
    assert!(
        !serde_json::to_string(&stored.items[0])
            .unwrap()
            .contains("PRIVATE KEY")
    );

    // A changed enrollment issues each device a new certificate.
    let current = cert_enrollments::get(&pool, GLOBAL_DOMAIN_ID, enrollment)
        .await
        .unwrap();
    cert_enrollments::update(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        enrollment,
        current.version,
        &CertEnrollmentInput {
            name: "VPN-ID".to_owned(),
            description: "renewed".to_owned(),
            enrollment_type: EnrollmentType::SelfSignedCertificate,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: template.clone(),
                private_key_pem: None,
            },
        },
        &key,
    )
    .await
    .unwrap();
    let renewed = compiled(&pool, &key, &a).await;
    assert_ne!(&renewed.headend.identity.certificate_chain_pem, chain_a);
}

#[tokio::test]
async fn an_installed_certificate_is_presented_by_its_device_and_the_others_keep_the_enrollments() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let a = device(&pool, "ftd-a", "192.0.2.1").await;
    let b = device(&pool, "ftd-b", "192.0.2.2").await;
    let (enrollment, template) = identity(&pool, &key, EnrollmentType::Manual).await;
    let addresses = address_pool(&pool, &pool_input("VPN-POOL", 1, true)).await;
    policy(&pool, &key, enrollment, addresses.id, &[a.id, b.id]).await;
    let mut conn = pool.acquire().await.unwrap();
    pool_overrides::create_ipv4(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        addresses.id,
        &override_for(&b, 2),
    )
    .await
    .unwrap();

    let (own_chain, own_key) = support::certificate("vpn-b");
    let installed = device_certificates::install(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        b.id,
        enrollment,
        &own_chain,
        &PrivateKeyPem(own_key.clone()),
        &key,
    )
    .await
    .unwrap();
    assert_eq!(installed.source, CertificateSource::Installed);
    let twice = device_certificates::install(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        b.id,
        enrollment,
        &own_chain,
        &PrivateKeyPem(own_key.clone()),
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(twice, DbError::Conflict { .. }), "{twice:?}");

    let config_a = compiled(&pool, &key, &a).await;
    let config_b = compiled(&pool, &key, &b).await;
    assert_eq!(config_a.headend.identity.certificate_chain_pem, template);
    assert_eq!(config_b.headend.identity.certificate_chain_pem, own_chain);
    assert_eq!(config_b.headend.identity.private_key_pem.expose(), own_key);

    // Removed, the device falls back to the enrollment's certificate.
    device_certificates::delete(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        installed.id,
        Some(installed.version),
    )
    .await
    .unwrap();
    let config_b = compiled(&pool, &key, &b).await;
    assert_eq!(config_b.headend.identity.certificate_chain_pem, template);
}

#[tokio::test]
async fn an_internal_ca_enrollment_is_issued_per_device_not_installed() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let a = device(&pool, "ftd-a", "192.0.2.1").await;
    let (enrollment, _) = identity(&pool, &key, EnrollmentType::SelfSignedCertificate).await;
    let (chain, private_key) = support::certificate("vpn-a");
    let mut conn = pool.acquire().await.unwrap();
    let error = device_certificates::install(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        a.id,
        enrollment,
        &chain,
        &PrivateKeyPem(private_key),
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error:?}");
}

#[tokio::test]
async fn a_pool_is_overridden_per_device_only_when_it_is_overridable() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let a = device(&pool, "ftd-a", "192.0.2.1").await;
    let b = device(&pool, "ftd-b", "192.0.2.2").await;
    let fixed = address_pool(&pool, &pool_input("FIXED", 1, false)).await;
    let mut conn = pool.acquire().await.unwrap();
    let refused = pool_overrides::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        fixed.id,
        &override_for(&b, 2),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, DbError::Invalid { message, .. } if message.contains("not overridable")),
        "{refused:?}"
    );

    let (enrollment, _) = identity(&pool, &key, EnrollmentType::Manual).await;
    let shared = address_pool(&pool, &pool_input("VPN-POOL", 3, true)).await;
    policy(&pool, &key, enrollment, shared.id, &[a.id, b.id]).await;
    let created = pool_overrides::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        &override_for(&b, 4),
    )
    .await
    .unwrap();
    assert_eq!(created.device.name, "ftd-b");
    assert_eq!(created.pool.name, "VPN-POOL");
    let duplicate = pool_overrides::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        &override_for(&b, 5),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(duplicate, DbError::Conflict { .. }),
        "{duplicate:?}"
    );
    let listed = pool_overrides::list_ipv4(&pool, GLOBAL_DOMAIN_ID, shared.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(listed.total, 1);

    // The device with the override runs it under the pool's name; the other runs the pool.
    let config_a = compiled(&pool, &key, &a).await;
    let config_b = compiled(&pool, &key, &b).await;
    assert_eq!(config_a.ipv4_pools[0].name, "VPN-POOL");
    assert_eq!(config_a.ipv4_pools[0].start, Ipv4Addr::new(10, 70, 3, 10));
    assert_eq!(config_b.ipv4_pools[0].name, "VPN-POOL");
    assert_eq!(config_b.ipv4_pools[0].start, Ipv4Addr::new(10, 70, 4, 10));
    assert_eq!(config_b.ipv4_pools[0].end, Ipv4Addr::new(10, 70, 4, 99));

    // A pool with overrides cannot stop being overridable.
    let error = pools::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        shared.version,
        &pool_input("VPN-POOL", 3, false),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error:?}");

    pool_overrides::delete_ipv4(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(1))
        .await
        .unwrap();
    let config_b = compiled(&pool, &key, &b).await;
    assert_eq!(config_b.ipv4_pools[0].start, Ipv4Addr::new(10, 70, 3, 10));
}

#[tokio::test]
async fn a_deploy_whose_devices_would_hand_out_the_same_addresses_is_refused() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let a = device(&pool, "ftd-a", "192.0.2.1").await;
    let b = device(&pool, "ftd-b", "192.0.2.2").await;
    let (enrollment, _) = identity(&pool, &key, EnrollmentType::Manual).await;
    let shared = address_pool(&pool, &pool_input("VPN-POOL", 1, true)).await;
    policy(&pool, &key, enrollment, shared.id, &[a.id, b.id]).await;

    // Both devices in one deploy.
    let error = overlap::check(&pool, &key, GLOBAL_DOMAIN_ID, &[a.id, b.id])
        .await
        .unwrap_err();
    let message = error.to_string();
    for part in ["ftd-a", "ftd-b", "VPN-POOL", "10.70.1.10-10.70.1.99"] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    // The deploy request refuses it before anything is queued.
    let refused = mgmt_server::deploy::Deployments::new(pool.clone(), key.clone())
        .deploy(&admin, GLOBAL_DOMAIN_ID, &[a.id, b.id], "both")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, mgmt_server::deploy::DeployError::Compile(_)),
        "{refused}"
    );
    assert_eq!(refused.to_string(), message);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM deployment_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);

    // A deployed (queued) alone, then B on its own.
    overlap::check(&pool, &key, GLOBAL_DOMAIN_ID, &[a.id])
        .await
        .unwrap();
    let config_a = compiled(&pool, &key, &a).await;
    queue(&pool, &key, config_a).await;
    let error = try_compile(&pool, &key, &b).await.unwrap_err();
    let CompileError::Overlap(found) = &error else {
        panic!("expected an overlap, got {error}");
    };
    assert_eq!(found.first.device, "ftd-b");
    assert_eq!(found.second.device, "ftd-a");
    assert!(error.to_string().contains("queued version 1"), "{error}");

    // Overridden for B, both deploy.
    let mut conn = pool.acquire().await.unwrap();
    pool_overrides::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        &override_for(&b, 2),
    )
    .await
    .unwrap();
    compiled(&pool, &key, &b).await;
    overlap::check(&pool, &key, GLOBAL_DOMAIN_ID, &[a.id, b.id])
        .await
        .unwrap();
    // An override that overlaps the other device's range is refused just the same.
    let o = pool_overrides::list_ipv4(&pool, GLOBAL_DOMAIN_ID, shared.id, Page::ALL)
        .await
        .unwrap()
        .items
        .remove(0);
    let mut partly = override_for(&b, 1);
    partly.start = Ipv4Addr::new(10, 70, 1, 90);
    pool_overrides::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        o.id,
        o.version,
        &partly,
    )
    .await
    .unwrap();
    let error = try_compile(&pool, &key, &b).await.unwrap_err();
    assert!(
        error.to_string().contains("10.70.1.90-10.70.1.99"),
        "{error}"
    );
}

#[tokio::test]
async fn an_override_with_a_reversed_range_or_a_broken_mask_is_refused_and_nothing_is_stored() {
    use mgmt_server::objects::pools::{self as pool_service, Field};
    use mgmt_server::rules::ChangeError;
    let pool = support::fresh_database().await;
    let admin = support::admin();
    let b = device(&pool, "ftd-b", "192.0.2.2").await;
    let shared = address_pool(&pool, &pool_input("VPN-POOL", 1, true)).await;
    let refused_on = |error: ChangeError<Field>| match error {
        ChangeError::Invalid(problems) => problems.iter().map(|p| p.field).collect::<Vec<_>>(),
        ChangeError::Db(e) => panic!("refused by the database, not a rule: {e}"),
    };

    let mut reversed = override_for(&b, 2);
    (reversed.start, reversed.end) = (reversed.end, reversed.start);
    let error =
        pool_service::create_ipv4_override(&pool, &admin, GLOBAL_DOMAIN_ID, shared.id, &reversed)
            .await
            .unwrap_err();
    assert_eq!(refused_on(error), [Field::Ipv4Range]);

    let mut holes = override_for(&b, 2);
    holes.mask = "255.0.255.0".parse().unwrap();
    let error =
        pool_service::create_ipv4_override(&pool, &admin, GLOBAL_DOMAIN_ID, shared.id, &holes)
            .await
            .unwrap_err();
    assert!(error.to_string().contains("255.0.255.0"), "{error}");
    assert_eq!(refused_on(error), [Field::Mask]);

    let listed = pool_overrides::list_ipv4(&pool, GLOBAL_DOMAIN_ID, shared.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(listed.total, 0);

    // An update is held to the same mask rule; the table still refuses a reversed range
    // written past the service.
    let created = pool_service::create_ipv4_override(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        &override_for(&b, 2),
    )
    .await
    .unwrap();
    let error = pool_service::update_ipv4_override(
        &pool,
        &admin,
        GLOBAL_DOMAIN_ID,
        shared.id,
        created.id,
        created.version,
        &holes,
    )
    .await
    .unwrap_err();
    assert_eq!(refused_on(error), [Field::Mask]);
    let mut conn = pool.acquire().await.unwrap();
    let error = pool_overrides::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        created.version,
        &reversed,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Invalid { constraint, .. } if constraint.ends_with("range_ordered")),
        "{error:?}"
    );
    let stored = pool_overrides::get_ipv4(&pool, GLOBAL_DOMAIN_ID, created.id)
        .await
        .unwrap();
    assert_eq!(stored.mask, Ipv4Addr::new(255, 255, 255, 0));
}
