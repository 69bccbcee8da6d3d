//! `object/ipv4addresspools`, `object/ipv6addresspools`, `object/grouppolicies`,
//! `object/certenrollments`: FMC JSON in and out, checked field by field.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv6Net};
use serde_json::{Value, json};
use uuid::Uuid;
use vpn_core::config::{
    GroupPolicy as CoreGroupPolicy, PrivateKeyPem, Revocation, SplitTunnelPolicy, ValidationUsage,
};
use vpn_core::pki::{CertificateInfo, pem};

use super::envelope::reference;
use super::error::ApiError;
use super::fields::Fields;
use super::resource::{Resource, Scope, crud};
use super::{ApiContext, Caller, Routes};
use crate::db::cert_enrollments::{
    CaOnlySettings, CertEnrollment, CertEnrollmentInput, EnrollmentContent, EnrollmentInput,
    EnrollmentType,
};
use crate::db::group_policies::{GroupPolicy, GroupPolicyInput};
use crate::db::pool_overrides::{
    Ipv4PoolOverride, Ipv4PoolOverrideInput, Ipv6PoolOverride, Ipv6PoolOverrideInput,
};
use crate::db::pools::{
    Ipv4AddressPool, Ipv4AddressPoolInput, Ipv6AddressPool, Ipv6AddressPoolInput,
};
use crate::db::{GLOBAL_DOMAIN_ID, Listed, Page};
use crate::objects;

pub(super) fn routes(routes: Routes) -> Routes {
    let routes = crud::<Ipv4Pools>(routes, "config:/object/ipv4addresspools", "objects");
    let routes = crud::<Ipv6Pools>(routes, "config:/object/ipv6addresspools", "objects");
    let routes = crud::<Ipv4PoolOverrides>(
        routes,
        "config:/object/ipv4addresspools/{parent}/overrides",
        "objects",
    );
    let routes = crud::<Ipv6PoolOverrides>(
        routes,
        "config:/object/ipv6addresspools/{parent}/overrides",
        "objects",
    );
    let routes = crud::<GroupPolicies>(routes, "config:/object/grouppolicies", "objects");
    crud::<CertEnrollments>(routes, "config:/object/certenrollments", "objects")
}

/// `links` and `metadata` every object carries.
pub(super) fn common(id: Uuid, name: &str, kind: &str, description: &str, self_url: &str) -> Value {
    json!({
        "id": id.to_string(),
        "name": name,
        "type": kind,
        "description": description,
        "links": { "self": self_url },
        "metadata": { "domain": { "id": GLOBAL_DOMAIN_ID.to_string(), "name": "Global", "type": "Domain" } }
    })
}

/// `base` with the fields of `extra` added (FMC JSON: common fields + the object's own).
pub(super) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

// ---------------------------------------------------------------------------------
// IPv4 pools

pub(super) struct Ipv4Pools;

fn ipv4_input(body: &Value) -> Result<Ipv4AddressPoolInput, ApiError> {
    let mut f = Fields::new(body)?;
    let name = f.required_str("name");
    let description = f.string_or("description", "");
    let overridable = f.bool_or("overridable", false);
    let (start, end, mask) = ipv4_range(&mut f);
    f.finish()?;
    Ok(Ipv4AddressPoolInput {
        name,
        description,
        start,
        end,
        mask,
        overridable,
    })
}

/// `ipAddressRange` ("FIRST-LAST", or one address) and `mask` of a pool or override, as
/// written; the rules of a range are the pool service's.
fn ipv4_range(f: &mut Fields<'_>) -> (Ipv4Addr, Ipv4Addr, Ipv4Addr) {
    let range = f.required_str("ipAddressRange");
    let mask: Option<Ipv4Addr> = f.parsed("mask", "an IPv4 netmask");
    if mask.is_none() && f.get("mask").is_none() {
        f.problem("mask: is required");
    }
    let (start, end) = match range.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<Ipv4Addr>().ok(),
            b.trim().parse::<Ipv4Addr>().ok(),
        ),
        None => {
            let single = range.trim().parse::<Ipv4Addr>().ok();
            (single, single)
        }
    };
    let unspecified = Ipv4Addr::UNSPECIFIED;
    match (start, end) {
        (Some(start), Some(end)) => (start, end, mask.unwrap_or(unspecified)),
        _ => {
            if !range.is_empty() {
                f.problem(format!(
                    "ipAddressRange: {range:?} is not FIRST-LAST, e.g. 10.0.0.10-10.0.0.20"
                ));
            }
            (unspecified, unspecified, mask.unwrap_or(unspecified))
        }
    }
}

impl Resource for Ipv4Pools {
    type Row = Ipv4AddressPool;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(objects::pools::list_ipv4(&context.pool, scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(objects::pools::get_ipv4(&context.pool, scope.domain, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = ipv4_input(body)?;
        Ok(objects::pools::create_ipv4(&context.pool, &caller.actor, scope.domain, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = ipv4_input(body)?;
        let (pool, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::update_ipv4(pool, actor, scope.domain, id, expected, &input).await?)
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        let (pool, actor) = (&context.pool, &caller.actor);
        objects::pools::delete_ipv4(pool, actor, scope.domain, id, expected).await?;
        Ok(())
    }
    fn to_json(row: &Self::Row, self_url: &str) -> Value {
        merge(
            common(
                row.id,
                &row.name,
                "IPv4AddressPool",
                &row.description,
                self_url,
            ),
            json!({
                "ipAddressRange": format!("{}-{}", row.start, row.end),
                "mask": row.mask.to_string(),
                "overridable": row.overridable,
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

// ---------------------------------------------------------------------------------
// Per-device pool overrides: `object/ipv4addresspools/{id}/overrides` as on FMC, each
// `{ipAddressRange, mask, overrides: {parent: {id, type}, target: {id, type: "Device"}}}`.
// FMC changes overrides through a PUT of the parent object; here each override is also
// an object of its own (POST, PUT, DELETE under the pool).

/// The device an override is for: `overrides.target.id` (FMC) or `target.id`.
fn override_target(f: &mut Fields<'_>) -> Uuid {
    if f.get("overrides.target").is_some() {
        f.required_reference("overrides.target")
    } else {
        f.required_reference("target")
    }
}

fn parent_pool(scope: Scope) -> Result<Uuid, ApiError> {
    scope
        .parent
        .ok_or_else(|| ApiError::not_found("the override's pool is missing from the path"))
}

fn override_json(
    row_id: Uuid,
    pool: &crate::db::Reference,
    pool_type: &str,
    device: &crate::db::Reference,
    self_url: &str,
    fields: Value,
) -> Value {
    merge(
        common(row_id, &pool.name, pool_type, "", self_url),
        merge(
            json!({
                "overrides": {
                    "parent": reference(pool.id, pool_type, &pool.name),
                    "target": reference(device.id, "Device", &device.name),
                },
            }),
            fields,
        ),
    )
}

pub(super) struct Ipv4PoolOverrides;

fn ipv4_override_input(body: &Value) -> Result<Ipv4PoolOverrideInput, ApiError> {
    let mut f = Fields::new(body)?;
    let device_id = override_target(&mut f);
    let (start, end, mask) = ipv4_range(&mut f);
    f.finish()?;
    Ok(Ipv4PoolOverrideInput {
        device_id,
        start,
        end,
        mask,
    })
}

impl Resource for Ipv4PoolOverrides {
    type Row = Ipv4PoolOverride;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        let pool = parent_pool(scope)?;
        Ok(objects::pools::list_ipv4_overrides(&context.pool, scope.domain, pool, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        Ok(objects::pools::get_ipv4_override(&context.pool, scope.domain, pool, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        let input = ipv4_override_input(body)?;
        let (db, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::create_ipv4_override(db, actor, scope.domain, pool, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        let input = ipv4_override_input(body)?;
        let (db, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::update_ipv4_override(
            db,
            actor,
            scope.domain,
            pool,
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
        let pool = parent_pool(scope)?;
        let (db, actor) = (&context.pool, &caller.actor);
        objects::pools::delete_ipv4_override(db, actor, scope.domain, pool, id, expected).await?;
        Ok(())
    }
    fn to_json(row: &Self::Row, self_url: &str) -> Value {
        override_json(
            row.id,
            &row.pool,
            "IPv4AddressPool",
            &row.device,
            self_url,
            json!({
                "ipAddressRange": format!("{}-{}", row.start, row.end),
                "mask": row.mask.to_string(),
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

pub(super) struct Ipv6PoolOverrides;

fn ipv6_override_input(body: &Value) -> Result<Ipv6PoolOverrideInput, ApiError> {
    let mut f = Fields::new(body)?;
    let device_id = override_target(&mut f);
    let (net, count) = ipv6_start(&mut f);
    f.finish()?;
    Ok(Ipv6PoolOverrideInput {
        device_id,
        start: net.addr(),
        prefix_length: net.prefix_len(),
        number_of_addresses: count,
    })
}

impl Resource for Ipv6PoolOverrides {
    type Row = Ipv6PoolOverride;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        let pool = parent_pool(scope)?;
        Ok(objects::pools::list_ipv6_overrides(&context.pool, scope.domain, pool, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        Ok(objects::pools::get_ipv6_override(&context.pool, scope.domain, pool, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        let input = ipv6_override_input(body)?;
        let (db, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::create_ipv6_override(db, actor, scope.domain, pool, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let pool = parent_pool(scope)?;
        let input = ipv6_override_input(body)?;
        let (db, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::update_ipv6_override(
            db,
            actor,
            scope.domain,
            pool,
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
        let pool = parent_pool(scope)?;
        let (db, actor) = (&context.pool, &caller.actor);
        objects::pools::delete_ipv6_override(db, actor, scope.domain, pool, id, expected).await?;
        Ok(())
    }
    fn to_json(row: &Self::Row, self_url: &str) -> Value {
        override_json(
            row.id,
            &row.pool,
            "IPv6AddressPool",
            &row.device,
            self_url,
            json!({
                "ipv6StartAddress": format!("{}/{}", row.start, row.prefix_length),
                "numberOfAddresses": row.number_of_addresses,
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

// ---------------------------------------------------------------------------------
// IPv6 pools

pub(super) struct Ipv6Pools;

fn ipv6_input(body: &Value) -> Result<Ipv6AddressPoolInput, ApiError> {
    let mut f = Fields::new(body)?;
    let name = f.required_str("name");
    let description = f.string_or("description", "");
    let overridable = f.bool_or("overridable", false);
    let (net, count) = ipv6_start(&mut f);
    f.finish()?;
    Ok(Ipv6AddressPoolInput {
        name,
        description,
        start: net.addr(),
        prefix_length: net.prefix_len(),
        number_of_addresses: count,
        overridable,
    })
}

/// `ipv6StartAddress` ("ADDRESS/PREFIX") and `numberOfAddresses` of a pool or override.
fn ipv6_start(f: &mut Fields<'_>) -> (Ipv6Net, u32) {
    let start = f.required_str("ipv6StartAddress");
    let count = f.number("numberOfAddresses", 0, u64::from(u32::MAX));
    if f.get("numberOfAddresses").is_none() {
        f.problem("numberOfAddresses: is required");
    }
    let net = if start.is_empty() {
        None
    } else {
        match start.parse::<Ipv6Net>() {
            Ok(net) => Some(net),
            Err(_) => {
                f.problem(format!(
                    "ipv6StartAddress: {start:?} is not ADDRESS/PREFIX, e.g. 2001:db8::1/64"
                ));
                None
            }
        }
    };
    let net = net.unwrap_or_else(|| Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 64).unwrap_or_default());
    (net, u32::try_from(count.unwrap_or(1)).unwrap_or(u32::MAX))
}

impl Resource for Ipv6Pools {
    type Row = Ipv6AddressPool;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(objects::pools::list_ipv6(&context.pool, scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(objects::pools::get_ipv6(&context.pool, scope.domain, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = ipv6_input(body)?;
        Ok(objects::pools::create_ipv6(&context.pool, &caller.actor, scope.domain, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = ipv6_input(body)?;
        let (pool, actor) = (&context.pool, &caller.actor);
        Ok(objects::pools::update_ipv6(pool, actor, scope.domain, id, expected, &input).await?)
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        let (pool, actor) = (&context.pool, &caller.actor);
        objects::pools::delete_ipv6(pool, actor, scope.domain, id, expected).await?;
        Ok(())
    }
    fn to_json(row: &Self::Row, self_url: &str) -> Value {
        merge(
            common(
                row.id,
                &row.name,
                "IPv6AddressPool",
                &row.description,
                self_url,
            ),
            json!({
                "ipv6StartAddress": format!("{}/{}", row.start, row.prefix_length),
                "numberOfAddresses": row.number_of_addresses,
                "overridable": row.overridable,
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

// ---------------------------------------------------------------------------------
// Group policies

pub(super) struct GroupPolicies;

const SPLIT_TUNNEL: &[(&str, SplitTunnelPolicy)] = &[
    ("TUNNEL_ALL", SplitTunnelPolicy::TunnelAll),
    ("TUNNEL_SPECIFIED", SplitTunnelPolicy::TunnelSpecified),
    (
        "EXCLUDE_SPECIFIED_OVER_TUNNEL",
        SplitTunnelPolicy::ExcludeSpecified,
    ),
];

fn group_policy_input(body: &Value) -> Result<GroupPolicyInput, ApiError> {
    let mut f = Fields::new(body)?;
    let name = f.required_str("name");
    let defaults = CoreGroupPolicy::new(&name);
    let banner = f
        .optional_str("generalSettings.banner")
        .filter(|b| !b.is_empty());
    // Ranges and lengths are the group policy service's rules (vpn-core's); here only
    // whether a value reads as a number.
    let optional_secs =
        |f: &mut Fields<'_>, enabled: &str, interval: &str, min: u64, default: Option<u32>| {
            if f.bool_or(enabled, default.is_some()) {
                f.number(interval, 0, u64::from(u32::MAX))
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .or(default)
                    .or(Some(u32::try_from(min).unwrap_or(u32::MAX)))
            } else {
                None
            }
        };
    let keepalive = optional_secs(
        &mut f,
        "anyConnectSettings.connectionSettings.enableKeepAliveMessages",
        "anyConnectSettings.connectionSettings.keepAliveMessageInterval",
        15,
        defaults.keepalive_secs,
    );
    let gateway_dpd = optional_secs(
        &mut f,
        "anyConnectSettings.connectionSettings.enableGatewayDPD",
        "anyConnectSettings.connectionSettings.gatewayDPDInterval",
        5,
        defaults.gateway_dpd_secs,
    );
    let client_dpd = optional_secs(
        &mut f,
        "anyConnectSettings.connectionSettings.enableClientDPD",
        "anyConnectSettings.connectionSettings.clientDPDInterval",
        5,
        defaults.client_dpd_secs,
    );
    let minutes = |f: &mut Fields<'_>, path: &str, default: Option<u32>| match f.get(path) {
        None => default,
        Some(_) => f
            .number(path, 0, u64::from(u32::MAX))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
    };
    let input = GroupPolicyInput {
        description: f.string_or("description", ""),
        enable_ssl_protocol: f.bool_or("enableSSLProtocol", true),
        enable_ipsec_ikev2_protocol: f.bool_or("enableIPsecIKEv2Protocol", true),
        banner,
        dns_servers: f.parsed_list::<IpAddr>("generalSettings.dnsServers", "an IP address"),
        default_domain: f
            .optional_str("generalSettings.addressAssignment.defaultDomainName")
            .filter(|d| !d.is_empty()),
        split_tunnel_policy: f.choice(
            "generalSettings.splitTunnelSettings.ipv4SplitTunnelPolicy",
            SPLIT_TUNNEL,
            SplitTunnelPolicy::TunnelAll,
        ),
        split_tunnel_networks: f.parsed_list::<IpNet>(
            "generalSettings.splitTunnelSettings.splitTunnelNetworks",
            "a network (ADDRESS/PREFIX)",
        ),
        ipv4_pool_ids: f.references("generalSettings.addressAssignment.ipv4LocalAddressPool"),
        mtu: u16::try_from(f.number_or(
            "anyConnectSettings.sslSettings.mtuSize",
            0,
            u64::from(u16::MAX),
            u64::from(defaults.mtu),
        ))
        .unwrap_or(defaults.mtu),
        keepalive_secs: keepalive,
        gateway_dpd_secs: gateway_dpd,
        client_dpd_secs: client_dpd,
        idle_timeout_minutes: minutes(
            &mut f,
            "advancedSettings.sessionSettings.vpnIdleTimeout",
            defaults.idle_timeout_minutes,
        ),
        max_connect_time_minutes: minutes(
            &mut f,
            "advancedSettings.sessionSettings.maxConnectionTimeout",
            defaults.max_connect_time_minutes,
        ),
        // The range is the group policy service's rule (objects::group_policies).
        simultaneous_logins: u32::try_from(f.number_or(
            "advancedSettings.sessionSettings.simultaneousLoginPerUser",
            0,
            u64::from(u32::MAX),
            u64::from(defaults.simultaneous_logins),
        ))
        .unwrap_or(defaults.simultaneous_logins),
        dtls_enabled: f.bool_or(
            "anyConnectSettings.sslSettings.enableDTLS",
            defaults.dtls_enabled,
        ),
        name,
    };
    f.finish()?;
    Ok(input)
}

impl Resource for GroupPolicies {
    type Row = GroupPolicy;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(objects::group_policies::list(&context.pool, scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(objects::group_policies::get(&context.pool, scope.domain, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = group_policy_input(body)?;
        Ok(
            objects::group_policies::create(&context.pool, &caller.actor, scope.domain, &input)
                .await?,
        )
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = group_policy_input(body)?;
        Ok(objects::group_policies::update(
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
        objects::group_policies::delete(&context.pool, &caller.actor, scope.domain, id, expected)
            .await?;
        Ok(())
    }
    fn to_json(g: &Self::Row, self_url: &str) -> Value {
        let split = SPLIT_TUNNEL
            .iter()
            .find(|(_, p)| *p == g.split_tunnel_policy)
            .map_or("TUNNEL_ALL", |(n, _)| *n);
        merge(
            common(g.id, &g.name, "GroupPolicy", &g.description, self_url),
            json!({
                "enableSSLProtocol": g.enable_ssl_protocol,
                "enableIPsecIKEv2Protocol": g.enable_ipsec_ikev2_protocol,
                "generalSettings": {
                    "banner": g.banner,
                    "dnsServers": g.dns_servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "addressAssignment": {
                        "defaultDomainName": g.default_domain,
                        "ipv4LocalAddressPool": g.ipv4_pools.iter().map(|r| reference(r.id, "IPv4AddressPool", &r.name)).collect::<Vec<_>>(),
                    },
                    "splitTunnelSettings": {
                        "ipv4SplitTunnelPolicy": split,
                        "splitTunnelNetworks": g.split_tunnel_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }
                },
                "anyConnectSettings": {
                    "sslSettings": { "mtuSize": g.mtu, "enableDTLS": g.dtls_enabled },
                    "connectionSettings": {
                        "enableKeepAliveMessages": g.keepalive_secs.is_some(),
                        "keepAliveMessageInterval": g.keepalive_secs,
                        "enableGatewayDPD": g.gateway_dpd_secs.is_some(),
                        "gatewayDPDInterval": g.gateway_dpd_secs,
                        "enableClientDPD": g.client_dpd_secs.is_some(),
                        "clientDPDInterval": g.client_dpd_secs,
                    }
                },
                "advancedSettings": {
                    "sessionSettings": {
                        "simultaneousLoginPerUser": g.simultaneous_logins,
                        "vpnIdleTimeout": g.idle_timeout_minutes,
                        "maxConnectionTimeout": g.max_connect_time_minutes,
                    }
                },
                "builtIn": g.built_in,
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

// ---------------------------------------------------------------------------------
// Cert enrollments

pub(super) struct CertEnrollments;

/// What a cert enrollment becomes: CA-only (MANUAL + caCertificate.caOnly), an
/// identity from PEM (MANUAL + our `identityCertificate {certificateChainPem,
/// privateKeyPem}`), or an identity the manager's internal CA issues
/// (`INTERNAL_CA` + `certificateParameters.commonName`/`altFQDN`).
async fn enrollment_input(
    context: &ApiContext,
    body: &Value,
) -> Result<CertEnrollmentInput, ApiError> {
    let mut f = Fields::new(body)?;
    let name = f.required_str("name");
    let description = f.string_or("description", "");
    let kind = f.string_or("enrollmentType", "MANUAL").to_ascii_uppercase();
    let usage = ValidationUsage {
        ssl_client: f.bool_or("validationUsage.sslClient", true),
        ssl_server: f.bool_or("validationUsage.sslServer", false),
        ipsec_client: f.bool_or("validationUsage.ipsecClient", false),
    };
    let content = if f.bool_or("caCertificate.caOnly", false) {
        let ca_pem = f.required_str("caCertificate.base64Content");
        let skip_ca_flag_check = f.bool_or("skipCaFlagCheck", false);
        let crls = f
            .optional_str("revocation.certRevocationListContent.staticCrlPem")
            .filter(|c| !c.trim().is_empty());
        let crl_on = f.bool_or(
            "revocation.certRevocationListContent.enableCertRevocationList",
            crls.is_some(),
        );
        let revocation = if crl_on {
            Revocation::Crl {
                crls_pem: crls.unwrap_or_default(),
            }
        } else {
            Revocation::None
        };
        EnrollmentInput::CaOnly(CaOnlySettings {
            ca_certificates_pem: ca_pem,
            validation_usage: usage,
            skip_ca_flag_check,
            require_client_auth_eku: f.bool_or("requireClientAuthEku", true),
            revocation,
        })
    } else if kind == "INTERNAL_CA" {
        let common_name = f.required_str("certificateParameters.commonName");
        let mut names = vec![common_name];
        if let Some(alt) = f.optional_str("certificateParameters.altFQDN") {
            names.extend(
                alt.split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
            );
        }
        f.finish()?;
        let content = objects::cert_enrollments::issue_internal_identity(
            context.services.sensors.ca(),
            &names,
            time::OffsetDateTime::now_utc(),
        )?;
        return Ok(CertEnrollmentInput {
            name,
            description,
            enrollment_type: EnrollmentType::SelfSignedCertificate,
            content,
        });
    } else if f.get("identityCertificate").is_some() {
        let chain = f.required_str("identityCertificate.certificateChainPem");
        let key = f
            .optional_str("identityCertificate.privateKeyPem")
            .filter(|k| !k.trim().is_empty());
        EnrollmentInput::Identity {
            certificate_chain_pem: chain,
            private_key_pem: key.map(PrivateKeyPem),
        }
    } else {
        f.problem("caCertificate: give {\"caOnly\": true, \"base64Content\": \"<PEM>\"} for a trustpoint, identityCertificate {certificateChainPem, privateKeyPem} for an identity, or enrollmentType INTERNAL_CA");
        EnrollmentInput::CaOnly(CaOnlySettings::new(String::new()))
    };
    let enrollment_type = match kind.as_str() {
        "PKCS12" => EnrollmentType::Pkcs12,
        "SELF_SIGNED_CERTFICATE" => EnrollmentType::SelfSignedCertificate,
        "MANUAL" => EnrollmentType::Manual,
        other => {
            f.problem(format!("enrollmentType: {other:?} is not supported here (MANUAL, PKCS12 with PEM content, INTERNAL_CA)"));
            EnrollmentType::Manual
        }
    };
    f.finish()?;
    Ok(CertEnrollmentInput {
        name,
        description,
        enrollment_type,
        content,
    })
}

pub(super) fn certificate_summaries(text: &str) -> Vec<Value> {
    pem::certificates(text)
        .unwrap_or_default()
        .iter()
        .filter_map(|der| CertificateInfo::from_der(der.as_ref()).ok())
        .map(|info| {
            json!({
                "subject": info.subject,
                "issuer": info.issuer,
                "serialNumber": info.serial,
                "notBefore": info.not_before.format(&time::format_description::well_known::Rfc3339).ok(),
                "notAfter": info.not_after.format(&time::format_description::well_known::Rfc3339).ok(),
                "fingerprintSha256": info.fingerprint_sha256,
                "isCa": info.is_ca,
            })
        })
        .collect()
}

impl Resource for CertEnrollments {
    type Row = CertEnrollment;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(objects::cert_enrollments::list(&context.pool, scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(objects::cert_enrollments::get(&context.pool, scope.domain, id).await?)
    }
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = enrollment_input(context, body).await?;
        let (db, key, actor) = (&context.pool, &context.key, &caller.actor);
        Ok(objects::cert_enrollments::create(db, key, actor, scope.domain, &input).await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let input = enrollment_input(context, body).await?;
        let (db, key, actor) = (&context.pool, &context.key, &caller.actor);
        Ok(
            objects::cert_enrollments::update(db, key, actor, scope.domain, id, expected, &input)
                .await?,
        )
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        let (db, actor) = (&context.pool, &caller.actor);
        objects::cert_enrollments::delete(db, actor, scope.domain, id, expected).await?;
        Ok(())
    }
    fn to_json(e: &Self::Row, self_url: &str) -> Value {
        let kind = match e.enrollment_type {
            EnrollmentType::Manual => "MANUAL",
            EnrollmentType::Pkcs12 => "PKCS12",
            EnrollmentType::SelfSignedCertificate => "SELF_SIGNED_CERTFICATE",
        };
        let extra = match &e.content {
            EnrollmentContent::CaOnly(ca) => json!({
                "enrollmentType": kind,
                "caCertificate": { "caOnly": true, "base64Content": ca.ca_certificates_pem },
                "validationUsage": {
                    "sslClient": ca.validation_usage.ssl_client,
                    "sslServer": ca.validation_usage.ssl_server,
                    "ipsecClient": ca.validation_usage.ipsec_client,
                },
                "skipCaFlagCheck": ca.skip_ca_flag_check,
                "requireClientAuthEku": ca.require_client_auth_eku,
                "revocation": { "certRevocationListContent": {
                    "enableCertRevocationList": matches!(ca.revocation, Revocation::Crl { .. }),
                } },
                "certificates": certificate_summaries(&ca.ca_certificates_pem),
            }),
            EnrollmentContent::Identity {
                certificate_chain_pem,
            } => json!({
                "enrollmentType": kind,
                "caCertificate": { "caOnly": false },
                "identityCertificate": {
                    "certificateChainPem": certificate_chain_pem,
                    "hasPrivateKey": true,
                },
                "certificates": certificate_summaries(certificate_chain_pem),
            }),
        };
        merge(
            common(e.id, &e.name, "CertEnrollment", &e.description, self_url),
            extra,
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}
