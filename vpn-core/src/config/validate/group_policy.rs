//! Group policy values, with FMC's ranges.
//!
//! DNS servers: FMC offers a primary and a secondary DNS server per group policy, so
//! more than [`MAX_DNS_SERVERS`] is a problem even though clients could use a third.
//! Simultaneous logins: FMC accepts 0 (no login) up to 2147483647.

use super::{Findings, ProblemKind};
use crate::config::{DeviceConfig, GroupPolicy, MTU_MAX, MTU_MIN, SplitTunnelPolicy};

/// The longest banner line FTD accepts, in characters.
pub const BANNER_LINE_MAX_CHARS: usize = 497;
/// Primary and secondary.
pub const MAX_DNS_SERVERS: usize = 2;

const KEEPALIVE_SECS: (u64, u64) = (15, 600);
const DPD_SECS: (u64, u64) = (5, 3600);
const TIMEOUT_MINUTES: (u64, u64) = (1, 4_473_924);
const SIMULTANEOUS_LOGINS: (u64, u64) = (0, 2_147_483_647);
const DOMAIN_MAX_CHARS: usize = 253;
const LABEL_MAX_CHARS: usize = 63;

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    for (i, policy) in config.group_policies.iter().enumerate() {
        check_policy(policy, &format!("$.group_policies[{i}]"), found);
    }
}

impl GroupPolicy {
    /// What makes this one policy unfit on its own (references to pools are the
    /// document's concern): paths are `$.<field>`, e.g. `$.idle_timeout_minutes`.
    pub fn problems(&self) -> Vec<super::ConfigProblem> {
        let mut found = Findings::default();
        check_policy(self, "$", &mut found);
        found.problems
    }
}

fn check_policy(policy: &GroupPolicy, at: &str, found: &mut Findings) {
    let mut range = |field: &str, value: Option<u64>, (min, max): (u64, u64), unit| {
        if let Some(value) = value.filter(|v| !(min..=max).contains(v)) {
            let kind = ProblemKind::OutOfRange {
                value,
                min,
                max,
                unit,
            };
            found.push(format!("{at}.{field}"), kind);
        }
    };
    let mtu = (u64::from(MTU_MIN), u64::from(MTU_MAX));
    range("mtu", Some(u64::from(policy.mtu)), mtu, "bytes");
    range(
        "keepalive_secs",
        policy.keepalive_secs.map(u64::from),
        KEEPALIVE_SECS,
        "seconds",
    );
    range(
        "gateway_dpd_secs",
        policy.gateway_dpd_secs.map(u64::from),
        DPD_SECS,
        "seconds",
    );
    range(
        "client_dpd_secs",
        policy.client_dpd_secs.map(u64::from),
        DPD_SECS,
        "seconds",
    );
    let idle = policy.idle_timeout_minutes.map(u64::from);
    range("idle_timeout_minutes", idle, TIMEOUT_MINUTES, "minutes");
    let max_connect = policy.max_connect_time_minutes.map(u64::from);
    range(
        "max_connect_time_minutes",
        max_connect,
        TIMEOUT_MINUTES,
        "minutes",
    );
    let logins = Some(u64::from(policy.simultaneous_logins));
    range("simultaneous_logins", logins, SIMULTANEOUS_LOGINS, "logins");

    if let Some(banner) = &policy.banner {
        for (line, text) in banner.split('\n').enumerate() {
            let length = text.trim_end_matches('\r').chars().count();
            if length > BANNER_LINE_MAX_CHARS {
                let (line, max) = (line + 1, BANNER_LINE_MAX_CHARS);
                found.push(
                    format!("{at}.banner"),
                    ProblemKind::BannerLineTooLong { line, length, max },
                );
            }
        }
    }
    let policy_kind = policy.split_tunnel_policy;
    if policy_kind != SplitTunnelPolicy::TunnelAll && policy.split_tunnel_networks.is_empty() {
        let path = format!("{at}.split_tunnel_networks");
        found.push(
            path,
            ProblemKind::SplitTunnelWithoutNetworks {
                policy: policy_kind,
            },
        );
    }
    let count = policy.dns_servers.len();
    if count > MAX_DNS_SERVERS {
        let path = format!("{at}.dns_servers");
        found.push(
            path,
            ProblemKind::TooManyDnsServers {
                count,
                max: MAX_DNS_SERVERS,
            },
        );
    }
    if let Some(domain) = &policy.default_domain
        && let Err(reason) = check_domain(domain)
    {
        let (path, domain) = (format!("{at}.default_domain"), domain.clone());
        found.push(path, ProblemKind::InvalidDomainName { domain, reason });
    }
}

/// Host-name syntax (RFC 1123): dot-separated labels of letters, digits and hyphens.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("it is empty");
    }
    if domain.chars().count() > DOMAIN_MAX_CHARS {
        return Err("it is longer than 253 characters");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a dot at either end)");
        }
        if label.len() > LABEL_MAX_CHARS {
            return Err("a label is longer than 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("only letters, digits, hyphens and dots are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with a hyphen");
        }
    }
    Ok(())
}
