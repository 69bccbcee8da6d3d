//! Deployments (`deployment/deploymentrequests`, `deployment/rollbackrequests`) and
//! their per-device jobs (`deployment/jobhistories`).
//!
//! A job carries the exact DeviceConfig it pushes. That document is stored as JSON
//! with the headend's private key taken out and kept encrypted beside it; it is what
//! pending-changes diffs and rollbacks start from. Each device has its own queue: at
//! most one job per device is `DEPLOYING` (a unique index), and devices never wait
//! for each other.

use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection, PgExecutor, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::config::{DeviceConfig, PrivateKeyPem};

use super::audit::{self, AuditAction};
use super::{Actor, DbError, EncryptionKey, Listed, ObjectKind, Page};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentKind {
    Deployment,
    Rollback,
}

/// FMC job statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Queued,
    Deploying,
    Deployed,
    Failed,
    Aborted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: Uuid,
    pub domain_id: Uuid,
    pub kind: DeploymentKind,
    pub requested_by: String,
    pub requested_by_id: Option<Uuid>,
    pub note: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    pub jobs: Vec<DeploymentJob>,
}

/// One device's job, without its configuration document (see [`job_config`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentJob {
    pub id: Uuid,
    pub deployment_id: Uuid,
    pub device_id: Uuid,
    pub status: JobStatus,
    /// DeviceConfig.version pushed by this job.
    pub config_version: u64,
    /// DeviceConfig::content_hash of the pushed document.
    pub content_hash: String,
    pub rollback_of_job_id: Option<Uuid>,
    /// What the sensor answered (the rendered CLI lines), or what was reached before
    /// a failure.
    pub transcript: String,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub version: i32,
}

/// One device's share of a new deployment: the compiled, validated document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub config: DeviceConfig,
    /// For a rollback: the job whose configuration is deployed again.
    pub rollback_of_job_id: Option<Uuid>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Deployed { transcript: String },
    Failed { transcript: String, error: String },
}

/// Which jobs to list; empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub device_id: Option<Uuid>,
    pub status: Option<JobStatus>,
    pub deployment_id: Option<Uuid>,
}

const KIND: ObjectKind = ObjectKind::Deployment;
const JOB: ObjectKind = ObjectKind::DeploymentJob;

/// The version the next document compiled for `device_id` must carry: one more than
/// any job of the device so far (1 for a new device).
pub async fn next_config_version(
    exec: impl PgExecutor<'_>,
    device_id: Uuid,
) -> Result<u64, DbError> {
    let highest = sqlx::query_scalar!(
        "SELECT max(config_version) FROM deployment_jobs WHERE device_id = $1",
        device_id,
    )
    .fetch_one(exec)
    .await
    .map_err(DbError::sql("find the next config version"))?;
    Ok(highest.and_then(|v| u64::try_from(v).ok()).unwrap_or(0) + 1)
}

/// Queues a deployment: one job per document, all `QUEUED`, and one DEPLOY (or
/// ROLLBACK) audit row. Each document must be addressed to a device of the domain and
/// carry a version no job of that device has used.
pub async fn create(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    kind: DeploymentKind,
    note: &str,
    jobs: &[JobRequest],
    key: &EncryptionKey,
) -> Result<Deployment, DbError> {
    if jobs.is_empty() {
        return Err(DbError::Invalid {
            kind: KIND,
            constraint: "deviceList".to_owned(),
            message: "a deployment needs at least one device".to_owned(),
        });
    }
    let mut tx = super::begin(conn).await?;
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO deployments (id, domain_id, kind, requested_by, requested_by_id, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        domain_id,
        super::enum_text(&kind),
        actor.name,
        actor.id,
        note,
    )
    .execute(&mut *tx)
    .await
    .map_err(DbError::on_write(KIND, note, "create a deployment"))?;
    let device_ids: Vec<Uuid> = jobs.iter().map(|job| job.config.device_id).collect();
    let found = sqlx::query_scalar!(
        "SELECT id FROM devices WHERE domain_id = $1 AND id = ANY($2)",
        domain_id,
        &device_ids,
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(DbError::sql("look up referenced objects"))?;
    super::require_found(ObjectKind::Device, &device_ids, &found)?;
    for request in jobs {
        let job_id = Uuid::new_v4();
        let (stored, sealed_key) = split_secret(&request.config, job_id, key)?;
        let version = i64::try_from(request.config.version).map_err(|_| DbError::Invalid {
            kind: JOB,
            constraint: "config_version".to_owned(),
            message: format!("version {} is too large", request.config.version),
        })?;
        sqlx::query!(
            "INSERT INTO deployment_jobs (id, deployment_id, device_id, config_version, content_hash, config,
                                          identity_key_encrypted, rollback_of_job_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            job_id,
            id,
            request.config.device_id,
            version,
            request.config.content_hash(),
            Json(&stored) as _,
            sealed_key,
            request.rollback_of_job_id,
        )
        .execute(&mut *tx)
        .await
        .map_err(DbError::on_write(JOB, &request.config.version.to_string(), "queue a deployment job"))?;
    }
    let created = get(&mut *tx, domain_id, id).await?;
    let action = match kind {
        DeploymentKind::Deployment => AuditAction::Deploy,
        DeploymentKind::Rollback => AuditAction::Rollback,
    };
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor,
            domain_id: Some(domain_id),
            action,
            object_kind: KIND,
            object_id: Some(id),
            object_name: Some(note),
            before: None,
            after: super::snapshot(&created),
            detail: None,
        },
    )
    .await?;
    super::commit(tx).await?;
    Ok(created)
}

/// A deployment with its jobs (in queue order), read in one query: the jobs come as a
/// JSON array of their columns.
pub async fn get(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    id: Uuid,
) -> Result<Deployment, DbError> {
    sqlx::query_as!(
        DeploymentRow,
        r#"SELECT d.id, d.domain_id, d.kind, d.requested_by, d.requested_by_id, d.note, d.requested_at,
                  COALESCE((SELECT json_agg(json_build_object(
                                'id', j.id, 'deployment_id', j.deployment_id, 'device_id', j.device_id,
                                'status', j.status, 'config_version', j.config_version,
                                'content_hash', j.content_hash, 'rollback_of_job_id', j.rollback_of_job_id,
                                'transcript', j.transcript, 'error', j.error, 'queued_at', j.queued_at,
                                'started_at', j.started_at, 'finished_at', j.finished_at,
                                'version', j.version)
                              ORDER BY j.queued_at, j.id)
                            FROM deployment_jobs j WHERE j.deployment_id = d.id), '[]')
                    AS "jobs!: Json<Vec<JobRow>>"
           FROM deployments d WHERE d.id = $1 AND d.domain_id = $2"#,
        id,
        domain_id,
    )
    .try_map(Deployment::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a deployment"))?
    .ok_or(DbError::NotFound { kind: KIND, id })
}

pub async fn get_job(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    job_id: Uuid,
) -> Result<DeploymentJob, DbError> {
    sqlx::query_as!(
        JobRow,
        "SELECT j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                j.finished_at, j.version
         FROM deployment_jobs j JOIN devices v ON v.id = j.device_id
         WHERE j.id = $1 AND v.domain_id = $2",
        job_id,
        domain_id,
    )
    .try_map(DeploymentJob::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a deployment job"))?
    .ok_or(DbError::NotFound {
        kind: JOB,
        id: job_id,
    })
}

/// Job history, newest first.
pub async fn list_jobs<'a>(
    db: impl Acquire<'a, Database = Postgres>,
    domain_id: Uuid,
    filter: &JobFilter,
    page: Page,
) -> Result<Listed<DeploymentJob>, DbError> {
    let mut conn = db
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    let status = filter.status.as_ref().map(super::enum_text);
    let items = sqlx::query_as!(
        JobRow,
        "SELECT j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                j.finished_at, j.version
         FROM deployment_jobs j JOIN devices v ON v.id = j.device_id
         WHERE v.domain_id = $1 AND ($2::uuid IS NULL OR j.device_id = $2)
           AND ($3::text IS NULL OR j.status = $3) AND ($4::uuid IS NULL OR j.deployment_id = $4)
         ORDER BY j.queued_at DESC, j.config_version DESC OFFSET $5 LIMIT $6",
        domain_id,
        filter.device_id,
        status,
        filter.deployment_id,
        page.offset,
        page.limit,
    )
    .try_map(DeploymentJob::try_from)
    .fetch_all(&mut *conn)
    .await
    .map_err(DbError::sql("list deployment jobs"))?;
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!"
           FROM deployment_jobs j JOIN devices v ON v.id = j.device_id
           WHERE v.domain_id = $1 AND ($2::uuid IS NULL OR j.device_id = $2)
             AND ($3::text IS NULL OR j.status = $3) AND ($4::uuid IS NULL OR j.deployment_id = $4)"#,
        domain_id,
        filter.device_id,
        status,
        filter.deployment_id,
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(DbError::sql("count deployment jobs"))?;
    Ok(Listed { items, total })
}

/// The document a job pushes (or pushed), with the headend key decrypted.
pub async fn job_config(
    exec: impl PgExecutor<'_>,
    domain_id: Uuid,
    job_id: Uuid,
    key: &EncryptionKey,
) -> Result<DeviceConfig, DbError> {
    let row = sqlx::query!(
        r#"SELECT j.config AS "config: Json<DeviceConfig>", j.identity_key_encrypted
           FROM deployment_jobs j JOIN devices v ON v.id = j.device_id
           WHERE j.id = $1 AND v.domain_id = $2"#,
        job_id,
        domain_id,
    )
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("read a job's configuration"))?
    .ok_or(DbError::NotFound {
        kind: JOB,
        id: job_id,
    })?;
    let Json(mut config) = row.config;
    if let Some(sealed) = row.identity_key_encrypted {
        config.headend.identity.private_key_pem =
            PrivateKeyPem(key.open_text(&sealed, &key_context(job_id))?);
    }
    Ok(config)
}

/// The newest job that reached `DEPLOYED` on the device: what it runs now, as far as
/// the manager knows.
pub async fn last_deployed_job(
    exec: impl PgExecutor<'_>,
    device_id: Uuid,
) -> Result<Option<DeploymentJob>, DbError> {
    sqlx::query_as!(
        JobRow,
        "SELECT j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                j.finished_at, j.version
         FROM deployment_jobs j
         WHERE j.device_id = $1 AND j.status = 'DEPLOYED' ORDER BY j.config_version DESC LIMIT 1",
        device_id,
    )
    .try_map(DeploymentJob::try_from)
    .fetch_optional(exec)
    .await
    .map_err(DbError::sql("find the last deployed job"))
}

/// A claim on deploy jobs: who holds it and for how long. Each manager replica has its
/// own owner name; the holder renews the lease while it pushes ([`renew_lease`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The replica (e.g. `host:pid:id`), as the job's transcript and the logs show it.
    pub owner: String,
    pub duration: std::time::Duration,
}

impl Lease {
    fn seconds(&self) -> f64 {
        self.duration.as_secs_f64()
    }
}

/// A job a worker now holds: run it, then [`finish_job`] it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub job: DeploymentJob,
    pub domain_id: Uuid,
    /// Claims so far, this one included.
    pub attempts: i32,
    /// The replica that holds the job now.
    pub lease_owner: String,
    /// Set when the job was taken over from a replica whose lease expired mid-push: the
    /// sensor may already run the job's version.
    pub taken_over_from: Option<String>,
}

/// Claims the oldest queued job of a device that has no job running, marking it
/// `DEPLOYING` under `lease`; `None` when no device has work that is free to start.
/// Devices are claimed with `FOR UPDATE SKIP LOCKED`, so concurrent workers (in this or
/// another replica) never wait for each other and never claim the same device, and a
/// device's jobs start in queue order.
pub async fn claim_queued_job(
    conn: &mut PgConnection,
    lease: &Lease,
) -> Result<Option<ClaimedJob>, DbError> {
    sqlx::query_as!(
        ClaimRow,
        r#"WITH device AS (
               SELECT d.id FROM devices d
               JOIN LATERAL (SELECT min(q.queued_at) AS oldest FROM deployment_jobs q
                             WHERE q.device_id = d.id AND q.status = 'QUEUED') w ON w.oldest IS NOT NULL
               WHERE NOT EXISTS (SELECT 1 FROM deployment_jobs r WHERE r.device_id = d.id AND r.status = 'DEPLOYING')
               ORDER BY w.oldest LIMIT 1
               FOR UPDATE OF d SKIP LOCKED),
           next AS (
               SELECT q.id FROM deployment_jobs q JOIN device ON q.device_id = device.id
               WHERE q.status = 'QUEUED' ORDER BY q.queued_at, q.config_version LIMIT 1)
           UPDATE deployment_jobs j
              SET status = 'DEPLOYING', started_at = now(), lease_owner = $1,
                  lease_expires_at = now() + make_interval(secs => $2), attempts = j.attempts + 1,
                  version = j.version + 1
             FROM next, devices v
            WHERE j.id = next.id AND j.status = 'QUEUED' AND v.id = j.device_id
           RETURNING j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                     j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                     j.finished_at, j.version, v.domain_id, j.attempts,
                     j.lease_owner AS "lease_owner!", NULL::text AS "taken_over_from?""#,
        lease.owner,
        lease.seconds(),
    )
    .try_map(ClaimedJob::try_from)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::sql("claim a queued deployment job"))
}

/// Takes over the `DEPLOYING` job whose lease expired longest ago (its replica stopped
/// renewing it: crashed, killed or cut off), under `lease`; `None` when there is none.
pub async fn take_over_expired_job(
    conn: &mut PgConnection,
    lease: &Lease,
) -> Result<Option<ClaimedJob>, DbError> {
    sqlx::query_as!(
        ClaimRow,
        r#"WITH expired AS (
               SELECT e.id, e.lease_owner FROM deployment_jobs e
               WHERE e.status = 'DEPLOYING' AND e.lease_expires_at < now()
               ORDER BY e.lease_expires_at LIMIT 1
               FOR UPDATE SKIP LOCKED)
           UPDATE deployment_jobs j
              SET lease_owner = $1, lease_expires_at = now() + make_interval(secs => $2),
                  attempts = j.attempts + 1, version = j.version + 1
             FROM expired, devices v
            WHERE j.id = expired.id AND j.status = 'DEPLOYING' AND v.id = j.device_id
           RETURNING j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                     j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                     j.finished_at, j.version, v.domain_id, j.attempts,
                     j.lease_owner AS "lease_owner!", expired.lease_owner AS "taken_over_from?""#,
        lease.owner,
        lease.seconds(),
    )
    .try_map(ClaimedJob::try_from)
    .fetch_optional(&mut *conn)
    .await
    .map_err(DbError::sql("take over a deployment job"))
}

/// Extends the lease of a job `lease.owner` holds; false when it holds it no more (the
/// job finished or another replica took it over).
pub async fn renew_lease(
    exec: impl PgExecutor<'_>,
    job_id: Uuid,
    lease: &Lease,
) -> Result<bool, DbError> {
    let renewed = sqlx::query!(
        "UPDATE deployment_jobs SET lease_expires_at = now() + make_interval(secs => $3)
         WHERE id = $1 AND status = 'DEPLOYING' AND lease_owner = $2",
        job_id,
        lease.owner,
        lease.seconds(),
    )
    .execute(exec)
    .await
    .map_err(DbError::sql("renew a deploy lease"))?;
    Ok(renewed.rows_affected() == 1)
}

/// When the next lease of a running job expires, if any job runs: a worker that wakes
/// then can take it over at once.
pub async fn next_lease_expiry(
    exec: impl PgExecutor<'_>,
) -> Result<Option<OffsetDateTime>, DbError> {
    sqlx::query_scalar!(
        "SELECT min(lease_expires_at) FROM deployment_jobs WHERE status = 'DEPLOYING'"
    )
    .fetch_one(exec)
    .await
    .map_err(DbError::sql("find the next lease expiry"))
}

/// Records how a `DEPLOYING` job that `owner` holds ended, with an audit row for the
/// result. A job that is not `DEPLOYING` is [`DbError::WrongState`]; one whose lease
/// another replica holds now is [`DbError::WrongState`] too (its new owner finishes it).
pub async fn finish_job(
    conn: &mut PgConnection,
    actor: &Actor,
    domain_id: Uuid,
    job_id: Uuid,
    owner: &str,
    outcome: &JobOutcome,
) -> Result<DeploymentJob, DbError> {
    let mut tx = super::begin(conn).await?;
    let before = get_job(&mut *tx, domain_id, job_id).await?;
    let (status, transcript, error) = match outcome {
        JobOutcome::Deployed { transcript } => (JobStatus::Deployed, transcript, None),
        JobOutcome::Failed { transcript, error } => {
            (JobStatus::Failed, transcript, Some(error.as_str()))
        }
    };
    let finished = sqlx::query_as!(
        JobRow,
        "UPDATE deployment_jobs j SET status = $2, transcript = $3, error = $4, finished_at = now(),
            lease_owner = NULL, lease_expires_at = NULL, version = j.version + 1
         WHERE j.id = $1 AND j.status = 'DEPLOYING' AND j.lease_owner = $5
         RETURNING j.id, j.deployment_id, j.device_id, j.status, j.config_version, j.content_hash,
                   j.rollback_of_job_id, j.transcript, j.error, j.queued_at, j.started_at,
                   j.finished_at, j.version",
        job_id,
        super::enum_text(&status),
        transcript,
        error,
        owner,
    )
    .try_map(DeploymentJob::try_from)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::sql("finish a deployment job"))?;
    let Some(finished) = finished else {
        let state = match before.status {
            JobStatus::Deploying => "DEPLOYING under another replica's lease".to_owned(),
            other => super::enum_text(&other),
        };
        return Err(DbError::WrongState {
            kind: JOB,
            id: job_id,
            action: "finish",
            state,
        });
    };
    let action = if finished.rollback_of_job_id.is_some() {
        AuditAction::Rollback
    } else {
        AuditAction::Deploy
    };
    let detail = match error {
        Some(error) => format!("FAILED: {error}"),
        None => "DEPLOYED".to_owned(),
    };
    audit::record(
        &mut *tx,
        &audit::NewAuditEntry {
            actor,
            domain_id: Some(domain_id),
            action,
            object_kind: JOB,
            object_id: Some(job_id),
            object_name: None,
            before: super::snapshot(&before),
            after: super::snapshot(&finished),
            detail: Some(&detail),
        },
    )
    .await?;
    super::commit(tx).await?;
    Ok(finished)
}

/// Aborts the device's queued jobs (e.g. the device is being removed); returns how many.
pub async fn abort_queued_jobs(
    conn: &mut PgConnection,
    device_id: Uuid,
    reason: &str,
) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "UPDATE deployment_jobs SET status = 'ABORTED', error = $2, finished_at = now(), version = version + 1
         WHERE device_id = $1 AND status = 'QUEUED'",
        device_id,
        reason,
    )
    .execute(conn)
    .await
    .map_err(DbError::sql("abort queued jobs"))?;
    Ok(done.rows_affected())
}

fn key_context(job_id: Uuid) -> String {
    format!("deployment_jobs.identity_key_encrypted:{job_id}")
}

/// The document without its private key, and the key sealed for the job's row.
fn split_secret(
    config: &DeviceConfig,
    job_id: Uuid,
    key: &EncryptionKey,
) -> Result<(DeviceConfig, Option<Vec<u8>>), DbError> {
    let mut stored = config.clone();
    let private_key = std::mem::replace(
        &mut stored.headend.identity.private_key_pem,
        PrivateKeyPem(String::new()),
    );
    if private_key.expose().is_empty() {
        return Ok((stored, None));
    }
    let sealed = key.seal(private_key.expose().as_bytes(), &key_context(job_id))?;
    Ok((stored, Some(sealed)))
}

/// A `deployments` row as stored, with its jobs as a JSON array (see [`get`]).
struct DeploymentRow {
    id: Uuid,
    domain_id: Uuid,
    kind: String,
    requested_by: String,
    requested_by_id: Option<Uuid>,
    note: String,
    requested_at: OffsetDateTime,
    jobs: Json<Vec<JobRow>>,
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = sqlx::Error;

    fn try_from(row: DeploymentRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            domain_id: row.domain_id,
            kind: super::enum_from_text("kind", row.kind)?,
            requested_by: row.requested_by,
            requested_by_id: row.requested_by_id,
            note: row.note,
            requested_at: row.requested_at,
            jobs: row
                .jobs
                .0
                .into_iter()
                .map(DeploymentJob::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A `deployment_jobs` row as stored, without its document. Also an element of a
/// deployment's `jobs` array: `json_build_object` writes the same names, and the
/// timestamps as RFC 3339 text.
#[derive(Deserialize)]
struct JobRow {
    id: Uuid,
    deployment_id: Uuid,
    device_id: Uuid,
    status: String,
    config_version: i64,
    content_hash: String,
    rollback_of_job_id: Option<Uuid>,
    transcript: String,
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    finished_at: Option<OffsetDateTime>,
    version: i32,
}

impl TryFrom<JobRow> for DeploymentJob {
    type Error = sqlx::Error;

    fn try_from(row: JobRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.id,
            deployment_id: row.deployment_id,
            device_id: row.device_id,
            status: super::enum_from_text("status", row.status)?,
            config_version: super::unsigned_column("config_version", row.config_version)?,
            content_hash: row.content_hash,
            rollback_of_job_id: row.rollback_of_job_id,
            transcript: row.transcript,
            error: row.error,
            queued_at: row.queued_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            version: row.version,
        })
    }
}

/// A claimed job as the claim's `RETURNING` gives it: the job's columns, its domain,
/// its attempts, its new owner and, for a takeover, the former one.
struct ClaimRow {
    id: Uuid,
    deployment_id: Uuid,
    device_id: Uuid,
    status: String,
    config_version: i64,
    content_hash: String,
    rollback_of_job_id: Option<Uuid>,
    transcript: String,
    error: Option<String>,
    queued_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
    version: i32,
    domain_id: Uuid,
    attempts: i32,
    lease_owner: String,
    taken_over_from: Option<String>,
}

impl TryFrom<ClaimRow> for ClaimedJob {
    type Error = sqlx::Error;

    fn try_from(row: ClaimRow) -> Result<Self, sqlx::Error> {
        let job = JobRow {
            id: row.id,
            deployment_id: row.deployment_id,
            device_id: row.device_id,
            status: row.status,
            config_version: row.config_version,
            content_hash: row.content_hash,
            rollback_of_job_id: row.rollback_of_job_id,
            transcript: row.transcript,
            error: row.error,
            queued_at: row.queued_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            version: row.version,
        };
        Ok(Self {
            job: DeploymentJob::try_from(job)?,
            domain_id: row.domain_id,
            attempts: row.attempts,
            lease_owner: row.lease_owner,
            taken_over_from: row.taken_over_from,
        })
    }
}
