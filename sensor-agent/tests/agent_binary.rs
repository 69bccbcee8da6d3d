//! The `sensor-agent` binary end to end: `run` in a fresh network namespace, then the
//! operator commands against its control socket.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly on purpose

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use e2e::sensor::{Agent, deployable_config, in_netns, presented_certificate, stdout};
use sensor_agent::config_store::ConfigStore;
use sensor_agent::control::NOTHING_APPLIED;
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

const AGENT: &str = env!("CARGO_BIN_EXE_sensor-agent");

/// This package's `sensor-agent run` in `netns` (see [`e2e::sensor::start_agent`]).
fn start_agent(netns: &Netns, socket: &Path, args: &[&std::ffi::OsStr]) -> Agent {
    e2e::sensor::start_agent(Path::new(AGENT), netns, socket, args)
}

/// The operator CLI on `socket`.
fn operator(socket: &Path, words: &[&str]) -> Output {
    e2e::sensor::operator(Path::new(AGENT), socket, words)
}

/// An operator command run as `nobody`.
fn as_nobody(socket: &Path, words: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", AGENT])
        .arg("--control-socket")
        .arg(socket)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux) must be installed")
}

#[test]
fn running_agent_serves_show_and_logoff_and_cleans_up_on_interrupt() {
    let netns = Netns::create("sa-bin");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("device.json");
    std::fs::write(&config, deployable_config()).unwrap();
    let socket = dir.path().join("run").join("control.sock");

    let mut agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", netns.name(), AGENT, "--control-socket"])
            .arg(&socket)
            .args([
                "run",
                "--tun-name",
                "satun9",
                "--tun-ipv4",
                "10.66.0.1/24",
                "--config",
            ])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Some(status) = agent.0.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(agent.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            panic!("agent exited with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "control socket never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }

    let summary = operator(&socket, &["show", "vpn-sessiondb"]);
    assert!(summary.status.success(), "{summary:?}");
    assert!(stdout(&summary).contains("VPN Session Summary"));

    let pools = operator(&socket, &["sh", "run", "ip", "local", "pool"]);
    assert_eq!(
        stdout(&pools),
        "ip local pool POOL4 10.66.0.10-10.66.0.20 mask 255.255.255.0\n"
    );

    let logoff = operator(&socket, &["vpn-sessiondb", "logoff", "all", "noconfirm"]);
    assert_eq!(
        stdout(&logoff),
        "INFO: There are presently no active sessions\n"
    );

    let typo = operator(&socket, &["show", "vpn-sessiondb", "bogus"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).starts_with("ERROR: "));

    // The TUN device exists inside the namespace with the group policy MTU.
    let link = Command::new("ip")
        .args(["-n", netns.name(), "-j", "link", "show", "dev", "satun9"])
        .output()
        .unwrap();
    let link: serde_json::Value = serde_json::from_slice(&link.stdout).unwrap();
    assert_eq!(link[0]["mtu"], 1390);

    // Other users cannot reach the socket through its directory...
    let outsider = as_nobody(&socket, &["show", "vpn-sessiondb"]);
    assert!(!outsider.status.success());
    assert!(
        String::from_utf8_lossy(&outsider.stderr).contains("permission denied"),
        "{outsider:?}"
    );
    // ...and with the file permissions opened up, the agent still refuses their uid.
    for (path, mode) in [
        (dir.path(), 0o755),
        (socket.parent().unwrap(), 0o755),
        (socket.as_path(), 0o666),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let outsider = as_nobody(&socket, &["show", "vpn-sessiondb"]);
    assert!(!outsider.status.success());
    assert!(
        String::from_utf8_lossy(&outsider.stderr).contains("permission denied for uid 65534"),
        "{outsider:?}"
    );

    let status = agent.interrupt();
    assert!(status.success(), "agent exit status {status}");
    assert!(!socket.exists(), "socket file left behind");

    let gone = operator(&socket, &["show", "vpn-sessiondb"]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("sensor-agent is not running"));
}

#[test]
fn agent_without_cap_net_admin_refuses_to_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("device.json");
    std::fs::write(&config, deployable_config()).unwrap();
    let socket = dir.path().join("control.sock");
    let output = Command::new("setpriv")
        .args(["--bounding-set=-net_admin", "--inh-caps=-all", AGENT])
        .arg("--control-socket")
        .arg(&socket)
        .args(["run", "--tun-name", "satun8", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux) must be installed");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs CAP_NET_ADMIN"), "{stderr}");
    assert!(!socket.exists());
}

#[test]
fn restarted_agent_runs_the_last_applied_configuration_without_any_config_file() {
    let netns = Netns::create("sa-restart");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("device.json");
    std::fs::write(&config, deployable_config()).unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("control.sock");

    let mut first = start_agent(
        &netns,
        &socket,
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    );
    assert!(first.interrupt().success());
    std::fs::remove_file(&config).unwrap();

    let mut second = start_agent(&netns, &socket, &["--data-dir".as_ref(), data.as_os_str()]);
    let pools = operator(&socket, &["sh", "run", "ip", "local", "pool"]);
    assert_eq!(
        stdout(&pools),
        "ip local pool POOL4 10.66.0.10-10.66.0.20 mask 255.255.255.0\n"
    );
    assert!(second.interrupt().success());
}

#[test]
fn agent_killed_in_the_middle_of_an_apply_comes_back_with_the_previous_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let version_one = deployable_config();
    let mut store = ConfigStore::open(&data).unwrap();
    let applied = store
        .apply(
            version_one.as_bytes(),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    drop(store);
    let mut version_two: serde_json::Value = serde_json::from_str(&version_one).unwrap();
    version_two["version"] = serde_json::json!(2);
    version_two["group_policies"][0]["mtu"] = serde_json::json!(1300);
    let config = dir.path().join("device.json");
    std::fs::write(&config, version_two.to_string()).unwrap();

    // The agent stops between writing the new running.json and renaming it, then is
    // killed with SIGKILL.
    let mut agent = Agent(
        Command::new(AGENT)
            .arg("--control-socket")
            .arg(dir.path().join("control.sock"))
            .args(["run", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env("SENSOR_AGENT_TEST_PAUSE_BEFORE_RENAME", "running.json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = agent.0.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let paused = lines
        .find(|line| {
            line.as_ref()
                .is_ok_and(|l| l.contains("paused before renaming running.json"))
        })
        .is_some();
    assert!(paused, "the agent never reached the rename");
    let temp_files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    assert_eq!(temp_files.len(), 1, "{temp_files:?}");
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();

    let store = ConfigStore::open(&data).unwrap();
    let running = store.running().unwrap();
    assert_eq!(running.version, 1);
    assert_eq!(running.content_hash(), applied.hash);
    let leftovers = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn configure_apply_deploys_to_the_running_agent_and_refuses_what_it_must() {
    let netns = Netns::create("sa-apply");
    let dir = tempfile::tempdir().unwrap();
    let version_one = deployable_config();
    let config = dir.path().join("device.json");
    std::fs::write(&config, &version_one).unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("control.sock");
    let mut agent = start_agent(
        &netns,
        &socket,
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    );

    let mut version_two: serde_json::Value = serde_json::from_str(&version_one).unwrap();
    version_two["version"] = serde_json::json!(2);
    version_two["ipv4_pools"][0]["start"] = serde_json::json!("10.66.0.30");
    version_two["ipv4_pools"][0]["end"] = serde_json::json!("10.66.0.40");
    let two = dir.path().join("two.json");
    std::fs::write(&two, version_two.to_string()).unwrap();
    let applied = operator(&socket, &["configure", "apply", two.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    let text = stdout(&applied);
    assert!(
        text.contains("ip local pool POOL4 10.66.0.30-10.66.0.40 mask 255.255.255.0\n"),
        "{text}"
    );
    assert!(
        text.contains("INFO: configuration version 2 applied"),
        "{text}"
    );
    let pools = operator(&socket, &["sh", "run", "ip", "local", "pool"]);
    assert_eq!(
        stdout(&pools),
        "ip local pool POOL4 10.66.0.30-10.66.0.40 mask 255.255.255.0\n"
    );

    let again = operator(&socket, &["configure", "apply", two.to_str().unwrap()]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        stderr.contains("version 2 is not newer than the running version 2"),
        "{stderr}"
    );

    let mut invalid = version_two.clone();
    invalid["version"] = serde_json::json!(3);
    invalid["connection_profiles"][0]["group_policy"] = serde_json::json!("NOPE");
    let three = dir.path().join("three.json");
    std::fs::write(&three, invalid.to_string()).unwrap();
    let refused = operator(&socket, &["configure", "apply", three.to_str().unwrap()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        stderr.contains("$.connection_profiles[0].group_policy"),
        "{stderr}"
    );
    let pools = operator(&socket, &["sh", "run", "ip", "local", "pool"]);
    assert!(stdout(&pools).contains("10.66.0.30-10.66.0.40"));
    assert!(agent.interrupt().success());

    // The restarted agent runs version 2.
    assert_eq!(
        ConfigStore::open(&data).unwrap().running().unwrap().version,
        2
    );
}

/// A headend identity of its own CA: (chain PEM, key PEM, leaf DER).
fn identity() -> (String, String, Vec<u8>) {
    let ca = TestCa::root("Test Server CA").unwrap();
    let leaf = ca
        .issue(&LeafOptions {
            eku: vec![TestEku::ServerAuth],
            ..LeafOptions::client("localhost")
        })
        .unwrap();
    (
        format!("{}{}", leaf.cert_pem, ca.cert.cert_pem),
        leaf.key_pem,
        leaf.cert_der,
    )
}

/// [`deployable_config`] at `version` on `ssl_port` with `identity`, changed by `edit`.
fn config_file(
    dir: &Path,
    version: u64,
    ssl_port: u16,
    identity: &(String, String, Vec<u8>),
    edit: impl FnOnce(&mut serde_json::Value),
) -> std::path::PathBuf {
    let mut value: serde_json::Value = serde_json::from_str(&deployable_config()).unwrap();
    value["version"] = serde_json::json!(version);
    value["headend"]["ssl_port"] = serde_json::json!(ssl_port);
    value["headend"]["identity"]["certificate_chain_pem"] = serde_json::json!(identity.0);
    value["headend"]["identity"]["private_key_pem"] = serde_json::json!(identity.1);
    edit(&mut value);
    let path = dir.join(format!("v{version}.json"));
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn apply(socket: &Path, file: &Path) -> Output {
    operator(socket, &["configure", "apply", file.to_str().unwrap()])
}

/// Whether a TCP connection to 127.0.0.1:`port` in the namespace is refused, waiting
/// (bounded) for a port being closed to close.
fn refused(netns: &Netns, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let connected = in_netns(netns, move || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
        });
        if !connected {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn link_mtu(netns: &Netns, device: &str) -> serde_json::Value {
    let link = Command::new("ip")
        .args(["-n", netns.name(), "-j", "link", "show", "dev", device])
        .output()
        .unwrap();
    let link: serde_json::Value = serde_json::from_slice(&link.stdout).unwrap();
    link[0]["mtu"].clone()
}

fn routes(netns: &Netns, family: &str, device: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args([
            "-n",
            netns.name(),
            "-j",
            family,
            "route",
            "show",
            "dev",
            device,
        ])
        .output()
        .unwrap();
    let routes: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    let mut routes: Vec<String> = routes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["dst"].as_str().map(str::to_owned))
        .collect();
    routes.sort();
    routes
}

#[test]
fn agent_with_no_configuration_waits_then_applies_identity_port_mtu_and_routes_live() {
    let netns = Netns::create("sa-empty");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("control.sock");
    let mut agent = start_agent(&netns, &socket, &["--data-dir".as_ref(), data.as_os_str()]);

    // Nothing applied: the control socket answers, no headend listens.
    let running = operator(&socket, &["show", "running-config"]);
    assert!(running.status.success(), "{running:?}");
    assert_eq!(stdout(&running), format!("{NOTHING_APPLIED}\n"));
    let summary = operator(&socket, &["show", "vpn-sessiondb"]);
    assert!(
        stdout(&summary).contains("VPN Session Summary"),
        "{summary:?}"
    );
    assert!(refused(&netns, 443));
    assert!(refused(&netns, 8443));
    assert!(!data.join("running.json").exists());

    // The first configuration starts the headend with its identity.
    let first = identity();
    let one = config_file(dir.path(), 1, 8443, &first, |_| {});
    let applied = apply(&socket, &one);
    assert!(applied.status.success(), "{applied:?}");
    assert!(
        stdout(&applied).contains("INFO: the headend listens on 0.0.0.0:8443\n"),
        "{}",
        stdout(&applied)
    );
    assert_eq!(presented_certificate(&netns, 8443).unwrap(), first.2);

    // A new identity: new connections get the new certificate.
    let second = identity();
    let two = config_file(dir.path(), 2, 8443, &second, |_| {});
    let applied = apply(&socket, &two);
    assert!(applied.status.success(), "{applied:?}");
    assert!(
        stdout(&applied).contains("INFO: the headend presents identity trustpoint VPN-ID"),
        "{}",
        stdout(&applied)
    );
    assert!(
        !stdout(&applied).contains("restart"),
        "{}",
        stdout(&applied)
    );
    assert_eq!(presented_certificate(&netns, 8443).unwrap(), second.2);

    // A new port, MTU and pool: the new port serves, the old one refuses, the TUN
    // device follows.
    assert_eq!(link_mtu(&netns, "satun7"), 1390);
    let three = config_file(dir.path(), 3, 9443, &second, |v| {
        v["group_policies"][0]["mtu"] = serde_json::json!(1300);
        v["ipv4_pools"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "POOL4-B", "start": "10.67.0.10", "end": "10.67.0.20", "mask": "255.255.255.0"
            }));
    });
    let applied = apply(&socket, &three);
    assert!(applied.status.success(), "{applied:?}");
    assert_eq!(presented_certificate(&netns, 9443).unwrap(), second.2);
    assert!(refused(&netns, 8443), "the old port still accepts");
    assert_eq!(link_mtu(&netns, "satun7"), 1300);
    assert_eq!(
        routes(&netns, "-4", "satun7"),
        vec!["10.66.0.0/24".to_owned(), "10.67.0.0/24".to_owned()]
    );

    assert!(agent.interrupt().success());
    assert_eq!(
        ConfigStore::open(&data).unwrap().running().unwrap().version,
        3
    );
}

#[test]
fn a_deploy_the_agent_cannot_apply_live_is_refused_and_changes_nothing() {
    let netns = Netns::create("sa-refuse");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("control.sock");
    let running_identity = identity();
    let one = config_file(dir.path(), 1, 8443, &running_identity, |_| {});
    let mut agent = start_agent(
        &netns,
        &socket,
        &[
            "--config".as_ref(),
            one.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    );
    assert_eq!(
        presented_certificate(&netns, 8443).unwrap(),
        running_identity.2
    );
    let shown_before = stdout(&operator(&socket, &["show", "running-config"]));
    let file_before = std::fs::read(data.join("running.json")).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(
            stdout(&operator(&socket, &["show", "running-config"])),
            shown_before,
            "{what}"
        );
        assert_eq!(
            std::fs::read(data.join("running.json")).unwrap(),
            file_before,
            "{what}"
        );
        assert_eq!(
            ConfigStore::open(&data).unwrap().history(),
            vec![1],
            "{what}"
        );
        assert_eq!(
            presented_certificate(&netns, 8443).unwrap(),
            running_identity.2,
            "{what}"
        );
        assert_eq!(link_mtu(&netns, "satun7"), 1390, "{what}");
        assert_eq!(
            routes(&netns, "-4", "satun7"),
            vec!["10.66.0.0/24".to_owned()],
            "{what}"
        );
    };

    // Another socket holds port 10443 in the namespace.
    let holder = in_netns(&netns, || {
        std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 10443))).unwrap()
    });
    let taken = config_file(dir.path(), 2, 10443, &identity(), |v| {
        v["group_policies"][0]["mtu"] = serde_json::json!(1300);
    });
    let refused_apply = apply(&socket, &taken);
    assert!(!refused_apply.status.success(), "{refused_apply:?}");
    let stderr = String::from_utf8_lossy(&refused_apply.stderr).into_owned();
    assert!(
        stderr.contains("cannot listen on 0.0.0.0:10443 (headend.ssl_port 10443)")
            && stderr.contains("in use"),
        "{stderr}"
    );
    unchanged("port in use");
    drop(holder);

    // A route the kernel refuses: IPv6 is off on the TUN device.
    let sysctl = Command::new("ip")
        .args(["netns", "exec", netns.name(), "sysctl", "-qw"])
        .arg("net.ipv6.conf.satun7.disable_ipv6=1")
        .status()
        .unwrap();
    assert!(sysctl.success());
    let ipv6 = config_file(dir.path(), 2, 8443, &running_identity, |v| {
        v["group_policies"][0]["mtu"] = serde_json::json!(1300);
        v["ipv4_pools"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "POOL4-B", "start": "10.67.0.10", "end": "10.67.0.20", "mask": "255.255.255.0"
            }));
        v["ipv6_pools"] = serde_json::json!([
            { "name": "POOL6", "start": "fd00:66::10", "prefix_len": 64, "count": 16 }
        ]);
        v["connection_profiles"][0]["ipv6_pools"] = serde_json::json!(["POOL6"]);
    });
    let refused_apply = apply(&socket, &ipv6);
    assert!(!refused_apply.status.success(), "{refused_apply:?}");
    let stderr = String::from_utf8_lossy(&refused_apply.stderr).into_owned();
    assert!(
        stderr.contains("cannot route fd00:66::/64 into TUN device satun7"),
        "{stderr}"
    );
    unchanged("route refused");

    // The agent still takes a deploy it can apply.
    let fine = config_file(dir.path(), 2, 10443, &running_identity, |_| {});
    let applied = apply(&socket, &fine);
    assert!(applied.status.success(), "{applied:?}");
    assert_eq!(
        presented_certificate(&netns, 10443).unwrap(),
        running_identity.2
    );
    assert!(agent.interrupt().success());
}

#[test]
fn an_agent_interrupted_the_moment_its_control_socket_appears_stops_cleanly() {
    // The signal handlers are installed before anything is bound; a SIGINT sent as
    // soon as the socket exists used to kill the agent when it came before them.
    let netns = Netns::create("sa-sigint");
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control.sock");
        let data = dir.path().join("data");
        let mut agent = start_agent(&netns, &socket, &["--data-dir".as_ref(), data.as_os_str()]);
        let status = agent.interrupt();
        assert!(
            status.success(),
            "round {round}: {status}: {}",
            std::fs::read_to_string(socket.with_extension("log")).unwrap_or_default()
        );
    }
}
