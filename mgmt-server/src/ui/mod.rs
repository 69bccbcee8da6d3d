//! The management center's web UI: server-rendered pages (askama templates under
//! `web/templates`, CSS and a little progressive JavaScript under `web/static`), shaped
//! like FMC: Overview, Devices, Objects, Deploy, System.
//!
//! Every page needs a logged-in administrator (a database session behind a
//! `__Host-` cookie that is Secure, HttpOnly and SameSite=Strict); every form carries a
//! CSRF token bound to the session; roles are checked on every change. Templates
//! autoescape everything, so stored names are shown as text.

mod auth;
mod bench;
mod certificates;
mod devices;
mod form;
mod listing;
mod objects;
mod pages;
mod pool_overrides;
mod ravpn;
mod system;

use std::future::Future;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::{DbError, EncryptionKey};
use crate::services::Services;

pub use auth::{CSRF_FIELD, SESSION_COOKIE};

/// What the UI's handlers share.
#[derive(Clone)]
pub struct UiContext {
    pub pool: PgPool,
    pub key: EncryptionKey,
    pub services: Services,
    /// The domain the UI manages (FMC's Global domain).
    pub domain_id: Uuid,
}

impl UiContext {
    /// The UI of the Global domain.
    pub fn new(pool: PgPool, key: EncryptionKey, services: Services) -> Self {
        Self {
            pool,
            key,
            services,
            domain_id: crate::db::GLOBAL_DOMAIN_ID,
        }
    }
}

/// The UI's routes, with security headers on every response ([`crate::app::secured`]),
/// every refusal for a role audited, and an `http_request`
/// span around every request. Mount it at `/` next to the REST API (`/api/...`); it
/// uses no path under `/api`.
pub fn router(context: UiContext) -> Router {
    let ui = Router::new()
        .route("/", get(pages::overview))
        .route("/setup", get(auth::setup_page).post(auth::setup_submit))
        .route("/login", get(auth::login_page).post(auth::login_submit))
        .route("/logout", post(auth::logout))
        .route("/static/app.css", get(static_css))
        .route("/static/app.js", get(static_js))
        .route("/objects", get(objects::pools))
        .route(
            "/objects/pools",
            get(objects::pools).post(objects::pool_create),
        )
        .route("/objects/pools/{id}/overrides", post(pool_overrides::add))
        .route(
            "/objects/pools/{id}/overrides/{override}/delete",
            post(pool_overrides::remove),
        )
        .route(
            "/objects/group-policies",
            get(objects::group_policies).post(objects::group_policy_create),
        )
        .route(
            "/objects/cert-enrollments",
            get(objects::enrollments).post(objects::enrollment_create),
        )
        .route(
            "/objects/local-users",
            get(objects::local_users).post(objects::local_user_create),
        )
        .route("/delete/{kind}/{id}", post(objects::delete))
        .route("/ravpn", get(ravpn::list))
        .route("/ravpn/new", get(ravpn::wizard).post(ravpn::wizard_submit))
        .route("/ravpn/{id}", get(ravpn::edit).post(ravpn::edit_submit))
        .route("/ravpn/{id}/preview", get(ravpn::preview))
        .route(
            "/ravpn/{id}/profiles/new",
            get(ravpn::profile_new).post(ravpn::profile_create),
        )
        .route(
            "/ravpn/{id}/profiles/{profile}",
            get(ravpn::profile_edit).post(ravpn::profile_update),
        )
        .route("/devices", get(devices::list).post(devices::create))
        .route("/devices/certificates", get(certificates::list))
        .route(
            "/devices/certificates/{id}/delete",
            post(certificates::delete),
        )
        .route("/devices/{id}", get(devices::detail))
        .route("/devices/{id}/state", get(devices::state))
        .route("/devices/{id}/delete", post(devices::delete))
        .route(
            "/deploy",
            get(devices::deploy_index).post(devices::deploy_submit),
        )
        .route("/deploy/{id}", get(devices::deployment))
        .route("/deploy/{id}/rollback", post(devices::rollback))
        .route("/mca-bench", get(bench::page).post(bench::run))
        .route("/sessions", get(devices::sessions))
        .route("/sessions/terminate", post(devices::terminate))
        .route(
            "/system/administrators",
            get(system::administrators).post(system::administrator_create),
        )
        .route(
            "/system/administrators/{id}",
            post(system::administrator_change),
        )
        .route(
            "/system/password",
            get(system::password_page).post(system::password_submit),
        )
        .route("/system/audit", get(system::audit))
        .layer(middleware::from_fn_with_state(
            context.clone(),
            audit_forbidden,
        ))
        .with_state(context);
    crate::app::traced(crate::app::secured(ui))
}

/// Serves `router` over HTTPS (a certificate for `localhost` issued by `ca`) on
/// `listener`: what the browser tests use.
pub async fn serve_for_tests(
    listener: std::net::TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    router: Router,
) -> std::io::Result<()> {
    crate::server::serve_https(
        listener,
        tls,
        crate::listener::ConnectionCaps::default(),
        router,
    )
    .await
}

const APP_CSS: &str = include_str!("../../../web/static/app.css");
const APP_JS: &str = include_str!("../../../web/static/app.js");

async fn static_css() -> Response {
    static_file("text/css; charset=utf-8", APP_CSS)
}

async fn static_js() -> Response {
    static_file("text/javascript; charset=utf-8", APP_JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Marks a 403 answer for the audit layer ([`audit_forbidden`]).
#[derive(Debug, Clone)]
struct RefusedForRole(Box<crate::db::Actor>);

/// Writes an audit row (FORBIDDEN) for every change refused for the caller's role.
async fn audit_forbidden(
    axum::extract::State(context): axum::extract::State<UiContext>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let what = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    if let Some(RefusedForRole(actor)) = response.extensions().get::<RefusedForRole>()
        && let Err(e) =
            crate::audit::record_forbidden(&context.pool, actor, Some(context.domain_id), &what)
                .await
    {
        return UiError::from(e).into_response();
    }
    response
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("your role ({role}) may not make this change")]
    Forbidden {
        role: String,
        /// Who tried: the refusal is audited.
        actor: Box<crate::db::Actor>,
    },
    #[error(
        "the form was not sent by this session (CSRF token missing or wrong); reload the page and try again"
    )]
    Csrf,
    #[error("the form could not be read: {0}")]
    BadForm(String),
    #[error("{0}")]
    Deploy(#[from] crate::deploy::DeployError),
    #[error("{0}")]
    Sensor(#[from] crate::devices::SensorError),
    #[error("a background task failed")]
    Task,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Db(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Db(DbError::NotFound { .. }) => StatusCode::NOT_FOUND,
            Self::Db(
                DbError::InUse { .. }
                | DbError::BuiltIn { .. }
                | DbError::Conflict { .. }
                | DbError::Stale { .. }
                | DbError::WrongState { .. },
            ) => StatusCode::CONFLICT,
            Self::Db(_) | Self::Task | Self::Deploy(_) | Self::Sensor(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Forbidden { .. } | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadForm(_) => StatusCode::BAD_REQUEST,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "UI request failed");
        }
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            "The database is unavailable right now. Nothing was changed; reload the page in a few seconds.".to_owned()
        } else {
            self.to_string()
        };
        let page = pages::ErrorPage {
            status: status.as_u16(),
            message,
        };
        let mut response = (status, page).into_response();
        if let Self::Forbidden { actor, .. } = self {
            response.extensions_mut().insert(RefusedForRole(actor));
        }
        response
    }
}
/// Runs `make()`'s future on a blocking thread of the current runtime. The deploy
/// engine's compile path (`device_policy::load`) is a future the compiler cannot prove
/// `Send` for every lifetime (generic sqlx `Acquire` calls), which axum handlers need;
/// built and awaited on its own thread, it never has to be.
pub(crate) async fn off_thread<F, Fut, T>(make: F) -> Result<T, UiError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    // The request's span goes along, so what the work logs names the request.
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| handle.block_on(make())))
        .await
        .map_err(|_| UiError::Task)
}
