use mgmt_server::db::devices::{self, DeviceInput, Registration, RegistrationState};
use mgmt_server::db::internal_ca::{self, DEVICE_CHANNEL_CA};
use mgmt_server::db::{Actor, DbError, EncryptionKey, GLOBAL_DOMAIN_ID, ObjectKind, Page};
use vpn_core::config::PrivateKeyPem;

use crate::support;

fn device(name: &str, nat_id: &str) -> DeviceInput {
    DeviceInput {
        name: name.to_owned(),
        description: String::new(),
        host_name: "192.0.2.10".to_owned(),
        nat_id: Some(nat_id.to_owned()),
    }
}

#[tokio::test]
async fn devices_are_added_pending_then_registered_with_an_encrypted_channel_key() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let created = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &device("ftd-1", "NAT-1"),
    )
    .await
    .unwrap();
    assert_eq!(created.registration_state, RegistrationState::Pending);
    let error = devices::manager_channel_key(&pool, GLOBAL_DOMAIN_ID, created.id, &key)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::WrongState { .. }), "{error}");

    let failed = devices::mark_registration_failed(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        created.id,
        "connection refused",
    )
    .await
    .unwrap();
    assert_eq!(failed.registration_state, RegistrationState::Failed);
    assert_eq!(
        failed.registration_error.as_deref(),
        Some("connection refused")
    );

    let (sensor_cert, _) = support::certificate("sensor");
    let (manager_cert, manager_key) = support::certificate("manager");
    let registered = devices::mark_registered(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        created.id,
        &Registration {
            sensor_certificate_pem: sensor_cert.clone(),
            manager_certificate_pem: manager_cert,
            manager_private_key_pem: PrivateKeyPem(manager_key.clone()),
            software_version: Some("0.1.0".to_owned()),
        },
        &key,
    )
    .await
    .unwrap();
    assert_eq!(registered.registration_state, RegistrationState::Registered);
    assert_eq!(registered.registration_error, None);
    assert_eq!(
        registered.sensor_certificate_pem.as_deref(),
        Some(sensor_cert.as_str())
    );
    assert!(registered.registered_at.is_some());
    assert_eq!(registered.version, 3);

    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT manager_key_encrypted FROM devices WHERE id = $1")
            .bind(created.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("PRIVATE KEY"));
    let decrypted = devices::manager_channel_key(&pool, GLOBAL_DOMAIN_ID, created.id, &key)
        .await
        .unwrap();
    assert_eq!(decrypted.expose(), manager_key);
    assert!(
        !serde_json::to_string(&registered)
            .unwrap()
            .contains("PRIVATE KEY")
    );
}

#[tokio::test]
async fn device_names_and_nat_ids_are_unique_and_bad_nat_ids_are_refused() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let first = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &device("ftd-1", "NAT-1"),
    )
    .await
    .unwrap();

    let error = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &device("ftd-1", "NAT-2"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Conflict { kind: ObjectKind::Device, field, .. } if field == "name"),
        "{error}"
    );
    let error = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &device("ftd-2", "NAT-1"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, DbError::Conflict { field, value, .. } if field == "devices_nat_id_unique" && value.contains("NAT-1")),
        "{error}"
    );
    let error = devices::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &device("ftd-3", "bad nat id!"),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error}");

    let mut renamed = device("edge-1", "NAT-1");
    renamed.host_name = "vpn.example.com:8305".to_owned();
    let updated = devices::update(&mut conn, &admin, GLOBAL_DOMAIN_ID, first.id, 1, &renamed)
        .await
        .unwrap();
    assert_eq!(updated.host_name, "vpn.example.com:8305");
    let error = devices::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        first.id,
        1,
        &device("x", "NAT-9"),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    assert_eq!(
        devices::get(&pool, GLOBAL_DOMAIN_ID, first.id)
            .await
            .unwrap()
            .name,
        "edge-1"
    );
    assert_eq!(
        devices::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn the_internal_ca_is_stored_once_with_an_encrypted_key() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    assert!(
        internal_ca::get(&pool, DEVICE_CHANNEL_CA)
            .await
            .unwrap()
            .is_none()
    );
    let (cert, ca_key) = support::certificate("Manager CA");
    let created = internal_ca::create(
        &mut conn,
        &Actor::system(),
        DEVICE_CHANNEL_CA,
        &cert,
        &PrivateKeyPem(ca_key.clone()),
        &key,
    )
    .await
    .unwrap();
    assert_eq!(created.certificate_pem, cert);
    assert_eq!(
        internal_ca::get(&pool, DEVICE_CHANNEL_CA).await.unwrap(),
        Some(created)
    );
    let decrypted = internal_ca::private_key(&pool, DEVICE_CHANNEL_CA, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(decrypted.expose(), ca_key);

    let error = internal_ca::create(
        &mut conn,
        &Actor::system(),
        DEVICE_CHANNEL_CA,
        &cert,
        &PrivateKeyPem(ca_key),
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Conflict { .. }), "{error}");
}

async fn sensors(pool: &sqlx::PgPool) -> mgmt_server::devices::Sensors {
    mgmt_server::services::Services::start(
        pool.clone(),
        EncryptionKey::generate().unwrap(),
        "fmc-test",
    )
    .await
    .unwrap()
    .sensors
}

fn fields_of<F: mgmt_server::rules::Field>(error: mgmt_server::rules::ChangeError<F>) -> Vec<F> {
    match error {
        mgmt_server::rules::ChangeError::Invalid(problems) => {
            problems.iter().map(|p| p.field).collect()
        }
        other => panic!("not a broken rule: {other}"),
    }
}

#[tokio::test]
async fn a_device_with_a_bad_name_host_or_registration_key_is_refused_and_nothing_is_stored() {
    use mgmt_server::devices::records::Field;
    let pool = support::fresh_database().await;
    let sensors = sensors(&pool).await;
    let input = DeviceInput {
        name: "ftd one".to_owned(),
        description: String::new(),
        host_name: "ftd one:8305".to_owned(),
        nat_id: Some("  ".to_owned()),
    };
    let error = sensors
        .add_device(&support::admin(), GLOBAL_DOMAIN_ID, &input, " ")
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(error),
        [Field::Name, Field::HostName, Field::RegistrationKey]
    );
    let good = DeviceInput {
        name: "ftd-1".to_owned(),
        host_name: "127.0.0.1:1".to_owned(),
        ..input
    };
    let error = sensors
        .add_device(&support::admin(), GLOBAL_DOMAIN_ID, &good, "")
        .await
        .unwrap_err();
    assert_eq!(fields_of(error), [Field::RegistrationKey]);
    let listed = sensors.devices(GLOBAL_DOMAIN_ID, Page::ALL).await.unwrap();
    assert_eq!(listed.total, 0);
}

#[tokio::test]
async fn an_added_device_is_registered_in_the_background_and_fails_with_the_reason_when_nobody_answers()
 {
    let pool = support::fresh_database().await;
    let sensors = sensors(&pool).await;
    let input = DeviceInput {
        name: " ftd-1 ".to_owned(),
        description: String::new(),
        host_name: " 127.0.0.1:1 ".to_owned(),
        nat_id: Some(" ".to_owned()),
    };
    let added = sensors
        .add_device(&support::admin(), GLOBAL_DOMAIN_ID, &input, "cisco123")
        .await
        .unwrap();
    assert_eq!(
        (
            added.name.as_str(),
            added.host_name.as_str(),
            added.nat_id.as_deref()
        ),
        ("ftd-1", "127.0.0.1:1", None),
        "stored without blanks"
    );
    let mut device = added.clone();
    for _ in 0..100 {
        device = sensors.device(GLOBAL_DOMAIN_ID, added.id).await.unwrap();
        if device.registration_state != RegistrationState::Pending {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(device.registration_state, RegistrationState::Failed);
    assert!(device.registration_error.is_some());

    // An update follows the same rules; a delete removes the device.
    let renamed = DeviceInput {
        name: "ftd renamed".to_owned(),
        ..input.clone()
    };
    let error = sensors
        .update_device(
            &support::admin(),
            GLOBAL_DOMAIN_ID,
            added.id,
            device.version,
            &renamed,
        )
        .await
        .unwrap_err();
    assert_eq!(
        fields_of(error),
        [mgmt_server::devices::records::Field::Name]
    );
    sensors
        .delete_device(&support::admin(), GLOBAL_DOMAIN_ID, added.id, None)
        .await
        .unwrap();
    assert_eq!(
        sensors
            .devices(GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn a_device_certificate_is_installed_only_with_the_key_of_its_leaf_and_stays_with_its_device()
{
    use mgmt_server::db::cert_enrollments::{
        self, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
    };
    use mgmt_server::devices::Installation;
    use mgmt_server::devices::certificates::Field;
    let pool = support::fresh_database().await;
    let sensors = sensors(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let a = devices::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &device("ftd-a", "A"))
        .await
        .unwrap();
    let b = devices::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &device("ftd-b", "B"))
        .await
        .unwrap();
    let (chain, key) = support::certificate("vpn");
    let enrollment = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &CertEnrollmentInput {
            name: "VPN-MANUAL".to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain,
                private_key_pem: Some(PrivateKeyPem(key)),
            },
        },
        &EncryptionKey::generate().unwrap(),
    )
    .await
    .unwrap();
    let (own_chain, own_key) = support::certificate("ftd-a");
    let (_, other_key) = support::certificate("other");
    let mismatched = Installation {
        enrollment_id: enrollment.id,
        certificate_chain_pem: own_chain.clone(),
        private_key_pem: PrivateKeyPem(other_key),
    };
    let error = sensors
        .install_certificate(&admin, GLOBAL_DOMAIN_ID, a.id, &mismatched)
        .await
        .unwrap_err();
    assert_eq!(fields_of(error), [Field::Identity]);
    let installation = Installation {
        private_key_pem: PrivateKeyPem(own_key),
        ..mismatched
    };
    let installed = sensors
        .install_certificate(&admin, GLOBAL_DOMAIN_ID, a.id, &installation)
        .await
        .unwrap();
    assert_eq!(installed.device.id, a.id);
    let elsewhere = sensors
        .device_certificate(GLOBAL_DOMAIN_ID, b.id, installed.id)
        .await
        .unwrap_err();
    assert!(matches!(elsewhere, DbError::NotFound { .. }), "{elsewhere}");
    let removed_elsewhere = sensors
        .remove_certificate(&admin, GLOBAL_DOMAIN_ID, Some(b.id), installed.id, None)
        .await
        .unwrap_err();
    assert!(matches!(removed_elsewhere, DbError::NotFound { .. }));
    let overview = sensors
        .certificate_overview(GLOBAL_DOMAIN_ID)
        .await
        .unwrap();
    assert_eq!(overview.len(), 2);
    assert_eq!(
        overview[0].1.len(),
        1,
        "ftd-a has its installed certificate"
    );
    sensors
        .remove_certificate(&admin, GLOBAL_DOMAIN_ID, Some(a.id), installed.id, None)
        .await
        .unwrap();
    assert_eq!(
        sensors
            .device_certificates(GLOBAL_DOMAIN_ID, a.id, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}
