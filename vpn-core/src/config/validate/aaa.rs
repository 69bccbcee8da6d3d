//! The AAA tab of each connection profile, and the trustpoints it relies on.

use super::{Findings, ProblemKind};
use crate::config::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, ConnectionProfile, DeviceConfig,
};

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        let at = format!("$.connection_profiles[{i}]");
        for (field, kind) in aaa_problems(&profile.aaa, profile.trustpoints.len()) {
            found.push(format!("{at}.{field}"), kind);
        }
        check_slot_binding(profile, &at, found);
        if !profile.aaa.uses_certificates() {
            continue;
        }
        for (j, name) in profile.trustpoints.iter().enumerate() {
            let not_for_clients = config
                .trustpoint(name)
                .is_some_and(|t| !t.validation_usage.ssl_client);
            if not_for_clients {
                let trustpoint = name.clone();
                let path = format!("{at}.trustpoints[{j}]");
                found.push(path, ProblemKind::TrustpointNotForSslClients { trustpoint });
            }
        }
    }
}

/// MCA slot binding: each trustpoint a slot names must be one of the profile's.
fn check_slot_binding(profile: &ConnectionProfile, at: &str, found: &mut Findings) {
    let slots = [
        ("machine_trustpoints", &profile.machine_trustpoints),
        ("user_trustpoints", &profile.user_trustpoints),
    ];
    for (field, names) in slots {
        for (j, name) in names.iter().enumerate() {
            if !profile.trustpoints.contains(name) {
                found.push(
                    format!("{at}.{field}[{j}]"),
                    ProblemKind::SlotTrustpointNotInProfile {
                        profile: profile.name.clone(),
                        field,
                        trustpoint: name.clone(),
                    },
                );
            }
        }
    }
}

/// The AAA tab's own rules for one connection profile with `trustpoints` CA
/// trustpoints, each broken rule with its path below the profile (e.g.
/// `aaa.hide_username`, `trustpoints`): the manager checks a profile with them when it
/// is saved. What the trustpoints are for is the document's concern.
pub fn aaa_problems(aaa: &AaaSettings, trustpoints: usize) -> Vec<(&'static str, ProblemKind)> {
    let mut found = Vec::new();
    let method = aaa.authentication_method;
    if aaa.enable_multiple_certificate_authentication && !method.uses_certificates() {
        found.push((
            "aaa.enable_multiple_certificate_authentication",
            ProblemKind::McaWithoutCertificates { method },
        ));
    }
    let certificate_and_aaa = method == AuthenticationMethod::AaaAndClientCertificate;
    if aaa.prefill_username && !certificate_and_aaa {
        found.push((
            "aaa.prefill_username",
            ProblemKind::PrefillNeedsCertificateAndAaa { method },
        ));
    }
    if aaa.hide_username && !certificate_and_aaa {
        found.push((
            "aaa.hide_username",
            ProblemKind::HideNeedsCertificateAndAaa { method },
        ));
    }
    if aaa.hide_username && !aaa.prefill_username {
        found.push(("aaa.hide_username", ProblemKind::HideWithoutPrefill));
    }
    if method.uses_certificates() && trustpoints == 0 {
        found.push((
            "trustpoints",
            ProblemKind::CertificateMethodWithoutTrustpoint { method },
        ));
    }
    found
}

/// RADIUS and LDAP are rendered but not yet run by the sensor: without fallback to
/// LOCAL, every AAA login on such a profile fails.
pub(super) fn warn(config: &DeviceConfig, found: &mut Findings) {
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        let aaa = &profile.aaa;
        let server = match &aaa.authentication_server {
            AuthenticationServer::Local => continue,
            AuthenticationServer::Radius { server_group } => format!("RADIUS {server_group:?}"),
            AuthenticationServer::Ldap { realm } => format!("LDAP {realm:?}"),
        };
        if aaa.uses_aaa() && !aaa.fallback_to_local {
            let path = format!("$.connection_profiles[{i}].aaa.authentication_server");
            found.push(path, ProblemKind::ServerWithoutLocalFallback { server });
        }
    }
}

#[cfg(test)]
mod profile_rule_tests {
    use super::aaa_problems;
    use crate::config::{AaaSettings, AuthenticationMethod, ProblemKind};

    #[test]
    fn one_profiles_aaa_tab_is_checked_alone_with_the_documents_rules() {
        let mut aaa = AaaSettings::new(AuthenticationMethod::AaaOnly);
        aaa.enable_multiple_certificate_authentication = true;
        aaa.hide_username = true;
        let paths: Vec<&str> = aaa_problems(&aaa, 0).iter().map(|(p, _)| *p).collect();
        assert_eq!(
            paths,
            [
                "aaa.enable_multiple_certificate_authentication",
                "aaa.hide_username",
                "aaa.hide_username"
            ]
        );
        let certificate = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
        assert!(matches!(
            aaa_problems(&certificate, 0).as_slice(),
            [(
                "trustpoints",
                ProblemKind::CertificateMethodWithoutTrustpoint { .. }
            )]
        ));
        assert!(aaa_problems(&certificate, 1).is_empty());
    }
}
