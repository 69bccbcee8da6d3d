use super::*;
use crate::pki::testpki::{LeafOptions, TestCa};

fn mapping(primary: CertificateField, secondary: Option<CertificateField>) -> UsernameMapping {
    UsernameMapping::SpecificField { primary, secondary }
}

/// One leaf carrying every subject field with a distinct value, a UPN and an email SAN.
fn everything_leaf() -> Vec<u8> {
    let ca = TestCa::root("Username Root").unwrap();
    let mut options = LeafOptions::client("alice");
    for (oid, value) in FIELD_VALUES {
        options = options.with_attribute(oid, value);
    }
    options.upn = Some("alice@corp.example".to_owned());
    options.email_san = Some("san-alice@corp.example".to_owned());
    ca.issue(&options).unwrap().cert_der
}

const FIELD_VALUES: [(&[u64], &str); 15] = [
    (&[2, 5, 4, 6], "JP"),
    (&[2, 5, 4, 46], "dnq-1"),
    (&[1, 2, 840, 113549, 1, 9, 1], "alice@attr.example"),
    (&[2, 5, 4, 44], "III"),
    (&[2, 5, 4, 42], "Alice"),
    (&[2, 5, 4, 43], "A.L."),
    (&[2, 5, 4, 7], "Tokyo"),
    (&[2, 5, 4, 41], "Alice Liddell"),
    (&[2, 5, 4, 10], "Example Corp"),
    (&[2, 5, 4, 11], "Sales"),
    (&[2, 5, 4, 5], "EMP-0042"),
    (&[2, 5, 4, 4], "Liddell"),
    (&[2, 5, 4, 8], "Kanto"),
    (&[2, 5, 4, 12], "Engineer"),
    (&[0, 9, 2342, 19200300, 100, 1, 1], "aliddell"),
];

#[test]
fn seed_certificate_without_ou_maps_to_cn_alone() {
    let ca = TestCa::root("Seed Root").unwrap();
    let leaf = ca.issue(&LeafOptions::client("client.cisco.com")).unwrap();
    let mapped = map_username(&leaf.cert_der, &UsernameMapping::default()).unwrap();
    assert_eq!(mapped.username, "client.cisco.com");
    assert_eq!(mapped.derivation, "CN of subject");
    assert_eq!(
        mapped.fields,
        vec![(CertificateField::Cn, "client.cisco.com".to_owned())]
    );
}

#[test]
fn present_primary_wins_and_the_secondary_is_not_appended() {
    // Regression: CN + OU used to be concatenated ("aliceSales"); the ASA uses the
    // primary field alone and the secondary only when the primary is absent.
    let der = everything_leaf();
    let mapped = map_username(&der, &UsernameMapping::default()).unwrap();
    assert_eq!(mapped.username, "alice");
    assert_eq!(mapped.derivation, "CN of subject");
    assert_eq!(mapped.fields.len(), 1);
}

#[test]
fn secondary_is_used_when_the_primary_is_absent() {
    let ca = TestCa::root("Fallback Root").unwrap();
    let leaf = ca.issue(&LeafOptions::client("erin")).unwrap();
    let mapped = map_username(
        &leaf.cert_der,
        &mapping(CertificateField::Upn, Some(CertificateField::Cn)),
    )
    .unwrap();
    assert_eq!(mapped.username, "erin");
    assert_eq!(
        mapped.derivation,
        "CN of subject (the certificate has no UPN)"
    );

    let err = map_username(
        &leaf.cert_der,
        &mapping(CertificateField::Upn, Some(CertificateField::Ou)),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the certificate 'CN=erin' has no UPN (nor the fallback OU) to use as username"
    );
}

#[test]
fn every_field_maps_to_its_value() {
    let der = everything_leaf();
    let expected = |field: CertificateField| match field {
        CertificateField::C => "JP",
        CertificateField::Cn => "alice",
        CertificateField::Dnq => "dnq-1",
        CertificateField::Ea => "alice@attr.example",
        CertificateField::Genq => "III",
        CertificateField::Gn => "Alice",
        CertificateField::I => "A.L.",
        CertificateField::L => "Tokyo",
        CertificateField::N => "Alice Liddell",
        CertificateField::O => "Example Corp",
        CertificateField::Ou => "Sales",
        CertificateField::Ser => "EMP-0042",
        CertificateField::Sn => "Liddell",
        CertificateField::Sp => "Kanto",
        CertificateField::T => "Engineer",
        CertificateField::Uid => "aliddell",
        CertificateField::Upn => "alice@corp.example",
    };
    for field in CertificateField::ALL {
        let mapped = map_username(&der, &mapping(field, None)).unwrap();
        assert_eq!(mapped.username, expected(field), "field {field:?}");
    }
}

#[test]
fn email_falls_back_to_the_rfc822_subject_alt_name() {
    let ca = TestCa::root("Email Root").unwrap();
    let mut options = LeafOptions::client("bob");
    options.email_san = Some("bob@corp.example".to_owned());
    let leaf = ca.issue(&options).unwrap();
    let mapped = map_username(&leaf.cert_der, &mapping(CertificateField::Ea, None)).unwrap();
    assert_eq!(mapped.username, "bob@corp.example");
}

#[test]
fn missing_primary_field_is_an_error_not_an_empty_username() {
    let ca = TestCa::root("Missing Root").unwrap();
    let leaf = ca.issue(&LeafOptions::client("carol")).unwrap();
    let err = map_username(&leaf.cert_der, &mapping(CertificateField::Upn, None)).unwrap_err();
    assert_eq!(
        err,
        UsernameError::MissingField {
            field: "UPN",
            fallback: None,
            subject: "CN=carol".to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "the certificate 'CN=carol' has no UPN to use as username"
    );
}

#[test]
fn entire_dn_lists_attributes_in_certificate_order_with_escaping() {
    let ca = TestCa::root("Dn Root").unwrap();
    let options = LeafOptions::client("dave")
        .with_attribute(&[2, 5, 4, 11], "R&D, Tokyo")
        .with_attribute(&[2, 5, 4, 10], "Example");
    let leaf = ca.issue(&options).unwrap();
    let mapped = map_username(&leaf.cert_der, &UsernameMapping::EntireDn).unwrap();
    assert_eq!(mapped.username, "CN=dave,OU=R&D\\, Tokyo,O=Example");
    assert_eq!(mapped.derivation, "entire subject DN");
}

#[test]
fn values_are_trimmed() {
    let ca = TestCa::root("Trim Root").unwrap();
    let leaf = ca.issue(&LeafOptions::client("  erin  ")).unwrap();
    let mapped = map_username(&leaf.cert_der, &UsernameMapping::default()).unwrap();
    assert_eq!(mapped.username, "erin");
}

#[test]
fn control_characters_are_refused() {
    let ca = TestCa::root("Ctl Root").unwrap();
    let leaf = ca.issue(&LeafOptions::client("eve\u{7}admin")).unwrap();
    assert!(matches!(
        map_username(&leaf.cert_der, &UsernameMapping::default()),
        Err(UsernameError::ControlCharacters { field: "CN", .. })
    ));
}

#[test]
fn overlong_username_is_refused() {
    let ca = TestCa::root("Long Root").unwrap();
    let cn = "x".repeat(MAX_USERNAME_CHARS + 1);
    let leaf = ca.issue(&LeafOptions::client(&cn)).unwrap();
    assert!(matches!(
        map_username(&leaf.cert_der, &UsernameMapping::default()),
        Err(UsernameError::TooLong { .. })
    ));
}

#[test]
fn garbage_is_a_certificate_error() {
    assert!(matches!(
        map_username(b"junk", &UsernameMapping::EntireDn),
        Err(UsernameError::Certificate(_))
    ));
}

#[test]
fn upn_reader_accepts_explicit_tag_and_rejects_truncation() {
    assert_eq!(
        utf8_in_explicit_tag(&[0xA0, 0x03, 0x0C, 0x01, b'a']),
        Some("a")
    );
    assert_eq!(utf8_in_explicit_tag(&[0xA0, 0x05, 0x0C, 0x09, b'a']), None);
    assert_eq!(utf8_in_explicit_tag(&[0x0C, 0x85, 1, 1, 1, 1, 1]), None);
}

#[test]
fn first_of_repeated_attributes_is_used() {
    let ca = TestCa::root("Multi Root").unwrap();
    let der = crate::pki::openssl_cli::sign_leaf(
        &ca,
        "multi-ou",
        "rsa:2048",
        "-sha256",
        "/CN=multi/OU=first/OU=second",
    );
    let mapped = map_username(&der, &mapping(CertificateField::Ou, None)).unwrap();
    assert_eq!(mapped.username, "first");
    let dn = map_username(&der, &UsernameMapping::EntireDn).unwrap();
    assert_eq!(dn.username, "CN=multi,OU=first,OU=second");
}
