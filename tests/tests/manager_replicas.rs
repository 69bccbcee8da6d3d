//! Several manager replicas on one PostgreSQL: two `mgmt-server run` processes and one
//! sensor process in a network namespace. A token issued by one replica works on the
//! other; a deploy requested on one runs exactly once; the replica that holds the
//! deploy job is killed with SIGKILL while its push is in flight (the sensor is frozen
//! with SIGSTOP so the push cannot finish), restarted, and the job still ends in a true
//! final state within the lease time, after which the next deploy to that device works.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use e2e::sensor::{Agent, as_manager};
use mgmt_server::db::deployments::{self, DeploymentJob, JobStatus};
use mgmt_server::db::devices::{self, DeviceInput, RegistrationState};
use mgmt_server::db::roles::{self, APPLICATION_ROLE, OWNER_ROLE};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID};
use mgmt_server::services::Services;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::channel::RegistrationKey;
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

const KEY: &str = "Reg-Key-11";
const PASSWORD: &str = "Replica-Pass-1";
/// Short, so the test sees a takeover quickly; the default is 30 s.
const LEASE_SECS: u64 = 3;

/// One `mgmt-server run` process in the namespace.
struct Replica {
    child: Child,
    args: Vec<String>,
    log: PathBuf,
    port: u16,
}

impl Replica {
    fn start(netns: &str, args: Vec<String>, log: PathBuf, port: u16) -> Self {
        let child = spawn(netns, &args, &log);
        Self {
            child,
            args,
            log,
            port,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }

    fn restart(&mut self, netns: &str) {
        self.child = spawn(netns, &self.args, &self.log);
    }

    fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(netns: &str, args: &[String], log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(e2e::binaries::manager())
        .args(args)
        .env("MGMT_SERVER_INITIAL_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Waits until the replica answers HTTPS (it writes `ca.pem` just before listening).
async fn wait_until_serving(replica: &mut Replica, http: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = replica.child.try_wait().unwrap() {
            panic!(
                "mgmt-server exited ({status}): {}",
                std::fs::read_to_string(&replica.log).unwrap_or_default()
            );
        }
        let answer = http
            .get(format!(
                "{}/api/fmc_platform/v1/info/serverversion",
                replica.base()
            ))
            .send()
            .await;
        if answer.is_ok_and(|a| a.status().is_success()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mgmt-server never answered: {}",
            std::fs::read_to_string(&replica.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn token(http: &reqwest::Client, replica: &Replica) -> String {
    let answer = http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            replica.base()
        ))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::NO_CONTENT);
    answer.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn deploy_request(
    http: &reqwest::Client,
    replica: &Replica,
    token: &str,
    device: Uuid,
    note: &str,
) -> Value {
    let answer = http
        .post(format!(
            "{}/api/fmc_config/v1/domain/{GLOBAL_DOMAIN_ID}/deployment/deploymentrequests",
            replica.base()
        ))
        .header("X-auth-access-token", token)
        .json(&json!({
            "type": "DeploymentRequest",
            "forceDeploy": true,
            "ignoreWarning": true,
            "deviceList": [device],
            "deploymentNote": note,
        }))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{body}");
    body
}

/// The device's only job of `version`, once it has reached `wanted` (or any final state
/// when `wanted` is None).
async fn job_when(
    pool: &PgPool,
    device: Uuid,
    version: u64,
    wanted: Option<JobStatus>,
    within: Duration,
) -> DeploymentJob {
    let deadline = Instant::now() + within;
    loop {
        let jobs = deployments::list_jobs(
            pool,
            GLOBAL_DOMAIN_ID,
            &deployments::JobFilter {
                device_id: Some(device),
                ..Default::default()
            },
            mgmt_server::db::Page::ALL,
        )
        .await
        .unwrap()
        .items;
        let job = jobs.iter().find(|j| j.config_version == version);
        if let Some(job) = job {
            let done = match wanted {
                Some(status) => job.status == status,
                None => matches!(job.status, JobStatus::Deployed | JobStatus::Failed),
            };
            if done {
                return job.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "job version {version} never reached {wanted:?}: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[test]
fn two_replicas_share_tokens_and_one_deploy_queue_and_a_killed_replicas_push_is_taken_over() {
    let netns = Netns::create("replicas");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let data = dir.path().join("sensor");
    let agent: Agent = e2e::sensor::start_agent(
        e2e::sensor::binary(),
        &netns,
        &socket,
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--management-listen".as_ref(),
            "127.0.0.1:8305".as_ref(),
            "--tun-name".as_ref(),
            "rptun1".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1".as_ref(),
        ],
    );
    let added = e2e::sensor::operator(
        e2e::sensor::binary(),
        &socket,
        &["configure", "manager", "add", "127.0.0.1", KEY],
    );
    assert!(added.status.success(), "{added:?}");
    let sensor_pid = agent.0.id();
    let root = dir.path().to_owned();
    let namespace = netns.name().to_owned();
    // Build the manager's binary before the clock of any wait starts.
    e2e::binaries::manager();

    as_manager(&netns, async move || {
        // One database with the two roles; one secret key file for both replicas.
        let cluster = e2e::postgres::cluster();
        let database = format!("t_{}", Uuid::new_v4().simple());
        cluster.create_database(&database).await.unwrap();
        cluster.provision_roles(&database).await.unwrap();
        let app_url = cluster.connect_url_as(&database, APPLICATION_ROLE);
        let owner_url = cluster.connect_url_as(&database, OWNER_ROLE);
        let pool = roles::connect_as_application(
            Some(cluster.connect_options_as(&database, OWNER_ROLE)),
            cluster.connect_options_as(&database, APPLICATION_ROLE),
            4,
        )
        .await
        .unwrap();
        let key_file = root.join("secret.key");
        let key = EncryptionKey::load_or_create(&key_file).unwrap();

        // The seed scenario and a registered device, written by this process (its own
        // deploy workers stopped: only the two replicas run jobs).
        let services = Services::start(pool.clone(), key.clone(), "fmc-replicas")
            .await
            .unwrap();
        services.stop_workers();
        let admin = Actor::administrator("admin", Uuid::new_v4(), None);
        let device = devices::create(
            &mut pool.acquire().await.unwrap(),
            &admin,
            GLOBAL_DOMAIN_ID,
            &DeviceInput {
                name: "FTD-Replicated".to_owned(),
                description: String::new(),
                host_name: "127.0.0.1:8305".to_owned(),
                nat_id: None,
            },
        )
        .await
        .unwrap();
        seed(&pool, &key, device.id).await;
        let device = services
            .sensors
            .register_device(&admin, &device, &RegistrationKey::new(KEY).unwrap())
            .await
            .unwrap();
        assert_eq!(device.registration_state, RegistrationState::Registered);

        let replica = |name: &str, port: u16| {
            let data_dir = root.join(name);
            Replica::start(
                &namespace,
                vec![
                    "run".to_owned(),
                    "--data-dir".to_owned(),
                    data_dir.display().to_string(),
                    "--listen".to_owned(),
                    format!("127.0.0.1:{port}"),
                    "--name".to_owned(),
                    name.to_owned(),
                    "--database-url".to_owned(),
                    app_url.clone(),
                    "--database-owner-url".to_owned(),
                    owner_url.clone(),
                    "--secret-key-file".to_owned(),
                    key_file.display().to_string(),
                    "--deploy-lease-secs".to_owned(),
                    LEASE_SECS.to_string(),
                    "--deploy-poll-secs".to_owned(),
                    "1".to_owned(),
                    "--initial-admin".to_owned(),
                    "admin".to_owned(),
                ],
                root.join(format!("{name}.log")),
                port,
            )
        };
        let mut a = replica("replica-a", 9441);
        let mut b = replica("replica-b", 9442);
        let ca = reqwest::Certificate::from_pem(services.sensors.ca().certificate_pem().as_bytes())
            .unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        wait_until_serving(&mut a, &http).await;
        wait_until_serving(&mut b, &http).await;

        // A token from A works on B.
        let token = token(&http, &a).await;
        let answer = http
            .get(format!(
                "{}/api/fmc_config/v1/domain/{GLOBAL_DOMAIN_ID}/devices/devicerecords",
                b.base()
            ))
            .header("X-auth-access-token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        assert!(answer.text().await.unwrap().contains("FTD-Replicated"));

        // Freeze the sensor, deploy from B, and kill whichever replica claimed the job
        // while its push hangs.
        signal(sensor_pid, "-STOP");
        deploy_request(&http, &b, &token, device.id, "first, through replica B").await;
        let running = job_when(
            &pool,
            device.id,
            1,
            Some(JobStatus::Deploying),
            Duration::from_secs(20),
        )
        .await;
        let owner: String =
            sqlx::query_scalar("SELECT lease_owner FROM deployment_jobs WHERE id = $1")
                .bind(running.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        let (victim, survivor) = if owner.contains(&format!(":{}:", a.pid())) {
            (&mut a, &mut b)
        } else {
            assert!(
                owner.contains(&format!(":{}:", b.pid())),
                "the job's owner {owner} is neither replica"
            );
            (&mut b, &mut a)
        };
        // Let the push reach the frozen sensor, then SIGKILL its replica.
        tokio::time::sleep(Duration::from_millis(300)).await;
        victim.kill_9();
        let killed_at = Instant::now();
        signal(sensor_pid, "-CONT");
        victim.restart(&namespace);

        // The job ends in a true final state within the lease (plus the push itself).
        let done = job_when(&pool, device.id, 1, None, Duration::from_secs(30)).await;
        let took = killed_at.elapsed();
        eprintln!(
            "job v1 ended {:?} after {took:?} (lease {LEASE_SECS} s); transcript starts: {:?}",
            done.status,
            done.transcript.lines().take(2).collect::<Vec<_>>()
        );
        assert_eq!(done.status, JobStatus::Deployed, "{done:?}");
        assert!(
            took < Duration::from_secs(LEASE_SECS + 10),
            "took {took:?} after the kill"
        );
        assert!(
            done.transcript.contains("whose lease expired"),
            "{}",
            done.transcript
        );
        let status = services.sensors.status(&device).await.unwrap();
        let running = status.running.unwrap();
        assert_eq!(
            (running.version, running.hash.as_str()),
            (1, done.content_hash.as_str())
        );
        // The DEPLOYED end was recorded once, by one replica.
        let ends: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log WHERE object_id = $1 AND detail = 'DEPLOYED'",
        )
        .bind(done.id)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(ends, 1);

        // The next deploy to that device works, requested on the survivor.
        wait_until_serving(victim, &http).await;
        deploy_request(&http, survivor, &token, device.id, "second").await;
        let second = job_when(&pool, device.id, 2, None, Duration::from_secs(30)).await;
        assert_eq!(second.status, JobStatus::Deployed, "{second:?}");
        let jobs: i64 =
            sqlx::query_scalar("SELECT count(*) FROM deployment_jobs WHERE device_id = $1")
                .bind(device.id)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(jobs, 2);
        let status = services.sensors.status(&device).await.unwrap();
        assert_eq!(status.running.unwrap().version, 2);
    });
    drop(agent);
}

/// The seed's objects with generated certificates, targeting `device`.
async fn seed(pool: &PgPool, key: &EncryptionKey, device: Uuid) {
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
    e2e::seed::create(
        pool,
        key,
        &e2e::seed::SeedInputs {
            machine_ca_pem: &machine_ca.cert.cert_pem,
            user_ca_pem: &user_ca.cert.cert_pem,
            identity_chain_pem: &chain,
            identity_key_pem: &leaf.key_pem,
            ssl_port: 8443,
            split_include: Vec::new(),
            devices: vec![device],
        },
    )
    .await;
}
