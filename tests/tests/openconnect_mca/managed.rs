//! The seed workflow driven by the manager: the sensor starts with nothing, the
//! manager's deploy services registers it and deploys the seed scenario compiled from its
//! database, openconnect logs in with both certificates, the manager lists the session
//! (Multiple-certificate, username from the second certificate) and terminates it.

use std::time::Duration;

use mgmt_server::db::deployments::{self, JobStatus};
use mgmt_server::db::devices::{self, DeviceInput, RegistrationState};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID};
use mgmt_server::services::Services;
use uuid::Uuid;
use vpn_core::channel::{RegistrationKey, TerminateRequest};
use vpn_core::session::AuthMode;

use super::lab::*;

const KEY: &str = "Seed-Reg-Key-1";

/// Runs `body` with `lab` on a thread inside the sensor's namespace (the manager
/// reaches the sensor's management API on 127.0.0.1 there), on a runtime of its own.
pub(crate) fn as_manager_of<T: Send + 'static>(
    lab: Lab,
    body: impl AsyncFnOnce(&Lab) -> T + Send + 'static,
) -> (Lab, T) {
    let path = format!("/var/run/netns/{}", lab.server().name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(body(&lab));
        (lab, result)
    })
    .join()
    .unwrap()
}

/// A management center (the real application: API and web UI over HTTPS) on a fresh
/// database of the shared test cluster, its data directory inside the lab's.
pub(crate) struct LabManager {
    pub(crate) center: mgmt_server::server::ManagementCenter,
    pub(crate) listener: std::net::TcpListener,
    /// `127.0.0.1:port`, where it listens.
    pub(crate) host: String,
    /// The manager's CA certificate (it signed the HTTPS certificate).
    pub(crate) cafile: std::path::PathBuf,
}

/// Starts a [`LabManager`]; `initial_admin` as `mgmt-server run --initial-admin`
/// (`None`: the first browser visit creates the administrator).
pub(crate) async fn start_manager(lab: &Lab, initial_admin: Option<(&str, &str)>) -> LabManager {
    use mgmt_server::server::{ManagementCenter, ServerSettings};
    let cluster = e2e::postgres::cluster();
    let database = format!("t_{}", Uuid::new_v4().simple());
    cluster.create_database(&database).await.unwrap();
    cluster.provision_roles(&database).await.unwrap();
    let data = lab.fixture.dir.path().join("manager");
    let center = ManagementCenter::start(&ServerSettings {
        data_dir: data.clone(),
        database_url: Some(
            cluster.connect_url_as(&database, mgmt_server::db::roles::APPLICATION_ROLE),
        ),
        manager_name: "fmc".to_owned(),
        server_names: vec!["127.0.0.1".to_owned()],
        initial_admin: initial_admin.map(|(name, password)| (name.to_owned(), password.to_owned())),
        workers: mgmt_server::deploy::WorkerSettings::for_this_process(),
        database_owner_url: Some(
            cluster.connect_url_as(&database, mgmt_server::db::roles::OWNER_ROLE),
        ),
        allow_superuser: false,
        secret_key_file: None,
    })
    .await
    .unwrap();
    let cafile = data.join("ca.pem");
    std::fs::write(&cafile, center.ca_certificate_pem()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    LabManager {
        center,
        listener,
        host,
        cafile,
    }
}

#[test]
fn the_manager_registers_the_sensor_deploys_the_seed_and_terminates_the_mca_session() {
    let lab = Lab::start_managed("m", KEY);
    let (lab, report) = as_manager_of(lab, async |lab: &Lab| {
        let admin = Actor::administrator("admin", Uuid::new_v4(), None);
        let pool = e2e::postgres::fresh_database().await;
        let key = EncryptionKey::generate().unwrap();
        let engine = Services::start(pool.clone(), key.clone(), "fmc")
            .await
            .unwrap();
        let mut conn = pool.acquire().await.unwrap();
        let device = devices::create(
            &mut conn,
            &admin,
            GLOBAL_DOMAIN_ID,
            &DeviceInput {
                name: "FTD-Seed".to_owned(),
                description: String::new(),
                host_name: format!("127.0.0.1:{MANAGEMENT_PORT}"),
                nat_id: None,
            },
        )
        .await
        .unwrap();
        let fixture = &lab.fixture;
        e2e::seed::create(
            &pool,
            &key,
            &e2e::seed::SeedInputs {
                machine_ca_pem: &fixture.machine_ca_pem,
                user_ca_pem: &fixture.user_ca_pem,
                identity_chain_pem: &fixture.identity_chain_pem,
                identity_key_pem: &fixture.identity_key_pem,
                ssl_port: PORT,
                split_include: vec![
                    POOL_NETWORK.parse().unwrap(),
                    INSIDE_NETWORK.parse().unwrap(),
                ],
                devices: vec![device.id],
            },
        )
        .await;
        let device = engine
            .sensors
            .register_device(&admin, &device, &RegistrationKey::new(KEY).unwrap())
            .await
            .unwrap();
        assert_eq!(device.registration_state, RegistrationState::Registered);
        let deployment = engine
            .deployments
            .deploy(&admin, GLOBAL_DOMAIN_ID, &[device.id], "seed")
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let job = loop {
            let job = deployments::get(&pool, GLOBAL_DOMAIN_ID, deployment.id)
                .await
                .unwrap()
                .jobs
                .remove(0);
            if matches!(job.status, JobStatus::Deployed | JobStatus::Failed) {
                break job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deploy never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            job.status,
            JobStatus::Deployed,
            "{:?}\n{}",
            job.error,
            lab.agent_log()
        );

        // openconnect with the machine certificate (TLS) and the user certificate (MCA).
        let mut openconnect = lab.connect_tunnel();
        let sessions = engine.sensors.sessions(&device).await.unwrap();
        assert_eq!(sessions.len(), 1, "{sessions:?}");
        let session = &sessions[0];
        assert_eq!(session.username, "client.example.com");
        assert_eq!(session.tunnel_group, e2e::seed::PROFILE);
        assert_eq!(session.group_policy, e2e::seed::GROUP_POLICY);
        assert_eq!(session.auth_mode, AuthMode::MultipleCertificate);
        let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
        assert!(
            detail.contains("Auth Mode    : Multiple-certificate"),
            "{detail}"
        );

        // The manager terminates it: openconnect is told and exits.
        let result = engine
            .sensors
            .terminate(
                &device,
                &TerminateRequest::User {
                    usernames: vec!["client.example.com".to_owned()],
                },
            )
            .await
            .unwrap();
        assert_eq!(result.terminated, 1);
        let status = openconnect.wait(lab, Duration::from_secs(15));
        let report = openconnect.report(lab, &format!("openconnect exit {status}"));
        assert!(
            report.contains("Received server disconnect: b0 'Administrator reset'"),
            "{report}"
        );
        assert!(engine.sensors.sessions(&device).await.unwrap().is_empty());
        let status = engine.sensors.status(&device).await.unwrap();
        assert_eq!(status.running.map(|r| r.version), Some(1));
        detail
    });
    assert!(
        report.contains("Username     : client.example.com"),
        "{report}"
    );
    drop(lab);
}
