//! Which connection profile a request is for.

use crate::config::{ConnectionProfile, DeviceConfig};

/// The outcome of profile selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<'c> {
    Profile(&'c ConnectionProfile),
    /// No group named: offer these enabled aliases.
    AskGroup(Vec<&'c str>),
    /// The named group is unknown or disabled, or selection is not allowed.
    Refused,
}

/// Picks the profile by group URL / alias in the request path or `<group-access>`,
/// then by `<group-select>`, else offers the aliases when profile selection is allowed.
pub fn select_profile<'c>(
    config: &'c DeviceConfig,
    path: &str,
    group_access: Option<&str>,
    group_select: Option<&str>,
) -> Selection<'c> {
    let access_path = group_access.map(url_path).unwrap_or_default();
    for name in [path_name(path), path_name(access_path)] {
        if name.is_empty() {
            continue;
        }
        return match profile_for_name(config, name) {
            Some(profile) => Selection::Profile(profile),
            None => Selection::Refused,
        };
    }
    if let Some(alias) = group_select {
        return match profile_for_alias(config, alias) {
            Some(profile) => Selection::Profile(profile),
            None => Selection::Refused,
        };
    }
    if config.headend.allow_profile_selection {
        let aliases: Vec<&str> = config
            .connection_profiles
            .iter()
            .flat_map(|p| p.group_aliases.iter())
            .filter(|a| a.enabled)
            .map(|a| a.name.as_str())
            .collect();
        if !aliases.is_empty() {
            return Selection::AskGroup(aliases);
        }
    }
    Selection::Refused
}

/// The group name in a request path: `/RAVPN-MultiCert` → `RAVPN-MultiCert`.
fn path_name(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_matches('/')
}

/// The path of a URL (`https://host:8443/RAVPN` → `/RAVPN`); the text itself if no scheme.
fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => url,
    }
}

fn profile_for_name<'c>(config: &'c DeviceConfig, name: &str) -> Option<&'c ConnectionProfile> {
    config
        .connection_profiles
        .iter()
        .find(|p| {
            p.group_urls
                .iter()
                .any(|u| u.enabled && path_name(url_path(&u.url)) == name)
        })
        .or_else(|| profile_for_alias(config, name))
}

fn profile_for_alias<'c>(config: &'c DeviceConfig, alias: &str) -> Option<&'c ConnectionProfile> {
    config
        .connection_profiles
        .iter()
        .find(|p| p.group_aliases.iter().any(|a| a.enabled && a.name == alias))
}
