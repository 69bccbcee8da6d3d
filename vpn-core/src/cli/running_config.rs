//! `show running-config [section [name]]` from a [`DeviceConfig`].
//!
//! Like ASA/FTD, values equal to their defaults are not printed; everything else is,
//! so that two configs that behave differently never render the same text. Sections
//! keep the document's order (no hash-map iteration anywhere).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::layout::Lines;
use crate::config::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, ConnectionProfile, DeviceConfig,
    GroupPolicy, Ipv4Pool, Ipv6Pool, Revocation, SplitTunnelPolicy, Trustpoint, UsernameMapping,
    UsernameSource,
};

/// Group policy ASA and FTD create themselves; profiles default to it.
pub const DEFAULT_GROUP_POLICY: &str = "DfltGrpPolicy";
/// Built-in tunnel groups: they exist without a `type` line.
const BUILT_IN_TUNNEL_GROUPS: [&str; 2] = ["DefaultWEBVPNGroup", "DefaultRAGroup"];

/// Which part of the running configuration to show; `Option<String>` narrows it to
/// one named object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "section", content = "name", rename_all = "kebab-case")]
pub enum RunningConfigSection {
    All,
    IpLocalPool(Option<String>),
    Ipv6LocalPool(Option<String>),
    AccessList(Option<String>),
    CryptoCaTrustpoint(Option<String>),
    Ssl,
    Webvpn,
    GroupPolicy(Option<String>),
    Username(Option<String>),
    TunnelGroup(Option<String>),
}

/// Sections of the whole running configuration, in FTD's order.
const FULL_ORDER: [RunningConfigSection; 9] = [
    RunningConfigSection::AccessList(None),
    RunningConfigSection::IpLocalPool(None),
    RunningConfigSection::Ipv6LocalPool(None),
    RunningConfigSection::CryptoCaTrustpoint(None),
    RunningConfigSection::Ssl,
    RunningConfigSection::Webvpn,
    RunningConfigSection::GroupPolicy(None),
    RunningConfigSection::Username(None),
    RunningConfigSection::TunnelGroup(None),
];

/// `show running-config`: every section in FTD's order.
pub fn running_config(config: &DeviceConfig) -> String {
    running_config_section(config, &RunningConfigSection::All)
}

/// `show running-config <section> [name]`. Empty when the named object does not exist.
pub fn running_config_section(config: &DeviceConfig, section: &RunningConfigSection) -> String {
    section_lines(config, section).into_string()
}

fn section_lines(config: &DeviceConfig, section: &RunningConfigSection) -> Lines {
    let mut out = Lines::new();
    match section {
        RunningConfigSection::All => {
            for section in &FULL_ORDER {
                out.append(section_lines(config, section));
            }
        }
        RunningConfigSection::IpLocalPool(name) => {
            for pool in named(&config.ipv4_pools, name, |p| &p.name) {
                ipv4_pool(pool, &mut out);
            }
        }
        RunningConfigSection::Ipv6LocalPool(name) => {
            for pool in named(&config.ipv6_pools, name, |p| &p.name) {
                ipv6_pool(pool, &mut out);
            }
        }
        RunningConfigSection::AccessList(name) => {
            for policy in &config.group_policies {
                if name.as_ref().is_none_or(|n| *n == split_tunnel_acl(policy)) {
                    split_tunnel_access_list(policy, &mut out);
                }
            }
        }
        RunningConfigSection::CryptoCaTrustpoint(name) => {
            let identity = &config.headend.identity.trustpoint;
            if name.as_ref().is_none_or(|n| n == identity) {
                out.line(format!("crypto ca trustpoint {identity}"));
                out.line(" enrollment terminal");
                out.line(format!(" keypair {identity}"));
                out.line(" crl configure");
            }
            for trustpoint in named(&config.trustpoints, name, |t| &t.name) {
                ca_trustpoint(trustpoint, &mut out);
            }
        }
        RunningConfigSection::Ssl => {
            out.line(format!(
                "ssl trust-point {} {}",
                config.headend.identity.trustpoint, config.headend.access_interface
            ));
        }
        RunningConfigSection::Webvpn => webvpn(config, &mut out),
        RunningConfigSection::GroupPolicy(name) => {
            for policy in named(&config.group_policies, name, |g| &g.name) {
                group_policy(policy, &mut out);
            }
        }
        RunningConfigSection::Username(name) => {
            for user in named(&config.local_users, name, |u| &u.name) {
                // The hash is not shown, so the rendered config carries no secret.
                out.line(format!("username {} password ***** argon2id", user.name));
            }
        }
        RunningConfigSection::TunnelGroup(name) => {
            for profile in named(&config.connection_profiles, name, |p| &p.name) {
                tunnel_group(profile, &mut out);
            }
        }
    }
    out
}

fn named<'a, T>(
    items: &'a [T],
    name: &'a Option<String>,
    name_of: impl Fn(&T) -> &String + 'a,
) -> impl Iterator<Item = &'a T> + 'a {
    items
        .iter()
        .filter(move |item| name.as_ref().is_none_or(|n| n == name_of(item)))
}

fn ipv4_pool(pool: &Ipv4Pool, out: &mut Lines) {
    out.line(format!(
        "ip local pool {} {}-{} mask {}",
        pool.name, pool.start, pool.end, pool.mask
    ));
}

fn ipv6_pool(pool: &Ipv6Pool, out: &mut Lines) {
    out.line(format!(
        "ipv6 local pool {} {}/{} {}",
        pool.name, pool.start, pool.prefix_len, pool.count
    ));
}

fn ca_trustpoint(trustpoint: &Trustpoint, out: &mut Lines) {
    out.line(format!("crypto ca trustpoint {}", trustpoint.name));
    out.line(" enrollment terminal");
    let usage = trustpoint.validation_usage;
    let mut usages = Vec::new();
    if usage.ipsec_client {
        usages.push("ipsec-client");
    }
    if usage.ssl_client {
        usages.push("ssl-client");
    }
    if usage.ssl_server {
        usages.push("ssl-server");
    }
    if usages.is_empty() {
        out.line(" no validation-usage");
    } else {
        out.line(format!(" validation-usage {}", usages.join(" ")));
    }
    if trustpoint.skip_ca_flag_check {
        out.line(" no ca-check");
    }
    if !trustpoint.require_client_auth_eku {
        // Not an FTD keyword: our switch for the clientAuth EKU check, shown so that
        // a deploy preview never hides the change.
        out.line(" no client-auth-eku-check");
    }
    match trustpoint.revocation {
        Revocation::None => {}
        Revocation::Crl { .. } => out.line(" revocation-check crl"),
    }
    out.line(" crl configure");
}

fn webvpn(config: &DeviceConfig, out: &mut Lines) {
    let headend = &config.headend;
    out.line("webvpn");
    if headend.ssl_port != 443 {
        out.line(format!(" port {}", headend.ssl_port));
    }
    if headend.dtls_enabled {
        out.line(format!(" enable {}", headend.access_interface));
        if headend.dtls_port != 443 {
            out.line(format!(" dtls port {}", headend.dtls_port));
        }
    } else {
        out.line(format!(" enable {} tls-only", headend.access_interface));
    }
    out.line(" anyconnect enable");
    if headend.allow_profile_selection {
        out.line(" tunnel-group-list enable");
    }
}

/// Name of the ACL holding a group policy's split-tunnel networks.
fn split_tunnel_acl(policy: &GroupPolicy) -> String {
    format!("{}_split", policy.name)
}

fn split_tunnel_access_list(policy: &GroupPolicy, out: &mut Lines) {
    if policy.split_tunnel_policy == SplitTunnelPolicy::TunnelAll
        || policy.split_tunnel_networks.is_empty()
    {
        return;
    }
    let acl = split_tunnel_acl(policy);
    for network in &policy.split_tunnel_networks {
        match network {
            IpNet::V4(v4) => out.line(format!(
                "access-list {acl} standard permit {} {}",
                v4.network(),
                v4.netmask()
            )),
            IpNet::V6(v6) => out.line(format!(
                "access-list {acl} extended permit ip {}/{} any6",
                v6.network(),
                v6.prefix_len()
            )),
        }
    }
}

fn group_policy(policy: &GroupPolicy, out: &mut Lines) {
    let defaults = GroupPolicy::new(policy.name.clone());
    let name = &policy.name;
    out.line(format!("group-policy {name} internal"));
    out.line(format!("group-policy {name} attributes"));
    if let Some(banner) = &policy.banner {
        for line in banner.lines() {
            out.line(format!(" banner value {line}"));
        }
    }
    if !policy.dns_servers.is_empty() {
        out.line(format!(" dns-server value {}", join(&policy.dns_servers)));
    }
    if policy.simultaneous_logins != defaults.simultaneous_logins {
        out.line(format!(
            " vpn-simultaneous-logins {}",
            policy.simultaneous_logins
        ));
    }
    if policy.idle_timeout_minutes != defaults.idle_timeout_minutes {
        out.line(format!(
            " vpn-idle-timeout {}",
            minutes_or_none(policy.idle_timeout_minutes)
        ));
    }
    if policy.max_connect_time_minutes != defaults.max_connect_time_minutes {
        out.line(format!(
            " vpn-session-timeout {}",
            minutes_or_none(policy.max_connect_time_minutes)
        ));
    }
    out.line(" vpn-tunnel-protocol ssl-client");
    match policy.split_tunnel_policy {
        SplitTunnelPolicy::TunnelAll => {}
        SplitTunnelPolicy::TunnelSpecified => out.line(" split-tunnel-policy tunnelspecified"),
        SplitTunnelPolicy::ExcludeSpecified => out.line(" split-tunnel-policy excludespecified"),
    }
    if policy.split_tunnel_policy != SplitTunnelPolicy::TunnelAll
        && !policy.split_tunnel_networks.is_empty()
    {
        out.line(format!(
            " split-tunnel-network-list value {}",
            split_tunnel_acl(policy)
        ));
    }
    if let Some(domain) = &policy.default_domain {
        out.line(format!(" default-domain value {domain}"));
    }
    if !policy.ipv4_pools.is_empty() {
        out.line(format!(
            " address-pools value {}",
            policy.ipv4_pools.join(" ")
        ));
    }

    let mut webvpn = Lines::new();
    if !policy.dtls_enabled {
        webvpn.line("  anyconnect ssl dtls none");
    }
    if policy.mtu != defaults.mtu {
        webvpn.line(format!("  anyconnect mtu {}", policy.mtu));
    }
    if policy.keepalive_secs != defaults.keepalive_secs {
        webvpn.line(format!(
            "  anyconnect ssl keepalive {}",
            seconds_or_none(policy.keepalive_secs)
        ));
    }
    if policy.client_dpd_secs != defaults.client_dpd_secs {
        webvpn.line(format!(
            "  anyconnect dpd-interval client {}",
            seconds_or_none(policy.client_dpd_secs)
        ));
    }
    if policy.gateway_dpd_secs != defaults.gateway_dpd_secs {
        webvpn.line(format!(
            "  anyconnect dpd-interval gateway {}",
            seconds_or_none(policy.gateway_dpd_secs)
        ));
    }
    if !webvpn.is_empty() {
        out.line(" webvpn");
        out.append(webvpn);
    }
}

fn tunnel_group(profile: &ConnectionProfile, out: &mut Lines) {
    let name = &profile.name;
    let aaa = &profile.aaa;
    if !BUILT_IN_TUNNEL_GROUPS.contains(&name.as_str()) {
        out.line(format!("tunnel-group {name} type remote-access"));
    }

    let mut general = Lines::new();
    if !profile.ipv4_pools.is_empty() {
        general.line(format!(" address-pool {}", profile.ipv4_pools.join(" ")));
    }
    if !profile.ipv6_pools.is_empty() {
        general.line(format!(
            " ipv6-address-pool {}",
            profile.ipv6_pools.join(" ")
        ));
    }
    if aaa.uses_aaa() {
        authentication_server_group(aaa, &mut general);
    }
    if profile.group_policy != DEFAULT_GROUP_POLICY {
        general.line(format!(" default-group-policy {}", profile.group_policy));
    }
    if aaa.uses_certificates() {
        username_from_certificate(aaa, &mut general);
    }
    if aaa.strip_group {
        general.line(" strip-group");
    }
    if aaa.strip_realm {
        general.line(" strip-realm");
    }
    if !general.is_empty() {
        out.line(format!("tunnel-group {name} general-attributes"));
        out.append(general);
    }

    let mut webvpn = Lines::new();
    if let Some(method) = authentication_keywords(aaa) {
        webvpn.line(format!(" authentication {method}"));
    }
    for alias in &profile.group_aliases {
        webvpn.line(format!(
            " group-alias {} {}",
            alias.name,
            enable_word(alias.enabled)
        ));
    }
    for url in &profile.group_urls {
        webvpn.line(format!(
            " group-url {} {}",
            url.url,
            enable_word(url.enabled)
        ));
    }
    if aaa.authentication_method == AuthenticationMethod::AaaAndClientCertificate
        && aaa.prefill_username
    {
        if aaa.hide_username {
            webvpn.line(" pre-fill-username client hide");
        } else {
            webvpn.line(" pre-fill-username client");
        }
    }
    if !webvpn.is_empty() {
        out.line(format!("tunnel-group {name} webvpn-attributes"));
        out.append(webvpn);
    }
}

/// LOCAL is the tunnel-group default and is not printed, unless another group falls
/// back to it (`authentication-server-group ISE LOCAL`).
fn authentication_server_group(aaa: &AaaSettings, out: &mut Lines) {
    let server = match &aaa.authentication_server {
        AuthenticationServer::Local => return,
        AuthenticationServer::Radius { server_group } => server_group,
        AuthenticationServer::Ldap { realm } => realm,
    };
    if aaa.fallback_to_local {
        out.line(format!(" authentication-server-group {server} LOCAL"));
    } else {
        out.line(format!(" authentication-server-group {server}"));
    }
}

/// Default: `username-from-certificate CN OU`, from the second certificate.
fn username_from_certificate(aaa: &AaaSettings, out: &mut Lines) {
    if aaa.username_mapping != UsernameMapping::default() {
        match aaa.username_mapping {
            UsernameMapping::EntireDn => out.line(" username-from-certificate use-entire-name"),
            UsernameMapping::SpecificField { primary, secondary } => match secondary {
                Some(secondary) => out.line(format!(
                    " username-from-certificate {} {}",
                    primary.cli_token(),
                    secondary.cli_token()
                )),
                None => out.line(format!(
                    " username-from-certificate {}",
                    primary.cli_token()
                )),
            },
        }
    }
    if aaa.requires_mca()
        && aaa.username_from_certificate_source == UsernameSource::FirstCertificate
    {
        out.line(" username-from-certificate-choice first-certificate");
    }
}

/// The `authentication` keywords, `None` for the default (`aaa`).
fn authentication_keywords(aaa: &AaaSettings) -> Option<&'static str> {
    let mca = aaa.requires_mca();
    match (aaa.authentication_method, mca) {
        (AuthenticationMethod::AaaOnly, _) => None,
        (AuthenticationMethod::ClientCertificateOnly, false) => Some("certificate"),
        (AuthenticationMethod::ClientCertificateOnly, true) => Some("multiple-certificate"),
        (AuthenticationMethod::AaaAndClientCertificate, false) => Some("aaa certificate"),
        (AuthenticationMethod::AaaAndClientCertificate, true) => Some("aaa multiple-certificate"),
    }
}

fn enable_word(enabled: bool) -> &'static str {
    if enabled { "enable" } else { "disable" }
}

fn minutes_or_none(minutes: Option<u32>) -> String {
    minutes.map_or_else(|| "none".to_owned(), |m| m.to_string())
}

fn seconds_or_none(seconds: Option<u32>) -> String {
    minutes_or_none(seconds)
}

fn join(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
