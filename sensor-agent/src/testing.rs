//! Shared test data.

pub(crate) mod logs;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vpn_core::config::{DeviceConfig, IdentityCertificate, PrivateKeyPem};
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};
use vpn_core::session::{AuthMode, ClientInfo};

use crate::sessions::NewSession;

/// A small but complete device configuration: one MCA profile, its group policy and
/// an IPv4 pool 10.77.0.10-10.77.0.20.
pub(crate) const SAMPLE_CONFIG_JSON: &str = r#"{
  "schema_version": 1,
  "version": 3,
  "device_id": "6f1c3f0e-8a2b-4d5e-9f00-1a2b3c4d5e6f",
  "headend": {
    "identity": {
      "trustpoint": "VPN-ID",
      "certificate_chain_pem": "",
      "private_key_pem": ""
    }
  },
  "connection_profiles": [{
    "name": "RAVPN-MCA",
    "group_policy": "GP-MCA",
    "ipv4_pools": ["POOL4"],
    "aaa": {
      "authentication_method": "CLIENT_CERTIFICATE_ONLY",
      "enable_multiple_certificate_authentication": true
    }
  }],
  "group_policies": [{ "name": "GP-MCA", "mtu": 1399 }],
  "ipv4_pools": [{
    "name": "POOL4",
    "start": "10.77.0.10",
    "end": "10.77.0.20",
    "mask": "255.255.255.0"
  }]
}"#;

pub(crate) fn sample_config() -> DeviceConfig {
    serde_json::from_str(SAMPLE_CONFIG_JSON).unwrap()
}

/// The sample configuration made deployable: a generated headend identity and a
/// client CA trustpoint on its profile (generated once per test binary).
pub(crate) fn deployable_sample() -> Value {
    static VALID: OnceLock<Value> = OnceLock::new();
    VALID
        .get_or_init(|| {
            let ca = TestCa::root("Test Client CA").unwrap();
            let server_ca = TestCa::root("Test Server CA").unwrap();
            let identity = server_ca
                .issue(&LeafOptions {
                    eku: vec![TestEku::ServerAuth],
                    ..LeafOptions::client("localhost")
                })
                .unwrap();
            let mut value: Value = serde_json::from_str(SAMPLE_CONFIG_JSON).unwrap();
            value["headend"]["identity"]["certificate_chain_pem"] =
                json!(format!("{}{}", identity.cert_pem, server_ca.cert.cert_pem));
            value["headend"]["identity"]["private_key_pem"] = json!(identity.key_pem);
            value["trustpoints"] =
                json!([{ "name": "CLIENT-CA", "ca_certificates_pem": ca.cert.cert_pem }]);
            value["connection_profiles"][0]["trustpoints"] = json!(["CLIENT-CA"]);
            value
        })
        .clone()
}

/// An MCA login of `username` on the sample config's profile and pool, as openconnect
/// 9.01 presents itself; tests override the fields they care about.
pub(crate) fn new_session(username: &str) -> NewSession {
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

/// A headend identity issued by its own test CA (ECDSA P-256, EKU serverAuth), and
/// the leaf certificate (DER) a client sees.
pub(crate) struct TestIdentity {
    pub(crate) identity: IdentityCertificate,
    pub(crate) leaf_der: Vec<u8>,
}

pub(crate) fn test_identity(trustpoint: &str) -> TestIdentity {
    let ca = TestCa::root(&format!("{trustpoint} CA")).unwrap();
    let leaf = ca
        .issue(&LeafOptions {
            eku: vec![TestEku::ServerAuth],
            ..LeafOptions::client("localhost")
        })
        .unwrap();
    TestIdentity {
        identity: IdentityCertificate {
            trustpoint: trustpoint.to_owned(),
            certificate_chain_pem: format!("{}{}", leaf.cert_pem, ca.cert.cert_pem),
            private_key_pem: PrivateKeyPem(leaf.key_pem.clone()),
        },
        leaf_der: leaf.cert_der,
    }
}

/// Upper-case hex SHA-1 of `der`, as `<server-cert-hash>` carries it.
pub(crate) fn sha1_hex(der: &[u8]) -> String {
    hex::encode_upper(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        der,
    ))
}

/// A TLS client connection to `address` that accepts whatever certificate the
/// server presents (the tests compare it themselves).
pub(crate) async fn tls_connect(
    address: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(e2e::sensor::AnyServerCertificate { provider }))
        .with_no_client_auth();
    let tcp = TcpStream::connect(address).await?;
    tls_over(tcp, config).await
}

/// [`tls_connect`] from the local address `source` (e.g. 127.0.0.2, another client).
pub(crate) async fn tls_connect_from(
    source: IpAddr,
    address: SocketAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(e2e::sensor::AnyServerCertificate { provider }))
        .with_no_client_auth();
    let tcp = tcp_connect_from(source, address).await?;
    tls_over(tcp, config).await
}

/// A TCP connection to `address` from the local address `source`.
pub(crate) async fn tcp_connect_from(
    source: IpAddr,
    address: SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket = if source.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(address).await
}

async fn tls_over(
    tcp: TcpStream,
    config: ClientConfig,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The leaf certificate (DER) the TLS server at `address` presents.
pub(crate) async fn presented_certificate(address: SocketAddr) -> std::io::Result<Vec<u8>> {
    let tls = tls_connect(address).await?;
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.as_ref().to_vec())
        .ok_or_else(|| std::io::Error::other("the server presented no certificate"))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `body` on a thread that has entered the namespace, on its own runtime, so
/// TUN devices, their ioctls and the `ip` commands all happen inside the namespace.
pub(crate) fn run_in<F, Fut>(netns: &e2e::netns::Netns, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let path = format!("/var/run/netns/{}", netns.name());
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(body());
    });
    if let Err(panic) = handle.join() {
        std::panic::resume_unwind(panic);
    }
}
