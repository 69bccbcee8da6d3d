//! The web UI in a real headless Chromium (Debian's `chromium` + `chromedriver`),
//! against the real router served over HTTPS by a management center with its own
//! throw-away PostgreSQL cluster. A missing browser fails the tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use e2e::browser::Browser;
use mgmt_server::server::{ManagementCenter, ServerSettings};
use mgmt_server::ui::{self, UiContext};
use vpn_core::pki::testpki::{LeafOptions, TestCa};

/// A running management center with the UI mounted, and its address.
struct Manager {
    base: String,
    center: Arc<ManagementCenter>,
    _data: tempfile::TempDir,
}

async fn start_manager() -> Manager {
    let data = tempfile::Builder::new()
        .prefix("ui-test-")
        .tempdir()
        .unwrap();
    let center = ManagementCenter::start(&ServerSettings {
        data_dir: data.path().to_owned(),
        database_url: None,
        manager_name: "fmc-ui-test".to_owned(),
        server_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        initial_admin: None,
        workers: mgmt_server::deploy::WorkerSettings::for_this_process(),
        database_owner_url: None,
        allow_superuser: false,
        secret_key_file: None,
    })
    .await
    .unwrap();
    let center = Arc::new(center);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let context = UiContext::new(
        center.pool.clone(),
        center.key.clone(),
        center.services.clone(),
    );
    let tls = center.tls_config();
    tokio::spawn(ui::serve_for_tests(listener, tls, ui::router(context)));
    Manager {
        base: format!("https://localhost:{port}"),
        center,
        _data: data,
    }
}

fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_administrator_walks_the_seed_workflow_by_clicking() {
    let manager = start_manager().await;
    let b = Browser::start().await;
    let base = &manager.base;
    let shots = screenshot_dir();

    // First run: no default password, the first administrator is created here.
    b.goto(&format!("{base}/")).await;
    assert!(
        b.url().await.ends_with("/setup"),
        "first run goes to /setup"
    );
    b.fill("#name", "admin").await;
    b.fill("#password", "Sup3r-secret!").await;
    b.fill("#confirm", "something-else").await;
    b.navigate("#submit").await;
    assert_eq!(
        b.text("[data-for=confirm]").await,
        "The passwords do not match."
    );
    assert_eq!(b.value("#name").await, "admin", "the typed name is kept");
    b.fill("#password", "Sup3r-secret!").await;
    b.fill("#confirm", "Sup3r-secret!").await;
    b.navigate("#submit").await;
    assert_eq!(b.text("#current-user").await, "admin");
    b.screenshot(&shots.join("overview.png")).await;

    // Objects > Address Pools, with a validation error first.
    b.goto(&format!("{base}/objects/pools")).await;
    b.click("#add-pool summary").await;
    b.fill("#pool-name", "RAVPN-MultiCert-Pool").await;
    b.fill("#pool-range", "10.10.10.100-10.10.10.1").await;
    b.navigate("#pool-save").await;
    assert_eq!(
        b.text("[data-for=range]").await,
        "The pool starts at 10.10.10.100, after its end 10.10.10.1."
    );
    assert_eq!(b.value("#pool-name").await, "RAVPN-MultiCert-Pool");
    b.fill("#pool-range", "10.10.10.1-10.10.10.100").await;
    b.navigate("#pool-save").await;
    assert!(
        b.text("#pools-table")
            .await
            .contains("RAVPN-MultiCert-Pool")
    );
    assert!(
        b.text("#pools-table")
            .await
            .contains("10.10.10.1-10.10.10.100")
    );

    // Group policy with the pool.
    b.goto(&format!("{base}/objects/group-policies")).await;
    b.click("#add-group-policy summary").await;
    b.fill("#gp-name", "RAVPN-Multi-Cert-GP").await;
    b.click("select[name=ipv4_pool_ids] option").await;
    b.navigate("#gp-save").await;
    let table = b.text("#gp-table").await;
    assert!(table.contains("RAVPN-Multi-Cert-GP"), "{table}");
    assert!(table.contains("RAVPN-MultiCert-Pool"), "{table}");

    // A stored name with markup is shown as text, never run.
    b.click("#add-group-policy summary").await;
    b.fill("#gp-name", "<script>window.pwned=1</script><b>x</b>")
        .await;
    b.navigate("#gp-save").await;
    assert!(
        b.text("#gp-table")
            .await
            .contains("<script>window.pwned=1</script><b>x</b>")
    );
    assert_eq!(b.script("return typeof window.pwned").await, "undefined");
    assert_eq!(
        b.count("#gp-table b").await,
        0,
        "markup in a name is not rendered"
    );

    b.confirm("//table[@id='gp-table']//tr[td[contains(., 'window.pwned')]]//button")
        .await;
    assert!(
        !b.text("#gp-table").await.contains("window.pwned"),
        "deleted"
    );
    assert!(b.text("#gp-table").await.contains("RAVPN-Multi-Cert-GP"));

    // A pool still used by a group policy cannot be deleted; the page says why.
    b.goto(&format!("{base}/objects/pools")).await;
    b.confirm("//table[@id='pools-table']//tr[td[contains(., 'RAVPN-MultiCert-Pool')]]//button")
        .await;
    assert!(b.text("#error-message").await.contains("still in use"));

    // Two CA trustpoints: machine and user CAs, generated now.
    let machine_ca = TestCa::root("Machine CA").unwrap();
    let user_ca = TestCa::root("User CA").unwrap();
    b.goto(&format!("{base}/objects/cert-enrollments")).await;
    for (name, ca) in [("Machine-CA", &machine_ca), ("User-CA", &user_ca)] {
        b.click("#add-enrollment summary").await;
        b.fill("#ce-name", name).await;
        b.set_value("ce-ca-pem", &ca.cert.cert_pem).await;
        b.navigate("#ce-save").await;
    }
    let table = b.text("#enrollments-table").await;
    assert!(
        table.contains("Machine-CA") && table.contains("User-CA"),
        "{table}"
    );
    assert!(
        table.contains("CN=Machine CA") && table.contains("CN=User CA"),
        "{table}"
    );
    let fingerprint = hex::encode_upper(vpn_core::pki::certificate_info::fingerprint_sha256(
        &machine_ca.cert.cert_der,
    ));
    assert!(
        table.contains(&fingerprint),
        "the SHA-256 fingerprint is shown"
    );
    b.screenshot(&shots.join("cert-enrollment.png")).await;

    // Devices > VPN > Remote Access > Add: the wizard.
    b.goto(&format!("{base}/ravpn")).await;
    b.navigate("#add-ravpn").await;
    b.fill("#policy_name", "RA-VPN-Policy").await;
    b.click("#wizard-next").await;
    b.fill("#profile_name", "RA-VPN-Multi-Cert").await;
    b.select("#group_policy_id", "RAVPN-Multi-Cert-GP").await;
    b.click("#ipv4-pools input[type=checkbox]").await;
    b.click("#tab-link-aaa").await;
    // AAA Only: no certificate settings, the authentication server is offered.
    assert!(!b.displayed("#cert-block").await);
    assert!(b.displayed("#aaa-server-block").await);
    b.select("#auth_method", "Client Certificate Only").await;
    assert!(
        b.displayed("#mca-row").await,
        "MCA is offered for certificate methods"
    );
    assert!(!b.displayed("#aaa-server-block").await);
    assert!(
        !b.displayed("#mca-source").await,
        "no certificate choice while MCA is off"
    );
    assert!(
        !b.displayed("#prefill-block").await,
        "prefill only for Certificate & AAA"
    );
    assert_eq!(b.value("#primary_field").await, "CN");
    assert_eq!(b.value("#secondary_field").await, "OU");
    b.click("#trustpoints label:nth-of-type(1) input").await;
    b.click("#trustpoints label:nth-of-type(2) input").await;
    b.click("#mca").await;
    assert!(
        b.displayed("#mca-source").await,
        "First/Second Certificate with MCA on"
    );
    b.click("#source-second").await;
    b.click("#mapping-dn").await;
    assert!(
        !b.displayed("#fields-block").await,
        "no field lists for the entire DN"
    );
    b.click("#mapping-specific").await;
    assert!(b.displayed("#fields-block").await);
    b.select("#auth_method", "Client Certificate & AAA").await;
    assert!(b.displayed("#prefill-block").await);
    b.select("#auth_method", "Client Certificate Only").await;
    b.screenshot(&shots.join("connection-profile-aaa.png"))
        .await;
    b.click("#wizard-next").await;
    assert_eq!(b.value("#access_interface").await, "outside");
    b.click("#wizard-next").await;
    b.navigate("#wizard-finish").await;

    // The Edit page lists the MCA profile.
    let profiles = b.text("#profiles-table").await;
    assert!(profiles.contains("RA-VPN-Multi-Cert"), "{profiles}");
    assert!(profiles.contains("Client Certificate Only"), "{profiles}");
    assert!(profiles.contains("Multiple certificates"), "{profiles}");
    b.screenshot(&shots.join("ravpn-policy.png")).await;

    // Edit > Access Interfaces: an error opens its tab and keeps the typed value.
    assert!(
        !b.displayed("#policy-save").await,
        "no Save on the profile list"
    );
    b.click("a[data-tab=tab-access]").await;
    b.fill("#tab-access input[name=web_port]", "not-a-port")
        .await;
    b.navigate("#policy-save").await;
    assert_eq!(
        b.text("[data-for=web_port]").await,
        "Enter a port from 1 to 65535."
    );
    assert!(
        b.displayed("#tab-access").await,
        "the tab with the error opens"
    );
    assert_eq!(
        b.value("#tab-access input[name=web_port]").await,
        "not-a-port"
    );
    b.fill("#tab-access input[name=web_port]", "443").await;
    b.navigate("#policy-save").await;
    assert!(b.displayed("#saved").await);

    // The profile dialog opens with what was saved.
    b.navigate("#profiles-table a").await;
    b.click("#tab-link-aaa").await;
    assert_eq!(b.value("#auth_method").await, "CLIENT_CERTIFICATE_ONLY");
    assert!(b.selected("#mca").await);
    assert!(b.selected("#source-second").await);
    b.navigate("a.button.secondary").await;

    // The preview shows the tunnel-group lines.
    b.navigate("#preview-cli").await;
    let cli = b.text("#preview-cli-text").await;
    assert!(
        cli.contains("tunnel-group RA-VPN-Multi-Cert type remote-access"),
        "{cli}"
    );
    assert!(
        cli.contains("tunnel-group RA-VPN-Multi-Cert general-attributes"),
        "{cli}"
    );
    assert!(cli.contains("authentication multiple-certificate"), "{cli}");
    assert!(
        cli.contains("default-group-policy RAVPN-Multi-Cert-GP"),
        "{cli}"
    );
    assert!(cli.contains("ip local pool RAVPN-MultiCert-Pool"), "{cli}");
    b.screenshot(&shots.join("cli-preview.png")).await;

    // The MCA test bench: which profile accepts the two certificates, and the username.
    let laptop = machine_ca.issue(&LeafOptions::client("laptop-01")).unwrap();
    let alice = user_ca.issue(&LeafOptions::client("alice")).unwrap();
    b.goto(&format!("{base}/mca-bench")).await;
    b.set_value("bench-machine", &laptop.cert_pem).await;
    b.set_value("bench-user", &alice.cert_pem).await;
    b.navigate("#bench-run").await;
    let results = b.text("#bench-results").await;
    assert!(results.contains("RA-VPN-Multi-Cert"), "{results}");
    assert!(results.contains("Accepted"), "{results}");
    assert!(
        results.contains("Username \"alice\" from the second certificate: CN"),
        "{results}"
    );
    b.screenshot(&shots.join("mca-test-bench.png")).await;
    let impostor = user_ca
        .impostor()
        .unwrap()
        .issue(&LeafOptions::client("mallory"))
        .unwrap();
    b.set_value("bench-user", &impostor.cert_pem).await;
    b.navigate("#bench-run").await;
    let results = b.text("#bench-results").await;
    assert!(results.contains("Refused"), "{results}");
    assert!(results.contains("Second certificate refused"), "{results}");
    assert!(!results.contains("mallory\" from"), "{results}");

    // A form sent without this session's CSRF token is refused.
    let status = b
        .script_async(
            "const done = arguments[arguments.length - 1];
             fetch('/objects/pools', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                   body: 'name=forged&range=10.0.0.1-10.0.0.2&mask=255.255.255.0'})
               .then(r => done(String(r.status)));",
        )
        .await;
    assert_eq!(status, "403");
    b.goto(&format!("{base}/objects/pools")).await;
    assert!(!b.text("#pools-table").await.contains("forged"));

    // Add Device: the page follows the registration until it ends; a device that does
    // not answer fails with the reason shown.
    b.goto(&format!("{base}/devices")).await;
    b.click("#add-device summary").await;
    b.fill("#device-host", "127.0.0.1:1").await;
    b.fill("#device-name", "ftd-unreachable").await;
    b.fill("#device-key", "").await;
    b.navigate("#device-register").await;
    assert!(
        b.text("[data-for=registration_key]")
            .await
            .contains("registration key")
    );
    assert_eq!(
        b.value("#device-name").await,
        "ftd-unreachable",
        "typed values are kept"
    );
    b.fill("#device-key", "cisco123").await;
    b.navigate("#device-register").await;
    let mut state = String::new();
    for _ in 0..150 {
        state = b.text("#registration-state").await;
        if state != "Registering" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(state, "Registration failed");
    assert!(!b.text("#registration-error").await.is_empty());

    // Deploy with nothing selected says so next to the list.
    b.goto(&format!("{base}/deploy")).await;
    b.navigate("#deploy-button").await;
    assert_eq!(
        b.text("[data-for=device_ids]").await,
        "Select at least one device to deploy."
    );

    // The other main pages render.
    for (path, file) in [
        ("/devices", "devices.png"),
        ("/deploy", "deploy.png"),
        ("/sessions", "sessions.png"),
        ("/system/audit", "audit-log.png"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.screenshot(&shots.join(file)).await;
    }
    let audit = b.text("#audit-table").await;
    assert!(
        audit.contains("RA-VPN-Multi-Cert"),
        "profile creation is audited"
    );

    // Logout, a refused login, a good login.
    b.goto(&format!("{base}/")).await;
    b.navigate("#logout").await;
    assert!(b.url().await.ends_with("/login"));
    b.goto(&format!("{base}/ravpn")).await;
    assert!(b.url().await.ends_with("/login"), "pages need a session");
    b.fill("#name", "admin").await;
    b.fill("#password", "wrong-password").await;
    b.navigate("#submit").await;
    assert_eq!(
        b.text("[data-for=password]").await,
        "The user name or password is wrong."
    );
    b.fill("#password", "Sup3r-secret!").await;
    b.navigate("#submit").await;
    assert_eq!(b.text("#current-user").await, "admin");

    // The audit log, filtered by action, has the logout and the refused login.
    b.goto(&format!("{base}/system/audit?action=LOGOUT")).await;
    let logouts = b.text("#audit-table").await;
    assert!(
        logouts.contains("LOGOUT") && logouts.contains("admin"),
        "{logouts}"
    );
    assert!(!logouts.contains("LOGIN_FAILED"), "{logouts}");
    b.goto(&format!("{base}/system/audit?action=LOGIN_FAILED"))
        .await;
    assert!(b.text("#audit-table").await.contains("LOGIN_FAILED"));

    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_administrator_sees_no_edit_controls_and_is_refused_changes() {
    let manager = start_manager().await;
    let b = Browser::start().await;
    let base = &manager.base;

    b.goto(&format!("{base}/setup")).await;
    b.fill("#name", "admin").await;
    b.fill("#password", "Sup3r-secret!").await;
    b.fill("#confirm", "Sup3r-secret!").await;
    b.navigate("#submit").await;
    b.goto(&format!("{base}/system/administrators")).await;
    b.click("details.addbox summary").await;
    b.fill("#admin-form input[name=name]", "auditor").await;
    b.fill("#admin-form input[name=password]", "Read-only-pw")
        .await;
    b.select("#admin-form select[name=role]", "Read-Only").await;
    b.navigate("#admin-form button[type=submit]").await;
    assert!(b.text("#admins-table").await.contains("auditor"));
    b.navigate("#logout").await;

    b.fill("#name", "auditor").await;
    b.fill("#password", "Read-only-pw").await;
    b.navigate("#submit").await;
    assert_eq!(b.text("#current-user").await, "auditor");
    b.goto(&format!("{base}/objects/pools")).await;
    assert_eq!(b.count("#add-pool").await, 0, "no Add for Read-Only");
    b.goto(&format!("{base}/ravpn")).await;
    assert_eq!(b.count("#add-ravpn").await, 0);

    // Even with a valid CSRF token, the server refuses the change.
    let status = b
        .script_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/objects/pools', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                   body: 'csrf=' + csrf + '&name=sneaky&range=10.0.0.1-10.0.0.2&mask=255.255.255.0'})
               .then(r => done(String(r.status)));",
        )
        .await;
    assert_eq!(status, "403");
    b.goto(&format!("{base}/objects/pools")).await;
    assert!(!b.text("#pools-table").await.contains("sneaky"));
    b.close().await;
}

/// Creates the first administrator through /setup.
async fn first_administrator(b: &Browser, base: &str) {
    b.goto(&format!("{base}/setup")).await;
    b.fill("#name", "admin").await;
    b.fill("#password", "Sup3r-secret!").await;
    b.fill("#confirm", "Sup3r-secret!").await;
    b.navigate("#submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_are_searched_paged_and_edited_and_an_identity_comes_from_pkcs12() {
    use mgmt_server::db::cert_enrollments;
    use mgmt_server::db::group_policies::{self, GroupPolicyInput};
    use mgmt_server::db::local_users;
    use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
    use mgmt_server::db::{Actor, GLOBAL_DOMAIN_ID, Page};

    let manager = start_manager().await;
    let b = Browser::start().await;
    let base = &manager.base;
    let pool = &manager.center.pool;
    let api = Actor::administrator("api-user", uuid::Uuid::new_v4(), None);
    first_administrator(&b, base).await;

    // 30 pools made over the API's repository: the page shows 25 at a time.
    let mut conn = pool.acquire().await.unwrap();
    for i in 1..=30u8 {
        pools::create_ipv4(
            &mut conn,
            &api,
            GLOBAL_DOMAIN_ID,
            &Ipv4AddressPoolInput {
                name: format!("pool-{i:03}"),
                description: String::new(),
                start: std::net::Ipv4Addr::new(10, i, 0, 1),
                end: std::net::Ipv4Addr::new(10, i, 0, 10),
                mask: "255.255.255.0".parse().unwrap(),
                overridable: false,
            },
        )
        .await
        .unwrap();
    }
    b.goto(&format!("{base}/objects/pools")).await;
    assert_eq!(b.text("#pager-range").await, "1–25 of 30");
    assert_eq!(b.count("#pools-table tbody tr").await, 25);
    b.navigate("#pager-next").await;
    assert_eq!(b.text("#pager-range").await, "26–30 of 30");
    assert!(b.text("#pools-table").await.contains("pool-030"));
    b.fill("#search", "POOL-02").await;
    b.navigate("#search-button").await;
    assert_eq!(b.text("#pager-range").await, "1–10 of 10");
    assert!(!b.text("#pools-table").await.contains("pool-030"));

    // Edit a pool: a bad range keeps the form in edit mode with what was typed.
    b.goto(&format!("{base}/objects/pools")).await;
    b.navigate("a[data-edit='pool-007']").await;
    assert_eq!(b.value("#pool-range").await, "10.7.0.1-10.7.0.10");
    b.fill("#pool-range", "10.7.0.50-10.7.0.1").await;
    b.navigate("#pool-save").await;
    assert_eq!(
        b.text("[data-for=range]").await,
        "The pool starts at 10.7.0.50, after its end 10.7.0.1."
    );
    assert_eq!(b.value("#pool-range").await, "10.7.0.50-10.7.0.1");
    b.fill("#pool-range", "10.7.0.1-10.7.0.50").await;
    b.navigate("#pool-save").await;
    let all = pools::list_ipv4(pool, GLOBAL_DOMAIN_ID, Page::ALL)
        .await
        .unwrap();
    assert_eq!(all.total, 30, "the edit created nothing");
    let edited = all.items.iter().find(|p| p.name == "pool-007").unwrap();
    assert_eq!(edited.end.to_string(), "10.7.0.50");
    assert_eq!(edited.version, 2);

    // Someone changes pool-008 while its form is open: the save is refused, nothing
    // is overwritten, and the page says why.
    b.navigate("a[data-edit='pool-008']").await;
    let pool_8 = all.items.iter().find(|p| p.name == "pool-008").unwrap();
    pools::update_ipv4(
        &mut conn,
        &api,
        GLOBAL_DOMAIN_ID,
        pool_8.id,
        pool_8.version,
        &Ipv4AddressPoolInput {
            name: "pool-008".into(),
            description: "changed over the API".into(),
            start: pool_8.start,
            end: pool_8.end,
            mask: pool_8.mask,
            overridable: true,
        },
    )
    .await
    .unwrap();
    b.fill("#pool-range", "10.8.0.1-10.8.0.99").await;
    b.navigate("#pool-save").await;
    assert!(
        b.text("#pool-form .alert")
            .await
            .contains("was changed by someone else"),
        "a stale edit is refused"
    );
    let now = pools::get_ipv4(pool, GLOBAL_DOMAIN_ID, pool_8.id)
        .await
        .unwrap();
    assert_eq!(now.end, pool_8.end);
    assert_eq!(now.description, "changed over the API");

    // Edit a group policy: the page's fields change, settings only the API sets stay.
    let mut input = GroupPolicyInput::new("Engineering-GP");
    input.mtu = 1300;
    input.dtls_enabled = false;
    let policy = group_policies::create(&mut conn, &api, GLOBAL_DOMAIN_ID, &input)
        .await
        .unwrap();
    b.goto(&format!("{base}/objects/group-policies")).await;
    b.navigate("a[data-edit='Engineering-GP']").await;
    assert_eq!(b.value("#gp-name").await, "Engineering-GP");
    b.fill("input[name=dns_servers]", "10.0.0.53, 10.0.1.53")
        .await;
    b.navigate("#gp-save").await;
    let saved = group_policies::get(pool, GLOBAL_DOMAIN_ID, policy.id)
        .await
        .unwrap();
    assert_eq!(saved.dns_servers.len(), 2);
    assert_eq!(saved.mtu, 1300, "an API-only setting is kept");
    assert!(!saved.dtls_enabled, "an API-only setting is kept");

    // PKCS#12 identity: a wrong passphrase is said so; the right one imports the
    // chain and the key (the key is kept encrypted, never shown).
    let ca = TestCa::root("Headend CA").unwrap();
    let leaf = ca
        .issue(&LeafOptions {
            eku: vec![vpn_core::pki::testpki::TestEku::ServerAuth],
            ..LeafOptions::client("vpn.example.com")
        })
        .unwrap();
    let p12 = {
        let key = openssl::pkey::PKey::private_key_from_pem(leaf.key_pem.as_bytes()).unwrap();
        let cert = openssl::x509::X509::from_pem(leaf.cert_pem.as_bytes()).unwrap();
        let mut chain = openssl::stack::Stack::new().unwrap();
        chain
            .push(openssl::x509::X509::from_pem(ca.cert.cert_pem.as_bytes()).unwrap())
            .unwrap();
        let der = openssl::pkcs12::Pkcs12::builder()
            .name("vpn")
            .pkey(&key)
            .cert(&cert)
            .ca(chain)
            .build2("p12-pass")
            .unwrap()
            .to_der()
            .unwrap();
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der)
    };
    b.goto(&format!("{base}/objects/cert-enrollments")).await;
    b.click("#add-enrollment summary").await;
    b.fill("#ce-name", "Headend-P12").await;
    b.select(
        "#ce-kind",
        "Identity certificate from a PKCS#12 file (.p12/.pfx)",
    )
    .await;
    b.set_value("ce-pkcs12", &p12).await;
    b.fill("#ce-pkcs12-passphrase", "wrong").await;
    b.navigate("#ce-save").await;
    assert!(
        b.text("[data-for=pkcs12]")
            .await
            .contains("wrong passphrase"),
        "the refusal says why"
    );
    assert_eq!(
        b.value("#ce-name").await,
        "Headend-P12",
        "typed values are kept"
    );
    b.set_value("ce-pkcs12", &p12).await;
    b.fill("#ce-pkcs12-passphrase", "p12-pass").await;
    b.navigate("#ce-save").await;
    let table = b.text("#enrollments-table").await;
    assert!(table.contains("PKCS12 (identity)"), "{table}");
    assert!(table.contains("CN=vpn.example.com"), "{table}");
    assert!(
        table.contains("CN=Headend CA"),
        "the chain's CA is imported: {table}"
    );
    let enrollment = cert_enrollments::list(pool, GLOBAL_DOMAIN_ID, Page::ALL)
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.name == "Headend-P12")
        .unwrap();
    let key = cert_enrollments::identity_private_key(
        pool,
        GLOBAL_DOMAIN_ID,
        enrollment.id,
        &manager.center.key,
    )
    .await
    .unwrap();
    assert!(key.0.contains("PRIVATE KEY"));
    assert!(
        !b.script("return document.documentElement.outerHTML")
            .await
            .contains(&key.0[40..80])
    );

    // Renaming it keeps the certificate and the key.
    b.navigate("a[data-edit='Headend-P12']").await;
    b.fill("#ce-name", "Headend-P12-Renamed").await;
    b.navigate("#ce-save").await;
    let renamed = cert_enrollments::get(pool, GLOBAL_DOMAIN_ID, enrollment.id)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Headend-P12-Renamed");
    assert_eq!(renamed.content, enrollment.content);
    let same_key = cert_enrollments::identity_private_key(
        pool,
        GLOBAL_DOMAIN_ID,
        enrollment.id,
        &manager.center.key,
    )
    .await
    .unwrap();
    assert_eq!(same_key.0, key.0);

    // A LOCAL user renamed without a password keeps the password; a new one replaces it.
    b.goto(&format!("{base}/objects/local-users")).await;
    b.click("#add-local-user summary").await;
    b.fill("#local-user-form input[name=name]", "alice").await;
    b.fill("#local-user-form input[name=password]", "alice-pass-1")
        .await;
    b.navigate("#local-user-save").await;
    let alice = || async {
        local_users::list(pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|u| u.name.starts_with("alice"))
            .unwrap()
    };
    let before = alice().await;
    b.navigate("a[data-edit='alice']").await;
    b.fill("#local-user-form input[name=name]", "alice.smith")
        .await;
    b.navigate("#local-user-save").await;
    let renamed = alice().await;
    assert_eq!(renamed.name, "alice.smith");
    assert_eq!(renamed.password_hash, before.password_hash);
    b.navigate("a[data-edit='alice.smith']").await;
    b.fill("#local-user-form input[name=password]", "alice-pass-2")
        .await;
    b.navigate("#local-user-save").await;
    assert_ne!(alice().await.password_hash, before.password_hash);

    b.close().await;
}
