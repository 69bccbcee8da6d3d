//! The management channel in one process: the sensor's real management API
//! (`sensor_agent::manager::ManagerChannel`) on a loopback port, driven by the
//! manager's real client (`mgmt_server::sensor_client`) and internal CA
//! (`mgmt_server::pki::InternalCa`): registration, mutual TLS, config push, status,
//! sessions and their events. It lives here, not in `sensor-agent`, because it uses
//! both products.

#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mgmt_server::pki::{InternalCa, IssuedIdentity};
use mgmt_server::sensor_client::{
    RegisteredSensor, RegistrationOffer, SensorClient, SensorClientError, SensorEndpoint, register,
};
use sensor_agent::config_store::{ConfigStore, Deployer, nothing_applied};
use sensor_agent::manager::enrollment::EnrollmentFiles;
use sensor_agent::manager::{AgentHandles, ManagerChannel};
use sensor_agent::sessions::{NewSession, SessionDb, SessionDbSettings};
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;
use vpn_core::channel::{NatId, RegistrationKey, TerminateRequest};
use vpn_core::pool::PoolSet;
use vpn_core::session::{AuthMode, ClientInfo, SessionEventKind};

const KEY: &str = "cisco123";

/// One sensor: data directory, session database, deployer and the running API.
struct Sensor {
    _dir: TempDir,
    dir_path: std::path::PathBuf,
    channel: Arc<ManagerChannel>,
    sessions: SessionDb,
    address: SocketAddr,
}

impl Sensor {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dir_path = dir.path().to_owned();
        let (channel, sessions, address) = start_on(&dir_path).await;
        Self {
            _dir: dir,
            dir_path,
            channel,
            sessions,
            address,
        }
    }

    /// The same data directory opened again, as after a restart.
    async fn restart(&mut self) {
        let (channel, sessions, address) = start_on(&self.dir_path).await;
        self.channel = channel;
        self.sessions = sessions;
        self.address = address;
    }

    fn endpoint(&self) -> SensorEndpoint {
        SensorEndpoint {
            host: self.address.ip().to_string(),
            port: self.address.port(),
        }
    }
}

async fn start_on(dir: &std::path::Path) -> (Arc<ManagerChannel>, SessionDb, SocketAddr) {
    let store = ConfigStore::open(dir).unwrap();
    let config = store
        .running()
        .map(Arc::clone)
        .unwrap_or_else(|| Arc::new(nothing_applied()));
    let pools = PoolSet::from_device_config(&config).unwrap();
    let sessions = SessionDb::new(pools, SessionDbSettings::default());
    let (sender, receiver) = watch::channel(config);
    let deployer = Arc::new(Deployer::new(store, sender, sessions.clone()));
    let agent = AgentHandles {
        deployer,
        sessions: sessions.clone(),
        config: receiver,
    };
    let channel = ManagerChannel::open(dir, "ftd-test", agent, OffsetDateTime::now_utc()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(Arc::clone(&channel).serve(listener));
    (channel, sessions, address)
}

/// The manager's side: its CA and its channel identity.
struct Manager {
    ca: InternalCa,
    identity: IssuedIdentity,
}

impl Manager {
    fn new() -> Self {
        let now = OffsetDateTime::now_utc();
        let ca = InternalCa::generate("Manager Internal CA", now).unwrap();
        let identity = ca.issue_manager_identity("fmc", now).unwrap();
        Self { ca, identity }
    }

    async fn register(
        &self,
        sensor: &Sensor,
        key: &str,
        nat_id: Option<&str>,
        device_id: Uuid,
    ) -> Result<RegisteredSensor, SensorClientError> {
        let key = RegistrationKey::new(key).unwrap();
        let nat_id = nat_id.map(|id| NatId::new(id).unwrap());
        let endpoint = sensor.endpoint();
        let offer = RegistrationOffer {
            endpoint: &endpoint,
            key: &key,
            nat_id: nat_id.as_ref(),
            device_id,
            device_name: "FTD-1",
            manager_name: "fmc",
            ca: &self.ca,
            manager_identity: &self.identity,
        };
        register(&offer, OffsetDateTime::now_utc()).await
    }

    fn client(&self, sensor: &Sensor, registered: &RegisteredSensor) -> SensorClient {
        SensorClient::new(
            sensor.endpoint(),
            self.ca.certificate_pem(),
            &self.identity,
            &registered.sensor_certificate_pem,
        )
        .unwrap()
    }
}

/// A sensor with a manager added and registered.
async fn registered_pair() -> (Sensor, Manager, SensorClient, Uuid) {
    let sensor = Sensor::start().await;
    sensor
        .channel
        .add_manager("127.0.0.1", KEY, None, OffsetDateTime::now_utc())
        .unwrap();
    let manager = Manager::new();
    let device_id = Uuid::new_v4();
    let registered = manager
        .register(&sensor, KEY, None, device_id)
        .await
        .unwrap();
    let client = manager.client(&sensor, &registered);
    (sensor, manager, client, device_id)
}

/// The e2e sample configuration (profile RAVPN-MCA, group policy GP-MCA, pool POOL4)
/// for `device_id` at `version`, with a user CA trustpoint (valid to 2031-01-02) on
/// its profile and an identity certificate (valid to 2028-03-04).
fn document(device_id: Uuid, version: u64, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(&e2e::sensor::deployable_config()).unwrap();
    value["device_id"] = json!(device_id.to_string());
    value["version"] = json!(version);
    let (ca_pem, identity_pem, identity_key_pem) = certificates();
    value["trustpoints"] = json!([{ "name": "CA-USER", "ca_certificates_pem": ca_pem }]);
    value["connection_profiles"][0]["trustpoints"] = json!(["CA-USER"]);
    value["headend"]["identity"] = json!({
        "trustpoint": "VPN-ID",
        "certificate_chain_pem": identity_pem,
        "private_key_pem": identity_key_pem,
    });
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "User CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.not_after = rcgen::date_time_ymd(2031, 1, 2);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let identity_key = rcgen::KeyPair::generate().unwrap();
    let mut identity_params =
        rcgen::CertificateParams::new(vec!["vpn.example.com".to_owned()]).unwrap();
    identity_params.not_after = rcgen::date_time_ymd(2028, 3, 4);
    let identity = identity_params.self_signed(&identity_key).unwrap();
    (ca.pem(), identity.pem(), identity_key.serialize_pem())
}

/// An MCA login of `username` on the sample configuration's profile and pool, as
/// openconnect 9.01 presents itself.
fn new_session(username: &str) -> NewSession {
    NewSession {
        username: username.to_owned(),
        tunnel_group: "RAVPN-MCA".to_owned(),
        group_policy: "GP-MCA".to_owned(),
        ipv4_pools: vec!["POOL4".to_owned()],
        ipv6_pools: Vec::new(),
        public_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        tcp_src_port: 50529,
        tcp_dst_port: 443,
        auth_mode: AuthMode::MultipleCertificate,
        client: ClientInfo {
            os: "linux-64".to_owned(),
            os_version: None,
            client_type: "AnyConnect".to_owned(),
            version: "Open AnyConnect VPN Agent v9.01-3".to_owned(),
        },
        machine_fingerprint: None,
        machine_certificate: None,
        user_certificate: None,
        username_derivation: "CN of the second certificate".to_owned(),
        idle_timeout_minutes: Some(30),
        max_connect_time_minutes: None,
        simultaneous_logins: 3,
    }
}

fn refusal_of(error: &SensorClientError) -> (&str, String) {
    match error {
        SensorClientError::Refused { error, .. } => (error.error.as_str(), error.message.clone()),
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_with_the_key_registers_and_then_talks_over_mutual_tls() {
    let (sensor, _manager, client, device_id) = registered_pair().await;
    let status = client.status().await.unwrap();
    assert_eq!(status.device_id, Some(device_id));
    assert_eq!(status.hostname, "ftd-test");
    // Every package of the workspace carries the workspace's version.
    assert_eq!(status.agent_version, env!("CARGO_PKG_VERSION"));
    let channel_certificate = status.channel_certificate.unwrap();
    assert!(channel_certificate.subject.contains(&device_id.to_string()));
    assert!(channel_certificate.not_after > OffsetDateTime::now_utc() + time::Duration::days(365));
    let managers = sensor.channel.show_managers();
    assert!(
        managers.contains("Registration              : Completed"),
        "{managers}"
    );
    assert!(
        managers.contains("Host                      : 127.0.0.1:8305"),
        "{managers}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_refused_and_the_right_one_still_works_afterwards() {
    let sensor = Sensor::start().await;
    sensor
        .channel
        .add_manager("127.0.0.1", KEY, None, OffsetDateTime::now_utc())
        .unwrap();
    let manager = Manager::new();
    let error = manager
        .register(&sensor, "wrong-key", None, Uuid::new_v4())
        .await
        .unwrap_err();
    let (code, message) = refusal_of(&error);
    assert_eq!(code, "registration-refused");
    assert_eq!(message, "the registration key does not match");
    assert!(sensor.channel.show_managers().contains("Pending"));
    manager
        .register(&sensor, KEY, None, Uuid::new_v4())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_spent_by_the_registration_and_kept_nowhere() {
    let (mut sensor, _manager, _client, device_id) = registered_pair().await;
    // Another manager with the same key cannot even finish the TLS handshake now.
    let other = Manager::new();
    let error = other
        .register(&sensor, KEY, None, Uuid::new_v4())
        .await
        .unwrap_err();
    assert!(
        matches!(error, SensorClientError::Unreachable { .. }),
        "{error}"
    );
    // The key is on disk nowhere, and a restarted sensor is still registered.
    for entry in std::fs::read_dir(sensor.dir_path.join("manager")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains(KEY));
    }
    sensor.restart().await;
    assert_eq!(sensor.channel.device_id(), Some(device_id));
    let error = sensor
        .channel
        .add_manager("127.0.0.1", KEY, None, OffsetDateTime::now_utc())
        .unwrap_err();
    assert!(
        error.to_string().contains("configure manager delete"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_certificate_from_another_ca_is_refused_in_the_handshake() {
    let (sensor, manager, client, _device) = registered_pair().await;
    assert!(client.status().await.is_ok());
    let rogue = Manager::new();
    let pinned_sensor = fake_registered(&sensor, &manager).await;
    let client = SensorClient::new(
        sensor.endpoint(),
        manager.ca.certificate_pem(),
        &rogue.identity,
        &pinned_sensor.sensor_certificate_pem,
    )
    .unwrap();
    let error = client.status().await.unwrap_err();
    assert!(
        matches!(error, SensorClientError::Unreachable { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_certificate_of_the_same_ca_is_not_the_manager() {
    let (sensor, manager, _client, _device) = registered_pair().await;
    let pinned_sensor = fake_registered(&sensor, &manager).await;
    let second = manager
        .ca
        .issue_manager_identity("fmc", OffsetDateTime::now_utc())
        .unwrap();
    let client = SensorClient::new(
        sensor.endpoint(),
        manager.ca.certificate_pem(),
        &second,
        &pinned_sensor.sensor_certificate_pem,
    )
    .unwrap();
    assert!(client.status().await.is_err());
}

/// The registered sensor's certificate, as the manager stored it: read back from the
/// sensor's files (tests only).
async fn fake_registered(sensor: &Sensor, _manager: &Manager) -> RegisteredSensor {
    let registration = EnrollmentFiles::open(&sensor.dir_path)
        .unwrap()
        .registration()
        .unwrap()
        .unwrap();
    RegisteredSensor {
        device_id: registration.device_id,
        sensor_certificate_pem: registration.sensor_certificate_pem,
        agent_version: String::new(),
        hostname: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_refuses_a_sensor_other_than_the_one_it_registered() {
    let (sensor_a, manager, client_a, _) = registered_pair().await;
    // Sensor B, registered to the same manager CA.
    let sensor_b = Sensor::start().await;
    sensor_b
        .channel
        .add_manager("127.0.0.1", KEY, None, OffsetDateTime::now_utc())
        .unwrap();
    manager
        .register(&sensor_b, KEY, None, Uuid::new_v4())
        .await
        .unwrap();
    let pinned_a = fake_registered(&sensor_a, &manager).await;
    let misdirected = SensorClient::new(
        sensor_b.endpoint(),
        manager.ca.certificate_pem(),
        &manager.identity,
        &pinned_a.sensor_certificate_pem,
    )
    .unwrap();
    let error = misdirected.status().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("other than the one issued to it"), "{text}");
    // An unregistered sensor (self-signed bootstrap certificate) is refused too.
    let stranger = Sensor::start().await;
    let to_stranger = SensorClient::new(
        stranger.endpoint(),
        manager.ca.certificate_pem(),
        &manager.identity,
        &pinned_a.sensor_certificate_pem,
    )
    .unwrap();
    assert!(to_stranger.status().await.is_err());
    assert!(client_a.status().await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_address_and_nat_id_are_checked_before_the_key() {
    let sensor = Sensor::start().await;
    let manager = Manager::new();
    sensor
        .channel
        .add_manager("192.0.2.10", KEY, None, OffsetDateTime::now_utc())
        .unwrap();
    let error = manager
        .register(&sensor, KEY, None, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(
        refusal_of(&error).1,
        "the call comes from 127.0.0.1, but the manager configured on this sensor is 192.0.2.10:8305"
    );
    sensor.channel.delete_manager().unwrap();
    sensor
        .channel
        .add_manager("DONTRESOLVE", KEY, Some("nat-7"), OffsetDateTime::now_utc())
        .unwrap();
    for offered in [None, Some("nat-8")] {
        let error = manager
            .register(&sensor, KEY, offered, Uuid::new_v4())
            .await
            .unwrap_err();
        assert_eq!(
            refusal_of(&error).1,
            "the NAT ID does not match the one configured on this sensor"
        );
    }
    manager
        .register(&sensor, KEY, Some("nat-7"), Uuid::new_v4())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sensor_with_no_manager_configured_refuses_registration() {
    let sensor = Sensor::start().await;
    let error = Manager::new()
        .register(&sensor, KEY, None, Uuid::new_v4())
        .await
        .unwrap_err();
    assert_eq!(refusal_of(&error).0, "no-manager-configured");
}

#[tokio::test(flavor = "multi_thread")]
async fn configure_manager_add_checks_its_arguments() {
    let sensor = Sensor::start().await;
    let now = OffsetDateTime::now_utc();
    let too_long = "k".repeat(38);
    for (host, key, nat, expected) in [
        ("127.0.0.1", too_long.as_str(), None, "at most 37"),
        ("127.0.0.1", "bad_key", None, "'_' at position 4"),
        ("127.0.0.1", KEY, Some("nat id"), "NAT ID has ' '"),
        ("DONTRESOLVE", KEY, None, "DONTRESOLVE needs a NAT ID"),
        ("fmc:0", KEY, None, "port"),
    ] {
        let error = sensor.channel.add_manager(host, key, nat, now).unwrap_err();
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert_eq!(sensor.channel.show_managers(), "No managers configured.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn before_registration_nothing_but_registration_is_served() {
    let sensor = Sensor::start().await;
    let http = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://{}/api/v1/config", sensor.address);
    let answer = http
        .post(&url)
        .body(document(Uuid::new_v4(), 9, |_| {}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"], "not-registered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_is_applied_and_older_foreign_or_invalid_ones_change_nothing() {
    let (_sensor, _manager, client, device_id) = registered_pair().await;
    let applied = client
        .deploy(document(device_id, 10, |_| {}))
        .await
        .unwrap();
    assert_eq!(applied.version, 10);
    assert!(
        applied
            .transcript
            .iter()
            .any(|line| line == "tunnel-group RAVPN-MCA type remote-access"),
        "{:?}",
        applied.transcript
    );
    let running = client.status().await.unwrap().running.unwrap();
    assert_eq!(
        (running.version, running.hash.as_str()),
        (10, applied.hash.as_str())
    );

    let older = client
        .deploy(document(device_id, 9, |_| {}))
        .await
        .unwrap_err();
    assert_eq!(refusal_of(&older).0, "not-newer");
    let foreign = client
        .deploy(document(Uuid::new_v4(), 11, |_| {}))
        .await
        .unwrap_err();
    assert_eq!(refusal_of(&foreign).0, "other-device");
    let invalid = client
        .deploy(document(device_id, 12, |v| {
            v["connection_profiles"][0]["group_policy"] = json!("NO-SUCH-POLICY");
        }))
        .await
        .unwrap_err();
    let SensorClientError::Refused { status, error } = &invalid else {
        panic!("{invalid}");
    };
    assert_eq!((*status, error.error.as_str()), (422, "invalid-config"));
    assert!(
        error.problems.iter().any(|p| p.contains("NO-SUCH-POLICY")),
        "{:?}",
        error.problems
    );
    let garbage = client.deploy(b"{not json".to_vec()).await.unwrap_err();
    assert_eq!(refusal_of(&garbage).0, "bad-request");
    let after = client.status().await.unwrap().running.unwrap();
    assert_eq!((after.version, after.hash), (10, applied.hash));
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_terminated_and_reported_as_events() {
    let (sensor, _manager, client, device_id) = registered_pair().await;
    client
        .deploy(document(device_id, 10, |_| {}))
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let alice = sensor.sessions.login(new_session("alice"), now).unwrap();
    let _bob = sensor.sessions.login(new_session("bob"), now).unwrap();
    let _carol = sensor.sessions.login(new_session("carol"), now).unwrap();
    let _carol2 = sensor.sessions.login(new_session("carol"), now).unwrap();

    let listed = client.sessions().await.unwrap();
    let mut names: Vec<&str> = listed.items.iter().map(|s| s.username.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob", "carol", "carol"]);
    let status = client.status().await.unwrap();
    assert_eq!(status.sessions.active + status.sessions.inactive, 4);

    let by_session = client
        .terminate(&TerminateRequest::Session {
            indexes: vec![alice.index, 9999],
        })
        .await
        .unwrap();
    assert_eq!(by_session.terminated, 1);
    let by_user = client
        .terminate(&TerminateRequest::User {
            usernames: vec!["carol".to_owned()],
        })
        .await
        .unwrap();
    assert_eq!(by_user.terminated, 2);
    let rest = client.terminate(&TerminateRequest::Device).await.unwrap();
    assert_eq!(rest.terminated, 1);
    assert!(client.sessions().await.unwrap().items.is_empty());

    let page = client.session_events(0, 5).await.unwrap();
    assert_eq!(page.events.len(), 5);
    assert!(!page.lost);
    let rest = client.session_events(page.next_cursor, 100).await.unwrap();
    assert_eq!(rest.events.len(), 3);
    let all: Vec<_> = page.events.iter().chain(&rest.events).collect();
    let started = all
        .iter()
        .filter(|e| matches!(e.kind, SessionEventKind::Started { .. }))
        .count();
    assert_eq!(started, 4);
    let ended = client.session_events(rest.next_cursor, 100).await.unwrap();
    assert!(ended.events.is_empty());
    assert_eq!(ended.next_cursor, rest.next_cursor);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_reports_identity_and_trustpoint_expiry() {
    let (_sensor, _manager, client, device_id) = registered_pair().await;
    let before = client.status().await.unwrap();
    assert_eq!(before.running, None);
    assert_eq!(before.identity_certificate, None);
    client
        .deploy(document(device_id, 10, |_| {}))
        .await
        .unwrap();
    let status = client.status().await.unwrap();
    assert_eq!(status.running.unwrap().connection_profiles, 1);
    let identity = status.identity_certificate.unwrap();
    assert_eq!(identity.name, "VPN-ID");
    assert_eq!(identity.not_after.date().to_string(), "2028-03-04");
    assert_eq!(status.trustpoints.len(), 1);
    assert_eq!(status.trustpoints[0].name, "CA-USER");
    assert_eq!(status.trustpoints[0].subject, "CN=User CA");
    assert_eq!(
        status.trustpoints[0].not_after.date().to_string(),
        "2031-01-02"
    );
    assert!(status.uptime_secs < 600);
}
