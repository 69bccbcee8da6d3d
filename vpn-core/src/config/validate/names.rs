//! Names: syntax, uniqueness, aliases, group URLs and references between objects.
//!
//! Rule for every object name (profile, group policy, pool, trustpoint, local user,
//! alias, access interface): 1 to [`MAX_NAME_CHARS`] characters, none of them whitespace
//! or control characters, because the name is a single token on the FTD CLI
//! (`tunnel-group NAME`, `ip local pool NAME ...`). 64 is the longest tunnel-group and
//! group-policy name ASA/FTD accept, and we apply it to every object.

use std::collections::{HashMap, HashSet};

use super::{Findings, ObjectKind, ProblemKind};
use crate::config::DeviceConfig;

/// The longest object name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    check_syntax(config, found);
    check_duplicates(config, found);
    check_aliases(config, found);
    check_group_urls(config, found);
    check_references(config, found);
}

/// Every object name with its path and kind: lists in document order, then the headend.
fn named_objects(config: &DeviceConfig) -> Vec<(String, ObjectKind, &str)> {
    use ObjectKind as K;
    let mut named: Vec<(String, ObjectKind, &str)> = Vec::new();
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        named.push((
            format!("$.connection_profiles[{i}].name"),
            K::ConnectionProfile,
            &profile.name,
        ));
        for (j, alias) in profile.group_aliases.iter().enumerate() {
            let path = format!("$.connection_profiles[{i}].group_aliases[{j}].name");
            named.push((path, K::GroupAlias, &alias.name));
        }
    }
    for (i, policy) in config.group_policies.iter().enumerate() {
        named.push((
            format!("$.group_policies[{i}].name"),
            K::GroupPolicy,
            &policy.name,
        ));
    }
    for (i, pool) in config.ipv4_pools.iter().enumerate() {
        named.push((format!("$.ipv4_pools[{i}].name"), K::Ipv4Pool, &pool.name));
    }
    for (i, pool) in config.ipv6_pools.iter().enumerate() {
        named.push((format!("$.ipv6_pools[{i}].name"), K::Ipv6Pool, &pool.name));
    }
    for (i, trustpoint) in config.trustpoints.iter().enumerate() {
        named.push((
            format!("$.trustpoints[{i}].name"),
            K::Trustpoint,
            &trustpoint.name,
        ));
    }
    for (i, user) in config.local_users.iter().enumerate() {
        named.push((format!("$.local_users[{i}].name"), K::LocalUser, &user.name));
    }
    // Last, so a clash with a CA trustpoint is reported on the identity.
    let headend = &config.headend;
    named.extend([
        (
            "$.headend.access_interface".to_owned(),
            K::AccessInterface,
            headend.access_interface.as_str(),
        ),
        (
            "$.headend.identity.trustpoint".to_owned(),
            K::Trustpoint,
            headend.identity.trustpoint.as_str(),
        ),
    ]);
    named
}

/// What is wrong with `name` as the name of a `kind` (the rule above), if anything: the
/// manager checks each object's name with it when the object is saved.
pub fn object_name_problem(kind: ObjectKind, name: &str) -> Option<ProblemKind> {
    let mut found = Findings::default();
    check_name(&mut found, String::new(), kind, name);
    found.problems.into_iter().next().map(|p| p.kind)
}

/// What is wrong with `url` as a group URL (an absolute http(s) URL without user
/// information), if anything: the manager checks each profile's URLs with it when the
/// profile is saved.
pub fn group_url_problem(url: &str) -> Option<ProblemKind> {
    normalise_url(url)
        .err()
        .map(|reason| ProblemKind::InvalidGroupUrl {
            url: url.to_owned(),
            reason,
        })
}

fn check_syntax(config: &DeviceConfig, found: &mut Findings) {
    for (path, kind, name) in named_objects(config) {
        check_name(found, path, kind, name);
    }
}

fn check_name(found: &mut Findings, path: String, kind: ObjectKind, name: &str) {
    if name.is_empty() {
        found.push(path, ProblemKind::EmptyName { kind });
        return;
    }
    let length = name.chars().count();
    if length > MAX_NAME_CHARS {
        let (name, max) = (name.to_owned(), MAX_NAME_CHARS);
        found.push(
            path.clone(),
            ProblemKind::NameTooLong {
                kind,
                name,
                length,
                max,
            },
        );
    }
    if let Some(character) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        let name = name.to_owned();
        found.push(
            path,
            ProblemKind::NameHasForbiddenCharacter {
                kind,
                name,
                character,
            },
        );
    }
}

/// Reports every name after its first use within its namespace. IPv4 and IPv6 pools
/// share one namespace, as do CA trustpoints and the identity trustpoint; aliases are
/// checked separately (ignoring case) and the access interface has no peers.
fn check_duplicates(config: &DeviceConfig, found: &mut Findings) {
    let mut seen: HashSet<(ObjectKind, &str)> = HashSet::new();
    for (path, kind, name) in named_objects(config) {
        let namespace = match kind {
            ObjectKind::GroupAlias | ObjectKind::AccessInterface => continue,
            ObjectKind::Ipv4Pool | ObjectKind::Ipv6Pool => ObjectKind::AddressPool,
            other => other,
        };
        if !name.is_empty() && !seen.insert((namespace, name)) {
            let name = name.to_owned();
            found.push(
                path,
                ProblemKind::DuplicateName {
                    kind: namespace,
                    name,
                },
            );
        }
    }
}

/// Aliases are unique across all profiles ignoring case, and never another profile's name.
fn check_aliases(config: &DeviceConfig, found: &mut Findings) {
    let profiles = &config.connection_profiles;
    let profile_by_name: HashMap<String, &str> = profiles
        .iter()
        .map(|p| (p.name.to_lowercase(), p.name.as_str()))
        .collect();
    let mut owner: HashMap<String, &str> = HashMap::new();
    for (i, profile) in profiles.iter().enumerate() {
        for (j, alias) in profile.group_aliases.iter().enumerate() {
            if alias.name.is_empty() {
                continue;
            }
            let path = format!("$.connection_profiles[{i}].group_aliases[{j}].name");
            let key = alias.name.to_lowercase();
            match profile_by_name.get(&key) {
                Some(&other) if other != profile.name => {
                    let (alias, profile) = (alias.name.clone(), other.to_owned());
                    found.push(
                        path.clone(),
                        ProblemKind::GroupAliasNamesOtherProfile { alias, profile },
                    );
                }
                _ => {}
            }
            if let Some(first) = owner.get(&key) {
                let (alias, profile) = (alias.name.clone(), (*first).to_owned());
                found.push(path, ProblemKind::DuplicateGroupAlias { alias, profile });
            } else {
                owner.insert(key, profile.name.as_str());
            }
        }
    }
}

/// Group URLs are absolute http(s) URLs, unique across all profiles (scheme and host
/// compared ignoring case, a trailing `/` ignored).
fn check_group_urls(config: &DeviceConfig, found: &mut Findings) {
    let mut owner: HashMap<String, &str> = HashMap::new();
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        for (j, group_url) in profile.group_urls.iter().enumerate() {
            let path = format!("$.connection_profiles[{i}].group_urls[{j}].url");
            let url = group_url.url.clone();
            match normalise_url(&group_url.url) {
                Err(reason) => found.push(path, ProblemKind::InvalidGroupUrl { url, reason }),
                Ok(key) => {
                    if let Some(first) = owner.get(&key) {
                        let profile = (*first).to_owned();
                        found.push(path, ProblemKind::DuplicateGroupUrl { url, profile });
                    } else {
                        owner.insert(key, profile.name.as_str());
                    }
                }
            }
        }
    }
}

/// The comparison form of an absolute http(s) URL, or why it is not one.
fn normalise_url(url: &str) -> Result<String, &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace or control characters");
    }
    let scheme_end = url
        .find("://")
        .ok_or("it must start with https:// or http://")?;
    let (scheme, rest) = url.split_at(scheme_end);
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err("it must start with https:// or http://");
    }
    let rest = rest.get(3..).unwrap_or_default();
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(host_end);
    if authority.is_empty() || authority.starts_with(':') {
        return Err("it has no host");
    }
    if authority.contains('@') {
        return Err("it carries user information before the host");
    }
    let path = path.trim_end_matches('/');
    Ok(format!(
        "{scheme}://{}{path}",
        authority.to_ascii_lowercase()
    ))
}

fn check_references(config: &DeviceConfig, found: &mut Findings) {
    use ObjectKind as K;
    let policies: HashSet<&str> = config
        .group_policies
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    let v4: HashSet<&str> = config.ipv4_pools.iter().map(|p| p.name.as_str()).collect();
    let v6: HashSet<&str> = config.ipv6_pools.iter().map(|p| p.name.as_str()).collect();
    let trustpoints: HashSet<&str> = config.trustpoints.iter().map(|t| t.name.as_str()).collect();
    let mut refer = |path: String, kind: ObjectKind, known: &HashSet<&str>, name: &str| {
        if !known.contains(name) {
            found.push(
                path,
                ProblemKind::UnknownReference {
                    kind,
                    name: name.to_owned(),
                },
            );
        }
    };
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        let at = format!("$.connection_profiles[{i}]");
        refer(
            format!("{at}.group_policy"),
            K::GroupPolicy,
            &policies,
            &profile.group_policy,
        );
        for (j, pool) in profile.ipv4_pools.iter().enumerate() {
            refer(format!("{at}.ipv4_pools[{j}]"), K::Ipv4Pool, &v4, pool);
        }
        for (j, pool) in profile.ipv6_pools.iter().enumerate() {
            refer(format!("{at}.ipv6_pools[{j}]"), K::Ipv6Pool, &v6, pool);
        }
        for (j, trustpoint) in profile.trustpoints.iter().enumerate() {
            refer(
                format!("{at}.trustpoints[{j}]"),
                K::Trustpoint,
                &trustpoints,
                trustpoint,
            );
        }
    }
    for (i, policy) in config.group_policies.iter().enumerate() {
        for (j, pool) in policy.ipv4_pools.iter().enumerate() {
            refer(
                format!("$.group_policies[{i}].ipv4_pools[{j}]"),
                K::Ipv4Pool,
                &v4,
                pool,
            );
        }
    }
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        let policy_pools = config
            .group_policy(&profile.group_policy)
            .is_some_and(|g| !g.ipv4_pools.is_empty());
        if profile.ipv4_pools.is_empty() && profile.ipv6_pools.is_empty() && !policy_pools {
            let group_policy = profile.group_policy.clone();
            let path = format!("$.connection_profiles[{i}].ipv4_pools");
            found.push(path, ProblemKind::NoAddressPool { group_policy });
        }
    }
}

#[cfg(test)]
mod object_name_tests {
    use super::{ObjectKind, ProblemKind, object_name_problem};

    #[test]
    fn an_object_name_is_one_cli_token_of_at_most_64_characters() {
        assert_eq!(object_name_problem(ObjectKind::Ipv4Pool, "POOL-1"), None);
        assert!(matches!(
            object_name_problem(ObjectKind::Ipv4Pool, ""),
            Some(ProblemKind::EmptyName { .. })
        ));
        assert!(matches!(
            object_name_problem(ObjectKind::GroupPolicy, "a b"),
            Some(ProblemKind::NameHasForbiddenCharacter { character: ' ', .. })
        ));
        assert!(matches!(
            object_name_problem(ObjectKind::LocalUser, &"x".repeat(65)),
            Some(ProblemKind::NameTooLong { length: 65, .. })
        ));
    }
}

#[cfg(test)]
mod group_url_tests {
    use super::{ProblemKind, group_url_problem};

    #[test]
    fn a_group_url_is_an_absolute_http_url_without_user_information() {
        assert_eq!(group_url_problem("https://vpn.example.com/eng"), None);
        for url in [
            "vpn.example.com/eng",
            "ftp://vpn.example.com",
            "https://u@vpn",
        ] {
            assert!(
                matches!(
                    group_url_problem(url),
                    Some(ProblemKind::InvalidGroupUrl { .. })
                ),
                "{url}"
            );
        }
    }
}
