//! Administrator login, the one policy for both doors (web UI and REST
//! `generatetoken`): the name is checked against the shared lock first, the password
//! against its argon2 hash, every refusal is counted in the database (so the lock holds
//! across doors and manager replicas) and written to the audit log, and a success
//! forgets earlier refusals.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use crate::db::admins::{self, Administrator};
use crate::db::throttles::{self, LoginLockPolicy};
use crate::db::{DbError, audit};

/// Five refusals of one name within a minute lock that name for five minutes.
pub const LOGIN_LOCK: LoginLockPolicy = LoginLockPolicy {
    max_failures: 5,
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
    #[error("too many failed logins for this user; try again after {until}")]
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
    let key = throttles::name_key(name);
    if let Some(until) = throttles::login_locked_until(pool, &key).await? {
        let detail = format!("locked after repeated failures ({})", door.label());
        audit::login_failed(pool, name, source, &detail).await?;
        tracing::warn!(user = %name, ?source, door = door.label(), "login refused: name locked");
        return Err(LoginRefused::Locked { until });
    }
    let administrator = admins::find_by_name(pool, name).await?;
    let verified = match administrator {
        Some(admin) if admin.enabled => {
            let hash = admin.password_hash.clone();
            let password = password.to_owned();
            let ok = tokio::task::spawn_blocking(move || hash.verify(&password))
                .await
                .map_err(|_| LoginRefused::Task)?;
            ok.then_some(admin)
        }
        _ => None,
    };
    let Some(admin) = verified else {
        let locked = throttles::record_login_failure(pool, &key, &LOGIN_LOCK).await?;
        let detail = format!("wrong name or password ({})", door.label());
        audit::login_failed(pool, name, source, &detail).await?;
        tracing::warn!(user = %name, ?source, door = door.label(), locked = locked.is_some(), "login refused");
        return Err(LoginRefused::WrongCredentials);
    };
    throttles::clear_login_failures(pool, &key).await?;
    Ok(admin)
}
