//! Each device presents its own headend identity certificate. For an internal-CA
//! enrollment (`SELF_SIGNED_CERTFICATE`, our `INTERNAL_CA`), the manager's internal CA
//! issues every device its own certificate the first time the device's configuration
//! is compiled, and again after the enrollment changes: the names of the enrollment's
//! certificate (common name and subject alternative names) plus the device's name and
//! host. Manual and PKCS#12 enrollments are installed per device by an administrator
//! (`devices/devicerecords/{id}/certificates`); the device uses the enrollment's own
//! certificate until then.

use std::net::IpAddr;

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::CompileError;
use crate::db::cert_enrollments::{self, EnrollmentContent, EnrollmentType};
use crate::db::{Actor, DbError, EncryptionKey, device_certificates, devices, policies};
use crate::pki::store::{self, CHANNEL_CA_NAME};

/// Issues `device_id` its certificate of its policy's internal-CA enrollment unless it
/// has a current one. Nothing happens for other enrollments or without a policy.
pub async fn ensure_issued(
    pool: &PgPool,
    key: &EncryptionKey,
    domain_id: Uuid,
    device_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), CompileError> {
    let Some(policy) = policies::for_device(pool, domain_id, device_id).await? else {
        return Ok(());
    };
    let Some(reference) = policy.ssl_identity_certificate else {
        return Ok(());
    };
    let enrollment = cert_enrollments::get(pool, domain_id, reference.id).await?;
    let EnrollmentContent::Identity {
        certificate_chain_pem,
    } = &enrollment.content
    else {
        return Ok(());
    };
    if enrollment.enrollment_type != EnrollmentType::SelfSignedCertificate {
        return Ok(());
    }
    let current = device_certificates::for_device(pool, domain_id, device_id, enrollment.id)
        .await?
        .is_some_and(|c| c.enrollment_version == enrollment.version);
    if current {
        return Ok(());
    }
    let device = devices::get(pool, domain_id, device_id).await?;
    let names = device_names(certificate_chain_pem, &device.name, &device.host_name);
    let ca = store::load_or_create(pool, key, CHANNEL_CA_NAME, now)
        .await
        .map_err(|e| CompileError::Identity {
            device: device.name.clone(),
            reason: e.to_string(),
        })?;
    let issued = ca
        .issue_server_identity(&names, now)
        .map_err(|e| CompileError::Identity {
            device: device.name.clone(),
            reason: e.to_string(),
        })?;
    let mut conn = pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    match device_certificates::record_issued(
        &mut conn,
        &Actor::system(),
        domain_id,
        device_id,
        enrollment.id,
        enrollment.version,
        &issued.certificate_pem,
        &PrivateKeyPem(issued.private_key_pem),
        key,
    )
    .await
    {
        // Another replica issued it at the same moment: theirs is as good.
        Ok(_) | Err(DbError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The names of a device's certificate: the enrollment certificate's common name and
/// alternative names, then the device's name and host (without a port), once each.
pub fn device_names(template_chain_pem: &str, device_name: &str, host_name: &str) -> Vec<String> {
    let mut names = template_names(template_chain_pem);
    if is_dns_name(device_name) {
        names.push(device_name.to_owned());
    }
    let host = host_without_port(host_name);
    if host.parse::<IpAddr>().is_ok() || is_dns_name(host) {
        names.push(host.to_owned());
    }
    let mut unique = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    unique
}

fn template_names(chain_pem: &str) -> Vec<String> {
    let Some(der) = vpn_core::pki::pem::certificates(chain_pem)
        .ok()
        .and_then(|certs| certs.into_iter().next())
    else {
        return Vec::new();
    };
    let Ok((_, cert)) = X509Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => names.push((*dns).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        names.push(IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        names.push(IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    names
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address, without the port.
fn host_without_port(host_name: &str) -> &str {
    if let Some(rest) = host_name.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if host_name.parse::<IpAddr>().is_ok() {
        return host_name;
    }
    host_name.split(':').next().unwrap_or(host_name)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::InternalCa;

    #[test]
    fn a_device_certificate_carries_the_enrollment_names_and_the_device_name_and_host() {
        let ca = InternalCa::generate("Test CA", OffsetDateTime::now_utc()).unwrap();
        let template = ca
            .issue_server_identity(
                &["vpn.example.com".to_owned(), "192.0.2.7".to_owned()],
                OffsetDateTime::now_utc(),
            )
            .unwrap();
        assert_eq!(
            device_names(&template.certificate_pem, "ftd-2", "10.0.0.2:8305"),
            ["vpn.example.com", "192.0.2.7", "ftd-2", "10.0.0.2"]
        );
    }

    #[test]
    fn hosts_lose_their_port_and_names_that_are_no_dns_names_are_left_out() {
        assert_eq!(host_without_port("[2001:db8::1]:8305"), "2001:db8::1");
        assert_eq!(host_without_port("2001:db8::1"), "2001:db8::1");
        assert_eq!(
            host_without_port("sensor.example.com:8305"),
            "sensor.example.com"
        );
        assert_eq!(device_names("", "my sensor", "sensor-1"), ["sensor-1"]);
    }
}
