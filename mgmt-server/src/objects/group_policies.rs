//! Group policies: the field rules both doors share, then the repository write.

use sqlx::PgConnection;
use uuid::Uuid;
use vpn_core::config::SplitTunnelPolicy;

use crate::db::group_policies::{self, GroupPolicy, GroupPolicyInput};
use crate::db::{Actor, DbError};

/// FMC's range for "Simultaneous Login per User"; 0 lets nobody log in.
pub const MAX_SIMULTANEOUS_LOGINS: u32 = 2_147_483_647;

/// A field of a group policy a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    SimultaneousLogins,
    SplitTunnelNetworks,
    IdleTimeout,
    MaxConnectTime,
}

impl Field {
    /// The field's path in FMC's JSON.
    pub fn fmc_path(self) -> &'static str {
        match self {
            Self::SimultaneousLogins => "advancedSettings.sessionSettings.simultaneousLoginPerUser",
            Self::SplitTunnelNetworks => "generalSettings.splitTunnelSettings.splitTunnelNetworks",
            Self::IdleTimeout => "advancedSettings.sessionSettings.vpnIdleTimeout",
            Self::MaxConnectTime => "advancedSettings.sessionSettings.maxConnectionTimeout",
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub message: String,
}

/// Why a group policy was not stored.
#[derive(Debug, thiserror::Error)]
pub enum GroupPolicyError {
    #[error("the group policy breaks {} rule(s)", .0.len())]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Every rule `input` breaks (empty when it may be stored).
pub fn check(input: &GroupPolicyInput) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut broken = |field, message: &str| {
        problems.push(Problem {
            field,
            message: message.to_owned(),
        });
    };
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
    problems
}

pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, GroupPolicyError> {
    refuse_broken(input)?;
    Ok(group_policies::create(conn, actor, domain_id, input).await?)
}

pub async fn update(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &GroupPolicyInput,
) -> Result<GroupPolicy, GroupPolicyError> {
    refuse_broken(input)?;
    Ok(group_policies::update(conn, actor, domain_id, id, expected_version, input).await?)
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
