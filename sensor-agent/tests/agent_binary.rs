//! The `sensor-agent` binary end to end: `run` in a fresh network namespace, then the
//! operator commands against its control socket.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly on purpose

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use sensor_agent::config_store::ConfigStore;
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

const AGENT: &str = env!("CARGO_BIN_EXE_sensor-agent");

/// A deployable configuration: generated headend identity and client CA.
fn deployable_config() -> String {
    let server_ca = TestCa::root("Test Server CA").unwrap();
    let identity = server_ca
        .issue(&LeafOptions {
            eku: vec![TestEku::ServerAuth],
            ..LeafOptions::client("localhost")
        })
        .unwrap();
    let client_ca = TestCa::root("Test Client CA").unwrap();
    serde_json::json!({
      "schema_version": 1,
      "version": 1,
      "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
      "headend": {
        "identity": {
          "trustpoint": "VPN-ID",
          "certificate_chain_pem": format!("{}{}", identity.cert_pem, server_ca.cert.cert_pem),
          "private_key_pem": identity.key_pem
        }
      },
      "trustpoints": [{ "name": "CLIENT-CA", "ca_certificates_pem": client_ca.cert.cert_pem }],
      "connection_profiles": [{
        "name": "RAVPN-MCA",
        "group_policy": "GP-MCA",
        "ipv4_pools": ["POOL4"],
        "trustpoints": ["CLIENT-CA"],
        "aaa": { "authentication_method": "CLIENT_CERTIFICATE_ONLY" }
      }],
      "group_policies": [{ "name": "GP-MCA", "mtu": 1390 }],
      "ipv4_pools": [{ "name": "POOL4", "start": "10.66.0.10", "end": "10.66.0.20", "mask": "255.255.255.0" }]
    })
    .to_string()
}

/// The agent process, interrupted and reaped when dropped.
struct Agent(Child);

impl Agent {
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "agent did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn operator(socket: &Path, words: &[&str]) -> Output {
    Command::new(AGENT)
        .arg("--control-socket")
        .arg(socket)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .unwrap()
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
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

/// The agent started with `args`, waited for until its control socket appears.
fn start_agent(netns: &Netns, socket: &Path, args: &[&std::ffi::OsStr]) -> Agent {
    let mut agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", netns.name(), AGENT, "--control-socket"])
            .arg(socket)
            .args(["run", "--tun-name", "satun7", "--tun-ipv4", "10.66.0.1/24"])
            .args(args)
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
    agent
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
