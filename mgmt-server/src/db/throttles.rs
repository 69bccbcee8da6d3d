//! Shared counters that slow clients down: refused logins (per source address, and per
//! user name from one address: keys from [`source_key`] and [`user_at_source_key`] in
//! the `login_throttle` table) and REST requests per source address. Both live in the database so that every replica counts
//! the same attempts. Rows that no longer matter are swept as new ones are written, so
//! a stream of made-up names or addresses cannot grow the tables without bound.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgExecutor;
use time::OffsetDateTime;

use super::DbError;

/// How many refusals lock a name, within what window, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLockPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

/// The key a user name is counted under: the same for `Admin` and ` admin`.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase().chars().take(256).collect()
}

/// The key refused logins from `source` are counted under, whatever the names.
pub fn source_key(source: Option<IpAddr>) -> String {
    match source {
        Some(address) => format!("source {address}"),
        None => "source unknown".to_owned(),
    }
}

/// The key refused logins of `name` from `source` are counted under. A name key is at
/// most 200 characters here, so the whole key fits the column's 256.
pub fn user_at_source_key(name: &str, source: Option<IpAddr>) -> String {
    let name: String = name_key(name).chars().take(200).collect();
    let source = source.map_or_else(|| "unknown".to_owned(), |a| a.to_string());
    format!("user {source} {name}")
}

/// Until when `name_key` is locked, if it is locked now.
pub async fn login_locked_until(
    exec: impl PgExecutor<'_>,
    name_key: &str,
) -> Result<Option<OffsetDateTime>, DbError> {
    sqlx::query_scalar!(
        "SELECT locked_until FROM login_throttle WHERE name_key = $1 AND locked_until > now()",
        name_key,
    )
    .fetch_optional(exec)
    .await
    .map(Option::flatten)
    .map_err(DbError::sql("read a login lock"))
}

/// Counts a refusal of `name_key`; returns until when it is locked now, if it is.
pub async fn record_login_failure(
    exec: impl PgExecutor<'_> + Copy,
    name_key: &str,
    policy: &LoginLockPolicy,
) -> Result<Option<OffsetDateTime>, DbError> {
    let max = i32::try_from(policy.max_failures).unwrap_or(i32::MAX);
    let failures = sqlx::query_scalar!(
        "INSERT INTO login_throttle AS t (name_key, window_started_at, failures)
         VALUES ($1, now(), 1)
         ON CONFLICT (name_key) DO UPDATE SET
             window_started_at = CASE WHEN t.window_started_at <= now() - make_interval(secs => $2)
                                      THEN now() ELSE t.window_started_at END,
             failures = CASE WHEN t.window_started_at <= now() - make_interval(secs => $2)
                             THEN 1 ELSE t.failures + 1 END
         RETURNING failures",
        name_key,
        policy.window.as_secs_f64(),
    )
    .fetch_one(exec)
    .await
    .map_err(DbError::sql("count a refused login"))?;
    sweep_logins(exec, policy).await?;
    if failures < max {
        return login_locked_until(exec, name_key).await;
    }
    // Lock once the window holds `max` refusals, and start counting afresh.
    let locked = sqlx::query_scalar!(
        "UPDATE login_throttle
            SET locked_until = now() + make_interval(secs => $3), failures = 0, window_started_at = now()
          WHERE name_key = $1 AND failures >= $2
         RETURNING locked_until",
        name_key,
        max,
        policy.lockout.as_secs_f64(),
    )
    .fetch_optional(exec)
    .await
    .map(Option::flatten)
    .map_err(DbError::sql("lock a user name"))?;
    Ok(locked)
}

/// Forgets a name's refusals (after a successful login).
pub async fn clear_login_failures(
    exec: impl PgExecutor<'_>,
    name_key: &str,
) -> Result<(), DbError> {
    sqlx::query!("DELETE FROM login_throttle WHERE name_key = $1", name_key)
        .execute(exec)
        .await
        .map_err(DbError::sql("clear refused logins"))?;
    Ok(())
}

/// Deletes up to 100 rows whose window and lock are both over.
async fn sweep_logins(exec: impl PgExecutor<'_>, policy: &LoginLockPolicy) -> Result<(), DbError> {
    sqlx::query!(
        "DELETE FROM login_throttle WHERE name_key IN (
             SELECT name_key FROM login_throttle
             WHERE window_started_at < now() - make_interval(secs => $1)
               AND (locked_until IS NULL OR locked_until < now())
             LIMIT 100)",
        policy.window.as_secs_f64(),
    )
    .execute(exec)
    .await
    .map_err(DbError::sql("sweep old refused logins"))?;
    Ok(())
}

/// A source's requests in the current one-minute window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCount {
    pub requests: u32,
    /// When the window ends and the count starts again.
    pub window_ends_at: OffsetDateTime,
}

/// Counts one REST request from `source` in the current minute.
pub async fn count_request(
    exec: impl PgExecutor<'_> + Copy,
    source: IpAddr,
) -> Result<RequestCount, DbError> {
    let counted = sqlx::query!(
        r#"INSERT INTO api_request_counts AS c (source_address, window_started_at, requests)
         VALUES ($1, date_trunc('minute', now()), 1)
         ON CONFLICT (source_address) DO UPDATE SET
             requests = CASE WHEN c.window_started_at = date_trunc('minute', now())
                             THEN c.requests + 1 ELSE 1 END,
             window_started_at = date_trunc('minute', now())
         RETURNING requests, window_started_at + interval '1 minute' AS "window_ends_at!""#,
        super::inet(source),
    )
    .fetch_one(exec)
    .await
    .map_err(DbError::sql("count a request"))?;
    if counted.requests == 1 {
        // A new window for this source: sweep a few sources whose window is over.
        sqlx::query!(
            "DELETE FROM api_request_counts WHERE source_address IN (
                 SELECT source_address FROM api_request_counts
                 WHERE window_started_at < date_trunc('minute', now()) LIMIT 100)"
        )
        .execute(exec)
        .await
        .map_err(DbError::sql("sweep old request counts"))?;
    }
    Ok(RequestCount {
        requests: u32::try_from(counted.requests).unwrap_or(0),
        window_ends_at: counted.window_ends_at,
    })
}
