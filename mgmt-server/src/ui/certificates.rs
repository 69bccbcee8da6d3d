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
use super::form::{self, parse};
use super::objects::certificate_infos;
use super::{UiContext, UiError};
use crate::db::cert_enrollments::{self, EnrollmentContent, EnrollmentType};
use crate::db::device_certificates::{self, CertificateSource};
use crate::db::{Page, devices, policies};

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

/// `GET /devices/certificates`.
pub(crate) async fn list(
    State(context): State<UiContext>,
    current: Current,
) -> Result<CertificatesPage, UiError> {
    let domain = context.domain_id;
    let mut rows = Vec::new();
    for device in devices::list(&context.pool, domain, Page::ALL).await?.items {
        let own = device_certificates::list_for_device(&context.pool, domain, device.id, Page::ALL)
            .await?
            .items;
        for certificate in &own {
            let (subject, not_after) = leaf(&certificate.certificate_chain_pem);
            let (source, source_class) = match certificate.source {
                CertificateSource::Issued => ("Issued by the internal CA", "ok"),
                CertificateSource::Installed => ("Installed", "info"),
            };
            rows.push(CertificateRow {
                id: Some(certificate.id),
                device: device.name.clone(),
                device_id: device.id,
                enrollment: certificate.enrollment.name.clone(),
                source,
                source_class,
                subject,
                not_after,
                removable: certificate.source == CertificateSource::Installed,
            });
        }
        // The identity enrollment of the device's policy, when the device has none of its
        // own for it: it presents the enrollment's certificate (or is issued one).
        let policy = policies::for_device(&context.pool, domain, device.id).await?;
        let Some(reference) = policy.and_then(|p| p.ssl_identity_certificate) else {
            continue;
        };
        if own.iter().any(|c| c.enrollment.id == reference.id) {
            continue;
        }
        let enrollment = cert_enrollments::get(&context.pool, domain, reference.id).await?;
        let EnrollmentContent::Identity {
            certificate_chain_pem,
        } = &enrollment.content
        else {
            continue;
        };
        let (subject, not_after) = leaf(certificate_chain_pem);
        let source = if enrollment.enrollment_type == EnrollmentType::SelfSignedCertificate {
            "Internal CA: issued at the next deploy"
        } else {
            "The enrollment's own certificate"
        };
        rows.push(CertificateRow {
            id: None,
            device: device.name.clone(),
            device_id: device.id,
            enrollment: enrollment.name,
            source,
            source_class: "warn",
            subject,
            not_after,
            removable: false,
        });
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
    let mut conn = form::connection(&context.pool).await?;
    device_certificates::delete(&mut conn, &current.actor(), context.domain_id, id, None).await?;
    Ok(Redirect::to("/devices/certificates").into_response())
}
