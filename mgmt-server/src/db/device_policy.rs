//! Everything one device's DeviceConfig is compiled from, read in one consistent
//! snapshot: the device, its RA VPN policy, the policy's connection profiles and every
//! object they use (address pools with this device's overrides applied), the device's
//! identity certificate with its decrypted key, and the domain's LOCAL users. The deploy engine turns this into a `vpn_core::config::DeviceConfig`
//! (names replace references; the AAA settings are already vpn-core's type).

use std::collections::BTreeSet;

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::cert_enrollments::{self, CertEnrollment, EnrollmentContent};
use super::device_certificates;
use super::devices::{self, Device};
use super::group_policies::{self, GroupPolicy};
use super::local_users::{self, LocalUser};
use super::policies::{self, RaVpnPolicy};
use super::pool_overrides;
use super::pools::{self, Ipv4AddressPool, Ipv6AddressPool};
use super::profiles::{self, ConnectionProfile};
use super::{DbError, EncryptionKey, Page};

/// The inputs of one device's configuration. Lists are ordered by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicePolicy {
    pub device: Device,
    pub policy: RaVpnPolicy,
    /// The policy's SSL identity certificate as this device has it, if one is set.
    pub identity: Option<IdentityMaterial>,
    pub connection_profiles: Vec<ConnectionProfile>,
    /// The group policies the profiles use.
    pub group_policies: Vec<GroupPolicy>,
    /// The pools the profiles and their group policies use, with the device's
    /// overrides applied (same name, the device's range).
    pub ipv4_pools: Vec<Ipv4AddressPool>,
    pub ipv6_pools: Vec<Ipv6AddressPool>,
    /// The CA-only trustpoints the profiles use.
    pub trustpoints: Vec<CertEnrollment>,
    /// The LOCAL realm (all LOCAL users of the domain).
    pub local_users: Vec<LocalUser>,
}

/// The headend identity: the trustpoint name, its chain and its decrypted key: the
/// device's own certificate of the enrollment (issued or installed), or the
/// enrollment's certificate when the device has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityMaterial {
    pub trustpoint: String,
    pub certificate_chain_pem: String,
    #[serde(skip)]
    pub private_key_pem: PrivateKeyPem,
}

/// Loads what `device_id` runs; `None` if no RA VPN policy is assigned to it.
pub async fn load(
    pool: &PgPool,
    domain_id: Uuid,
    device_id: Uuid,
    key: &EncryptionKey,
) -> Result<Option<DevicePolicy>, DbError> {
    // One snapshot: an edit committed half-way through cannot mix old and new objects.
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::sql("begin a snapshot"))?;
    let device = devices::get(&mut *tx, domain_id, device_id).await?;
    let Some(policy) = policies::for_device(&mut *tx, domain_id, device_id).await? else {
        return Ok(None);
    };
    let inputs = gather(&mut tx, domain_id, device, policy, key).await?;
    tx.commit().await.map_err(DbError::sql("end a snapshot"))?;
    Ok(Some(inputs))
}

/// Loads what `policy_id` would give `device` (a device the policy may not target yet):
/// the UI's preview of a policy's configuration before any device runs it.
pub async fn load_for_policy(
    pool: &PgPool,
    domain_id: Uuid,
    policy_id: Uuid,
    device: Device,
    key: &EncryptionKey,
) -> Result<DevicePolicy, DbError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(DbError::sql("begin a snapshot"))?;
    let policy = policies::get(&mut *tx, domain_id, policy_id).await?;
    let inputs = gather(&mut tx, domain_id, device, policy, key).await?;
    tx.commit().await.map_err(DbError::sql("end a snapshot"))?;
    Ok(inputs)
}

async fn gather(
    conn: &mut sqlx::PgConnection,
    domain_id: Uuid,
    device: Device,
    policy: RaVpnPolicy,
    key: &EncryptionKey,
) -> Result<DevicePolicy, DbError> {
    let connection_profiles = profiles::list_in(conn, domain_id, policy.id, Page::ALL)
        .await?
        .items;

    let group_policy_ids: BTreeSet<Uuid> = connection_profiles
        .iter()
        .map(|p| p.group_policy.id)
        .collect();
    let mut group_policies = Vec::with_capacity(group_policy_ids.len());
    for id in group_policy_ids {
        group_policies.push(group_policies::get(&mut *conn, domain_id, id).await?);
    }

    let ipv4_ids: BTreeSet<Uuid> = connection_profiles
        .iter()
        .flat_map(|p| p.ipv4_pools.iter())
        .chain(group_policies.iter().flat_map(|g| g.ipv4_pools.iter()))
        .map(|r| r.id)
        .collect();
    let mut ipv4_pools = Vec::with_capacity(ipv4_ids.len());
    for id in ipv4_ids {
        ipv4_pools.push(pools::get_ipv4(&mut *conn, domain_id, id).await?);
    }
    for o in pool_overrides::ipv4_for_device(&mut *conn, domain_id, device.id).await? {
        if let Some(pool) = ipv4_pools.iter_mut().find(|p| p.id == o.pool.id) {
            pool.start = o.start;
            pool.end = o.end;
            pool.mask = o.mask;
        }
    }
    let ipv6_ids: BTreeSet<Uuid> = connection_profiles
        .iter()
        .flat_map(|p| p.ipv6_pools.iter())
        .map(|r| r.id)
        .collect();
    let mut ipv6_pools = Vec::with_capacity(ipv6_ids.len());
    for id in ipv6_ids {
        ipv6_pools.push(pools::get_ipv6(&mut *conn, domain_id, id).await?);
    }
    for o in pool_overrides::ipv6_for_device(&mut *conn, domain_id, device.id).await? {
        if let Some(pool) = ipv6_pools.iter_mut().find(|p| p.id == o.pool.id) {
            pool.start = o.start;
            pool.prefix_length = o.prefix_length;
            pool.number_of_addresses = o.number_of_addresses;
        }
    }
    let trustpoint_ids: BTreeSet<Uuid> = connection_profiles
        .iter()
        .flat_map(|p| p.trustpoints.iter())
        .map(|r| r.id)
        .collect();
    let mut trustpoints = Vec::with_capacity(trustpoint_ids.len());
    for id in trustpoint_ids {
        trustpoints.push(cert_enrollments::get(&mut *conn, domain_id, id).await?);
    }

    let identity = match &policy.ssl_identity_certificate {
        None => None,
        Some(reference) => {
            let enrollment = cert_enrollments::get(&mut *conn, domain_id, reference.id).await?;
            let EnrollmentContent::Identity {
                certificate_chain_pem,
            } = enrollment.content
            else {
                return Err(DbError::WrongReference {
                    kind: super::ObjectKind::CertEnrollment,
                    id: reference.id,
                    expected: "an identity certificate",
                });
            };
            let own =
                device_certificates::for_device(&mut *conn, domain_id, device.id, reference.id)
                    .await?;
            let (certificate_chain_pem, private_key_pem) = match own {
                Some(own) => (
                    own.certificate_chain_pem,
                    device_certificates::private_key(&mut *conn, domain_id, own.id, key).await?,
                ),
                None => (
                    certificate_chain_pem,
                    cert_enrollments::identity_private_key(
                        &mut *conn,
                        domain_id,
                        reference.id,
                        key,
                    )
                    .await?,
                ),
            };
            Some(IdentityMaterial {
                trustpoint: enrollment.name,
                certificate_chain_pem,
                private_key_pem,
            })
        }
    };
    let local_users = local_users::list_in(conn, domain_id, Page::ALL)
        .await?
        .items;

    group_policies.sort_by(|a, b| a.name.cmp(&b.name));
    ipv4_pools.sort_by(|a, b| a.name.cmp(&b.name));
    ipv6_pools.sort_by(|a, b| a.name.cmp(&b.name));
    trustpoints.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(DevicePolicy {
        device,
        policy,
        identity,
        connection_profiles,
        group_policies,
        ipv4_pools,
        ipv6_pools,
        trustpoints,
        local_users,
    })
}
