//! The AAA tab of each connection profile, and the trustpoints it relies on.

use super::{Findings, ProblemKind};
use crate::config::{AuthenticationMethod, AuthenticationServer, ConnectionProfile, DeviceConfig};

pub(super) fn check(config: &DeviceConfig, found: &mut Findings) {
    for (i, profile) in config.connection_profiles.iter().enumerate() {
        let at = format!("$.connection_profiles[{i}]");
        let aaa = &profile.aaa;
        let method = aaa.authentication_method;
        if aaa.enable_multiple_certificate_authentication && !method.uses_certificates() {
            let path = format!("{at}.aaa.enable_multiple_certificate_authentication");
            found.push(path, ProblemKind::McaWithoutCertificates { method });
        }
        let certificate_and_aaa = method == AuthenticationMethod::AaaAndClientCertificate;
        if aaa.prefill_username && !certificate_and_aaa {
            let path = format!("{at}.aaa.prefill_username");
            found.push(path, ProblemKind::PrefillNeedsCertificateAndAaa { method });
        }
        if aaa.hide_username && !certificate_and_aaa {
            let path = format!("{at}.aaa.hide_username");
            found.push(path, ProblemKind::HideNeedsCertificateAndAaa { method });
        }
        if aaa.hide_username && !aaa.prefill_username {
            found.push(
                format!("{at}.aaa.hide_username"),
                ProblemKind::HideWithoutPrefill,
            );
        }
        check_slot_binding(profile, &at, found);
        if !method.uses_certificates() {
            continue;
        }
        if profile.trustpoints.is_empty() {
            let path = format!("{at}.trustpoints");
            found.push(
                path,
                ProblemKind::CertificateMethodWithoutTrustpoint { method },
            );
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
