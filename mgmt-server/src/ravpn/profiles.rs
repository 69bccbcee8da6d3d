//! Connection profiles (`policy/ravpns/{id}/connectionprofiles`): the rules both doors
//! share — most of them vpn-core's own, the ones a deployed document is checked with —
//! then the repository writes.

use std::collections::HashMap;

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationServer, ObjectKind, ProblemKind, UsernameSource, aaa_problems,
    group_url_problem,
};

use crate::db::profiles::{self, ConnectionProfile, ConnectionProfileInput};
use crate::db::{Actor, DbError, Listed, Page, group_policies};
use crate::objects::acquire;
use crate::rules::{self, ChangeError, Problem, Problems};

/// A field of a connection profile a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    AddressPools,
    Trustpoints,
    /// Our extension: the trustpoints that may issue the machine certificate.
    MachineTrustpoints,
    /// Our extension: the trustpoints that may issue the user certificate.
    UserTrustpoints,
    AuthenticationServer,
    MultipleCertificates,
    UsernameSource,
    PrefillUsername,
    HideUsername,
    GroupAliases,
    GroupUrls,
}

impl Field {
    /// The field's path in FMC's JSON.
    pub fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::AddressPools => "ipv4AddressPool",
            Self::Trustpoints => "trustpoints",
            Self::MachineTrustpoints => "machineCertificateTrustpoints",
            Self::UserTrustpoints => "userCertificateTrustpoints",
            Self::AuthenticationServer => "primaryAuthenticationServer",
            Self::MultipleCertificates => "enableMultipleCertificateAuthentication",
            Self::UsernameSource => "certificateUsernameSettings.usernameFromCertificateSource",
            Self::PrefillUsername => "certificateUsernameSettings.prefillUsernameFromCertificate",
            Self::HideUsername => "certificateUsernameSettings.hideUsername",
            Self::GroupAliases => "groupAlias",
            Self::GroupUrls => "groupUrl",
        }
    }
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        Field::fmc_path(self)
    }
}

/// Why a connection profile was not stored.
pub type ProfileError = ChangeError<Field>;

/// Every rule of the profile alone that `input` breaks (empty when it may be stored as
/// far as the profile itself goes; [`create`] and [`update`] also check it against its
/// group policy and the other profiles of its policy).
pub fn check(input: &ConnectionProfileInput) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    problems.check_object_name(Field::Name, ObjectKind::ConnectionProfile, &input.name);
    let aaa = &input.aaa;
    let server_named = match &aaa.authentication_server {
        AuthenticationServer::Local => true,
        AuthenticationServer::Radius { server_group } => !server_group.trim().is_empty(),
        AuthenticationServer::Ldap { realm } => !realm.trim().is_empty(),
    };
    if !server_named {
        problems.add(
            Field::AuthenticationServer,
            "a RADIUS server group or LDAP realm needs its name",
        );
    }
    for (_, kind) in aaa_problems(aaa, input.trustpoint_ids.len()) {
        let field = match kind {
            ProblemKind::McaWithoutCertificates { .. } => Field::MultipleCertificates,
            ProblemKind::PrefillNeedsCertificateAndAaa { .. } => Field::PrefillUsername,
            ProblemKind::HideNeedsCertificateAndAaa { .. } | ProblemKind::HideWithoutPrefill => {
                Field::HideUsername
            }
            _ => Field::Trustpoints,
        };
        problems.add(field, kind.to_string());
    }
    if aaa.username_from_certificate_source == UsernameSource::FirstCertificate
        && !aaa.requires_mca()
    {
        problems.add(
            Field::UsernameSource,
            "the first certificate is only sent with multiple certificate authentication",
        );
    }
    let slots = [
        (Field::MachineTrustpoints, &input.machine_trustpoint_ids),
        (Field::UserTrustpoints, &input.user_trustpoint_ids),
    ];
    for (field, ids) in slots {
        if ids.iter().any(|id| !input.trustpoint_ids.contains(id)) {
            problems.add(
                field,
                "names a trustpoint the profile does not list under trustpoints",
            );
        }
    }
    let mut aliases: HashMap<String, &str> = HashMap::new();
    for alias in &input.group_aliases {
        problems.check_object_name(Field::GroupAliases, ObjectKind::GroupAlias, &alias.name);
        if aliases
            .insert(alias.name.to_lowercase(), &alias.name)
            .is_some()
        {
            let clash = ProblemKind::DuplicateGroupAlias {
                alias: alias.name.clone(),
                profile: input.name.clone(),
            };
            problems.add(Field::GroupAliases, clash.to_string());
        }
    }
    for group_url in &input.group_urls {
        if let Some(problem) = group_url_problem(&group_url.url) {
            problems.add(Field::GroupUrls, problem.to_string());
        }
    }
    problems.into_vec()
}

/// What is allowed but probably not meant: with multiple certificate authentication on,
/// the machine and the user certificate slots are not separated (a slot that names no
/// trustpoint accepts every trustpoint of the profile, FMC's behaviour; two slots that
/// share a trustpoint accept a user certificate as the machine's and the other way round).
/// Both doors show these beside a saved profile.
pub fn warnings(aaa: &AaaSettings, machine: &[Uuid], user: &[Uuid]) -> Vec<Problem<Field>> {
    let mut warnings = Problems::default();
    if !aaa.requires_mca() {
        return warnings.into_vec();
    }
    if machine.is_empty() || user.is_empty() {
        warnings.add(
            Field::MachineTrustpoints,
            "multiple certificate authentication is on but the machine and user certificate \
             slots are not separated: a slot that names no trustpoint accepts every trustpoint \
             of the profile, so a user certificate can stand in for the machine certificate \
             and the other way round; name the machine CA and the user CA",
        );
    } else if machine.iter().any(|id| user.contains(id)) {
        warnings.add(
            Field::UserTrustpoints,
            "multiple certificate authentication is on but a trustpoint is named for both the \
             machine and the user certificate: certificates it issued are accepted in either slot",
        );
    }
    warnings.into_vec()
}

/// [`warnings`] of a stored profile.
pub fn profile_warnings(profile: &ConnectionProfile) -> Vec<Problem<Field>> {
    let ids = |r: &[crate::db::Reference]| r.iter().map(|r| r.id).collect::<Vec<_>>();
    warnings(
        &profile.aaa,
        &ids(&profile.machine_trustpoints),
        &ids(&profile.user_trustpoints),
    )
}

/// Every rule `input` breaks: [`check`], then against what it refers to and, when it is
/// (to be) in policy `policy_id` as profile `own_id`, against that policy's other
/// profiles (one device runs them all: aliases and profile names are one list).
pub(crate) async fn problems(
    conn: &mut PgConnection,
    domain_id: Uuid,
    place: Option<(Uuid, Option<Uuid>)>,
    input: &ConnectionProfileInput,
) -> Result<Vec<Problem<Field>>, DbError> {
    let mut problems = check(input);
    if input.ipv4_pool_ids.is_empty() && input.ipv6_pool_ids.is_empty() {
        match group_policies::get(&mut *conn, domain_id, input.group_policy_id).await {
            Ok(group_policy) if group_policy.ipv4_pools.is_empty() => {
                let none = ProblemKind::NoAddressPool {
                    group_policy: group_policy.name,
                };
                problems.push(Problem {
                    field: Field::AddressPools,
                    message: none.to_string(),
                });
            }
            // A missing group policy is the repository's answer.
            Ok(_) | Err(DbError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some((policy_id, own_id)) = place {
        let others = profiles::list_in(&mut *conn, domain_id, policy_id, Page::ALL).await?;
        for other in others.items.iter().filter(|p| Some(p.id) != own_id) {
            if let Some(alias) = other
                .group_aliases
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(&input.name))
            {
                let clash = ProblemKind::GroupAliasNamesOtherProfile {
                    alias: alias.name.clone(),
                    profile: input.name.clone(),
                };
                problems.push(Problem {
                    field: Field::Name,
                    message: format!("{clash} (an alias of {:?})", other.name),
                });
            }
            for alias in &input.group_aliases {
                let clash = if alias.name.eq_ignore_ascii_case(&other.name) {
                    Some(ProblemKind::GroupAliasNamesOtherProfile {
                        alias: alias.name.clone(),
                        profile: other.name.clone(),
                    })
                } else if other
                    .group_aliases
                    .iter()
                    .any(|a| a.name.eq_ignore_ascii_case(&alias.name))
                {
                    Some(ProblemKind::DuplicateGroupAlias {
                        alias: alias.name.clone(),
                        profile: other.name.clone(),
                    })
                } else {
                    None
                };
                if let Some(clash) = clash {
                    problems.push(Problem {
                        field: Field::GroupAliases,
                        message: clash.to_string(),
                    });
                }
            }
        }
    }
    Ok(problems)
}

pub async fn list(
    pool: &PgPool,
    domain_id: Uuid,
    policy_id: Uuid,
    page: Page,
) -> Result<Listed<ConnectionProfile>, DbError> {
    profiles::list(pool, domain_id, policy_id, page).await
}

pub async fn get(
    pool: &PgPool,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
) -> Result<ConnectionProfile, DbError> {
    profiles::get(pool, domain_id, policy_id, id).await
}

pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    input: &ConnectionProfileInput,
) -> Result<ConnectionProfile, ProfileError> {
    let mut conn = acquire(pool).await?;
    refuse_broken(problems(&mut conn, domain_id, Some((policy_id, None)), input).await?)?;
    Ok(profiles::create(&mut conn, actor, domain_id, policy_id, input).await?)
}

#[allow(clippy::too_many_arguments)]
pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &ConnectionProfileInput,
) -> Result<ConnectionProfile, ProfileError> {
    let mut conn = acquire(pool).await?;
    let place = Some((policy_id, Some(id)));
    refuse_broken(problems(&mut conn, domain_id, place, input).await?)?;
    Ok(profiles::update(
        &mut conn,
        actor,
        domain_id,
        policy_id,
        id,
        expected_version,
        input,
    )
    .await?)
}

/// Deletes a profile (`expected_version`: the version the caller read, if it read one).
pub async fn delete(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    policy_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    profiles::delete(&mut conn, actor, domain_id, policy_id, id, expected_version).await
}

fn refuse_broken(problems: Vec<Problem<Field>>) -> Result<(), ProfileError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ProfileError::Invalid(problems))
    }
}
