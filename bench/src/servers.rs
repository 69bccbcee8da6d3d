//! The two servers under test and their credentials: our sensor-agent (MCA logins:
//! machine certificate in TLS, user certificate signed in the XML exchange) and Debian's
//! ocserv (certificate logins: the machine certificate in TLS).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use ipnet::Ipv4Net;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, ConnectionProfile, DeviceConfig, GroupAlias, GroupPolicy,
    Headend, IdentityCertificate, Ipv4Pool, PrivateKeyPem, SCHEMA_VERSION, SplitTunnelPolicy,
    Trustpoint, UsernameSource,
};
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestCert, TestKeyType};

use crate::lab::{
    DTLS_PORT, Guarded, INSIDE_NETWORK, POOL_NETWORK, SERVER_ADDRESS, TLS_PORT, Topology,
    wait_listening,
};

/// The connection profile (group alias) our clients log in to.
pub(crate) const GROUP: &str = "RAVPN-MultiCert";
/// Most sessions either server accepts (above the held-session count).
const CAPACITY: u32 = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ours,
    Ocserv,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ours => "sensor-agent",
            Self::Ocserv => "ocserv",
        }
    }
}

/// Certificates and keys as files in the work directory.
pub(crate) struct Credentials {
    pub(crate) server_ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) machine_ca: PathBuf,
    pub(crate) machine: (PathBuf, PathBuf),
    pub(crate) user: (PathBuf, PathBuf),
    server_chain_pem: String,
    server_key_pem: String,
    machine_ca_pem: String,
    user_ca_pem: String,
}

impl Credentials {
    /// A server CA and `localhost` identity (ECDSA P-256), a machine CA with an ECDSA
    /// P-256 machine certificate, a user CA with an RSA-2048 user certificate.
    pub(crate) fn generate(dir: &Path) -> anyhow::Result<Self> {
        let server_ca = TestCa::root("Bench Server CA")?;
        let server = server_identity(&server_ca)?;
        let machine_ca = TestCa::root("Bench Machine CA")?;
        let user_ca = TestCa::root("Bench User CA")?;
        let machine = machine_ca.issue(&LeafOptions::client("machine.example.com"))?;
        let user = user_ca.issue(&LeafOptions {
            key_type: TestKeyType::Rsa2048,
            ..LeafOptions::client("client.example.com")
        })?;
        let write = |name: &str, text: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("cannot write {name}"))?;
            Ok(path)
        };
        let pair = |name: &str, cert: &TestCert| -> anyhow::Result<(PathBuf, PathBuf)> {
            Ok((
                write(&format!("{name}.pem"), &cert.cert_pem)?,
                write(&format!("{name}.key"), &cert.key_pem)?,
            ))
        };
        Ok(Self {
            server_ca: write("server-ca.pem", &server_ca.cert.cert_pem)?,
            server_cert: write("server.pem", &server.cert_pem)?,
            server_key: write("server.key", &server.key_pem)?,
            machine_ca: write("machine-ca.pem", &machine_ca.cert.cert_pem)?,
            machine: pair("machine", &machine)?,
            user: pair("user", &user)?,
            server_chain_pem: format!("{}{}", server.cert_pem, server_ca.cert.cert_pem),
            server_key_pem: server.key_pem,
            machine_ca_pem: machine_ca.cert.cert_pem,
            user_ca_pem: user_ca.cert.cert_pem,
        })
    }
}

/// A `CN=localhost` server certificate with SAN `localhost`, issued by `ca`.
fn server_identity(ca: &TestCa) -> anyhow::Result<TestCert> {
    let ca_key = rcgen::KeyPair::from_pem(&ca.key_pem())?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca.cert.cert_pem, ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = vpn_core::pki::testpki::DEFAULT_NOT_BEFORE;
    params.not_after = vpn_core::pki::testpki::DEFAULT_NOT_AFTER;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(TestCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: key.serialize_pem(),
        serial: Vec::new(),
    })
}

/// Our sensor's configuration: one MCA profile (username from the user certificate),
/// DTLS on UDP [`DTLS_PORT`], split tunnel to the inside network, a /21 pool.
pub(crate) fn sensor_config(credentials: &Credentials) -> anyhow::Result<DeviceConfig> {
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    aaa.username_from_certificate_source = UsernameSource::SecondCertificate;
    let mut policy = GroupPolicy::new("GP-Bench");
    policy.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
    policy.split_tunnel_networks = vec![INSIDE_NETWORK.parse()?];
    // Every bench client logs in as the same user.
    policy.simultaneous_logins = CAPACITY;
    let pool: Ipv4Net = POOL_NETWORK.parse()?;
    let trustpoint = |name: &str, pem: &str| Trustpoint {
        name: name.to_owned(),
        ca_certificates_pem: pem.to_owned(),
        validation_usage: Default::default(),
        skip_ca_flag_check: false,
        require_client_auth_eku: true,
        revocation: Default::default(),
    };
    Ok(DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version: 1,
        device_id: uuid::Uuid::from_u128(0xbe4c_0000_0000_4000_8000_0000_0000_0001),
        headend: Headend {
            access_interface: "outside".to_owned(),
            ssl_port: TLS_PORT,
            dtls_enabled: true,
            dtls_port: DTLS_PORT,
            allow_profile_selection: true,
            identity: IdentityCertificate {
                trustpoint: "FTD-ID".to_owned(),
                certificate_chain_pem: credentials.server_chain_pem.clone(),
                private_key_pem: PrivateKeyPem(credentials.server_key_pem.clone()),
            },
        },
        connection_profiles: vec![ConnectionProfile {
            name: GROUP.to_owned(),
            group_policy: policy.name.clone(),
            ipv4_pools: vec!["POOL-Bench".to_owned()],
            ipv6_pools: Vec::new(),
            aaa,
            trustpoints: vec!["MACHINE-CA".to_owned(), "USER-CA".to_owned()],
            machine_trustpoints: Vec::new(),
            user_trustpoints: Vec::new(),
            group_aliases: vec![GroupAlias {
                name: GROUP.to_owned(),
                enabled: true,
            }],
            group_urls: Vec::new(),
        }],
        group_policies: vec![policy],
        ipv4_pools: vec![Ipv4Pool {
            name: "POOL-Bench".to_owned(),
            start: offset(pool.network(), 10),
            end: offset(pool.broadcast(), -5),
            mask: pool.netmask(),
        }],
        ipv6_pools: Vec::new(),
        trustpoints: vec![
            trustpoint("MACHINE-CA", &credentials.machine_ca_pem),
            trustpoint("USER-CA", &credentials.user_ca_pem),
        ],
        local_users: Vec::new(),
    })
}

fn offset(address: Ipv4Addr, by: i64) -> Ipv4Addr {
    let value = i64::from(u32::from(address)) + by;
    Ipv4Addr::from(u32::try_from(value).unwrap_or(0))
}

/// The headend's own address on our TUN device: the pool network's first address.
fn sensor_tun_address() -> anyhow::Result<String> {
    let pool: Ipv4Net = POOL_NETWORK.parse()?;
    Ok(format!(
        "{}/{}",
        offset(pool.network(), 1),
        pool.prefix_len()
    ))
}

/// ocserv.conf for certificate logins with the machine certificate (username = its CN),
/// DTLS on, the same pool, split route, keepalive and DPD as ours, and no limits that
/// would throttle the benchmark (rate limit, bans, client counts).
pub(crate) fn ocserv_config(credentials: &Credentials, dir: &Path) -> anyhow::Result<String> {
    let pool: Ipv4Net = POOL_NETWORK.parse()?;
    let inside: Ipv4Net = INSIDE_NETWORK.parse()?;
    let mut text = String::new();
    let lines = [
        "auth = \"certificate\"".to_owned(),
        format!("listen-host = {SERVER_ADDRESS}"),
        format!("tcp-port = {TLS_PORT}"),
        format!("udp-port = {DTLS_PORT}"),
        "run-as-user = nobody".to_owned(),
        "run-as-group = nogroup".to_owned(),
        format!("socket-file = {}", dir.join("ocserv.sock").display()),
        format!("pid-file = {}", dir.join("ocserv.pid").display()),
        format!("server-cert = {}", credentials.server_cert.display()),
        format!("server-key = {}", credentials.server_key.display()),
        format!("ca-cert = {}", credentials.machine_ca.display()),
        "cert-user-oid = 2.5.4.3".to_owned(),
        "isolate-workers = true".to_owned(),
        "max-clients = 0".to_owned(),
        "max-same-clients = 0".to_owned(),
        "rate-limit-ms = 0".to_owned(),
        "max-ban-score = 0".to_owned(),
        "keepalive = 20".to_owned(),
        "dpd = 30".to_owned(),
        "mobile-dpd = 30".to_owned(),
        "switch-to-tcp-timeout = 25".to_owned(),
        "try-mtu-discovery = false".to_owned(),
        "tls-priorities = \"NORMAL:%SERVER_PRECEDENCE:%COMPAT:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1\""
            .to_owned(),
        "auth-timeout = 240".to_owned(),
        "idle-timeout = 1800".to_owned(),
        "cookie-timeout = 300".to_owned(),
        "use-occtl = false".to_owned(),
        "log-level = 1".to_owned(),
        "device = vpns".to_owned(),
        "predictable-ips = true".to_owned(),
        format!("ipv4-network = {}", pool.network()),
        format!("ipv4-netmask = {}", pool.netmask()),
        format!("route = {}/{}", inside.network(), inside.netmask()),
        "ping-leases = false".to_owned(),
        "cisco-client-compat = true".to_owned(),
        "dtls-legacy = true".to_owned(),
    ];
    for line in lines {
        writeln!(text, "{line}")?;
    }
    Ok(text)
}

/// A running server in the topology's server namespace.
pub(crate) struct Server {
    pub(crate) kind: Kind,
    pub(crate) process: Guarded,
    /// The exact command that started it (for the report).
    pub(crate) command: String,
}

impl Server {
    /// Starts our sensor-agent (`agent` binary) with `config` in `dir`.
    pub(crate) fn start_ours(
        topology: &Topology,
        agent: &Path,
        config: &DeviceConfig,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let config_path = dir.join("device.json");
        std::fs::write(&config_path, config.to_json())?;
        let log = dir.join("sensor-agent.log");
        let args: Vec<OsString> = vec![
            "--control-socket".into(),
            dir.join("control.sock").into(),
            "run".into(),
            "--data-dir".into(),
            dir.join("data").into(),
            "--config".into(),
            config_path.into(),
            "--listen".into(),
            SERVER_ADDRESS.into(),
            "--tun-name".into(),
            "btun0".into(),
            "--tun-ipv4".into(),
            sensor_tun_address()?.into(),
            "--device-capacity".into(),
            CAPACITY.to_string().into(),
            "--management-listen".into(),
            "127.0.0.1:8305".into(),
        ];
        let mut command = topology.server.command(agent);
        command
            .args(&args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        let shown = format!("{} {}", agent.display(), join(&args));
        Self::started(topology, Kind::Ours, command, log, shown)
    }

    /// Starts `ocserv -f -c ocserv.conf` with the configuration written to `dir`.
    pub(crate) fn start_ocserv(
        topology: &Topology,
        credentials: &Credentials,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let config_path = dir.join("ocserv.conf");
        std::fs::write(&config_path, ocserv_config(credentials, dir)?)?;
        let log = dir.join("ocserv.log");
        let mut command = topology.server.command("ocserv");
        command
            .arg("-f")
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("ocserv.out"))?)
            .stderr(std::fs::File::create(&log)?);
        let shown = format!("ocserv -f -c {}", config_path.display());
        Self::started(topology, Kind::Ocserv, command, log, shown)
    }

    fn started(
        topology: &Topology,
        kind: Kind,
        command: std::process::Command,
        log: PathBuf,
        shown: String,
    ) -> anyhow::Result<Self> {
        let mut process = Guarded::spawn(command, kind.label())?;
        wait_listening(&topology.server, TLS_PORT, &mut process, &log)?;
        Ok(Self {
            kind,
            process,
            command: shown,
        })
    }

    /// openconnect's login arguments for this server: MCA for ours, the single machine
    /// certificate for ocserv.
    pub(crate) fn login_args(&self, credentials: &Credentials) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "-c".into(),
            credentials.machine.0.clone().into(),
            "-k".into(),
            credentials.machine.1.clone().into(),
        ];
        if self.kind == Kind::Ours {
            args.extend([
                "--mca-certificate".into(),
                credentials.user.0.clone().into(),
                "--mca-key".into(),
                credentials.user.1.clone().into(),
                "--usergroup".into(),
                GROUP.into(),
            ]);
        }
        args
    }
}

pub(crate) fn join(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_configuration_passes_the_sensors_checks() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::generate(dir.path()).unwrap();
        let config = sensor_config(&credentials).unwrap();
        let reread = DeviceConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(
            reread.validate(vpn_core::pki::testpki::TEST_NOW),
            Ok(()),
            "the bench configuration must be deployable"
        );
        assert!(reread.headend.dtls_enabled);
    }

    #[test]
    fn ocserv_logs_in_by_certificate_with_the_same_pool_and_split_route() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::generate(dir.path()).unwrap();
        let text = ocserv_config(&credentials, dir.path()).unwrap();
        for line in [
            "auth = \"certificate\"",
            "cert-user-oid = 2.5.4.3",
            "ipv4-network = 192.168.72.0",
            "ipv4-netmask = 255.255.248.0",
            "route = 10.100.0.0/255.255.255.0",
            "udp-port = 443",
            "max-same-clients = 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }
}
