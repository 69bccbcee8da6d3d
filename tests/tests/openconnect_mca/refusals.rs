//! Logins that fail: what openconnect prints, the reason in the agent log, and no session.

use std::path::PathBuf;
use std::process::Command;

use super::lab::*;

#[test]
fn a_user_certificate_from_an_untrusted_ca_is_refused_and_no_session_starts() {
    let lab = Lab::start("r");
    let output =
        run_with_stdin(lab.openconnect(Some(&lab.fixture.rogue_user), &["--authenticate"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Failed to complete authentication"),
        "{stderr}"
    );
    assert!(
        lab.agent_log()
            .contains("Certificate chain failed validation"),
        "{}",
        lab.agent_log()
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

#[test]
fn without_a_machine_certificate_the_client_is_asked_for_one_and_then_refused() {
    let lab = Lab::start("m");
    let mut command = lab.openconnect(Some(&lab.fixture.user), &["--authenticate"]);
    // Same command, minus `-c machine.pem -k machine.key`.
    let args: Vec<std::ffi::OsString> = command.get_args().map(ToOwned::to_owned).collect();
    let mut without = Command::new(command.get_program());
    let mut skip = 0;
    for arg in &args {
        if skip > 0 {
            skip -= 1;
        } else if arg == "-c" || arg == "-k" {
            skip = 1;
        } else {
            without.arg(arg);
        }
    }
    command = without;
    let output = run_with_stdin(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Server requested SSL client certificate; none was configured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Failed to complete authentication"),
        "{stderr}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

/// Runs `openconnect --authenticate` with `user` as the MCA certificate and key, and
/// checks what the user sees: exit code 1, the server's certificate error, no session.
/// Returns openconnect's stderr and the agent log.
fn refused_login(lab: &Lab, user: &(PathBuf, PathBuf)) -> (String, String) {
    refused_run(lab, lab.openconnect(Some(user), &["--authenticate"]))
}

/// Runs `command` (an `openconnect --authenticate`) and checks that the login failed
/// as [`refused_login`] does.
fn refused_run(lab: &Lab, command: Command) -> (String, String) {
    let output = run_with_stdin(command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let log = lab.agent_log();
    let report = format!("openconnect stderr:\n{stderr}\nagent:\n{log}");
    eprintln!("{report}");
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("COOKIE="),
        "{report}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(
        !summary.contains("Username"),
        "no session expected:\n{summary}"
    );
    (stderr, log)
}

#[test]
fn an_expired_user_certificate_is_refused_with_the_expiry_in_the_log() {
    let lab = Lab::start("e");
    let (stderr, log) = refused_login(&lab, &lab.fixture.expired_user);
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(log.contains("Certificate chain failed validation"), "{log}");
    assert!(log.contains("expired on 2025-06-01"), "{log}");
}

/// openconnect 9.01 checks the pair itself: with `--mca-key` not matching
/// `--mca-certificate` it stops before answering the MCA challenge, so the headend never
/// sees a signature from the wrong key. The headend's refusal of such a reply is tested
/// with a hand-made reply in `headend::auth::tests::
/// mca_reply_signed_with_another_key_is_refused_and_the_right_key_logs_in`; the refusal
/// of a bad signature with the real client is
/// [`a_user_certificate_whose_issuer_signature_is_bad_is_refused`].
#[test]
fn openconnect_refuses_to_sign_with_a_key_that_does_not_match_the_user_certificate() {
    let lab = Lab::start("w");
    let (stderr, log) = refused_login(&lab, &lab.fixture.user_with_other_key);
    assert!(
        stderr.contains("No secondary certificate found to match private key"),
        "{stderr}"
    );
    assert!(
        !log.contains("Multiple certificate authentication"),
        "{log}"
    );
}

#[test]
fn a_user_certificate_whose_issuer_signature_is_bad_is_refused() {
    let lab = Lab::start("f");
    let (stderr, log) = refused_login(&lab, &lab.fixture.forged_user);
    assert!(
        stderr.contains("Using secondary certificate 'client.example.com'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(log.contains("Certificate chain failed validation"), "{log}");
    assert!(log.contains("do not verify"), "{log}");
}

#[test]
fn the_machine_certificate_as_user_certificate_is_refused() {
    let lab = Lab::start("s");
    let machine = lab.fixture.machine.clone();
    let (stderr, log) = refused_login(&lab, &machine);
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(
        log.contains("the user certificate is the machine certificate"),
        "{log}"
    );
}

/// `command` with `-c`/`-k` (the TLS certificate, the machine slot) replaced by `tls`.
fn with_tls_certificate(command: &Command, tls: &(PathBuf, PathBuf)) -> Command {
    let mut swapped = Command::new(command.get_program());
    let mut replace: Option<&PathBuf> = None;
    for arg in command.get_args() {
        if let Some(path) = replace.take() {
            swapped.arg(path);
            continue;
        }
        if arg == "-c" {
            replace = Some(&tls.0);
        } else if arg == "-k" {
            replace = Some(&tls.1);
        }
        swapped.arg(arg);
    }
    swapped
}

/// The user certificate in the TLS handshake (`-c`) and the machine certificate as
/// `--mca-certificate`. `RAVPN-MultiCert` binds its machine slot to MACHINE-CA and its
/// user slot to USER-CA: the headend refuses at init, before any MCA challenge.
/// `RAVPN-FirstCert` binds nothing and, as on FMC, lets the same pair in.
#[test]
fn a_swapped_pair_is_refused_when_the_profile_binds_the_mca_slots() {
    let lab = Lab::start("x");
    let f = &lab.fixture;
    let bound = with_tls_certificate(
        &lab.openconnect(Some(&f.machine), &["--authenticate"]),
        &f.user,
    );
    let (stderr, log) = refused_run(&lab, bound);
    assert!(
        stderr.contains("Using client certificate 'client.example.com'"),
        "{stderr}"
    );
    assert!(
        log.contains(
            "Multiple certificate authentication rejected: the machine certificate chains to trustpoint \"USER-CA\""
        ),
        "{log}"
    );
    assert!(!log.contains("login accepted"), "{log}");

    let unbound = with_tls_certificate(
        &lab.openconnect_without_group(
            Some(&f.machine),
            &["--usergroup", "RAVPN-FirstCert", "--authenticate"],
        ),
        &f.user,
    );
    let output = run_with_stdin(unbound);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("COOKIE="),
        "{stdout}\n{}\nagent:\n{}",
        String::from_utf8_lossy(&output.stderr),
        lab.agent_log()
    );
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("Tunnel Group : RAVPN-FirstCert"),
        "{detail}"
    );
}

/// The lab's configuration at `version` with revocation on for USER-CA: `crls_pem` holds
/// the user CA's CRL and its issuing CA's (an intermediate the trustpoint does not hold).
fn with_user_crls(lab: &Lab, version: u64, crls_pem: &str) -> PathBuf {
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lab.fixture.config).unwrap()).unwrap();
    config["version"] = serde_json::json!(version);
    for trustpoint in config["trustpoints"].as_array_mut().unwrap() {
        if trustpoint["name"] == "USER-CA" {
            trustpoint["revocation"] = serde_json::json!({ "mode": "CRL", "crls_pem": crls_pem });
        }
    }
    let path = lab
        .fixture
        .dir
        .path()
        .join(format!("device-{version}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// A user certificate from an intermediate CA, sent with the intermediate in the MCA
/// PKCS#7: with revocation on, the intermediate's CRL (verified against the
/// intermediate) lets it in, and once that CRL revokes it the login is refused.
#[test]
fn a_user_certificate_from_an_intermediate_logs_in_with_revocation_on_until_it_is_revoked() {
    let lab = Lab::start("i");
    let user = lab.fixture.intermediate_user.clone();
    let clean = with_user_crls(&lab, 8, &lab.fixture.user_crls_pem);
    let applied = lab.operator(&["configure", "apply", clean.to_str().unwrap()]);
    assert!(applied.contains("version 8 applied"), "{applied}");
    let output = run_with_stdin(lab.openconnect(Some(&user), &["--authenticate"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("COOKIE="),
        "{stdout}\n{}\nagent:\n{}",
        String::from_utf8_lossy(&output.stderr),
        lab.agent_log()
    );
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : intermediate.example.com"),
        "{detail}"
    );
    lab.operator(&["vpn-sessiondb", "logoff", "all", "noconfirm"]);

    let revoking = with_user_crls(&lab, 9, &lab.fixture.user_crls_revoking_pem);
    let applied = lab.operator(&["configure", "apply", revoking.to_str().unwrap()]);
    assert!(applied.contains("version 9 applied"), "{applied}");
    let (stderr, log) = refused_login(&lab, &user);
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(log.contains("is revoked since"), "{log}");
}
