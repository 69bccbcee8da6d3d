//! Logins that succeed: the session the operator sees and whose name it carries.

use super::lab::*;

#[test]
fn openconnect_authenticates_with_machine_and_user_certificates() {
    let lab = Lab::start("a");
    let output = run_with_stdin(lab.openconnect(Some(&lab.fixture.user), &["--authenticate"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openconnect --authenticate failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    let cookie_line = stdout
        .lines()
        .find(|l| l.starts_with("COOKIE="))
        .unwrap_or_else(|| panic!("no COOKIE line in {stdout}"));
    let token = cookie_line
        .split("webvpn=")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');
    assert_eq!(token.len(), 64, "{cookie_line}");
    assert!(stdout.contains(&format!("CONNECT_URL='https://localhost:{PORT}/")));
    assert!(stderr.contains("Using secondary certificate 'client.example.com'"));
    assert!(stderr.contains("XML POST enabled"), "{stderr}");
    eprintln!("{stderr}");
    // The cookie is shown once; the log never carries it.
    assert!(!lab.agent_log().contains(token));

    // A login counts as a session right away (it waits for the CONNECT).
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );

    // Without the user certificate there is no `multiple-cert` capability: refused.
    let refused = run_with_stdin(lab.openconnect(None, &["--authenticate"]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Multiple certificate authentication required"),
        "{stderr}"
    );
}

#[test]
fn without_a_group_in_the_url_the_client_picks_the_profile_from_the_offered_list() {
    let lab = Lab::start("g");
    let output = run_with_stdin(lab.openconnect_without_group(
        Some(&lab.fixture.user),
        &["--authenticate", "--authgroup", "RAVPN-MultiCert"],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(stdout.contains("COOKIE="), "{stdout}");
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Tunnel Group : RAVPN-MultiCert"),
        "{detail}"
    );
}

#[test]
fn mca_then_a_local_password_logs_in_as_the_user_certificate_name() {
    let lab = Lab::start("p");
    let args = ["--authenticate", "--usergroup", "RAVPN-MultiCert-AAA"];
    let wrong = run_with_password(
        lab.openconnect_without_group(Some(&lab.fixture.user), &args),
        "wrong",
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Login failed."), "{stderr}");

    let output = run_with_password(
        lab.openconnect_without_group(Some(&lab.fixture.user), &args),
        AAA_PASSWORD,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(!lab.agent_log().contains(AAA_PASSWORD));
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate and userPassword"),
        "{detail}"
    );
}

impl Lab {
    /// Logs in to connection profile `group` with both certificates; the session detail.
    fn login_detail(&self, group: &str) -> String {
        let output = run_with_stdin(self.openconnect_without_group(
            Some(&self.fixture.user),
            &["--authenticate", "--usergroup", group],
        ));
        assert!(
            output.status.success(),
            "{}\nagent:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.agent_log()
        );
        self.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"])
    }
}

#[test]
fn username_from_the_first_certificate_is_the_machine_certificates_cn() {
    let lab = Lab::start("1");
    let detail = lab.login_detail("RAVPN-FirstCert");
    eprintln!("{detail}");
    assert!(
        detail.contains("Username     : machine.example.com "),
        "{detail}"
    );
    assert!(
        detail.contains("Tunnel Group : RAVPN-FirstCert"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate"),
        "{detail}"
    );
    assert!(!detail.contains("client.example.com"), "{detail}");
}

#[test]
fn username_from_the_entire_dn_is_the_machine_certificates_subject() {
    let lab = Lab::start("d");
    let detail = lab.login_detail("RAVPN-EntireDN");
    eprintln!("{detail}");
    assert!(
        detail.contains("Username     : CN=machine.example.com,OU=Laptops,O=Example Corp"),
        "{detail}"
    );
    assert!(detail.contains("Tunnel Group : RAVPN-EntireDN"), "{detail}");
}
