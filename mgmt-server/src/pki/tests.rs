use rustls::pki_types::{CertificateDer, UnixTime};
use time::macros::datetime;
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use super::*;

fn now() -> OffsetDateTime {
    datetime!(2026-11-27 12:00 UTC)
}

fn der(pem: &str) -> CertificateDer<'static> {
    vpn_core::pki::pem::certificates(pem)
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

/// Validates `leaf` against `ca` for `usage` at `now`, as rustls will.
fn chains_to(ca: &InternalCa, leaf: &str, usage: KeyUsage) -> Result<(), webpki::Error> {
    let ca_der = der(ca.certificate_pem());
    let anchor = anchor_from_trusted_cert(&ca_der).unwrap();
    let leaf_der = der(leaf);
    let cert = EndEntityCert::try_from(&leaf_der).unwrap();
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now().unix_timestamp()).unwrap(),
    ));
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        at,
        usage,
        None,
        None,
    )
    .map(|_| ())
}

fn public_key_of(pem: &str) -> Vec<u8> {
    let der = der(pem);
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    cert.public_key().raw.to_vec()
}

#[test]
fn the_manager_identity_chains_to_the_ca_for_client_authentication_only() {
    let ca = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let manager = ca.issue_manager_identity("fmc", now()).unwrap();
    assert_eq!(
        chains_to(&ca, &manager.certificate_pem, KeyUsage::client_auth()),
        Ok(())
    );
    assert!(chains_to(&ca, &manager.certificate_pem, KeyUsage::server_auth()).is_err());
    assert!(KeyPair::from_pem(&manager.private_key_pem).is_ok());
    assert!(!format!("{manager:?}").contains("PRIVATE KEY"));
}

#[test]
fn the_sensor_certificate_carries_the_key_the_sensor_presented() {
    let ca = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let sensor_key = KeyPair::generate().unwrap();
    let bootstrap = CertificateParams::new(vec!["sensor".to_owned()])
        .unwrap()
        .self_signed(&sensor_key)
        .unwrap();
    let device = Uuid::from_u128(42);
    let issued = ca
        .issue_sensor_certificate(bootstrap.der(), device, "FTD-1", now())
        .unwrap();
    assert_eq!(public_key_of(&issued), public_key_of(&bootstrap.pem()));
    assert_eq!(chains_to(&ca, &issued, KeyUsage::server_auth()), Ok(()));
    let info = vpn_core::pki::CertificateInfo::from_der(der(&issued).as_ref()).unwrap();
    assert!(info.subject.contains("FTD-1"), "{}", info.subject);
    assert!(
        info.subject.contains(&device.to_string()),
        "{}",
        info.subject
    );
}

#[test]
fn a_ca_reloaded_from_pem_issues_certificates_the_original_trusts() {
    let original = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let reloaded =
        InternalCa::from_pem(original.certificate_pem(), original.private_key_pem()).unwrap();
    let manager = reloaded.issue_manager_identity("fmc", now()).unwrap();
    assert_eq!(
        chains_to(&original, &manager.certificate_pem, KeyUsage::client_auth()),
        Ok(())
    );
}

#[test]
fn a_ca_with_another_key_is_refused() {
    let first = InternalCa::generate("CA one", now()).unwrap();
    let second = InternalCa::generate("CA two", now()).unwrap();
    assert!(matches!(
        InternalCa::from_pem(first.certificate_pem(), second.private_key_pem()),
        Err(CaError::KeyMismatch)
    ));
}

#[test]
fn a_certificate_from_another_ca_does_not_chain() {
    let ca = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let rogue = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let manager = rogue.issue_manager_identity("fmc", now()).unwrap();
    assert!(chains_to(&ca, &manager.certificate_pem, KeyUsage::client_auth()).is_err());
}

#[test]
fn garbage_instead_of_a_sensor_certificate_is_a_clear_error() {
    let ca = InternalCa::generate("Manager Internal CA", now()).unwrap();
    assert!(matches!(
        ca.issue_sensor_certificate(b"not a certificate", Uuid::nil(), "x", now()),
        Err(CaError::SensorCertificate(_))
    ));
}

#[test]
fn the_server_identity_names_every_address_and_host_and_chains_to_the_ca() {
    let ca = InternalCa::generate("Manager Internal CA", now()).unwrap();
    let names = vec!["fmc.example.com".to_owned(), "192.0.2.5".to_owned()];
    let server = ca.issue_server_identity(&names, now()).unwrap();
    assert_eq!(
        chains_to(&ca, &server.certificate_pem, KeyUsage::server_auth()),
        Ok(())
    );
    let leaf = der(&server.certificate_pem);
    let cert = EndEntityCert::try_from(&leaf).unwrap();
    let dns = rustls::pki_types::ServerName::try_from("fmc.example.com").unwrap();
    assert!(cert.verify_is_valid_for_subject_name(&dns).is_ok());
    let ip = rustls::pki_types::ServerName::try_from("192.0.2.5").unwrap();
    assert!(cert.verify_is_valid_for_subject_name(&ip).is_ok());
    let other = rustls::pki_types::ServerName::try_from("other.example.com").unwrap();
    assert!(cert.verify_is_valid_for_subject_name(&other).is_err());
}
