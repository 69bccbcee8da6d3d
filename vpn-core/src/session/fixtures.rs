//! Test fixtures: the session of the seed capture.

use std::net::{IpAddr, Ipv4Addr};

use time::macros::datetime;

use super::*;

pub(crate) fn counters(bytes_tx: u64, bytes_rx: u64, pkts_tx: u64, pkts_rx: u64) -> TunnelCounters {
    TunnelCounters {
        bytes_tx,
        bytes_rx,
        pkts_tx,
        pkts_rx,
        pkts_tx_drop: 0,
        pkts_rx_drop: 0,
    }
}

pub(crate) fn seed_session() -> SessionRecord {
    let login = datetime!(2025-03-19 07:18:53 UTC);
    let recent = datetime!(2025-03-19 07:39:50 UTC);
    SessionRecord {
        index: 28,
        username: "client.cisco.com".to_owned(),
        assigned_ipv4: Some(Ipv4Addr::new(192, 168, 13, 1)),
        assigned_ipv6: None,
        public_ip: IpAddr::V4(Ipv4Addr::new(10, 106, 56, 89)),
        group_policy: "RAVPN-Multi-Cert-GP".to_owned(),
        tunnel_group: "RA-VPN-Multi-Cert".to_owned(),
        login_time: login,
        last_activity: recent,
        audit_session_id: audit_session_id(Ipv4Addr::new(10, 106, 67, 89), 28, login),
        license: LICENSE_ANYCONNECT_PREMIUM.to_owned(),
        auth_mode: AuthMode::MultipleCertificate,
        idle_timeout_minutes: Some(30),
        client: ClientInfo {
            os: "win".to_owned(),
            os_version: Some("10.0.22000".to_owned()),
            client_type: "AnyConnect".to_owned(),
            version: "Cisco AnyConnect VPN Agent for Windows 5.1.4.74".to_owned(),
        },
        parent: ParentTunnel {
            tcp_src_port: 53927,
            tcp_dst_port: 443,
            last_activity: login,
            counters: counters(11581, 224, 1, 0),
        },
        ssl: Some(TlsTunnel {
            tunnel_number: 2,
            encryption: "AES-GCM-128".to_owned(),
            hashing: "SHA256".to_owned(),
            cipher_suite: "TLS_AES_128_GCM_SHA256".to_owned(),
            encapsulation: "TLSv1.3".to_owned(),
            tcp_src_port: 53937,
            tcp_dst_port: 443,
            last_activity: recent,
            counters: counters(7743, 240, 1, 3),
        }),
        dtls: Some(DtlsTunnel {
            tunnel_number: 3,
            encryption: "AES-GCM-256".to_owned(),
            hashing: "SHA384".to_owned(),
            cipher_suite: "ECDHE-ECDSA-AES256-GCM-SHA384".to_owned(),
            encapsulation: "DTLSv1.2".to_owned(),
            udp_src_port: 62975,
            udp_dst_port: 443,
            last_activity: recent,
            counters: counters(0, 134091, 0, 1376),
        }),
        machine_certificate: Some(CertificateSummary {
            subject: "CN=machine.cisco.com".to_owned(),
            issuer: "CN=ca.cisco.com".to_owned(),
            serial: "01".to_owned(),
        }),
        user_certificate: Some(CertificateSummary {
            subject: "CN=client.cisco.com".to_owned(),
            issuer: "CN=ca.cisco.com".to_owned(),
            serial: "02".to_owned(),
        }),
        username_derivation: "CN of the second certificate".to_owned(),
    }
}
