use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use rustls::pki_types::CertificateDer;
use tracing::level_filters::LevelFilter;
use vpn_core::aggauth::CERTIFICATE_VALIDATION_FAILURE;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, GroupAlias, GroupUrl, IdentityCertificate, LocalUser,
    PrivateKeyPem, Trustpoint,
};
use vpn_core::login::{Selection, select_profile};
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestCert};
use vpn_core::pool::PoolSet;
use vpn_core::session::AuthMode;

use super::*;
use crate::dataplane::Router;
use crate::headend::HeadendSettings;
use crate::headend::tls::NegotiatedTls;
use crate::sessions::{SessionDb, SessionDbSettings};
use crate::testing::sample_config;

const PASSWORD: &str = "s3cret";

fn password_hash(password: &str) -> String {
    // Cheap parameters: the test checks the verification, not the cost.
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("c2Vuc29yLWFnZW50LXRlc3Q").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn profile(name: &str, method: AuthenticationMethod, mca: bool) -> ConnectionProfile {
    let mut aaa = AaaSettings::new(method);
    aaa.enable_multiple_certificate_authentication = mca;
    ConnectionProfile {
        name: name.to_owned(),
        group_policy: "GP-MCA".to_owned(),
        ipv4_pools: vec!["POOL4".to_owned()],
        ipv6_pools: Vec::new(),
        aaa,
        trustpoints: vec!["MACHINE-CA".to_owned()],
        machine_trustpoints: Vec::new(),
        user_trustpoints: Vec::new(),
        group_aliases: vec![GroupAlias {
            name: name.to_owned(),
            enabled: true,
        }],
        group_urls: Vec::new(),
    }
}

struct World {
    headend: Arc<Headend>,
    sessions: SessionDb,
    machine: TestCert,
    rogue: TestCert,
    /// A user certificate of the trusted CA, for MCA replies.
    user: TestCert,
    /// Another certificate of the same CA: its key is not the user's.
    other: TestCert,
}

fn world(edit: impl FnOnce(&mut DeviceConfig)) -> World {
    let machine_ca = TestCa::root("Test Machine CA").unwrap();
    let machine = machine_ca
        .issue(&LeafOptions::client("machine.example.com"))
        .unwrap();
    let user = machine_ca
        .issue(&LeafOptions::client("client.example.com"))
        .unwrap();
    let other = machine_ca
        .issue(&LeafOptions::client("other.example.com"))
        .unwrap();
    let rogue = TestCa::root("Rogue CA")
        .unwrap()
        .issue(&LeafOptions::client("machine.example.com"))
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&server_key)
        .unwrap();
    let mut config = sample_config();
    config.headend.identity = IdentityCertificate {
        trustpoint: "FTD-ID".to_owned(),
        certificate_chain_pem: server.pem(),
        private_key_pem: PrivateKeyPem(server_key.serialize_pem()),
    };
    config.trustpoints = vec![Trustpoint {
        name: "MACHINE-CA".to_owned(),
        ca_certificates_pem: machine_ca.cert.cert_pem,
        validation_usage: Default::default(),
        skip_ca_flag_check: false,
        require_client_auth_eku: true,
        revocation: Default::default(),
    }];
    config.connection_profiles = vec![
        profile(
            "RAVPN-MCA",
            AuthenticationMethod::ClientCertificateOnly,
            true,
        ),
        profile("RAVPN-AAA", AuthenticationMethod::AaaOnly, false),
        profile(
            "RAVPN-CERT-AAA",
            AuthenticationMethod::AaaAndClientCertificate,
            false,
        ),
    ];
    config.local_users = vec![
        LocalUser {
            name: "alice".to_owned(),
            password_hash: password_hash(PASSWORD),
        },
        LocalUser {
            name: "machine.example.com".to_owned(),
            password_hash: password_hash(PASSWORD),
        },
    ];
    edit(&mut config);
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&config).unwrap(),
        SessionDbSettings::default(),
    );
    let (router, _tun) = Router::new(4, 4);
    let (_updates, config) = tokio::sync::watch::channel(Arc::new(config));
    let headend = Headend::new(
        config,
        sessions.clone(),
        router,
        HeadendSettings {
            disconnected_timeout_secs: 1800,
        },
    )
    .unwrap();
    World {
        headend,
        sessions,
        machine,
        rogue,
        user,
        other,
    }
}

fn connection(client: Option<&TestCert>) -> Connection {
    Connection {
        peer: "192.0.2.7:50000".parse().unwrap(),
        local: "198.51.100.1:443".parse().unwrap(),
        tls: NegotiatedTls {
            version: "TLSv1.3",
            cipher_suite: "TLS_AES_256_GCM_SHA384".to_owned(),
            client_chain: client
                .map(|c| vec![CertificateDer::from(c.cert_der.clone())])
                .unwrap_or_default(),
        },
        server_cert_sha1: "0123456789ABCDEF0123456789ABCDEF01234567".to_owned(),
        dtls_psk: None,
    }
}

fn post(path: &str, body: String) -> Request {
    Request {
        method: "POST".to_owned(),
        path: path.to_owned(),
        headers: vec![(
            "user-agent".to_owned(),
            "Open AnyConnect VPN Agent v9.01-3".to_owned(),
        )],
        body: body.into_bytes(),
    }
}

fn init(group: &str, multiple_cert: bool) -> String {
    let mca = if multiple_cert {
        "<auth-method>multiple-cert</auth-method>"
    } else {
        ""
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><capabilities><auth-method>single-sign-on-v2</auth-method>{mca}</capabilities><group-access>https://localhost:8443/{group}</group-access></config-auth>"
    )
}

fn password_reply(form: &str, username: Option<&str>, password: &str) -> String {
    let handle = between(form, "<aggauth-handle>", "</aggauth-handle>");
    let group = between(form, "<tunnel-group>", "</tunnel-group>");
    let username = username
        .map(|u| format!("<username>{u}</username>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-reply\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><opaque is-for=\"sg\"><tunnel-group>{group}</tunnel-group><aggauth-handle>{handle}</aggauth-handle></opaque><auth>{username}<password>{password}</password></auth></config-auth>"
    )
}

/// Runs the openssl CLI (rcgen cannot build PKCS#7 bags or sign arbitrary bytes) in
/// `dir`; its stdout.
fn openssl(dir: &std::path::Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The MCA auth-reply openconnect would send for `challenge`: `bag_cert` in a PKCS#7
/// bag and a SHA-256 signature of the challenge body made with `signing_key_pem`.
fn mca_reply(challenge: &str, bag_cert: &TestCert, signing_key_pem: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user.pem"), &bag_cert.cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), signing_key_pem).unwrap();
    std::fs::write(dir.path().join("body"), challenge).unwrap();
    let bag = openssl(
        dir.path(),
        &[
            "crl2pkcs7",
            "-nocrl",
            "-certfile",
            "user.pem",
            "-outform",
            "DER",
        ],
        b"",
    );
    let signature = openssl(
        dir.path(),
        &["dgst", "-sha256", "-sign", "key.pem", "body"],
        b"",
    );
    let base64 =
        |bytes: &[u8]| String::from_utf8(openssl(dir.path(), &["base64", "-A"], bytes)).unwrap();
    let start = challenge.find("<opaque").unwrap();
    let end = challenge.find("</opaque>").unwrap() + "</opaque>".len();
    let opaque = &challenge[start..end];
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<config-auth client=\"vpn\" type=\"auth-reply\" aggregate-auth-version=\"2\"><version who=\"vpn\">v9.01-3</version><device-id>linux-64</device-id><capabilities><auth-method>multiple-cert</auth-method></capabilities><session-token/><session-id/>{opaque}<auth><client-cert-chain cert-store=\"1M\"><client-cert-sent-via-protocol/></client-cert-chain><client-cert-chain cert-store=\"1U\"><client-cert cert-format=\"pkcs7\">{}</client-cert><client-cert-auth-signature hash-algorithm-chosen=\"sha256\">{}</client-cert-auth-signature></client-cert-chain></auth></config-auth>",
        base64(&bag),
        base64(&signature)
    )
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap() + open.len();
    let end = start + text[start..].find(close).unwrap();
    &text[start..end]
}

fn answer(world: &World, connection: &Connection, request: &Request) -> (Response, String) {
    let response = handle_post(
        &world.headend,
        connection,
        request,
        OffsetDateTime::now_utc(),
        Instant::now(),
    );
    let body = String::from_utf8(response.body.clone()).unwrap();
    (response, body)
}

#[test]
fn profile_is_chosen_by_path_group_url_or_group_select_and_disabled_aliases_fail() {
    let mut config = sample_config();
    let mut first = profile(
        "RAVPN-MCA",
        AuthenticationMethod::ClientCertificateOnly,
        true,
    );
    first.group_urls = vec![GroupUrl {
        url: "https://vpn.example.com/mca".to_owned(),
        enabled: true,
    }];
    let mut second = profile("RAVPN-AAA", AuthenticationMethod::AaaOnly, false);
    second.group_aliases.push(GroupAlias {
        name: "old".to_owned(),
        enabled: false,
    });
    config.connection_profiles = vec![first, second];
    let name = |s: Selection<'_>| match s {
        Selection::Profile(p) => p.name.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(
        name(select_profile(&config, "/RAVPN-MCA", None, None)),
        "RAVPN-MCA"
    );
    assert_eq!(
        name(select_profile(&config, "/mca", None, None)),
        "RAVPN-MCA"
    );
    assert_eq!(
        name(select_profile(
            &config,
            "/",
            Some("https://x:8443/RAVPN-AAA"),
            None
        )),
        "RAVPN-AAA"
    );
    assert_eq!(
        name(select_profile(
            &config,
            "/",
            Some("https://x/"),
            Some("RAVPN-AAA")
        )),
        "RAVPN-AAA"
    );
    assert_eq!(
        select_profile(&config, "/old", None, None),
        Selection::Refused
    );
    assert_eq!(
        select_profile(&config, "/nope", None, None),
        Selection::Refused
    );
    assert_eq!(
        select_profile(&config, "/", None, Some("old")),
        Selection::Refused
    );
    assert_eq!(
        select_profile(&config, "/", Some("https://x/"), None),
        Selection::AskGroup(vec!["RAVPN-MCA", "RAVPN-AAA"])
    );
    config.headend.allow_profile_selection = false;
    assert_eq!(select_profile(&config, "/", None, None), Selection::Refused);
}

#[test]
fn mca_profile_asks_for_the_machine_certificate_then_requires_multiple_cert() {
    let world = world(|_| {});
    let (_, body) = answer(
        &world,
        &connection(None),
        &post("/RAVPN-MCA", init("RAVPN-MCA", true)),
    );
    assert!(body.contains("<client-cert-request>"), "{body}");

    let with_cert = connection(Some(&world.machine));
    let (_, body) = answer(
        &world,
        &with_cert,
        &post("/RAVPN-MCA", init("RAVPN-MCA", false)),
    );
    assert!(body.contains(MCA_REQUIRED), "{body}");
    assert!(!body.contains("multiple-client-cert-request"));

    let (_, body) = answer(
        &world,
        &with_cert,
        &post("/RAVPN-MCA", init("RAVPN-MCA", true)),
    );
    assert!(body.contains("<multiple-client-cert-request>"), "{body}");
    assert!(body.contains("<cert-authenticated></cert-authenticated>"));
    assert_eq!(world.headend.challenges().len(), 1);
}

#[test]
fn mca_reply_signed_with_another_key_is_refused_and_the_right_key_logs_in() {
    let world = world(|_| {});
    let conn = connection(Some(&world.machine));
    let challenge = |world: &World| {
        let (_, body) = answer(world, &conn, &post("/RAVPN-MCA", init("RAVPN-MCA", true)));
        assert!(body.contains("<multiple-client-cert-request>"), "{body}");
        body
    };

    // openconnect refuses to sign with a key that does not match the certificate, so
    // only a hand-made reply can show the headend's side.
    let body = challenge(&world);
    let forged = mca_reply(&body, &world.user, &world.other.key_pem);
    let (_, refused) = answer(&world, &conn, &post("/RAVPN-MCA", forged));
    assert!(
        refused.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{refused}"
    );
    assert!(world.sessions.sessions().is_empty());
    // The challenge was used up by the refused reply.
    let replay = mca_reply(&body, &world.user, &world.user.key_pem);
    let (_, replayed) = answer(&world, &conn, &post("/RAVPN-MCA", replay));
    assert!(
        replayed.contains(CERTIFICATE_VALIDATION_FAILURE),
        "{replayed}"
    );
    assert!(world.sessions.sessions().is_empty());

    let body = challenge(&world);
    let signed = mca_reply(&body, &world.user, &world.user.key_pem);
    let (_, done) = answer(&world, &conn, &post("/RAVPN-MCA", signed));
    assert!(done.contains("type=\"complete\""), "{done}");
    let sessions = world.sessions.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].username, "client.example.com");
    assert_eq!(sessions[0].auth_mode, AuthMode::MultipleCertificate);
}

#[test]
fn machine_certificate_from_an_untrusted_ca_gets_no_challenge() {
    let world = world(|_| {});
    let (response, body) = answer(
        &world,
        &connection(Some(&world.rogue)),
        &post("/RAVPN-MCA", init("RAVPN-MCA", true)),
    );
    assert_eq!(response.status, 200);
    assert!(body.contains(CERTIFICATE_VALIDATION_FAILURE), "{body}");
    assert!(world.headend.challenges().is_empty());
}

#[test]
fn aaa_only_login_checks_the_local_password_and_sets_the_webvpn_cookie() {
    let world = world(|_| {});
    let conn = connection(None);
    let (_, form) = answer(&world, &conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
    assert!(form.contains("name=\"username\""), "{form}");
    assert!(form.contains("name=\"password\""), "{form}");

    let (_, refused) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, Some("alice"), "wrong")),
    );
    assert!(refused.contains(LOGIN_FAILED), "{refused}");
    // The handle was used up by the failed attempt.
    let (_, replay) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, Some("alice"), PASSWORD)),
    );
    assert!(replay.contains(LOGIN_FAILED), "{replay}");
    assert!(world.sessions.sessions().is_empty());

    let (_, form) = answer(&world, &conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
    let (response, done) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, Some("alice"), PASSWORD)),
    );
    assert!(done.contains("type=\"complete\""), "{done}");
    let token = between(&done, "<session-token>", "</session-token>").to_owned();
    assert!(response.headers.contains(&(
        "Set-Cookie",
        format!("webvpn={token}; path=/; Secure; HttpOnly")
    )));
    let sessions = world.sessions.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].username, "alice");
    assert_eq!(sessions[0].auth_mode, AuthMode::UserPassword);
    assert_eq!(
        sessions[0].client.version,
        "Open AnyConnect VPN Agent v9.01-3"
    );
    assert!(
        world
            .sessions
            .authenticate_cookie(&token, None, OffsetDateTime::now_utc())
            .is_ok()
    );
}

#[test]
fn a_reply_without_credentials_is_refused_and_leaves_the_waiting_login() {
    let world = world(|_| {});
    let conn = connection(None);
    let (_, form) = answer(&world, &conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
    let empty = password_reply(&form, Some("alice"), PASSWORD)
        .replace(&format!("<password>{PASSWORD}</password>"), "");
    let (_, refused) = answer(&world, &conn, &post("/", empty));
    assert!(refused.contains(LOGIN_FAILED), "{refused}");
    let (_, done) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, Some("alice"), PASSWORD)),
    );
    assert!(done.contains("type=\"complete\""), "{done}");
}

#[test]
fn certificate_and_aaa_with_hidden_username_logs_in_as_the_mapped_name() {
    let world = world(|config| {
        let profile = &mut config.connection_profiles[2];
        profile.aaa.hide_username = true;
    });
    let conn = connection(Some(&world.machine));
    let (_, form) = answer(
        &world,
        &conn,
        &post("/RAVPN-CERT-AAA", init("RAVPN-CERT-AAA", false)),
    );
    assert!(!form.contains("name=\"username\""), "{form}");
    assert!(form.contains("name=\"password\""), "{form}");

    // Another machine certificate cannot finish this login.
    let (_, other) = answer(
        &world,
        &connection(Some(&world.rogue)),
        &post("/", password_reply(&form, None, PASSWORD)),
    );
    assert!(other.contains(LOGIN_FAILED), "{other}");

    let (_, form) = answer(
        &world,
        &conn,
        &post("/RAVPN-CERT-AAA", init("RAVPN-CERT-AAA", false)),
    );
    let (_, done) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, None, PASSWORD)),
    );
    assert!(done.contains("<auth id=\"success\">"), "{done}");
    let session = &world.sessions.sessions()[0];
    assert_eq!(session.username, "machine.example.com");
    assert_eq!(session.auth_mode, AuthMode::CertificateAndUserPassword);
    assert_eq!(
        session.machine_certificate.as_ref().unwrap().subject,
        "CN=machine.example.com"
    );
}

#[test]
fn a_typed_username_must_match_the_certificate_when_it_is_visible() {
    let world = world(|config| {
        config.connection_profiles[2].aaa.prefill_username = true;
    });
    let conn = connection(Some(&world.machine));
    let (_, form) = answer(
        &world,
        &conn,
        &post("/RAVPN-CERT-AAA", init("RAVPN-CERT-AAA", false)),
    );
    assert!(form.contains("value=\"machine.example.com\""), "{form}");
    let (_, refused) = answer(
        &world,
        &conn,
        &post("/", password_reply(&form, Some("alice"), PASSWORD)),
    );
    assert!(refused.contains(LOGIN_FAILED), "{refused}");
    assert!(world.sessions.sessions().is_empty());
}

#[test]
fn passwords_are_checked_against_local_argon2_hashes_only() {
    let mut config = sample_config();
    config.local_users = vec![
        LocalUser {
            name: "alice".to_owned(),
            password_hash: password_hash(PASSWORD),
        },
        LocalUser {
            name: "broken".to_owned(),
            password_hash: "not-a-phc-string".to_owned(),
        },
    ];
    let mut local = profile("P", AuthenticationMethod::AaaOnly, false);
    assert!(check_password(&config, &local, "alice", PASSWORD));
    assert!(!check_password(&config, &local, "alice", "Secret"));
    assert!(!check_password(&config, &local, "bob", PASSWORD));
    assert!(!check_password(&config, &local, "broken", PASSWORD));
    local.aaa.authentication_server = AuthenticationServer::Radius {
        server_group: "ISE".to_owned(),
    };
    assert!(!check_password(&config, &local, "alice", PASSWORD));
    local.aaa.fallback_to_local = true;
    assert!(check_password(&config, &local, "alice", PASSWORD));
}

#[test]
fn unreadable_bodies_and_unknown_groups_get_an_error_form() {
    let world = world(|_| {});
    let conn = connection(None);
    let (_, body) = answer(&world, &conn, &post("/", "not xml".to_owned()));
    assert!(body.contains(LOGIN_FAILED), "{body}");
    let (_, body) = answer(&world, &conn, &post("/nope", init("nope", true)));
    assert!(body.contains(LOGIN_FAILED), "{body}");
    let (_, body) = answer(
        &world,
        &conn,
        &post(
            "/",
            init("", true).replace("<group-access>https://localhost:8443/</group-access>", ""),
        ),
    );
    assert!(body.contains("group_list"), "{body}");
}

/// Logs in `alice` on the AAA-only profile inside a connection's span, with `logs`
/// keeping what is logged up to `level`; the session's index.
fn login_logged(logs: &crate::testing::logs::Logs, level: LevelFilter) -> u32 {
    let world = world(|_| {});
    let conn = connection(None);
    tracing::subscriber::with_default(logs.subscriber(level), || {
        // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
        tracing::callsite::rebuild_interest_cache();
        let _in_connection = super::super::connection_span(conn.peer).entered();
        let (_, form) = answer(&world, &conn, &post("/RAVPN-AAA", init("RAVPN-AAA", false)));
        let (_, done) = answer(
            &world,
            &conn,
            &post("/", password_reply(&form, Some("alice"), PASSWORD)),
        );
        assert!(done.contains("type=\"complete\""), "{done}");
    });
    world.sessions.sessions()[0].index
}

#[test]
fn a_login_is_logged_in_its_connection_and_session_spans_without_the_user_at_info() {
    let logs = crate::testing::logs::Logs::default();
    let index = login_logged(&logs, LevelFilter::INFO);
    let accepted = logs.event("login accepted");
    let names: Vec<&str> = accepted.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["vpn_connection", "vpn_session"]);
    let (connection, session) = (&accepted.spans[0].fields, &accepted.spans[1].fields);
    assert_eq!(connection["peer"], "192.0.2.7:50000");
    assert!(connection["connection"].parse::<u64>().is_ok());
    assert_eq!(session["session"], index.to_string());
    assert!(!session.contains_key("user"), "{session:?}");
    assert_eq!(accepted.fields["group"], "RAVPN-AAA");
    // The FTD syslog line names the user, as FTD's does, in the same spans.
    let syslog = logs.event(
        "Group <GP-MCA> User <alice> IP <192.0.2.7> Authentication: successful, Session Type: WebVPN.",
    );
    assert_eq!(syslog.spans.len(), 2);
}

#[test]
fn the_session_span_names_the_user_when_debug_is_on() {
    let logs = crate::testing::logs::Logs::default();
    login_logged(&logs, LevelFilter::DEBUG);
    let accepted = logs.event("login accepted");
    assert_eq!(accepted.spans[1].fields["user"], "alice");
}

mod bounds;
mod mca_refusals;
