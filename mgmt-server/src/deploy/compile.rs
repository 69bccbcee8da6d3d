//! The one conversion from the manager's objects to the sensor's document: a device's
//! RA VPN policy with its connection profiles and everything they reference (read in
//! one snapshot by [`device_policy::load`]) becomes the `DeviceConfig` the device runs,
//! validated by vpn-core before anything is sent.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{
    ConfigProblem, ConnectionProfile, DeviceConfig, GroupPolicy, Headend, IdentityCertificate,
    Ipv4Pool, Ipv6Pool, LocalUser, PrivateKeyPem, SCHEMA_VERSION, Trustpoint,
};

use super::overlap;
use crate::db::cert_enrollments::EnrollmentContent;
use crate::db::device_policy::{self, DevicePolicy};
use crate::db::{DbError, EncryptionKey, Reference};

/// Why a device's configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("device {device} is not targeted by any RA VPN policy")]
    NoPolicy { device: String },
    #[error("the configuration for device {device} is invalid:{}", problem_lines(.problems))]
    Invalid {
        device: String,
        problems: Vec<ConfigProblem>,
    },
    #[error("cannot issue the identity certificate of device {device}: {reason}")]
    Identity { device: String, reason: String },
    #[error(transparent)]
    Overlap(Box<overlap::Overlap>),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn problem_lines(problems: &[ConfigProblem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Compiles and validates the configuration of `device_id` at `version`: issues the
/// device its identity certificate first if its enrollment is the internal CA's
/// ([`super::identity`]), and refuses a configuration whose address pools overlap what
/// another device hands out ([`super::overlap`]).
pub async fn compile(
    pool: &PgPool,
    key: &EncryptionKey,
    domain_id: Uuid,
    device_id: Uuid,
    device_name: &str,
    version: u64,
    now: OffsetDateTime,
) -> Result<DeviceConfig, CompileError> {
    let config = compile_alone(pool, key, domain_id, device_id, device_name, version, now).await?;
    overlap::check_configs(
        pool,
        domain_id,
        std::iter::once((device_id, device_name, &config)),
    )
    .await?;
    Ok(config)
}

/// [`compile`] without the check against the other devices' addresses: for a deploy
/// request, which checks all its documents together once they are compiled.
pub async fn compile_alone(
    pool: &PgPool,
    key: &EncryptionKey,
    domain_id: Uuid,
    device_id: Uuid,
    device_name: &str,
    version: u64,
    now: OffsetDateTime,
) -> Result<DeviceConfig, CompileError> {
    super::identity::ensure_issued(pool, key, domain_id, device_id, now).await?;
    let inputs = device_policy::load(pool, domain_id, device_id, key)
        .await?
        .ok_or_else(|| CompileError::NoPolicy {
            device: device_name.to_owned(),
        })?;
    let config = device_config(&inputs, version);
    config
        .validate(now)
        .map_err(|problems| CompileError::Invalid {
            device: device_name.to_owned(),
            problems,
        })?;
    Ok(config)
}

/// Names replace references; everything else is copied as is.
pub fn device_config(inputs: &DevicePolicy, version: u64) -> DeviceConfig {
    let policy = &inputs.policy;
    let identity = match &inputs.identity {
        Some(identity) => IdentityCertificate {
            trustpoint: identity.trustpoint.clone(),
            certificate_chain_pem: identity.certificate_chain_pem.clone(),
            private_key_pem: identity.private_key_pem.clone(),
        },
        None => IdentityCertificate {
            trustpoint: String::new(),
            certificate_chain_pem: String::new(),
            private_key_pem: PrivateKeyPem(String::new()),
        },
    };
    DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version,
        device_id: inputs.device.id,
        headend: Headend {
            access_interface: policy.access_interface.clone(),
            ssl_port: policy.web_port,
            dtls_enabled: policy.dtls_enabled,
            dtls_port: policy.dtls_port,
            allow_profile_selection: policy.allow_connection_profile_selection,
            identity,
        },
        connection_profiles: inputs
            .connection_profiles
            .iter()
            .map(|profile| ConnectionProfile {
                name: profile.name.clone(),
                group_policy: profile.group_policy.name.clone(),
                ipv4_pools: names(&profile.ipv4_pools),
                ipv6_pools: names(&profile.ipv6_pools),
                aaa: profile.aaa.clone(),
                trustpoints: names(&profile.trustpoints),
                machine_trustpoints: names(&profile.machine_trustpoints),
                user_trustpoints: names(&profile.user_trustpoints),
                group_aliases: profile.group_aliases.clone(),
                group_urls: profile.group_urls.clone(),
            })
            .collect(),
        group_policies: inputs
            .group_policies
            .iter()
            .map(|g| GroupPolicy {
                name: g.name.clone(),
                banner: g.banner.clone(),
                dns_servers: g.dns_servers.clone(),
                default_domain: g.default_domain.clone(),
                split_tunnel_policy: g.split_tunnel_policy,
                split_tunnel_networks: g.split_tunnel_networks.clone(),
                ipv4_pools: names(&g.ipv4_pools),
                mtu: g.mtu,
                keepalive_secs: g.keepalive_secs,
                gateway_dpd_secs: g.gateway_dpd_secs,
                client_dpd_secs: g.client_dpd_secs,
                idle_timeout_minutes: g.idle_timeout_minutes,
                max_connect_time_minutes: g.max_connect_time_minutes,
                simultaneous_logins: g.simultaneous_logins,
                dtls_enabled: g.dtls_enabled,
            })
            .collect(),
        ipv4_pools: inputs
            .ipv4_pools
            .iter()
            .map(|p| Ipv4Pool {
                name: p.name.clone(),
                start: p.start,
                end: p.end,
                mask: p.mask,
            })
            .collect(),
        ipv6_pools: inputs
            .ipv6_pools
            .iter()
            .map(|p| Ipv6Pool {
                name: p.name.clone(),
                start: p.start,
                prefix_len: p.prefix_length,
                count: p.number_of_addresses,
            })
            .collect(),
        trustpoints: inputs
            .trustpoints
            .iter()
            .filter_map(|enrollment| match &enrollment.content {
                EnrollmentContent::CaOnly(settings) => Some(Trustpoint {
                    name: enrollment.name.clone(),
                    ca_certificates_pem: settings.ca_certificates_pem.clone(),
                    validation_usage: settings.validation_usage,
                    skip_ca_flag_check: settings.skip_ca_flag_check,
                    require_client_auth_eku: settings.require_client_auth_eku,
                    revocation: settings.revocation.clone(),
                }),
                EnrollmentContent::Identity { .. } => None,
            })
            .collect(),
        local_users: inputs
            .local_users
            .iter()
            .map(|user| LocalUser {
                name: user.name.clone(),
                password_hash: user.password_hash.as_phc().to_owned(),
            })
            .collect(),
    }
}

fn names(references: &[Reference]) -> Vec<String> {
    references.iter().map(|r| r.name.clone()).collect()
}
