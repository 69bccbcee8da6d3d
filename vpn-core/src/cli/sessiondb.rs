//! `show vpn-sessiondb [summary]`, `show vpn-sessiondb [detail] anyconnect [filter ...]`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::layout::{Lines, duration, login_time};
use crate::session::{SessionRecord, TunnelCounters};

/// Printed when the session database is empty.
pub const NO_ACTIVE_SESSIONS: &str = "INFO: There are presently no active sessions";
/// Printed when sessions exist but none matches the filter.
pub const NO_MATCHING_SESSIONS: &str =
    "INFO: There are presently no active sessions of the type specified";

const RULE: &str = "---------------------------------------------------------------------------";
const SUB_RULE: &str =
    "                             ----------------------------------------------";

/// `filter name X`, `filter a-ipaddress X`, `filter tunnel-group X`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "kebab-case")]
pub enum SessionFilter {
    /// Sessions of this username (exact match).
    Name(String),
    /// The session holding this assigned (inner) address.
    AssignedAddress(IpAddr),
    /// Sessions of this connection profile.
    TunnelGroup(String),
}

impl SessionFilter {
    pub fn matches(&self, session: &SessionRecord) -> bool {
        match self {
            Self::Name(name) => session.username == *name,
            Self::AssignedAddress(address) => session.has_assigned_address(*address),
            Self::TunnelGroup(group) => session.tunnel_group == *group,
        }
    }
}

/// Counters the session database keeps across sessions (since the sensor started).
/// Values below the current active counts are raised to them when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionStats {
    /// Sessions ever established.
    pub cumulative_sessions: u64,
    /// Most sessions alive at once.
    pub peak_concurrent_sessions: u64,
    /// TLS data tunnels ever established (reconnects count again).
    pub cumulative_ssl_tunnels: u64,
    pub peak_concurrent_ssl_tunnels: u64,
    /// DTLS data tunnels ever established.
    pub cumulative_dtls_tunnels: u64,
    pub peak_concurrent_dtls_tunnels: u64,
    /// Device Total VPN Capacity (licensed or configured maximum sessions).
    pub device_capacity: u32,
}

/// `show vpn-sessiondb summary` (also plain `show vpn-sessiondb`).
pub fn vpn_sessiondb_summary(sessions: &[SessionRecord], stats: &SessionStats) -> String {
    let active = count(sessions.iter().filter(|s| s.is_active()));
    let inactive = count(sessions.iter().filter(|s| !s.is_active()));
    let all = count(sessions.iter());
    let ssl = count(sessions.iter().filter(|s| s.ssl.is_some()));
    let dtls = count(sessions.iter().filter(|s| s.dtls.is_some()));
    let cumulative = stats.cumulative_sessions.max(all);
    let peak = stats.peak_concurrent_sessions.max(all);
    let ssl_cumulative = stats.cumulative_ssl_tunnels.max(ssl);
    let dtls_cumulative = stats.cumulative_dtls_tunnels.max(dtls);

    let mut out = Lines::new();
    out.line(RULE);
    out.line("VPN Session Summary");
    out.line(RULE);
    out.line("                               Active : Cumulative : Peak Concur : Inactive");
    out.line(SUB_RULE);
    for label in ["AnyConnect Client", "  SSL/TLS/DTLS"] {
        out.line(format!(
            "{label:<29}: {active:>6} : {cumulative:>10} : {peak:>11} : {inactive:>8}"
        ));
    }
    out.line(RULE);
    out.line(format!(
        "{:<29}: {all:>6}             Total Cumulative : {cumulative}",
        "Total Active and Inactive"
    ));
    out.line(format!(
        "{:<29}: {:>6}",
        "Device Total VPN Capacity", stats.device_capacity
    ));
    out.line(format!(
        "{:<29}: {:>5}%",
        "Device Load",
        load_percent(all, stats.device_capacity)
    ));
    out.line(RULE);
    out.line(RULE);
    out.line("Tunnels Summary");
    out.line(RULE);
    out.line("                               Active : Cumulative : Peak Concurrent");
    out.line(SUB_RULE);
    let rows = [
        ("AnyConnect-Parent", all, cumulative, peak),
        (
            "SSL-Tunnel",
            ssl,
            ssl_cumulative,
            stats.peak_concurrent_ssl_tunnels.max(ssl),
        ),
        (
            "DTLS-Tunnel",
            dtls,
            dtls_cumulative,
            stats.peak_concurrent_dtls_tunnels.max(dtls),
        ),
    ];
    for (label, active, cumulative, peak) in rows {
        out.line(format!(
            "{label:<29}: {active:>6} : {cumulative:>10} : {peak:>15}"
        ));
    }
    out.line(RULE);
    let tunnels = all.saturating_add(ssl).saturating_add(dtls);
    let tunnels_cumulative = cumulative
        .saturating_add(ssl_cumulative)
        .saturating_add(dtls_cumulative);
    out.line(format!(
        "{:<29}: {tunnels:>6} : {tunnels_cumulative:>10}",
        "Totals"
    ));
    out.line(RULE);
    out.into_string()
}

/// `show vpn-sessiondb anyconnect [filter ...]`.
pub fn vpn_sessiondb_anyconnect(
    sessions: &[SessionRecord],
    filter: Option<&SessionFilter>,
    now: OffsetDateTime,
) -> String {
    render_sessions(sessions, filter, "Session Type: AnyConnect", |s, out| {
        session_header(s, now, false, out);
    })
}

/// `show vpn-sessiondb detail anyconnect [filter ...]`.
pub fn vpn_sessiondb_detail_anyconnect(
    sessions: &[SessionRecord],
    filter: Option<&SessionFilter>,
    now: OffsetDateTime,
) -> String {
    render_sessions(
        sessions,
        filter,
        "Session Type: AnyConnect Detailed",
        |s, out| {
            session_header(s, now, true, out);
            tunnel_blocks(s, now, out);
        },
    )
}

/// Selected sessions in index order: the same output whatever order the database
/// hands them over in.
fn render_sessions(
    sessions: &[SessionRecord],
    filter: Option<&SessionFilter>,
    title: &str,
    render: impl Fn(&SessionRecord, &mut Lines),
) -> String {
    if sessions.is_empty() {
        return format!("{NO_ACTIVE_SESSIONS}\n");
    }
    let mut selected: Vec<&SessionRecord> = sessions
        .iter()
        .filter(|s| filter.is_none_or(|f| f.matches(s)))
        .collect();
    if selected.is_empty() {
        return format!("{NO_MATCHING_SESSIONS}\n");
    }
    selected.sort_by_key(|s| s.index);
    let mut out = Lines::new();
    out.blank();
    out.line(title);
    for session in selected {
        out.blank();
        render(session, &mut out);
    }
    out.into_string()
}

fn session_header(s: &SessionRecord, now: OffsetDateTime, detail: bool, out: &mut Lines) {
    let totals = s.total_counters();
    out.pair(0, ("Username", &s.username), ("Index", &s.index));
    assigned_addresses(s, 0, out);
    out.field(0, "Protocol", protocols(s));
    out.field(0, "License", &s.license);
    out.field(
        0,
        "Encryption",
        per_tunnel(
            s.ssl.as_ref().map(|t| t.encryption.as_str()),
            s.dtls.as_ref().map(|t| t.encryption.as_str()),
        ),
    );
    out.field(
        0,
        "Hashing",
        per_tunnel(
            s.ssl.as_ref().map(|t| t.hashing.as_str()),
            s.dtls.as_ref().map(|t| t.hashing.as_str()),
        ),
    );
    out.pair(
        0,
        ("Bytes Tx", &totals.bytes_tx),
        ("Bytes Rx", &totals.bytes_rx),
    );
    if detail {
        packets(&totals, 0, out);
    }
    out.pair(
        0,
        ("Group Policy", &s.group_policy),
        ("Tunnel Group", &s.tunnel_group),
    );
    out.field(0, "Login Time", login_time(s.login_time));
    out.field(0, "Duration", duration(now - s.login_time));
    let inactivity = if s.is_active() {
        Duration::ZERO
    } else {
        now - s.last_activity
    };
    out.field(0, "Inactivity", duration(inactivity));
    out.pair(0, ("VLAN Mapping", &"N/A"), ("VLAN", &"none"));
    out.field(0, "Audt Sess ID", &s.audit_session_id);
    out.pair(0, ("Security Grp", &"none"), ("Tunnel Zone", &0));
}

fn assigned_addresses(s: &SessionRecord, indent: usize, out: &mut Lines) {
    let v4 = s
        .assigned_ipv4
        .map_or_else(|| "none".to_owned(), |a| a.to_string());
    out.pair(indent, ("Assigned IP", &v4), ("Public IP", &s.public_ip));
    if let Some(v6) = s.assigned_ipv6 {
        out.field(indent, "Assigned IPv6", v6);
    }
}

fn protocols(s: &SessionRecord) -> String {
    let mut text = String::from("AnyConnect-Parent");
    if s.ssl.is_some() {
        text.push_str(" SSL-Tunnel");
    }
    if s.dtls.is_some() {
        text.push_str(" DTLS-Tunnel");
    }
    text
}

/// `AnyConnect-Parent: (1)none  SSL-Tunnel: (1)AES-GCM-128  DTLS-Tunnel: (1)AES-GCM-256`.
fn per_tunnel(ssl: Option<&str>, dtls: Option<&str>) -> String {
    let mut text = String::from("AnyConnect-Parent: (1)none");
    if let Some(value) = ssl {
        text.push_str("  SSL-Tunnel: (1)");
        text.push_str(value);
    }
    if let Some(value) = dtls {
        text.push_str("  DTLS-Tunnel: (1)");
        text.push_str(value);
    }
    text
}

fn packets(c: &TunnelCounters, indent: usize, out: &mut Lines) {
    out.pair(indent, ("Pkts Tx", &c.pkts_tx), ("Pkts Rx", &c.pkts_rx));
    out.pair(
        indent,
        ("Pkts Tx Drop", &c.pkts_tx_drop),
        ("Pkts Rx Drop", &c.pkts_rx_drop),
    );
}

fn counters(c: &TunnelCounters, indent: usize, out: &mut Lines) {
    out.pair(indent, ("Bytes Tx", &c.bytes_tx), ("Bytes Rx", &c.bytes_rx));
    packets(c, indent, out);
}

fn tunnel_blocks(s: &SessionRecord, now: OffsetDateTime, out: &mut Lines) {
    out.blank();
    out.line("AnyConnect-Parent Tunnels: 1");
    if s.ssl.is_some() {
        out.line("SSL-Tunnel Tunnels: 1");
    }
    if s.dtls.is_some() {
        out.line("DTLS-Tunnel Tunnels: 1");
    }
    let auth_mode = s.auth_mode.ftd_name();
    let os = s.client.os_display_name();

    out.blank();
    out.line("AnyConnect-Parent:");
    out.field(2, "Tunnel ID", format!("{}.1", s.index));
    out.field(2, "Public IP", s.public_ip);
    out.pair(2, ("Encryption", &"none"), ("Hashing", &"none"));
    out.pair(
        2,
        ("TCP Src Port", &s.parent.tcp_src_port),
        ("TCP Dst Port", &s.parent.tcp_dst_port),
    );
    out.field(2, "Auth Mode", auth_mode);
    idle(s, s.parent.last_activity, now, out);
    out.field(2, "Client OS", &s.client.os);
    if let Some(version) = &s.client.os_version {
        out.field(2, "Client OS Ver", version);
    }
    out.field(2, "Client Type", &s.client.client_type);
    out.field(2, "Client Ver", &s.client.version);
    counters(&s.parent.counters, 2, out);

    if let Some(t) = &s.ssl {
        let tunnel = DataTunnel {
            title: "SSL-Tunnel:",
            transport: "TCP",
            client_type: "SSL VPN Client",
            tunnel_number: t.tunnel_number,
            encryption: &t.encryption,
            hashing: &t.hashing,
            cipher_suite: &t.cipher_suite,
            encapsulation: &t.encapsulation,
            src_port: t.tcp_src_port,
            dst_port: t.tcp_dst_port,
            last_activity: t.last_activity,
            counters: &t.counters,
        };
        data_tunnel(s, &tunnel, auth_mode, os, now, out);
    }
    if let Some(t) = &s.dtls {
        let tunnel = DataTunnel {
            title: "DTLS-Tunnel:",
            transport: "UDP",
            client_type: "DTLS VPN Client",
            tunnel_number: t.tunnel_number,
            encryption: &t.encryption,
            hashing: &t.hashing,
            cipher_suite: &t.cipher_suite,
            encapsulation: &t.encapsulation,
            src_port: t.udp_src_port,
            dst_port: t.udp_dst_port,
            last_activity: t.last_activity,
            counters: &t.counters,
        };
        data_tunnel(s, &tunnel, auth_mode, os, now, out);
    }
}

/// What the SSL-Tunnel and DTLS-Tunnel blocks print, whichever transport carries it.
struct DataTunnel<'a> {
    title: &'static str,
    /// `TCP` or `UDP`, as in `TCP Src Port`.
    transport: &'static str,
    client_type: &'static str,
    tunnel_number: u32,
    encryption: &'a str,
    hashing: &'a str,
    cipher_suite: &'a str,
    encapsulation: &'a str,
    src_port: u16,
    dst_port: u16,
    last_activity: OffsetDateTime,
    counters: &'a TunnelCounters,
}

fn data_tunnel(
    s: &SessionRecord,
    t: &DataTunnel<'_>,
    auth_mode: &str,
    os: &str,
    now: OffsetDateTime,
    out: &mut Lines,
) {
    let (src_label, dst_label) = (
        format!("{} Src Port", t.transport),
        format!("{} Dst Port", t.transport),
    );
    out.blank();
    out.line(t.title);
    out.field(2, "Tunnel ID", format!("{}.{}", s.index, t.tunnel_number));
    assigned_addresses(s, 2, out);
    out.pair(2, ("Encryption", &t.encryption), ("Hashing", &t.hashing));
    out.field(2, "Ciphersuite", t.cipher_suite);
    out.pair(
        2,
        ("Encapsulation", &t.encapsulation),
        (&src_label, &t.src_port),
    );
    out.pair(2, (&dst_label, &t.dst_port), ("Auth Mode", &auth_mode));
    idle(s, t.last_activity, now, out);
    out.field(2, "Client OS", os);
    out.field(2, "Client Type", t.client_type);
    out.field(2, "Client Ver", &s.client.version);
    counters(t.counters, 2, out);
}

/// `Idle Time Out: 30 Minutes             Idle TO Left : 9 Minutes`: whole minutes
/// left before this tunnel's idle timer fires, counted from its last traffic.
fn idle(s: &SessionRecord, last_activity: OffsetDateTime, now: OffsetDateTime, out: &mut Lines) {
    match s.idle_timeout_minutes {
        Some(timeout) => {
            let idle = (now - last_activity).whole_seconds().max(0);
            let left = (i64::from(timeout) * 60).saturating_sub(idle).max(0) / 60;
            out.pair(
                2,
                ("Idle Time Out", &format!("{timeout} Minutes")),
                ("Idle TO Left", &format!("{left} Minutes")),
            );
        }
        None => out.pair(2, ("Idle Time Out", &"none"), ("Idle TO Left", &"none")),
    }
}

fn count<'a>(sessions: impl Iterator<Item = &'a SessionRecord>) -> u64 {
    u64::try_from(sessions.count()).unwrap_or(u64::MAX)
}

/// Sessions as a share of capacity, rounded up so any load shows as at least 1%.
fn load_percent(sessions: u64, capacity: u32) -> u64 {
    if capacity == 0 {
        return 0;
    }
    sessions.saturating_mul(100).div_ceil(u64::from(capacity))
}

#[cfg(test)]
mod tests;
