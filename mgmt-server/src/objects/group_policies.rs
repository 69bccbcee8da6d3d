//! Group policies: the field rules both doors share, then the repository write.

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{ObjectKind, SplitTunnelPolicy};

use super::acquire;
use crate::db::group_policies::{self, GroupPolicy, GroupPolicyInput};
use crate::db::{Actor, DbError, Listed, Page};
use crate::rules::{self, ChangeError, Problem, Problems};

/// FMC's range for "Simultaneous Login per User"; 0 lets nobody log in.
pub const MAX_SIMULTANEOUS_LOGINS: u32 = 2_147_483_647;

/// A field of a group policy a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    SimultaneousLogins,
    SplitTunnelNetworks,
    IdleTimeout,
    MaxConnectTime,
}

impl Field {
    /// The field's path in FMC's JSON.
    pub fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::SimultaneousLogins => "advancedSettings.sessionSettings.simultaneousLoginPerUser",
            Self::SplitTunnelNetworks => "generalSettings.splitTunnelSettings.splitTunnelNetworks",
            Self::IdleTimeout => "advancedSettings.sessionSettings.vpnIdleTimeout",
            Self::MaxConnectTime => "advancedSettings.sessionSettings.maxConnectionTimeout",
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

/// Every rule `input` breaks (empty when it may be stored).
pub fn check(input: &GroupPolicyInput) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, ObjectKind::GroupPolicy, &input.name);
    let mut broken = |field, message: &str| problems.add(field, message);
    if input.simultaneous_logins > MAX_SIMULTANEOUS_LOGINS {
        broken(
            Field::SimultaneousLogins,
            "must be from 0 (nobody may log in) to 2147483647",
        );
    }
    if input.split_tunnel_policy != SplitTunnelPolicy::TunnelAll
        && input.split_tunnel_networks.is_empty()
    {
        broken(
            Field::SplitTunnelNetworks,
            "a split-tunnel policy other than TUNNEL_ALL needs at least one network",
        );
    }
    if input.idle_timeout_minutes == Some(0) {
        broken(Field::IdleTimeout, "must be 1 minute or more, or none");
    }
    if input.max_connect_time_minutes == Some(0) {
        broken(Field::MaxConnectTime, "must be 1 minute or more, or none");
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
        input.split_tunnel_policy = SplitTunnelPolicy::TunnelSpecified;
        input.idle_timeout_minutes = Some(0);
        input.max_connect_time_minutes = Some(0);
        let fields: Vec<Field> = check(&input).iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                Field::SplitTunnelNetworks,
                Field::IdleTimeout,
                Field::MaxConnectTime
            ]
        );
    }
}
