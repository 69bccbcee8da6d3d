//! What deploying a device now would change: the compiled document against the one the
//! device last accepted, as a `show running-config` diff.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::cli::running_config;

use super::{CompileError, DeployError, Deployments, compile};
use crate::db::deployments;
use crate::db::devices::Device;

/// What deploying a device would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingChanges {
    pub device_id: Uuid,
    pub device_name: String,
    /// Version and hash of the last configuration the device accepted.
    pub deployed_version: Option<u64>,
    pub deployed_hash: Option<String>,
    /// The configuration compiles and differs from the deployed one.
    pub has_changes: bool,
    /// `show running-config` of the deployed configuration vs the new one, unified diff.
    pub cli_diff: String,
    /// Why the device's configuration does not compile (nothing can be deployed).
    pub problems: Vec<String>,
}

impl Deployments {
    /// What deploying `device` now would change.
    pub async fn pending_changes(&self, device: &Device) -> Result<PendingChanges, DeployError> {
        let mut conn = self.connection().await?;
        let deployed = deployments::last_deployed_job(&mut *conn, device.id).await?;
        let deployed_config = match &deployed {
            Some(job) => Some(
                deployments::job_config(&mut *conn, device.domain_id, job.id, &self.key).await?,
            ),
            None => None,
        };
        let version = deployed.as_ref().map_or(1, |job| job.config_version);
        let compiled = compile(
            &self.pool,
            &self.key,
            device.domain_id,
            device.id,
            &device.name,
            version,
            OffsetDateTime::now_utc(),
        )
        .await;
        let (has_changes, cli_diff, problems) = match compiled {
            Ok(new) => {
                let changed = deployed
                    .as_ref()
                    .is_none_or(|job| job.content_hash != new.content_hash());
                let old_text = deployed_config
                    .as_ref()
                    .map(running_config)
                    .unwrap_or_default();
                let new_text = running_config(&new);
                (
                    changed,
                    cli_diff(
                        &old_text,
                        &new_text,
                        deployed.as_ref().map(|j| j.config_version),
                    ),
                    Vec::new(),
                )
            }
            Err(CompileError::Invalid { problems, .. }) => (
                false,
                String::new(),
                problems.iter().map(ToString::to_string).collect(),
            ),
            Err(CompileError::Db(e)) => return Err(e.into()),
            Err(other) => (false, String::new(), vec![other.to_string()]),
        };
        Ok(PendingChanges {
            device_id: device.id,
            device_name: device.name.clone(),
            deployed_version: deployed.as_ref().map(|job| job.config_version),
            deployed_hash: deployed.map(|job| job.content_hash),
            has_changes,
            cli_diff,
            problems,
        })
    }
}

/// Unified diff of two `show running-config` texts.
fn cli_diff(old: &str, new: &str, deployed_version: Option<u64>) -> String {
    let old_name = deployed_version.map_or_else(
        || "deployed (nothing yet)".to_owned(),
        |v| format!("deployed version {v}"),
    );
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, "pending")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_diff_shows_added_and_removed_lines_against_the_deployed_version() {
        let diff = cli_diff(
            "group-policy GP internal\nip local pool A 10.0.0.1-10.0.0.9\n",
            "group-policy GP internal\nip local pool B 10.0.1.1-10.0.1.9\n",
            Some(4),
        );
        assert!(diff.contains("--- deployed version 4"), "{diff}");
        assert!(diff.contains("+++ pending"), "{diff}");
        assert!(
            diff.contains("-ip local pool A 10.0.0.1-10.0.0.9"),
            "{diff}"
        );
        assert!(
            diff.contains("+ip local pool B 10.0.1.1-10.0.1.9"),
            "{diff}"
        );
        assert!(cli_diff("same\n", "same\n", Some(1)).is_empty());
    }
}
