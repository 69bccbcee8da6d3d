//! The whole HTTP application: the REST API (and, with the web UI issue, the UI).

use axum::Router;

use crate::api::{self, ApiContext};
use crate::server::ManagementCenter;

/// The router `mgmt-server run` serves.
pub fn router(center: &ManagementCenter) -> Router {
    let context = ApiContext::new(
        center.pool.clone(),
        center.engine.clone(),
        center.key.clone(),
        api::DEFAULT_REQUESTS_PER_MINUTE,
    );
    api::router(context)
}
