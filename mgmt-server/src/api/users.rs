//! Administrators over REST. FMC has no public API for its users (only the read-only
//! `users/authroles`), so these are our extension, in FMC's shapes:
//! `users/users` (list, create; Administrator role to change), `users/users/{id}`
//! (read, `PUT` with any of `role`, `enabled`, `password` to change the role, enable or
//! disable, or reset the password; `DELETE`), and
//! `POST /api/fmc_platform/v1/auth/changepassword` (`{currentPassword, newPassword}`
//! with `X-auth-access-token`: one's own password, whatever one's role). Every rule is
//! the administrators service's ([`crate::admins::administrators`]).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json};
use serde_json::{Value, json};
use uuid::Uuid;

use super::auth::{INVALID_TOKEN, forbidden};
use super::envelope::{BaseUrl, ListQuery, Listing, collection};
use super::error::ApiError;
use super::fields::Fields;
use super::resource::{json_body, parse_id};
use super::{ApiContext, Caller, Routes};
use crate::admins::administrators::{self, AccountChange, PasswordChange};
use crate::admins::sessions::{self, Authenticated};
use crate::admins::{AdministratorError, NewAdministrator};
use crate::db::Actor;
use crate::db::admins::{Administrator, Role};

const COLLECTION: &str = "config:/users/users";

pub(super) fn routes(routes: Routes) -> Routes {
    routes
        .add(
            Method::GET,
            COLLECTION,
            "users",
            "Administrators (extension: FMC has no users API)",
            get(list),
        )
        .add(
            Method::POST,
            COLLECTION,
            "users",
            "Create an administrator {name, password, role, enabled} (extension; Administrator role)",
            post(create),
        )
        .add(
            Method::GET,
            "config:/users/users/{id}",
            "users",
            "One administrator (extension)",
            get(read),
        )
        .add(
            Method::PUT,
            "config:/users/users/{id}",
            "users",
            "Change an administrator's role, enable or disable it, or reset its password: any of {role, enabled, password} (extension; Administrator role; disabling or a new password ends its sessions)",
            put(update),
        )
        .add(
            Method::DELETE,
            "config:/users/users/{id}",
            "users",
            "Delete an administrator (extension; Administrator role; never the last enabled Administrator)",
            delete(remove),
        )
        .add(
            Method::POST,
            "/api/fmc_platform/v1/auth/changepassword",
            "auth",
            "Change one's own password {currentPassword, newPassword} with X-auth-access-token (extension); other sessions end",
            post(change_own_password),
        )
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Administrator => "Administrator",
        Role::NetworkAdmin => "Network Admin",
        Role::ReadOnly => "Read-Only",
    }
}

const ROLES: [(&str, Role); 3] = [
    ("Administrator", Role::Administrator),
    ("Network Admin", Role::NetworkAdmin),
    ("Read-Only", Role::ReadOnly),
];

fn user_json(base: &str, admin: &Administrator) -> Value {
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    json!({
        "id": admin.id,
        "type": "User",
        "name": admin.name,
        "role": { "name": role_name(admin.role.0), "type": "UserRole" },
        "enabled": admin.enabled,
        "lastLoginTime": admin.last_login_at.and_then(rfc3339),
        "links": { "self": format!("{base}/api/fmc_config/v1/domain/{}/users/users/{}", admin.domain_id, admin.id) },
        "metadata": { "version": admin.version.to_string() },
    })
}

/// The role a body names (`"role": "Read-Only"` or `"role": {"name": "Read-Only"}`).
fn role_of(fields: &mut Fields<'_>) -> Option<Role> {
    let value = fields.get("role")?;
    let name = value
        .as_str()
        .or_else(|| value.get("name").and_then(Value::as_str));
    match name.and_then(|n| ROLES.iter().find(|(text, _)| *text == n)) {
        Some((_, role)) => Some(*role),
        None => {
            fields.problem("role: use Administrator, Network Admin or Read-Only");
            None
        }
    }
}

/// Refuses (403, audited) a caller whose role may not manage administrators.
async fn require_manager(
    context: &ApiContext,
    caller: &Caller,
    what: &str,
) -> Result<(), ApiError> {
    if caller.administrator.role.0.can_manage_administrators() {
        return Ok(());
    }
    Err(forbidden(
        context,
        &caller.actor,
        Some(caller.domain_id),
        what,
        format!(
            "administrator {} has the {} role: only an Administrator manages administrators",
            caller.administrator.name,
            role_name(caller.administrator.role.0)
        ),
    )
    .await)
}

fn refused(error: AdministratorError) -> ApiError {
    match error {
        AdministratorError::Refused(e) => e.into(),
        AdministratorError::SetUpAlready => ApiError::bad_request(error.to_string()),
        AdministratorError::Hash => ApiError::internal(error.to_string()),
    }
}

async fn list(
    State(context): State<ApiContext>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = Listing::from_query(&query)?;
    let listed = administrators::list(&context.pool, listing.page).await?;
    let items = listed.items.iter().map(|a| user_json(&base, a)).collect();
    Ok(Json(collection(
        &format!("{base}{}", uri.path()),
        items,
        listed.total,
        &Listing {
            expanded: true,
            ..listing
        },
    )))
}

async fn read(
    State(context): State<ApiContext>,
    BaseUrl(base): BaseUrl,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let admin = administrators::get(&context.pool, id_of(&params)?).await?;
    Ok(Json(user_json(&base, &admin)))
}

fn id_of(params: &HashMap<String, String>) -> Result<Uuid, ApiError> {
    parse_id(params.get("id").map_or("", String::as_str))
}

async fn create(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    require_manager(&context, &caller, "POST users/users").await?;
    let body = json_body(&body)?;
    let mut fields = Fields::new(&body)?;
    let name = fields.required_str("name");
    let password = fields.required_str("password");
    let role = role_of(&mut fields);
    let enabled = fields.bool_or("enabled", true);
    fields.finish()?;
    let input = NewAdministrator {
        name,
        password,
        confirmation: None,
        role: role.unwrap_or(Role::ReadOnly),
    };
    let mut admin = administrators::create(&context.pool, &caller.actor, caller.domain_id, &input)
        .await
        .map_err(refused)?;
    if !enabled {
        admin = administrators::change(
            &context.pool,
            &caller.actor,
            admin.id,
            AccountChange::Disable,
        )
        .await
        .map_err(refused)?;
    }
    Ok((StatusCode::CREATED, Json(user_json(&base, &admin))).into_response())
}

async fn update(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    Path(params): Path<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&params)?;
    require_manager(&context, &caller, &format!("PUT users/users/{id}")).await?;
    let body = json_body(&body)?;
    let mut fields = Fields::new(&body)?;
    let role = role_of(&mut fields);
    let enabled = fields
        .get("enabled")
        .map(|_| fields.bool_or("enabled", true));
    let password = fields.optional_str("password");
    fields.finish()?;
    let mut changes = Vec::new();
    // Enabling first and disabling last: a change never acts on an account the same
    // request is about to give back.
    if enabled == Some(true) {
        changes.push(AccountChange::Enable);
    }
    if let Some(role) = role {
        changes.push(AccountChange::Role(role));
    }
    if let Some(password) = password {
        changes.push(AccountChange::ResetPassword {
            password,
            confirmation: None,
        });
    }
    if enabled == Some(false) {
        changes.push(AccountChange::Disable);
    }
    let mut admin = administrators::get(&context.pool, id).await?;
    for change in changes {
        admin = administrators::change(&context.pool, &caller.actor, id, change)
            .await
            .map_err(refused)?;
    }
    Ok(Json(user_json(&base, &admin)))
}

async fn remove(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&params)?;
    require_manager(&context, &caller, &format!("DELETE users/users/{id}")).await?;
    let admin = administrators::get(&context.pool, id).await?;
    administrators::delete(&context.pool, &caller.actor, id)
        .await
        .map_err(refused)?;
    Ok(Json(user_json(&base, &admin)))
}

async fn change_own_password(
    State(context): State<ApiContext>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    let token = headers
        .get("X-auth-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(Authenticated {
        session,
        administrator,
    }) = sessions::authenticated(&context.pool, token).await?
    else {
        return Err(ApiError::unauthorized(INVALID_TOKEN));
    };
    crate::app::record_actor(&administrator.name);
    let body = json_body(&body)?;
    let mut fields = Fields::new(&body)?;
    let current = fields.required_str("currentPassword");
    let new = fields.required_str("newPassword");
    fields.finish()?;
    let source = peer.map(|Extension(ConnectInfo(address))| address.ip());
    let actor = Actor::administrator(&administrator.name, administrator.id, source);
    let change = PasswordChange {
        current,
        new,
        confirmation: None,
    };
    administrators::change_own_password(
        &context.pool,
        &actor,
        administrator.id,
        session.id,
        &change,
    )
    .await
    .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}
