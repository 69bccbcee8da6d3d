//! `devices/devicerecords`: adding a device registers the sensor in the background
//! (the record goes PENDING → REGISTERED or FAILED with the reason); the answer carries
//! `metadata.task`, which `job/taskstatuses/{id}` follows.
//!
//! `devices/devicerecords/{id}/certificates`: the identity certificates a device has,
//! one per cert enrollment (FMC: Devices > Certificates). Internal-CA enrollments are
//! issued by the manager when the device's configuration is compiled; a manual or
//! PKCS#12 enrollment gets a per-device certificate by POST
//! `{certEnrollment: {id}, identityCertificate: {certificateChainPem, privateKeyPem}}`
//! (our shape: FMC's public reference names no REST call for this).

use serde_json::{Value, json};
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use super::envelope::reference;
use super::error::ApiError;
use super::fields::Fields;
use super::objects::{certificate_summaries, common, merge};
use super::resource::{Resource, Scope, crud};
use super::{ApiContext, Caller, Routes};
use crate::db::device_certificates::{CertificateSource, DeviceCertificate};
use crate::db::devices::{Device, DeviceInput, RegistrationState};
use crate::db::{Listed, Page};
use crate::devices::Installation;

pub(super) fn routes(routes: Routes) -> Routes {
    let routes = crud::<Devices>(routes, "config:/devices/devicerecords", "devices");
    crud::<DeviceCertificates>(
        routes,
        "config:/devices/devicerecords/{parent}/certificates",
        "devices",
    )
}

pub(super) struct Devices;

/// The body's device fields as typed; the rules are the devices service's.
fn device_input(f: &mut Fields<'_>) -> DeviceInput {
    DeviceInput {
        name: f.string_or("name", ""),
        description: f.string_or("description", ""),
        host_name: f.string_or("hostName", ""),
        nat_id: f.optional_str("natID"),
    }
}

pub(super) fn registration_status(state: RegistrationState) -> &'static str {
    match state {
        RegistrationState::Pending => "PENDING",
        RegistrationState::Registered => "REGISTERED",
        RegistrationState::Failed => "FAILED",
    }
}

impl Resource for Devices {
    type Row = Device;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        Ok(context.services.sensors.devices(scope.domain, page).await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        Ok(context.services.sensors.device(scope.domain, id).await?)
    }
    /// Adds the device and starts its registration with `regKey`.
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let mut f = Fields::new(body)?;
        let input = device_input(&mut f);
        let key = f.string_or("regKey", "");
        f.finish()?;
        Ok(context
            .services
            .sensors
            .add_device(&caller.actor, scope.domain, &input, &key)
            .await?)
    }
    async fn update(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: i32,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let mut f = Fields::new(body)?;
        let input = device_input(&mut f);
        f.finish()?;
        Ok(context
            .services
            .sensors
            .update_device(&caller.actor, scope.domain, id, expected, &input)
            .await?)
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        Ok(context
            .services
            .sensors
            .delete_device(&caller.actor, scope.domain, id, expected)
            .await?)
    }
    fn to_json(d: &Self::Row, self_url: &str) -> Value {
        let body = common(d.id, &d.name, "Device", &d.description, self_url);
        let extra = json!({
            "hostName": d.host_name,
            "natID": d.nat_id,
            "registrationStatus": registration_status(d.registration_state),
            "registrationError": d.registration_error,
            "registeredAt": d.registered_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "sw_version": d.software_version,
            "model": "sensor-agent",
            "deviceState": if d.registration_state == RegistrationState::Registered { "NORMAL" } else { "PENDING" },
        });
        let mut body = merge(body, extra);
        body["metadata"]["task"] =
            json!({ "id": d.id.to_string(), "name": d.id.to_string(), "type": "TaskStatus" });
        body
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}

pub(super) struct DeviceCertificates;

fn parent_device(scope: Scope) -> Result<Uuid, ApiError> {
    scope
        .parent
        .ok_or_else(|| ApiError::not_found("the device is missing from the path"))
}

impl Resource for DeviceCertificates {
    type Row = DeviceCertificate;

    async fn list(
        context: &ApiContext,
        scope: Scope,
        page: Page,
    ) -> Result<Listed<Self::Row>, ApiError> {
        let device = parent_device(scope)?;
        Ok(context
            .services
            .sensors
            .device_certificates(scope.domain, device, page)
            .await?)
    }
    async fn get(context: &ApiContext, scope: Scope, id: Uuid) -> Result<Self::Row, ApiError> {
        let device = parent_device(scope)?;
        Ok(context
            .services
            .sensors
            .device_certificate(scope.domain, device, id)
            .await?)
    }
    /// Installs a certificate of a manual or PKCS#12 enrollment on the device.
    async fn create(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        body: &Value,
    ) -> Result<Self::Row, ApiError> {
        let device = parent_device(scope)?;
        let mut f = Fields::new(body)?;
        let enrollment = f.required_reference("certEnrollment");
        let installation = Installation {
            enrollment_id: enrollment,
            certificate_chain_pem: f.string_or("identityCertificate.certificateChainPem", ""),
            private_key_pem: PrivateKeyPem(f.string_or("identityCertificate.privateKeyPem", "")),
        };
        f.finish()?;
        Ok(context
            .services
            .sensors
            .install_certificate(&caller.actor, scope.domain, device, &installation)
            .await?)
    }
    async fn update(
        _context: &ApiContext,
        _caller: &Caller,
        _scope: Scope,
        _id: Uuid,
        _expected: i32,
        _body: &Value,
    ) -> Result<Self::Row, ApiError> {
        Err(ApiError::bad_request(
            "a device certificate is replaced by DELETE and a new POST",
        ))
    }
    async fn delete(
        context: &ApiContext,
        caller: &Caller,
        scope: Scope,
        id: Uuid,
        expected: Option<i32>,
    ) -> Result<(), ApiError> {
        let device = parent_device(scope)?;
        Ok(context
            .services
            .sensors
            .remove_certificate(&caller.actor, scope.domain, Some(device), id, expected)
            .await?)
    }
    fn to_json(row: &Self::Row, self_url: &str) -> Value {
        let body = common(row.id, &row.name, "DeviceCertificate", "", self_url);
        merge(
            body,
            json!({
                "device": reference(row.device.id, "Device", &row.device.name),
                "certEnrollment": reference(row.enrollment.id, "CertEnrollment", &row.enrollment.name),
                "source": match row.source {
                    CertificateSource::Issued => "ISSUED",
                    CertificateSource::Installed => "INSTALLED",
                },
                "enrollmentVersion": row.enrollment_version,
                "issuedAt": row.issued_at.format(&time::format_description::well_known::Rfc3339).ok(),
                "certificates": certificate_summaries(&row.certificate_chain_pem),
            }),
        )
    }
    fn id(row: &Self::Row) -> Uuid {
        row.id
    }
    fn version(row: &Self::Row) -> i32 {
        row.version
    }
}
