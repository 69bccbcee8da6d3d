//! System: administrators with their roles, and the audit log with filters.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use time::OffsetDateTime;

use super::auth::{Chrome, Current, administrator_form_field, role_label};
use super::form::{Errors, parse};
use super::listing::Pager;
use super::{UiContext, UiError};
use crate::admins::administrators::{self, AccountChange, PasswordChange};
use crate::admins::{AdministratorError, NewAdministrator};
use crate::db::Page;
use crate::db::admins::{Administrator, Role};
use crate::db::audit::{AuditAction, AuditFilter, AuditRecord};
use uuid::Uuid;

pub(crate) struct AdminRow {
    pub admin: Administrator,
    pub role: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AdminForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "system/administrators.html")]
pub(crate) struct AdministratorsPage {
    chrome: Chrome,
    items: Vec<AdminRow>,
    form: AdminForm,
    errors: Errors,
    open: bool,
    can_manage: bool,
    /// Why a lifecycle action was refused.
    refused: Option<String>,
}

async fn admin_rows(context: &UiContext) -> Result<Vec<AdminRow>, UiError> {
    Ok(administrators::list(&context.pool, Page::ALL)
        .await?
        .items
        .into_iter()
        .map(|admin| AdminRow {
            role: role_label(admin.role.0),
            admin,
        })
        .collect())
}

pub(crate) async fn administrators(
    State(context): State<UiContext>,
    current: Current,
) -> Result<AdministratorsPage, UiError> {
    Ok(AdministratorsPage {
        chrome: current.chrome("system"),
        items: admin_rows(&context).await?,
        form: AdminForm {
            role: "Read-Only".into(),
            ..AdminForm::default()
        },
        errors: Errors::default(),
        open: false,
        can_manage: current.role().can_manage_administrators(),
        refused: None,
    })
}

pub(crate) async fn administrator_create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: AdminForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_admin_management()?;
    let role = match form.role.as_str() {
        "Administrator" => Some(Role::Administrator),
        "Network Admin" => Some(Role::NetworkAdmin),
        "Read-Only" => Some(Role::ReadOnly),
        _ => None,
    };
    let input = NewAdministrator {
        name: form.name.clone(),
        password: std::mem::take(&mut form.password),
        confirmation: None,
        role: role.unwrap_or(Role::ReadOnly),
    };
    let mut errors = match role {
        // The rules are checked even when the role is missing, so every field shows
        // its error at once.
        None => {
            let mut errors = Errors::default();
            errors.add_problems(&administrators::check(&input), administrator_form_field);
            errors
        }
        Some(_) => {
            match administrators::create(&context.pool, &current.actor(), context.domain_id, &input)
                .await
            {
                Ok(_) => return Ok(Redirect::to("/system/administrators").into_response()),
                Err(AdministratorError::Refused(e)) => {
                    Errors::from_change(e, administrator_form_field)?
                }
                Err(AdministratorError::Hash | AdministratorError::SetUpAlready) => {
                    return Err(UiError::Task);
                }
            }
        }
    };
    if role.is_none() {
        errors.add("role", "Choose a role.");
    }
    form.password.clear();
    Ok(AdministratorsPage {
        chrome: current.chrome("system"),
        items: admin_rows(&context).await?,
        form,
        errors,
        open: true,
        can_manage: true,
        refused: None,
    }
    .into_response())
}

fn role_of(text: &str) -> Option<Role> {
    match text {
        "Administrator" => Some(Role::Administrator),
        "Network Admin" => Some(Role::NetworkAdmin),
        "Read-Only" => Some(Role::ReadOnly),
        _ => None,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AccountForm {
    #[serde(default)]
    csrf: String,
    /// `enable`, `disable`, `role`, `password` or `delete`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// One lifecycle action on one account (a row's buttons on System > Users).
pub(crate) async fn administrator_change(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: AccountForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    current.require_admin_management()?;
    let actor = current.actor();
    let outcome = match form.action.as_str() {
        "delete" => administrators::delete(&context.pool, &actor, id).await,
        action => {
            let change = match action {
                "enable" => AccountChange::Enable,
                "disable" => AccountChange::Disable,
                "role" => match role_of(&form.role) {
                    Some(role) => AccountChange::Role(role),
                    None => return Err(UiError::BadForm("choose a role".into())),
                },
                "password" => AccountChange::ResetPassword {
                    password: std::mem::take(&mut form.password),
                    confirmation: None,
                },
                other => return Err(UiError::BadForm(format!("unknown action {other:?}"))),
            };
            administrators::change(&context.pool, &actor, id, change)
                .await
                .map(|_| ())
        }
    };
    let message = match outcome {
        Ok(()) => return Ok(Redirect::to("/system/administrators").into_response()),
        Err(AdministratorError::Refused(e)) => {
            let errors = Errors::from_change(e, administrator_form_field)?;
            errors
                .fields()
                .map(|(_, message)| message)
                .collect::<Vec<_>>()
                .join(" ")
        }
        Err(AdministratorError::Hash | AdministratorError::SetUpAlready) => {
            return Err(UiError::Task);
        }
    };
    Ok(AdministratorsPage {
        chrome: current.chrome("system"),
        items: admin_rows(&context).await?,
        form: AdminForm {
            role: "Read-Only".into(),
            ..AdminForm::default()
        },
        errors: Errors::default(),
        open: false,
        can_manage: true,
        refused: Some(message),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "system/password.html")]
pub(crate) struct PasswordPage {
    chrome: Chrome,
    errors: Errors,
    done: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// System > Change Password: one's own, whatever one's role.
pub(crate) async fn password_page(current: Current) -> PasswordPage {
    PasswordPage {
        chrome: current.chrome("system"),
        errors: Errors::default(),
        done: false,
    }
}

pub(crate) async fn password_submit(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<PasswordPage, UiError> {
    let form: PasswordForm = parse(&body)?;
    current.check_csrf(&form.csrf)?;
    let change = PasswordChange {
        current: form.current,
        new: form.password,
        confirmation: Some(form.confirm),
    };
    let errors = match administrators::change_own_password(
        &context.pool,
        &current.actor(),
        current.admin.id,
        current.session_id,
        &change,
    )
    .await
    {
        Ok(_) => Errors::default(),
        Err(AdministratorError::Refused(e)) => Errors::from_change(e, administrator_form_field)?,
        Err(AdministratorError::Hash | AdministratorError::SetUpAlready) => {
            return Err(UiError::Task);
        }
    };
    let done = errors.is_empty();
    Ok(PasswordPage {
        chrome: current.chrome("system"),
        errors,
        done,
    })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    page: Option<usize>,
}

pub(crate) struct AuditRow {
    pub at: String,
    pub record: AuditRecord,
    pub action: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "system/audit.html")]
pub(crate) struct AuditPage {
    chrome: Chrome,
    pager: Pager,
    query: AuditQuery,
    actions: Vec<String>,
    items: Vec<AuditRow>,
    errors: Errors,
}

/// Audit rows per page.
const AUDIT_PAGE_SIZE: usize = 50;

const ACTIONS: [AuditAction; 11] = [
    AuditAction::Create,
    AuditAction::Update,
    AuditAction::Delete,
    AuditAction::Login,
    AuditAction::LoginFailed,
    AuditAction::Logout,
    AuditAction::Deploy,
    AuditAction::Rollback,
    AuditAction::Register,
    AuditAction::TerminateSessions,
    AuditAction::Forbidden,
];

fn action_name(action: AuditAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{action:?}"))
}

pub(crate) async fn audit(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<AuditQuery>,
) -> Result<AuditPage, UiError> {
    let mut errors = Errors::default();
    let mut filter = AuditFilter {
        actor: Some(query.actor.trim().to_owned()).filter(|a| !a.is_empty()),
        action: ACTIONS
            .into_iter()
            .find(|a| action_name(*a) == query.action),
        ..AuditFilter::default()
    };
    if !query.since.is_empty() {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        match time::Date::parse(query.since.trim(), format) {
            Ok(date) => filter.since = Some(date.midnight().assume_utc()),
            Err(_) => errors.add("since", "Enter a date as YYYY-MM-DD."),
        }
    }
    // The database cuts the page: the log only grows.
    let asked = query.page.unwrap_or(1).max(1);
    let offset = i64::try_from((asked - 1) * AUDIT_PAGE_SIZE).unwrap_or(i64::MAX);
    let mut listed = crate::audit::list(
        &context.pool,
        &filter,
        Page {
            offset,
            limit: AUDIT_PAGE_SIZE as i64,
        },
    )
    .await?;
    let total = usize::try_from(listed.total).unwrap_or(0);
    let page = Pager::clamp(Some(asked), total, AUDIT_PAGE_SIZE);
    if page != asked {
        let offset = i64::try_from((page - 1) * AUDIT_PAGE_SIZE).unwrap_or(0);
        let last = Page {
            offset,
            limit: AUDIT_PAGE_SIZE as i64,
        };
        listed = crate::audit::list(&context.pool, &filter, last).await?;
    }
    let kept = vec![
        ("actor", query.actor.clone()),
        ("action", query.action.clone()),
        ("since", query.since.clone()),
    ];
    let pager = Pager::new(
        "/system/audit",
        kept,
        String::new(),
        page,
        AUDIT_PAGE_SIZE,
        total,
        listed.items.len(),
    );
    let items = listed
        .items
        .into_iter()
        .map(|record| AuditRow {
            at: format_time(record.occurred_at),
            action: action_name(record.action.0),
            record,
        })
        .collect();
    Ok(AuditPage {
        chrome: current.chrome("system"),
        pager,
        query,
        actions: ACTIONS.into_iter().map(action_name).collect(),
        items,
        errors,
    })
}

pub(crate) fn format_time(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(format).unwrap_or_default()
}
