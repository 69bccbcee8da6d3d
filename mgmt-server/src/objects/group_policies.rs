//! Group policies: the field rules both doors share, then the repository write.

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{GroupPolicy as CoreGroupPolicy, ObjectKind};

use super::acquire;
use crate::db::group_policies::{self, GroupPolicy, GroupPolicyInput};
use crate::db::{Actor, DbError, Listed, Page};
use crate::rules::{self, ChangeError, Problem, Problems};

/// A field of a group policy a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Banner,
    DnsServers,
    DefaultDomain,
    SplitTunnelNetworks,
    Mtu,
    Keepalive,
    GatewayDpd,
    ClientDpd,
    IdleTimeout,
    MaxConnectTime,
    SimultaneousLogins,
}

impl Field {
    /// The field's path in FMC's JSON.
    pub fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Banner => "generalSettings.banner",
            Self::DnsServers => "generalSettings.dnsServers",
            Self::DefaultDomain => "generalSettings.addressAssignment.defaultDomainName",
            Self::SplitTunnelNetworks => "generalSettings.splitTunnelSettings.splitTunnelNetworks",
            Self::Mtu => "anyConnectSettings.sslSettings.mtuSize",
            Self::Keepalive => "anyConnectSettings.connectionSettings.keepAliveMessageInterval",
            Self::GatewayDpd => "anyConnectSettings.connectionSettings.gatewayDPDInterval",
            Self::ClientDpd => "anyConnectSettings.connectionSettings.clientDPDInterval",
            Self::IdleTimeout => "advancedSettings.sessionSettings.vpnIdleTimeout",
            Self::MaxConnectTime => "advancedSettings.sessionSettings.maxConnectionTimeout",
            Self::SimultaneousLogins => "advancedSettings.sessionSettings.simultaneousLoginPerUser",
        }
    }

    /// The field a vpn-core problem path (`$.<field>`) is about.
    fn of_core_path(path: &str) -> Self {
        match path.trim_start_matches("$.") {
            "banner" => Self::Banner,
            "dns_servers" => Self::DnsServers,
            "default_domain" => Self::DefaultDomain,
            "split_tunnel_networks" => Self::SplitTunnelNetworks,
            "mtu" => Self::Mtu,
            "keepalive_secs" => Self::Keepalive,
            "gateway_dpd_secs" => Self::GatewayDpd,
            "client_dpd_secs" => Self::ClientDpd,
            "idle_timeout_minutes" => Self::IdleTimeout,
            "max_connect_time_minutes" => Self::MaxConnectTime,
            "simultaneous_logins" => Self::SimultaneousLogins,
            _ => Self::Name,
        }
    }
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        Field::fmc_path(self)
    }
}

/// Why a group policy was not stored.
pub type GroupPolicyError = ChangeError<Field>;

/// Every rule `input` breaks (empty when it may be stored): the object-name rule and
/// vpn-core's rules of one group policy, the ones the deployed document is checked with.
pub fn check(input: &GroupPolicyInput) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, ObjectKind::GroupPolicy, &input.name);
    let policy = CoreGroupPolicy {
        name: input.name.clone(),
        banner: input.banner.clone(),
        dns_servers: input.dns_servers.clone(),
        default_domain: input.default_domain.clone(),
        split_tunnel_policy: input.split_tunnel_policy,
        split_tunnel_networks: input.split_tunnel_networks.clone(),
        ipv4_pools: Vec::new(),
        mtu: input.mtu,
        keepalive_secs: input.keepalive_secs,
        gateway_dpd_secs: input.gateway_dpd_secs,
        client_dpd_secs: input.client_dpd_secs,
        idle_timeout_minutes: input.idle_timeout_minutes,
        max_connect_time_minutes: input.max_connect_time_minutes,
        simultaneous_logins: input.simultaneous_logins,
        dtls_enabled: input.dtls_enabled,
    };
    for problem in policy.problems() {
        problems.add(Field::of_core_path(&problem.path), problem.kind.to_string());
    }
    problems.into_vec()
}

pub async fn list(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<GroupPolicy>, DbError> {
    group_policies::list(pool, domain_id, page).await
}

pub async fn get(pool: &PgPool, domain_id: Uuid, id: Uuid) -> Result<GroupPolicy, DbError> {
    group_policies::get(pool, domain_id, id).await
}

pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, GroupPolicyError> {
    refuse_broken(input)?;
    let mut conn = acquire(pool).await?;
    Ok(group_policies::create(&mut conn, actor, domain_id, input).await?)
}

pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, GroupPolicyError> {
    refuse_broken(input)?;
    let mut conn = acquire(pool).await?;
    Ok(group_policies::update(&mut conn, actor, domain_id, id, expected_version, input).await?)
}

/// Deletes a group policy no profile uses (`expected_version`: the version the caller
/// read, if it read one).
pub async fn delete(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    group_policies::delete(&mut conn, actor, domain_id, id, expected_version).await
}

fn refuse_broken(input: &GroupPolicyInput) -> Result<(), GroupPolicyError> {
    let problems = check(input);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(GroupPolicyError::Invalid(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_simultaneous_logins_is_fmcs_no_login_and_the_range_ends_at_i32_max() {
        let mut input = GroupPolicyInput::new("GP");
        for (logins, ok) in [
            (0, true),
            (1, true),
            (2_147_483_647, true),
            (2_147_483_648, false),
        ] {
            input.simultaneous_logins = logins;
            let problems = check(&input);
            assert_eq!(problems.is_empty(), ok, "{logins}: {problems:?}");
            if !ok {
                assert_eq!(problems[0].field, Field::SimultaneousLogins);
            }
        }
    }

    #[test]
    fn a_split_tunnel_list_needs_networks_and_timeouts_are_not_zero() {
        let mut input = GroupPolicyInput::new("GP");
        input.split_tunnel_policy = vpn_core::config::SplitTunnelPolicy::TunnelSpecified;
        input.idle_timeout_minutes = Some(0);
        input.max_connect_time_minutes = Some(0);
        let fields: Vec<Field> = check(&input).iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                Field::IdleTimeout,
                Field::MaxConnectTime,
                Field::SplitTunnelNetworks,
            ]
        );
    }

    #[test]
    fn the_mtu_the_intervals_and_the_banner_follow_the_sensors_rules() {
        let mut input = GroupPolicyInput::new("GP");
        input.mtu = 100;
        input.keepalive_secs = Some(1);
        input.gateway_dpd_secs = Some(0);
        input.banner = Some("x".repeat(498));
        let fields: Vec<Field> = check(&input).iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                Field::Mtu,
                Field::Keepalive,
                Field::GatewayDpd,
                Field::Banner
            ]
        );
    }
}
