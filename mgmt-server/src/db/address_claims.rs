//! The address pools other devices hand out: what their last deployed configuration
//! and their queued or running deploys carry (the pools of the `DeviceConfig` stored
//! with each job). The deploy path compares a new configuration against them so that
//! two devices never hand out the same client addresses.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;
use vpn_core::config::{Ipv4Pool, Ipv6Pool};

use super::DbError;

/// The pools one job of another device carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedPools {
    pub device_id: Uuid,
    pub device_name: String,
    pub config_version: u64,
    /// `DEPLOYED`, `QUEUED` or `DEPLOYING`.
    pub status: String,
    pub ipv4_pools: Vec<Ipv4Pool>,
    pub ipv6_pools: Vec<Ipv6Pool>,
}

/// For every device of `domain_id` except `except`: the pools of its last deployed job
/// and of each job still queued or deploying.
pub async fn deployed_or_pending(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    except: &[Uuid],
) -> Result<Vec<DeployedPools>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT j.device_id, d.name AS device_name, j.config_version, j.status,
                  j.config -> 'ipv4_pools' AS "ipv4_pools: Value", j.config -> 'ipv6_pools' AS "ipv6_pools: Value"
           FROM deployment_jobs j
           JOIN devices d ON d.id = j.device_id
           WHERE d.domain_id = $1 AND NOT (j.device_id = ANY($2))
             AND (j.status IN ('QUEUED', 'DEPLOYING')
                  OR j.id = (SELECT last.id FROM deployment_jobs last
                             WHERE last.device_id = j.device_id AND last.status = 'DEPLOYED'
                             ORDER BY last.config_version DESC LIMIT 1))
           ORDER BY d.name, j.config_version"#,
        domain_id,
        except,
    )
    .fetch_all(exec)
    .await
    .map_err(DbError::sql("read the pools other devices hand out"))?;
    rows.into_iter()
        .map(|row| {
            Ok(DeployedPools {
                device_id: row.device_id,
                device_name: row.device_name,
                config_version: u64::try_from(row.config_version).unwrap_or_default(),
                status: row.status,
                ipv4_pools: pools_column("ipv4_pools", row.ipv4_pools)?,
                ipv6_pools: pools_column("ipv6_pools", row.ipv6_pools)?,
            })
        })
        .collect()
}

/// A `jsonb` list of pools of a stored DeviceConfig (absent: none).
fn pools_column<T: serde::de::DeserializeOwned>(
    column: &str,
    value: Option<Value>,
) -> Result<Vec<T>, DbError> {
    serde_json::from_value(value.unwrap_or(Value::Array(Vec::new()))).map_err(|e| {
        DbError::sql("read the pools other devices hand out")(super::column_error(
            column,
            e.to_string(),
        ))
    })
}
