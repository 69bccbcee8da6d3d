//! Devices > Device Management (add with registration progress, delete), Deploy
//! (pending changes with CLI diff, deploy with live progress, history with transcripts,
//! rollback) and RA VPN sessions (list with filters, detail, terminate).

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vpn_core::channel::TerminateRequest;
use vpn_core::session::SessionRecord;

use super::auth::{Chrome, CsrfOnly, Current};
use super::form::{Errors, parse};
use super::listing::{ListQuery, Pager, paginate};
use super::pages::{SENSOR_WAIT, registration_label};
use super::{UiContext, UiError};
use crate::db::Page;
use crate::db::deployments::{Deployment, DeploymentJob, DeploymentKind, JobFilter, JobStatus};
use crate::db::devices::{Device, DeviceInput, RegistrationState};
use crate::devices::Termination;
use crate::devices::records::Field as DeviceField;

// ---------------------------------------------------------------------------------------
// Device Management.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    registration_key: String,
    #[serde(default)]
    nat_id: String,
}

pub(crate) struct DeviceRow {
    pub device: Device,
    pub state: &'static str,
    pub state_class: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "devices/list.html")]
pub(crate) struct DevicesPage {
    chrome: Chrome,
    items: Vec<DeviceRow>,
    pager: Pager,
    form: DeviceForm,
    errors: Errors,
    open: bool,
}

fn device_rows(devices: Vec<Device>) -> Vec<DeviceRow> {
    devices
        .into_iter()
        .map(|device| {
            let (state, state_class) = registration_label(&device);
            DeviceRow {
                device,
                state,
                state_class,
            }
        })
        .collect()
}

pub(crate) async fn list(
    State(context): State<UiContext>,
    current: Current,
    Query(query): Query<ListQuery>,
) -> Result<DevicesPage, UiError> {
    devices_page(
        &context,
        &current,
        &query,
        DeviceForm::default(),
        Errors::default(),
        false,
    )
    .await
}

async fn devices_page(
    context: &UiContext,
    current: &Current,
    query: &ListQuery,
    form: DeviceForm,
    errors: Errors,
    open: bool,
) -> Result<DevicesPage, UiError> {
    let all = device_rows(
        context
            .services
            .sensors
            .devices(context.domain_id, Page::ALL)
            .await?
            .items,
    );
    let (items, pager) = paginate(all, query, "/devices", |r| {
        format!("{} {} {}", r.device.name, r.device.host_name, r.state)
    });
    Ok(DevicesPage {
        chrome: current.chrome("devices"),
        items,
        pager,
        form,
        errors,
        open,
    })
}

pub(crate) async fn create(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let mut form: DeviceForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let input = DeviceInput {
        name: form.name.clone(),
        description: String::new(),
        host_name: form.host.clone(),
        nat_id: Some(form.nat_id.clone()),
    };
    let added = context
        .services
        .sensors
        .add_device(
            &current.actor(),
            context.domain_id,
            &input,
            &form.registration_key,
        )
        .await;
    let errors = match added {
        Ok(device) => return Ok(Redirect::to(&format!("/devices/{}", device.id)).into_response()),
        Err(e) => Errors::from_change(e, device_form_field)?,
    };
    form.registration_key.clear();
    Ok(devices_page(
        &context,
        &current,
        &ListQuery::default(),
        form,
        errors,
        true,
    )
    .await?
    .into_response())
}

/// The form field of a device field.
fn device_form_field(field: DeviceField) -> &'static str {
    match field {
        DeviceField::Name => "name",
        DeviceField::HostName => "host",
        DeviceField::NatId => "nat_id",
        DeviceField::RegistrationKey => "registration_key",
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "devices/detail.html")]
pub(crate) struct DevicePage {
    chrome: Chrome,
    device: Device,
    state: &'static str,
    state_class: &'static str,
    status: String,
}

pub(crate) async fn detail(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
) -> Result<DevicePage, UiError> {
    let device = context
        .services
        .sensors
        .device(context.domain_id, id)
        .await?;
    let (state, state_class) = registration_label(&device);
    let status = if device.registration_state == RegistrationState::Registered {
        match tokio::time::timeout(SENSOR_WAIT, context.services.sensors.status(&device)).await {
            Ok(Ok(status)) => serde_json::to_string_pretty(&status).unwrap_or_default(),
            Ok(Err(e)) => format!("unreachable: {e}"),
            Err(_) => "no answer within 3 s".to_owned(),
        }
    } else {
        String::new()
    };
    Ok(DevicePage {
        chrome: current.chrome("devices"),
        device,
        state,
        state_class,
        status,
    })
}

/// The registration state, for the progress poller.
#[derive(Debug, Serialize)]
pub(crate) struct DeviceState {
    state: RegistrationState,
    label: &'static str,
    error: Option<String>,
}

pub(crate) async fn state(
    State(context): State<UiContext>,
    _current: Current,
    Path(id): Path<Uuid>,
) -> Result<Json<DeviceState>, UiError> {
    let device = context
        .services
        .sensors
        .device(context.domain_id, id)
        .await?;
    Ok(Json(DeviceState {
        state: device.registration_state,
        label: registration_label(&device).0,
        error: device.registration_error,
    }))
}

pub(crate) async fn delete(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: CsrfOnly = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    context
        .services
        .sensors
        .delete_device(&current.actor(), context.domain_id, id, None)
        .await?;
    Ok(Redirect::to("/devices").into_response())
}

// ---------------------------------------------------------------------------------------
// Deploy.

pub(crate) struct PendingRow {
    pub id: Uuid,
    pub name: String,
    pub has_changes: bool,
    pub diff: String,
    pub problems: Vec<String>,
}

pub(crate) struct JobRow {
    pub job: DeploymentJob,
    pub device: String,
    pub status: &'static str,
    pub status_class: &'static str,
}

fn job_status(status: JobStatus) -> (&'static str, &'static str) {
    match status {
        JobStatus::Queued => ("Queued", "warn"),
        JobStatus::Deploying => ("Deploying", "warn"),
        JobStatus::Deployed => ("Deployed", "ok"),
        JobStatus::Failed => ("Failed", "bad"),
        JobStatus::Aborted => ("Aborted", "bad"),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/list.html")]
pub(crate) struct DeployPage {
    chrome: Chrome,
    pending: Vec<PendingRow>,
    history: Vec<JobRow>,
    errors: Errors,
}

async fn job_rows(context: &UiContext, jobs: Vec<DeploymentJob>) -> Result<Vec<JobRow>, UiError> {
    let devices = context
        .services
        .sensors
        .devices(context.domain_id, Page::ALL)
        .await?
        .items;
    Ok(jobs
        .into_iter()
        .map(|job| {
            let device = devices
                .iter()
                .find(|d| d.id == job.device_id)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| job.device_id.to_string());
            let (status, status_class) = job_status(job.status);
            JobRow {
                job,
                device,
                status,
                status_class,
            }
        })
        .collect())
}

async fn deploy_page(
    context: &UiContext,
    current: &Current,
    errors: Errors,
) -> Result<DeployPage, UiError> {
    let mut pending = Vec::new();
    for device in context
        .services
        .sensors
        .devices(context.domain_id, Page::ALL)
        .await?
        .items
    {
        if device.registration_state != RegistrationState::Registered {
            continue;
        }
        let deployments = context.services.deployments.clone();
        let target = device.clone();
        let answer = super::off_thread(move || async move {
            tokio::time::timeout(SENSOR_WAIT, deployments.pending_changes(&target)).await
        })
        .await?;
        let row = match answer {
            Ok(Ok(p)) => PendingRow {
                id: device.id,
                name: device.name.clone(),
                has_changes: p.has_changes,
                diff: p.cli_diff,
                problems: p.problems.iter().map(ToString::to_string).collect(),
            },
            Ok(Err(e)) => PendingRow {
                id: device.id,
                name: device.name.clone(),
                has_changes: false,
                diff: String::new(),
                problems: vec![e.to_string()],
            },
            Err(_) => PendingRow {
                id: device.id,
                name: device.name.clone(),
                has_changes: false,
                diff: String::new(),
                problems: vec!["no answer within 3 s".into()],
            },
        };
        pending.push(row);
    }
    let jobs = context
        .services
        .deployments
        .jobs(
            context.domain_id,
            &JobFilter::default(),
            Page {
                offset: 0,
                limit: 50,
            },
        )
        .await?
        .items;
    Ok(DeployPage {
        chrome: current.chrome("deploy"),
        pending,
        history: job_rows(context, jobs).await?,
        errors,
    })
}

pub(crate) async fn deploy_index(
    State(context): State<UiContext>,
    current: Current,
) -> Result<DeployPage, UiError> {
    deploy_page(&context, &current, Errors::default()).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeployForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device_ids: Vec<String>,
    #[serde(default)]
    note: String,
}

pub(crate) async fn deploy_submit(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: DeployForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let ids: Vec<Uuid> = form
        .device_ids
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    let mut errors = Errors::default();
    if ids.is_empty() {
        errors.add("device_ids", "Select at least one device to deploy.");
        return Ok(deploy_page(&context, &current, errors)
            .await?
            .into_response());
    }
    let deployments = context.services.deployments.clone();
    let (actor, domain_id, note) = (
        current.actor(),
        context.domain_id,
        form.note.trim().to_owned(),
    );
    let deployed = super::off_thread(move || async move {
        deployments.deploy(&actor, domain_id, &ids, &note).await
    })
    .await?;
    match deployed {
        Ok(deployment) => Ok(Redirect::to(&format!("/deploy/{}", deployment.id)).into_response()),
        Err(e) => {
            errors.add("device_ids", e.to_string());
            Ok(deploy_page(&context, &current, errors)
                .await?
                .into_response())
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "deploy/job.html")]
pub(crate) struct DeploymentPage {
    chrome: Chrome,
    deployment: Deployment,
    rollback: bool,
    jobs: Vec<JobRow>,
    running: bool,
}

pub(crate) async fn deployment(
    State(context): State<UiContext>,
    current: Current,
    Path(id): Path<Uuid>,
) -> Result<DeploymentPage, UiError> {
    let deployment = context
        .services
        .deployments
        .deployment(context.domain_id, id)
        .await?;
    let running = deployment
        .jobs
        .iter()
        .any(|j| matches!(j.status, JobStatus::Queued | JobStatus::Deploying));
    let jobs = job_rows(&context, deployment.jobs.clone()).await?;
    Ok(DeploymentPage {
        chrome: current.chrome("deploy"),
        rollback: deployment.kind == DeploymentKind::Rollback,
        deployment,
        jobs,
        running,
    })
}

pub(crate) async fn rollback(
    State(context): State<UiContext>,
    current: Current,
    Path(job_id): Path<Uuid>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: CsrfOnly = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let deployments = context.services.deployments.clone();
    let (actor, domain_id) = (current.actor(), context.domain_id);
    let deployment =
        super::off_thread(
            move || async move { deployments.rollback(&actor, domain_id, job_id).await },
        )
        .await??;
    Ok(Redirect::to(&format!("/deploy/{}", deployment.id)).into_response())
}

// ---------------------------------------------------------------------------------------
// RA VPN sessions.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SessionFilterForm {
    #[serde(default)]
    device: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    profile: String,
}

pub(crate) struct SessionRow {
    pub device_id: Uuid,
    pub device: String,
    pub record: SessionRecord,
    pub auth_mode: &'static str,
    /// When the session logged in, e.g. `2026-11-27 03:42:36 UTC`.
    pub login: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions.html")]
pub(crate) struct SessionsPage {
    chrome: Chrome,
    filter: SessionFilterForm,
    devices: Vec<Device>,
    items: Vec<SessionRow>,
    problems: Vec<String>,
}

pub(crate) async fn sessions(
    State(context): State<UiContext>,
    current: Current,
    Query(filter): Query<SessionFilterForm>,
) -> Result<SessionsPage, UiError> {
    let devices = context
        .services
        .sensors
        .devices(context.domain_id, Page::ALL)
        .await?
        .items;
    let mut items = Vec::new();
    let mut problems = Vec::new();
    for device in &devices {
        if device.registration_state != RegistrationState::Registered
            || (!filter.device.is_empty() && filter.device != device.id.to_string())
        {
            continue;
        }
        match tokio::time::timeout(SENSOR_WAIT, context.services.sensors.sessions(device)).await {
            Ok(Ok(records)) => items.extend(
                records
                    .into_iter()
                    .filter(|r| {
                        filter.username.is_empty() || r.username.contains(filter.username.trim())
                    })
                    .filter(|r| {
                        filter.profile.is_empty() || r.tunnel_group.contains(filter.profile.trim())
                    })
                    .map(|record| SessionRow {
                        device_id: device.id,
                        device: device.name.clone(),
                        auth_mode: record.auth_mode.ftd_name(),
                        login: super::system::format_time(record.login_time),
                        record,
                    }),
            ),
            Ok(Err(e)) => problems.push(format!("{}: {e}", device.name)),
            Err(_) => problems.push(format!("{}: no answer within 3 s", device.name)),
        }
    }
    Ok(SessionsPage {
        chrome: current.chrome("devices"),
        filter,
        devices,
        items,
        problems,
    })
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TerminateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    device_id: String,
    #[serde(default)]
    index: String,
}

pub(crate) async fn terminate(
    State(context): State<UiContext>,
    current: Current,
    body: Bytes,
) -> Result<Response, UiError> {
    let form: TerminateForm = parse(&body)?;
    current.authorize_change(&form.csrf)?;
    let device_id: Uuid = form
        .device_id
        .parse()
        .map_err(|_| UiError::BadForm("device_id is not an id".into()))?;
    let index: u32 = form
        .index
        .parse()
        .map_err(|_| UiError::BadForm("index is not a session index".into()))?;
    let device = context
        .services
        .sensors
        .device(context.domain_id, device_id)
        .await?;
    let what = format!("session index {index} on {}", device.name);
    let mut outcome = context
        .services
        .sensors
        .terminate_sessions(
            &current.actor(),
            context.domain_id,
            &what,
            &[Termination {
                device,
                request: TerminateRequest::Session {
                    indexes: vec![index],
                },
            }],
            None,
        )
        .await?;
    if let Some((_, error)) = outcome.failures.pop() {
        return Err(error.into());
    }
    Ok(Redirect::to("/sessions").into_response())
}
