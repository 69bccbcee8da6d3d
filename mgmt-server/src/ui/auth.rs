//! First-run administrator, login and logout, the session cookie, CSRF tokens and role
//! checks. UI sessions are rows of `api_sessions` (the REST API's table): the cookie
//! holds the access token, the database only its SHA-256.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::form::{Errors, parse};
use super::{UiContext, UiError};
use crate::admins::administrators::{self, Field as AdministratorField};
use crate::admins::login::{self, Door, LoginRefused};
use crate::admins::sessions::{self, Authenticated, UI_SESSION_LIFETIME};
use crate::admins::{AdministratorError, NewAdministrator, SessionError};
use crate::db::Actor;
use crate::db::admins::{Administrator, Role};

/// The session cookie: `__Host-` so it is only ever set Secure, for this host, path `/`.
pub const SESSION_COOKIE: &str = "__Host-fmc_session";
/// The hidden field every form carries.
pub const CSRF_FIELD: &str = "csrf";

/// The logged-in administrator of a request. Extracting it names the administrator in
/// the request's span, and redirects to the login page (or the first-run page) when
/// there is no live session.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub admin: Administrator,
    pub session_id: Uuid,
    pub csrf: String,
    pub source_address: Option<IpAddr>,
}

impl Current {
    pub(crate) fn role(&self) -> Role {
        self.admin.role.0
    }

    pub(crate) fn actor(&self) -> Actor {
        Actor::administrator(&self.admin.name, self.admin.id, self.source_address)
    }

    /// Refuses a change by a read-only administrator.
    pub(crate) fn require_edit(&self) -> Result<(), UiError> {
        if self.role().can_edit() {
            Ok(())
        } else {
            Err(self.forbidden())
        }
    }

    pub(crate) fn require_admin_management(&self) -> Result<(), UiError> {
        if self.role().can_manage_administrators() {
            Ok(())
        } else {
            Err(self.forbidden())
        }
    }

    /// A refusal for this administrator's role (audited on the way out).
    fn forbidden(&self) -> UiError {
        UiError::Forbidden {
            role: role_label(self.role()).to_owned(),
            actor: Box::new(self.actor()),
        }
    }

    /// A change sent by a form: this session's CSRF token, and a role that may edit.
    pub(crate) fn authorize_change(&self, sent_csrf: &str) -> Result<(), UiError> {
        self.check_csrf(sent_csrf)?;
        self.require_edit()
    }

    pub(crate) fn check_csrf(&self, sent: &str) -> Result<(), UiError> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(UiError::Csrf)
        }
    }

    /// What every page's frame shows.
    pub(crate) fn chrome(&self, section: &'static str) -> Chrome {
        Chrome {
            user: self.admin.name.clone(),
            role: role_label(self.role()).to_owned(),
            csrf: self.csrf.clone(),
            section,
            can_edit: self.role().can_edit(),
        }
    }
}

/// The page frame: who is logged in, the CSRF token, which section is active.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub section: &'static str,
    pub can_edit: bool,
}

pub(crate) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Administrator => "Administrator",
        Role::NetworkAdmin => "Network Admin",
        Role::ReadOnly => "Read-Only",
    }
}

impl FromRequestParts<UiContext> for Current {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        context: &UiContext,
    ) -> Result<Self, Self::Rejection> {
        let source_address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(token) = session_token(&parts.headers) else {
            return Err(to_login(context).await);
        };
        let authenticated = sessions::authenticated(&context.pool, &token)
            .await
            .map_err(|e| UiError::from(e).into_response())?;
        let Some(Authenticated {
            session,
            administrator: admin,
        }) = authenticated
        else {
            return Err(to_login(context).await);
        };
        crate::app::record_actor(&admin.name);
        Ok(Self {
            admin,
            session_id: session.id,
            csrf: csrf_token(&token),
            source_address,
        })
    }
}

async fn to_login(context: &UiContext) -> Response {
    match administrators::first_run(&context.pool).await {
        Ok(true) => Redirect::to("/setup").into_response(),
        Ok(false) => Redirect::to("/login").into_response(),
        Err(e) => UiError::from(e).into_response(),
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: a digest of its secret token, so it needs no storage
/// and cannot be computed without the cookie.
fn csrf_token(session_token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("ui-csrf:{session_token}").as_bytes(),
    );
    hex::encode(digest.as_ref())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn session_cookie(token: &str) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        UI_SESSION_LIFETIME.whole_seconds()
    )
}

fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

// ---------------------------------------------------------------------------------------
// Pages.

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub first_run: bool,
    pub name: String,
    pub errors: Errors,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub(crate) async fn setup_page(State(context): State<UiContext>) -> Result<Response, UiError> {
    if !administrators::first_run(&context.pool).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(LoginPage {
        first_run: true,
        name: String::new(),
        errors: Errors::default(),
    }
    .into_response())
}

pub(crate) async fn setup_submit(
    State(context): State<UiContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: LoginForm = parse(&body)?;
    let input = NewAdministrator {
        name: form.name.clone(),
        password: form.password,
        confirmation: Some(form.confirm),
        role: Role::Administrator,
    };
    let errors = match administrators::create_first(&context.pool, context.domain_id, &input).await
    {
        Ok(admin) => return start_session(&context, &admin, Some(peer.ip())).await,
        Err(AdministratorError::SetUpAlready) => {
            return Ok(Redirect::to("/login").into_response());
        }
        Err(AdministratorError::Hash) => return Err(UiError::Task),
        Err(AdministratorError::Refused(e)) => Errors::from_change(e, administrator_form_field)?,
    };
    Ok(LoginPage {
        first_run: true,
        name: form.name,
        errors,
    }
    .into_response())
}

/// The form field of an administrator field (the first-run and System > Users forms
/// name them alike).
pub(crate) fn administrator_form_field(field: AdministratorField) -> &'static str {
    match field {
        AdministratorField::Name => "name",
        AdministratorField::Password => "password",
        AdministratorField::Confirmation => "confirm",
        AdministratorField::CurrentPassword => "current",
        AdministratorField::Role => "role",
        AdministratorField::Enabled | AdministratorField::Account => "form",
    }
}

pub(crate) async fn login_page(State(context): State<UiContext>) -> Result<Response, UiError> {
    if administrators::first_run(&context.pool).await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(LoginPage {
        first_run: false,
        name: String::new(),
        errors: Errors::default(),
    }
    .into_response())
}

pub(crate) async fn login_submit(
    State(context): State<UiContext>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: LoginForm = parse(&body)?;
    let refused = |message: &str| {
        let mut errors = Errors::default();
        errors.add("password", message);
        LoginPage {
            first_run: false,
            name: form.name.clone(),
            errors,
        }
        .into_response()
    };
    let admin = match login::authenticate(
        &context.pool,
        &form.name,
        &form.password,
        Some(peer.ip()),
        Door::WebUi,
    )
    .await
    {
        Ok(admin) => admin,
        Err(LoginRefused::Locked { .. }) => {
            return Ok(refused(
                "Too many failed logins from your address; wait a few minutes before trying again.",
            ));
        }
        Err(LoginRefused::WrongCredentials) => {
            return Ok(refused("The user name or password is wrong."));
        }
        Err(LoginRefused::Db(e)) => return Err(e.into()),
        Err(LoginRefused::Task) => return Err(UiError::Task),
    };
    start_session(&context, &admin, Some(peer.ip())).await
}

async fn start_session(
    context: &UiContext,
    admin: &Administrator,
    source: Option<IpAddr>,
) -> Result<Response, UiError> {
    crate::app::record_actor(&admin.name);
    let access = match sessions::open_ui_session(&context.pool, admin, source).await {
        Ok(tokens) => tokens.access,
        Err(SessionError::Db(e)) => return Err(e.into()),
        Err(_) => return Err(UiError::Task),
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&access))],
        Redirect::to("/"),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

pub(crate) async fn logout(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: CsrfOnly = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    sessions::log_out(
        &context.pool,
        &current.actor(),
        context.domain_id,
        current.session_id,
    )
    .await?;
    Ok((
        [(header::SET_COOKIE, cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_secure_http_only_and_same_site_strict() {
        let cookie = session_cookie("abc");
        assert!(cookie.starts_with("__Host-fmc_session=abc;"));
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
    }

    #[test]
    fn a_csrf_token_depends_on_the_session_and_is_checked_exactly() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert!(constant_time_eq(
            csrf_token("a").as_bytes(),
            csrf_token("a").as_bytes()
        ));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn the_session_token_is_read_from_among_other_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; __Host-fmc_session=tok; b=2"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(session_token(&headers).as_deref(), Some("tok"));
    }
}
