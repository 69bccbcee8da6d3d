//! The whole HTTP application: the REST API under `/api` and the web UI everywhere else,
//! each request in an `http_request` span ([`request_span`]).

mod request_span;
mod response_headers;

use axum::Router;

pub use request_span::{MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, record_actor, traced};
pub use response_headers::{CONTENT_SECURITY_POLICY, secured};

use crate::api::{self, ApiContext};
use crate::server::ManagementCenter;
use crate::ui::{self, UiContext};

/// The router `mgmt-server run` serves.
pub fn router(center: &ManagementCenter) -> Router {
    let api = api::router(ApiContext::new(
        center.pool.clone(),
        center.services.clone(),
        center.key.clone(),
        api::DEFAULT_REQUESTS_PER_MINUTE,
    ));
    let ui = ui::router(UiContext::new(
        center.pool.clone(),
        center.key.clone(),
        center.services.clone(),
    ));
    api.merge(ui)
}
