//! `on_init` and `on_mca_reply`: the MCA exchange as openconnect runs it.

use super::*;
use crate::aggauth::CERTIFICATE_VALIDATION_FAILURE;
use crate::cli::vpn_sessiondb_detail_anyconnect;
use crate::mca::McaError;
use crate::session::AuthMode;

#[test]
fn seed_scenario_logs_in_as_the_user_certificate_cn_and_prints_multiple_certificate() {
    let lab = lab().bind_slots();
    let chain = [der(&lab.machine)];
    let admission = admitted(mca_login(&lab, &chain, &lab.user, &lab.user, |r| r));
    assert_eq!(admission.profile.name, PROFILE);
    assert_eq!(admission.username, "client.example.com");
    assert_eq!(
        admission.username_derivation,
        "CN of subject of the second certificate (user)"
    );
    assert_eq!(admission.auth_mode, AuthMode::MultipleCertificate);
    assert_eq!(
        admission.machine_fingerprint,
        Some(crate::pki::fingerprint_sha256(&lab.machine.cert_der))
    );
    assert_eq!(
        admission.user_certificate.as_ref().unwrap().subject,
        "CN=client.example.com"
    );

    let mut session = crate::session::fixtures::seed_session();
    session.username = admission.username;
    session.auth_mode = admission.auth_mode;
    let text = vpn_sessiondb_detail_anyconnect(&[session], None, fixture::seed_now());
    assert!(text.contains("Username     : client.example.com"), "{text}");
    assert_eq!(
        text.matches("Auth Mode    : Multiple-certificate").count(),
        3
    );
}

#[test]
fn a_swapped_pair_is_refused_at_init_when_slots_are_bound_and_gets_no_challenge() {
    let lab = lab().bind_slots();
    let chain = [der(&lab.user)];
    let next = mca_login(&lab, &chain, &lab.machine, &lab.machine, |r| r);
    let Next::Refuse { profile, reason } = next else {
        panic!("expected a refusal, got {next:?}");
    };
    assert_eq!(profile, Some(PROFILE));
    assert!(
        matches!(reason, LoginRefusal::WrongSlot { slot: Slot::Machine, ref trustpoint, .. } if trustpoint == "User-CA"),
        "{reason:?}"
    );
    assert_eq!(reason.client_message(), CERTIFICATE_VALIDATION_FAILURE);
}

#[test]
fn a_reply_with_two_user_chains_is_refused_as_ambiguous() {
    let lab = lab().bind_slots();
    let chain = [der(&lab.machine)];
    let next = mca_login(&lab, &chain, &lab.user, &lab.user, |reply| {
        let start = reply.find("<client-cert-chain cert-store=\"1U\">").unwrap();
        let end = reply.find("</auth>").unwrap();
        let user_chain = reply[start..end].to_owned();
        reply.replace("</auth>", &format!("{user_chain}</auth>"))
    });
    assert_eq!(refused(next), LoginRefusal::SeveralUserChains { count: 2 });
}

#[test]
fn a_user_certificate_with_the_machine_key_is_refused_after_a_valid_signature() {
    let lab = lab();
    let user_with_machine_key = lab
        .user_ca
        .issue_for_key_of(&LeafOptions::client("client.example.com"), &lab.machine)
        .unwrap();
    let chain = [der(&lab.machine)];
    let next = mca_login(
        &lab,
        &chain,
        &user_with_machine_key,
        &user_with_machine_key,
        |r| r,
    );
    assert_eq!(refused(next), LoginRefusal::SameKeyInBothSlots);
}

#[test]
fn a_reply_signed_with_another_key_is_refused() {
    let lab = lab();
    let other = lab
        .user_ca
        .issue(&LeafOptions::client("other.example.com"))
        .unwrap();
    let chain = [der(&lab.machine)];
    let next = mca_login(&lab, &chain, &lab.user, &other, |r| r);
    assert_eq!(refused(next), LoginRefusal::Mca(McaError::BadSignature));
}

#[test]
fn the_machine_certificate_as_user_certificate_is_refused() {
    let lab = lab();
    let chain = [der(&lab.machine)];
    let next = mca_login(&lab, &chain, &lab.machine, &lab.machine, |r| r);
    assert_eq!(
        refused(next),
        LoginRefusal::Mca(McaError::UserCertIsMachineCert)
    );
}

#[test]
fn a_used_challenge_is_refused() {
    let lab = lab();
    let chain = [der(&lab.machine)];
    let context = lab.context(&chain);
    let reply = parse_reply(&testkit::reply_body("00", "AA==", b"sig", "sha512"));
    let next = on_mca_reply(&context, Err(McaError::UnknownHandle), &reply);
    assert_eq!(refused(next), LoginRefusal::Mca(McaError::UnknownHandle));
}

#[test]
fn a_challenge_of_a_profile_that_no_longer_requires_mca_is_refused() {
    let mut lab = lab();
    let chain = [der(&lab.machine)];
    let started = testkit::start();
    let mut store = ChallengeStore::default();
    let body = store
        .issue(PROFILE, "1", &lab.machine.cert_der, started)
        .unwrap();
    lab.profile_mut()
        .aaa
        .enable_multiple_certificate_authentication = false;
    let text = String::from_utf8(body).unwrap();
    let handle = text
        .split("<aggauth-handle>")
        .nth(1)
        .and_then(|rest| rest.split("</aggauth-handle>").next())
        .unwrap();
    let reply = parse_reply(&testkit::reply_body(handle, "AA==", b"sig", "sha512"));
    let challenge = take_challenge(&mut store, &reply, started);
    let next = on_mca_reply(&lab.context(&chain), challenge, &reply);
    assert_eq!(
        refused(next),
        LoginRefusal::ProfileNoLongerMca {
            profile: PROFILE.into()
        }
    );
}

#[test]
fn without_a_machine_certificate_the_client_is_asked_for_one_then_refused() {
    let lab = lab();
    let context = lab.context(&[]);
    assert!(matches!(
        on_init(&context, "/RAVPN-MultiCert", &init(true, false)),
        Next::ClientCertificateRequest
    ));
    let next = on_init(&context, "/RAVPN-MultiCert", &init(true, true));
    assert_eq!(refused(next), LoginRefusal::NoClientCertificate);
}

#[test]
fn a_client_that_does_not_offer_multiple_cert_is_told_mca_is_required() {
    let lab = lab();
    let chain = [der(&lab.machine)];
    let next = on_init(
        &lab.context(&chain),
        "/RAVPN-MultiCert",
        &init(false, false),
    );
    let reason = refused(next);
    assert_eq!(reason, LoginRefusal::McaNotOffered);
    assert_eq!(reason.client_message(), MCA_REQUIRED);
}

#[test]
fn an_unknown_group_is_refused_and_a_bare_url_gets_the_group_list() {
    let lab = lab();
    let chain = [der(&lab.machine)];
    let context = lab.context(&chain);
    let next = on_init(&context, "/Nope", &init(true, false));
    assert_eq!(
        refused(next),
        LoginRefusal::UnknownProfile {
            path: "/Nope".into()
        }
    );
    let mut bare = init(true, false);
    bare.group_access = None;
    let next = on_init(&context, "/", &bare);
    assert!(
        matches!(&next, Next::GroupSelect(aliases) if aliases == &["RAVPN-MultiCert"]),
        "{next:?}"
    );
}

#[test]
fn a_trust_source_that_cannot_load_the_profile_refuses_with_the_reason() {
    let mut lab = lab();
    lab.profile_mut().trustpoints = vec!["Gone-CA".into()];
    let chain = [der(&lab.machine)];
    let next = on_init(&lab.context(&chain), "/RAVPN-MultiCert", &init(true, false));
    let reason = refused(next);
    assert!(
        matches!(reason, LoginRefusal::TrustpointsUnusable(_)),
        "{reason:?}"
    );
    assert!(reason.to_string().contains("Gone-CA"), "{reason}");
}
