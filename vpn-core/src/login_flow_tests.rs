//! The pieces of an MCA login wired together without I/O, as the sensor will run them:
//! machine chain from TLS, challenge, the client's signed reply, both chains against
//! the profile's trustpoints, the username, and the session as the CLI prints it.

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::aggauth::ClientMessage;
use crate::cli::vpn_sessiondb_detail_anyconnect;
use crate::config::{DeviceConfig, UsernameSource, fixture};
use crate::mca::testkit::{self, Identity, KeyKind};
use crate::mca::{ChallengeStore, McaChallenge, McaHash, verify_reply};
use crate::pki::testpki::{LeafOptions, TestCa, TestCert};
use crate::pki::{ChainError, TrustStore, map_username};
use crate::session::AuthMode;

const PROFILE: &str = "RA-VPN-Multi-Cert";

struct Lab {
    config: DeviceConfig,
    machine: TestCert,
    user: TestCert,
    rogue_user: TestCert,
}

fn lab() -> Lab {
    let machine_ca = TestCa::root("Machine CA").unwrap();
    let user_ca = TestCa::root("User CA").unwrap();
    let rogue_ca = TestCa::root("User CA").unwrap();
    let mut config = fixture::seed_config();
    for trustpoint in &mut config.trustpoints {
        trustpoint.ca_certificates_pem = match trustpoint.name.as_str() {
            "Machine-CA" => machine_ca.cert.cert_pem.clone(),
            "User-CA" => user_ca.cert.cert_pem.clone(),
            other => panic!("unexpected trustpoint {other} in the seed fixture"),
        };
    }
    Lab {
        config,
        machine: machine_ca
            .issue(&LeafOptions::client("machine.example.com"))
            .unwrap(),
        user: user_ca
            .issue(&LeafOptions::client("client.example.com"))
            .unwrap(),
        rogue_user: rogue_ca
            .issue(&LeafOptions::client("client.example.com"))
            .unwrap(),
    }
}

fn identity(cert: &TestCert) -> Identity {
    Identity {
        der: CertificateDer::from(cert.cert_der.clone()),
        key: rcgen::KeyPair::from_pem(&cert.key_pem).unwrap(),
        kind: KeyKind::P256,
    }
}

/// What the headend learns from one MCA login: the mapped session username.
fn login(lab: &Lab, user: &TestCert, now: OffsetDateTime) -> Result<String, ChainError> {
    let profile = lab.config.connection_profile(PROFILE).unwrap();
    let trust = TrustStore::for_profile(&lab.config, profile).unwrap();
    let machine_der = CertificateDer::from(lab.machine.cert_der.clone());

    // TLS handshake: the machine certificate is validated first.
    trust.validate(std::slice::from_ref(&machine_der), now)?;

    // init -> MCA auth-request; the client signs the exact bytes and replies.
    let started = testkit::start();
    let challenge = McaChallenge::new(PROFILE, "1").unwrap();
    let (handle, body) = (challenge.handle().to_owned(), challenge.body().to_vec());
    let mut store = ChallengeStore::default();
    store.insert(challenge, &machine_der, started).unwrap();
    let user_identity = identity(user);
    let bag = testkit::bag_der(&[&user_identity.der], testkit::DIGESTED_DATA);
    let signature = testkit::sign(&user_identity, McaHash::Sha512, &body);
    let reply_bytes = testkit::reply_body(
        &handle,
        &testkit::wrapped_base64(&bag),
        &signature,
        "sha512",
    );
    let ClientMessage::AuthReply(reply) = ClientMessage::parse(&reply_bytes).unwrap() else {
        panic!("the client's reply did not parse as an auth-reply");
    };
    let verified = verify_reply(&mut store, &reply, Some(&machine_der), started).unwrap();

    // The user chain from the PKCS#7 bag against the same profile's trustpoints.
    let user_chain = trust.validate(&verified.user_bag.certificates(), now)?;
    assert_eq!(user_chain.trustpoint, "User-CA");

    let aaa = &profile.aaa;
    let source = match aaa.username_from_certificate_source {
        UsernameSource::FirstCertificate => lab.machine.cert_der.as_slice(),
        UsernameSource::SecondCertificate => verified.user_bag.leaf.as_ref(),
    };
    Ok(map_username(source, &aaa.username_mapping)
        .unwrap()
        .username)
}

#[test]
fn seed_scenario_logs_in_as_the_user_certificate_cn_and_prints_multiple_certificate() {
    let lab = lab();
    let now = fixture::seed_now();
    let username = login(&lab, &lab.user, now).unwrap();
    assert_eq!(username, "client.example.com");

    let profile = lab.config.connection_profile(PROFILE).unwrap();
    let mut session = crate::session::fixtures::seed_session();
    session.username = username;
    session.auth_mode = AuthMode::for_aaa_settings(&profile.aaa);
    let text = vpn_sessiondb_detail_anyconnect(&[session], None, now);
    assert!(text.contains("Username     : client.example.com"), "{text}");
    assert_eq!(
        text.matches("Auth Mode    : Multiple-certificate").count(),
        3
    );
}

#[test]
fn first_certificate_maps_the_machine_certificate_cn() {
    let mut lab = lab();
    let profile = lab
        .config
        .connection_profiles
        .iter_mut()
        .find(|p| p.name == PROFILE)
        .unwrap();
    profile.aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    let username = login(&lab, &lab.user, fixture::seed_now()).unwrap();
    assert_eq!(username, "machine.example.com");
}

#[test]
fn user_certificate_from_a_ca_with_the_same_name_but_another_key_is_refused() {
    let lab = lab();
    let error = login(&lab, &lab.rogue_user, fixture::seed_now()).unwrap_err();
    assert!(
        matches!(
            error,
            ChainError::UnknownIssuer { .. } | ChainError::BadSignature { .. }
        ),
        "{error:?}"
    );
}
