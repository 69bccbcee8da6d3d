//! The lab every test runs in: certificates and agent configuration (the fixture),
//! three network namespaces (client, sensor, and an inside host behind the sensor)
//! joined by veth pairs, the agent, and openconnect commands.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use vpn_core::pki::testpki::{DEFAULT_NOT_BEFORE, LeafOptions, TestCa, TestCert, TestKeyType};

/// The sensor-agent executable (built by the fixture: it is another package's binary).
pub(crate) fn agent() -> &'static Path {
    e2e::sensor::binary()
}

pub(crate) const OPENCONNECT: &str = "/usr/sbin/openconnect";

pub(crate) const AGENT_ADDRESS: &str = "10.99.0.1";

pub(crate) const CLIENT_ADDRESS: &str = "10.99.0.2";

pub(crate) const PORT: u16 = 8443;

/// The sensor's address on the inside network, the inside host's gateway.
pub(crate) const INSIDE_GATEWAY: &str = "10.100.0.1";

/// A host on the inside network behind the sensor, reached through the tunnel.
pub(crate) const INSIDE_HOST: &str = "10.100.0.2";

/// The inside network, pushed to clients as a split-include network.
pub(crate) const INSIDE_NETWORK: &str = "10.100.0.0/24";

/// The address pool's network, routed back to the sensor by the inside host.
pub(crate) const POOL_NETWORK: &str = "192.168.77.0/24";

/// LOCAL password of `client.example.com` for the certificate + AAA profile.
pub(crate) const AAA_PASSWORD: &str = "s3cret-pass";

/// An argon2id PHC hash with cheap parameters (the cost is not under test).
pub(crate) fn password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::from_b64("b3BlbmNvbm5lY3QtdGVzdA").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A child process killed and reaped when dropped.
pub(crate) struct Process(pub(crate) Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn run(args: &[&str]) -> Output {
    let output = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub(crate) fn check_prerequisites() {
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
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) ca_pem: PathBuf,
    pub(crate) machine: (PathBuf, PathBuf),
    pub(crate) user: (PathBuf, PathBuf),
    /// A user certificate from a CA no trustpoint holds.
    pub(crate) rogue_user: (PathBuf, PathBuf),
    /// A user certificate of the trusted user CA whose validity ended in 2025.
    pub(crate) expired_user: (PathBuf, PathBuf),
    /// `user.pem` with the key of another RSA certificate of the same CA.
    pub(crate) user_with_other_key: (PathBuf, PathBuf),
    /// The user certificate and key, the certificate's issuer signature altered.
    pub(crate) forged_user: (PathBuf, PathBuf),
    /// `intermediate.example.com`, issued by `Test User Issuing CA` (below the user CA):
    /// the certificate file holds the leaf and the intermediate, as a real PKI's.
    pub(crate) intermediate_user: (PathBuf, PathBuf),
    /// CRLs of the user CA and of its issuing CA, neither revoking anything.
    pub(crate) user_crls_pem: String,
    /// The same, the issuing CA's CRL revoking `intermediate_user`.
    pub(crate) user_crls_revoking_pem: String,
    pub(crate) config: PathBuf,
    pub(crate) socket: PathBuf,
    /// What a manager needs to build the same configuration: the two CAs of the MCA
    /// trustpoints and the headend identity (chain and key), PEM.
    pub(crate) machine_ca_pem: String,
    pub(crate) user_ca_pem: String,
    pub(crate) identity_chain_pem: String,
    pub(crate) identity_key_pem: String,
}

pub(crate) fn write_pair(dir: &Path, name: &str, cert: &TestCert) -> (PathBuf, PathBuf) {
    let cert_path = dir.join(format!("{name}.pem"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    (cert_path, key_path)
}

/// Writes `forged-user.pem`: `cert_der` with the last byte of its issuer signature
/// flipped (the DER stays well-formed, the signature no longer verifies). rcgen cannot
/// sign badly, so the openssl CLI turns the DER into PEM.
pub(crate) fn forge_issuer_signature(dir: &Path, cert_der: &[u8]) -> PathBuf {
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

pub(crate) fn fixture() -> Fixture {
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
    let user_sub_ca = user_ca.intermediate("Test User Issuing CA", None).unwrap();
    let intermediate_user = user_sub_ca
        .issue(&LeafOptions {
            key_type: TestKeyType::Rsa2048,
            ..LeafOptions::client("intermediate.example.com")
        })
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let (this_update, next_update) = (now - time::Duration::days(1), now + time::Duration::days(7));
    let root_crl = user_ca.crl(&[], this_update, next_update).unwrap();
    let sub_crl = user_sub_ca.crl(&[], this_update, next_update).unwrap();
    let revoking_sub_crl = user_sub_ca
        .crl(&[&intermediate_user.serial], this_update, next_update)
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
    let intermediate_files = write_pair(dir.path(), "intermediate-user", &intermediate_user);
    let mut chain_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&intermediate_files.0)
        .unwrap();
    chain_file
        .write_all(user_sub_ca.cert.cert_pem.as_bytes())
        .unwrap();

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
            // MCA slot binding: a swapped pair is refused on this profile (refusals.rs);
            // the other profiles bind nothing, as FMC does.
            "machine_trustpoints": ["MACHINE-CA"],
            "user_trustpoints": ["USER-CA"],
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
                "username_mapping": { "mode": "SPECIFIC_FIELD", "primary": "CN", "secondary": "OU" }
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
            "split_tunnel_networks": [POOL_NETWORK, INSIDE_NETWORK],
            "mtu": 1399,
            // The twenty clients of the load test share one user certificate.
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
        intermediate_user: intermediate_files,
        user_crls_pem: format!("{}{}", root_crl.pem, sub_crl.pem),
        user_crls_revoking_pem: format!("{}{}", root_crl.pem, revoking_sub_crl.pem),
        config: config_path,
        socket,
        machine_ca_pem: machine_ca.cert.cert_pem,
        user_ca_pem: user_ca.cert.cert_pem,
        identity_chain_pem: server.pem(),
        identity_key_pem: server_key.serialize_pem(),
        dir,
    }
}

/// Where the sensor's management API listens in the server namespace.
pub(crate) const MANAGEMENT_PORT: u16 = 8305;

/// How the agent gets its configuration.
#[derive(Debug, Clone, Copy)]
enum Startup {
    /// `--config device.json` (the fixture's configuration).
    Config,
    /// None: it waits for its manager.
    Managed,
    /// `--config device.json` with DTLS on (see [`enable_dtls`]).
    ConfigWithDtls,
}

/// Profile whose group policy turns DTLS off, in the DTLS lab.
pub(crate) const NO_DTLS_GROUP: &str = "RAVPN-NoDtls";

/// Turns DTLS on for the headend (UDP 443) and `GP-MultiCert` with a client DPD of
/// 5 s (openconnect declares DTLS dead after about twice that), and adds the profile
/// [`NO_DTLS_GROUP`] whose group policy has DTLS off.
fn enable_dtls(config_path: &Path) {
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config_path).unwrap()).unwrap();
    config["headend"]["dtls_enabled"] = serde_json::json!(true);
    config["headend"]["dtls_port"] = serde_json::json!(443);
    config["group_policies"][0]["client_dpd_secs"] = serde_json::json!(5);
    let mut no_dtls_policy = config["group_policies"][0].clone();
    no_dtls_policy["name"] = serde_json::json!("GP-NoDtls");
    no_dtls_policy["dtls_enabled"] = serde_json::json!(false);
    config["group_policies"]
        .as_array_mut()
        .unwrap()
        .push(no_dtls_policy);
    let mut profile = config["connection_profiles"][0].clone();
    profile["name"] = serde_json::json!(NO_DTLS_GROUP);
    profile["group_policy"] = serde_json::json!("GP-NoDtls");
    profile["group_aliases"] = serde_json::json!([{ "name": NO_DTLS_GROUP, "enabled": true }]);
    config["connection_profiles"]
        .as_array_mut()
        .unwrap()
        .push(profile);
    std::fs::write(config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// The agent in namespace `server`, openconnect's side in `client`, joined by a veth
/// pair; the host `inside` behind the sensor on a second veth pair, the sensor
/// forwarding between its TUN device and the inside network.
pub(crate) struct Lab {
    pub(crate) fixture: Fixture,
    // Field order: the agent stops before its namespace goes.
    pub(crate) _agent: Process,
    pub(crate) client: Netns,
    pub(crate) inside: Netns,
    /// The inside host's end of the veth pair to the sensor.
    pub(crate) inside_device: String,
    /// The client's end of the veth pair to the sensor.
    pub(crate) client_device: String,
    pub(crate) _server: Netns,
}

impl Lab {
    pub(crate) fn start(tag: &str) -> Self {
        Self::start_with(tag, Startup::Config)
    }

    /// A lab whose agent runs DTLS on UDP 443 (see [`enable_dtls`]).
    pub(crate) fn start_with_dtls(tag: &str) -> Self {
        Self::start_with(tag, Startup::ConfigWithDtls)
    }

    /// A sensor that starts with no configuration, its management API on
    /// 127.0.0.1:`MANAGEMENT_PORT` of the server namespace and manager 127.0.0.1
    /// added with `registration_key`: a manager in the same namespace registers it.
    pub(crate) fn start_managed(tag: &str, registration_key: &str) -> Self {
        let lab = Self::start_with(tag, Startup::Managed);
        let added = lab.operator(&["configure", "manager", "add", "127.0.0.1", registration_key]);
        assert!(
            added.contains("Manager successfully configured."),
            "{added}"
        );
        lab
    }

    /// The server namespace (where the agent runs).
    pub(crate) fn server(&self) -> &Netns {
        &self._server
    }

    fn start_with(tag: &str, startup: Startup) -> Self {
        check_prerequisites();
        let id = std::process::id();
        let server = Netns::create(&format!("oc-s{tag}"));
        let client = Netns::create(&format!("oc-c{tag}"));
        let inside = Netns::create(&format!("oc-i{tag}"));
        let veth_server = format!("vs{tag}{}", id % 100_000);
        let veth_client = format!("vc{tag}{}", id % 100_000);
        let veth_gateway = format!("vg{tag}{}", id % 100_000);
        let veth_inside = format!("vi{tag}{}", id % 100_000);
        run(&[
            "ip",
            "link",
            "add",
            &veth_server,
            "netns",
            server.name(),
            "type",
            "veth",
            "peer",
            "name",
            &veth_client,
            "netns",
            client.name(),
        ]);
        for (ns, dev, address) in [
            (server.name(), &veth_server, AGENT_ADDRESS),
            (client.name(), &veth_client, CLIENT_ADDRESS),
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
        join_inside_network(&server, &veth_gateway, &inside, &veth_inside);
        let fixture = fixture();
        if matches!(startup, Startup::ConfigWithDtls) {
            enable_dtls(&fixture.config);
        }
        let log = std::fs::File::create(fixture.dir.path().join("agent.log")).unwrap();
        let mut agent = Process(
            Command::new("ip")
                .args(["netns", "exec", server.name()])
                .arg(agent())
                .arg("--control-socket")
                .arg(&fixture.socket)
                .args([
                    "run",
                    "--listen",
                    AGENT_ADDRESS,
                    "--tun-name",
                    "satun0",
                    "--tun-ipv4",
                    "192.168.77.1/24",
                    "--management-listen",
                    &format!("127.0.0.1:{MANAGEMENT_PORT}"),
                ])
                .args(match startup {
                    Startup::Config | Startup::ConfigWithDtls => {
                        vec!["--config".as_ref(), fixture.config.as_os_str()]
                    }
                    Startup::Managed => Vec::new(),
                })
                .arg("--data-dir")
                .arg(fixture.dir.path().join("data"))
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
            inside,
            inside_device: veth_inside,
            client_device: veth_client,
            _server: server,
        }
    }

    pub(crate) fn agent_log(&self) -> String {
        std::fs::read_to_string(self.fixture.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// openconnect in the client namespace for the `RAVPN-MultiCert` URL, with the
    /// common arguments plus `extra`.
    pub(crate) fn openconnect(&self, user: Option<&(PathBuf, PathBuf)>, extra: &[&str]) -> Command {
        let mut args = vec!["--usergroup", "RAVPN-MultiCert"];
        args.extend_from_slice(extra);
        self.openconnect_without_group(user, &args)
    }

    /// openconnect for the bare server URL (no group in the path).
    pub(crate) fn openconnect_without_group(
        &self,
        user: Option<&(PathBuf, PathBuf)>,
        extra: &[&str],
    ) -> Command {
        let f = &self.fixture;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.client.name(), OPENCONNECT])
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

    pub(crate) fn operator(&self, words: &[&str]) -> String {
        let output = Command::new(agent())
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

/// Joins the inside host's namespace to the sensor's by a veth pair (`gateway_device`
/// on the sensor, `inside_device` on the host), makes the sensor forward IPv4, and
/// routes the address pool back from the host to the sensor.
fn join_inside_network(server: &Netns, gateway_device: &str, inside: &Netns, inside_device: &str) {
    run(&[
        "ip",
        "link",
        "add",
        gateway_device,
        "netns",
        server.name(),
        "type",
        "veth",
        "peer",
        "name",
        inside_device,
        "netns",
        inside.name(),
    ]);
    for (ns, dev, address) in [
        (server.name(), gateway_device, INSIDE_GATEWAY),
        (inside.name(), inside_device, INSIDE_HOST),
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
    run(&[
        "ip",
        "netns",
        "exec",
        server.name(),
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
    ]);
    run(&[
        "ip",
        "-n",
        inside.name(),
        "route",
        "add",
        POOL_NETWORK,
        "via",
        INSIDE_GATEWAY,
    ]);
}

/// Runs `command` with `x` on stdin (for `--passwd-on-stdin`) and waits for it.
pub(crate) fn run_with_stdin(command: Command) -> Output {
    run_with_password(command, "x")
}

/// Runs `command` with `password` on stdin and waits for it.
pub(crate) fn run_with_password(mut command: Command, password: &str) -> Output {
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

/// openconnect running a tunnel in the client namespace, with its output files.
pub(crate) struct RunningClient {
    pub(crate) process: Process,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
    /// The vpnc-script's `$reason` log.
    pub(crate) events: PathBuf,
    /// The vpnc-script's environment at connect.
    pub(crate) env: PathBuf,
}

impl RunningClient {
    pub(crate) fn report(&self, lab: &Lab, what: &str) -> String {
        format!(
            "{what}\nopenconnect stdout:\n{}\nopenconnect stderr:\n{}\nagent:\n{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
            lab.agent_log()
        )
    }

    /// Waits for openconnect to exit; its status.
    pub(crate) fn wait(&mut self, lab: &Lab, limit: Duration) -> std::process::ExitStatus {
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
    pub(crate) fn vpnc_script(&self, tun: &str) -> (PathBuf, PathBuf, PathBuf) {
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
    pub(crate) fn connect_tunnel(&self) -> RunningClient {
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
    pub(crate) fn spawn_tunnel(
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
    pub(crate) fn is_configured(&mut self, lab: &Lab) -> bool {
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

    pub(crate) fn wait_configured(&mut self, lab: &Lab, limit: Duration) {
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

/// The value of `NAME='value'` in the output of `openconnect --authenticate`.
pub(crate) fn shell_value<'o>(stdout: &'o str, name: &str) -> &'o str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix("='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no {name}= line in:\n{stdout}"))
}

impl Lab {
    /// Phase 1 of protocol.md section 6.3: `openconnect --authenticate`; its COOKIE and
    /// CONNECT_URL.
    pub(crate) fn authenticate(&self) -> (String, String) {
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
    pub(crate) fn connect_with_cookie(&self, tun: &str, cookie: &str, url: &str) -> RunningClient {
        let f = &self.fixture;
        self.spawn_tunnel(
            tun,
            |script| {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", self.client.name(), OPENCONNECT])
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
    pub(crate) fn ping_through(&self, tun: &str, count: u32) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.client.name(), "ping", "-n", "-I", tun])
            .args(["-c", &count.to_string(), "-W", "2", "192.168.77.1"])
            .output()
            .unwrap()
    }
}

impl Lab {
    /// Pings `address` from the inside host's namespace.
    pub(crate) fn ping_from_inside(&self, address: &str, count: u32) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.inside.name(), "ping", "-n"])
            .args(["-c", &count.to_string(), "-W", "2", address])
            .output()
            .unwrap()
    }

    /// Packets the inside host's interface to the sensor has received
    /// (`ip -s -j link show`).
    pub(crate) fn inside_rx_packets(&self) -> u64 {
        let output = run(&[
            "ip",
            "-n",
            self.inside.name(),
            "-s",
            "-j",
            "link",
            "show",
            "dev",
            &self.inside_device,
        ]);
        let links: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        links[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .unwrap_or_else(|| panic!("no rx packet counter in {links}"))
    }

    /// ICMP echo requests the inside host has answered (`Icmp: OutEchoReps` of its
    /// namespace's `/proc/net/snmp`).
    pub(crate) fn inside_echo_replies(&self) -> u64 {
        let output = run(&[
            "ip",
            "netns",
            "exec",
            self.inside.name(),
            "cat",
            "/proc/net/snmp",
        ]);
        let text = String::from_utf8_lossy(&output.stdout);
        let mut icmp = text.lines().filter(|l| l.starts_with("Icmp:"));
        let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "OutEchoReps")
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or_else(|| panic!("no Icmp OutEchoReps in:\n{text}"))
    }
}
