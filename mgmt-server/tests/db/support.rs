use mgmt_server::db::Actor;
use uuid::Uuid;

/// The throw-away cluster and databases shared with the cross-process tests.
pub(crate) use e2e::postgres::{cluster, fresh_database, scratch_base};

pub(crate) fn admin() -> Actor {
    Actor::administrator("admin", Uuid::new_v4(), Some("192.0.2.10".parse().unwrap()))
}

/// A self-signed certificate and its key, PEM, made with rcgen.
pub(crate) fn certificate(common_name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec![format!("{common_name}.example.com")]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A CA-only trustpoint `name` (a fresh self-signed CA), made through the repository.
pub(crate) async fn ca_trustpoint(
    pool: &sqlx::PgPool,
    key: &mgmt_server::db::EncryptionKey,
    name: &str,
) -> Uuid {
    use mgmt_server::db::GLOBAL_DOMAIN_ID;
    use mgmt_server::db::cert_enrollments::{
        self, CaOnlySettings, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
    };
    let (pem, _) = certificate(name);
    let mut conn = pool.acquire().await.unwrap();
    let input = CertEnrollmentInput {
        name: name.to_owned(),
        description: String::new(),
        enrollment_type: EnrollmentType::Manual,
        content: EnrollmentInput::CaOnly(CaOnlySettings::new(pem)),
    };
    cert_enrollments::create(&mut conn, &admin(), GLOBAL_DOMAIN_ID, &input, key)
        .await
        .unwrap()
        .id
}
