//! The sensor as a process: its executable, started in a network namespace and
//! waited for, the operator CLI, code run inside a namespace (the manager's side of
//! the channel), and the certificate its headend presents.
//!
//! A test in another package than `sensor-agent` cannot name that package's binary
//! with `env!("CARGO_BIN_EXE_sensor-agent")`, so [`binary`] has cargo build it (once
//! per test process) into the target directory the test itself was built in, with the
//! test's profile, exactly as `cargo build -p sensor-agent` builds the product.
//! `sensor-agent`'s own tests pass their `CARGO_BIN_EXE_sensor-agent` instead.

#![allow(clippy::unwrap_used)] // fixtures fail loudly on purpose

use std::ffi::OsStr;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};

use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

use crate::netns::Netns;

/// This workspace's `sensor-agent` executable, built by cargo on first use in this
/// process (a no-op when it is up to date) into the target directory and profile of
/// the running test, so a test never runs a stale binary.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_binary)
}

fn build_binary() -> PathBuf {
    crate::binaries::build("sensor-agent")
}

/// A deployable configuration: generated headend identity and client CA.
pub fn deployable_config() -> String {
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
#[derive(Debug)]
pub struct Agent(pub Child);

impl Agent {
    /// Sends SIGINT and waits (at most 10 s) for the agent to exit.
    pub fn interrupt(&mut self) -> std::process::ExitStatus {
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

/// `agent --control-socket <socket> <words>`: the operator CLI.
pub fn operator(agent: &Path, socket: &Path, words: &[&str]) -> Output {
    Command::new(agent)
        .arg("--control-socket")
        .arg(socket)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `agent run` in `netns` with `args` (a TUN device `satun7` unless `args` names one),
/// waited for until its control socket appears. Its log goes to the socket's path with
/// the extension `log`.
pub fn start_agent(agent: &Path, netns: &Netns, socket: &Path, args: &[&OsStr]) -> Agent {
    let has = |flag: &str| args.iter().any(|a| *a == OsStr::new(flag));
    let mut defaults: Vec<&str> = Vec::new();
    if !has("--tun-name") {
        defaults.extend(["--tun-name", "satun7", "--tun-ipv4", "10.66.0.1/24"]);
    }
    // The log goes to a file beside the socket: a pipe nobody reads would fill up and
    // stall the agent.
    let log_path = socket.with_extension("log");
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let log = std::fs::File::create(&log_path).unwrap();
    let mut agent = Agent(
        Command::new("ip")
            .args(["netns", "exec", netns.name()])
            .arg(agent)
            .arg("--control-socket")
            .arg(socket)
            .arg("run")
            .args(&defaults)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        if let Some(status) = agent.0.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("agent exited with {status}: {stderr}");
        }
        assert!(Instant::now() < deadline, "control socket never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
    agent
}

/// Runs `f` on a thread inside the namespace.
pub fn in_netns<T: Send + 'static>(netns: &Netns, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{}", netns.name());
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// The manager's side of the channel, run inside `netns` (its own runtime).
pub fn as_manager<T: Send + 'static>(
    netns: &Netns,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> T {
    in_netns(netns, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f())
    })
}

/// The leaf certificate (DER) the headend presents on 127.0.0.1:`port` in the
/// namespace, or why the TLS handshake failed.
pub fn presented_certificate(netns: &Netns, port: u16) -> Result<Vec<u8>, String> {
    in_netns(netns, move || {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate { provider }))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let mut connection =
            ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
        let mut tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        while connection.is_handshaking() {
            connection
                .complete_io(&mut tcp)
                .map_err(|e| e.to_string())?;
        }
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.as_ref().to_vec())
            .ok_or_else(|| "no certificate presented".to_owned())
    })
}

/// Accepts any server certificate (the tests compare it themselves); checks only the
/// handshake signatures.
#[derive(Debug)]
pub struct AnyServerCertificate {
    pub provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
