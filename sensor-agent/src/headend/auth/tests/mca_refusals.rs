//! MCA refusals openconnect cannot be made to send (two `1U` chains, the machine key in
//! the user certificate), built by hand; and slot binding, with the FTD syslog line.

use super::*;

/// A world whose `RAVPN-MCA` profile trusts a machine CA and a user CA and binds each
/// to its slot.
struct Bound {
    world: World,
    machine_ca: TestCa,
    user_ca: TestCa,
    machine: TestCert,
    user: TestCert,
}

fn bound() -> Bound {
    let machine_ca = TestCa::root("Bound Machine CA").unwrap();
    let user_ca = TestCa::root("Bound User CA").unwrap();
    let machine = machine_ca
        .issue(&LeafOptions::client("laptop.example.com"))
        .unwrap();
    let user = user_ca
        .issue(&LeafOptions::client("alice.example.com"))
        .unwrap();
    let trustpoint = |name: &str, ca: &TestCa| Trustpoint {
        name: name.to_owned(),
        ca_certificates_pem: ca.cert.cert_pem.clone(),
        validation_usage: Default::default(),
        skip_ca_flag_check: false,
        require_client_auth_eku: true,
        revocation: Default::default(),
    };
    let trustpoints = vec![
        trustpoint("MACHINE-CA", &machine_ca),
        trustpoint("USER-CA", &user_ca),
    ];
    let world = world(move |config| {
        config.trustpoints = trustpoints;
        for profile in &mut config.connection_profiles {
            profile.trustpoints = vec!["MACHINE-CA".to_owned(), "USER-CA".to_owned()];
        }
        let mca = &mut config.connection_profiles[0];
        mca.machine_trustpoints = vec!["MACHINE-CA".to_owned()];
        mca.user_trustpoints = vec!["USER-CA".to_owned()];
    });
    Bound {
        world,
        machine_ca,
        user_ca,
        machine,
        user,
    }
}

/// Answers `request` with `logs` listening; the body.
fn answer_logged(
    logs: &crate::testing::logs::Logs,
    world: &World,
    conn: &Connection,
    request: &Request,
) -> String {
    tracing::subscriber::with_default(logs.subscriber(LevelFilter::INFO), || {
        // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
        tracing::callsite::rebuild_interest_cache();
        answer(world, conn, request).1
    })
}

fn challenge(world: &World, conn: &Connection) -> String {
    let (_, body) = answer(world, conn, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
    assert!(body.contains("<multiple-client-cert-request>"), "{body}");
    body
}

/// The MCA refusal's syslog line: FTD's 716039 with the reason.
fn assert_mca_rejected(logs: &crate::testing::logs::Logs, reason: &str) {
    let line = logs.event(&format!(
        "Multiple certificate authentication rejected: {reason}"
    ));
    assert_eq!(line.fields["syslog_id"], "716039");
    assert_eq!(line.fields["group"], "RAVPN-MCA");
}

#[test]
fn an_mca_reply_with_two_user_chains_is_refused_as_ambiguous_and_logged() {
    let b = bound();
    let conn = connection(Some(&b.machine));
    let body = challenge(&b.world, &conn);
    let other = b
        .user_ca
        .issue(&LeafOptions::client("mallory.example.com"))
        .unwrap();
    let reply = mca_reply(&body, &b.user, &b.user.key_pem);
    let second = mca_reply(&body, &other, &other.key_pem);
    let user_chain = |reply: &str| {
        let start = reply.find("<client-cert-chain cert-store=\"1U\">").unwrap();
        reply[start..reply.find("</auth>").unwrap()].to_owned()
    };
    let two = reply.replace("</auth>", &format!("{}</auth>", user_chain(&second)));
    let logs = crate::testing::logs::Logs::default();
    let refused = answer_logged(&logs, &b.world, &conn, &post("/RAVPN-MCA", two));
    assert!(
        refused.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{refused}"
    );
    assert!(b.world.sessions.sessions().is_empty());
    assert_mca_rejected(
        &logs,
        "the auth-reply carries 2 user (1U) certificate chains; exactly one is expected",
    );
}

#[test]
fn a_user_certificate_with_the_machine_key_is_refused_and_logged() {
    let b = bound();
    let conn = connection(Some(&b.machine));
    let body = challenge(&b.world, &conn);
    let same_key = b
        .user_ca
        .issue_for_key_of(&LeafOptions::client("alice.example.com"), &b.machine)
        .unwrap();
    let reply = mca_reply(&body, &same_key, &same_key.key_pem);
    let logs = crate::testing::logs::Logs::default();
    let refused = answer_logged(&logs, &b.world, &conn, &post("/RAVPN-MCA", reply));
    assert!(
        refused.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{refused}"
    );
    assert!(b.world.sessions.sessions().is_empty());
    assert_mca_rejected(
        &logs,
        "the machine and the user certificate have the same public key",
    );
}

#[test]
fn a_user_certificate_in_the_machine_slot_gets_no_challenge_when_slots_are_bound() {
    let b = bound();
    let swapped = connection(Some(&b.user));
    let logs = crate::testing::logs::Logs::default();
    let refused = answer_logged(
        &logs,
        &b.world,
        &swapped,
        &post("/RAVPN-MCA", init("RAVPN-MCA", true)),
    );
    assert!(
        refused.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{refused}"
    );
    assert!(b.world.headend.challenges().is_empty());
    assert_mca_rejected(
        &logs,
        "the machine certificate chains to trustpoint \"USER-CA\", which connection profile \"RAVPN-MCA\" does not allow for machine certificates (machine_trustpoints)",
    );
}

#[test]
fn a_machine_certificate_in_the_user_slot_is_refused_and_a_bound_pair_logs_in() {
    let b = bound();
    let conn = connection(Some(&b.machine));
    let second_machine = b
        .machine_ca
        .issue(&LeafOptions::client("laptop-2.example.com"))
        .unwrap();
    let body = challenge(&b.world, &conn);
    let reply = mca_reply(&body, &second_machine, &second_machine.key_pem);
    let logs = crate::testing::logs::Logs::default();
    let refused = answer_logged(&logs, &b.world, &conn, &post("/RAVPN-MCA", reply));
    assert!(
        refused.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{refused}"
    );
    assert_mca_rejected(
        &logs,
        "the user certificate chains to trustpoint \"MACHINE-CA\", which connection profile \"RAVPN-MCA\" does not allow for user certificates (user_trustpoints)",
    );

    let body = challenge(&b.world, &conn);
    let reply = mca_reply(&body, &b.user, &b.user.key_pem);
    let (_, done) = answer(&b.world, &conn, &post("/RAVPN-MCA", reply));
    assert!(done.contains("type=\"complete\""), "{done}");
    let sessions = b.world.sessions.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].username, "alice.example.com");
    assert_eq!(
        sessions[0].username_derivation,
        "CN of subject of the second certificate (user)"
    );
}
