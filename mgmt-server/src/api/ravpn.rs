//! `policy/ravpns` and `policy/ravpns/{id}/connectionprofiles`: FMC JSON for the RA VPN
//! policy (Access Interfaces settings, identity certificate, target devices) and its
//! connection profiles with every AAA/MCA field. Our extensions:
//! `certificateUsernameSettings.usernameFromCertificateSource` (`FIRST_CERTIFICATE` |
//! `SECOND_CERTIFICATE`), `trustpoints` (the CA cert enrollments client certificates
//! of the profile must chain to), `targetDevices` and `accessInterfaceName`.

use serde_json::{Value, json};
use uuid::Uuid;
use vpn_core::config::{
    AaaSettings, AuthenticationMethod, AuthenticationServer, CertificateField, GroupAlias,
    GroupUrl, UsernameMapping, UsernameSource,
};

use super::envelope::reference;
use super::error::ApiError;
use super::fields::Fields;
use super::objects::{common, merge};
use super::resource::{Resource, Scope, crud};
use super::{ApiContext, Caller, Routes};
use crate::db::policies::{RaVpnPolicy, RaVpnPolicyInput};
use crate::db::profiles::{ConnectionProfile, ConnectionProfileInput};
use crate::db::{Listed, Page};
use crate::ravpn::{policies, profiles};

pub(super) fn routes(routes: Routes) -> Routes {
    let routes = crud::<Policies>(routes, "config:/policy/ravpns", "ravpn");
    crud::<Profiles>(
        routes,
        "config:/policy/ravpns/{parent}/connectionprofiles",
        "ravpn",
    )
}

// ---------------------------------------------------------------------------------
// Policies

pub(super) struct Policies;

fn policy_input(body: &Value) -> Result<RaVpnPolicyInput, ApiError> {
    let mut f = Fields::new(body)?;
    let mut input = RaVpnPolicyInput::new(f.required_str("name"));
    input.description = f.string_or("description", "");
    input.configure_ssl = f.bool_or("configureSSL", true);
    // The rules (IPsec, the interface name, port 0) are the policy service's.
    input.configure_ipsec = f.bool_or("configureIpsec", false);
    input.access_interface = f.string_or("accessInterfaceSettings.accessInterfaceName", "outside");
    input.web_port = port(&mut f, "accessInterfaceSettings.webPort");
    input.dtls_port = port(&mut f, "accessInterfaceSettings.dtlsPort");
    let dtls_rows: Vec<bool> = f
        .get("accessInterfaceSettings.interfaceSettings")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|r| r.get("enableDTLS").and_then(Value::as_bool).unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    input.dtls_enabled = f.bool_or(
        "accessInterfaceSettings.enableDTLS",
        dtls_rows.iter().all(|on| *on),
    );
    input.allow_connection_profile_selection = f.bool_or(
        "accessInterfaceSettings.allowConnectionProfileSelection",
        true,
    );
    input.ssl_identity_certificate_id = f.reference("accessInterfaceSettings.sslIdCertificate");
    input.bypass_access_control = f.bool_or(
        "accessInterfaceSettings.bypassACPolicyForDecryptTraffic",
        false,
    );
    input.target_device_ids = f.references("targetDevices");
    f.finish()?;
    Ok(input)
}

/// A port number (0 included: whether it may be used is the service's rule); 443 when
/// absent.
fn port(f: &mut Fields<'_>, path: &str) -> u16 {
    u16::try_from(f.number_or(path, 0, u64::from(u16::MAX), 443)).unwrap_or(443)
}

impl Resource for Policies {
    type Row = RaVpnPolicy;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(policies::list(&context.pool, scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(policies::get(&context.pool, scope.domain, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = policy_input(body)?;
        Ok(policies::create(&context.pool, &caller.actor, scope.domain, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = policy_input(body)?;
        Ok(policies::update(
            &context.pool,
            &caller.actor,
            scope.domain,
            id,
            expected,
            &input,
        )
        .await?)
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        Ok(policies::delete(&context.pool, &caller.actor, scope.domain, id, expected).await?)
    }
    fn to_json(p: &Self::Row, self_url: &str) -> Value {
        let body = common(p.id, &p.name, "RAVpn", &p.description, self_url);
        let extra = json!({
            "configureSSL": p.configure_ssl,
            "configureIpsec": p.configure_ipsec,
            "accessInterfaceSettings": {
                "accessInterfaceName": p.access_interface,
                "interfaceSettings": [{ "enableSSL": p.configure_ssl, "enableDTLS": p.dtls_enabled, "enableIPSecIkev2": p.configure_ipsec }],
                "enableDTLS": p.dtls_enabled,
                "allowConnectionProfileSelection": p.allow_connection_profile_selection,
                "webPort": p.web_port,
                "dtlsPort": p.dtls_port,
                "sslIdCertificate": p.ssl_identity_certificate.as_ref().map(|r| reference(r.id, "CertEnrollment", &r.name)),
                "bypassACPolicyForDecryptTraffic": p.bypass_access_control,
            },
            "targetDevices": p.target_devices.iter().map(|r| reference(r.id, "Device", &r.name)).collect::<Vec<_>>(),
            "connectionProfiles": { "links": { "self": format!("{self_url}/connectionprofiles") } },
        });
        merge(body, extra)
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

// ---------------------------------------------------------------------------------
// Connection profiles

pub(super) struct Profiles;

const METHODS: &[(&str, AuthenticationMethod)] = &[
    ("AAA_ONLY", AuthenticationMethod::AaaOnly),
    (
        "CLIENT_CERTIFICATE_ONLY",
        AuthenticationMethod::ClientCertificateOnly,
    ),
    (
        "AAA_AND_CLIENT_CERTIFICATE",
        AuthenticationMethod::AaaAndClientCertificate,
    ),
];

const SOURCES: &[(&str, UsernameSource)] = &[
    ("FIRST_CERTIFICATE", UsernameSource::FirstCertificate),
    ("SECOND_CERTIFICATE", UsernameSource::SecondCertificate),
];

/// FMC's certificate field names (`CN_COMMMON_NAME` has three M's in FMC).
const CERT_FIELDS: &[(&str, CertificateField)] = &[
    ("C_COUNTRY", CertificateField::C),
    ("CN_COMMMON_NAME", CertificateField::Cn),
    ("DNQ_DN_QUALIFIER", CertificateField::Dnq),
    ("EA_EMAIL_ADDRESS", CertificateField::Ea),
    ("GENQ_GENERATIONAL_QUALIFIER", CertificateField::Genq),
    ("GN_GIVEN_NAME", CertificateField::Gn),
    ("I_INITIAL", CertificateField::I),
    ("L_LOCALITY", CertificateField::L),
    ("N_NAME", CertificateField::N),
    ("O_ORGANISATION", CertificateField::O),
    ("OU_ORGANISATIONAL_UNIT", CertificateField::Ou),
    ("SER_SERIAL_NUMBER", CertificateField::Ser),
    ("SN_SURNAME", CertificateField::Sn),
    ("SP_STATE_PROVINCE", CertificateField::Sp),
    ("T_TITLE", CertificateField::T),
    ("UID_USER_ID", CertificateField::Uid),
    ("UPN_USER_PRINCIPAL_NAME", CertificateField::Upn),
];

fn field_name(field: CertificateField) -> &'static str {
    CERT_FIELDS
        .iter()
        .find(|(_, f)| *f == field)
        .map_or("CN_COMMMON_NAME", |(n, _)| *n)
}

fn profile_input(body: &Value) -> Result<ConnectionProfileInput, ApiError> {
    let mut f = Fields::new(body)?;
    let name = f.required_str("name");
    let description = f.string_or("description", "");
    let group_policy_id = f.required_reference("groupPolicy");
    let ipv4_pool_ids = f.references("ipv4AddressPool");
    let ipv6_pool_ids = f.references("ipv6AddressPool");
    let trustpoint_ids = f.references("trustpoints");
    // Our extension (MCA slot binding): absent or empty, a slot accepts every trustpoint.
    let machine_trustpoint_ids = f.references("machineCertificateTrustpoints");
    let user_trustpoint_ids = f.references("userCertificateTrustpoints");
    let method = f.choice(
        "authenticationMethod",
        METHODS,
        AuthenticationMethod::AaaOnly,
    );
    if f.get("authenticationMethod").is_none() {
        f.problem("authenticationMethod: is required (AAA_ONLY, CLIENT_CERTIFICATE_ONLY or AAA_AND_CLIENT_CERTIFICATE)");
    }
    let mut aaa = AaaSettings::new(method);
    aaa.authentication_server = match f.get("primaryAuthenticationServer") {
        Some(server) if !f.bool_or("useLocalAsPrimaryAuthServer", false) => {
            let name = server
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            // A blank name is the profile service's rule.
            match server.get("type").and_then(Value::as_str) {
                Some("RadiusServerGroup") => AuthenticationServer::Radius { server_group: name },
                Some("Realm") => AuthenticationServer::Ldap { realm: name },
                _ => {
                    f.problem("primaryAuthenticationServer: must be {\"name\", \"type\": \"RadiusServerGroup\" | \"Realm\"}, or set useLocalAsPrimaryAuthServer");
                    AuthenticationServer::Local
                }
            }
        }
        _ => AuthenticationServer::Local,
    };
    aaa.fallback_to_local = f.bool_or("enablePrimaryAuthFallbackToLocal", false);
    aaa.enable_multiple_certificate_authentication =
        f.bool_or("enableMultipleCertificateAuthentication", false);
    let s = "certificateUsernameSettings";
    aaa.username_from_certificate_source = f.choice(
        &format!("{s}.usernameFromCertificateSource"),
        SOURCES,
        UsernameSource::SecondCertificate,
    );
    aaa.username_mapping = if f.bool_or(&format!("{s}.mapEntireDNAsUsername"), false) {
        UsernameMapping::EntireDn
    } else {
        let primary = f.choice(
            &format!("{s}.mapPrimaryField"),
            CERT_FIELDS,
            CertificateField::Cn,
        );
        let secondary = match f.optional_str(&format!("{s}.mapSecondaryField")).as_deref() {
            None => Some(CertificateField::Ou),
            Some(text) if text.eq_ignore_ascii_case("NONE") => None,
            Some(_) => Some(f.choice(
                &format!("{s}.mapSecondaryField"),
                CERT_FIELDS,
                CertificateField::Ou,
            )),
        };
        UsernameMapping::SpecificField { primary, secondary }
    };
    aaa.prefill_username = f.bool_or(&format!("{s}.prefillUsernameFromCertificate"), false);
    aaa.hide_username = f.bool_or(&format!("{s}.hideUsername"), false);
    aaa.strip_realm = f.bool_or("stripRealmFromUsername", false);
    aaa.strip_group = f.bool_or("stripGroupFromUsername", false);

    // The AAA tab's rules, pools, names, aliases and URLs are the profile service's.
    let group_aliases = list_of(&mut f, "groupAlias", "aliasName")
        .into_iter()
        .map(|(name, enabled)| GroupAlias { name, enabled })
        .collect();
    let group_urls = list_of(&mut f, "groupUrl", "aliasUrl")
        .into_iter()
        .map(|(url, enabled)| GroupUrl { url, enabled })
        .collect();
    f.finish()?;
    Ok(ConnectionProfileInput {
        name,
        description,
        group_policy_id,
        ipv4_pool_ids,
        ipv6_pool_ids,
        trustpoint_ids,
        machine_trustpoint_ids,
        user_trustpoint_ids,
        aaa,
        group_aliases,
        group_urls,
    })
}

/// `[{<key>: "...", "enabled": bool}]`.
fn list_of(f: &mut Fields<'_>, path: &str, key: &str) -> Vec<(String, bool)> {
    let Some(items) = f.get(path) else {
        return Vec::new();
    };
    let Some(items) = items.as_array() else {
        f.problem(format!("{path}: must be a list"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.get(key).and_then(Value::as_str) {
            Some(text) => out.push((
                text.trim().to_owned(),
                item.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            )),
            None => f.problem(format!("{path}[{i}].{key}: must be a string")),
        }
    }
    out
}

fn parent(scope: Scope) -> Result<Uuid, ApiError> {
    scope
        .parent
        .ok_or_else(|| ApiError::not_found("connection profiles live under an RA VPN policy"))
}

impl Resource for Profiles {
    type Row = ConnectionProfile;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(profiles::list(&context.pool, scope.domain, parent(scope)?, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(profiles::get(&context.pool, scope.domain, parent(scope)?, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = profile_input(body)?;
        Ok(profiles::create(
            &context.pool,
            &caller.actor,
            scope.domain,
            parent(scope)?,
            &input,
        )
        .await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = profile_input(body)?;
        Ok(profiles::update(
            &context.pool,
            &caller.actor,
            scope.domain,
            parent(scope)?,
            id,
            expected,
            &input,
        )
        .await?)
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        Ok(profiles::delete(
            &context.pool,
            &caller.actor,
            scope.domain,
            parent(scope)?,
            id,
            expected,
        )
        .await?)
    }
    fn to_json(p: &Self::Row, self_url: &str) -> Value {
        let aaa = &p.aaa;
        let method = METHODS
            .iter()
            .find(|(_, m)| *m == aaa.authentication_method)
            .map_or("AAA_ONLY", |(n, _)| *n);
        let source = SOURCES
            .iter()
            .find(|(_, s)| *s == aaa.username_from_certificate_source)
            .map_or("SECOND_CERTIFICATE", |(n, _)| *n);
        let (entire_dn, primary, secondary) = match aaa.username_mapping {
            UsernameMapping::EntireDn => (true, "CN_COMMMON_NAME", "OU_ORGANISATIONAL_UNIT"),
            UsernameMapping::SpecificField { primary, secondary } => (
                false,
                field_name(primary),
                secondary.map_or("NONE", field_name),
            ),
        };
        let (use_local, server) = match &aaa.authentication_server {
            AuthenticationServer::Local => (true, Value::Null),
            AuthenticationServer::Radius { server_group } => (
                false,
                json!({ "name": server_group, "type": "RadiusServerGroup" }),
            ),
            AuthenticationServer::Ldap { realm } => {
                (false, json!({ "name": realm, "type": "Realm" }))
            }
        };
        let body = common(
            p.id,
            &p.name,
            "RaVpnConnectionProfile",
            &p.description,
            self_url,
        );
        let extra = json!({
            "groupPolicy": reference(p.group_policy.id, "GroupPolicy", &p.group_policy.name),
            "ipv4AddressPool": p.ipv4_pools.iter().map(|r| reference(r.id, "IPv4AddressPool", &r.name)).collect::<Vec<_>>(),
            "ipv6AddressPool": p.ipv6_pools.iter().map(|r| reference(r.id, "IPv6AddressPool", &r.name)).collect::<Vec<_>>(),
            "trustpoints": p.trustpoints.iter().map(|r| reference(r.id, "CertEnrollment", &r.name)).collect::<Vec<_>>(),
            "machineCertificateTrustpoints": p.machine_trustpoints.iter().map(|r| reference(r.id, "CertEnrollment", &r.name)).collect::<Vec<_>>(),
            "userCertificateTrustpoints": p.user_trustpoints.iter().map(|r| reference(r.id, "CertEnrollment", &r.name)).collect::<Vec<_>>(),
            "warnings": profiles::profile_warnings(p).iter().map(|w| json!({ "field": w.field.fmc_path(), "description": w.message })).collect::<Vec<_>>(),
            "authenticationMethod": method,
            "useLocalAsPrimaryAuthServer": use_local,
            "primaryAuthenticationServer": server,
            "enablePrimaryAuthFallbackToLocal": aaa.fallback_to_local,
            "enableMultipleCertificateAuthentication": aaa.enable_multiple_certificate_authentication,
            "certificateUsernameSettings": {
                "usernameFromCertificateSource": source,
                "mapEntireDNAsUsername": entire_dn,
                "mapPrimaryField": primary,
                "mapSecondaryField": secondary,
                "prefillUsernameFromCertificate": aaa.prefill_username,
                "hideUsername": aaa.hide_username,
            },
            "stripRealmFromUsername": aaa.strip_realm,
            "stripGroupFromUsername": aaa.strip_group,
            "groupAlias": p.group_aliases.iter().map(|a| json!({ "aliasName": a.name, "enabled": a.enabled })).collect::<Vec<_>>(),
            "groupUrl": p.group_urls.iter().map(|u| json!({ "aliasUrl": u.url, "enabled": u.enabled })).collect::<Vec<_>>(),
        });
        merge(body, extra)
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}
