//! The one document the manager compiles and the sensor runs.
//!
//! A [`DeviceConfig`] is addressed to one device, carries a monotonically increasing
//! `version`, and holds everything the headend needs: listener settings and identity
//! certificate, connection profiles with their AAA settings, group policies, address
//! pools, CA trustpoints and LOCAL users. Names are the references between parts, as on
//! the FTD CLI (`default-group-policy NAME`, `address-pool NAME`).
//!
//! Life of a document: [`DeviceConfig::from_json`] (size and schema limits) →
//! [`DeviceConfig::validate`] (every problem, with its JSON path) and
//! [`DeviceConfig::warnings`] → [`DeviceConfig::content_hash`] to compare deploys.

mod aaa;
mod address_pool;
mod document;
#[cfg(test)]
pub(crate) mod fixture;
mod group_policy;
mod headend;
mod local_user;
mod profile;
mod trustpoint;
mod validate;

pub use aaa::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, CertificateField, UsernameMapping,
    UsernameSource,
};
pub use address_pool::{Ipv4Pool, Ipv6Pool};
pub use document::{ConfigError, MAX_DOCUMENT_BYTES};
pub use group_policy::{GroupPolicy, MTU_MAX, MTU_MIN, SplitTunnelPolicy};
pub use headend::{Headend, IdentityCertificate, PrivateKeyPem};
pub use local_user::LocalUser;
pub use profile::{ConnectionProfile, GroupAlias, GroupUrl};
pub use trustpoint::{Revocation, Trustpoint, ValidationUsage};
pub use validate::{
    BANNER_LINE_MAX_CHARS, ConfigProblem, EXPIRY_WARNING_DAYS, MAX_DNS_SERVERS, MAX_NAME_CHARS,
    MAX_POOL_ADDRESSES, ObjectKind, ProblemKind, aaa_problems, group_url_problem,
    object_name_problem,
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema this build of vpn-core reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one sensor runs, as compiled by the manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Layout of this document; a sensor refuses a schema it does not know.
    pub schema_version: u32,
    /// Deploy version; a sensor only applies a version newer than the running one.
    pub version: u64,
    /// The device this document is addressed to.
    pub device_id: Uuid,
    pub headend: Headend,
    #[serde(default)]
    pub connection_profiles: Vec<ConnectionProfile>,
    #[serde(default)]
    pub group_policies: Vec<GroupPolicy>,
    #[serde(default)]
    pub ipv4_pools: Vec<Ipv4Pool>,
    #[serde(default)]
    pub ipv6_pools: Vec<Ipv6Pool>,
    #[serde(default)]
    pub trustpoints: Vec<Trustpoint>,
    #[serde(default)]
    pub local_users: Vec<LocalUser>,
}

impl DeviceConfig {
    pub fn connection_profile(&self, name: &str) -> Option<&ConnectionProfile> {
        self.connection_profiles.iter().find(|p| p.name == name)
    }

    pub fn group_policy(&self, name: &str) -> Option<&GroupPolicy> {
        self.group_policies.iter().find(|g| g.name == name)
    }

    pub fn ipv4_pool(&self, name: &str) -> Option<&Ipv4Pool> {
        self.ipv4_pools.iter().find(|p| p.name == name)
    }

    pub fn ipv6_pool(&self, name: &str) -> Option<&Ipv6Pool> {
        self.ipv6_pools.iter().find(|p| p.name == name)
    }

    pub fn trustpoint(&self, name: &str) -> Option<&Trustpoint> {
        self.trustpoints.iter().find(|t| t.name == name)
    }

    pub fn local_user(&self, name: &str) -> Option<&LocalUser> {
        self.local_users.iter().find(|u| u.name == name)
    }
}
