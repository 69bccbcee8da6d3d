//! The seed workflow through the manager's REST API with the real FMC client fireREST
//! (PyPI, in a virtualenv the test makes once under the target directory): log in,
//! create the pool, group policy, two CA trustpoints and the identity, the RA VPN
//! policy with the seed's MCA connection profile, register and deploy to a real
//! sensor-agent; openconnect connects with both certificates; fireREST lists the
//! session and terminates it. The manager is `mgmt_server`'s real application (the
//! same router and HTTPS as `mgmt-server run`) on a throw-away PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::lab::*;

const KEY: &str = "FireREST-Key-1";
const ADMIN_PASSWORD: &str = "Seed-Admin-1!";

/// A Python with fireREST 1.3.0: `FIREREST_PYTHON`, or a virtualenv made once.
fn firerest_python() -> PathBuf {
    if let Some(python) = std::env::var_os("FIREREST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firerest-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import fireREST"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "python3 -m venv failed (install python3-venv): {made:?}"
        );
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "fireREST==1.3.0"])
            .output()
            .unwrap();
        assert!(
            pip.status.success(),
            "pip install fireREST==1.3.0 failed: {pip:?}"
        );
    }
    python
}

async fn workflow(python: &Path, lab: &Lab, host: &str, cafile: &Path, args: &[&str]) -> Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openconnect_mca/fmc_workflow.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .args([
            "--host",
            host,
            "--username",
            "admin",
            "--password",
            ADMIN_PASSWORD,
        ])
        .arg("--cafile")
        .arg(cafile)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "fireREST {args:?} failed:\n{}\n{}\nagent:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        lab.agent_log()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn firerest_builds_the_seed_deploys_it_and_terminates_the_mca_session() {
    let python = firerest_python();
    let lab = Lab::start_managed("f", KEY);
    let (lab, ()) = super::managed::as_manager_of(lab, async move |lab: &Lab| {
        let super::managed::LabManager {
            center,
            listener,
            host,
            cafile,
        } = super::managed::start_manager(lab, Some(("admin", ADMIN_PASSWORD))).await;
        let router = mgmt_server::app::router(&center);
        let server = async { center.serve(listener, router).await };
        let files = |name: &str, text: &str| {
            let path = lab.fixture.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let machine_ca = files("machine-ca.pem", &lab.fixture.machine_ca_pem);
        let user_ca = files("user-ca.pem", &lab.fixture.user_ca_pem);
        let chain = files("identity.pem", &lab.fixture.identity_chain_pem);
        let key = files("identity.key", &lab.fixture.identity_key_pem);
        let port = PORT.to_string();
        let device_host = format!("127.0.0.1:{MANAGEMENT_PORT}");
        let split = format!("{POOL_NETWORK},{INSIDE_NETWORK}");
        let test = async {
            let setup = workflow(
                &python,
                lab,
                &host,
                &cafile,
                &[
                    "setup",
                    "--machine-ca",
                    machine_ca.to_str().unwrap(),
                    "--user-ca",
                    user_ca.to_str().unwrap(),
                    "--identity-chain",
                    chain.to_str().unwrap(),
                    "--identity-key",
                    key.to_str().unwrap(),
                    "--device-host",
                    &device_host,
                    "--reg-key",
                    KEY,
                    "--ssl-port",
                    &port,
                    "--split-include",
                    &split,
                ],
            )
            .await;
            assert_eq!(setup["job"]["status"], "DEPLOYED", "{setup}");
            assert!(
                setup["job"]["transcript"]
                    .as_str()
                    .unwrap()
                    .contains("tunnel-group RA-VPN-Multi-Cert type remote-access"),
                "{setup}"
            );
            // openconnect runs while the manager keeps serving (blocking pieces on the
            // blocking pool).
            let mut openconnect = tokio::task::block_in_place(|| lab.connect_tunnel());
            let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
            assert!(
                detail.contains("Auth Mode    : Multiple-certificate"),
                "{detail}"
            );
            let sessions = workflow(&python, lab, &host, &cafile, &["sessions"]).await;
            assert_eq!(
                sessions["session"]["username"], "client.example.com",
                "{sessions}"
            );
            assert_eq!(
                sessions["session"]["authenticationMode"],
                "Multiple-certificate"
            );
            assert_eq!(
                sessions["session"]["connectionProfile"],
                "RA-VPN-Multi-Cert"
            );
            assert_eq!(sessions["terminate"]["terminatedSessions"], 1, "{sessions}");
            let status =
                tokio::task::block_in_place(|| openconnect.wait(lab, Duration::from_secs(15)));
            let report = openconnect.report(lab, &format!("openconnect exit {status}"));
            assert!(report.contains("Administrator reset"), "{report}");
        };
        tokio::select! {
            () = test => {}
            served = server => panic!("the manager stopped: {served:?}"),
        }
        center.stop().await;
    });
    drop(lab);
}
