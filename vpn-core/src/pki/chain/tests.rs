use time::Duration;
use time::macros::datetime;

use super::*;
use crate::config::ValidationUsage;
use crate::pki::openssl_cli;
use crate::pki::revocation::CrlError;
use crate::pki::testpki::{LeafOptions, TEST_NOW, TestCa, TestCert, TestEku, TestKeyType};

fn trustpoint(name: &str, cas: &[&TestCa]) -> Trustpoint {
    Trustpoint {
        name: name.to_owned(),
        ca_certificates_pem: cas.iter().map(|ca| ca.cert.cert_pem.as_str()).collect(),
        validation_usage: ValidationUsage::default(),
        skip_ca_flag_check: false,
        require_client_auth_eku: true,
        revocation: Revocation::None,
    }
}

fn with_crls(mut tp: Trustpoint, crls: &[&str]) -> Trustpoint {
    tp.revocation = Revocation::Crl {
        crls_pem: crls.concat(),
    };
    tp
}

fn chain(certs: &[&TestCert]) -> Vec<CertificateDer<'static>> {
    certs
        .iter()
        .map(|c| CertificateDer::from(c.cert_der.clone()))
        .collect()
}

fn validate_at(
    tps: &[&Trustpoint],
    certs: &[&TestCert],
    now: OffsetDateTime,
) -> Result<ValidatedChain, ChainError> {
    TrustStore::new(tps).unwrap().validate(&chain(certs), now)
}

fn validate(tps: &[&Trustpoint], certs: &[&TestCert]) -> Result<ValidatedChain, ChainError> {
    validate_at(tps, certs, TEST_NOW)
}

fn role_of(err: &ChainError) -> Option<CertificateRole> {
    match err {
        ChainError::Expired { cert, .. }
        | ChainError::NotYetValid { cert, .. }
        | ChainError::IssuerNotCa { cert }
        | ChainError::PathLenExceeded { cert, .. }
        | ChainError::Revoked { cert, .. }
        | ChainError::WeakRsaKey { cert, .. }
        | ChainError::WeakSignatureAlgorithm { cert, .. } => Some(cert.role),
        _ => None,
    }
}

struct TwoCas {
    machine_root: TestCa,
    machine_sub: TestCa,
    user_root: TestCa,
    machine_tp: Trustpoint,
    user_tp: Trustpoint,
}

fn two_cas() -> TwoCas {
    let machine_root = TestCa::root("Machine Root CA").unwrap();
    let machine_sub = machine_root
        .intermediate("Machine Issuing CA", None)
        .unwrap();
    let user_root = TestCa::root_with(
        "User Root CA",
        TestKeyType::Rsa2048,
        None,
        crate::pki::testpki::DEFAULT_NOT_AFTER,
    )
    .unwrap();
    let machine_tp = trustpoint("machine-ca", &[&machine_root]);
    let user_tp = trustpoint("user-ca", &[&user_root]);
    TwoCas {
        machine_root,
        machine_sub,
        user_root,
        machine_tp,
        user_tp,
    }
}

#[test]
fn machine_and_user_chains_validate_against_their_own_trustpoint() {
    let pki = two_cas();
    let machine = pki
        .machine_sub
        .issue(&LeafOptions::client("machine.corp.example"))
        .unwrap();
    let mut user_options = LeafOptions::client("client.cisco.com");
    user_options.key_type = TestKeyType::Rsa2048;
    let user = pki.user_root.issue(&user_options).unwrap();
    let both = [&pki.user_tp, &pki.machine_tp];

    let validated = validate(&both, &[&machine, &pki.machine_sub.cert]).unwrap();
    assert_eq!(validated.trustpoint, "machine-ca");
    assert_eq!(validated.leaf.subject, "CN=machine.corp.example");
    let expected: Vec<&[u8]> = vec![
        &machine.cert_der,
        &pki.machine_sub.cert.cert_der,
        &pki.machine_root.cert.cert_der,
    ];
    let got: Vec<&[u8]> = validated.chain.iter().map(|c| c.as_ref()).collect();
    assert_eq!(got, expected);

    let validated = validate(&both, &[&user]).unwrap();
    assert_eq!(validated.trustpoint, "user-ca");
    assert_eq!(validated.chain.len(), 2);

    assert!(matches!(
        validate(&[&pki.user_tp], &[&machine, &pki.machine_sub.cert]),
        Err(ChainError::UnknownIssuer { .. })
    ));
    assert!(matches!(
        validate(&[&pki.machine_tp], &[&user]),
        Err(ChainError::UnknownIssuer { .. })
    ));
}

#[test]
fn chain_in_reverse_order_validates() {
    let pki = two_cas();
    let leaf = pki.machine_sub.issue(&LeafOptions::client("rev")).unwrap();
    let validated = validate(&[&pki.machine_tp], &[&pki.machine_sub.cert, &leaf]).unwrap();
    assert_eq!(
        validated.chain.first().map(|c| c.as_ref()),
        Some(&leaf.cert_der[..])
    );
}

#[test]
fn ecdsa_p384_leaf_validates() {
    let pki = two_cas();
    let mut options = LeafOptions::client("p384");
    options.key_type = TestKeyType::EcdsaP384;
    let leaf = pki.machine_root.issue(&options).unwrap();
    assert!(validate(&[&pki.machine_tp], &[&leaf]).is_ok());
}

#[test]
fn expired_leaf_is_refused_with_its_end_date() {
    let pki = two_cas();
    let mut options = LeafOptions::client("old");
    options.not_after = datetime!(2026-01-01 0:00 UTC);
    let leaf = pki.user_root.issue(&options).unwrap();
    let err = validate(&[&pki.user_tp], &[&leaf]).unwrap_err();
    assert!(matches!(&err, ChainError::Expired { cert, not_after }
        if cert.role == CertificateRole::Leaf && cert.subject == "CN=old"
            && *not_after == datetime!(2026-01-01 0:00 UTC)));
    let text = err.to_string();
    assert!(
        text.starts_with("client certificate 'CN=old' (serial "),
        "{text}"
    );
    assert!(
        text.ends_with("expired on 2026-01-01 00:00:00 UTC"),
        "{text}"
    );
}

#[test]
fn not_yet_valid_leaf_is_refused() {
    let pki = two_cas();
    let mut options = LeafOptions::client("future");
    options.not_before = TEST_NOW + Duration::days(1);
    let leaf = pki.user_root.issue(&options).unwrap();
    let err = validate(&[&pki.user_tp], &[&leaf]).unwrap_err();
    assert!(matches!(err, ChainError::NotYetValid { .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Leaf));
}

#[test]
fn expired_trust_anchor_is_refused_although_webpki_ignores_it() {
    let root = TestCa::root_with(
        "Expired Root",
        TestKeyType::EcdsaP256,
        None,
        datetime!(2026-01-01 0:00 UTC),
    )
    .unwrap();
    let leaf = root.issue(&LeafOptions::client("c")).unwrap();
    let err = validate(&[&trustpoint("old-root", &[&root])], &[&leaf]).unwrap_err();
    assert!(matches!(err, ChainError::Expired { .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Anchor));
    assert!(
        err.to_string()
            .starts_with("trusted CA certificate 'CN=Expired Root'")
    );
}

#[test]
fn leaf_from_unknown_ca_names_its_issuer() {
    let pki = two_cas();
    let rogue = TestCa::root("Rogue CA").unwrap();
    let leaf = rogue.issue(&LeafOptions::client("mallory")).unwrap();
    let err = validate(&[&pki.user_tp, &pki.machine_tp], &[&leaf]).unwrap_err();
    assert!(matches!(&err, ChainError::UnknownIssuer { issuer, .. } if issuer == "CN=Rogue CA"));
}

#[test]
fn impostor_ca_with_the_same_name_fails_signature_check() {
    let pki = two_cas();
    let impostor = pki.user_root.impostor().unwrap();
    let leaf = impostor.issue(&LeafOptions::client("mallory")).unwrap();
    assert!(matches!(
        validate(&[&pki.user_tp], &[&leaf]),
        Err(ChainError::BadSignature { .. })
    ));
}

#[test]
fn trusted_ca_without_ca_flag_fails_unless_the_check_is_skipped() {
    let root = TestCa::root("Top").unwrap();
    let mut not_ca = LeafOptions::client("Not A CA");
    not_ca.eku = Vec::new();
    let issuer = root.issue_signer(&not_ca).unwrap();
    let leaf = issuer.issue(&LeafOptions::client("c")).unwrap();
    let mut tp = trustpoint("no-ca-flag", &[&issuer]);
    let err = validate(&[&tp], &[&leaf]).unwrap_err();
    assert!(matches!(err, ChainError::IssuerNotCa { .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Anchor));
    tp.skip_ca_flag_check = true;
    assert_eq!(validate(&[&tp], &[&leaf]).unwrap().trustpoint, "no-ca-flag");
}

#[test]
fn presented_intermediate_without_ca_flag_always_fails() {
    let root = TestCa::root("Top2").unwrap();
    let mut not_ca = LeafOptions::client("Fake Sub CA");
    not_ca.eku = Vec::new();
    let issuer = root.issue_signer(&not_ca).unwrap();
    let leaf = issuer.issue(&LeafOptions::client("c")).unwrap();
    let mut tp = trustpoint("root", &[&root]);
    tp.skip_ca_flag_check = true;
    let err = validate(&[&tp], &[&leaf, &issuer.cert]).unwrap_err();
    assert!(matches!(err, ChainError::IssuerNotCa { .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Intermediate));
}

#[test]
fn leaf_without_eku_fails_by_default_and_passes_when_not_required() {
    let pki = two_cas();
    let mut options = LeafOptions::client("no-eku");
    options.eku = Vec::new();
    let leaf = pki.user_root.issue(&options).unwrap();
    let err = validate(&[&pki.user_tp], &[&leaf]).unwrap_err();
    assert!(matches!(err, ChainError::MissingClientAuthEku { .. }));
    assert!(err.to_string().contains("clientAuth is required"));
    let mut relaxed = pki.user_tp;
    relaxed.require_client_auth_eku = false;
    assert!(validate(&[&relaxed], &[&leaf]).is_ok());
}

#[test]
fn server_auth_only_leaf_is_refused() {
    let pki = two_cas();
    let mut options = LeafOptions::client("server");
    options.eku = vec![TestEku::ServerAuth];
    let leaf = pki.user_root.issue(&options).unwrap();
    let err = validate(&[&pki.user_tp], &[&leaf]).unwrap_err();
    assert!(matches!(&err, ChainError::WrongEku { found, .. } if found == &["serverAuth"]));
}

#[test]
fn ca_certificate_presented_as_client_is_refused() {
    let pki = two_cas();
    let mut options = LeafOptions::client("ca-as-client");
    options.is_ca = true;
    let leaf = pki.user_root.issue(&options).unwrap();
    assert!(matches!(
        validate(&[&pki.user_tp], &[&leaf]),
        Err(ChainError::LeafIsCa { .. })
    ));
}

#[test]
fn self_signed_leaf_is_refused() {
    let pki = two_cas();
    let lonely = TestCa::root("lonely.example").unwrap();
    let err = validate(&[&pki.user_tp], &[&lonely.cert]).unwrap_err();
    assert!(matches!(err, ChainError::SelfSignedLeaf { .. }));
}

#[test]
fn eleven_certificates_are_too_many() {
    let root = TestCa::root("Deep Root").unwrap();
    let mut cas = vec![root.intermediate("Sub 1", None).unwrap()];
    for i in 2..=10 {
        let next = cas
            .last()
            .unwrap()
            .intermediate(&format!("Sub {i}"), None)
            .unwrap();
        cas.push(next);
    }
    let leaf = cas
        .last()
        .unwrap()
        .issue(&LeafOptions::client("deep"))
        .unwrap();
    let mut certs: Vec<&TestCert> = cas.iter().map(|c| &c.cert).collect();
    certs.push(&leaf);
    assert_eq!(certs.len(), 11);
    let err = validate(&[&trustpoint("deep", &[&root])], &certs).unwrap_err();
    assert_eq!(err, ChainError::TooManyCertificates { count: 11, max: 10 });
}

#[test]
fn path_length_of_the_trust_anchor_is_enforced() {
    let root = TestCa::root_with(
        "Short Root",
        TestKeyType::EcdsaP256,
        Some(0),
        crate::pki::testpki::DEFAULT_NOT_AFTER,
    )
    .unwrap();
    let sub = root.intermediate("Sub", None).unwrap();
    let leaf = sub.issue(&LeafOptions::client("c")).unwrap();
    let err = validate(&[&trustpoint("short", &[&root])], &[&leaf, &sub.cert]).unwrap_err();
    assert!(matches!(
        err,
        ChainError::PathLenExceeded {
            path_len: 0,
            intermediates_below: 1,
            ..
        }
    ));
    assert_eq!(role_of(&err), Some(CertificateRole::Anchor));
}

#[test]
fn path_length_of_an_intermediate_is_enforced() {
    let root = TestCa::root("Long Root").unwrap();
    let sub = root.intermediate("Sub0", Some(0)).unwrap();
    let subsub = sub.intermediate("SubSub", None).unwrap();
    let leaf = subsub.issue(&LeafOptions::client("c")).unwrap();
    let tp = trustpoint("long", &[&root]);
    let err = validate(&[&tp], &[&leaf, &subsub.cert, &sub.cert]).unwrap_err();
    assert_eq!(role_of(&err), Some(CertificateRole::Intermediate));
    assert!(matches!(err, ChainError::PathLenExceeded { .. }));
}

#[test]
fn two_unrelated_leaves_are_refused() {
    let pki = two_cas();
    let a = pki.user_root.issue(&LeafOptions::client("a")).unwrap();
    let b = pki.user_root.issue(&LeafOptions::client("b")).unwrap();
    assert!(matches!(
        validate(&[&pki.user_tp], &[&a, &b]),
        Err(ChainError::MultipleLeaves { subjects }) if subjects.len() == 2
    ));
}

#[test]
fn empty_and_garbage_chains_are_refused() {
    let pki = two_cas();
    let store = TrustStore::new(&[&pki.user_tp]).unwrap();
    assert_eq!(
        store.validate(&[], TEST_NOW).unwrap_err(),
        ChainError::NoCertificate
    );
    let junk = [CertificateDer::from(vec![0x30, 0x03, 1, 2, 3])];
    assert!(matches!(
        store.validate(&junk, TEST_NOW),
        Err(ChainError::Malformed { index: 1, .. })
    ));
}

#[test]
fn trust_store_reports_which_trustpoint_is_unusable() {
    assert_eq!(
        TrustStore::new(&[]).unwrap_err(),
        TrustStoreError::NoTrustpoints
    );
    let pki = two_cas();
    let mut broken = pki.user_tp.clone();
    broken.name = "broken".to_owned();
    broken.ca_certificates_pem = "nothing here".to_owned();
    assert!(matches!(
        TrustStore::new(&[&pki.user_tp, &broken]),
        Err(TrustStoreError::CaCertificates { trustpoint, .. }) if trustpoint == "broken"
    ));
    let bad_crl = with_crls(pki.user_tp.clone(), &["no crl"]);
    assert!(matches!(
        TrustStore::new(&[&bad_crl]),
        Err(TrustStoreError::Crl { .. })
    ));
    let names: Vec<String> = TrustStore::new(&[&pki.user_tp, &pki.machine_tp])
        .unwrap()
        .trustpoint_names()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, ["user-ca", "machine-ca"]);
}

fn crl_window() -> (OffsetDateTime, OffsetDateTime) {
    (TEST_NOW - Duration::days(1), TEST_NOW + Duration::days(7))
}

#[test]
fn leaf_revoked_by_crl_is_refused_and_others_pass() {
    let pki = two_cas();
    let good = pki.user_root.issue(&LeafOptions::client("good")).unwrap();
    let bad = pki.user_root.issue(&LeafOptions::client("bad")).unwrap();
    let (this, next) = crl_window();
    let crl = pki.user_root.crl(&[&bad.serial], this, next).unwrap();
    let tp = with_crls(pki.user_tp, &[&crl.pem]);
    assert!(validate(&[&tp], &[&good]).is_ok());
    let err = validate(&[&tp], &[&bad]).unwrap_err();
    assert!(
        matches!(&err, ChainError::Revoked { cert, revoked_at: Some(at) }
        if cert.role == CertificateRole::Leaf && *at == this)
    );
    assert!(
        err.to_string()
            .ends_with("is revoked since 2026-05-31 12:00:00 UTC"),
        "{err}"
    );
}

#[test]
fn revoked_intermediate_is_refused() {
    let pki = two_cas();
    let leaf = pki.machine_sub.issue(&LeafOptions::client("m")).unwrap();
    let (this, next) = crl_window();
    let root_crl = pki
        .machine_root
        .crl(&[&pki.machine_sub.cert.serial], this, next)
        .unwrap();
    let sub_crl = pki.machine_sub.crl(&[], this, next).unwrap();
    let tp = with_crls(pki.machine_tp.clone(), &[&root_crl.pem, &sub_crl.pem]);
    let err = validate(&[&tp], &[&leaf, &pki.machine_sub.cert]).unwrap_err();
    assert_eq!(role_of(&err), Some(CertificateRole::Intermediate));

    let clean_root_crl = pki.machine_root.crl(&[], this, next).unwrap();
    let tp = with_crls(pki.machine_tp.clone(), &[&clean_root_crl.pem, &sub_crl.pem]);
    assert!(validate(&[&tp], &[&leaf, &pki.machine_sub.cert]).is_ok());
}

/// A user certificate issued by an intermediate the client sends (the trustpoint holds
/// only the root): the intermediate's CRL, verified against the intermediate, revokes it;
/// the root's CRL covers the intermediate.
#[test]
fn leaf_revoked_by_the_crl_of_a_presented_intermediate_is_refused() {
    let pki = two_cas();
    let good = pki.machine_sub.issue(&LeafOptions::client("good")).unwrap();
    let bad = pki.machine_sub.issue(&LeafOptions::client("bad")).unwrap();
    let (this, next) = crl_window();
    let root_crl = pki.machine_root.crl(&[], this, next).unwrap();
    let sub_crl = pki.machine_sub.crl(&[&bad.serial], this, next).unwrap();
    let tp = with_crls(pki.machine_tp.clone(), &[&root_crl.pem, &sub_crl.pem]);
    let sub = &pki.machine_sub.cert;
    assert!(validate(&[&tp], &[&good, sub]).is_ok());
    let err = validate(&[&tp], &[&bad, sub]).unwrap_err();
    assert!(
        matches!(&err, ChainError::Revoked { cert, revoked_at: Some(at) }
        if cert.role == CertificateRole::Leaf && cert.subject == "CN=bad" && *at == this),
        "{err}"
    );

    // Without the intermediate's CRL its leaves' status is unknown: refused.
    let tp = with_crls(pki.machine_tp.clone(), &[&root_crl.pem]);
    let err = validate(&[&tp], &[&good, sub]).unwrap_err();
    assert!(
        matches!(&err, ChainError::RevocationUnknown { cert, .. } if cert.role == CertificateRole::Leaf),
        "{err}"
    );

    // A CRL in the intermediate's name signed by another key does not verify.
    let forged = pki
        .machine_sub
        .impostor()
        .unwrap()
        .crl(&[], this, next)
        .unwrap();
    let tp = with_crls(pki.machine_tp.clone(), &[&root_crl.pem, &forged.pem]);
    let err = validate(&[&tp], &[&good, sub]).unwrap_err();
    assert!(
        matches!(&err, ChainError::CrlSignatureInvalid { .. }),
        "{err}"
    );
}

#[test]
fn crl_from_another_issuer_leaves_status_unknown_and_fails_closed() {
    let pki = two_cas();
    let leaf = pki.user_root.issue(&LeafOptions::client("u")).unwrap();
    let (this, next) = crl_window();
    let foreign = pki.machine_root.crl(&[], this, next).unwrap();
    let tp = with_crls(pki.user_tp, &[&foreign.pem]);
    let err = validate(&[&tp], &[&leaf]).unwrap_err();
    assert!(
        matches!(&err, ChainError::RevocationUnknown { issuer, .. } if issuer == "CN=User Root CA")
    );
}

#[test]
fn crl_with_a_bad_signature_fails_closed() {
    let pki = two_cas();
    let leaf = pki.user_root.issue(&LeafOptions::client("u")).unwrap();
    let (this, next) = crl_window();
    let forged = pki
        .user_root
        .impostor()
        .unwrap()
        .crl(&[], this, next)
        .unwrap();
    let tp = with_crls(pki.user_tp, &[&forged.pem]);
    let err = validate(&[&tp], &[&leaf]).unwrap_err();
    assert_eq!(
        err,
        ChainError::CrlSignatureInvalid {
            crl_issuer: "CN=User Root CA".to_owned(),
            trustpoint: "user-ca".to_owned()
        }
    );
}

#[test]
fn crl_past_its_next_update_fails_closed() {
    let pki = two_cas();
    let leaf = pki.user_root.issue(&LeafOptions::client("u")).unwrap();
    let next = TEST_NOW - Duration::days(1);
    let stale = pki
        .user_root
        .crl(&[], next - Duration::days(7), next)
        .unwrap();
    let tp = with_crls(pki.user_tp, &[&stale.pem]);
    let err = validate(&[&tp], &[&leaf]).unwrap_err();
    assert!(matches!(&err, ChainError::CrlExpired { next_update, .. } if *next_update == next));
}

fn validate_openssl_leaf(ca: &TestCa, der: Vec<u8>) -> Result<ValidatedChain, ChainError> {
    let now = CertificateInfo::from_der(&der).unwrap().not_before + Duration::hours(1);
    TrustStore::new(&[&trustpoint("rsa-root", &[ca])])
        .unwrap()
        .validate(&[CertificateDer::from(der)], now)
}

fn rsa_root() -> TestCa {
    TestCa::root_with(
        "RSA Root",
        TestKeyType::Rsa2048,
        None,
        crate::pki::testpki::DEFAULT_NOT_AFTER,
    )
    .unwrap()
}

#[test]
fn openssl_signed_sha256_leaf_validates_as_a_control() {
    let ca = rsa_root();
    let der = openssl_cli::sign_leaf(&ca, "control", "rsa:2048", "-sha256", "/CN=openssl-leaf");
    assert!(validate_openssl_leaf(&ca, der).is_ok());
}

#[test]
fn rsa_1024_leaf_is_refused() {
    let ca = rsa_root();
    let der = openssl_cli::sign_leaf(&ca, "rsa1024", "rsa:1024", "-sha256", "/CN=openssl-leaf");
    let err = validate_openssl_leaf(&ca, der).unwrap_err();
    assert!(matches!(&err, ChainError::WeakRsaKey { bits: 1024, .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Leaf));
}

#[test]
fn sha1_signed_leaf_is_refused() {
    let ca = rsa_root();
    let der = openssl_cli::sign_leaf(&ca, "sha1", "rsa:2048", "-sha1", "/CN=openssl-leaf");
    let err = validate_openssl_leaf(&ca, der).unwrap_err();
    assert!(
        matches!(&err, ChainError::WeakSignatureAlgorithm { algorithm, .. }
        if algorithm == "sha1WithRSAEncryption")
    );
}

#[test]
fn ed25519_leaf_validates() {
    let pki = two_cas();
    let mut options = LeafOptions::client("ed");
    options.key_type = TestKeyType::Ed25519;
    let leaf = pki.machine_root.issue(&options).unwrap();
    let validated = validate(&[&pki.machine_tp], &[&leaf]).unwrap();
    assert_eq!(validated.leaf.key_type, crate::pki::KeyType::Ed25519);
}

#[test]
fn trustpoint_with_too_many_ca_certificates_is_refused() {
    let pki = two_cas();
    let mut tp = pki.user_tp.clone();
    tp.ca_certificates_pem = pki
        .user_root
        .cert
        .cert_pem
        .repeat(MAX_TRUSTPOINT_CERTIFICATES + 1);
    assert!(matches!(
        TrustStore::new(&[&tp]),
        Err(TrustStoreError::TooManyCaCertificates {
            count: 33,
            max: 32,
            ..
        })
    ));
}

#[test]
fn trustpoint_with_too_many_crls_is_refused() {
    let pki = two_cas();
    let (this, next) = crl_window();
    let crl = pki.user_root.crl(&[], this, next).unwrap();
    let many = crl.pem.repeat(revocation::MAX_CRLS_PER_TRUSTPOINT + 1);
    let tp = with_crls(pki.user_tp, &[&many]);
    assert!(matches!(
        TrustStore::new(&[&tp]),
        Err(TrustStoreError::Crl {
            source: CrlError::TooMany { .. },
            ..
        })
    ));
}

proptest::proptest! {
    #[test]
    fn arbitrary_presented_bytes_never_panic(
        certs in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..4)
    ) {
        let store = TrustStore::new(&[&trustpoint("p", &[&TestCa::root("P").unwrap()])]).unwrap();
        let presented: Vec<CertificateDer<'static>> = certs.into_iter().map(CertificateDer::from).collect();
        proptest::prop_assert!(store.validate(&presented, TEST_NOW).is_err());
    }
}

#[test]
fn renewed_ca_with_the_same_name_validates_only_leaves_of_the_valid_key() {
    let expired = TestCa::root_with(
        "Renewed CA",
        TestKeyType::EcdsaP256,
        None,
        datetime!(2026-01-01 0:00 UTC),
    )
    .unwrap();
    let renewed = TestCa::root("Renewed CA").unwrap();
    let tp = trustpoint("renewed", &[&expired, &renewed]);
    let new_leaf = renewed.issue(&LeafOptions::client("new")).unwrap();
    let validated = validate(&[&tp], &[&new_leaf]).unwrap();
    assert_eq!(
        validated.chain.last().map(|c| c.as_ref()),
        Some(&renewed.cert.cert_der[..])
    );
    let old_leaf = expired.issue(&LeafOptions::client("old")).unwrap();
    let err = validate(&[&tp], &[&old_leaf]).unwrap_err();
    assert!(matches!(err, ChainError::Expired { .. }));
    assert_eq!(role_of(&err), Some(CertificateRole::Anchor));
}

#[test]
fn seed_profile_trust_store_holds_its_two_trustpoints() {
    let config = crate::config::fixture::seed_config();
    let profile = config.connection_profiles.first().unwrap();
    let store = TrustStore::for_profile(&config, profile).unwrap();
    let names: Vec<&str> = store.trustpoint_names().collect();
    assert_eq!(
        names,
        profile
            .trustpoints
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let mut broken = profile.clone();
    broken.trustpoints.push("Missing-CA".to_owned());
    assert!(matches!(
        TrustStore::for_profile(&config, &broken),
        Err(TrustStoreError::UnknownTrustpoint { trustpoint, .. }) if trustpoint == "Missing-CA"
    ));
}

#[test]
fn reasons_name_the_certificate_and_the_check() {
    let leaf = CertificateId {
        role: CertificateRole::Leaf,
        subject: "CN=client.cisco.com".to_owned(),
        serial: "1A2B".to_owned(),
    };
    let cases = [
        (
            ChainError::UnknownIssuer {
                cert: leaf.clone(),
                issuer: "CN=Rogue".to_owned(),
            },
            "client certificate 'CN=client.cisco.com' (serial 1A2B) was issued by 'CN=Rogue', which is not a trusted CA nor presented",
        ),
        (
            ChainError::WeakRsaKey {
                cert: leaf.clone(),
                bits: 1024,
            },
            "client certificate 'CN=client.cisco.com' (serial 1A2B) has a 1024-bit RSA key; at least 2048 bits are required",
        ),
        (
            ChainError::CrlExpired {
                crl_issuer: "CN=User-CA".to_owned(),
                trustpoint: "User-CA".to_owned(),
                next_update: datetime!(2026-05-01 08:30 UTC),
            },
            "the CRL from 'CN=User-CA' in trustpoint User-CA expired (nextUpdate 2026-05-01 08:30:00 UTC)",
        ),
        (
            ChainError::MissingClientAuthEku { cert: leaf },
            "client certificate 'CN=client.cisco.com' (serial 1A2B) has no extended key usage; clientAuth is required",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
}

#[test]
fn trustpoint_without_ssl_client_usage_does_not_validate_clients() {
    let pki = two_cas();
    let leaf = pki.user_root.issue(&LeafOptions::client("u")).unwrap();
    let mut tp = pki.user_tp;
    tp.validation_usage.ssl_client = false;
    tp.validation_usage.ssl_server = true;
    assert!(matches!(
        validate(&[&tp], &[&leaf]),
        Err(ChainError::TrustpointNotForSslClients { trustpoint, .. }) if trustpoint == "user-ca"
    ));
}
