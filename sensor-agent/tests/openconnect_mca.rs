//! The real openconnect 9.01 client against `sensor-agent run`: Multiple Certificate
//! Authentication, then a CSTP tunnel carrying pings.
//!
//! The agent runs in one network namespace, openconnect in another, joined by a veth
//! pair (10.99.0.1 agent side, 10.99.0.2 client side). Two namespaces because in a
//! single one the agent's own TUN address would be a local address and a ping to it
//! would never enter the tunnel. Needs root, `ip`, `ping` and `/usr/sbin/openconnect`;
//! the tests fail (never skip) without them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly on purpose

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vpn_core::pki::testpki::{DEFAULT_NOT_BEFORE, LeafOptions, TestCa, TestCert, TestKeyType};

const AGENT: &str = env!("CARGO_BIN_EXE_sensor-agent");
const OPENCONNECT: &str = "/usr/sbin/openconnect";
const AGENT_ADDRESS: &str = "10.99.0.1";
const CLIENT_ADDRESS: &str = "10.99.0.2";
const PORT: u16 = 8443;
/// LOCAL password of `client.example.com` for the certificate + AAA profile.
const AAA_PASSWORD: &str = "s3cret-pass";

/// An argon2id PHC hash with cheap parameters (the cost is not under test).
fn password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("b3BlbmNvbm5lY3QtdGVzdA").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A network namespace removed when dropped, even if the test fails.
struct Netns(String);

impl Netns {
    fn create(name: String) -> Self {
        let output = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("iproute2 `ip` must be installed");
        assert!(
            output.status.success(),
            "cannot create network namespace {name} (the test needs root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

/// A child process killed and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(args: &[&str]) -> Output {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn check_prerequisites() {
    let uid = run(&["id", "-u"]);
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root (network namespaces, TUN devices)"
    );
    assert!(
        Path::new(OPENCONNECT).exists(),
        "{OPENCONNECT} (openconnect 9.01) must be installed"
    );
    let ping = Command::new("ping").arg("-V").output();
    assert!(ping.is_ok(), "ping (iputils-ping) must be installed");
}

/// Certificates and keys as files, plus the agent configuration.
struct Fixture {
    dir: tempfile::TempDir,
    ca_pem: PathBuf,
    machine: (PathBuf, PathBuf),
    user: (PathBuf, PathBuf),
    /// A user certificate from a CA no trustpoint holds.
    rogue_user: (PathBuf, PathBuf),
    /// A user certificate of the trusted user CA whose validity ended in 2025.
    expired_user: (PathBuf, PathBuf),
    /// `user.pem` with the key of another RSA certificate of the same CA.
    user_with_other_key: (PathBuf, PathBuf),
    /// The user certificate and key, the certificate's issuer signature altered.
    forged_user: (PathBuf, PathBuf),
    config: PathBuf,
    socket: PathBuf,
}

fn write_pair(dir: &Path, name: &str, cert: &TestCert) -> (PathBuf, PathBuf) {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    (cert_path, key_path)
}

/// Writes `forged-user.pem`: `cert_der` with the last byte of its issuer signature
/// flipped (the DER stays well-formed, the signature no longer verifies). rcgen cannot
/// sign badly, so the openssl CLI turns the DER into PEM.
fn forge_issuer_signature(dir: &Path, cert_der: &[u8]) -> PathBuf {
    let mut forged = cert_der.to_vec();
    *forged.last_mut().unwrap() ^= 0x01;
    let der_path = dir.join("forged-user.der");
    let pem_path = dir.join("forged-user.pem");
    std::fs::write(&der_path, forged).unwrap();
    run(&[
        "openssl",
        "x509",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-out",
        pem_path.to_str().unwrap(),
    ]);
    pem_path
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let machine_ca = TestCa::root("Test Machine CA").unwrap();
    let user_ca = TestCa::root("Test User CA").unwrap();
    let machine = machine_ca
        .issue(
            &LeafOptions::client("machine.example.com")
                .with_attribute(&[2, 5, 4, 11], "Laptops")
                .with_attribute(&[2, 5, 4, 10], "Example Corp"),
        )
        .unwrap();
    // An RSA user key (PKCS#1 v1.5 MCA signature) next to the ECDSA machine key.
    let user = user_ca
        .issue(&LeafOptions {
            key_type: TestKeyType::Rsa2048,
            ..LeafOptions::client("client.example.com")
        })
        .unwrap();
    let rogue_user = TestCa::root("Test User CA")
        .unwrap()
        .issue(&LeafOptions::client("client.example.com"))
        .unwrap();
    let expired_user = user_ca
        .issue(&LeafOptions {
            // 2025-01-01 to 2025-06-01: long over when the test runs.
            not_after: DEFAULT_NOT_BEFORE + time::Duration::days(151),
            ..LeafOptions::client("client.example.com")
        })
        .unwrap();
    let other_user = user_ca
        .issue(&LeafOptions {
            key_type: TestKeyType::Rsa2048,
            ..LeafOptions::client("other.example.com")
        })
        .unwrap();

    // The headend's identity: `localhost`, issued by a server CA the client trusts.
    let server_ca_key = rcgen::KeyPair::generate().unwrap();
    let mut server_ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    server_ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test Server CA");
    server_ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let server_ca = server_ca_params.self_signed(&server_ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut server_params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params
        .signed_by(
            &server_key,
            &rcgen::Issuer::from_params(&server_ca_params, &server_ca_key),
        )
        .unwrap();

    let ca_pem = dir.path().join("ca.pem");
    std::fs::write(&ca_pem, server_ca.pem()).unwrap();
    let machine_files = write_pair(dir.path(), "machine", &machine);
    let user_files = write_pair(dir.path(), "user", &user);
    let user_files_cert = user_files.0.clone();
    let forged_files = (
        forge_issuer_signature(dir.path(), &user.cert_der),
        user_files.1.clone(),
    );
    let rogue_files = write_pair(dir.path(), "rogue-user", &rogue_user);
    let expired_files = write_pair(dir.path(), "expired-user", &expired_user);
    let other_files = write_pair(dir.path(), "other-user", &other_user);

    let config = serde_json::json!({
        "schema_version": 1,
        "version": 7,
        "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
        "headend": {
            "ssl_port": PORT,
            "dtls_enabled": false,
            "identity": {
                "trustpoint": "FTD-ID",
                "certificate_chain_pem": server.pem(),
                "private_key_pem": server_key.serialize_pem()
            }
        },
        "connection_profiles": [{
            "name": "RAVPN-MultiCert",
            "group_policy": "GP-MultiCert",
            "ipv4_pools": ["POOL-MCA"],
            "aaa": {
                "authentication_method": "CLIENT_CERTIFICATE_ONLY",
                "enable_multiple_certificate_authentication": true,
                "username_from_certificate_source": "SECOND_CERTIFICATE"
            },
            "trustpoints": ["MACHINE-CA", "USER-CA"],
            "group_aliases": [{ "name": "RAVPN-MultiCert", "enabled": true }]
        }, {
            "name": "RAVPN-MultiCert-AAA",
            "group_policy": "GP-MultiCert",
            "ipv4_pools": ["POOL-MCA"],
            "aaa": {
                "authentication_method": "AAA_AND_CLIENT_CERTIFICATE",
                "enable_multiple_certificate_authentication": true,
                "username_from_certificate_source": "SECOND_CERTIFICATE",
                "prefill_username": true,
                "hide_username": true
            },
            "trustpoints": ["MACHINE-CA", "USER-CA"],
            "group_aliases": [{ "name": "RAVPN-MultiCert-AAA", "enabled": true }]
        }, {
            "name": "RAVPN-FirstCert",
            "group_policy": "GP-MultiCert",
            "ipv4_pools": ["POOL-MCA"],
            "aaa": {
                "authentication_method": "CLIENT_CERTIFICATE_ONLY",
                "enable_multiple_certificate_authentication": true,
                "username_from_certificate_source": "FIRST_CERTIFICATE",
                "username_mapping": { "mode": "SPECIFIC_FIELD", "primary": "CN", "secondary": null }
            },
            "trustpoints": ["MACHINE-CA", "USER-CA"],
            "group_aliases": [{ "name": "RAVPN-FirstCert", "enabled": true }]
        }, {
            "name": "RAVPN-EntireDN",
            "group_policy": "GP-MultiCert",
            "ipv4_pools": ["POOL-MCA"],
            "aaa": {
                "authentication_method": "CLIENT_CERTIFICATE_ONLY",
                "enable_multiple_certificate_authentication": true,
                "username_from_certificate_source": "FIRST_CERTIFICATE",
                "username_mapping": { "mode": "ENTIRE_DN" }
            },
            "trustpoints": ["MACHINE-CA", "USER-CA"],
            "group_aliases": [{ "name": "RAVPN-EntireDN", "enabled": true }]
        }],
        "local_users": [{ "name": "client.example.com", "password_hash": password_hash(AAA_PASSWORD) }],
        "group_policies": [{
            "name": "GP-MultiCert",
            "banner": "Welcome to the MCA test",
            "dns_servers": ["192.168.77.53"],
            "default_domain": "example.test",
            "split_tunnel_policy": "TUNNEL_SPECIFIED",
            "split_tunnel_networks": ["192.168.77.0/24"],
            "mtu": 1399,
            "simultaneous_logins": 25
        }],
        "ipv4_pools": [{
            "name": "POOL-MCA",
            "start": "192.168.77.10",
            "end": "192.168.77.250",
            "mask": "255.255.255.0"
        }],
        "trustpoints": [
            { "name": "MACHINE-CA", "ca_certificates_pem": machine_ca.cert.cert_pem },
            { "name": "USER-CA", "ca_certificates_pem": user_ca.cert.cert_pem }
        ]
    });
    let config_path = dir.path().join("device.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let socket = dir.path().join("run").join("control.sock");
    Fixture {
        ca_pem,
        machine: machine_files,
        user: user_files,
        rogue_user: rogue_files,
        expired_user: expired_files,
        user_with_other_key: (user_files_cert, other_files.1),
        forged_user: forged_files,
        config: config_path,
        socket,
        dir,
    }
}

/// The agent in namespace `server`, openconnect's side in `client`, joined by a veth pair.
struct Lab {
    fixture: Fixture,
    // Field order: the agent stops before its namespace goes.
    _agent: Process,
    client: Netns,
    _server: Netns,
}

impl Lab {
    fn start(tag: &str) -> Self {
        check_prerequisites();
        let id = std::process::id();
        let server = Netns::create(format!("oc-s{tag}-{id}"));
        let client = Netns::create(format!("oc-c{tag}-{id}"));
        let veth_server = format!("vs{tag}{}", id % 100_000);
        let veth_client = format!("vc{tag}{}", id % 100_000);
        run(&[
            "ip",
            "link",
            "add",
            &veth_server,
            "netns",
            &server.0,
            "type",
            "veth",
            "peer",
            "name",
            &veth_client,
            "netns",
            &client.0,
        ]);
        for (ns, dev, address) in [
            (&server.0, &veth_server, AGENT_ADDRESS),
            (&client.0, &veth_client, CLIENT_ADDRESS),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                dev,
            ]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        let fixture = fixture();
        let log = std::fs::File::create(fixture.dir.path().join("agent.log")).unwrap();
        let mut agent = Process(
            Command::new("ip")
                .args(["netns", "exec", &server.0, AGENT, "--control-socket"])
                .arg(&fixture.socket)
                .args([
                    "run",
                    "--listen",
                    AGENT_ADDRESS,
                    "--tun-name",
                    "satun0",
                    "--tun-ipv4",
                    "192.168.77.1/24",
                    "--config",
                ])
                .arg(&fixture.config)
                .env("RUST_LOG", "info,sensor_agent=debug")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fixture.socket.exists() {
            if let Some(status) = agent.0.try_wait().unwrap() {
                panic!(
                    "agent exited with {status}: {}",
                    std::fs::read_to_string(fixture.dir.path().join("agent.log")).unwrap()
                );
            }
            assert!(Instant::now() < deadline, "control socket never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            fixture,
            _agent: agent,
            client,
            _server: server,
        }
    }

    fn agent_log(&self) -> String {
        std::fs::read_to_string(self.fixture.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// openconnect in the client namespace for the `RAVPN-MultiCert` URL, with the
    /// common arguments plus `extra`.
    fn openconnect(&self, user: Option<&(PathBuf, PathBuf)>, extra: &[&str]) -> Command {
        let mut args = vec!["--usergroup", "RAVPN-MultiCert"];
        args.extend_from_slice(extra);
        self.openconnect_without_group(user, &args)
    }

    /// openconnect for the bare server URL (no group in the path).
    fn openconnect_without_group(
        &self,
        user: Option<&(PathBuf, PathBuf)>,
        extra: &[&str],
    ) -> Command {
        let f = &self.fixture;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.client.0, OPENCONNECT])
            .args(["--protocol=anyconnect", "--non-inter", "--passwd-on-stdin"])
            .arg("-c")
            .arg(&f.machine.0)
            .arg("-k")
            .arg(&f.machine.1);
        if let Some((cert, key)) = user {
            command
                .arg("--mca-certificate")
                .arg(cert)
                .arg("--mca-key")
                .arg(key);
        }
        command
            .arg("--cafile")
            .arg(&f.ca_pem)
            .arg(format!("--resolve=localhost:{AGENT_ADDRESS}"))
            .args(extra)
            .arg(format!("https://localhost:{PORT}"));
        command
    }

    fn operator(&self, words: &[&str]) -> String {
        let output = Command::new(AGENT)
            .arg("--control-socket")
            .arg(&self.fixture.socket)
            .args(words)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Runs `command` with `x` on stdin (for `--passwd-on-stdin`) and waits for it.
fn run_with_stdin(command: Command) -> Output {
    run_with_password(command, "x")
}

/// Runs `command` with `password` on stdin and waits for it.
fn run_with_password(mut command: Command, password: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn openconnect_authenticates_with_machine_and_user_certificates() {
    let lab = Lab::start("a");
    let output = run_with_stdin(lab.openconnect(Some(&lab.fixture.user), &["--authenticate"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openconnect --authenticate failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    let cookie_line = stdout
        .lines()
        .find(|l| l.starts_with("COOKIE="))
        .unwrap_or_else(|| panic!("no COOKIE line in {stdout}"));
    let token = cookie_line
        .split("webvpn=")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');
    assert_eq!(token.len(), 64, "{cookie_line}");
    assert!(stdout.contains(&format!("CONNECT_URL='https://localhost:{PORT}/")));
    assert!(stderr.contains("Using secondary certificate 'client.example.com'"));
    assert!(stderr.contains("XML POST enabled"), "{stderr}");
    eprintln!("{stderr}");
    // The cookie is shown once; the log never carries it.
    assert!(!lab.agent_log().contains(token));

    // A login counts as a session right away (it waits for the CONNECT).
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );

    // Without the user certificate there is no `multiple-cert` capability: refused.
    let refused = run_with_stdin(lab.openconnect(None, &["--authenticate"]));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Multiple certificate authentication required"),
        "{stderr}"
    );
}

/// openconnect running a tunnel in the client namespace, with its output files.
struct RunningClient {
    process: Process,
    stdout: PathBuf,
    stderr: PathBuf,
    /// The vpnc-script's `$reason` log.
    events: PathBuf,
    /// The vpnc-script's environment at connect.
    env: PathBuf,
}

impl RunningClient {
    fn report(&self, lab: &Lab, what: &str) -> String {
        format!(
            "{what}\nopenconnect stdout:\n{}\nopenconnect stderr:\n{}\nagent:\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            lab.agent_log()
        )
    }

    /// Waits for openconnect to exit; its status.
    fn wait(&mut self, lab: &Lab, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}",
                self.report(lab, "openconnect did not exit")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Lab {
    /// Writes the test vpnc-script for tunnel device `tun` (protocol.md section 6.2): it
    /// logs each `$reason` to `script-events-<tun>` and, on connect, saves its
    /// environment to `connect-<tun>.env` and configures the device.
    fn vpnc_script(&self, tun: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = self.fixture.dir.path();
        let events = dir.join(format!("script-events-{tun}"));
        let env = dir.join(format!("connect-{tun}.env"));
        let script = dir.join(format!("vpnc-script-{tun}.sh"));
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
    echo "$reason" >> {events}
    if [ "$reason" = connect ]; then
      env > {env}
      ip link set "$TUNDEV" up mtu "$INTERNAL_IP4_MTU"
      ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
      i=0
      while [ "$i" -lt "${{CISCO_SPLIT_INC:-0}}" ]; do
        eval addr=\$CISCO_SPLIT_INC_${{i}}_ADDR
        eval len=\$CISCO_SPLIT_INC_${{i}}_MASKLEN
        ip route replace "$addr/$len" dev "$TUNDEV"
        i=$((i + 1))
      done
      echo configured >> {events}
    fi
    exit 0
    "#,
                events = events.display(),
                env = env.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (script, events, env)
    }

    /// Starts openconnect (MCA login and tunnel) on device `octest0` and waits until the
    /// vpnc-script has configured it.
    fn connect_tunnel(&self) -> RunningClient {
        let mut client = self.spawn_tunnel(
            "octest0",
            |script| {
                self.openconnect(
                    Some(&self.fixture.user),
                    &["-i", "octest0", "--script", script, "--no-dtls"],
                )
            },
            "x\n",
        );
        client.wait_configured(self, Duration::from_secs(30));
        client
    }

    /// Spawns the openconnect `command(script path)` for tunnel device `tun` with `stdin`
    /// written to it; does not wait.
    fn spawn_tunnel(
        &self,
        tun: &str,
        command: impl FnOnce(&str) -> Command,
        stdin: &str,
    ) -> RunningClient {
        let (script, events, env) = self.vpnc_script(tun);
        let dir = self.fixture.dir.path();
        let stdout_path = dir.join(format!("openconnect-{tun}.out"));
        let stderr_path = dir.join(format!("openconnect-{tun}.err"));
        let mut command = command(script.to_str().unwrap());
        command
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let mut openconnect = RunningClient {
            process: Process(command.spawn().unwrap()),
            stdout: stdout_path,
            stderr: stderr_path,
            events,
            env,
        };
        openconnect
            .process
            .0
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        openconnect
    }
}

impl RunningClient {
    /// Whether the vpnc-script has configured the tunnel device; panics if openconnect
    /// exited before that.
    fn is_configured(&mut self, lab: &Lab) -> bool {
        let logged = std::fs::read_to_string(&self.events).unwrap_or_default();
        if logged.contains("configured") {
            return true;
        }
        if let Some(status) = self.process.0.try_wait().unwrap() {
            panic!(
                "{}",
                self.report(lab, &format!("openconnect exited with {status}"))
            );
        }
        false
    }

    fn wait_configured(&mut self, lab: &Lab, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.is_configured(lab) {
            assert!(
                Instant::now() < deadline,
                "{}",
                self.report(lab, "tunnel never came up")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn openconnect_tunnel_carries_pings_and_the_session_shows_multiple_certificate_auth() {
    let lab = Lab::start("t");
    let mut openconnect = lab.connect_tunnel();
    let env = std::fs::read_to_string(&openconnect.env).unwrap();
    assert!(env.contains("INTERNAL_IP4_ADDRESS=192.168.77.10"), "{env}");
    assert!(env.contains("INTERNAL_IP4_MTU=1399"), "{env}");
    assert!(env.contains("CISCO_SPLIT_INC_0_ADDR=192.168.77.0"), "{env}");

    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client.0,
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            "192.168.77.1",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        openconnect.report(
            &lab,
            &format!(
                "ping through the tunnel failed: {}",
                String::from_utf8_lossy(&ping.stdout)
            )
        )
    );

    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate"),
        "{detail}"
    );
    assert!(detail.contains("192.168.77.10"), "{detail}");
    eprintln!("{detail}");
    // Three echo requests in, three replies out, counted on the SSL tunnel.
    let count = |label: &str| -> u64 {
        let (_, after) = detail.split_once(label).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(count("Pkts Tx      :") >= 3, "{detail}");
    assert!(count("Bytes Rx     :") >= 3 * 84, "{detail}");

    // SIGINT: openconnect sends DISCONNECT, the agent logs the session out.
    run(&["kill", "-INT", &openconnect.process.0.id().to_string()]);
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        openconnect.report(&lab, &format!("openconnect exit {status}"))
    );
    let out = std::fs::read_to_string(&openconnect.stdout).unwrap();
    eprintln!("{out}");
    assert!(
        out.contains("Got CONNECT response: HTTP/1.1 200 CONNECTED"),
        "{out}"
    );
    assert!(
        out.contains("Configured as 192.168.77.10, with SSL connected and DTLS disabled"),
        "{out}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
        if !summary.contains("client.example.com") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session still listed after logout: {summary}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lab.agent_log().contains("Reason: User Requested"),
        "{}",
        lab.agent_log()
    );
}

#[test]
fn administrator_logoff_disconnects_openconnect_with_the_reason() {
    let lab = Lab::start("k");
    let mut openconnect = lab.connect_tunnel();
    let logoff = lab.operator(&["vpn-sessiondb", "logoff", "all", "noconfirm"]);
    assert!(logoff.contains("1"), "{logoff}");
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    let report = openconnect.report(&lab, &format!("openconnect exit {status}"));
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("Received server disconnect: b0 'Administrator reset'"),
        "{report}"
    );
    assert!(lab.agent_log().contains("Reason: Admin Reset"), "{report}");
}

#[test]
fn a_user_certificate_from_an_untrusted_ca_is_refused_and_no_session_starts() {
    let lab = Lab::start("r");
    let output =
        run_with_stdin(lab.openconnect(Some(&lab.fixture.rogue_user), &["--authenticate"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Failed to complete authentication"),
        "{stderr}"
    );
    assert!(
        lab.agent_log()
            .contains("Certificate chain failed validation"),
        "{}",
        lab.agent_log()
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

#[test]
fn openconnect_reconnects_with_its_cookie_and_keeps_its_address() {
    let lab = Lab::start("u");
    let mut openconnect = lab.connect_tunnel();
    let events = openconnect.events.clone();
    run(&["kill", "-USR2", &openconnect.process.0.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logged = std::fs::read_to_string(&events).unwrap_or_default();
        if logged.lines().any(|l| l == "reconnect") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            openconnect.report(&lab, "no reconnect")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.client.0,
            "ping",
            "-c",
            "2",
            "-W",
            "2",
            "192.168.77.1",
        ])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        openconnect.report(&lab, "ping after the reconnect failed")
    );
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(detail.contains("Assigned IP  : 192.168.77.10"), "{detail}");
    // The reconnect is a new SSL tunnel of the same session.
    assert!(detail.contains("Tunnel ID    : 1.3"), "{detail}");
    run(&["kill", "-INT", &openconnect.process.0.id().to_string()]);
    let status = openconnect.wait(&lab, Duration::from_secs(10));
    assert!(status.success(), "{}", openconnect.report(&lab, "exit"));
}

#[test]
fn without_a_group_in_the_url_the_client_picks_the_profile_from_the_offered_list() {
    let lab = Lab::start("g");
    let output = run_with_stdin(lab.openconnect_without_group(
        Some(&lab.fixture.user),
        &["--authenticate", "--authgroup", "RAVPN-MultiCert"],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(stdout.contains("COOKIE="), "{stdout}");
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Tunnel Group : RAVPN-MultiCert"),
        "{detail}"
    );
}

#[test]
fn mca_then_a_local_password_logs_in_as_the_user_certificate_name() {
    let lab = Lab::start("p");
    let args = ["--authenticate", "--usergroup", "RAVPN-MultiCert-AAA"];
    let wrong = run_with_password(
        lab.openconnect_without_group(Some(&lab.fixture.user), &args),
        "wrong",
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Login failed."), "{stderr}");

    let output = run_with_password(
        lab.openconnect_without_group(Some(&lab.fixture.user), &args),
        AAA_PASSWORD,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\nagent:\n{}",
        lab.agent_log()
    );
    assert!(!lab.agent_log().contains(AAA_PASSWORD));
    let detail = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(
        detail.contains("Username     : client.example.com"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate and userPassword"),
        "{detail}"
    );
}

#[test]
fn without_a_machine_certificate_the_client_is_asked_for_one_and_then_refused() {
    let lab = Lab::start("m");
    let mut command = lab.openconnect(Some(&lab.fixture.user), &["--authenticate"]);
    // Same command, minus `-c machine.pem -k machine.key`.
    let args: Vec<std::ffi::OsString> = command.get_args().map(ToOwned::to_owned).collect();
    let mut without = Command::new(command.get_program());
    let mut skip = 0;
    for arg in &args {
        if skip > 0 {
            skip -= 1;
        } else if arg == "-c" || arg == "-k" {
            skip = 1;
        } else {
            without.arg(arg);
        }
    }
    command = without;
    let output = run_with_stdin(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Server requested SSL client certificate; none was configured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Failed to complete authentication"),
        "{stderr}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

/// Runs `openconnect --authenticate` with `user` as the MCA certificate and key, and
/// checks what the user sees: exit code 1, the server's certificate error, no session.
/// Returns openconnect's stderr and the agent log.
fn refused_login(lab: &Lab, user: &(PathBuf, PathBuf)) -> (String, String) {
    let output = run_with_stdin(lab.openconnect(Some(user), &["--authenticate"]));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let log = lab.agent_log();
    let report = format!("openconnect stderr:\n{stderr}\nagent:\n{log}");
    eprintln!("{report}");
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("COOKIE="),
        "{report}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(
        !summary.contains("Username"),
        "no session expected:\n{summary}"
    );
    (stderr, log)
}

#[test]
fn an_expired_user_certificate_is_refused_with_the_expiry_in_the_log() {
    let lab = Lab::start("e");
    let (stderr, log) = refused_login(&lab, &lab.fixture.expired_user);
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(log.contains("Certificate chain failed validation"), "{log}");
    assert!(log.contains("expired on 2025-06-01"), "{log}");
}

/// openconnect 9.01 checks the pair itself: with `--mca-key` not matching
/// `--mca-certificate` it stops before answering the MCA challenge, so the headend never
/// sees a signature from the wrong key (the vpn-core and headend unit tests cover that
/// refusal). The server-side refusal of a bad signature is shown end to end by
/// [`a_user_certificate_whose_issuer_signature_is_bad_is_refused`].
#[test]
fn openconnect_refuses_to_sign_with_a_key_that_does_not_match_the_user_certificate() {
    let lab = Lab::start("w");
    let (stderr, log) = refused_login(&lab, &lab.fixture.user_with_other_key);
    assert!(
        stderr.contains("No secondary certificate found to match private key"),
        "{stderr}"
    );
    assert!(
        !log.contains("Multiple certificate authentication"),
        "{log}"
    );
}

#[test]
fn a_user_certificate_whose_issuer_signature_is_bad_is_refused() {
    let lab = Lab::start("f");
    let (stderr, log) = refused_login(&lab, &lab.fixture.forged_user);
    assert!(
        stderr.contains("Using secondary certificate 'client.example.com'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(log.contains("Certificate chain failed validation"), "{log}");
    assert!(log.contains("do not verify"), "{log}");
}

#[test]
fn the_machine_certificate_as_user_certificate_is_refused() {
    let lab = Lab::start("s");
    let machine = lab.fixture.machine.clone();
    let (stderr, log) = refused_login(&lab, &machine);
    assert!(
        stderr.contains("Server reported certificate error"),
        "{stderr}"
    );
    assert!(
        log.contains("the user certificate is the machine certificate"),
        "{log}"
    );
}

/// The value of `NAME='value'` in the output of `openconnect --authenticate`.
fn shell_value<'o>(stdout: &'o str, name: &str) -> &'o str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix("='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no {name}= line in:\n{stdout}"))
}

impl Lab {
    /// Phase 1 of protocol.md section 6.3: `openconnect --authenticate`; its COOKIE and
    /// CONNECT_URL.
    fn authenticate(&self) -> (String, String) {
        let output =
            run_with_stdin(self.openconnect(Some(&self.fixture.user), &["--authenticate"]));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}\nagent:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.agent_log()
        );
        (
            shell_value(&stdout, "COOKIE").to_owned(),
            shell_value(&stdout, "CONNECT_URL").to_owned(),
        )
    }

    /// Phase 2: openconnect with the cookie on stdin and the machine certificate (the
    /// cookie is bound to it), tunnel on device `tun`.
    fn connect_with_cookie(&self, tun: &str, cookie: &str, url: &str) -> RunningClient {
        let f = &self.fixture;
        self.spawn_tunnel(
            tun,
            |script| {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", &self.client.0, OPENCONNECT])
                    .args(["--protocol=anyconnect", "--non-inter", "--cookie-on-stdin"])
                    .arg("-c")
                    .arg(&f.machine.0)
                    .arg("-k")
                    .arg(&f.machine.1)
                    .arg("--cafile")
                    .arg(&f.ca_pem)
                    .arg(format!("--resolve=localhost:{AGENT_ADDRESS}"))
                    .args(["-i", tun, "--script", script, "--no-dtls", url]);
                command
            },
            &format!("{cookie}\n"),
        )
    }

    /// Pings the headend's tunnel address from the client namespace through device `tun`.
    fn ping_through(&self, tun: &str, count: u32) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.client.0, "ping", "-n", "-I", tun])
            .args(["-c", &count.to_string(), "-W", "2", "192.168.77.1"])
            .output()
            .unwrap()
    }
}

#[test]
fn after_an_administrator_logoff_the_sessions_cookie_is_rejected() {
    let lab = Lab::start("c");
    let (cookie, url) = lab.authenticate();
    assert_eq!(url, format!("https://localhost:{PORT}/"));
    let mut tunnel = lab.connect_with_cookie("octest0", &cookie, &url);
    tunnel.wait_configured(&lab, Duration::from_secs(30));
    let ping = lab.ping_through("octest0", 2);
    assert!(
        ping.status.success(),
        "{}",
        tunnel.report(&lab, "ping failed")
    );

    let logoff = lab.operator(&[
        "vpn-sessiondb",
        "logoff",
        "name",
        "client.example.com",
        "noconfirm",
    ]);
    assert!(logoff.contains("logged off : 1"), "{logoff}");
    let status = tunnel.wait(&lab, Duration::from_secs(10));
    let report = tunnel.report(&lab, &format!("openconnect exit {status}"));
    assert_eq!(status.code(), Some(1), "{report}");
    assert!(
        report.contains("Received server disconnect: b0 'Administrator reset'"),
        "{report}"
    );
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");

    // The same cookie again: the headend no longer knows it.
    let mut again = lab.connect_with_cookie("octest1", &cookie, &url);
    let status = again.wait(&lab, Duration::from_secs(20));
    let report = again.report(&lab, &format!("openconnect exit {status}"));
    eprintln!("{report}");
    assert_eq!(status.code(), Some(2), "{report}");
    assert!(report.contains("Cookie was rejected by server"), "{report}");
    assert!(report.contains("401 Unauthorized"), "{report}");
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    assert!(!summary.contains("client.example.com"), "{summary}");
}

impl Lab {
    /// Logs in to connection profile `group` with both certificates; the session detail.
    fn login_detail(&self, group: &str) -> String {
        let output = run_with_stdin(self.openconnect_without_group(
            Some(&self.fixture.user),
            &["--authenticate", "--usergroup", group],
        ));
        assert!(
            output.status.success(),
            "{}\nagent:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.agent_log()
        );
        self.operator(&["show", "vpn-sessiondb", "detail", "anyconnect"])
    }
}

#[test]
fn username_from_the_first_certificate_is_the_machine_certificates_cn() {
    let lab = Lab::start("1");
    let detail = lab.login_detail("RAVPN-FirstCert");
    eprintln!("{detail}");
    assert!(
        detail.contains("Username     : machine.example.com "),
        "{detail}"
    );
    assert!(
        detail.contains("Tunnel Group : RAVPN-FirstCert"),
        "{detail}"
    );
    assert!(
        detail.contains("Auth Mode    : Multiple-certificate"),
        "{detail}"
    );
    assert!(!detail.contains("client.example.com"), "{detail}");
}

#[test]
fn username_from_the_entire_dn_is_the_machine_certificates_subject() {
    let lab = Lab::start("d");
    let detail = lab.login_detail("RAVPN-EntireDN");
    eprintln!("{detail}");
    assert!(
        detail.contains("Username     : CN=machine.example.com,OU=Laptops,O=Example Corp"),
        "{detail}"
    );
    assert!(detail.contains("Tunnel Group : RAVPN-EntireDN"), "{detail}");
}

/// How many openconnect clients [`twenty_openconnect_clients_get_distinct_addresses_and_each_passes_traffic`] runs.
const CLIENTS: usize = 20;

#[test]
fn twenty_openconnect_clients_get_distinct_addresses_and_each_passes_traffic() {
    let lab = Lab::start("n");
    // Twenty tunnels in one namespace: replies arrive on a device that is not the one
    // the split route names, so strict reverse-path filtering would drop them.
    run(&[
        "ip",
        "netns",
        "exec",
        &lab.client.0,
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ]);
    let tuns: Vec<String> = (0..CLIENTS).map(|i| format!("ocm{i}")).collect();
    // Dropping `clients` kills every openconnect, whatever happens below.
    let mut clients: Vec<RunningClient> = tuns
        .iter()
        .map(|tun| {
            lab.spawn_tunnel(
                tun,
                |script| {
                    lab.openconnect(
                        Some(&lab.fixture.user),
                        &["-i", tun, "--script", script, "--no-dtls"],
                    )
                },
                "x\n",
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    for client in &mut clients {
        let left = deadline.saturating_duration_since(Instant::now());
        client.wait_configured(&lab, left);
    }

    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    let assigned: std::collections::BTreeSet<&str> = summary
        .lines()
        .filter_map(|l| l.strip_prefix("Assigned IP  : "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(assigned.len(), CLIENTS, "{summary}");
    assert!(
        assigned.iter().all(|ip| ip.starts_with("192.168.77.")),
        "{summary}"
    );

    for (tun, client) in tuns.iter().zip(&clients) {
        let env = std::fs::read_to_string(&client.env).unwrap();
        let address = env
            .lines()
            .find_map(|l| l.strip_prefix("INTERNAL_IP4_ADDRESS="))
            .unwrap();
        assert!(
            assigned.contains(address),
            "{tun}: {address} not in\n{summary}"
        );
        let ping = lab.ping_through(tun, 1);
        assert!(
            ping.status.success(),
            "{}",
            client.report(
                &lab,
                &format!(
                    "ping through {tun} ({address}) failed: {}",
                    String::from_utf8_lossy(&ping.stdout)
                )
            )
        );
    }
    // Each session, not just one, counted its echo request.
    let summary = lab.operator(&["show", "vpn-sessiondb", "anyconnect"]);
    let received: Vec<u64> = summary
        .lines()
        .filter_map(|l| l.split_once("Bytes Rx     : "))
        .map(|(_, n)| n.trim().parse().unwrap())
        .collect();
    assert_eq!(received.len(), CLIENTS, "{summary}");
    assert!(received.iter().all(|&bytes| bytes >= 84), "{summary}");
}
