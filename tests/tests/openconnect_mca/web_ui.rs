//! The seed workflow by clicking, in a real headless Chromium (Debian's chromium and
//! chromedriver), against a live sensor: the first administrator is created in the
//! browser, then the pool, the group policy, the two CA trustpoints and the headend
//! identity, the RA VPN policy with the seed's MCA connection profile; the running
//! sensor-agent (started empty, `configure manager add` done) is registered from Add
//! Device, the change is previewed and deployed from Deploy; openconnect logs in with
//! the machine and the user certificate; the dashboard shows the session with
//! `Multiple-certificate`, the sessions page shows both certificates, and Terminate
//! ends it (openconnect hears "Administrator reset").

use std::time::Duration;

use e2e::browser::Browser;

use super::lab::*;
use super::managed::{LabManager, as_manager_of, start_manager};

const KEY: &str = "Browser-Reg-Key-1";
const ADMIN_PASSWORD: &str = "Sup3r-secret!";

fn screenshot(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Reads `css`'s text on `url`, reloading until `done` holds (at most `limit`).
async fn wait_for_text(
    b: &Browser,
    url: &str,
    css: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + limit;
    loop {
        b.goto(url).await;
        let text = b.text(css).await;
        if done(&text) || std::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[test]
fn an_administrator_deploys_the_seed_by_clicking_and_terminates_the_mca_session_from_the_browser() {
    let lab = Lab::start_managed("u", KEY);
    let (lab, ()) = as_manager_of(lab, async move |lab: &Lab| {
        let LabManager {
            center,
            listener,
            host,
            ..
        } = start_manager(lab, None).await;
        let router = mgmt_server::app::router(&center);
        let server = async { center.serve(listener, router).await };
        let test = async {
            let b = Browser::start().await;
            walk(&b, lab, &format!("https://{host}")).await;
            b.close().await;
        };
        tokio::select! {
            () = test => {}
            served = server => panic!("the manager stopped: {served:?}"),
        }
        center.stop().await;
    });
    drop(lab);
}

async fn walk(b: &Browser, lab: &Lab, base: &str) {
    let fixture = &lab.fixture;

    // First run: the first administrator.
    b.goto(&format!("{base}/")).await;
    assert!(b.url().await.ends_with("/setup"));
    b.fill("#name", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.fill("#confirm", ADMIN_PASSWORD).await;
    b.navigate("#submit").await;
    assert_eq!(b.text("#current-user").await, "admin");

    // Devices > Device Management > Add Device: the running sensor registers.
    b.goto(&format!("{base}/devices")).await;
    b.click("#add-device summary").await;
    b.fill("#device-host", &format!("127.0.0.1:{MANAGEMENT_PORT}"))
        .await;
    b.fill("#device-name", "FTD-Seed").await;
    b.fill("#device-key", KEY).await;
    b.navigate("#device-register").await;
    let device_url = b.url().await;
    let state = wait_for_text(
        b,
        &device_url,
        "#registration-state",
        Duration::from_secs(30),
        |s| s != "Registering",
    )
    .await;
    assert_eq!(state, "Registered", "{}", lab.agent_log());

    // Objects: pool, group policy (split tunnel to the pool and the inside network).
    b.goto(&format!("{base}/objects/pools")).await;
    b.click("#add-pool summary").await;
    b.fill("#pool-name", e2e::seed::POOL).await;
    b.fill("#pool-range", "192.168.77.100-192.168.77.199").await;
    b.navigate("#pool-save").await;
    assert!(b.text("#pools-table").await.contains(e2e::seed::POOL));
    b.goto(&format!("{base}/objects/group-policies")).await;
    b.click("#add-group-policy summary").await;
    b.fill("#gp-name", e2e::seed::GROUP_POLICY).await;
    b.click("select[name=ipv4_pool_ids] option").await;
    b.fill(
        "textarea[name=split_tunnel_networks]",
        &format!("{POOL_NETWORK}, {INSIDE_NETWORK}"),
    )
    .await;
    b.navigate("#gp-save").await;
    assert!(b.text("#gp-table").await.contains(e2e::seed::GROUP_POLICY));

    // PKI > Cert Enrollment: the machine and user CAs, the headend identity from PEM.
    b.goto(&format!("{base}/objects/cert-enrollments")).await;
    for (name, pem) in [
        ("Machine-CA", &fixture.machine_ca_pem),
        ("User-CA", &fixture.user_ca_pem),
    ] {
        b.click("#add-enrollment summary").await;
        b.fill("#ce-name", name).await;
        b.set_value("ce-ca-pem", pem).await;
        b.navigate("#ce-save").await;
    }
    b.click("#add-enrollment summary").await;
    b.fill("#ce-name", "Headend-Identity").await;
    b.select(
        "#ce-kind",
        "Identity certificate from PEM (certificate + key)",
    )
    .await;
    b.set_value("ce-id-pem", &fixture.identity_chain_pem).await;
    b.set_value("ce-key-pem", &fixture.identity_key_pem).await;
    b.navigate("#ce-save").await;
    let enrollments = b.text("#enrollments-table").await;
    assert!(enrollments.contains("Headend-Identity"), "{enrollments}");
    assert!(enrollments.contains("Manual (identity)"), "{enrollments}");

    // Devices > VPN > Remote Access > Add: the seed's MCA connection profile.
    b.goto(&format!("{base}/ravpn")).await;
    b.navigate("#add-ravpn").await;
    b.fill("#policy_name", "RAVPN-MCA").await;
    b.click("input[name=target_device_ids]").await;
    b.click("#wizard-next").await;
    b.fill("#profile_name", e2e::seed::PROFILE).await;
    b.select("#group_policy_id", e2e::seed::GROUP_POLICY).await;
    b.click("#ipv4-pools input[type=checkbox]").await;
    b.click("#tab-link-aaa").await;
    b.select("#auth_method", "Client Certificate Only").await;
    b.click("#trustpoints label:nth-of-type(1) input").await;
    b.click("#trustpoints label:nth-of-type(2) input").await;
    b.click("#mca").await;
    b.click("#source-second").await;
    assert_eq!(b.value("#primary_field").await, "CN");
    b.click("a[data-tab=tab-aliases]").await;
    b.fill("textarea[name=aliases]", e2e::seed::ALIAS).await;
    b.click("#wizard-next").await;
    b.fill("input[name=web_port]", &PORT.to_string()).await;
    b.select("#identity_id", "Headend-Identity").await;
    b.click("#wizard-next").await;
    b.navigate("#wizard-finish").await;
    let profiles = b.text("#profiles-table").await;
    assert!(profiles.contains(e2e::seed::PROFILE), "{profiles}");
    assert!(profiles.contains("Multiple certificates"), "{profiles}");

    // Deploy: the device has pending changes; the preview is the CLI diff.
    b.goto(&format!("{base}/deploy")).await;
    let pending = b.text("#pending-table").await;
    assert!(
        pending.contains("FTD-Seed") && pending.contains("Pending"),
        "{pending}"
    );
    b.click("#pending-table details summary").await;
    let diff = b.text("#pending-table pre.diff").await;
    assert!(
        diff.contains("+tunnel-group RA-VPN-Multi-Cert type remote-access"),
        "{diff}"
    );
    assert!(
        diff.contains("authentication multiple-certificate"),
        "{diff}"
    );
    assert!(b.selected("#pending-table input[type=checkbox]").await);
    b.navigate("#deploy-button").await;
    let job_url = b.url().await;
    let status = wait_for_text(
        b,
        &job_url,
        "[data-job-status]",
        Duration::from_secs(60),
        |s| s == "Deployed" || s == "Failed",
    )
    .await;
    assert_eq!(status, "Deployed", "{}", lab.agent_log());
    let transcript = b.text("pre.transcript").await;
    assert!(
        transcript.contains("tunnel-group RA-VPN-Multi-Cert type remote-access"),
        "{transcript}"
    );
    b.goto(&format!("{base}/deploy")).await;
    assert!(b.text("#pending-table").await.contains("Up to date"));

    // openconnect: machine certificate in TLS, user certificate in aggregate-auth.
    let mut openconnect = tokio::task::block_in_place(|| lab.connect_tunnel());

    // The dashboard shows the session, with its authentication mode.
    let active = wait_for_text(
        b,
        &format!("{base}/"),
        "#active-sessions",
        Duration::from_secs(10),
        |s| s == "1",
    )
    .await;
    assert_eq!(active, "1");
    let sessions = b.text("#overview-sessions").await;
    assert!(sessions.contains("client.example.com"), "{sessions}");
    assert!(sessions.contains(e2e::seed::PROFILE), "{sessions}");
    assert!(sessions.contains("Multiple-certificate"), "{sessions}");
    b.screenshot(&screenshot("overview-live-session.png")).await;

    // RA VPN Sessions: the filters, both certificates and how the username was derived.
    b.goto(&format!("{base}/sessions?username=someone-else"))
        .await;
    assert!(
        b.text("#sessions-table")
            .await
            .contains("No active sessions.")
    );
    b.goto(&format!("{base}/sessions")).await;
    b.fill("input[name=username]", "client.example").await;
    b.navigate(".filters button").await;
    b.click("#sessions-table tr.detail summary").await;
    let detail = b.text("#sessions-table").await;
    assert!(detail.contains("Multiple-certificate"), "{detail}");
    assert!(detail.contains("CN=client.example.com"), "{detail}");
    assert!(detail.contains("CN=machine.example.com"), "{detail}");
    assert!(
        detail.contains("CN of subject of the second certificate (user)"),
        "{detail}"
    );
    b.screenshot(&screenshot("sessions-live.png")).await;

    // Terminate: openconnect is told by the headend and exits.
    b.confirm("//table[@id='sessions-table']//button[contains(., 'Terminate')]")
        .await;
    let status = tokio::task::block_in_place(|| openconnect.wait(lab, Duration::from_secs(15)));
    let report = openconnect.report(lab, &format!("openconnect exit {status}"));
    assert!(report.contains("Administrator reset"), "{report}");
    let after = wait_for_text(
        b,
        &format!("{base}/sessions"),
        "#sessions-table",
        Duration::from_secs(10),
        |s| s.contains("No active sessions."),
    )
    .await;
    assert!(after.contains("No active sessions."), "{after}");
    // Rollback: the deployed version goes out again as a new version.
    b.goto(&format!("{base}/deploy")).await;
    b.confirm("//table[@id='history-table']//button[contains(., 'Rollback to this')]")
        .await;
    let rollback_url = b.url().await;
    let status = wait_for_text(
        b,
        &rollback_url,
        "[data-job-status]",
        Duration::from_secs(60),
        |s| s == "Deployed" || s == "Failed",
    )
    .await;
    assert_eq!(status, "Deployed", "{}", lab.agent_log());
    assert!(b.text("h1").await.contains("Rollback"));
    b.goto(&format!("{base}/deploy")).await;
    assert_eq!(b.count("#history-table tbody tr").await, 2);
    let running = lab.operator(&["show", "running-config", "tunnel-group"]);
    assert!(
        running.contains("tunnel-group RA-VPN-Multi-Cert type remote-access"),
        "{running}"
    );

    b.goto(&format!("{base}/system/audit")).await;
    let audit = b.text("#audit-table").await;
    assert!(
        audit.contains("session index 1 on FTD-Seed: 1 session(s) ended"),
        "{audit}"
    );
}
