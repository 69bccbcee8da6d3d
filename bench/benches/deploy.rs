//! Deploy benchmark (issue 8, point 5): from the manager's deploy request to the
//! configuration applied on the sensor, for 1, 100 and 1,000 connection profiles.
//!
//! The real parts: a throw-away PostgreSQL cluster (`e2e::postgres`), mgmt-server's
//! the manager's `Services` (deploy requests and workers) in this process, and a real `sensor-agent` process (the workspace's
//! binary, release profile, built by `e2e::sensor::binary`) in a network namespace,
//! registered to the manager over its mutual-TLS channel. One device grows from 1 to
//! 100 to 1,000 profiles; at each size the first deploy changes the configuration,
//! then [`REPEATS`] re-deploys of the same content follow (each a new version the
//! sensor checks, writes and applies).
//!
//! Each deploy is timed from before `Deployments::deploy` until the job reads
//! `DEPLOYED` (polled every millisecond), and broken down with the job's own
//! timestamps (queued, started, finished) and with the parts timed alone at the same
//! size: the compile from the database, the TLS round trip of a status request, and
//! the sensor's own check and commit (`ConfigStore`, in this process on the same disk).
//!
//! Prints a markdown report on stdout. Run: `cargo bench -p bench --bench deploy`
//! as root (network namespace), or `bench/deploy.sh`.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark that cannot run fails loudly

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use e2e::netns::Netns;
use e2e::sensor::{binary, in_netns, operator, start_agent};
use mgmt_server::db::deployments::{self, DeploymentJob, JobStatus};
use mgmt_server::db::device_policy;
use mgmt_server::db::devices::{self, Device, DeviceInput};
use mgmt_server::db::profiles::{self, ConnectionProfileInput};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID};
use mgmt_server::deploy::compile;
use mgmt_server::services::Services;
use sensor_agent::config_store::ConfigStore;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;
use vpn_core::channel::RegistrationKey;
use vpn_core::cli::running_config;
use vpn_core::config::{DeviceConfig, GroupAlias};
use vpn_core::pki::testpki::{LeafOptions, TestCa, TestEku};

/// Connection profile counts, in the order the device grows through them.
const SIZES: [usize; 3] = [1, 100, 1000];
/// Re-deploys timed at each size (after the deploy that changes the configuration).
const REPEATS: usize = 7;
const KEY: &str = "Bench-Reg-Key";
const MANAGEMENT_PORT: u16 = 8315;

fn main() {
    let netns = Netns::create("bench-deploy");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let data = dir.path().join("data");
    let listen = format!("127.0.0.1:{MANAGEMENT_PORT}");
    let mut agent = start_agent(
        binary(),
        &netns,
        &socket,
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--management-listen".as_ref(),
            listen.as_ref(),
            "--tun-name".as_ref(),
            "bdtun0".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1".as_ref(),
        ],
    );
    let added = operator(
        binary(),
        &socket,
        &["configure", "manager", "add", "127.0.0.1", KEY],
    );
    assert!(added.status.success(), "{added:?}");
    let scratch = dir.path().join("sensor-store");
    let report = in_netns(&netns, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(scratch))
    });
    assert!(agent.interrupt().success());
    print!("{report}");
}

/// Everything measured at one size.
struct SizeResult {
    profiles: usize,
    document_bytes: usize,
    first: DeployTiming,
    repeats: Vec<DeployTiming>,
    compile: Vec<Duration>,
    load: Vec<Duration>,
    status: Vec<Duration>,
    sensor_check: Vec<Duration>,
    sensor_commit: Vec<Duration>,
    parse: Vec<Duration>,
    validate: Vec<Duration>,
    render: Vec<Duration>,
}

/// One deploy, from the request to the job reading `DEPLOYED`.
#[derive(Debug, Clone, Copy)]
struct DeployTiming {
    total: Duration,
    /// `Deployments::deploy`: compile from the database, validate, store the job.
    request: Duration,
    /// Job queued → started (a worker picked it up).
    pickup: Duration,
    /// Job started → finished: the job read back, the push over TLS, the sensor's
    /// check, write and apply, its answer.
    push: Duration,
}

async fn run(scratch: std::path::PathBuf) -> String {
    let pool = e2e::postgres::fresh_database().await;
    let key = EncryptionKey::generate().unwrap();
    let engine = Services::start(pool.clone(), key.clone(), "fmc-bench")
        .await
        .unwrap();
    let device = add_device(&pool).await;
    let seeded = seed_objects(&pool, &key, device.id).await;
    let device = engine
        .sensors
        .register_device(&admin(), &device, &RegistrationKey::new(KEY).unwrap())
        .await
        .unwrap();
    let template = {
        let mut conn = pool.acquire().await.unwrap();
        profiles::get(&mut *conn, GLOBAL_DOMAIN_ID, seeded.policy, seeded.profile)
            .await
            .unwrap()
    };
    std::fs::create_dir_all(&scratch).unwrap();
    let mut store = ConfigStore::open(&scratch).unwrap();
    let mut store_version = 0;

    let mut results = Vec::new();
    let mut profile_count = 1;
    for size in SIZES {
        add_profiles(&pool, seeded.policy, &template, profile_count, size).await;
        profile_count = size;
        let first = deploy_once(&engine, &pool, device.id).await;
        let mut repeats = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            repeats.push(deploy_once(&engine, &pool, device.id).await);
        }

        let mut result = SizeResult {
            profiles: size,
            document_bytes: 0,
            first,
            repeats,
            compile: Vec::new(),
            load: Vec::new(),
            status: Vec::new(),
            sensor_check: Vec::new(),
            sensor_commit: Vec::new(),
            parse: Vec::new(),
            validate: Vec::new(),
            render: Vec::new(),
        };
        for _ in 0..REPEATS {
            let now = OffsetDateTime::now_utc();
            let started = Instant::now();
            device_policy::load(&pool, GLOBAL_DOMAIN_ID, device.id, &key)
                .await
                .unwrap()
                .unwrap();
            result.load.push(started.elapsed());

            let started = Instant::now();
            let mut config = compile(
                &pool,
                &key,
                GLOBAL_DOMAIN_ID,
                device.id,
                &device.name,
                1,
                now,
            )
            .await
            .unwrap();
            result.compile.push(started.elapsed());
            assert_eq!(config.connection_profiles.len(), size);

            let started = Instant::now();
            engine.sensors.status(&device).await.unwrap();
            result.status.push(started.elapsed());

            // The sensor's own work, in this process on the same disk.
            store_version += 1;
            config.version = store_version;
            let document = config.to_json();
            result.document_bytes = document.len();
            let started = Instant::now();
            let checked = store.check(&document, Some(device.id), now).unwrap();
            result.sensor_check.push(started.elapsed());
            let started = Instant::now();
            store.commit(checked).unwrap();
            result.sensor_commit.push(started.elapsed());

            let started = Instant::now();
            let parsed = DeviceConfig::from_json(&document).unwrap();
            result.parse.push(started.elapsed());
            let started = Instant::now();
            parsed.validate(now).unwrap();
            result.validate.push(started.elapsed());
            let started = Instant::now();
            std::hint::black_box(running_config(&parsed));
            result.render.push(started.elapsed());
        }
        results.push(result);
    }
    report(&results)
}

async fn deploy_once(engine: &Services, pool: &PgPool, device_id: Uuid) -> DeployTiming {
    let started = Instant::now();
    let deployment = engine
        .deployments
        .deploy(&admin(), GLOBAL_DOMAIN_ID, &[device_id], "benchmark")
        .await
        .unwrap();
    let request = started.elapsed();
    let job_id = deployment.jobs[0].id;
    let deadline = started + Duration::from_secs(120);
    let job: DeploymentJob = loop {
        let job = deployments::get_job(pool, GLOBAL_DOMAIN_ID, job_id)
            .await
            .unwrap();
        match job.status {
            JobStatus::Deployed => break job,
            JobStatus::Failed | JobStatus::Aborted => {
                panic!("deploy failed: {:?}", job.error)
            }
            JobStatus::Queued | JobStatus::Deploying => {}
        }
        assert!(Instant::now() < deadline, "the deploy never finished");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let total = started.elapsed();
    let (Some(started_at), Some(finished_at)) = (job.started_at, job.finished_at) else {
        panic!("a deployed job without its timestamps: {job:?}");
    };
    DeployTiming {
        total,
        request,
        pickup: (started_at - job.queued_at).unsigned_abs(),
        push: (finished_at - started_at).unsigned_abs(),
    }
}

fn admin() -> Actor {
    Actor::administrator("admin", Uuid::new_v4(), None)
}

async fn add_device(pool: &PgPool) -> Device {
    let mut conn = pool.acquire().await.unwrap();
    devices::create(
        &mut conn,
        &admin(),
        GLOBAL_DOMAIN_ID,
        &DeviceInput {
            name: "FTD-bench".to_owned(),
            description: String::new(),
            host_name: format!("127.0.0.1:{MANAGEMENT_PORT}"),
            nat_id: None,
        },
    )
    .await
    .unwrap()
}

/// The seed scenario (one MCA profile) with generated certificates.
async fn seed_objects(pool: &PgPool, key: &EncryptionKey, device: Uuid) -> e2e::seed::SeedObjects {
    let machine_ca = TestCa::root("ftd-machine-ca").unwrap();
    let user_ca = TestCa::root("ftd-user-ca").unwrap();
    let server_ca = TestCa::root("Headend CA").unwrap();
    let leaf = server_ca
        .issue(&LeafOptions {
            eku: vec![TestEku::ServerAuth],
            ..LeafOptions::client("vpn.example.com")
        })
        .unwrap();
    let chain = format!("{}{}", leaf.cert_pem, server_ca.cert.cert_pem);
    let inputs = e2e::seed::SeedInputs {
        machine_ca_pem: &machine_ca.cert.cert_pem,
        user_ca_pem: &user_ca.cert.cert_pem,
        identity_chain_pem: &chain,
        identity_key_pem: &leaf.key_pem,
        ssl_port: 8443,
        split_include: Vec::new(),
        devices: vec![device],
    };
    e2e::seed::create(pool, key, &inputs).await
}

/// Profiles `from + 1 ..= to`, copies of the seed's MCA profile under their own name
/// and alias (same group policy, pool and trustpoints).
async fn add_profiles(
    pool: &PgPool,
    policy: Uuid,
    template: &profiles::ConnectionProfile,
    from: usize,
    to: usize,
) {
    let mut conn = pool.acquire().await.unwrap();
    for n in from + 1..=to {
        profiles::create(
            &mut conn,
            &admin(),
            GLOBAL_DOMAIN_ID,
            policy,
            &ConnectionProfileInput {
                name: format!("RA-VPN-Profile-{n:04}"),
                description: String::new(),
                group_policy_id: template.group_policy.id,
                ipv4_pool_ids: template.ipv4_pools.iter().map(|r| r.id).collect(),
                ipv6_pool_ids: Vec::new(),
                trustpoint_ids: template.trustpoints.iter().map(|r| r.id).collect(),
                machine_trustpoint_ids: template.machine_trustpoints.iter().map(|r| r.id).collect(),
                user_trustpoint_ids: template.user_trustpoints.iter().map(|r| r.id).collect(),
                aaa: template.aaa.clone(),
                group_aliases: vec![GroupAlias {
                    name: format!("RAVPN-{n:04}"),
                    enabled: true,
                }],
                group_urls: Vec::new(),
            },
        )
        .await
        .unwrap();
    }
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

fn spread(samples: &[Duration]) -> String {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    format!(
        "{} ({}–{})",
        ms(sorted[sorted.len() / 2]),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1])
    )
}

fn report(results: &[SizeResult]) -> String {
    let mut out = String::new();
    let total = |r: &SizeResult| median(&r.repeats.iter().map(|t| t.total).collect::<Vec<_>>());
    let base = results.first().map(total).unwrap_or_default();
    writeln!(
        out,
        "### End to end (manager request → job DEPLOYED, sensor applied)\n"
    )
    .unwrap();
    writeln!(
        out,
        "Median of {REPEATS} re-deploys (min–max), milliseconds; \"first\" is the deploy that \
         changed the configuration to this size (one sample).\n"
    )
    .unwrap();
    writeln!(
        out,
        "| profiles | document | first deploy | re-deploy total | × 1 profile | request (compile + queue) | worker pickup | push + sensor apply |"
    )
    .unwrap();
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for r in results {
        let pick = |f: fn(&DeployTiming) -> Duration| -> Vec<Duration> {
            r.repeats.iter().map(f).collect()
        };
        writeln!(
            out,
            "| {} | {:.1} KiB | {} | {} | {:.1} | {} | {} | {} |",
            r.profiles,
            r.document_bytes as f64 / 1024.0,
            ms(r.first.total),
            spread(&pick(|t| t.total)),
            total(r).as_secs_f64() / base.as_secs_f64().max(f64::EPSILON),
            spread(&pick(|t| t.request)),
            spread(&pick(|t| t.pickup)),
            spread(&pick(|t| t.push)),
        )
        .unwrap();
    }
    if let Some(largest) = results.last() {
        let pick = |f: fn(&DeployTiming) -> Duration| {
            median(&largest.repeats.iter().map(f).collect::<Vec<_>>())
        };
        let parts = [
            (
                "the request (compile from the database + storing the job)",
                pick(|t| t.request),
            ),
            (
                "the worker pickup (rest of the job's transaction, start)",
                pick(|t| t.pickup),
            ),
            (
                "the push with the sensor's check, write and apply",
                pick(|t| t.push),
            ),
        ];
        let (largest_part, largest_time) = parts
            .iter()
            .max_by_key(|(_, time)| *time)
            .map(|(name, time)| (*name, *time))
            .unwrap_or(("nothing", Duration::ZERO));
        let verdict = if total(largest) < Duration::from_secs(1) {
            "met"
        } else {
            "missed"
        };
        writeln!(
            out,
            "\nTarget \"{} profiles deployed and applied in under 1 s\": **{verdict}** (median {} ms, \
             first deploy {} ms). Largest part: {largest_part}, {} ms.",
            largest.profiles,
            ms(total(largest)),
            ms(largest.first.total),
            ms(largest_time),
        )
        .unwrap();
    }
    writeln!(out, "\n### The parts, timed alone at the same size\n").unwrap();
    writeln!(
        out,
        "Median of {REPEATS} (min–max), milliseconds. Manager: `device_policy::load` (the \
         database snapshot) and `deploy::compile` (load + DeviceConfig + validate); the TLS \
         baseline is a status request over the same mutual-TLS channel (new connection, as \
         each deploy push makes). Sensor: `ConfigStore::check` (parse + validate + warnings) \
         and `ConfigStore::commit` (serialise, history copy and running.json each written \
         atomically with fsync, CLI transcript), and inside check the vpn-core steps.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| profiles | DB load | compile | TLS status round trip | sensor check | sensor commit | parse JSON | validate | render CLI |"
    )
    .unwrap();
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|").unwrap();
    for r in results {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.profiles,
            spread(&r.load),
            spread(&r.compile),
            spread(&r.status),
            spread(&r.sensor_check),
            spread(&r.sensor_commit),
            spread(&r.parse),
            spread(&r.validate),
            spread(&r.render),
        )
        .unwrap();
    }
    out
}
