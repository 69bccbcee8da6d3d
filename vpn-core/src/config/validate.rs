//! `DeviceConfig::validate` and `DeviceConfig::warnings`: every problem, each with its
//! JSON path.
//!
//! Errors and warnings share one type, [`ConfigProblem`]; they come from two methods.
//! [`DeviceConfig::validate`] returns what makes a document unfit to deploy or run;
//! [`DeviceConfig::warnings`] returns what an administrator should fix soon but that
//! does not stop a deploy. [`ProblemKind::is_warning`] tells which list a kind belongs to.
//!
//! Checks are split by area: [`names`] (syntax, duplicates, aliases, URLs, references),
//! [`pools`], [`aaa`], [`certificates`] (trustpoints and headend identity),
//! [`group_policy`] and [`local_users`].

mod aaa;
mod certificates;
mod group_policy;
mod local_users;
mod names;
mod pools;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use time::OffsetDateTime;

use super::{AuthenticationMethod, DeviceConfig, SCHEMA_VERSION, SplitTunnelPolicy};

pub use aaa::aaa_problems;
pub use certificates::EXPIRY_WARNING_DAYS;
pub use group_policy::{BANNER_LINE_MAX_CHARS, MAX_DNS_SERVERS};
pub use names::{MAX_NAME_CHARS, group_url_problem, object_name_problem};
pub use pools::MAX_POOL_ADDRESSES;

impl DeviceConfig {
    /// Every problem that makes this document unfit to deploy, in document order per
    /// area. `now` decides whether certificates are in their validity period.
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), Vec<ConfigProblem>> {
        let mut found = Findings::default();
        if self.schema_version != SCHEMA_VERSION {
            found.push(
                "$.schema_version",
                ProblemKind::UnsupportedSchemaVersion {
                    found: self.schema_version,
                    supported: SCHEMA_VERSION,
                },
            );
        }
        names::check(self, &mut found);
        pools::check(self, &mut found);
        aaa::check(self, &mut found);
        certificates::check(self, now, &mut found);
        group_policy::check(self, &mut found);
        local_users::check(self, &mut found);
        if found.problems.is_empty() {
            Ok(())
        } else {
            Err(found.problems)
        }
    }

    /// Things that do not stop a deploy but need attention: certificates expiring
    /// within [`EXPIRY_WARNING_DAYS`] days, and RADIUS/LDAP servers (not yet run by the
    /// sensor) without fallback to LOCAL.
    pub fn warnings(&self, now: OffsetDateTime) -> Vec<ConfigProblem> {
        let mut found = Findings::default();
        aaa::warn(self, &mut found);
        certificates::warn(self, now, &mut found);
        found.problems
    }
}

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// JSON path of the offending value, e.g. `$.connection_profiles[0].aaa.hide_username`.
    pub path: String,
    pub kind: ProblemKind,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

/// The kinds of named object in a document, as an administrator calls them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    ConnectionProfile,
    GroupPolicy,
    /// An IPv4 or IPv6 address pool (one namespace for both).
    AddressPool,
    Ipv4Pool,
    Ipv6Pool,
    /// A CA trustpoint or the headend's identity trustpoint (one namespace for both).
    Trustpoint,
    LocalUser,
    GroupAlias,
    AccessInterface,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConnectionProfile => "connection profile",
            Self::GroupPolicy => "group policy",
            Self::AddressPool => "address pool",
            Self::Ipv4Pool => "IPv4 address pool",
            Self::Ipv6Pool => "IPv6 address pool",
            Self::Trustpoint => "trustpoint",
            Self::LocalUser => "local user",
            Self::GroupAlias => "group alias",
            Self::AccessInterface => "access interface",
        })
    }
}

/// What is wrong. The message names the offending value; the path says where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    // Document.
    #[error("schema_version {found} is not supported; this build reads schema_version {supported}")]
    UnsupportedSchemaVersion { found: u32, supported: u32 },

    // Names and references.
    #[error("the {kind} name is empty")]
    EmptyName { kind: ObjectKind },
    #[error("the {kind} name {name:?} is {length} characters long; at most {max} are allowed")]
    NameTooLong {
        kind: ObjectKind,
        name: String,
        length: usize,
        max: usize,
    },
    #[error(
        "the {kind} name {name:?} contains {character:?}; whitespace and control characters are not allowed"
    )]
    NameHasForbiddenCharacter {
        kind: ObjectKind,
        name: String,
        character: char,
    },
    #[error("another {kind} is already named {name:?}")]
    DuplicateName { kind: ObjectKind, name: String },
    #[error(
        "the group alias {alias:?} is already used by connection profile {profile:?} (aliases are compared ignoring case)"
    )]
    DuplicateGroupAlias { alias: String, profile: String },
    #[error("the group alias {alias:?} is the name of another connection profile, {profile:?}")]
    GroupAliasNamesOtherProfile { alias: String, profile: String },
    #[error("the group URL {url:?} is already used by connection profile {profile:?}")]
    DuplicateGroupUrl { url: String, profile: String },
    #[error("the group URL {url:?} is not an absolute http(s) URL: {reason}")]
    InvalidGroupUrl { url: String, reason: &'static str },
    #[error("there is no {kind} named {name:?} in this document")]
    UnknownReference { kind: ObjectKind, name: String },

    // Address pools.
    #[error("the pool starts at {start}, after its end {end}")]
    PoolStartAfterEnd { start: Ipv4Addr, end: Ipv4Addr },
    #[error("{start} and {end} are not in the same subnet of mask {mask}")]
    PoolSpansSubnets {
        start: Ipv4Addr,
        end: Ipv4Addr,
        mask: Ipv4Addr,
    },
    #[error("{mask} is not a valid netmask: its one bits are not contiguous")]
    NonContiguousMask { mask: Ipv4Addr },
    #[error("the pool has {addresses} addresses; at most {max} are allowed")]
    PoolTooLarge { addresses: u128, max: u32 },
    #[error("prefix length {prefix_len} is longer than 128")]
    Ipv6PrefixTooLong { prefix_len: u8 },
    #[error("the pool has no addresses (count is 0)")]
    EmptyIpv6Pool,
    #[error("{count} addresses from {start} do not fit in its /{prefix_len} prefix")]
    Ipv6PoolOutsidePrefix {
        start: Ipv6Addr,
        prefix_len: u8,
        count: u32,
    },
    #[error("the pool's addresses overlap those of pool {other:?}")]
    PoolsOverlap { other: String },
    #[error(
        "no address pool is assigned by the profile or by its group policy {group_policy:?}; clients would get no address"
    )]
    NoAddressPool { group_policy: String },

    // AAA.
    #[error(
        "multiple certificate authentication needs a certificate authentication method, not {}",
        method_label(*.method)
    )]
    McaWithoutCertificates { method: AuthenticationMethod },
    #[error(
        "prefill username from certificate works only with Client Certificate & AAA, not {}",
        method_label(*.method)
    )]
    PrefillNeedsCertificateAndAaa { method: AuthenticationMethod },
    #[error(
        "hide username works only with Client Certificate & AAA, not {}",
        method_label(*.method)
    )]
    HideNeedsCertificateAndAaa { method: AuthenticationMethod },
    #[error("hide username needs prefill username from certificate to be on")]
    HideWithoutPrefill,
    #[error(
        "{} checks client certificates but the profile names no CA trustpoint",
        method_label(*.method)
    )]
    CertificateMethodWithoutTrustpoint { method: AuthenticationMethod },
    #[error(
        "trustpoint {trustpoint:?} does not validate SSL clients (validation_usage.ssl_client is off)"
    )]
    TrustpointNotForSslClients { trustpoint: String },
    #[error(
        "connection profile {profile:?}: {field} names trustpoint {trustpoint:?}, which is not one of the profile's trustpoints"
    )]
    SlotTrustpointNotInProfile {
        profile: String,
        /// `machine_trustpoints` or `user_trustpoints`.
        field: &'static str,
        trustpoint: String,
    },
    #[error(
        "authentication server {server} is not run by the sensor yet and fallback to LOCAL is off; logins will fail"
    )]
    ServerWithoutLocalFallback { server: String },

    // Certificates, CRLs and keys.
    #[error("the PEM text cannot be used: {reason}")]
    UnreadablePem { reason: String },
    #[error("certificate #{index} cannot be parsed: {reason}")]
    UnparsableCertificate { index: usize, reason: String },
    #[error("CRL #{index} cannot be parsed: {reason}")]
    UnparsableCrl { index: usize, reason: String },
    #[error(
        "CRL #{index} is issued by {issuer}, which is not a CA certificate of this trustpoint: it is only used for certificates that an intermediate CA of that name (sent by clients) issued, and never if no client chain passes through one"
    )]
    CrlFromUnknownIssuer { index: usize, issuer: String },
    #[error(
        "certificate #{index} ({subject}) is not a CA certificate: its basic constraints do not say CA:TRUE (turn on skip_ca_flag_check to accept it)"
    )]
    NotACaCertificate { index: usize, subject: String },
    #[error("certificate #{index} ({subject}) expired at {}", rfc3339(.not_after))]
    CertificateExpired {
        index: usize,
        subject: String,
        not_after: OffsetDateTime,
    },
    #[error("certificate #{index} ({subject}) is not valid before {}", rfc3339(.not_before))]
    CertificateNotYetValid {
        index: usize,
        subject: String,
        not_before: OffsetDateTime,
    },
    #[error(
        "certificate #{index} ({subject}) expires at {}, in {days_left} days",
        rfc3339(.not_after)
    )]
    CertificateExpiresSoon {
        index: usize,
        subject: String,
        not_after: OffsetDateTime,
        days_left: i64,
    },
    #[error("the private key cannot be used: {reason}")]
    UnreadablePrivateKey { reason: String },
    #[error("the private key does not belong to the identity certificate ({subject})")]
    KeyDoesNotMatchCertificate { subject: String },

    // Headend and group policies.
    #[error("port 0 cannot be listened on")]
    PortZero,
    #[error("{value} {unit} is outside the allowed range {min}–{max} {unit}")]
    OutOfRange {
        value: u64,
        min: u64,
        max: u64,
        unit: &'static str,
    },
    #[error("banner line {line} is {length} characters long; at most {max} are allowed")]
    BannerLineTooLong {
        line: usize,
        length: usize,
        max: usize,
    },
    #[error(
        "split tunnel policy {} needs at least one network in split_tunnel_networks",
        split_label(*.policy)
    )]
    SplitTunnelWithoutNetworks { policy: SplitTunnelPolicy },
    #[error(
        "{count} DNS servers are configured; at most {max} (primary and secondary) are allowed"
    )]
    TooManyDnsServers { count: usize, max: usize },
    #[error("{domain:?} is not a valid domain name: {reason}")]
    InvalidDomainName {
        domain: String,
        reason: &'static str,
    },

    // Local users.
    #[error("the password hash is not an argon2id PHC string: {reason}")]
    InvalidPasswordHash { reason: &'static str },
}

impl ProblemKind {
    /// Kinds that [`DeviceConfig::warnings`] reports; every other kind comes from
    /// [`DeviceConfig::validate`].
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Self::CertificateExpiresSoon { .. }
                | Self::ServerWithoutLocalFallback { .. }
                | Self::CrlFromUnknownIssuer { .. }
        )
    }
}

/// The problems found so far.
#[derive(Default)]
struct Findings {
    problems: Vec<ConfigProblem>,
}

impl Findings {
    fn push(&mut self, path: impl Into<String>, kind: ProblemKind) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            kind,
        });
    }
}

/// The label FMC shows for an authentication method.
fn method_label(method: AuthenticationMethod) -> &'static str {
    match method {
        AuthenticationMethod::AaaOnly => "AAA Only",
        AuthenticationMethod::ClientCertificateOnly => "Client Certificate Only",
        AuthenticationMethod::AaaAndClientCertificate => "Client Certificate & AAA",
    }
}

/// FMC's `ipv4SplitTunnelPolicy` value.
fn split_label(policy: SplitTunnelPolicy) -> &'static str {
    match policy {
        SplitTunnelPolicy::TunnelAll => "TUNNEL_ALL",
        SplitTunnelPolicy::TunnelSpecified => "TUNNEL_SPECIFIED",
        SplitTunnelPolicy::ExcludeSpecified => "EXCLUDE_SPECIFIED",
    }
}

fn rfc3339(at: &OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}
