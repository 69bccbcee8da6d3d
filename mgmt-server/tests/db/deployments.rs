use std::time::Duration;

use mgmt_server::db::deployments::{
    self, DeploymentKind, JobFilter, JobOutcome, JobRequest, JobStatus, Lease,
};
use mgmt_server::db::devices::{self, DeviceInput};
use mgmt_server::db::{Actor, DbError, EncryptionKey, GLOBAL_DOMAIN_ID, Page};
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::{DeviceConfig, Headend, IdentityCertificate, PrivateKeyPem, SCHEMA_VERSION};

use crate::support;

async fn device(pool: &PgPool, name: &str) -> Uuid {
    devices::create(
        &mut pool.acquire().await.unwrap(),
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: name.to_owned(),
            description: String::new(),
            host_name: "192.0.2.20".to_owned(),
            nat_id: None,
        },
    )
    .await
    .unwrap()
    .id
}

fn config(device_id: Uuid, version: u64, private_key: &str) -> DeviceConfig {
    let (chain, _) = support::certificate("vpn");
    DeviceConfig {
        schema_version: SCHEMA_VERSION,
        version,
        device_id,
        headend: Headend {
            access_interface: "outside".to_owned(),
            ssl_port: 443,
            dtls_enabled: true,
            dtls_port: 443,
            allow_profile_selection: true,
            identity: IdentityCertificate {
                trustpoint: "VPN-ID".to_owned(),
                certificate_chain_pem: chain,
                private_key_pem: PrivateKeyPem(private_key.to_owned()),
            },
        },
        connection_profiles: Vec::new(),
        group_policies: vec![vpn_core::config::GroupPolicy::new("DfltGrpPolicy")],
        ipv4_pools: Vec::new(),
        ipv6_pools: Vec::new(),
        trustpoints: Vec::new(),
        local_users: Vec::new(),
    }
}

fn request(config: DeviceConfig) -> JobRequest {
    JobRequest {
        config,
        rollback_of_job_id: None,
    }
}

#[tokio::test]
async fn a_deployment_queues_one_job_per_device_and_keeps_each_document_with_its_key_encrypted() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let (a, b) = (device(&pool, "ftd-a").await, device(&pool, "ftd-b").await);
    assert_eq!(deployments::next_config_version(&pool, a).await.unwrap(), 1);
    let (_, private_key) = support::certificate("vpn");
    let config_a = config(a, 1, &private_key);

    let deployment = deployments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "first deploy",
        &[
            request(config_a.clone()),
            request(config(b, 1, &private_key)),
        ],
        &key,
    )
    .await
    .unwrap();
    assert_eq!(deployment.jobs.len(), 2);
    assert!(
        deployment
            .jobs
            .iter()
            .all(|j| j.status == JobStatus::Queued)
    );
    assert_eq!(deployment.requested_by, "admin");
    let job_a = deployment.jobs.iter().find(|j| j.device_id == a).unwrap();
    assert_eq!(job_a.content_hash, config_a.content_hash());
    assert_eq!(
        deployments::get(&pool, GLOBAL_DOMAIN_ID, deployment.id)
            .await
            .unwrap(),
        deployment
    );
    assert_eq!(deployments::next_config_version(&pool, a).await.unwrap(), 2);

    // The stored JSON has no private key; reading the job's document restores it.
    let raw: String = sqlx::query_scalar("SELECT config::text || encode(identity_key_encrypted, 'escape') FROM deployment_jobs WHERE id = $1")
        .bind(job_a.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!raw.contains("PRIVATE KEY"));
    assert_eq!(
        deployments::job_config(&pool, GLOBAL_DOMAIN_ID, job_a.id, &key)
            .await
            .unwrap(),
        config_a
    );

    // A version the device already used is refused, and nothing is queued.
    let error = deployments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "again",
        &[
            request(config(b, 2, &private_key)),
            request(config(a, 1, &private_key)),
        ],
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Conflict { .. }), "{error}");
    assert_eq!(
        deployments::list_jobs(&pool, GLOBAL_DOMAIN_ID, &JobFilter::default(), Page::ALL)
            .await
            .unwrap()
            .total,
        2
    );

    // A document for an unknown device is refused.
    let error = deployments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "ghost",
        &[request(config(Uuid::new_v4(), 1, &private_key))],
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::NotFound { .. }), "{error}");
}

fn lease(owner: &str, seconds: f64) -> Lease {
    Lease {
        owner: owner.to_owned(),
        duration: Duration::from_secs_f64(seconds),
    }
}

#[tokio::test]
async fn each_device_runs_its_own_queue_one_job_at_a_time() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let (a, b) = (device(&pool, "ftd-a").await, device(&pool, "ftd-b").await);
    let admin = support::admin();
    for version in 1..=2 {
        deployments::create(
            &mut conn,
            &admin,
            GLOBAL_DOMAIN_ID,
            DeploymentKind::Deployment,
            "deploy",
            &[
                request(config(a, version, "")),
                request(config(b, version, "")),
            ],
            &key,
        )
        .await
        .unwrap();
    }
    // Two replicas claim: each device's first job once, never a device's second job
    // while its first runs.
    let (one, two) = (lease("replica-1", 30.0), lease("replica-2", 30.0));
    let first = deployments::claim_queued_job(&mut conn, &one)
        .await
        .unwrap()
        .unwrap();
    let second = deployments::claim_queued_job(&mut conn, &two)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.job.status, JobStatus::Deploying);
    assert_eq!(
        (first.attempts, first.taken_over_from.as_deref()),
        (1, None)
    );
    let mut started = [
        (first.job.device_id, first.job.config_version),
        (second.job.device_id, second.job.config_version),
    ];
    started.sort();
    let mut expected = [(a, 1), (b, 1)];
    expected.sort();
    assert_eq!(started, expected);
    for replica in [&one, &two] {
        assert!(
            deployments::claim_queued_job(&mut conn, replica)
                .await
                .unwrap()
                .is_none()
        );
    }
    let (first_a, first_b) = if first.job.device_id == a {
        (first, second)
    } else {
        (second, first)
    };

    let system = Actor::system();
    // Only the lease holder records the end.
    let error = deployments::finish_job(
        &mut conn,
        &system,
        GLOBAL_DOMAIN_ID,
        first_a.job.id,
        "replica-3",
        &JobOutcome::Deployed {
            transcript: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::WrongState { .. }), "{error}");
    let done = deployments::finish_job(
        &mut conn,
        &system,
        GLOBAL_DOMAIN_ID,
        first_a.job.id,
        &first_a.lease_owner,
        &JobOutcome::Deployed {
            transcript: "FMC >> webvpn\n".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!(done.status, JobStatus::Deployed);
    assert!(done.finished_at.is_some());
    assert_eq!(done.transcript, "FMC >> webvpn\n");
    let error = deployments::finish_job(
        &mut conn,
        &system,
        GLOBAL_DOMAIN_ID,
        first_a.job.id,
        &first_a.lease_owner,
        &JobOutcome::Deployed {
            transcript: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::WrongState { .. }), "{error}");

    let failed = deployments::finish_job(
        &mut conn,
        &system,
        GLOBAL_DOMAIN_ID,
        first_b.job.id,
        &first_b.lease_owner,
        &JobOutcome::Failed {
            transcript: String::new(),
            error: "sensor unreachable: connection refused".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("sensor unreachable: connection refused")
    );

    assert_eq!(
        deployments::last_deployed_job(&pool, a)
            .await
            .unwrap()
            .map(|j| j.id),
        Some(first_a.job.id)
    );
    assert!(
        deployments::last_deployed_job(&pool, b)
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        deployments::abort_queued_jobs(&mut conn, b, "device removed")
            .await
            .unwrap(),
        1
    );
    let second_a = deployments::claim_queued_job(&mut conn, &one)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (second_a.job.device_id, second_a.job.config_version),
        (a, 2)
    );
    assert!(
        deployments::claim_queued_job(&mut conn, &two)
            .await
            .unwrap()
            .is_none()
    );

    let history = deployments::list_jobs(
        &pool,
        GLOBAL_DOMAIN_ID,
        &JobFilter {
            device_id: Some(b),
            ..JobFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    let statuses: Vec<JobStatus> = history.items.iter().map(|j| j.status).collect();
    assert_eq!(statuses, [JobStatus::Aborted, JobStatus::Failed]);
}

#[tokio::test]
async fn a_job_whose_lease_expired_is_taken_over_and_its_old_owner_can_no_longer_finish_it() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let a = device(&pool, "ftd-a").await;
    deployments::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "deploy",
        &[request(config(a, 1, ""))],
        &key,
    )
    .await
    .unwrap();
    let dying = lease("replica-that-dies", 0.2);
    let survivor = lease("replica-that-survives", 30.0);
    let claimed = deployments::claim_queued_job(&mut conn, &dying)
        .await
        .unwrap()
        .unwrap();
    // While the lease holds, nobody takes the job over.
    assert!(
        deployments::take_over_expired_job(&mut conn, &survivor)
            .await
            .unwrap()
            .is_none()
    );
    let expiry = deployments::next_lease_expiry(&pool)
        .await
        .unwrap()
        .unwrap();
    assert!(expiry > time::OffsetDateTime::now_utc() - time::Duration::seconds(1));
    tokio::time::sleep(Duration::from_millis(400)).await;

    let taken = deployments::take_over_expired_job(&mut conn, &survivor)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.job.id, claimed.job.id);
    assert_eq!(taken.attempts, 2);
    assert_eq!(taken.taken_over_from.as_deref(), Some("replica-that-dies"));
    assert_eq!(taken.lease_owner, "replica-that-survives");
    // The old owner comes back: it can neither renew nor finish.
    assert!(
        !deployments::renew_lease(&pool, claimed.job.id, &dying)
            .await
            .unwrap()
    );
    let error = deployments::finish_job(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        claimed.job.id,
        &dying.owner,
        &JobOutcome::Failed {
            transcript: String::new(),
            error: "late".to_owned(),
        },
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("another replica"), "{error}");
    assert!(
        deployments::renew_lease(&pool, claimed.job.id, &survivor)
            .await
            .unwrap()
    );
    let done = deployments::finish_job(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        claimed.job.id,
        &survivor.owner,
        &JobOutcome::Deployed {
            transcript: "INFO: the sensor already runs version 1".to_owned(),
        },
    )
    .await
    .unwrap();
    assert_eq!(done.status, JobStatus::Deployed);
    assert!(
        deployments::next_lease_expiry(&pool)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_rollback_redeploys_an_earlier_document_under_a_new_version() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let key = EncryptionKey::generate().unwrap();
    let admin = support::admin();
    let a = device(&pool, "ftd-a").await;
    let (_, private_key) = support::certificate("vpn");
    let first = deployments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "v1",
        &[request(config(a, 1, &private_key))],
        &key,
    )
    .await
    .unwrap();
    let first_job = first.jobs[0].id;

    let mut earlier = deployments::job_config(&pool, GLOBAL_DOMAIN_ID, first_job, &key)
        .await
        .unwrap();
    earlier.version = deployments::next_config_version(&pool, a).await.unwrap();
    let rollback = deployments::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Rollback,
        "roll back to v1",
        &[JobRequest {
            config: earlier.clone(),
            rollback_of_job_id: Some(first_job),
        }],
        &key,
    )
    .await
    .unwrap();
    assert_eq!(rollback.kind, DeploymentKind::Rollback);
    assert_eq!(rollback.jobs[0].rollback_of_job_id, Some(first_job));
    assert_eq!(rollback.jobs[0].config_version, 2);
    let restored = deployments::job_config(&pool, GLOBAL_DOMAIN_ID, rollback.jobs[0].id, &key)
        .await
        .unwrap();
    assert_eq!(restored, earlier);
    assert_eq!(
        restored.headend.identity.private_key_pem.expose(),
        private_key
    );
}

#[tokio::test]
async fn a_deployment_without_devices_is_refused() {
    let pool = support::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let error = deployments::create(
        &mut pool.acquire().await.unwrap(),
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        DeploymentKind::Deployment,
        "nothing",
        &[],
        &key,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Invalid { .. }), "{error}");
}
