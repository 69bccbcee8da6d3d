//! `evaluate_certificates`: slot binding, distinct keys, username (the bench's view).

use super::*;
use crate::config::UsernameSource;
use crate::pki::{ChainError, TrustStore};

fn evaluate(
    lab: &Lab,
    machine: &TestCert,
    user: &TestCert,
) -> Result<CertificateVerdict, LoginRefusal> {
    let store = TrustStore::for_profile(&lab.config, lab.profile()).unwrap();
    evaluate_certificates(
        lab.profile(),
        &store,
        &[der(machine)],
        Some(&[der(user)]),
        fixture::seed_now(),
    )
}

#[test]
fn a_machine_and_a_user_certificate_of_their_own_slots_give_the_user_certificate_cn() {
    let lab = lab().bind_slots();
    let verdict = evaluate(&lab, &lab.machine, &lab.user).unwrap();
    assert_eq!(verdict.machine.trustpoint, "Machine-CA");
    assert_eq!(verdict.user.as_ref().unwrap().trustpoint, "User-CA");
    assert_eq!(verdict.identity.username, "client.example.com");
    assert_eq!(
        verdict.identity.derivation(),
        "CN of subject of the second certificate (user)"
    );
    let machine = verdict.identity.machine.unwrap();
    assert_eq!(machine.subject, "CN=machine.example.com");
    assert_eq!(verdict.identity.user.unwrap().issuer, "CN=User CA");
}

#[test]
fn a_user_certificate_in_the_machine_slot_is_refused_when_slots_are_bound() {
    let lab = lab().bind_slots();
    let refusal = evaluate(&lab, &lab.user, &lab.machine).unwrap_err();
    assert_eq!(
        refusal,
        LoginRefusal::WrongSlot {
            slot: Slot::Machine,
            trustpoint: "User-CA".into(),
            profile: PROFILE.into(),
            field: "machine_trustpoints",
        }
    );
    assert!(
        refusal
            .to_string()
            .contains("the machine certificate chains to trustpoint \"User-CA\""),
        "{refusal}"
    );
}

#[test]
fn a_machine_certificate_in_the_user_slot_is_refused_when_slots_are_bound() {
    let mut lab = lab();
    // Only the user slot is bound: the machine slot takes either CA.
    lab.profile_mut().user_trustpoints = vec!["User-CA".into()];
    let other_machine = lab
        .machine_ca
        .issue(&LeafOptions::client("laptop-02"))
        .unwrap();
    let refusal = evaluate(&lab, &lab.machine, &other_machine).unwrap_err();
    assert_eq!(
        refusal,
        LoginRefusal::WrongSlot {
            slot: Slot::User,
            trustpoint: "Machine-CA".into(),
            profile: PROFILE.into(),
            field: "user_trustpoints",
        }
    );
}

#[test]
fn swapped_certificates_pass_when_slots_are_not_bound_as_on_fmc() {
    let lab = lab();
    let verdict = evaluate(&lab, &lab.user, &lab.machine).unwrap();
    assert_eq!(verdict.machine.trustpoint, "User-CA");
    assert_eq!(verdict.identity.username, "machine.example.com");
}

#[test]
fn a_trustpoint_bound_to_both_slots_may_issue_both_certificates() {
    let mut lab = lab();
    let profile = lab.profile_mut();
    profile.machine_trustpoints = vec!["Machine-CA".into(), "User-CA".into()];
    profile.user_trustpoints = vec!["User-CA".into()];
    let laptop = lab
        .user_ca
        .issue(&LeafOptions::client("laptop-03"))
        .unwrap();
    let verdict = evaluate(&lab, &laptop, &lab.user).unwrap();
    assert_eq!(verdict.machine.trustpoint, "User-CA");
    assert_eq!(verdict.identity.username, "client.example.com");
}

#[test]
fn the_same_public_key_in_both_slots_is_refused_even_in_two_certificates() {
    let lab = lab();
    let user_with_machine_key = lab
        .user_ca
        .issue_for_key_of(&LeafOptions::client("client.example.com"), &lab.machine)
        .unwrap();
    assert_ne!(user_with_machine_key.cert_der, lab.machine.cert_der);
    let refusal = evaluate(&lab, &lab.machine, &user_with_machine_key).unwrap_err();
    assert_eq!(refusal, LoginRefusal::SameKeyInBothSlots);
    assert_eq!(
        refusal.client_message(),
        crate::aggauth::CERTIFICATE_VALIDATION_FAILURE
    );
}

#[test]
fn a_user_certificate_from_a_ca_with_the_same_name_but_another_key_is_refused() {
    let lab = lab().bind_slots();
    let rogue = TestCa::root("User CA")
        .unwrap()
        .issue(&LeafOptions::client("client.example.com"))
        .unwrap();
    let refusal = evaluate(&lab, &lab.machine, &rogue).unwrap_err();
    assert!(
        matches!(
            refusal,
            LoginRefusal::Chain {
                slot: Slot::User,
                source: ChainError::UnknownIssuer { .. } | ChainError::BadSignature { .. }
            }
        ),
        "{refusal:?}"
    );
}

#[test]
fn an_untrusted_machine_certificate_is_a_chain_failure_of_the_machine_slot() {
    let lab = lab().bind_slots();
    let rogue = TestCa::root("Rogue CA")
        .unwrap()
        .issue(&LeafOptions::client("machine.example.com"))
        .unwrap();
    let refusal = evaluate(&lab, &rogue, &lab.user).unwrap_err();
    assert!(
        matches!(
            refusal,
            LoginRefusal::Chain {
                slot: Slot::Machine,
                source: ChainError::UnknownIssuer { .. }
            }
        ),
        "{refusal:?}"
    );
}

#[test]
fn first_certificate_maps_the_machine_certificate_cn() {
    let mut lab = lab();
    lab.profile_mut().aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
    let verdict = evaluate(&lab, &lab.machine, &lab.user).unwrap();
    assert_eq!(verdict.identity.username, "machine.example.com");
    assert_eq!(
        verdict.identity.derivation(),
        "CN of subject of the first certificate (machine)"
    );
}
