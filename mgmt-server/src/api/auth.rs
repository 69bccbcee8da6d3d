//! FMC's token authentication: `generatetoken` (HTTP Basic) opens a session whose
//! tokens come back in headers; every config call carries `X-auth-access-token`;
//! `refreshtoken` renews both tokens (three times, as FMC). Only digests of the tokens
//! are stored. Every login, good or bad, is an audit row.

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::ApiContext;
use super::error::ApiError;
use crate::admins::login::{self, Door, LoginRefused};
use crate::admins::sessions::{self, Authenticated, IssuedTokens};
pub use crate::admins::sessions::{ACCESS_TOKEN_LIFETIME, MAX_REFRESHES};
use crate::db::admins::Administrator;
use crate::db::{Actor, GLOBAL_DOMAIN_ID};
/// The text fireREST looks for before refreshing its token.
pub const INVALID_TOKEN: &str = "Access token invalid.";

/// The authenticated caller of a config call.
#[derive(Debug, Clone)]
pub struct Caller {
    pub administrator: Administrator,
    pub actor: Actor,
    pub domain_id: Uuid,
}

/// `POST /api/fmc_platform/v1/auth/generatetoken`.
pub async fn generate_token(
    State(context): State<ApiContext>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let source = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let Some((name, password)) = basic_credentials(&headers) else {
        login::refuse_without_credentials(&context.pool, source, Door::RestApi).await?;
        return Err(ApiError::unauthorized(
            "generatetoken needs HTTP Basic authentication (Authorization: Basic ...)",
        ));
    };
    let administrator = match login::authenticate(
        &context.pool,
        &name,
        &password,
        source,
        Door::RestApi,
    )
    .await
    {
        Ok(administrator) => administrator,
        Err(LoginRefused::Locked { until }) => {
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "FRAMEWORK",
                "Authentication refused: too many failed logins from this address; try again after Retry-After seconds",
            );
            let wait = (until - OffsetDateTime::now_utc()).whole_seconds().max(1);
            error.retry_after_secs = u64::try_from(wait).ok();
            return Err(error);
        }
        Err(LoginRefused::WrongCredentials) => {
            return Err(ApiError::unauthorized(
                "Authentication failed: wrong user name or password",
            ));
        }
        Err(LoginRefused::Db(e)) => return Err(e.into()),
        Err(LoginRefused::Task) => return Err(ApiError::internal("the password check failed")),
    };
    crate::app::record_actor(&administrator.name);
    let tokens = sessions::open_api_session(&context.pool, &administrator, source).await?;
    Ok(token_response(&tokens))
}

/// `POST /api/fmc_platform/v1/auth/refreshtoken`.
pub async fn refresh_token(
    State(context): State<ApiContext>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (old_access, old_refresh) = (
        header("X-auth-access-token"),
        header("X-auth-refresh-token"),
    );
    if old_access.is_empty() || old_refresh.is_empty() {
        return Err(ApiError::unauthorized(
            "refreshtoken needs X-auth-access-token and X-auth-refresh-token",
        ));
    }
    let tokens = sessions::refresh_api_session(&context.pool, old_access, old_refresh).await?;
    Ok(token_response(&tokens))
}

/// Authenticates config calls, checks the domain in the path and the caller's role
/// (Read-Only administrators may only read), names the administrator in the request's
/// span, and hands on a [`Caller`].
pub async fn require_session(
    State(context): State<ApiContext>,
    Path(params): Path<Vec<(String, String)>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get("X-auth-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(Authenticated {
        session,
        administrator,
    }) = sessions::authenticated(&context.pool, &token).await?
    else {
        return Err(ApiError::unauthorized(INVALID_TOKEN));
    };
    crate::app::record_actor(&administrator.name);
    let domain = params
        .iter()
        .find(|(k, _)| k == "domain")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let domain_id = Uuid::parse_str(domain)
        .ok()
        .filter(|id| *id == session.domain_id)
        .ok_or_else(|| {
            ApiError::not_found(format!("domain {domain:?} does not exist or is not yours"))
        })?;
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let source: Option<IpAddr> = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let actor = Actor::administrator(&administrator.name, administrator.id, source);
    if writes && !administrator.role.0.can_edit() {
        let what = format!("{} {}", request.method(), request.uri().path());
        return Err(forbidden(
            &context,
            &actor,
            Some(domain_id),
            &what,
            format!(
                "administrator {} has the Read-Only role and cannot change anything",
                administrator.name
            ),
        )
        .await);
    }
    request.extensions_mut().insert(Caller {
        administrator,
        actor,
        domain_id,
    });
    Ok(next.run(request).await)
}

/// A 403 for `actor`, written to the audit log first (`what` was tried).
pub(crate) async fn forbidden(
    context: &ApiContext,
    actor: &Actor,
    domain_id: Option<Uuid>,
    what: &str,
    message: String,
) -> ApiError {
    match crate::audit::record_forbidden(&context.pool, actor, domain_id, what).await {
        Ok(()) => ApiError::forbidden(message),
        Err(e) => e.into(),
    }
}

/// `GET /api/fmc_platform/v1/info/serverversion`: fireREST gates features on it.
pub async fn server_version() -> impl IntoResponse {
    let version = json!({
        "type": "ServerVersion",
        "serverVersion": format!("7.4.1 (build {})", env!("CARGO_PKG_VERSION")),
        "geoVersion": "none",
        "vdbVersion": "none",
        "sruVersion": "none",
        "productVersion": env!("CARGO_PKG_VERSION"),
    });
    axum::Json(json!({
        "items": [version],
        "links": { "self": "/api/fmc_platform/v1/info/serverversion" },
        "paging": { "offset": 0, "limit": 1, "count": 1, "pages": 1 }
    }))
}

fn token_response(tokens: &IssuedTokens) -> Response {
    let domains = json!([{ "name": "Global", "uuid": GLOBAL_DOMAIN_ID }]).to_string();
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("X-auth-access-token", tokens.access.clone()),
        ("X-auth-refresh-token", tokens.refresh.clone()),
        ("DOMAIN_UUID", tokens.domain_id.to_string()),
        ("DOMAINS", domains),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}
