//! Administrator sessions, the one policy for both doors: a login opens a session whose
//! random tokens only the caller sees (the database keeps their SHA-256); a REST session
//! lives [`ACCESS_TOKEN_LIFETIME`] and may be refreshed [`MAX_REFRESHES`] times (FMC), a
//! web UI session lives [`UI_SESSION_LIFETIME`]; a token is honoured while its session is
//! live and its administrator enabled.

use std::net::IpAddr;

use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::db::admins::{self, Administrator, ApiSession, SessionTokens};
use crate::db::{Actor, DbError};

/// How long a REST access token lives (FMC: 30 minutes).
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::minutes(30);
/// How many times a REST session may be refreshed (FMC: 3).
pub const MAX_REFRESHES: i32 = 3;
/// How long a web UI session lasts.
pub const UI_SESSION_LIFETIME: Duration = Duration::hours(8);

/// The tokens of a new or refreshed session. Secret: `Debug` does not show them.
pub struct IssuedTokens {
    pub access: String,
    pub refresh: String,
    /// The domain the session works in.
    pub domain_id: Uuid,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("domain_id", &self.domain_id)
            .finish_non_exhaustive()
    }
}

/// Why a session was not opened or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no randomness for a token")]
    NoRandomness,
    #[error("Invalid refresh token: log in again")]
    UnknownRefreshToken,
    #[error("the session was refreshed {MAX_REFRESHES} times already: log in again")]
    TooManyRefreshes,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A live session and its (enabled) administrator.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: ApiSession,
    pub administrator: Administrator,
}

/// Opens a REST session for `administrator` (after [`super::authenticate`]).
pub async fn open_api_session(
    pool: &PgPool,
    administrator: &Administrator,
    source: Option<IpAddr>,
) -> Result<IssuedTokens, SessionError> {
    let (access, refresh) = (uuid_token()?, uuid_token()?);
    let now = OffsetDateTime::now_utc();
    let tokens = api_tokens(&access, &refresh, now);
    open(pool, administrator, source, &tokens).await?;
    Ok(IssuedTokens {
        access,
        refresh,
        domain_id: administrator.domain_id,
    })
}

/// Opens a web UI session for `administrator`; the access token goes in the cookie.
pub async fn open_ui_session(
    pool: &PgPool,
    administrator: &Administrator,
    source: Option<IpAddr>,
) -> Result<IssuedTokens, SessionError> {
    let (access, refresh) = (hex_token()?, hex_token()?);
    let now = OffsetDateTime::now_utc();
    let tokens = SessionTokens {
        access_token: &access,
        refresh_token: &refresh,
        access_expires_at: now + UI_SESSION_LIFETIME,
        refresh_expires_at: now + UI_SESSION_LIFETIME,
    };
    open(pool, administrator, source, &tokens).await?;
    Ok(IssuedTokens {
        access,
        refresh,
        domain_id: administrator.domain_id,
    })
}

async fn open(
    pool: &PgPool,
    administrator: &Administrator,
    source: Option<IpAddr>,
    tokens: &SessionTokens<'_>,
) -> Result<(), DbError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    admins::open_session(&mut conn, administrator, source, tokens).await?;
    Ok(())
}

/// Renews both tokens of a REST session; the fourth refresh ends the session.
pub async fn refresh_api_session(
    pool: &PgPool,
    access_token: &str,
    refresh_token: &str,
) -> Result<IssuedTokens, SessionError> {
    if access_token.is_empty() || refresh_token.is_empty() {
        return Err(SessionError::UnknownRefreshToken);
    }
    let (access, refresh) = (uuid_token()?, uuid_token()?);
    let now = OffsetDateTime::now_utc();
    let tokens = api_tokens(&access, &refresh, now);
    let Some(session) =
        admins::refresh_session(pool, access_token, refresh_token, now, &tokens).await?
    else {
        return Err(SessionError::UnknownRefreshToken);
    };
    if session.refresh_count > MAX_REFRESHES {
        admins::revoke_session(pool, session.id).await?;
        return Err(SessionError::TooManyRefreshes);
    }
    Ok(IssuedTokens {
        access,
        refresh,
        domain_id: session.domain_id,
    })
}

/// The live session of `access_token` and its administrator, while the administrator
/// is enabled; `None` for anything else.
pub async fn authenticated(
    pool: &PgPool,
    access_token: &str,
) -> Result<Option<Authenticated>, DbError> {
    if access_token.is_empty() {
        return Ok(None);
    }
    let now = OffsetDateTime::now_utc();
    let Some(session) = admins::session_by_access_token(pool, access_token, now).await? else {
        return Ok(None);
    };
    let administrator = admins::get(pool, session.administrator_id).await?;
    Ok(administrator.enabled.then_some(Authenticated {
        session,
        administrator,
    }))
}

/// Ends a session (LOGOUT audit row).
pub async fn log_out(
    pool: &PgPool,
    actor: &Actor,
    domain_id: Uuid,
    session_id: Uuid,
) -> Result<(), DbError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    admins::log_out(&mut conn, actor, domain_id, session_id).await
}

/// New REST tokens living [`ACCESS_TOKEN_LIFETIME`]; the refresh token outlives the
/// access token by the refreshes a session may make.
fn api_tokens<'a>(access: &'a str, refresh: &'a str, now: OffsetDateTime) -> SessionTokens<'a> {
    SessionTokens {
        access_token: access,
        refresh_token: refresh,
        access_expires_at: now + ACCESS_TOKEN_LIFETIME,
        refresh_expires_at: now + ACCESS_TOKEN_LIFETIME * (MAX_REFRESHES + 1),
    }
}

/// A random token, UUID-shaped as FMC's.
fn uuid_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SessionError::NoRandomness)?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string())
}

/// A random token of 32 bytes, hex.
fn hex_token() -> Result<String, SessionError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SessionError::NoRandomness)?;
    Ok(hex::encode(bytes))
}
