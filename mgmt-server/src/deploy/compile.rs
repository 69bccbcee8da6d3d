//! The one conversion from the manager's objects to the sensor's document: a device's
//! RA VPN policy with its connection profiles and everything they reference becomes
//! the `DeviceConfig` the device runs, validated by vpn-core before anything is sent.

use std::collections::HashMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{
    ConfigProblem, ConnectionProfile, DeviceConfig, GroupPolicy, Headend, IdentityCertificate,
    Ipv4Pool, Ipv6Pool, LocalUser, PrivateKeyPem, SCHEMA_VERSION, Trustpoint,
};
use vpn_core::config::AuthenticationServer;

use crate::db::cert_enrollments::{self, CertEnrollment, EnrollmentContent};
use crate::db::{
    DbError, EncryptionKey, Page, Reference, group_policies, local_users, policies, pools,
    profiles,
};

/// Enough for every object of a domain in one page.
const ALL: Page = Page {
    offset: 0,
    limit: 1_000_000,
};

/// Why a device's configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("device {device} is not targeted by any RA VPN policy")]
    NoPolicy { device: String },
    #[error("{what} {name:?} referenced by {by} is not {expected}")]
    WrongReference {
        what: &'static str,
        name: String,
        by: String,
        expected: &'static str,
    },
    #[error("the configuration for device {device} is invalid:{}", problem_lines(.problems))]
    Invalid {
        device: String,
        problems: Vec<ConfigProblem>,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn problem_lines(problems: &[ConfigProblem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Compiles and validates the configuration of `device_id` (named `device_name` in
/// errors) at `version`.
pub async fn compile(
    conn: &mut PgConnection,
    key: &EncryptionKey,
    domain_id: Uuid,
    device_id: Uuid,
    device_name: &str,
    version: u64,
    now: OffsetDateTime,
) -> Result<DeviceConfig, CompileError> {
    let policy = policies::for_device(&mut *conn, domain_id, device_id)
        .await?
        .ok_or_else(|| CompileError::NoPolicy {
            device: device_name.to_owned(),
        })?;
    let profiles = profiles::list(&mut *conn, domain_id, policy.id, ALL).await?.items;
    let group_policies: HashMap<Uuid, _> = group_policies::list(&mut *conn, domain_id, ALL)
        .await?
        .items
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    let ipv4: HashMap<Uuid, _> = pools::list_ipv4(&mut *conn, domain_id, ALL)
        .await?
        .items
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let ipv6: HashMap<Uuid, _> = pools::list_ipv6(&mut *conn, domain_id, ALL)
        .await?
        .items
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let enrollments: HashMap<Uuid, CertEnrollment> =
        cert_enrollments::list(&mut *conn, domain_id, ALL)
            .await?
            .items
            .into_iter()
            .map(|e| (e.id, e))
            .collect();

    let mut used = Used::default();
    let mut connection_profiles = Vec::with_capacity(profiles.len());
    for profile in &profiles {
        used.group_policies.insert(profile.group_policy.id);
        used.ipv4.extend(profile.ipv4_pools.iter().map(|r| r.id));
        used.ipv6.extend(profile.ipv6_pools.iter().map(|r| r.id));
        for trustpoint in &profile.trustpoints {
            match enrollments.get(&trustpoint.id).map(|e| &e.content) {
                Some(EnrollmentContent::CaOnly(_)) => {
                    used.trustpoints.insert(trustpoint.id);
                }
                _ => {
                    return Err(CompileError::WrongReference {
                        what: "cert enrollment",
                        name: trustpoint.name.clone(),
                        by: format!("connection profile {}", profile.name),
                        expected: "a CA-only trustpoint",
                    });
                }
            }
        }
        connection_profiles.push(ConnectionProfile {
            name: profile.name.clone(),
            group_policy: profile.group_policy.name.clone(),
            ipv4_pools: names(&profile.ipv4_pools),
            ipv6_pools: names(&profile.ipv6_pools),
            aaa: profile.aaa.clone(),
            trustpoints: names(&profile.trustpoints),
            group_aliases: profile.group_aliases.clone(),
            group_urls: profile.group_urls.clone(),
        });
    }

    let identity = match &policy.ssl_identity_certificate {
        None => IdentityCertificate {
            trustpoint: String::new(),
            certificate_chain_pem: String::new(),
            private_key_pem: PrivateKeyPem(String::new()),
        },
        Some(reference) => match enrollments.get(&reference.id).map(|e| &e.content) {
            Some(EnrollmentContent::Identity {
                certificate_chain_pem,
            }) => IdentityCertificate {
                trustpoint: reference.name.clone(),
                certificate_chain_pem: certificate_chain_pem.clone(),
                private_key_pem: cert_enrollments::identity_private_key(
                    &mut *conn,
                    domain_id,
                    reference.id,
                    key,
                )
                .await?,
            },
            _ => {
                return Err(CompileError::WrongReference {
                    what: "cert enrollment",
                    name: reference.name.clone(),
                    by: format!("RA VPN policy {}", policy.name),
                    expected: "an identity certificate with its key",
                });
            }
        },
    };

    let needs_local_users = profiles
        .iter()
        .any(|p| p.aaa.authentication_server == AuthenticationServer::Local);
    let local_users = if needs_local_users {
        local_users::list(&mut *conn, domain_id, ALL)
            .await?
            .items
            .into_iter()
            .map(|user| LocalUser {
                name: user.name,
                password_hash: user.password_hash.as_phc().to_owned(),
            })
            .collect()
    } else {
        Vec::new()
    };

    let config = DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version,
        device_id,
        headend: Headend {
            access_interface: policy.access_interface.clone(),
            ssl_port: policy.web_port,
            dtls_enabled: policy.dtls_enabled,
            dtls_port: policy.dtls_port,
            allow_profile_selection: policy.allow_connection_profile_selection,
            identity,
        },
        connection_profiles,
        group_policies: sorted(used.group_policies.iter().filter_map(|id| {
            group_policies.get(id).map(|g| GroupPolicy {
                name: g.name.clone(),
                banner: g.banner.clone(),
                dns_servers: g.dns_servers.clone(),
                default_domain: g.default_domain.clone(),
                split_tunnel_policy: g.split_tunnel_policy,
                split_tunnel_networks: g.split_tunnel_networks.clone(),
                ipv4_pools: Vec::new(),
                mtu: g.mtu,
                keepalive_secs: g.keepalive_secs,
                gateway_dpd_secs: g.gateway_dpd_secs,
                client_dpd_secs: g.client_dpd_secs,
                idle_timeout_minutes: g.idle_timeout_minutes,
                max_connect_time_minutes: g.max_connect_time_minutes,
                simultaneous_logins: g.simultaneous_logins,
                dtls_enabled: g.dtls_enabled,
            })
        })),
        ipv4_pools: sorted(used.ipv4.iter().filter_map(|id| {
            ipv4.get(id).map(|p| Ipv4Pool {
                name: p.name.clone(),
                start: p.start,
                end: p.end,
                mask: p.mask,
            })
        })),
        ipv6_pools: sorted(used.ipv6.iter().filter_map(|id| {
            ipv6.get(id).map(|p| Ipv6Pool {
                name: p.name.clone(),
                start: p.start,
                prefix_len: p.prefix_length,
                count: p.number_of_addresses,
            })
        })),
        trustpoints: sorted(used.trustpoints.iter().filter_map(|id| {
            let enrollment = enrollments.get(id)?;
            let EnrollmentContent::CaOnly(settings) = &enrollment.content else {
                return None;
            };
            Some(Trustpoint {
                name: enrollment.name.clone(),
                ca_certificates_pem: settings.ca_certificates_pem.clone(),
                validation_usage: settings.validation_usage.clone(),
                skip_ca_flag_check: settings.skip_ca_flag_check,
                require_client_auth_eku: settings.require_client_auth_eku,
                revocation: settings.revocation.clone(),
            })
        })),
        local_users,
    };
    config.validate(now).map_err(|problems| CompileError::Invalid {
        device: device_name.to_owned(),
        problems,
    })?;
    Ok(config)
}

/// What the profiles reference, so only that goes to the device.
#[derive(Debug, Default)]
struct Used {
    group_policies: std::collections::BTreeSet<Uuid>,
    ipv4: std::collections::BTreeSet<Uuid>,
    ipv6: std::collections::BTreeSet<Uuid>,
    trustpoints: std::collections::BTreeSet<Uuid>,
}

fn names(references: &[Reference]) -> Vec<String> {
    references.iter().map(|r| r.name.clone()).collect()
}

/// Objects in name order, so the same database always compiles to the same bytes.
fn sorted<T: Named>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.sort_by(|a, b| a.name().cmp(b.name()));
    items
}

trait Named {
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($t:ty),*) => {$(impl Named for $t { fn name(&self) -> &str { &self.name } })*};
}
named!(GroupPolicy, Ipv4Pool, Ipv6Pool, Trustpoint);
