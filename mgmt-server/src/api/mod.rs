//! The FMC-shaped REST API: `/api/fmc_platform/v1/...` (tokens, server version) and
//! `/api/fmc_config/v1/domain/{domain}/...` (objects, RA VPN policies and connection
//! profiles, devices, deployment, RA VPN sessions), with FMC's envelopes, references,
//! error bodies, ETag/If-Match, and 429 with Retry-After. Every route is declared once
//! in [`routes`], which builds both the router and `/api/openapi.json`.
//!
//! Handlers are thin: read the request ([`fields::Fields`]), call a repository or the
//! deploy engine, render FMC JSON. The conversion between FMC JSON and the database
//! types lives in one module per resource.

pub mod auth;
mod deployment;
mod devices;
pub mod envelope;
pub mod error;
pub mod fields;
mod health;
mod objects;
pub mod openapi;
mod rate_limit;
mod ravpn;
mod resource;
mod users;
mod versioning;

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;
use sqlx::PgPool;

use crate::db::EncryptionKey;
use crate::services::Services;
pub use auth::Caller;
pub use error::ApiError;
pub use rate_limit::RateLimit;

/// Requests one client may make per minute before 429 (FMC: 120).
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 120;

/// What every handler reaches.
#[derive(Clone)]
pub struct ApiContext {
    pub pool: PgPool,
    pub services: Services,
    pub key: EncryptionKey,
    pub limit: RateLimit,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext").finish_non_exhaustive()
    }
}

impl ApiContext {
    pub fn new(
        pool: PgPool,
        services: Services,
        key: EncryptionKey,
        requests_per_minute: u32,
    ) -> Self {
        Self {
            pool,
            services,
            key,
            limit: RateLimit::per_minute(requests_per_minute),
        }
    }
}

/// Prefix of every configuration path.
pub const CONFIG: &str = "/api/fmc_config/v1/domain/{domain}";

/// One documented route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDoc {
    pub method: Method,
    pub path: String,
    pub summary: &'static str,
    pub tag: &'static str,
}

/// Routes and their documentation, declared together.
pub(crate) struct Routes {
    platform: Router<ApiContext>,
    config: Router<ApiContext>,
    docs: Vec<RouteDoc>,
}

impl Routes {
    fn add(
        mut self,
        method: Method,
        path: &str,
        tag: &'static str,
        summary: &'static str,
        handler: MethodRouter<ApiContext>,
    ) -> Self {
        if let Some(rest) = path.strip_prefix("config:") {
            let full = format!("{CONFIG}{rest}");
            self.config = self.config.route(&full, handler);
            self.docs.push(RouteDoc {
                method,
                path: full,
                summary,
                tag,
            });
        } else {
            self.platform = self.platform.route(path, handler);
            self.docs.push(RouteDoc {
                method,
                path: path.to_owned(),
                summary,
                tag,
            });
        }
        self
    }
}

/// Every route of the API, with its documentation.
pub(crate) fn routes() -> Routes {
    use axum::routing::{get, post};
    let routes = Routes {
        platform: Router::new(),
        config: Router::new(),
        docs: Vec::new(),
    };
    let routes = routes
        .add(
            Method::POST,
            "/api/fmc_platform/v1/auth/generatetoken",
            "auth",
            "Log in with HTTP Basic; tokens come back in headers",
            post(auth::generate_token),
        )
        .add(
            Method::POST,
            "/api/fmc_platform/v1/auth/refreshtoken",
            "auth",
            "Renew the access and refresh tokens",
            post(auth::refresh_token),
        )
        .add(
            Method::GET,
            "/api/fmc_platform/v1/info/serverversion",
            "system",
            "Server version (FMC-compatible numbering)",
            get(auth::server_version),
        );
    let routes = objects::routes(routes);
    let routes = ravpn::routes(routes);
    let routes = devices::routes(routes);
    let routes = deployment::routes(routes);
    let routes = users::routes(routes);
    health::routes(routes)
}

/// The API router for `context`; every request runs in an `http_request` span.
pub fn router(context: ApiContext) -> Router {
    let Routes {
        platform,
        config,
        docs,
    } = routes();
    let document = openapi::document(&docs);
    let config = config.route_layer(axum::middleware::from_fn_with_state(
        context.clone(),
        auth::require_session,
    ));
    let api = platform
        .merge(config)
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document) }
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            context.clone(),
            rate_limit::limit,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(context);
    crate::app::traced(crate::app::secured(api))
}

/// The documented routes (for tests and the OpenAPI document).
pub fn documented_routes() -> Vec<RouteDoc> {
    routes().docs
}

#[cfg(test)]
mod tests;
