//! Administrator login, the one policy for both doors (web UI and REST
//! `generatetoken`): the source is checked against the shared throttles first, the
//! password against its argon2 hash (behind [`super::hashing`]'s bound; an unknown name
//! against a dummy hash, so it takes as long), every refusal is counted in the database
//! (so the throttles hold across doors and manager replicas) and written to the audit
//! log, and a success forgets the refusals of that name from that address.
//!
//! Refusals are counted per source address ([`SOURCE_LOCK`]) and per user name from
//! that address ([`LOGIN_LOCK`]), never per name alone: a flood of wrong passwords for
//! `admin` slows the place it comes from and never locks `admin` out from elsewhere.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::hashing;
use crate::db::admins::{self, Administrator};
use crate::db::throttles::{self, LoginLockPolicy};
use crate::db::{DbError, audit};

/// Five refusals of one name from one address within a minute lock that name, from
/// that address, for five minutes.
pub const LOGIN_LOCK: LoginLockPolicy = LoginLockPolicy {
    max_failures: 5,
    window: Duration::from_secs(60),
    lockout: Duration::from_secs(300),
};

/// Twenty refusals from one address within a minute, whatever the names, lock that
/// address out of logging in for five minutes.
pub const SOURCE_LOCK: LoginLockPolicy = LoginLockPolicy {
    max_failures: 20,
    window: Duration::from_secs(60),
    lockout: Duration::from_secs(300),
};

/// Where a login came in (the audit log says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    WebUi,
    RestApi,
}

impl Door {
    fn label(self) -> &'static str {
        match self {
            Self::WebUi => "web UI",
            Self::RestApi => "REST API",
        }
    }
}

/// Why a login was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoginRefused {
    #[error("too many failed logins from this address; try again after {until}")]
    Locked { until: OffsetDateTime },
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error("the password check failed")]
    Task,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A login that came without credentials (REST `generatetoken` without HTTP Basic):
/// audited like any refusal, but counts against no name.
pub async fn refuse_without_credentials(
    pool: &PgPool,
    source: Option<IpAddr>,
    door: Door,
) -> Result<(), DbError> {
    let detail = match door {
        Door::RestApi => "no HTTP Basic credentials",
        Door::WebUi => "no credentials",
    };
    audit::login_failed(pool, "", source, detail).await?;
    Ok(())
}

/// Checks `name` and `password`; the administrator on success.
pub async fn authenticate(
    pool: &PgPool,
    name: &str,
    password: &str,
    source: Option<IpAddr>,
    door: Door,
) -> Result<Administrator, LoginRefused> {
    let name = name.trim();
    let source_key = throttles::source_key(source);
    let user_key = throttles::user_at_source_key(name, source);
    let mut locked = None;
    for key in [&source_key, &user_key] {
        if let Some(until) = throttles::login_locked_until(pool, key).await? {
            locked = locked.max(Some(until));
        }
    }
    if let Some(until) = locked {
        let detail = format!("locked after repeated failures ({})", door.label());
        audit::login_failed(pool, name, source, &detail).await?;
        tracing::warn!(user = %name.escape_debug(), ?source, door = door.label(), "login refused: throttled");
        return Err(LoginRefused::Locked { until });
    }
    let administrator = admins::find_by_name(pool, name).await?;
    let verified = match administrator {
        Some(admin) if admin.enabled => {
            let ok = hashing::verify(&admin.password_hash, password)
                .await
                .map_err(|_| LoginRefused::Task)?;
            ok.then_some(admin)
        }
        _ => {
            hashing::verify_unknown(password)
                .await
                .map_err(|_| LoginRefused::Task)?;
            None
        }
    };
    let Some(admin) = verified else {
        let by_user = throttles::record_login_failure(pool, &user_key, &LOGIN_LOCK).await?;
        let by_source = throttles::record_login_failure(pool, &source_key, &SOURCE_LOCK).await?;
        let detail = format!("wrong name or password ({})", door.label());
        audit::login_failed(pool, name, source, &detail).await?;
        tracing::warn!(user = %name.escape_debug(), ?source, door = door.label(), locked = by_user.or(by_source).is_some(), "login refused");
        return Err(LoginRefused::WrongCredentials);
    };
    throttles::clear_login_failures(pool, &user_key).await?;
    Ok(admin)
}
