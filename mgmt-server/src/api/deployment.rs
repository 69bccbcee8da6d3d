//! Deploy: `deployment/deployabledevices` (with `.../{id}/pendingchanges` as a CLI
//! diff), `deployment/deploymentrequests`, `deployment/jobhistories` (with the
//! transcript each sensor returned), `deployment/rollbackrequests`, and
//! `job/taskstatuses/{id}` for registrations and deployments.

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::{Value, json};
use uuid::Uuid;

use super::devices::registration_status;
use super::envelope::{BaseUrl, ListQuery, Listing, collection, reference};
use super::error::ApiError;
use super::fields::Fields;
use super::resource::{json_body, parse_id, path_id};
use super::{ApiContext, Caller, Routes};
use crate::db::deployments::{
    self, Deployment, DeploymentJob, DeploymentKind, JobFilter, JobStatus,
};
use crate::db::devices::{self, Device, RegistrationState};
use crate::db::{DbError, Page};

pub(super) fn routes(routes: Routes) -> Routes {
    routes
        .add(
            Method::GET,
            "config:/deployment/deployabledevices",
            "deployment",
            "Devices with undeployed changes",
            get(deployable_devices),
        )
        .add(
            Method::GET,
            "config:/deployment/deployabledevices/{id}/pendingchanges",
            "deployment",
            "What a deploy would change: show running-config diff",
            get(pending_changes),
        )
        .add(
            Method::POST,
            "config:/deployment/deploymentrequests",
            "deployment",
            "Deploy to devices (one queue per device)",
            post(deployment_request),
        )
        .add(
            Method::GET,
            "config:/deployment/jobhistories",
            "deployment",
            "Deployment jobs (filter deviceUUID, status, jobType)",
            get(job_histories),
        )
        .add(
            Method::GET,
            "config:/deployment/jobhistories/{id}",
            "deployment",
            "One deployment job with its transcript",
            get(job_history),
        )
        .add(
            Method::POST,
            "config:/deployment/rollbackrequests",
            "deployment",
            "Deploy an earlier job's configuration again",
            post(rollback_request),
        )
        .add(
            Method::GET,
            "config:/job/taskstatuses/{id}",
            "deployment",
            "Status of a registration or deployment task",
            get(task_status),
        )
}

const EVERYTHING: Page = Page {
    offset: 0,
    limit: 100_000,
};

pub(super) async fn all_devices(
    context: &ApiContext,
    domain: Uuid,
) -> Result<Vec<Device>, ApiError> {
    Ok(devices::list(&context.pool, domain, EVERYTHING)
        .await?
        .items)
}

fn now_ms() -> String {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string()
}

async fn deployable_devices(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = Listing::from_query(&query)?;
    let mut items = Vec::new();
    for device in all_devices(&context, caller.domain_id).await? {
        if device.registration_state != RegistrationState::Registered {
            continue;
        }
        let pending = context
            .services
            .deployments
            .pending_changes(&device)
            .await?;
        if !pending.has_changes && pending.problems.is_empty() {
            continue;
        }
        items.push(json!({
            "id": device.id.to_string(),
            "name": device.name,
            "type": "DeployableDevice",
            "device": reference(device.id, "Device", &device.name),
            "version": now_ms(),
            "canBeDeployed": pending.problems.is_empty(),
            "upToDate": false,
            "deployedVersion": pending.deployed_version,
            "problems": pending.problems,
            "links": { "self": format!("{base}{}/{}/pendingchanges", uri.path(), device.id) },
        }));
    }
    Ok(Json(page_of(
        &format!("{base}{}", uri.path()),
        items,
        &listing,
    )))
}

/// An in-memory list, paged like the database ones.
pub(super) fn page_of(url: &str, items: Vec<Value>, listing: &Listing) -> Value {
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let offset = usize::try_from(listing.page.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(listing.page.limit).unwrap_or(usize::MAX);
    let items = items.into_iter().skip(offset).take(limit).collect();
    collection(url, items, total, listing)
}

async fn pending_changes(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&params)?;
    let device = devices::get(&context.pool, caller.domain_id, id).await?;
    let pending = context
        .services
        .deployments
        .pending_changes(&device)
        .await?;
    let item = json!({
        "type": "PendingChange",
        "device": reference(device.id, "Device", &device.name),
        "hasChanges": pending.has_changes,
        "deployedVersion": pending.deployed_version,
        "deployedHash": pending.deployed_hash,
        "cliDiff": pending.cli_diff,
        "problems": pending.problems,
    });
    let listing = Listing::from_query(&ListQuery::default())?;
    Ok(Json(page_of(
        &format!("{base}{}", uri.path()),
        vec![item],
        &listing,
    )))
}

async fn deployment_request(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body)?;
    let devices: Vec<Uuid> = match f.get("deviceList").and_then(Value::as_array) {
        Some(list) => {
            let mut ids = Vec::new();
            for (i, item) in list.iter().enumerate() {
                let text = item
                    .as_str()
                    .or_else(|| item.get("id").and_then(Value::as_str));
                match text.map(Uuid::parse_str) {
                    Some(Ok(id)) => ids.push(id),
                    _ => f.problem(format!("deviceList[{i}]: {item} is not a device id")),
                }
            }
            ids
        }
        None => {
            f.problem("deviceList: is required (device ids)");
            Vec::new()
        }
    };
    let note = f.string_or("deploymentNote", "");
    f.finish()?;
    let deployment = context
        .services
        .deployments
        .deploy(&caller.actor, caller.domain_id, &devices, &note)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(deployment_json(&deployment, &body)),
    )
        .into_response())
}

fn deployment_json(deployment: &Deployment, request: &Value) -> Value {
    let mut body = request.clone();
    if !body.is_object() {
        body = json!({});
    }
    body["type"] = json!(if deployment.kind == DeploymentKind::Rollback {
        "RollbackRequest"
    } else {
        "DeploymentRequest"
    });
    body["id"] = json!(deployment.id.to_string());
    body["metadata"] = json!({ "task": { "id": deployment.id.to_string(), "name": deployment.id.to_string(), "type": "TaskStatus" } });
    body["jobs"] = Value::Array(deployment.jobs.iter().map(|j| json!({ "id": j.id.to_string(), "deviceUUID": j.device_id.to_string(), "configVersion": j.config_version })).collect());
    body
}

fn status_text(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Queued => "QUEUED",
        JobStatus::Deploying => "DEPLOYING",
        JobStatus::Deployed => "DEPLOYED",
        JobStatus::Failed => "FAILED",
        JobStatus::Aborted => "ABORTED",
    }
}

fn job_json(job: &DeploymentJob, device_name: &str, self_url: &str) -> Value {
    let time = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    json!({
        "id": job.id.to_string(),
        "name": format!("{device_name} v{}", job.config_version),
        "type": "DeploymentJob",
        "jobType": if job.rollback_of_job_id.is_some() { "ROLLBACK" } else { "DEPLOYMENT" },
        "status": status_text(job.status),
        "deploymentRequest": { "id": job.deployment_id.to_string(), "type": "DeploymentRequest" },
        "deviceList": [{
            "deviceUUID": job.device_id.to_string(),
            "deviceName": device_name,
            "deploymentStatus": status_text(job.status),
            "message": job.error,
        }],
        "configVersion": job.config_version,
        "contentHash": job.content_hash,
        "rollbackOf": job.rollback_of_job_id.map(|id| id.to_string()),
        "rollbackApplicable": job.status == JobStatus::Deployed,
        "queuedTime": time(Some(job.queued_at)),
        "startTime": time(job.started_at),
        "endTime": time(job.finished_at),
        "message": job.error,
        "transcript": job.transcript,
        "links": { "self": self_url },
    })
}

async fn job_histories(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let listing = Listing::from_query(&query)?;
    let mut filter = JobFilter::default();
    if let Some(device) = listing.filter_value("deviceUUID") {
        filter.device_id = Some(parse_id(device).map_err(|_| {
            ApiError::bad_request(format!("filter deviceUUID: {device:?} is not an id"))
        })?);
    }
    if let Some(status) = listing.filter_value("status") {
        filter.status = Some(match status.to_ascii_uppercase().as_str() {
            "QUEUED" => JobStatus::Queued,
            "DEPLOYING" => JobStatus::Deploying,
            "DEPLOYED" => JobStatus::Deployed,
            "FAILED" => JobStatus::Failed,
            "ABORTED" => JobStatus::Aborted,
            other => {
                return Err(ApiError::bad_request(format!(
                    "filter status: {other:?} is not QUEUED, DEPLOYING, DEPLOYED, FAILED or ABORTED"
                )));
            }
        });
    }
    let listed =
        deployments::list_jobs(&context.pool, caller.domain_id, &filter, listing.page).await?;
    let names: HashMap<Uuid, String> = all_devices(&context, caller.domain_id)
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();
    let url = format!("{base}{}", uri.path());
    let items = listed
        .items
        .iter()
        .map(|job| {
            job_json(
                job,
                names.get(&job.device_id).map_or("", String::as_str),
                &format!("{url}/{}", job.id),
            )
        })
        .collect();
    Ok(Json(collection(
        &url,
        items,
        listed.total,
        &Listing {
            expanded: true,
            ..listing
        },
    )))
}

async fn job_history(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&params)?;
    let job = deployments::get_job(&context.pool, caller.domain_id, id).await?;
    let device = devices::get(&context.pool, caller.domain_id, job.device_id).await?;
    Ok(Json(job_json(
        &job,
        &device.name,
        &format!("{base}{}", uri.path()),
    )))
}

async fn rollback_request(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let mut f = Fields::new(&body)?;
    let mut job_ids = Vec::new();
    match f.get("rollbackDeviceList").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            for (i, item) in list.iter().enumerate() {
                match item.get("deploymentJobId").and_then(Value::as_str).map(Uuid::parse_str) {
                    Some(Ok(id)) => job_ids.push(id),
                    _ => f.problem(format!("rollbackDeviceList[{i}].deploymentJobId: is required (a job id from jobhistories)")),
                }
            }
        }
        _ => f.problem("rollbackDeviceList: is required: [{\"deploymentJobId\": \"<job id>\"}]"),
    }
    f.finish()?;
    let mut started = Vec::new();
    for job in job_ids {
        started.push(
            context
                .services
                .deployments
                .rollback(&caller.actor, caller.domain_id, job)
                .await?,
        );
    }
    let answers: Vec<Value> = started
        .iter()
        .map(|d| deployment_json(d, &json!({})))
        .collect();
    Ok((StatusCode::ACCEPTED, Json(json!({ "type": "RollbackRequest", "items": answers, "metadata": answers.first().map(|a| a["metadata"].clone()) }))).into_response())
}

async fn task_status(
    State(context): State<ApiContext>,
    Extension(caller): Extension<Caller>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&params)?;
    match devices::get(&context.pool, caller.domain_id, id).await {
        Ok(device) => {
            let status = match device.registration_state {
                RegistrationState::Pending => "Running",
                RegistrationState::Registered => "Success",
                RegistrationState::Failed => "Failed",
            };
            return Ok(Json(json!({
                "id": id.to_string(),
                "type": "TaskStatus",
                "taskType": "DEVICE_REGISTRATION",
                "status": status,
                "registrationStatus": registration_status(device.registration_state),
                "message": device.registration_error,
            })));
        }
        Err(DbError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let deployment = deployments::get(&context.pool, caller.domain_id, id).await?;
    let all = |s: JobStatus| deployment.jobs.iter().all(|j| j.status == s);
    let status = if all(JobStatus::Deployed) {
        "Deployed"
    } else if deployment
        .jobs
        .iter()
        .any(|j| matches!(j.status, JobStatus::Queued | JobStatus::Deploying))
    {
        "Deploying"
    } else {
        "Failed"
    };
    Ok(Json(json!({
        "id": id.to_string(),
        "type": "TaskStatus",
        "taskType": "DEVICE_DEPLOYMENT",
        "status": status,
        "message": deployment.jobs.iter().filter_map(|j| j.error.clone()).collect::<Vec<_>>().join("; "),
    })))
}
