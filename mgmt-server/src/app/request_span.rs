//! One `http_request` span around every REST and UI request, so a request can be
//! followed through the logs: `method`, `route` (the matched route template, never the
//! raw URI with its ids and query), `request_id` (also sent back in `X-Request-Id`),
//! `actor` (the administrator, once the token or session cookie names one), and at the
//! end `status` and `latency_ms`.
//!
//! Nothing else of the request is read: no header but `X-Request-Id`, no body, so no
//! token, cookie or password can reach the span.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::field::Empty;
use tracing::{Instrument as _, Span};
use uuid::Uuid;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a client.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// `router` with an `http_request` span around each of its routes.
pub fn traced(router: Router) -> Router {
    router.layer(middleware::from_fn(trace_request))
}

/// Names the administrator of the current request in its `http_request` span.
pub fn record_actor(name: &str) {
    Span::current().record("actor", name);
}

async fn trace_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(request.headers());
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        route = Empty,
        request_id = %request_id,
        actor = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    if let Some(route) = request.extensions().get::<MatchedPath>() {
        span.record("route", route.as_str());
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency_ms);
    span.in_scope(|| tracing::debug!("request finished"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The client's `X-Request-Id` when it is short and made of safe characters (so it can
/// go into logs and back into a header as it is), else a fresh one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_safe_request_id(id))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned)
}

fn is_safe_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests;
