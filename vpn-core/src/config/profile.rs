use serde::{Deserialize, Serialize};

use super::AaaSettings;

/// A connection profile (FTD tunnel group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionProfile {
    pub name: String,
    /// `default-group-policy`: name of a group policy in the same document.
    pub group_policy: String,
    /// Client Address Assignment: IPv4 pools, by name, tried in order.
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    /// Client Address Assignment: IPv6 pools, by name, tried in order.
    #[serde(default)]
    pub ipv6_pools: Vec<String>,
    pub aaa: AaaSettings,
    /// CA trustpoints that client certificates of this profile must chain to.
    #[serde(default)]
    pub trustpoints: Vec<String>,
    /// MCA slot binding: the trustpoints (of [`Self::trustpoints`]) that may issue the
    /// machine certificate, the one of the TLS handshake. Empty: every trustpoint of the
    /// profile (FMC's behaviour).
    #[serde(default)]
    pub machine_trustpoints: Vec<String>,
    /// MCA slot binding: the trustpoints (of [`Self::trustpoints`]) that may issue the
    /// user certificate, the one of the MCA auth-reply. Empty: every trustpoint of the
    /// profile.
    #[serde(default)]
    pub user_trustpoints: Vec<String>,
    /// Aliases tab: names offered in the group-select list.
    #[serde(default)]
    pub group_aliases: Vec<GroupAlias>,
    /// Aliases tab: URLs that select this profile directly.
    #[serde(default)]
    pub group_urls: Vec<GroupUrl>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupAlias {
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupUrl {
    /// Absolute URL, e.g. `https://vpn.example.com/engineering`.
    pub url: String,
    pub enabled: bool,
}
