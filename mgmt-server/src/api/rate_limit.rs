//! 429 with `Retry-After` when one client goes too fast: requests per source address in
//! each one-minute window, counted in the database so the limit holds across replicas.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use time::OffsetDateTime;

use super::ApiContext;
use super::error::ApiError;
use crate::db::throttles;

/// How many requests one source address may make per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_minute: u32,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Self {
        Self {
            requests_per_minute: requests.max(1),
        }
    }
}

pub(super) async fn limit(
    State(context): State<ApiContext>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(Extension(ConnectInfo(address))) = peer {
        let count = throttles::count_request(&context.pool, address.ip()).await?;
        if count.requests > context.limit.requests_per_minute {
            let wait = (count.window_ends_at - OffsetDateTime::now_utc())
                .whole_seconds()
                .max(1);
            let wait = u64::try_from(wait).unwrap_or(1);
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "FRAMEWORK",
                format!("too many requests from {}; retry in {wait} s", address.ip()),
            );
            error.retry_after_secs = Some(wait);
            return Err(error);
        }
    }
    Ok(next.run(request).await)
}
