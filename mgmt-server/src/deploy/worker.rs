//! The deploy workers of one manager replica: they claim jobs from the shared queue in
//! PostgreSQL under a lease, push them to the sensors, and record what the sensors
//! answered.
//!
//! - Claims use `FOR UPDATE SKIP LOCKED` ([`deployments::claim_queued_job`]), so a job
//!   runs exactly once whichever replica queued it, each device runs one job at a time
//!   in queue order, and devices never wait for each other.
//! - The holder renews its lease every third of its length while the push runs. A job
//!   whose lease expired (its replica was killed, crashed or lost the database) is
//!   taken over: the new owner asks the sensor which version it runs and ends the job
//!   `DEPLOYED` when the sensor already runs it, or pushes again. A job ends `DEPLOYED`
//!   only when the sensor reported exactly its version and hash.
//! - Workers wake on `NOTIFY deploy_jobs` (a trigger on new jobs), on a local wake-up
//!   from this replica's requests, when the next lease expires, and on a slow poll as
//!   a safety net.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;
use vpn_core::config::DeviceConfig;

use crate::db::deployments::{self, ClaimedJob, JobOutcome, Lease};
use crate::db::devices::{self, Device};
use crate::db::{Actor, DbError, EncryptionKey};
use crate::devices::{SensorError, Sensors};
use crate::sensor_client::error_chain;

/// The channel the `deployment_jobs` trigger notifies.
pub const NOTIFY_CHANNEL: &str = "deploy_jobs";
/// Claims of one job (first claim and takeovers) before it is given up as FAILED.
pub const MAX_ATTEMPTS: i32 = 5;

/// How one replica's workers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// This replica's name in leases (unique per process).
    pub owner: String,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// The safety-net poll, for notifications lost while the database was away.
    pub poll: Duration,
    /// Pushes this replica runs at once (to different devices).
    pub concurrency: usize,
}

impl WorkerSettings {
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
    pub const DEFAULT_POLL: Duration = Duration::from_secs(10);
    pub const DEFAULT_CONCURRENCY: usize = 16;

    /// Defaults, with an owner name of `host:pid:random` for this process.
    pub fn for_this_process() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "mgmt-server".to_owned());
        let id = Uuid::new_v4().simple().to_string();
        Self {
            owner: format!("{host}:{}:{}", std::process::id(), &id[..8]),
            lease: Self::DEFAULT_LEASE,
            poll: Self::DEFAULT_POLL,
            concurrency: Self::DEFAULT_CONCURRENCY,
        }
    }
}

/// The running workers of this replica; they stop when this is dropped or stopped.
#[derive(Debug)]
pub struct Workers {
    dispatcher: JoinHandle<()>,
}

impl Workers {
    /// Starts the dispatcher: it claims what is waiting at once, then as work arrives.
    pub(crate) fn spawn(
        pool: PgPool,
        key: EncryptionKey,
        sensors: Sensors,
        settings: WorkerSettings,
        wake: Arc<Notify>,
    ) -> Self {
        let lease = Lease {
            owner: settings.owner.clone(),
            duration: settings.lease,
        };
        let context = Arc::new(WorkerContext {
            pool,
            key,
            sensors,
            lease,
            poll: settings.poll,
            permits: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            wake,
        });
        tracing::info!(owner = %settings.owner, lease_secs = settings.lease.as_secs_f64(), "deploy workers started");
        Self {
            dispatcher: tokio::spawn(dispatch(context)),
        }
    }

    /// Stops claiming new jobs. Pushes already running finish on their own tasks (or,
    /// if the process ends, are taken over when their lease expires).
    pub fn stop(&self) {
        self.dispatcher.abort();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

struct WorkerContext {
    pool: PgPool,
    key: EncryptionKey,
    sensors: Sensors,
    lease: Lease,
    poll: Duration,
    permits: Arc<Semaphore>,
    wake: Arc<Notify>,
}

async fn dispatch(context: Arc<WorkerContext>) {
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            listener = listen(&context.pool).await;
        }
        claim_while_possible(&context).await;
        let sleep = until_next_look(&context).await;
        tokio::select! {
            () = context.wake.notified() => {}
            () = tokio::time::sleep(sleep) => {}
            lost = notification(listener.as_mut()) => {
                if lost {
                    // Reconnect on the next turn; meanwhile the poll covers us.
                    listener = None;
                }
            }
        }
    }
}

/// A listener on [`NOTIFY_CHANNEL`], or `None` when the database cannot be reached now.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(error = %e, "deploy workers cannot LISTEN; polling instead");
            return None;
        }
    };
    match listener.listen(NOTIFY_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(e) => {
            tracing::warn!(error = %e, "deploy workers cannot LISTEN; polling instead");
            None
        }
    }
}

/// Waits for a notification; true when the listener lost its connection.
async fn notification(listener: Option<&mut PgListener>) -> bool {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    match listener.try_recv().await {
        Ok(Some(_)) => false,
        Ok(None) | Err(_) => true,
    }
}

/// How long to sleep: until the next lease expires (so a dead replica's job is taken
/// over at once), at most the poll interval.
async fn until_next_look(context: &WorkerContext) -> Duration {
    let Ok(Some(next)) = deployments::next_lease_expiry(&context.pool).await else {
        return context.poll;
    };
    let wait = next - OffsetDateTime::now_utc() + time::Duration::milliseconds(50);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(50))
        .min(context.poll)
}

/// Claims jobs while there are free pushes and work that may start.
async fn claim_while_possible(context: &Arc<WorkerContext>) {
    loop {
        let Ok(permit) = Arc::clone(&context.permits).try_acquire_owned() else {
            return;
        };
        match claim_one(context).await {
            Ok(Some(claimed)) => {
                let span = tracing::info_span!(
                    "deploy_job",
                    job = %claimed.job.id,
                    device = %claimed.job.device_id,
                    version = claimed.job.config_version,
                    attempt = claimed.attempts,
                );
                tokio::spawn(run(Arc::clone(context), claimed, permit).instrument(span));
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "deploy workers cannot claim jobs");
                return;
            }
        }
    }
}

async fn claim_one(context: &WorkerContext) -> Result<Option<ClaimedJob>, DbError> {
    let mut conn = context
        .pool
        .acquire()
        .await
        .map_err(DbError::sql("get a connection"))?;
    if let Some(expired) = deployments::take_over_expired_job(&mut conn, &context.lease).await? {
        return Ok(Some(expired));
    }
    deployments::claim_queued_job(&mut conn, &context.lease).await
}

/// Runs one claimed job to its end, renewing the lease meanwhile.
async fn run(context: Arc<WorkerContext>, claimed: ClaimedJob, permit: OwnedSemaphorePermit) {
    let renewal = tokio::spawn(renew(Arc::clone(&context), claimed.job.id).in_current_span());
    let outcome = execute(&context, &claimed).await;
    renewal.abort();
    let held = matches!(renewal.await, Err(e) if e.is_cancelled());
    match &outcome {
        JobOutcome::Deployed { .. } => tracing::info!("deployed"),
        JobOutcome::Failed { error, .. } => tracing::warn!(error = %error, "deploy failed"),
    }
    let finished = async {
        let mut conn = context
            .pool
            .acquire()
            .await
            .map_err(DbError::sql("get a connection"))?;
        deployments::finish_job(
            &mut conn,
            &Actor::system(),
            claimed.domain_id,
            claimed.job.id,
            &context.lease.owner,
            &outcome,
        )
        .await
    };
    match finished.await {
        Ok(_) => {}
        Err(DbError::WrongState { state, .. }) => {
            tracing::warn!(%state, lease_held = held, "another replica owns the job now; it records the end");
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "cannot record the end of the job; it is taken over when the lease expires");
        }
    }
    drop(permit);
    // The device may have more queued, and a push slot is free.
    context.wake.notify_one();
}

/// Renews the lease every third of its length until aborted; returns (ending the
/// task) when the lease was lost.
async fn renew(context: Arc<WorkerContext>, job_id: Uuid) {
    let every = context.lease.duration / 3;
    loop {
        tokio::time::sleep(every).await;
        match deployments::renew_lease(&context.pool, job_id, &context.lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("lease lost: another replica took the job over");
                return;
            }
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot renew the lease"),
        }
    }
}

/// What became of the job: the sensor's answer, or why there is none.
async fn execute(context: &WorkerContext, claimed: &ClaimedJob) -> JobOutcome {
    let mut transcript = String::new();
    if let Some(previous) = &claimed.taken_over_from {
        tracing::info!(previous_owner = %previous, "taking over a job whose lease expired");
        transcript.push_str(&format!(
            "INFO: taken over by {} from {previous}, whose lease expired (attempt {})\n",
            context.lease.owner, claimed.attempts
        ));
    }
    if claimed.attempts > MAX_ATTEMPTS {
        return JobOutcome::Failed {
            transcript,
            error: format!(
                "given up after {} attempts: every replica that ran this job stopped before it ended",
                MAX_ATTEMPTS
            ),
        };
    }
    let (device, config) = match load(context, claimed).await {
        Ok(loaded) => loaded,
        Err(e) => {
            return JobOutcome::Failed {
                transcript,
                error: error_chain(&e),
            };
        }
    };
    if claimed.taken_over_from.is_some() {
        match context.sensors.status(&device).await {
            Ok(status) => match status.running {
                Some(running)
                    if running.version == config.version
                        && running.hash == claimed.job.content_hash =>
                {
                    transcript.push_str(&format!(
                        "INFO: the sensor already runs version {} (hash {})",
                        running.version, running.hash
                    ));
                    return JobOutcome::Deployed { transcript };
                }
                Some(running) if running.version >= config.version => {
                    return JobOutcome::Failed {
                        transcript,
                        error: format!(
                            "the sensor runs version {} (hash {}), not this job's version {} (hash {})",
                            running.version, running.hash, config.version, claimed.job.content_hash
                        ),
                    };
                }
                running => transcript.push_str(&format!(
                    "INFO: the sensor runs {}; pushing version {} again\n",
                    running.map_or_else(
                        || "no configuration".to_owned(),
                        |r| format!("version {}", r.version)
                    ),
                    config.version
                )),
            },
            Err(e) => {
                return JobOutcome::Failed {
                    transcript,
                    error: format!(
                        "cannot ask the sensor which version it runs: {}",
                        error_chain(&e)
                    ),
                };
            }
        }
    }
    tracing::info!(device_name = %device.name, "pushing");
    match context.sensors.deploy(&device, config.to_json()).await {
        Ok(result)
            if result.version == config.version && result.hash == claimed.job.content_hash =>
        {
            transcript.push_str(&result.transcript.join("\n"));
            for warning in &result.warnings {
                transcript.push_str(&format!("\nWARNING: {warning}"));
            }
            transcript.push_str(&format!(
                "\nINFO: version {} applied (hash {}); {} session(s) ended",
                result.version,
                result.hash,
                result.ended_sessions.len()
            ));
            JobOutcome::Deployed { transcript }
        }
        Ok(result) => JobOutcome::Failed {
            transcript,
            error: format!(
                "the sensor reported version {} (hash {}) instead of version {} (hash {})",
                result.version, result.hash, config.version, claimed.job.content_hash
            ),
        },
        Err(e) => {
            // A push that raced with an earlier owner's: the sensor may run it already.
            if refused_as_not_newer(&e)
                && let Ok(status) = context.sensors.status(&device).await
                && let Some(running) = status.running
                && running.version == config.version
                && running.hash == claimed.job.content_hash
            {
                transcript.push_str(&format!(
                    "INFO: the sensor already runs version {} (hash {})",
                    running.version, running.hash
                ));
                return JobOutcome::Deployed { transcript };
            }
            JobOutcome::Failed {
                transcript,
                error: error_chain(&e),
            }
        }
    }
}

async fn load(
    context: &WorkerContext,
    claimed: &ClaimedJob,
) -> Result<(Device, DeviceConfig), DbError> {
    let device = devices::get(&context.pool, claimed.domain_id, claimed.job.device_id).await?;
    let config = deployments::job_config(
        &context.pool,
        claimed.domain_id,
        claimed.job.id,
        &context.key,
    )
    .await?;
    Ok((device, config))
}

fn refused_as_not_newer(error: &SensorError) -> bool {
    matches!(error, SensorError::Sensor { source, .. } if source.refusal_code() == Some("not-newer"))
}
