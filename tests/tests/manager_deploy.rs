//! The manager's deploy services (`mgmt_server::deploy`) against real sensor-agent
//! processes: registration, preview as a CLI diff, deploy, a second version, rollback,
//! an unreachable sensor, and two devices deploying independently. The manager runs in
//! this process on a throw-away PostgreSQL; the sensors run in a network namespace.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use e2e::sensor::{Agent, as_manager, presented_certificate, stdout};
use mgmt_server::db::deployments::{self, Deployment, DeploymentJob, JobStatus};
use mgmt_server::db::devices::{self, Device, DeviceInput, RegistrationState};
use mgmt_server::db::group_policies::{self, GroupPolicyInput};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID};
use mgmt_server::services::Services;
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::channel::RegistrationKey;
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

const KEY: &str = "Reg-Key-7";

/// `sensor-agent run` in `netns` (see [`e2e::sensor::start_agent`]).
fn start_agent(netns: &Netns, socket: &Path, args: &[&std::ffi::OsStr]) -> Agent {
    e2e::sensor::start_agent(e2e::sensor::binary(), netns, socket, args)
}

/// The sensor's operator CLI on `socket`.
fn operator(socket: &Path, words: &[&str]) -> Output {
    e2e::sensor::operator(e2e::sensor::binary(), socket, words)
}

fn admin() -> Actor {
    Actor::administrator("admin", Uuid::new_v4(), None)
}

/// A sensor process in `netns`: management API on 127.0.0.1:`port`, headend on the
/// config's port, manager 127.0.0.1 added with [`KEY`].
struct Sensor {
    agent: Agent,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn sensor(netns: &Netns, port: u16, tun: &str) -> Sensor {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{port}");
    let agent = start_agent(
        netns,
        &socket,
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--management-listen".as_ref(),
            listen.as_ref(),
            "--tun-name".as_ref(),
            tun.as_ref(),
            "--listen".as_ref(),
            "127.0.0.1".as_ref(),
        ],
    );
    let added = operator(&socket, &["configure", "manager", "add", "127.0.0.1", KEY]);
    assert!(added.status.success(), "{added:?}");
    Sensor {
        agent,
        socket,
        _dir: dir,
    }
}

/// The seed's objects (e2e::seed) with generated certificates, the headend on
/// `ssl_port`, targeting `devices`; returns the group policy's id.
async fn seed_objects(pool: &PgPool, key: &EncryptionKey, devices: &[Uuid], ssl_port: u16) -> Uuid {
    let machine_ca = TestCa::root("ftd-machine-ca").unwrap();
    let user_ca = TestCa::root("ftd-user-ca").unwrap();
    let server_ca = TestCa::root("Headend CA").unwrap();
    let leaf = server_ca
        .issue(&LeafOptions {
            eku: vec![TestEku::ServerAuth],
            ..LeafOptions::client("vpn.example.com")
        })
        .unwrap();
    let chain = format!("{}{}", leaf.cert_pem, server_ca.cert.cert_pem);
    let inputs = e2e::seed::SeedInputs {
        machine_ca_pem: &machine_ca.cert.cert_pem,
        user_ca_pem: &user_ca.cert.cert_pem,
        identity_chain_pem: &chain,
        identity_key_pem: &leaf.key_pem,
        ssl_port,
        split_include: Vec::new(),
        devices: devices.to_vec(),
    };
    e2e::seed::create(pool, key, &inputs).await.group_policy
}

async fn add_device(pool: &PgPool, name: &str, port: u16) -> Device {
    let mut conn = pool.acquire().await.unwrap();
    devices::create(
        &mut conn,
        &admin(),
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: name.to_owned(),
            description: String::new(),
            host_name: format!("127.0.0.1:{port}"),
            nat_id: None,
        },
    )
    .await
    .unwrap()
}

/// Gives `device` its own range of the seed's pool (192.168.78.0/24): two devices on
/// one policy must not hand out the same addresses.
async fn override_pool_for(pool: &PgPool, device: &Device) {
    use mgmt_server::db::pool_overrides::{self, Ipv4PoolOverrideInput};
    use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
    let mut conn = pool.acquire().await.unwrap();
    let seeded = pools::list_ipv4(pool, GLOBAL_DOMAIN_ID, mgmt_server::db::Page::ALL)
        .await
        .unwrap()
        .items
        .remove(0);
    pools::update_ipv4(
        &mut conn,
        &admin(),
        GLOBAL_DOMAIN_ID,
        seeded.id,
        seeded.version,
        &Ipv4AddressPoolInput {
            name: seeded.name.clone(),
            description: seeded.description.clone(),
            start: seeded.start,
            end: seeded.end,
            mask: seeded.mask,
            overridable: true,
        },
    )
    .await
    .unwrap();
    pool_overrides::create_ipv4(
        &mut conn,
        &admin(),
        GLOBAL_DOMAIN_ID,
        seeded.id,
        &Ipv4PoolOverrideInput {
            device_id: device.id,
            start: "192.168.78.10".parse().unwrap(),
            end: "192.168.78.250".parse().unwrap(),
            mask: "255.255.255.0".parse().unwrap(),
        },
    )
    .await
    .unwrap();
}

/// Waits until every job of `deployment` has finished; returns them.
async fn finished(pool: &PgPool, deployment: &Deployment) -> Vec<DeploymentJob> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let current = deployments::get(pool, GLOBAL_DOMAIN_ID, deployment.id)
            .await
            .unwrap();
        if current
            .jobs
            .iter()
            .all(|job| matches!(job.status, JobStatus::Deployed | JobStatus::Failed))
        {
            return current.jobs;
        }
        assert!(
            Instant::now() < deadline,
            "deployment never finished: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn the_deploy_engine_registers_previews_deploys_rolls_back_and_reports_an_unreachable_sensor() {
    let netns = Netns::create("mgr-deploy");
    let mut first = sensor(&netns, 8305, "mdtun1");
    let socket = first.socket.clone();
    let (running_after_rollback, v1_running) = as_manager(&netns, async move || {
        let pool = e2e::postgres::fresh_database().await;
        let key = EncryptionKey::generate().unwrap();
        let engine = Services::start(pool.clone(), key.clone(), "fmc-test")
            .await
            .unwrap();
        let device = add_device(&pool, "FTD-1", 8305).await;
        let group_policy = seed_objects(&pool, &key, &[device.id], 8443).await;

        // Registration.
        let registered = engine
            .sensors
            .register_device(&admin(), &device, &RegistrationKey::new(KEY).unwrap())
            .await
            .unwrap();
        assert_eq!(registered.registration_state, RegistrationState::Registered);
        assert_eq!(
            registered.software_version.as_deref(),
            // Every crate of the workspace has its version (`version.workspace`).
            Some(env!("CARGO_PKG_VERSION"))
        );

        // Preview: everything is new.
        let pending = engine
            .deployments
            .pending_changes(&registered)
            .await
            .unwrap();
        assert!(pending.has_changes);
        assert!(pending.problems.is_empty(), "{:?}", pending.problems);
        assert!(
            pending
                .cli_diff
                .contains("+tunnel-group RA-VPN-Multi-Cert type remote-access"),
            "{}",
            pending.cli_diff
        );

        // Deploy version 1.
        let deployment = engine
            .deployments
            .deploy(&admin(), GLOBAL_DOMAIN_ID, &[device.id], "first")
            .await
            .unwrap();
        let jobs = finished(&pool, &deployment).await;
        assert_eq!(jobs[0].status, JobStatus::Deployed, "{:?}", jobs[0].error);
        assert_eq!(jobs[0].config_version, 1);
        assert!(
            jobs[0]
                .transcript
                .contains("tunnel-group RA-VPN-Multi-Cert general-attributes")
        );
        let v1_running = stdout(&operator(
            &socket,
            &["show", "running-config", "tunnel-group"],
        ));
        assert!(
            !engine
                .deployments
                .pending_changes(&registered)
                .await
                .unwrap()
                .has_changes
        );

        // A change: the preview shows exactly it; version 2 deploys it.
        let mut conn = pool.acquire().await.unwrap();
        let current = group_policies::get(&mut *conn, GLOBAL_DOMAIN_ID, group_policy)
            .await
            .unwrap();
        let mut input = GroupPolicyInput::new("RAVPN-Multi-Cert-GP");
        input.banner = Some("Authorized use only".to_owned());
        input.simultaneous_logins = current.simultaneous_logins;
        group_policies::update(
            &mut conn,
            &admin(),
            GLOBAL_DOMAIN_ID,
            group_policy,
            current.version,
            &input,
        )
        .await
        .unwrap();
        let pending = engine
            .deployments
            .pending_changes(&registered)
            .await
            .unwrap();
        assert!(pending.has_changes);
        assert!(
            pending
                .cli_diff
                .contains("+ banner value Authorized use only"),
            "{}",
            pending.cli_diff
        );
        let second = engine
            .deployments
            .deploy(&admin(), GLOBAL_DOMAIN_ID, &[device.id], "banner")
            .await
            .unwrap();
        let jobs = finished(&pool, &second).await;
        assert_eq!(jobs[0].status, JobStatus::Deployed, "{:?}", jobs[0].error);
        assert_eq!(jobs[0].config_version, 2);
        let group_policy_text = stdout(&operator(
            &socket,
            &["show", "running-config", "group-policy"],
        ));
        assert!(
            group_policy_text.contains("banner value Authorized use only"),
            "{group_policy_text}"
        );

        // Rollback to version 1: deployed again as version 3.
        let first_job = deployment.jobs[0].id;
        let rollback = engine
            .deployments
            .rollback(&admin(), GLOBAL_DOMAIN_ID, first_job)
            .await
            .unwrap();
        let jobs = finished(&pool, &rollback).await;
        assert_eq!(jobs[0].status, JobStatus::Deployed, "{:?}", jobs[0].error);
        assert_eq!(jobs[0].config_version, 3);
        assert_eq!(jobs[0].rollback_of_job_id, Some(first_job));
        let after_rollback = stdout(&operator(
            &socket,
            &["show", "running-config", "group-policy"],
        ));
        (after_rollback, v1_running)
    });
    assert!(
        !running_after_rollback.contains("banner"),
        "{running_after_rollback}"
    );
    assert!(
        v1_running.contains("tunnel-group RA-VPN-Multi-Cert type remote-access"),
        "{v1_running}"
    );
    assert!(first.agent.interrupt().success());
}

#[test]
fn an_unreachable_sensor_fails_its_job_stays_pending_and_does_not_hold_up_another_device() {
    let netns = Netns::create("mgr-parallel");
    let mut reachable = sensor(&netns, 8306, "mdtun2");
    let doomed = sensor(&netns, 8307, "mdtun3");
    let doomed_pid = doomed.agent.0.id();
    as_manager(&netns, async move || {
        let pool = e2e::postgres::fresh_database().await;
        let key = EncryptionKey::generate().unwrap();
        let engine = Services::start(pool.clone(), key.clone(), "fmc-test")
            .await
            .unwrap();
        let a = add_device(&pool, "FTD-A", 8306).await;
        let b = add_device(&pool, "FTD-B", 8307).await;
        seed_objects(&pool, &key, &[a.id, b.id], 8443).await;
        override_pool_for(&pool, &b).await;
        let registration_key = RegistrationKey::new(KEY).unwrap();
        let a = engine
            .sensors
            .register_device(&admin(), &a, &registration_key)
            .await
            .unwrap();
        let b = engine
            .sensors
            .register_device(&admin(), &b, &registration_key)
            .await
            .unwrap();

        // B stops; a listener that accepts and never answers takes its port, so B's
        // push hangs until its timeout while A's goes through.
        std::process::Command::new("kill")
            .args(["-KILL", &doomed_pid.to_string()])
            .status()
            .unwrap();
        let black_hole = loop {
            match tokio::net::TcpListener::bind("127.0.0.1:8307").await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let deployment = engine
            .deployments
            .deploy(&admin(), GLOBAL_DOMAIN_ID, &[a.id, b.id], "both")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let jobs = deployments::get(&pool, GLOBAL_DOMAIN_ID, deployment.id)
                .await
                .unwrap()
                .jobs;
            let job_of = |device: Uuid| jobs.iter().find(|j| j.device_id == device).unwrap().status;
            if job_of(a.id) == JobStatus::Deployed {
                assert!(
                    matches!(job_of(b.id), JobStatus::Deploying | JobStatus::Queued),
                    "B should still be hanging"
                );
                break;
            }
            assert!(Instant::now() < deadline, "A waited for B: {jobs:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(black_hole);
        let jobs = finished(&pool, &deployment).await;
        let failed = jobs.iter().find(|j| j.device_id == b.id).unwrap();
        assert_eq!(failed.status, JobStatus::Failed);
        let error = failed.error.clone().unwrap();
        assert!(error.contains("FTD-B"), "{error}");
        assert!(error.contains("127.0.0.1:8307"), "{error}");
        // B is still pending; A is not.
        assert!(
            engine
                .deployments
                .pending_changes(&b)
                .await
                .unwrap()
                .has_changes
        );
        assert!(
            !engine
                .deployments
                .pending_changes(&a)
                .await
                .unwrap()
                .has_changes
        );
    });
    assert!(reachable.agent.interrupt().success());
    drop(doomed);
}

#[test]
fn an_unconfigured_sensor_is_registered_by_its_manager_deployed_and_keeps_both_across_a_restart() {
    use mgmt_server::pki::InternalCa;
    use mgmt_server::sensor_client::{RegistrationOffer, SensorClient, SensorEndpoint, register};
    use vpn_core::channel::RegistrationKey;

    let netns = Netns::create("sa-manager");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("control.sock");
    let management: &[&std::ffi::OsStr] = &[
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--management-listen".as_ref(),
        "127.0.0.1:8305".as_ref(),
    ];
    let mut agent = start_agent(&netns, &socket, management);

    let managers = operator(&socket, &["show", "managers"]);
    assert_eq!(stdout(&managers), "No managers configured.\n");
    let refused_key = operator(
        &socket,
        &["configure", "manager", "add", "127.0.0.1", "bad_key"],
    );
    assert!(!refused_key.status.success());
    assert!(
        String::from_utf8_lossy(&refused_key.stderr)
            .contains("the registration key has '_' at position 4"),
        "{refused_key:?}"
    );
    let added = operator(
        &socket,
        &["configure", "manager", "add", "127.0.0.1", "Reg-Key-42"],
    );
    assert!(added.status.success(), "{added:?}");
    assert!(stdout(&added).contains("Manager successfully configured."));
    assert!(
        stdout(&operator(&socket, &["show", "managers"]))
            .contains("Registration              : Pending")
    );

    // The manager registers the sensor and deploys its first configuration.
    let now = time::OffsetDateTime::now_utc();
    let ca = InternalCa::generate("Manager Internal CA", now).unwrap();
    let identity = ca.issue_manager_identity("fmc", now).unwrap();
    let device_id = Uuid::new_v4();
    let mut config: serde_json::Value =
        serde_json::from_str(&e2e::sensor::deployable_config()).unwrap();
    config["device_id"] = serde_json::json!(device_id.to_string());
    config["headend"]["ssl_port"] = serde_json::json!(8443);
    let endpoint = SensorEndpoint {
        host: "127.0.0.1".to_owned(),
        port: 8305,
    };
    let (ca_pem, manager_identity) = (ca.certificate_pem().to_owned(), identity.clone());
    let (sensor_pem, deployed, status) = as_manager(&netns, {
        let endpoint = endpoint.clone();
        async move || {
            let key = RegistrationKey::new("Reg-Key-42").unwrap();
            let offer = RegistrationOffer {
                endpoint: &endpoint,
                key: &key,
                nat_id: None,
                device_id,
                device_name: "FTD-Lab",
                manager_name: "fmc",
                ca: &ca,
                manager_identity: &identity,
            };
            let registered = register(&offer, time::OffsetDateTime::now_utc())
                .await
                .unwrap();
            assert_eq!(registered.device_id, device_id);
            let client = SensorClient::new(
                endpoint,
                ca.certificate_pem(),
                &identity,
                &registered.sensor_certificate_pem,
            )
            .unwrap();
            let deployed = client
                .deploy(config.to_string().into_bytes())
                .await
                .unwrap();
            let status = client.status().await.unwrap();
            (registered.sensor_certificate_pem, deployed, status)
        }
    });
    assert_eq!(deployed.version, 1);
    assert_eq!(
        status.running.as_ref().map(|r| r.hash.clone()),
        Some(deployed.hash.clone())
    );
    assert_eq!(status.device_id, Some(device_id));
    assert!(
        presented_certificate(&netns, 8443).is_ok(),
        "the headend is not up"
    );
    assert!(
        stdout(&operator(&socket, &["show", "managers"]))
            .contains("Registration              : Completed")
    );

    // After a restart: same registration (mutual TLS with the same certificates), same
    // configuration, headend up with no manager involved.
    assert!(agent.interrupt().success());
    let mut again = start_agent(&netns, &socket, management);
    assert!(
        presented_certificate(&netns, 8443).is_ok(),
        "the headend did not come back"
    );
    let hash = deployed.hash;
    let status = as_manager(&netns, async move || {
        let client = SensorClient::new(endpoint, &ca_pem, &manager_identity, &sensor_pem).unwrap();
        // The management listener may need a moment after the control socket.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.status().await {
                Ok(status) => return status,
                Err(e) if Instant::now() > deadline => panic!("{e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    assert_eq!(status.running.map(|r| r.hash), Some(hash));
    let again_add = operator(
        &socket,
        &["configure", "manager", "add", "127.0.0.1", "Reg-Key-42"],
    );
    assert!(!again_add.status.success());
    assert!(
        String::from_utf8_lossy(&again_add.stderr).contains("configure manager delete"),
        "{again_add:?}"
    );
    assert!(again.interrupt().success());
}
