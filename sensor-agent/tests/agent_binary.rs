//! The `sensor-agent` binary end to end: `run` in a fresh network namespace, then the
//! operator commands against its control socket.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly on purpose

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;

const AGENT: &str = env!("CARGO_BIN_EXE_sensor-agent");

const CONFIG: &str = r#"{
  "schema_version": 1,
  "version": 1,
  "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
  "headend": {
    "identity": { "trustpoint": "VPN-ID", "certificate_chain_pem": "", "private_key_pem": "" }
  },
  "connection_profiles": [{
    "name": "RAVPN-MCA",
    "group_policy": "GP-MCA",
    "ipv4_pools": ["POOL4"],
    "aaa": { "authentication_method": "CLIENT_CERTIFICATE_ONLY" }
  }],
  "group_policies": [{ "name": "GP-MCA", "mtu": 1390 }],
  "ipv4_pools": [{ "name": "POOL4", "start": "10.66.0.10", "end": "10.66.0.20", "mask": "255.255.255.0" }]
}"#;

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
    std::fs::write(&config, CONFIG).unwrap();
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
    std::fs::write(&config, CONFIG).unwrap();
    let socket = dir.path().join("control.sock");
    let output = Command::new("setpriv")
        .args(["--bounding-set=-net_admin", "--inh-caps=-all", AGENT])
        .arg("--control-socket")
        .arg(&socket)
        .args(["run", "--tun-name", "satun8", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("setpriv (util-linux) must be installed");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs CAP_NET_ADMIN"), "{stderr}");
    assert!(!socket.exists());
}
