//! Ending VPN sessions on the sensors, the one rule for both doors: each targeted
//! device ends what it is asked to, failures of one device do not stop the others, and
//! one audit row records who ended what, how many ended and where it failed.

use serde_json::Value;
use uuid::Uuid;
use vpn_core::channel::TerminateRequest;

use super::{SensorError, Sensors};
use crate::db::devices::Device;
use crate::db::{Actor, DbError, ObjectKind, audit};

/// What to end on one device.
#[derive(Debug, Clone)]
pub struct Termination {
    pub device: Device,
    pub request: TerminateRequest,
}

/// How a termination went.
#[derive(Debug)]
pub struct TerminationOutcome {
    /// Sessions ended, over every device.
    pub terminated: u64,
    /// Devices that could not be asked, with why.
    pub failures: Vec<(String, SensorError)>,
}

impl Sensors {
    /// Ends the sessions `targets` name and writes one TERMINATE_SESSIONS audit row,
    /// `what` first in its detail (e.g. `terminateBy USER`); `request` is the caller's
    /// request as the audit row's after image, when there is one.
    pub async fn terminate_sessions(
        &self,
        actor: &Actor,
        domain_id: Uuid,
        what: &str,
        targets: &[Termination],
        request: Option<Value>,
    ) -> Result<TerminationOutcome, DbError> {
        let mut outcome = TerminationOutcome {
            terminated: 0,
            failures: Vec::new(),
        };
        for target in targets {
            match self.terminate(&target.device, &target.request).await {
                Ok(result) => outcome.terminated += u64::from(result.terminated),
                Err(e) => outcome.failures.push((target.device.name.clone(), e)),
            }
        }
        let mut detail = format!("{what}: {} session(s) ended", outcome.terminated);
        for (device, error) in &outcome.failures {
            detail.push_str(&format!("; not on {device}: {error}"));
        }
        tracing::info!(administrator = %actor.name, terminated = outcome.terminated, failed = outcome.failures.len(), "RA VPN sessions terminated");
        // One device named: the row points at it.
        let single = match targets {
            [only] => Some(&only.device),
            _ => None,
        };
        audit::record(
            &self.pool,
            &audit::NewAuditEntry {
                actor,
                domain_id: Some(domain_id),
                action: audit::AuditAction::TerminateSessions,
                object_kind: ObjectKind::RaVpnSession,
                object_id: single.map(|d| d.id),
                object_name: single.map(|d| d.name.as_str()),
                before: None,
                after: request,
                detail: Some(&detail),
            },
        )
        .await?;
        Ok(outcome)
    }
}
