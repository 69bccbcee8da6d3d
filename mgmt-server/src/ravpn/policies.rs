//! RA VPN policies (`policy/ravpns`): the Access Interfaces rules both doors share, the
//! repository writes, and the wizard's policy-plus-first-profile transaction.

use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::ObjectKind;

use super::profiles;
use crate::db::policies::{self, RaVpnPolicy, RaVpnPolicyInput};
use crate::db::profiles::ConnectionProfileInput;
use crate::db::{Actor, DbError, Listed, Page};
use crate::objects::acquire;
use crate::rules::{self, ChangeError, Problem, Problems};

/// A field of an RA VPN policy a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    ConfigureIpsec,
    AccessInterface,
    WebPort,
    DtlsPort,
}

impl Field {
    /// The field's path in FMC's JSON.
    pub fn fmc_path(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::ConfigureIpsec => "configureIpsec",
            Self::AccessInterface => "accessInterfaceSettings.accessInterfaceName",
            Self::WebPort => "accessInterfaceSettings.webPort",
            Self::DtlsPort => "accessInterfaceSettings.dtlsPort",
        }
    }
}

impl rules::Field for Field {
    fn fmc_path(self) -> &'static str {
        Field::fmc_path(self)
    }
}

/// Why a policy was not stored.
pub type PolicyError = ChangeError<Field>;

/// Every rule `input` breaks (empty when it may be stored).
pub fn check(input: &RaVpnPolicyInput) -> Vec<Problem<Field>> {
    let mut problems = Problems::default();
    // The policy stays on the manager; its name never reaches the sensor.
    problems.check_manager_name(Field::Name, &input.name);
    if input.configure_ipsec {
        problems.add(
            Field::ConfigureIpsec,
            "IPsec-IKEv2 is not supported by this sensor; only SSL is",
        );
    }
    // The interface name is a token of the sensor's CLI (`enable outside`): vpn-core's
    // name rule, and an interface's characters.
    problems.check_object_name(
        Field::AccessInterface,
        ObjectKind::AccessInterface,
        &input.access_interface,
    );
    if !problems.has(Field::AccessInterface)
        && !input
            .access_interface
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        problems.add(
            Field::AccessInterface,
            format!(
                "{:?} is not an interface name (letters, digits, '-', '_' and '.')",
                input.access_interface
            ),
        );
    }
    for (field, port) in [
        (Field::WebPort, input.web_port),
        (Field::DtlsPort, input.dtls_port),
    ] {
        if port == 0 {
            problems.add(field, "must be a port from 1 to 65535");
        }
    }
    problems.into_vec()
}

pub async fn list(
    pool: &PgPool,
    domain_id: Uuid,
    page: Page,
) -> Result<Listed<RaVpnPolicy>, DbError> {
    policies::list(pool, domain_id, page).await
}

pub async fn get(pool: &PgPool, domain_id: Uuid, id: Uuid) -> Result<RaVpnPolicy, DbError> {
    policies::get(pool, domain_id, id).await
}

pub async fn create(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, PolicyError> {
    refuse_broken(input)?;
    let mut conn = acquire(pool).await?;
    Ok(policies::create(&mut conn, actor, domain_id, input).await?)
}

pub async fn update(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: i32,
    input: &RaVpnPolicyInput,
) -> Result<RaVpnPolicy, PolicyError> {
    refuse_broken(input)?;
    let mut conn = acquire(pool).await?;
    Ok(policies::update(&mut conn, actor, domain_id, id, expected_version, input).await?)
}

/// Deletes a policy with its connection profiles and assignments (`expected_version`:
/// the version the caller read, if it read one).
pub async fn delete(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<(), DbError> {
    let mut conn = acquire(pool).await?;
    policies::delete(&mut conn, actor, domain_id, id, expected_version).await
}

fn refuse_broken(input: &RaVpnPolicyInput) -> Result<(), PolicyError> {
    let problems = check(input);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Invalid(problems))
    }
}

/// A field of the wizard: of the policy or of its first connection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WizardField {
    Policy(Field),
    Profile(profiles::Field),
}

impl rules::Field for WizardField {
    fn fmc_path(self) -> &'static str {
        match self {
            Self::Policy(field) => field.fmc_path(),
            Self::Profile(field) => field.fmc_path(),
        }
    }
}

/// Creates a policy with its first connection profile in one transaction: both are
/// checked first (every broken rule of either is reported), and a refused profile
/// leaves no policy behind.
pub async fn create_with_profile(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    policy: &RaVpnPolicyInput,
    profile: &ConnectionProfileInput,
) -> Result<RaVpnPolicy, ChangeError<WizardField>> {
    let mut tx = pool.begin().await.map_err(DbError::sql("begin"))?;
    let mut problems: Vec<Problem<WizardField>> = check(policy)
        .into_iter()
        .map(|p| Problem {
            field: WizardField::Policy(p.field),
            message: p.message,
        })
        .collect();
    problems.extend(
        profiles::problems(&mut tx, domain_id, None, profile)
            .await?
            .into_iter()
            .map(|p| Problem {
                field: WizardField::Profile(p.field),
                message: p.message,
            }),
    );
    if !problems.is_empty() {
        return Err(ChangeError::Invalid(problems));
    }
    let created = policies::create(&mut tx, actor, domain_id, policy).await?;
    crate::db::profiles::create(&mut tx, actor, domain_id, created.id, profile).await?;
    tx.commit().await.map_err(DbError::sql("commit"))?;
    Ok(created)
}
