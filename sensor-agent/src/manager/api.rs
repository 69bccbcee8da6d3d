//! The management API's routes (axum) and its HTTP/1.1 connections (hyper).
//!
//! Every request runs in a `management_request` span: `method`, `route` (the path
//! template), `peer`, `status` at the end, and for a configuration push the `version`
//! it offers once the document is read.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, MatchedPath, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;
use tracing::Instrument as _;
use tracing::field::Empty;
use vpn_core::channel::{
    ChannelError, DeployResult, ManagerHost, RegistrationChallenge, RegistrationRequest,
    RegistrationResponse, TerminateRequest, TerminateResult, paths, sensor_proof,
};
use vpn_core::cli::LogoffTarget;
use vpn_core::session::EndReason;

use super::enrollment::Registration;
use super::registration::{self, CHALLENGE_LIFETIME, RegistrationRefusal};
use super::{IO_TIMEOUT, ManagerChannel, tls};
use crate::config_store::ApplyError;

/// Largest configuration document accepted.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;
/// Largest registration request accepted.
pub const MAX_REGISTRATION_BYTES: usize = 256 * 1024;
/// Session events per page unless the manager asks for fewer.
pub const MAX_EVENTS_PER_PAGE: usize = 10_000;

/// Who is calling, as the TLS handshake established.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caller {
    pub(super) peer: SocketAddr,
    /// True when the client presented the registered manager's certificate.
    pub(super) manager: bool,
}

type Channel = Arc<ManagerChannel>;

pub(super) fn router(channel: Channel) -> axum::Router {
    axum::Router::new()
        .route(paths::REGISTRATION_CHALLENGE, post(challenge))
        .route(
            paths::REGISTRATION,
            post(register).layer(DefaultBodyLimit::max(MAX_REGISTRATION_BYTES)),
        )
        .route(
            paths::CONFIG,
            post(deploy).layer(DefaultBodyLimit::max(MAX_CONFIG_BYTES)),
        )
        .route(paths::STATUS, get(status))
        .route(paths::SESSIONS, get(sessions))
        .route(paths::TERMINATE_SESSIONS, post(terminate))
        .route(paths::SESSION_EVENTS, get(events))
        .fallback(|| async { refuse(StatusCode::NOT_FOUND, "not-found", "no such path") })
        .layer(axum::middleware::from_fn(trace_request))
        .with_state(channel)
}

/// Runs a request in its `management_request` span.
async fn trace_request(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "management_request",
        method = %request.method(),
        route = Empty,
        peer = Empty,
        version = Empty,
        status = Empty,
    );
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        span.record("route", route.as_str());
    }
    if let Some(caller) = request.extensions().get::<Caller>() {
        span.record("peer", tracing::field::display(caller.peer));
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    span.in_scope(|| tracing::debug!("management request finished"));
    response
}

/// Serves HTTP/1.1 requests of one TLS connection.
pub(super) async fn serve_connection<S>(stream: S, router: axum::Router, caller: Caller)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(caller);
            router.clone().oneshot(request)
        });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(IO_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
    if let Err(e) = served {
        tracing::debug!(peer = %caller.peer, error = %e, "management connection ended");
    }
}

/// A refused call: its status and [`ChannelError`] body.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    body: ChannelError,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type Answer = Result<Response, Refusal>;

fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Refusal {
    refuse_with(status, code, message, Vec::new())
}

fn refuse_with(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    problems: Vec<String>,
) -> Refusal {
    Refusal {
        status,
        body: ChannelError {
            error: code.to_owned(),
            message: message.into(),
            problems,
        },
    }
}

fn refusal(refusal: &RegistrationRefusal) -> Refusal {
    let status = match refusal {
        RegistrationRefusal::AlreadyRegistered { .. } => StatusCode::CONFLICT,
        RegistrationRefusal::LockedOut { .. } => StatusCode::TOO_MANY_REQUESTS,
        RegistrationRefusal::BadCertificate { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::FORBIDDEN,
    };
    let code = match refusal {
        RegistrationRefusal::AlreadyRegistered { .. } => "already-registered",
        RegistrationRefusal::NoManagerConfigured => "no-manager-configured",
        _ => "registration-refused",
    };
    refuse(status, code, refusal.to_string())
}

/// Refuses callers without the manager's certificate.
fn require_manager(channel: &ManagerChannel, caller: &Caller) -> Result<(), Refusal> {
    if caller.manager {
        return Ok(());
    }
    let registered = channel.state().registration.is_some();
    Err(if registered {
        refuse(
            StatusCode::FORBIDDEN,
            "manager-certificate-required",
            "this call needs the registered manager's certificate",
        )
    } else {
        refuse(
            StatusCode::FORBIDDEN,
            "not-registered",
            "this sensor is not registered to a manager",
        )
    })
}

/// Refuses registration calls once registered, or with no manager configured.
fn require_registrable(channel: &ManagerChannel) -> Result<super::PendingManager, Refusal> {
    let state = channel.state();
    if let Some(registration) = &state.registration {
        return Err(refusal(&RegistrationRefusal::AlreadyRegistered {
            manager: registration.address.to_string(),
        }));
    }
    state
        .pending
        .clone()
        .ok_or_else(|| refusal(&RegistrationRefusal::NoManagerConfigured))
}

async fn challenge(State(channel): State<Channel>) -> Answer {
    require_registrable(&channel)?;
    let challenge = channel
        .challenges()
        .issue(Instant::now())
        .map_err(|e| refusal(&e))?;
    tracing::info!("registration challenge issued");
    Ok(Json(RegistrationChallenge {
        challenge: hex::encode(challenge),
        expires_in_secs: u32::try_from(CHALLENGE_LIFETIME.as_secs()).unwrap_or(60),
    })
    .into_response())
}

async fn register(
    State(channel): State<Channel>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    let request: RegistrationRequest = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("the registration request cannot be read: {e}"),
        )
    })?;
    let pending = require_registrable(&channel)?;
    let resolved: Vec<IpAddr> = match &pending.address.host {
        ManagerHost::Name(name) => tokio::net::lookup_host((name.as_str(), 0))
            .await
            .map(|addresses| addresses.map(|a| a.ip()).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    match accept_registration(&channel, &pending, caller, &resolved, &request) {
        Ok(response) => Ok(Json(response).into_response()),
        Err(e) => {
            tracing::warn!(reason = %e, "registration refused");
            Err(refusal(&e))
        }
    }
}

/// Every check, then the commit: files, TLS, state.
fn accept_registration(
    channel: &ManagerChannel,
    pending: &super::PendingManager,
    caller: Caller,
    resolved: &[IpAddr],
    request: &RegistrationRequest,
) -> Result<RegistrationResponse, RegistrationRefusal> {
    registration::check_address(pending, caller.peer.ip(), resolved)?;
    registration::check_nat_id(pending, request)?;
    let now = Instant::now();
    let challenge = channel.challenges().take(&request.challenge, now)?;
    if let Err(e) = registration::check_proof(pending, &challenge, &channel.bootstrap_der, request)
    {
        channel.challenges().record_failure(now);
        return Err(e);
    }
    let wall_clock = OffsetDateTime::now_utc();
    registration::check_certificates(&channel.key, request, wall_clock)?;
    let registration = Registration {
        device_id: request.device_id,
        device_name: request.device_name.clone(),
        manager_name: request.manager_name.clone(),
        address: pending.address.clone(),
        nat_id: pending.nat_id.clone(),
        ca_certificate_pem: request.ca_certificate_pem.clone(),
        manager_certificate_pem: request.manager_certificate_pem.clone(),
        sensor_certificate_pem: request.sensor_certificate_pem.clone(),
        registered_at: wall_clock,
    };
    let server_config = tls::registered_config(&channel.key, &registration).map_err(|e| {
        RegistrationRefusal::BadCertificate {
            what: "certificate set",
            reason: e.to_string(),
        }
    })?;
    let mut state = channel.state();
    if state.registration.is_some() || state.pending.as_ref() != Some(pending) {
        // Another registration or `configure manager` won the race.
        return Err(RegistrationRefusal::UnknownChallenge);
    }
    channel
        .files
        .save_registration(&registration)
        .map_err(|e| RegistrationRefusal::BadCertificate {
            what: "registration",
            reason: format!("it cannot be stored: {e}"),
        })?;
    state.pending = None;
    state.registration = Some(registration);
    drop(state);
    *channel.tls.write().unwrap_or_else(PoisonError::into_inner) = server_config;
    channel.challenges().record_success();
    tracing::info!(
        device_id = %request.device_id,
        manager = %request.manager_name,
        "registered to the manager; the registration key is spent"
    );
    Ok(RegistrationResponse {
        device_id: request.device_id,
        sensor_proof: sensor_proof(
            &pending.registration_key,
            &challenge,
            &request.manager_proof,
        ),
        agent_version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: channel.hostname.clone(),
    })
}

async fn deploy(
    State(channel): State<Channel>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    require_manager(&channel, &caller)?;
    let device = channel.device_id();
    let deployer = Arc::clone(&channel.agent.deployer);
    // The request's span (and subscriber) go along: the deploy records the offered
    // version in it.
    let span = tracing::Span::current();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let outcome = tokio::task::spawn_blocking(move || {
        tracing::dispatcher::with_default(&dispatch, || {
            span.in_scope(|| deployer.deploy(&body, device, OffsetDateTime::now_utc()))
        })
    })
    .await;
    match outcome {
        Ok(Ok(outcome)) => Ok(Json(DeployResult {
            version: outcome.applied.version,
            hash: outcome.applied.hash,
            transcript: outcome.applied.transcript,
            warnings: outcome.applied.warnings,
            ended_sessions: outcome.ended_sessions,
        })
        .into_response()),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::control::error_chain(&e), "deploy refused");
            Err(apply_refusal(&e))
        }
        Err(_) => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "apply-failed",
            "the deploy task failed",
        )),
    }
}

fn apply_refusal(error: &ApplyError) -> Refusal {
    let message = crate::control::error_chain(error);
    match error {
        ApplyError::Parse(_) => refuse(StatusCode::BAD_REQUEST, "bad-request", message),
        ApplyError::OtherDevice { .. } => refuse(StatusCode::CONFLICT, "other-device", message),
        ApplyError::NotNewer { .. } => refuse(StatusCode::CONFLICT, "not-newer", message),
        ApplyError::Invalid(problems) => refuse_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-config",
            "the configuration is invalid",
            problems.iter().map(ToString::to_string).collect(),
        ),
        ApplyError::Pools(_) => refuse(StatusCode::UNPROCESSABLE_ENTITY, "invalid-config", message),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, "apply-failed", message),
    }
}

async fn status(State(channel): State<Channel>, Extension(caller): Extension<Caller>) -> Answer {
    require_manager(&channel, &caller)?;
    Ok(Json(channel.status()).into_response())
}

async fn sessions(State(channel): State<Channel>, Extension(caller): Extension<Caller>) -> Answer {
    require_manager(&channel, &caller)?;
    Ok(Json(vpn_core::channel::SessionList {
        items: channel.agent.sessions.sessions(),
    })
    .into_response())
}

async fn terminate(
    State(channel): State<Channel>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Answer {
    require_manager(&channel, &caller)?;
    let request: TerminateRequest = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("the terminate request cannot be read: {e}"),
        )
    })?;
    let sessions = &channel.agent.sessions;
    let now = OffsetDateTime::now_utc();
    let terminated = match &request {
        TerminateRequest::Session { indexes } => indexes
            .iter()
            .filter(|index| sessions.end(**index, EndReason::AdminReset, now))
            .count(),
        TerminateRequest::User { usernames } => usernames
            .iter()
            .map(|name| sessions.logoff(&LogoffTarget::Name(name.clone()), now))
            .sum(),
        TerminateRequest::Device => sessions.logoff(&LogoffTarget::All, now),
    };
    tracing::info!(?request, terminated, "sessions terminated by the manager");
    Ok(Json(TerminateResult {
        terminated: u32::try_from(terminated).unwrap_or(u32::MAX),
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    cursor: u64,
    limit: Option<usize>,
}

async fn events(
    State(channel): State<Channel>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<EventsQuery>,
) -> Answer {
    require_manager(&channel, &caller)?;
    let limit = query
        .limit
        .unwrap_or(MAX_EVENTS_PER_PAGE)
        .clamp(1, MAX_EVENTS_PER_PAGE);
    let mut page = channel.agent.sessions.events_since(query.cursor);
    if page.events.len() > limit {
        page.events.truncate(limit);
        if let Some(last) = page.events.last() {
            page.next_cursor = last.sequence + 1;
        }
    }
    Ok(Json(page).into_response())
}

#[cfg(test)]
mod tests;
