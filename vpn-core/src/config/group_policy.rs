use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A group policy, with FMC's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPolicy {
    pub name: String,
    /// Login banner shown by the client (`banner value ...`).
    #[serde(default)]
    pub banner: Option<String>,
    /// DNS servers pushed to the client: primary and secondary, as FMC offers (validate
    /// refuses more than [`super::MAX_DNS_SERVERS`]).
    #[serde(default)]
    pub dns_servers: Vec<IpAddr>,
    #[serde(default)]
    pub default_domain: Option<String>,
    #[serde(default)]
    pub split_tunnel_policy: SplitTunnelPolicy,
    /// Networks tunnelled (TUNNEL_SPECIFIED) or excluded (EXCLUDE_SPECIFIED).
    #[serde(default)]
    pub split_tunnel_networks: Vec<IpNet>,
    /// IPv4 pools assigned by the group policy; they win over the profile's.
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    /// Secure Client > SSL Settings > MTU (576–1462).
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// Keepalive interval in seconds; `None` turns keepalives off.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: Option<u32>,
    /// Gateway DPD interval in seconds; `None` turns it off.
    #[serde(default = "default_dpd")]
    pub gateway_dpd_secs: Option<u32>,
    /// Client DPD interval in seconds; `None` turns it off.
    #[serde(default = "default_dpd")]
    pub client_dpd_secs: Option<u32>,
    /// VPN idle timeout in minutes; `None` means none.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_minutes: Option<u32>,
    /// Maximum connection time in minutes; `None` means unlimited.
    #[serde(default)]
    pub max_connect_time_minutes: Option<u32>,
    /// Simultaneous logins per user.
    #[serde(default = "default_simultaneous_logins")]
    pub simultaneous_logins: u32,
    /// DTLS for sessions of this policy (`anyconnect ssl dtls enable`).
    #[serde(default = "default_true")]
    pub dtls_enabled: bool,
}

impl GroupPolicy {
    /// A policy with FMC's defaults, like a freshly added group policy object.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            banner: None,
            dns_servers: Vec::new(),
            default_domain: None,
            split_tunnel_policy: SplitTunnelPolicy::default(),
            split_tunnel_networks: Vec::new(),
            ipv4_pools: Vec::new(),
            mtu: default_mtu(),
            keepalive_secs: default_keepalive(),
            gateway_dpd_secs: default_dpd(),
            client_dpd_secs: default_dpd(),
            idle_timeout_minutes: default_idle_timeout(),
            max_connect_time_minutes: None,
            simultaneous_logins: default_simultaneous_logins(),
            dtls_enabled: true,
        }
    }
}

/// FMC `ipv4SplitTunnelPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SplitTunnelPolicy {
    #[default]
    TunnelAll,
    TunnelSpecified,
    ExcludeSpecified,
}

pub const MTU_MIN: u16 = 576;
pub const MTU_MAX: u16 = 1462;

fn default_mtu() -> u16 {
    1406
}

fn default_keepalive() -> Option<u32> {
    Some(20)
}

fn default_dpd() -> Option<u32> {
    Some(30)
}

fn default_idle_timeout() -> Option<u32> {
    Some(30)
}

fn default_simultaneous_logins() -> u32 {
    3
}

fn default_true() -> bool {
    true
}
