//! Many sensors on one RA VPN policy: two sensors, each in its own lab (namespaces for
//! the sensor, its client and its inside host), registered with one manager and
//! deployed one policy whose identity enrollment is the manager's internal CA and
//! whose address pool is overridden for the second device. openconnect sees a
//! different identity certificate on each sensor, and the clients get addresses from
//! different ranges.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use mgmt_server::db::cert_enrollments::{
    self, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::deployments::{self, JobStatus};
use mgmt_server::db::devices::{self, Device, DeviceInput, RegistrationState};
use mgmt_server::db::pool_overrides::{self, Ipv4PoolOverrideInput};
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID, policies};
use mgmt_server::services::Services;
use uuid::Uuid;
use vpn_core::channel::RegistrationKey;
use vpn_core::config::PrivateKeyPem;

use super::lab::*;

const KEY: &str = "Two-Sensors-Key-1";

/// Forwards `listener` (in this thread's namespace) to 127.0.0.1:`port` in `netns`:
/// the manager, in the first sensor's namespace, reaches the second sensor's
/// management API through it.
fn forward_into(netns: &str, listener: TcpListener, port: u16) {
    let path = format!("/var/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        for incoming in listener.incoming() {
            let Ok(client) = incoming else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    loop {
                        match from.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if to.write_all(&buffer[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
}

/// openconnect in `lab`'s client namespace with the first lab's client certificates
/// (the policy trusts that lab's CAs), checking the server against `cafile`.
fn openconnect(lab: &Lab, certificates: &Fixture, cafile: &str, extra: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", lab.client.name(), OPENCONNECT])
        .args(["--protocol=anyconnect", "--non-inter", "--passwd-on-stdin"])
        .arg("-c")
        .arg(&certificates.machine.0)
        .arg("-k")
        .arg(&certificates.machine.1)
        .arg("--mca-certificate")
        .arg(&certificates.user.0)
        .arg("--mca-key")
        .arg(&certificates.user.1)
        .args(["--usergroup", e2e::seed::ALIAS])
        .arg("--cafile")
        .arg(cafile)
        .arg(format!("--resolve=localhost:{AGENT_ADDRESS}"))
        .args(extra)
        .arg(format!("https://localhost:{PORT}"));
    command
}

/// The fingerprint of the certificate openconnect accepted on `lab`'s sensor (checked
/// against `cafile` for "localhost"): `openconnect --authenticate` logs in and prints it.
fn fingerprint_openconnect_sees(lab: &Lab, certificates: &Fixture, cafile: &str) -> String {
    let output = run_with_stdin(openconnect(lab, certificates, cafile, &["--authenticate"]));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let fingerprint = shell_value(&stdout, "FINGERPRINT").to_owned();
    assert!(fingerprint.starts_with("pin-sha256:"), "{stdout}");
    fingerprint
}

/// The address the vpnc-script was given (`INTERNAL_IP4_ADDRESS`).
fn client_address(client: &RunningClient) -> std::net::Ipv4Addr {
    let env = std::fs::read_to_string(&client.env).unwrap();
    env.lines()
        .find_map(|line| line.strip_prefix("INTERNAL_IP4_ADDRESS="))
        .unwrap_or_else(|| panic!("no INTERNAL_IP4_ADDRESS in:\n{env}"))
        .parse()
        .unwrap()
}

async fn add_device(pool: &sqlx::PgPool, admin: &Actor, name: &str, host: String) -> Device {
    let mut conn = pool.acquire().await.unwrap();
    devices::create(
        &mut conn,
        admin,
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: name.to_owned(),
            description: String::new(),
            host_name: host,
            nat_id: None,
        },
    )
    .await
    .unwrap()
}

#[test]
fn two_sensors_on_one_policy_present_their_own_certificates_and_hand_out_different_ranges() {
    let first = Lab::start_managed("2a", KEY);
    let second = Lab::start_managed("2b", KEY);
    let path = format!("/var/run/netns/{}", first.server().name());
    let (first, second) = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(&first, &second));
        (first, second)
    })
    .join()
    .unwrap();
    drop((first, second));
}

async fn run(first: &Lab, second: &Lab) {
    let admin = Actor::administrator("admin", Uuid::new_v4(), None);
    let pool = e2e::postgres::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let engine = Services::start(pool.clone(), key.clone(), "fmc")
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let forwarded = listener.local_addr().unwrap().port();
    forward_into(second.server().name(), listener, MANAGEMENT_PORT);
    let a = add_device(
        &pool,
        &admin,
        "FTD-A",
        format!("127.0.0.1:{MANAGEMENT_PORT}"),
    )
    .await;
    let b = add_device(&pool, &admin, "FTD-B", format!("127.0.0.1:{forwarded}")).await;

    let fixture = &first.fixture;
    let seed = e2e::seed::create(
        &pool,
        &key,
        &e2e::seed::SeedInputs {
            machine_ca_pem: &fixture.machine_ca_pem,
            user_ca_pem: &fixture.user_ca_pem,
            identity_chain_pem: &fixture.identity_chain_pem,
            identity_key_pem: &fixture.identity_key_pem,
            ssl_port: PORT,
            split_include: vec![INSIDE_NETWORK.parse().unwrap()],
            devices: vec![a.id, b.id],
        },
    )
    .await;
    let mut conn = pool.acquire().await.unwrap();

    // The policy's identity becomes an internal-CA enrollment for "localhost".
    let policy = policies::get(&pool, GLOBAL_DOMAIN_ID, seed.policy)
        .await
        .unwrap();
    let enrollment_id = policy.ssl_identity_certificate.unwrap().id;
    let enrollment = cert_enrollments::get(&pool, GLOBAL_DOMAIN_ID, enrollment_id)
        .await
        .unwrap();
    let template = engine
        .sensors
        .ca()
        .issue_server_identity(&["localhost".to_owned()], time::OffsetDateTime::now_utc())
        .unwrap();
    cert_enrollments::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        enrollment_id,
        enrollment.version,
        &CertEnrollmentInput {
            name: enrollment.name.clone(),
            description: String::new(),
            enrollment_type: EnrollmentType::SelfSignedCertificate,
            content: EnrollmentInput::Identity {
                certificate_chain_pem: template.certificate_pem,
                private_key_pem: Some(PrivateKeyPem(template.private_key_pem)),
            },
        },
        &key,
    )
    .await
    .unwrap();

    // The pool is overridden for B.
    let address_pool = pools::get_ipv4(&pool, GLOBAL_DOMAIN_ID, seed.pool)
        .await
        .unwrap();
    pools::update_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        address_pool.id,
        address_pool.version,
        &Ipv4AddressPoolInput {
            name: address_pool.name.clone(),
            description: String::new(),
            start: address_pool.start,
            end: address_pool.end,
            mask: address_pool.mask,
            overridable: true,
        },
    )
    .await
    .unwrap();
    pool_overrides::create_ipv4(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        address_pool.id,
        &Ipv4PoolOverrideInput {
            device_id: b.id,
            start: "192.168.78.10".parse().unwrap(),
            end: "192.168.78.250".parse().unwrap(),
            mask: "255.255.255.0".parse().unwrap(),
        },
    )
    .await
    .unwrap();

    let registration_key = RegistrationKey::new(KEY).unwrap();
    let mut registered = Vec::new();
    for device in [&a, &b] {
        let device = engine
            .sensors
            .register_device(&admin, device, &registration_key)
            .await
            .unwrap();
        assert_eq!(device.registration_state, RegistrationState::Registered);
        registered.push(device);
    }
    let deployment = engine
        .deployments
        .deploy(&admin, GLOBAL_DOMAIN_ID, &[a.id, b.id], "two sensors")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let jobs = loop {
        let jobs = deployments::get(&pool, GLOBAL_DOMAIN_ID, deployment.id)
            .await
            .unwrap()
            .jobs;
        if jobs
            .iter()
            .all(|j| matches!(j.status, JobStatus::Deployed | JobStatus::Failed))
        {
            break jobs;
        }
        assert!(Instant::now() < deadline, "deploy never finished: {jobs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for job in &jobs {
        assert_eq!(
            job.status,
            JobStatus::Deployed,
            "{:?}\nA:\n{}\nB:\n{}",
            job.error,
            first.agent_log(),
            second.agent_log()
        );
    }

    // openconnect verifies each sensor's certificate against the manager's CA and
    // sees a different one on each.
    let cafile = first.fixture.dir.path().join("manager-ca.pem");
    std::fs::write(&cafile, engine.sensors.ca().certificate_pem()).unwrap();
    let cafile = cafile.to_str().unwrap().to_owned();
    let pin_a = fingerprint_openconnect_sees(first, fixture, &cafile);
    let pin_b = fingerprint_openconnect_sees(second, fixture, &cafile);
    assert_ne!(pin_a, pin_b, "both sensors present the same certificate");

    // One client on each sensor: addresses from the pool on A, from B's override on B.
    let mut clients = Vec::new();
    for lab in [first, second] {
        let mut client = lab.spawn_tunnel(
            "octest0",
            |script| {
                openconnect(
                    lab,
                    fixture,
                    &cafile,
                    &["-i", "octest0", "--script", script, "--no-dtls"],
                )
            },
            "x\n",
        );
        client.wait_configured(lab, Duration::from_secs(30));
        clients.push(client);
    }
    let address_a = client_address(&clients[0]);
    let address_b = client_address(&clients[1]);
    assert_eq!(address_a.octets()[..3], [192, 168, 77], "{address_a}");
    assert_eq!(address_b.octets()[..3], [192, 168, 78], "{address_b}");
    for (device, expected) in registered.iter().zip([address_a, address_b]) {
        let sessions = engine.sensors.sessions(device).await.unwrap();
        // The `--authenticate` probe left a session of its own, from the same range.
        assert!(
            sessions.iter().any(|s| s.assigned_ipv4 == Some(expected)),
            "{sessions:?}"
        );
        assert!(
            sessions.iter().all(|s| s
                .assigned_ipv4
                .is_some_and(|a| a.octets()[..3] == expected.octets()[..3])),
            "{sessions:?}"
        );
    }
}
