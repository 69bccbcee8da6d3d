//! The Overview dashboard and the error page.

use std::time::Duration as StdDuration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use time::{Duration, OffsetDateTime};

use super::auth::{Chrome, Current};
use super::{UiContext, UiError};
use crate::db::Page;
use crate::db::cert_enrollments::{self, EnrollmentContent};
use crate::db::devices::{self, Device, RegistrationState};

/// How long the dashboard waits for one sensor.
pub(crate) const SENSOR_WAIT: StdDuration = StdDuration::from_secs(3);

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub status: u16,
    pub message: String,
}

pub(crate) struct DeviceRow {
    pub id: String,
    pub name: String,
    pub host: String,
    pub health: String,
    pub health_class: &'static str,
    pub deploy_state: String,
    pub sessions: String,
}

pub(crate) struct SessionRow {
    pub device: String,
    pub username: String,
    pub profile: String,
    pub auth_mode: String,
    pub assigned: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub(crate) struct OverviewPage {
    chrome: Chrome,
    devices: Vec<DeviceRow>,
    registered: usize,
    pending_deploy: usize,
    sessions: Vec<SessionRow>,
    /// Message and CSS class.
    cert_warnings: Vec<(String, &'static str)>,
}

pub(crate) fn registration_label(device: &Device) -> (&'static str, &'static str) {
    match device.registration_state {
        RegistrationState::Pending => ("Registering", "warn"),
        RegistrationState::Registered => ("Registered", "ok"),
        RegistrationState::Failed => ("Registration failed", "bad"),
    }
}

pub(crate) async fn overview(
    State(context): State<UiContext>,
    current: Current,
) -> Result<OverviewPage, UiError> {
    let listed = devices::list(&context.pool, context.domain_id, Page::ALL).await?;
    let mut rows = Vec::new();
    let mut sessions = Vec::new();
    let mut pending_deploy = 0;
    let mut registered = 0;
    for device in &listed.items {
        let (mut health, mut class) = registration_label(device);
        let mut deploy_state = "—".to_owned();
        let mut session_count = "—".to_owned();
        if device.registration_state == RegistrationState::Registered {
            registered += 1;
            let deployments = context.services.deployments.clone();
            let target = device.clone();
            let pending = super::off_thread(move || async move {
                tokio::time::timeout(SENSOR_WAIT, deployments.pending_changes(&target)).await
            })
            .await?;
            match pending {
                Ok(Ok(p)) if p.has_changes => {
                    pending_deploy += 1;
                    deploy_state = "Pending changes".to_owned();
                }
                Ok(Ok(p)) if !p.problems.is_empty() => {
                    deploy_state = "Policy has problems".to_owned()
                }
                Ok(Ok(_)) => deploy_state = "Up to date".to_owned(),
                Ok(Err(_)) | Err(_) => deploy_state = "Unknown".to_owned(),
            }
            match tokio::time::timeout(SENSOR_WAIT, context.services.sensors.sessions(device)).await
            {
                Ok(Ok(records)) => {
                    session_count = records.len().to_string();
                    sessions.extend(records.into_iter().map(|r| SessionRow {
                        device: device.name.clone(),
                        username: r.username,
                        profile: r.tunnel_group,
                        auth_mode: r.auth_mode.ftd_name().to_owned(),
                        assigned: r.assigned_ipv4.map(|a| a.to_string()).unwrap_or_default(),
                    }));
                }
                Ok(Err(_)) | Err(_) => {
                    health = "Unreachable";
                    class = "bad";
                }
            }
        }
        rows.push(DeviceRow {
            id: device.id.to_string(),
            name: device.name.clone(),
            host: device.host_name.clone(),
            health: health.to_owned(),
            health_class: class,
            deploy_state,
            sessions: session_count,
        });
    }
    let cert_warnings = certificate_warnings(&context).await?;
    Ok(OverviewPage {
        chrome: current.chrome("overview"),
        devices: rows,
        registered,
        pending_deploy,
        sessions,
        cert_warnings,
    })
}

/// Certificates in cert enrollments that expired or expire within 30 days.
async fn certificate_warnings(context: &UiContext) -> Result<Vec<(String, &'static str)>, UiError> {
    let now = OffsetDateTime::now_utc();
    let soon = now + Duration::days(30);
    let enrollments = cert_enrollments::list(&context.pool, context.domain_id, Page::ALL).await?;
    let mut warnings = Vec::new();
    for enrollment in enrollments.items {
        let pem = match &enrollment.content {
            EnrollmentContent::CaOnly(settings) => &settings.ca_certificates_pem,
            EnrollmentContent::Identity {
                certificate_chain_pem,
            } => certificate_chain_pem,
        };
        for info in super::objects::certificate_infos(pem).unwrap_or_default() {
            if info.not_after < now {
                warnings.push((
                    format!(
                        "{}: {} expired on {}",
                        enrollment.name,
                        info.subject,
                        info.not_after.date()
                    ),
                    "bad",
                ));
            } else if info.not_after < soon {
                warnings.push((
                    format!(
                        "{}: {} expires on {}",
                        enrollment.name,
                        info.subject,
                        info.not_after.date()
                    ),
                    "warn",
                ));
            }
        }
    }
    Ok(warnings)
}
