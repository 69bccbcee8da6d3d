use mgmt_server::db::cert_enrollments::{
    self, CaOnlySettings, CertEnrollmentInput, EnrollmentContent, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::{DbError, EncryptionKey, GLOBAL_DOMAIN_ID, Page, SecretError};
use vpn_core::config::{PrivateKeyPem, Revocation, ValidationUsage};

use crate::support;

fn ca_only(name: &str, pem: &str) -> CertEnrollmentInput {
    CertEnrollmentInput {
        name: name.to_owned(),
        description: String::new(),
        enrollment_type: EnrollmentType::Manual,
        content: EnrollmentInput::CaOnly(CaOnlySettings::new(pem)),
    }
}

#[tokio::test]
async fn ca_only_trustpoints_keep_usage_and_revocation_settings() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let (machine_ca, _) = support::certificate("Machine CA");

    let created = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &ca_only("MACHINE-CA", &machine_ca),
        &key,
    )
    .await
    .unwrap();
    let EnrollmentContent::CaOnly(settings) = &created.content else {
        panic!("expected a CA-only enrollment");
    };
    assert_eq!(settings.ca_certificates_pem, machine_ca);
    assert!(settings.require_client_auth_eku);
    assert_eq!(settings.revocation, Revocation::None);

    let mut with_crl = CaOnlySettings::new(machine_ca.clone());
    with_crl.validation_usage = ValidationUsage {
        ssl_client: true,
        ssl_server: false,
        ipsec_client: true,
    };
    with_crl.skip_ca_flag_check = true;
    with_crl.revocation = Revocation::Crl {
        crls_pem: "-----BEGIN X509 CRL-----\n...\n-----END X509 CRL-----\n".to_owned(),
    };
    let input = CertEnrollmentInput {
        content: EnrollmentInput::CaOnly(with_crl.clone()),
        ..ca_only("MACHINE-CA", "")
    };
    let updated = cert_enrollments::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &input,
        &key,
    )
    .await
    .unwrap();
    assert_eq!(updated.content, EnrollmentContent::CaOnly(with_crl));
    assert_eq!(updated.version, 2);

    let error = cert_enrollments::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &ca_only("X", &machine_ca),
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    let error = cert_enrollments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &ca_only("MACHINE-CA", &machine_ca),
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Conflict { .. }), "{error}");

    // A CA-only trustpoint has no private key to give.
    let error = cert_enrollments::identity_private_key(&pool, GLOBAL_DOMAIN_ID, created.id, &key)
        .await
        .unwrap_err();
    assert!(matches!(error, DbError::WrongReference { .. }), "{error}");

    cert_enrollments::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(2))
        .await
        .unwrap();
    assert_eq!(
        cert_enrollments::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn the_identity_private_key_is_stored_encrypted_and_decrypts_back() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let (chain, private_key) = support::certificate("vpn");

    let input = CertEnrollmentInput {
        name: "VPN-IDENTITY".to_owned(),
        description: "headend".to_owned(),
        enrollment_type: EnrollmentType::Pkcs12,
        content: EnrollmentInput::Identity {
            certificate_chain_pem: chain.clone(),
            private_key_pem: Some(PrivateKeyPem(private_key.clone())),
        },
    };
    let created = cert_enrollments::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input, &key)
        .await
        .unwrap();
    assert_eq!(
        created.content,
        EnrollmentContent::Identity {
            certificate_chain_pem: chain.clone()
        }
    );

    let raw: Vec<u8> =
        sqlx::query_scalar("SELECT private_key_encrypted FROM cert_enrollments WHERE id = $1")
            .bind(created.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_ne!(raw, private_key.as_bytes());
    assert!(!String::from_utf8_lossy(&raw).contains("PRIVATE KEY"));

    let decrypted =
        cert_enrollments::identity_private_key(&pool, GLOBAL_DOMAIN_ID, created.id, &key)
            .await
            .unwrap();
    assert_eq!(decrypted.expose(), private_key);

    let wrong_key = EncryptionKey::generate().unwrap();
    let error =
        cert_enrollments::identity_private_key(&pool, GLOBAL_DOMAIN_ID, created.id, &wrong_key)
            .await
            .unwrap_err();
    assert!(
        matches!(error, DbError::Secret(SecretError::Open { .. })),
        "{error}"
    );

    // Neither the JSON of the enrollment nor the audit log carries the key.
    let json = serde_json::to_string(&created).unwrap();
    assert!(!json.contains("PRIVATE KEY"), "{json}");
    let audit_text: String =
        sqlx::query_scalar("SELECT string_agg(after::text, '') FROM audit_log")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!audit_text.contains("PRIVATE KEY"));

    // A renewed chain for the same key keeps the stored key.
    let (renewed, _) = support::certificate("vpn-renewed");
    let renewal = CertEnrollmentInput {
        content: EnrollmentInput::Identity {
            certificate_chain_pem: renewed.clone(),
            private_key_pem: None,
        },
        ..input.clone()
    };
    let updated = cert_enrollments::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &renewal,
        &key,
    )
    .await
    .unwrap();
    assert_eq!(
        updated.content,
        EnrollmentContent::Identity {
            certificate_chain_pem: renewed
        }
    );
    let still = cert_enrollments::identity_private_key(&pool, GLOBAL_DOMAIN_ID, created.id, &key)
        .await
        .unwrap();
    assert_eq!(still.expose(), private_key);
}

#[tokio::test]
async fn an_encrypted_key_moved_to_another_row_does_not_decrypt() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let mut ids = Vec::new();
    for name in ["ONE", "TWO"] {
        let (chain, private_key) = support::certificate(name);
        let input = CertEnrollmentInput {
            name: name.to_owned(),
            description: String::new(),
            enrollment_type: EnrollmentType::Manual,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: chain,
                private_key_pem: Some(PrivateKeyPem(private_key)),
            },
        };
        ids.push(
            cert_enrollments::create(&mut conn, &admin, GLOBAL_DOMAIN_ID, &input, &key)
                .await
                .unwrap()
                .id,
        );
    }
    sqlx::query(
        "UPDATE cert_enrollments SET private_key_encrypted = (SELECT private_key_encrypted FROM cert_enrollments WHERE id = $1) WHERE id = $2",
    )
    .bind(ids[0])
    .bind(ids[1])
    .execute(&pool)
    .await
    .unwrap();
    let error = cert_enrollments::identity_private_key(&pool, GLOBAL_DOMAIN_ID, ids[1], &key)
        .await
        .unwrap_err();
    assert!(
        matches!(error, DbError::Secret(SecretError::Open { .. })),
        "{error}"
    );
}

#[tokio::test]
async fn an_identity_certificate_without_a_key_is_refused() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let (chain, _) = support::certificate("nokey");
    let input = CertEnrollmentInput {
        name: "NOKEY".to_owned(),
        description: String::new(),
        enrollment_type: EnrollmentType::Manual,
        content: EnrollmentInput::Identity {
            certificate_chain_pem: chain,
            private_key_pem: None,
        },
    };
    let error =
        cert_enrollments::create(&mut conn, &support::admin(), GLOBAL_DOMAIN_ID, &input, &key)
            .await
            .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error}");
    assert_eq!(
        cert_enrollments::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}
