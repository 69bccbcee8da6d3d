//! 429 with `Retry-After` when one client goes too fast (per source address).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::Extension;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::ApiContext;
use super::error::ApiError;

/// A token bucket per client address.
pub struct RateLimiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(requests.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            buckets: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` or the seconds to wait.
    fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.buckets
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()).as_secs().max(1))
    }
}

pub(super) async fn limit(
    State(context): State<ApiContext>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(Extension(ConnectInfo(address))) = peer
        && let Err(wait) = context.limiter.check(address.ip())
    {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "FRAMEWORK",
            format!("too many requests from {}; retry in {wait} s", address.ip()),
        );
        error.retry_after_secs = Some(wait);
        return Err(error);
    }
    Ok(next.run(request).await)
}
