use std::collections::BTreeMap;

use serde_json::{Value, json};
use time::macros::datetime;
use vpn_core::config::Trustpoint;

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::dataplane::Router;
use crate::headend::HeadendSettings;
use crate::services::{ServiceParts, Services};
use crate::sessions::{NewSession, SessionDbSettings};
use crate::testing::{
    deployable_sample, free_port, presented_certificate, sample_config, test_identity,
};

const NOW: OffsetDateTime = datetime!(2026-11-26 10:00:00 UTC);

/// The sample configuration at `version`, changed by `edit`.
fn document(version: u64, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = deployable_sample();
    value["version"] = json!(version);
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

fn with_second_profile(value: &mut Value) {
    let mut second = value["connection_profiles"][0].clone();
    second["name"] = json!("RAVPN-SALES");
    value["connection_profiles"]
        .as_array_mut()
        .unwrap()
        .push(second);
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path.clone());
                files.insert(path, Vec::new());
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn an_empty_data_directory_has_no_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::open(dir.path()).unwrap();
    assert!(store.running().is_none());
    assert!(store.history().is_empty());
}

#[test]
fn an_applied_configuration_answers_version_hash_transcript_and_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    let bytes = document(3, |_| {});
    let outcome = store.apply(&bytes, None, NOW).unwrap();
    let expected = DeviceConfig::from_json(&bytes).unwrap();
    assert_eq!(outcome.version, 3);
    assert_eq!(outcome.hash, expected.content_hash());
    assert!(
        outcome
            .transcript
            .iter()
            .any(|line| line == "tunnel-group RAVPN-MCA type remote-access"),
        "{:?}",
        outcome.transcript
    );
    assert_eq!(store.running().unwrap().content_hash(), outcome.hash);
    let on_disk = std::fs::read(dir.path().join("running.json")).unwrap();
    assert_eq!(DeviceConfig::from_json(&on_disk).unwrap(), expected);
    assert_eq!(store.history(), vec![3]);
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `running.json` and the history hold the headend's private key and the local users'
/// password hashes: only the agent's user may read them, also after a restart.
#[test]
fn the_running_configuration_and_its_history_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut store = ConfigStore::open(&data).unwrap();
    store.apply(&document(3, |_| {}), None, NOW).unwrap();
    store.apply(&document(4, |_| {}), None, NOW).unwrap();
    drop(store);
    ConfigStore::open(&data).unwrap();
    let running = data.join("running.json");
    assert!(
        std::fs::read_to_string(&running)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("history")), 0o700);
    assert_eq!(mode(&running), 0o600);
    for version in [3, 4] {
        assert_eq!(mode(&data.join(format!("history/{version}.json"))), 0o600);
    }
}

/// Files an older agent left readable by everyone are made private at start.
#[test]
fn files_an_older_agent_left_readable_by_others_are_made_private_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    store.apply(&document(3, |_| {}), None, NOW).unwrap();
    drop(store);
    let open = std::fs::Permissions::from_mode(0o644);
    for path in [
        dir.path().join("running.json"),
        dir.path().join("history/3.json"),
    ] {
        std::fs::set_permissions(&path, open.clone()).unwrap();
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    ConfigStore::open(dir.path()).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("running.json")), 0o600);
    assert_eq!(mode(&dir.path().join("history/3.json")), 0o600);
}

#[test]
fn a_restarted_store_comes_back_with_the_last_applied_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    store.apply(&document(3, |_| {}), None, NOW).unwrap();
    let last = store
        .apply(&document(4, with_second_profile), None, NOW)
        .unwrap();
    drop(store);
    let restarted = ConfigStore::open(dir.path()).unwrap();
    let running = restarted.running().unwrap();
    assert_eq!(running.version, 4);
    assert_eq!(running.content_hash(), last.hash);
    assert!(running.connection_profile("RAVPN-SALES").is_some());
}

#[test]
fn refused_configurations_leave_memory_and_disk_exactly_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    let applied = store.apply(&document(5, |_| {}), None, NOW).unwrap();
    let before = snapshot(dir.path());
    let other_device = Uuid::from_u128(0x1234);

    let refusals: Vec<(&str, Vec<u8>, Option<Uuid>)> = vec![
        ("older", document(4, with_second_profile), None),
        ("same version", document(5, with_second_profile), None),
        (
            "other device",
            document(6, |v| v["device_id"] = json!(other_device.to_string())),
            None,
        ),
        ("not this device", document(6, |_| {}), Some(other_device)),
        (
            "invalid",
            document(6, |v| {
                v["connection_profiles"][0]["group_policy"] = json!("NOPE")
            }),
            None,
        ),
        ("unreadable", b"{\"schema_version\": 1,".to_vec(), None),
    ];
    for (what, bytes, device) in refusals {
        let error = store.apply(&bytes, device, NOW).unwrap_err();
        match what {
            "older" | "same version" => assert!(matches!(error, ApplyError::NotNewer { .. })),
            "other device" | "not this device" => {
                assert!(matches!(error, ApplyError::OtherDevice { .. }));
            }
            "invalid" => assert!(matches!(error, ApplyError::Invalid(_))),
            _ => assert!(matches!(error, ApplyError::Parse(_))),
        }
        assert_eq!(
            store.running().unwrap().content_hash(),
            applied.hash,
            "{what}"
        );
        assert_eq!(snapshot(dir.path()), before, "{what}");
    }
}

#[test]
fn an_invalid_configuration_is_refused_with_every_problem_and_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    let bytes = document(6, |v| {
        v["connection_profiles"][0]["group_policy"] = json!("NOPE");
        v["connection_profiles"][0]["ipv4_pools"] = json!(["NOPOOL"]);
    });
    let error = store.apply(&bytes, None, NOW).unwrap_err();
    let ApplyError::Invalid(problems) = &error else {
        panic!("{error}");
    };
    assert!(problems.len() >= 2, "{problems:?}");
    let message = error.to_string();
    assert!(
        message.contains("$.connection_profiles[0].group_policy"),
        "{message}"
    );
    assert!(
        message.contains("$.connection_profiles[0].ipv4_pools[0]"),
        "{message}"
    );
    assert!(store.running().is_none());
    assert!(!dir.path().join("running.json").exists());
}

#[test]
fn history_keeps_only_the_last_ten_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    for version in 1..=13 {
        store.apply(&document(version, |_| {}), None, NOW).unwrap();
    }
    assert_eq!(store.history(), (4..=13).collect::<Vec<u64>>());
    let kept = store.history_config(4).unwrap();
    assert_eq!(DeviceConfig::from_json(&kept).unwrap().version, 4);
    assert!(store.history_config(3).is_none());
}

#[test]
fn leftovers_of_an_interrupted_apply_are_ignored_and_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ConfigStore::open(dir.path()).unwrap();
    let applied = store.apply(&document(7, |_| {}), None, NOW).unwrap();
    drop(store);
    // A half-written new running.json and a stale history temp file, as a process
    // killed before its renames leaves them.
    let partial = dir.path().join(".tmp-running.json.4242");
    std::fs::write(&partial, &document(8, with_second_profile)[..40]).unwrap();
    let stale = dir.path().join("history").join(".tmp-8.json.4242");
    std::fs::write(&stale, document(8, with_second_profile)).unwrap();

    // Killed between its history copy and running.json: version 8 never ran.
    let unrun = dir.path().join("history").join("8.json");
    std::fs::write(&unrun, document(8, with_second_profile)).unwrap();

    let mut store = ConfigStore::open(dir.path()).unwrap();
    assert_eq!(store.running().unwrap().content_hash(), applied.hash);
    assert!(!unrun.exists());
    assert!(!partial.exists());
    assert!(!stale.exists());
    assert_eq!(store.history(), vec![7]);
    // And the next apply works as usual.
    assert_eq!(
        store
            .apply(&document(8, |_| {}), None, NOW)
            .unwrap()
            .version,
        8
    );
}

#[test]
fn a_corrupt_running_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("running.json"), b"{").unwrap();
    let error = ConfigStore::open(dir.path()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }));
    assert!(error.to_string().contains("running.json"));
}

fn session(username: &str, profile: &str) -> NewSession {
    NewSession {
        tunnel_group: profile.to_owned(),
        idle_timeout_minutes: None,
        ..crate::testing::new_session(username)
    }
}

/// A deployer running version 3 with two profiles, alice on RAVPN-MCA and bob on
/// RAVPN-SALES.
fn running_agent(
    dir: &Path,
) -> (
    Deployer,
    SessionDb,
    watch::Receiver<Arc<DeviceConfig>>,
    u32,
    u32,
) {
    let mut store = ConfigStore::open(dir).unwrap();
    store
        .apply(&document(3, with_second_profile), None, NOW)
        .unwrap();
    let running = Arc::clone(store.running().unwrap());
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&running).unwrap(),
        SessionDbSettings::default(),
    );
    let alice = sessions
        .login(session("alice", "RAVPN-MCA"), NOW)
        .unwrap()
        .index;
    let bob = sessions
        .login(session("bob", "RAVPN-SALES"), NOW)
        .unwrap()
        .index;
    let (sender, receiver) = watch::channel(running);
    (
        Deployer::new(store, sender, sessions.clone()),
        sessions,
        receiver,
        alice,
        bob,
    )
}

fn live_users(sessions: &SessionDb) -> Vec<String> {
    sessions
        .sessions()
        .into_iter()
        .map(|s| s.username)
        .collect()
}

#[test]
fn a_redeploy_keeps_sessions_of_untouched_profiles_and_ends_those_of_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, sessions, receiver, _alice, bob) = running_agent(dir.path());
    // Version 4 drops RAVPN-SALES and lowers the group policy's MTU: alice's profile
    // is untouched.
    let outcome = deployer
        .deploy(
            &document(4, |v| v["group_policies"][0]["mtu"] = json!(1300)),
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(outcome.applied.version, 4);
    assert_eq!(outcome.ended_sessions, vec![bob]);
    assert_eq!(live_users(&sessions), vec!["alice".to_owned()]);
    // No services attached: nothing but the configuration and sessions changed.
    assert!(outcome.changes.is_empty(), "{:?}", outcome.changes);
    // The headend's channel carries the new configuration.
    assert_eq!(receiver.borrow().version, 4);
    assert!(
        receiver
            .borrow()
            .connection_profile("RAVPN-SALES")
            .is_none()
    );
}

#[test]
fn a_redeploy_that_changes_a_profile_s_authentication_ends_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, sessions, _receiver, alice, _bob) = running_agent(dir.path());
    let outcome = deployer
        .deploy(
            &document(4, |v| {
                with_second_profile(v);
                v["connection_profiles"][0]["aaa"]["enable_multiple_certificate_authentication"] =
                    json!(false);
            }),
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(outcome.ended_sessions, vec![alice]);
    assert_eq!(live_users(&sessions), vec!["bob".to_owned()]);
}

#[test]
fn a_redeploy_that_moves_the_pool_away_ends_sessions_whose_address_left_it() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, sessions, _receiver, alice, bob) = running_agent(dir.path());
    let outcome = deployer
        .deploy(
            &document(4, |v| {
                with_second_profile(v);
                v["ipv4_pools"][0]["start"] = json!("10.77.0.50");
                v["ipv4_pools"][0]["end"] = json!("10.77.0.60");
            }),
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(outcome.ended_sessions, vec![alice, bob]);
    assert!(live_users(&sessions).is_empty());
}

#[test]
fn a_refused_deploy_changes_neither_the_headend_nor_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, sessions, receiver, _alice, _bob) = running_agent(dir.path());
    let before = snapshot(dir.path());
    let error = deployer
        .deploy(&document(3, |_| {}), None, NOW)
        .unwrap_err();
    assert!(matches!(
        error,
        ApplyError::NotNewer {
            running: 3,
            offered: 3
        }
    ));
    assert_eq!(
        live_users(&sessions),
        vec!["alice".to_owned(), "bob".to_owned()]
    );
    assert_eq!(receiver.borrow().version, 3);
    assert!(!receiver.has_changed().unwrap());
    assert_eq!(snapshot(dir.path()), before);
}

fn trustpoint(name: &str, pem: &str) -> Trustpoint {
    serde_json::from_value(json!({ "name": name, "ca_certificates_pem": pem })).unwrap()
}

#[test]
fn a_profile_admits_its_sessions_only_while_its_trust_is_unchanged() {
    let mut old = sample_config();
    old.trustpoints = vec![trustpoint("ROOT-A", "pem a"), trustpoint("ROOT-B", "pem b")];
    old.connection_profiles[0].trustpoints = vec!["ROOT-A".to_owned()];
    assert!(profile_still_admits(&old, &old.clone(), "RAVPN-MCA"));

    let mut other_trustpoint_changed = old.clone();
    other_trustpoint_changed.trustpoints[1] = trustpoint("ROOT-B", "pem b2");
    assert!(profile_still_admits(
        &old,
        &other_trustpoint_changed,
        "RAVPN-MCA"
    ));

    let mut list_changed = old.clone();
    list_changed.connection_profiles[0].trustpoints = vec!["ROOT-B".to_owned()];
    assert!(!profile_still_admits(&old, &list_changed, "RAVPN-MCA"));

    let mut certificate_changed = old.clone();
    certificate_changed.trustpoints[0] = trustpoint("ROOT-A", "pem a2");
    assert!(!profile_still_admits(
        &old,
        &certificate_changed,
        "RAVPN-MCA"
    ));

    let mut removed = old.clone();
    removed.connection_profiles.clear();
    assert!(!profile_still_admits(&old, &removed, "RAVPN-MCA"));
}

#[test]
fn with_nothing_applied_the_placeholder_runs_and_the_first_deploy_of_any_version_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::open(dir.path()).unwrap();
    assert!(store.running().is_none());
    let placeholder = nothing_applied();
    assert!(is_nothing_applied(&placeholder));
    assert!(placeholder.connection_profiles.is_empty() && placeholder.ipv4_pools.is_empty());
    assert!(placeholder.device_id.is_nil());
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&placeholder).unwrap(),
        SessionDbSettings::default(),
    );
    let (sender, receiver) = watch::channel(Arc::new(placeholder));
    let deployer = Deployer::new(store, sender, sessions);

    let error = deployer
        .deploy(&document(0, |_| {}), None, NOW)
        .unwrap_err();
    assert!(
        matches!(
            error,
            ApplyError::NotNewer {
                running: 0,
                offered: 0
            }
        ),
        "{error}"
    );
    assert!(!dir.path().join("running.json").exists());

    let outcome = deployer.deploy(&document(7, |_| {}), None, NOW).unwrap();
    assert_eq!(outcome.applied.version, 7);
    assert_eq!(receiver.borrow().version, 7);
    assert!(!is_nothing_applied(&receiver.borrow()));
    assert_eq!(ConfigStore::open(dir.path()).unwrap().history(), vec![7]);
}

/// A deployer with live services (headend on 127.0.0.1, no TUN device) running
/// version 3 on a free port, alice logged in.
fn agent_with_services(
    dir: &Path,
) -> (
    Deployer,
    SessionDb,
    watch::Receiver<Arc<DeviceConfig>>,
    Arc<Services>,
    u16,
) {
    let port = free_port();
    let mut store = ConfigStore::open(dir).unwrap();
    store
        .apply(
            &document(3, |v| {
                v["headend"]["ssl_port"] = json!(port);
                // Parallel tests would all bind UDP 127.0.0.1:443.
                v["headend"]["dtls_enabled"] = json!(false);
            }),
            None,
            NOW,
        )
        .unwrap();
    let running = Arc::clone(store.running().unwrap());
    let sessions = SessionDb::new(
        PoolSet::from_device_config(&running).unwrap(),
        SessionDbSettings::default(),
    );
    sessions.login(session("alice", "RAVPN-MCA"), NOW).unwrap();
    let (sender, receiver) = watch::channel(Arc::clone(&running));
    let (router, _queue) = Router::new(4, 4);
    let services = Services::new(
        ServiceParts {
            config: receiver.clone(),
            sessions: sessions.clone(),
            router,
            headend: HeadendSettings {
                disconnected_timeout_secs: 1800,
            },
            listen: IpAddr::V4(Ipv4Addr::LOCALHOST),
            runtime: tokio::runtime::Handle::current(),
        },
        None,
    );
    services.start(&running).unwrap();
    let deployer = Deployer::new(store, sender, sessions.clone())
        .with_services(Arc::clone(&services) as Arc<dyn LiveServices>);
    (deployer, sessions, receiver, services, port)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_whose_port_is_in_use_is_refused_before_anything_is_written_or_swapped() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, sessions, receiver, services, port) = agent_with_services(dir.path());
    let before = snapshot(dir.path());
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();

    let error = deployer
        .deploy(
            &document(4, |v| {
                v["headend"]["ssl_port"] = json!(taken_port);
                v["headend"]["dtls_enabled"] = json!(false);
                v["group_policies"][0]["mtu"] = json!(1300);
            }),
            None,
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(&error, ApplyError::Listen { address, .. } if address.port() == taken_port),
        "{error}"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(receiver.borrow().version, 3);
    assert!(!receiver.has_changed().unwrap());
    assert_eq!(live_users(&sessions), vec!["alice".to_owned()]);
    assert_eq!(
        services.headend_address(),
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_with_a_new_port_and_identity_is_live_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (deployer, _sessions, receiver, services, _port) = agent_with_services(dir.path());
    let new_port = free_port();
    let identity = test_identity("VPN-ID");
    let outcome = deployer
        .deploy(
            &document(4, |v| {
                v["headend"]["ssl_port"] = json!(new_port);
                v["headend"]["dtls_enabled"] = json!(false);
                v["headend"]["identity"]["certificate_chain_pem"] =
                    json!(identity.identity.certificate_chain_pem);
                v["headend"]["identity"]["private_key_pem"] =
                    json!(identity.identity.private_key_pem.expose());
            }),
            None,
            NOW,
        )
        .unwrap();
    assert_eq!(receiver.borrow().version, 4);
    assert!(
        outcome
            .changes
            .contains(&format!("the headend listens on 127.0.0.1:{new_port}")),
        "{:?}",
        outcome.changes
    );
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, new_port));
    assert_eq!(services.headend_address(), Some(address));
    assert_eq!(
        presented_certificate(address).await.unwrap(),
        identity.leaf_der
    );
}
