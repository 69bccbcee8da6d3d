//! `health/ravpnsessions` (asked of every registered sensor; filters `deviceId`,
//! `username`, `connectionProfile`), `.../operational/terminateravpnsessions`
//! (by USER, SESSION or DEVICE, as FMC), and `health/ravpngateways` (sessions,
//! capacity and certificate expiry per device).

use axum::extract::{OriginalUri, Query, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::{Value, json};
use vpn_core::channel::TerminateRequest;
use vpn_core::session::SessionRecord;

use super::deployment::{all_devices, page_of};
use super::envelope::{BaseUrl, ListQuery, Listing, reference};
use super::error::ApiError;
use super::fields::Fields;
use super::resource::json_body;
use super::{ApiContext, Caller, Routes};
use crate::db::devices::{Device, RegistrationState};
use crate::devices::Termination;

pub(super) fn routes(routes: Routes) -> Routes {
    routes
        .add(
            Method::GET,
            "config:/health/ravpnsessions",
            "health",
            "Active RA VPN sessions of every device (filter deviceId, username, connectionProfile)",
            get(sessions),
        )
        .add(
            Method::POST,
            "config:/health/ravpnsessions/operational/terminateravpnsessions",
            "health",
            "Terminate sessions by USER, SESSION or DEVICE",
            post(terminate),
        )
        .add(
            Method::GET,
            "config:/health/ravpngateways",
            "health",
            "RA VPN gateways: sessions, capacity, certificate expiry",
            get(gateways),
        )
}

fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// A session in FMC's shape; its id is `<device id>:<session index>`.
fn session_json(device: &Device, s: &SessionRecord) -> Value {
    let counters = s.total_counters();
    let protocol = if s.dtls.is_some() {
        "AnyConnect-Parent SSL-Tunnel DTLS-Tunnel"
    } else {
        "AnyConnect-Parent SSL-Tunnel"
    };
    json!({
        "id": format!("{}:{}", device.id, s.index),
        "type": "RaVpnSession",
        "device": reference(device.id, "Device", &device.name),
        "sessionIndex": s.index,
        "username": s.username,
        "connectionProfile": s.tunnel_group,
        "groupPolicy": s.group_policy,
        "authenticationMode": s.auth_mode.ftd_name(),
        "usernameDerivation": s.username_derivation,
        "publicIpAddress": s.public_ip.to_string(),
        "assignedIpAddress": s.assigned_ipv4.map(|a| a.to_string()),
        "assignedIpv6Address": s.assigned_ipv6.map(|a| a.to_string()),
        "loginTime": rfc3339(s.login_time),
        "lastActivity": rfc3339(s.last_activity),
        "protocol": protocol,
        "clientApplication": s.client.client_type,
        "clientVersion": s.client.version,
        "clientOS": s.client.os,
        "bytesTx": counters.bytes_tx,
        "bytesRx": counters.bytes_rx,
        "auditSessionId": s.audit_session_id,
        "active": s.is_active(),
        "machineCertificate": s.machine_certificate,
        "userCertificate": s.user_certificate,
    })
}

async fn registered(
    context: &ApiContext,
    caller: &Caller,
    only: Option<&str>,
) -> Result<Vec<Device>, ApiError> {
    Ok(all_devices(context, caller.domain_id)
        .await?
        .into_iter()
        .filter(|d| d.registration_state == RegistrationState::Registered)
        .filter(|d| only.is_none_or(|id| id == d.id.to_string()))
        .collect())
}

async fn sessions(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = Listing::from_query(&query)?;
    let username = listing.filter_value("username").map(str::to_owned);
    let profile = listing.filter_value("connectionProfile").map(str::to_owned);
    let mut items = Vec::new();
    for device in registered(&context, &caller, listing.filter_value("deviceId")).await? {
        match context.services.sensors.sessions(&device).await {
            Ok(records) => items.extend(
                records
                    .iter()
                    .filter(|s| username.as_deref().is_none_or(|u| u == s.username))
                    .filter(|s| profile.as_deref().is_none_or(|p| p == s.tunnel_group))
                    .map(|s| session_json(&device, s)),
            ),
            Err(e) => tracing::warn!(device = %device.name, error = %e, "sessions not read"),
        }
    }
    Ok(Json(page_of(
        &format!("{base}{}", uri.path()),
        items,
        &Listing {
            expanded: true,
            ..listing
        },
    )))
}

async fn terminate(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body)?;
    let by = f.required_str("terminateBy").to_ascii_uppercase();
    let device = f.optional_str("deviceId");
    let usernames: Vec<String> = f.parsed_list("usernames", "a user name");
    let session_ids: Vec<String> = f.parsed_list("sessionIds", "a session id");
    let mut targets: Vec<(Option<String>, TerminateRequest)> = Vec::new();
    match by.as_str() {
        "USER" if !usernames.is_empty() => {
            targets.push((device.clone(), TerminateRequest::User { usernames }))
        }
        "USER" => f.problem("usernames: terminateBy USER needs at least one user name"),
        "DEVICE" if device.is_some() => targets.push((device.clone(), TerminateRequest::Device)),
        "DEVICE" => f.problem("deviceId: terminateBy DEVICE needs the device id"),
        "SESSION" => {
            let mut per_device: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
            for (i, id) in session_ids.iter().enumerate() {
                match id
                    .split_once(':')
                    .and_then(|(d, n)| Some((d.to_owned(), n.parse::<u32>().ok()?)))
                {
                    Some((d, n)) => per_device.entry(d).or_default().push(n),
                    None => f.problem(format!(
                        "sessionIds[{i}]: {id:?} is not a session id (<device id>:<index>)"
                    )),
                }
            }
            if session_ids.is_empty() {
                f.problem("sessionIds: terminateBy SESSION needs at least one session id");
            }
            targets.extend(
                per_device
                    .into_iter()
                    .map(|(d, indexes)| (Some(d), TerminateRequest::Session { indexes })),
            );
        }
        "" => {}
        other => f.problem(format!(
            "terminateBy: {other:?} is not USER, SESSION or DEVICE"
        )),
    }
    f.finish()?;
    let mut terminations = Vec::new();
    for (device, request) in targets {
        let devices = registered(&context, &caller, device.as_deref()).await?;
        if devices.is_empty() && device.is_some() {
            return Err(ApiError::not_found(format!(
                "deviceId: no registered device {}",
                device.as_deref().unwrap_or("")
            )));
        }
        terminations.extend(devices.into_iter().map(|device| Termination {
            device,
            request: request.clone(),
        }));
    }
    let outcome = context
        .services
        .sensors
        .terminate_sessions(
            &caller.actor,
            caller.domain_id,
            &format!("terminateBy {by}"),
            &terminations,
            Some(body.clone()),
        )
        .await?;
    let terminated = outcome.terminated;
    let failures: Vec<String> = outcome
        .failures
        .iter()
        .map(|(device, error)| format!("{device}: {error}"))
        .collect();
    Ok(Json(json!({
        "type": "RaVpnSessionTerminateResult",
        "terminateBy": by,
        "terminatedSessions": terminated,
        "failures": failures,
    })))
}

async fn gateways(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = Listing::from_query(&query)?;
    let mut items = Vec::new();
    for device in registered(&context, &caller, None).await? {
        let item = match context.services.sensors.status(&device).await {
            Ok(status) => json!({
                "id": device.id.to_string(),
                "type": "RaVpnGateway",
                "device": reference(device.id, "Device", &device.name),
                "status": "UP",
                "activeSessions": status.sessions.active,
                "maxSessions": status.sessions.device_capacity,
                "peakSessions": status.sessions.peak_concurrent,
                "configVersion": status.running.as_ref().map(|r| r.version),
                "configHash": status.running.as_ref().map(|r| r.hash.clone()),
                "uptimeSeconds": status.uptime_secs,
                "agentVersion": status.agent_version,
                "identityCertificate": status.identity_certificate,
                "trustpoints": status.trustpoints,
                "channelCertificate": status.channel_certificate,
            }),
            Err(e) => json!({
                "id": device.id.to_string(),
                "type": "RaVpnGateway",
                "device": reference(device.id, "Device", &device.name),
                "status": "UNREACHABLE",
                "message": e.to_string(),
            }),
        };
        items.push(item);
    }
    Ok(Json(page_of(
        &format!("{base}{}", uri.path()),
        items,
        &Listing {
            expanded: true,
            ..listing
        },
    )))
}
