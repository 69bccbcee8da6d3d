//! Devices > Certificates (FMC's page of the same name): for every device, the identity
//! certificate it presents per cert enrollment: one the internal CA issued it, one an
//! administrator installed, or the enrollment's own. Private keys never reach the page.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

use super::auth::{Chrome, CsrfOnly, Current};
use super::form::parse;
use super::objects::certificate_infos;
use super::{UiContext, UiError};
use crate::db::cert_enrollments::{EnrollmentContent, EnrollmentType};
use crate::db::device_certificates::CertificateSource;
use crate::db::devices::Device;
use crate::devices::DeviceIdentity;

/// One device and enrollment.
pub(crate) struct CertificateRow {
    /// The device certificate, when the device has one of its own.
    pub id: Option<Uuid>,
    pub device: String,
    pub device_id: Uuid,
    pub enrollment: String,
    pub source: &'static str,
    pub source_class: &'static str,
    pub subject: String,
    pub not_after: String,
    /// Installed by an administrator, so one may remove it.
    pub removable: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "devices/certificates.html")]
pub(crate) struct CertificatesPage {
    chrome: Chrome,
    rows: Vec<CertificateRow>,
}

/// The leaf's subject and expiry date of a PEM chain.
fn leaf(chain_pem: &str) -> (String, String) {
    match certificate_infos(chain_pem).map(|infos| infos.into_iter().next()) {
        Ok(Some(info)) => (info.subject, info.not_after.date().to_string()),
        Ok(None) | Err(_) => ("(unreadable certificate)".to_owned(), "—".to_owned()),
    }
}

fn certificate_row(device: &Device, identity: DeviceIdentity) -> CertificateRow {
    match identity {
        DeviceIdentity::Own(certificate) => {
            let (subject, not_after) = leaf(&certificate.certificate_chain_pem);
            let (source, source_class) = match certificate.source {
                CertificateSource::Issued => ("Issued by the internal CA", "ok"),
                CertificateSource::Installed => ("Installed", "info"),
            };
            CertificateRow {
                id: Some(certificate.id),
                device: device.name.clone(),
                device_id: device.id,
                enrollment: certificate.enrollment.name,
                source,
                source_class,
                subject,
                not_after,
                removable: certificate.source == CertificateSource::Installed,
            }
        }
        DeviceIdentity::Enrollment(enrollment) => {
            let (subject, not_after) = match &enrollment.content {
                EnrollmentContent::Identity {
                    certificate_chain_pem,
                } => leaf(certificate_chain_pem),
                EnrollmentContent::CaOnly(_) => ("—".to_owned(), "—".to_owned()),
            };
            let source = if enrollment.enrollment_type == EnrollmentType::SelfSignedCertificate {
                "Internal CA: issued at the next deploy"
            } else {
                "The enrollment's own certificate"
            };
            CertificateRow {
                id: None,
                device: device.name.clone(),
                device_id: device.id,
                enrollment: enrollment.name,
                source,
                source_class: "warn",
                subject,
                not_after,
                removable: false,
            }
        }
    }
}

/// `GET /devices/certificates`.
pub(crate) async fn list(
    State(context): State<UiContext>,
    current: Current,
) -> Result<CertificatesPage, UiError> {
    let mut rows = Vec::new();
    let overview = context
        .services
        .sensors
        .certificate_overview(context.domain_id)
        .await?;
    for (device, identities) in overview {
        for identity in identities {
            rows.push(certificate_row(&device, identity));
        }
    }
    Ok(CertificatesPage {
        chrome: current.chrome("devices"),
        rows,
    })
}

/// `POST /devices/certificates/{id}/delete`: removes a device's certificate; the device
/// falls back to the enrollment's own.
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
        .remove_certificate(&current.actor(), context.domain_id, None, id, None)
        .await?;
    Ok(Redirect::to("/devices/certificates").into_response())
}
