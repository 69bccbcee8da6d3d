//! The record of one remote-access VPN session.
//!
//! One [`SessionRecord`] per logged-in client: who it is, which profile and policy it
//! runs under, its addresses, and its three FTD tunnels (the AnyConnect parent, the
//! TLS data tunnel and the optional DTLS data tunnel) with their counters. The sensor's
//! session database owns the records, the manager's API serves them as JSON, and
//! [`crate::cli`] renders them as `show vpn-sessiondb` text.

mod cipher;
mod events;
#[cfg(test)]
pub(crate) mod fixtures;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{AaaSettings, AuthenticationMethod};

pub use cipher::{CipherSuiteDescription, describe_cipher_suite};
pub use events::{EndReason, EventPage, SessionEvent, SessionEventKind};

/// The license line FTD prints for AnyConnect sessions.
pub const LICENSE_ANYCONNECT_PREMIUM: &str = "AnyConnect Premium";

/// One VPN session, as the session database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRecord {
    /// Session index, unique among live sessions (`Index`, and the `28` of tunnel id `28.1`).
    pub index: u32,
    /// Session username (certificate-derived or AAA, see `username_derivation`).
    pub username: String,
    pub assigned_ipv4: Option<Ipv4Addr>,
    pub assigned_ipv6: Option<Ipv6Addr>,
    /// The client's address as seen by the headend.
    pub public_ip: IpAddr,
    pub group_policy: String,
    /// Connection profile name.
    pub tunnel_group: String,
    #[serde(with = "time::serde::rfc3339")]
    pub login_time: OffsetDateTime,
    /// Last time any tunnel of the session carried traffic.
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    /// `Audt Sess ID`: 24 lowercase hex digits, see [`audit_session_id`].
    pub audit_session_id: String,
    /// Normally [`LICENSE_ANYCONNECT_PREMIUM`].
    pub license: String,
    pub auth_mode: AuthMode,
    /// The group policy's idle timeout; `None` means no idle timeout.
    pub idle_timeout_minutes: Option<u32>,
    pub client: ClientInfo,
    pub parent: ParentTunnel,
    pub ssl: Option<TlsTunnel>,
    pub dtls: Option<DtlsTunnel>,
    /// The first certificate (TLS client certificate; the machine certificate under MCA).
    pub machine_certificate: Option<CertificateSummary>,
    /// The second certificate (the user certificate sent in aggregate auth under MCA).
    pub user_certificate: Option<CertificateSummary>,
    /// How the username was obtained, in words (e.g. `CN of the second certificate`).
    pub username_derivation: String,
}

impl SessionRecord {
    /// The counters of all tunnels added up (the header lines of the session).
    pub fn total_counters(&self) -> TunnelCounters {
        let mut total = self.parent.counters;
        if let Some(ssl) = &self.ssl {
            total = total.saturating_add(&ssl.counters);
        }
        if let Some(dtls) = &self.dtls {
            total = total.saturating_add(&dtls.counters);
        }
        total
    }

    /// A session is active while it has a data tunnel; without one it is inactive
    /// (the client is away, e.g. roaming) until it resumes or times out.
    pub fn is_active(&self) -> bool {
        self.ssl.is_some() || self.dtls.is_some()
    }

    /// Whether `address` is one of the session's assigned addresses.
    pub fn has_assigned_address(&self, address: IpAddr) -> bool {
        match address {
            IpAddr::V4(v4) => self.assigned_ipv4 == Some(v4),
            IpAddr::V6(v6) => self.assigned_ipv6 == Some(v6),
        }
    }
}

/// How the session authenticated, as FTD prints it in `Auth Mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthMode {
    /// One client certificate.
    Certificate,
    /// Machine and user certificates (MCA).
    MultipleCertificate,
    /// Username and password only.
    UserPassword,
    /// One client certificate, then username and password.
    CertificateAndUserPassword,
    /// MCA, then username and password.
    MultipleCertificateAndUserPassword,
}

impl AuthMode {
    /// The authentication mode a session of a profile with these AAA settings has.
    pub fn for_aaa_settings(aaa: &AaaSettings) -> Self {
        let mca = aaa.requires_mca();
        match (aaa.authentication_method, mca) {
            (AuthenticationMethod::AaaOnly, _) => Self::UserPassword,
            (AuthenticationMethod::ClientCertificateOnly, false) => Self::Certificate,
            (AuthenticationMethod::ClientCertificateOnly, true) => Self::MultipleCertificate,
            (AuthenticationMethod::AaaAndClientCertificate, false) => {
                Self::CertificateAndUserPassword
            }
            (AuthenticationMethod::AaaAndClientCertificate, true) => {
                Self::MultipleCertificateAndUserPassword
            }
        }
    }

    /// The `Auth Mode` text. `Multiple-certificate` is taken from a real FTD 7.6
    /// capture; the combined forms follow ASA's wording and are inferred.
    pub fn ftd_name(self) -> &'static str {
        match self {
            Self::Certificate => "Certificate",
            Self::MultipleCertificate => "Multiple-certificate",
            Self::UserPassword => "userPassword",
            Self::CertificateAndUserPassword => "Certificate and userPassword",
            Self::MultipleCertificateAndUserPassword => "Multiple-certificate and userPassword",
        }
    }
}

/// What the client said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientInfo {
    /// Platform from the aggregate-auth init (`device-id`) or `X-AnyConnect-Platform`,
    /// e.g. `win`, `linux-64`, `mac-intel`.
    pub os: String,
    /// Platform version, e.g. `10.0.22000`, when the client sent one.
    pub os_version: Option<String>,
    /// `AnyConnect` for Secure Client and compatible clients.
    pub client_type: String,
    /// The client's `User-Agent`, e.g. `Cisco AnyConnect VPN Agent for Windows 5.1.4.74`.
    pub version: String,
}

impl ClientInfo {
    /// The operating system name FTD prints for the data tunnels (`Windows` for `win`).
    pub fn os_display_name(&self) -> &str {
        match self.os.as_str() {
            "win" | "win64" | "win-arm64" => "Windows",
            "mac" | "mac-intel" | "mac-arm64" | "macos" => "Mac OS X",
            "linux" | "linux-64" | "linux-arm64" => "Linux",
            "android" => "Android",
            "apple-ios" | "ios" => "iOS",
            other => other,
        }
    }
}

/// The AnyConnect parent tunnel: the HTTPS connection that authenticated (tunnel `.1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentTunnel {
    /// Client's TCP port of the authenticating connection.
    pub tcp_src_port: u16,
    /// Headend's TCP port (Web Access Port Number).
    pub tcp_dst_port: u16,
    /// Last time this tunnel carried traffic (for `Idle TO Left`).
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    pub counters: TunnelCounters,
}

/// The CSTP data tunnel over TLS (`SSL-Tunnel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsTunnel {
    /// The `2` of tunnel id `28.2`; reconnects get new numbers.
    pub tunnel_number: u32,
    /// e.g. `AES-GCM-256`, see [`describe_cipher_suite`].
    pub encryption: String,
    /// e.g. `SHA384`.
    pub hashing: String,
    /// e.g. `TLS_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// e.g. `TLSv1.3`.
    pub encapsulation: String,
    pub tcp_src_port: u16,
    pub tcp_dst_port: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    pub counters: TunnelCounters,
}

impl TlsTunnel {
    /// A fresh TLS tunnel; `Encryption`/`Hashing` come from the cipher-suite name
    /// (see [`describe_cipher_suite`]), `unknown` when it is not recognised.
    pub fn new(
        tunnel_number: u32,
        cipher_suite: &str,
        encapsulation: impl Into<String>,
        tcp_src_port: u16,
        tcp_dst_port: u16,
        established: OffsetDateTime,
    ) -> Self {
        let (cipher_suite, encryption, hashing) = cipher_words(cipher_suite);
        Self {
            tunnel_number,
            encryption,
            hashing,
            cipher_suite,
            encapsulation: encapsulation.into(),
            tcp_src_port,
            tcp_dst_port,
            last_activity: established,
            counters: TunnelCounters::default(),
        }
    }
}

/// The CSTP data tunnel over DTLS (`DTLS-Tunnel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtlsTunnel {
    /// The `3` of tunnel id `28.3`.
    pub tunnel_number: u32,
    pub encryption: String,
    pub hashing: String,
    /// e.g. `ECDHE-ECDSA-AES256-GCM-SHA384`.
    pub cipher_suite: String,
    /// e.g. `DTLSv1.2`.
    pub encapsulation: String,
    pub udp_src_port: u16,
    pub udp_dst_port: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    pub counters: TunnelCounters,
}

impl DtlsTunnel {
    /// A fresh DTLS tunnel, described like [`TlsTunnel::new`].
    pub fn new(
        tunnel_number: u32,
        cipher_suite: &str,
        encapsulation: impl Into<String>,
        udp_src_port: u16,
        udp_dst_port: u16,
        established: OffsetDateTime,
    ) -> Self {
        let (cipher_suite, encryption, hashing) = cipher_words(cipher_suite);
        Self {
            tunnel_number,
            encryption,
            hashing,
            cipher_suite,
            encapsulation: encapsulation.into(),
            udp_src_port,
            udp_dst_port,
            last_activity: established,
            counters: TunnelCounters::default(),
        }
    }
}

fn cipher_words(name: &str) -> (String, String, String) {
    match describe_cipher_suite(name) {
        Some(d) => (d.name, d.encryption, d.hashing),
        None => (name.to_owned(), "unknown".to_owned(), "unknown".to_owned()),
    }
}

/// Traffic counters of one tunnel, from the headend's point of view (Tx = to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelCounters {
    pub bytes_tx: u64,
    pub bytes_rx: u64,
    pub pkts_tx: u64,
    pub pkts_rx: u64,
    pub pkts_tx_drop: u64,
    pub pkts_rx_drop: u64,
}

impl TunnelCounters {
    /// Field-wise sum, saturating instead of wrapping.
    pub fn saturating_add(&self, other: &Self) -> Self {
        Self {
            bytes_tx: self.bytes_tx.saturating_add(other.bytes_tx),
            bytes_rx: self.bytes_rx.saturating_add(other.bytes_rx),
            pkts_tx: self.pkts_tx.saturating_add(other.pkts_tx),
            pkts_rx: self.pkts_rx.saturating_add(other.pkts_rx),
            pkts_tx_drop: self.pkts_tx_drop.saturating_add(other.pkts_tx_drop),
            pkts_rx_drop: self.pkts_rx_drop.saturating_add(other.pkts_rx_drop),
        }
    }
}

/// The parts of a client certificate a session keeps for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSummary {
    /// Subject DN, RFC 4514 string.
    pub subject: String,
    /// Issuer DN, RFC 4514 string.
    pub issuer: String,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
}

/// An FTD-style audit session id: 24 lowercase hex digits made of the headend's
/// IPv4 address, the session index shifted left by 12 bits, and the login time in
/// Unix seconds (each 32 bits). This reproduces the seed capture's
/// `0a6a43590001c00067da6fdd` (headend 10.106.67.89, index 28,
/// 2025-03-19 07:18:53 UTC); the meaning of the middle part is inferred.
pub fn audit_session_id(headend: Ipv4Addr, index: u32, login_time: OffsetDateTime) -> String {
    // Truncation to 32 bits is the format: the field wraps in 2106, like FTD's.
    let seconds = login_time.unix_timestamp() as u32;
    format!(
        "{:08x}{:08x}{:08x}",
        u32::from(headend),
        index.wrapping_shl(12),
        seconds
    )
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::fixtures::{counters, seed_session};
    use super::*;
    use crate::config::UsernameSource;

    #[test]
    fn audit_session_id_reproduces_the_seed_capture() {
        let id = audit_session_id(
            Ipv4Addr::new(10, 106, 67, 89),
            28,
            datetime!(2025-03-19 07:18:53 UTC),
        );
        assert_eq!(id, "0a6a43590001c00067da6fdd");
    }

    #[test]
    fn total_counters_add_up_the_seed_tunnels_to_the_seed_header() {
        let total = seed_session().total_counters();
        assert_eq!(total, counters(19324, 134555, 2, 1379));
    }

    #[test]
    fn total_counters_saturate_instead_of_wrapping() {
        let mut session = seed_session();
        session.parent.counters.bytes_tx = u64::MAX;
        assert_eq!(session.total_counters().bytes_tx, u64::MAX);
    }

    #[test]
    fn session_without_data_tunnels_is_inactive() {
        let mut session = seed_session();
        assert!(session.is_active());
        session.ssl = None;
        assert!(session.is_active());
        session.dtls = None;
        assert!(!session.is_active());
    }

    #[test]
    fn assigned_address_matches_either_family() {
        let mut session = seed_session();
        session.assigned_ipv6 = Some("2001:db8::5".parse().unwrap());
        assert!(session.has_assigned_address("192.168.13.1".parse().unwrap()));
        assert!(session.has_assigned_address("2001:db8::5".parse().unwrap()));
        assert!(!session.has_assigned_address("10.106.56.89".parse().unwrap()));
    }

    #[test]
    fn auth_mode_follows_the_profile_aaa_settings() {
        let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
        assert_eq!(AuthMode::for_aaa_settings(&aaa), AuthMode::Certificate);
        aaa.enable_multiple_certificate_authentication = true;
        aaa.username_from_certificate_source = UsernameSource::FirstCertificate;
        assert_eq!(
            AuthMode::for_aaa_settings(&aaa),
            AuthMode::MultipleCertificate
        );
        aaa.authentication_method = AuthenticationMethod::AaaAndClientCertificate;
        assert_eq!(
            AuthMode::for_aaa_settings(&aaa),
            AuthMode::MultipleCertificateAndUserPassword
        );
        aaa.enable_multiple_certificate_authentication = false;
        assert_eq!(
            AuthMode::for_aaa_settings(&aaa),
            AuthMode::CertificateAndUserPassword
        );
        // The MCA box is ignored for AAA-only profiles, as in FMC.
        aaa.authentication_method = AuthenticationMethod::AaaOnly;
        aaa.enable_multiple_certificate_authentication = true;
        assert_eq!(AuthMode::for_aaa_settings(&aaa), AuthMode::UserPassword);
    }

    #[test]
    fn mca_auth_mode_prints_like_ftd() {
        assert_eq!(
            AuthMode::MultipleCertificate.ftd_name(),
            "Multiple-certificate"
        );
    }

    #[test]
    fn windows_platform_is_shown_as_windows_and_unknown_platforms_verbatim() {
        let mut client = seed_session().client;
        assert_eq!(client.os_display_name(), "Windows");
        client.os = "linux-64".to_owned();
        assert_eq!(client.os_display_name(), "Linux");
        client.os = "plan9".to_owned();
        assert_eq!(client.os_display_name(), "plan9");
    }

    #[test]
    fn new_tunnels_take_encryption_and_hashing_from_the_cipher_suite() {
        let at = datetime!(2025-03-19 07:18:55 UTC);
        let tls = TlsTunnel::new(2, "TLS13_AES_128_GCM_SHA256", "TLSv1.3", 53937, 443, at);
        let seed_tls = seed_session().ssl.unwrap();
        assert_eq!(tls.encryption, seed_tls.encryption);
        assert_eq!(tls.hashing, seed_tls.hashing);
        assert_eq!(tls.cipher_suite, seed_tls.cipher_suite);
        assert_eq!(tls.counters, TunnelCounters::default());
        assert_eq!(tls.last_activity, at);
        let dtls = DtlsTunnel::new(
            3,
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "DTLSv1.2",
            62975,
            443,
            at,
        );
        assert_eq!(
            (dtls.encryption.as_str(), dtls.hashing.as_str()),
            ("AES-GCM-256", "SHA384")
        );
    }

    #[test]
    fn unrecognised_cipher_suite_is_kept_verbatim_and_described_as_unknown() {
        let at = datetime!(2025-03-19 07:18:55 UTC);
        let tls = TlsTunnel::new(2, "TLS_NEW_CIPHER", "TLSv1.3", 1, 443, at);
        assert_eq!(tls.cipher_suite, "TLS_NEW_CIPHER");
        assert_eq!(
            (tls.encryption.as_str(), tls.hashing.as_str()),
            ("unknown", "unknown")
        );
    }

    #[test]
    fn session_record_round_trips_through_json_with_rfc3339_times() {
        let session = seed_session();
        let json = serde_json::to_string(&session).unwrap();
        assert!(json.contains("\"login_time\":\"2025-03-19T07:18:53Z\""));
        assert!(json.contains("\"auth_mode\":\"MULTIPLE_CERTIFICATE\""));
        let back: SessionRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, session);
    }
}
