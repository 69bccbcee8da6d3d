//! `mgmt-server`: the management center (FMC-shaped REST API and web UI over HTTPS,
//! PostgreSQL, deploy engine).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mgmt_server::deploy::WorkerSettings;
use mgmt_server::server::{ManagementCenter, ServerSettings};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Operation,
}

#[derive(Debug, Subcommand)]
enum Operation {
    /// Run the management center.
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Where the private PostgreSQL cluster, the secret key and `ca.pem` live.
    #[arg(
        long,
        env = "MGMT_SERVER_DATA_DIR",
        default_value = "/var/lib/mgmt-server"
    )]
    data_dir: PathBuf,
    /// HTTPS address (web UI and REST API).
    #[arg(long, env = "MGMT_SERVER_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// An external PostgreSQL, as the application role; without it a private cluster
    /// runs under the data directory.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// With --database-url: the role that owns the schema and runs the migrations
    /// (the application role then gets only what it needs).
    #[arg(long, env = "DATABASE_OWNER_URL", requires = "database_url")]
    database_owner_url: Option<String>,
    /// Start even if --database-url connects as a PostgreSQL superuser.
    #[arg(long, env = "MGMT_SERVER_ALLOW_SUPERUSER")]
    allow_superuser: bool,
    /// The key that encrypts private keys in the database (every replica on one
    /// database needs the same file); default DATA_DIR/secret.key, made on first start.
    #[arg(long, env = "MGMT_SERVER_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// The manager's name, as sensors and administrators see it.
    #[arg(long, env = "MGMT_SERVER_NAME")]
    name: Option<String>,
    /// Host names and addresses the HTTPS certificate must name (repeatable); the
    /// host name, localhost and 127.0.0.1 are always included.
    #[arg(long = "server-name", env = "MGMT_SERVER_NAMES", value_delimiter = ',')]
    server_names: Vec<String>,
    /// Creates this administrator at start when none exists yet; the password comes
    /// from MGMT_SERVER_INITIAL_ADMIN_PASSWORD. Without it the web UI asks on first use.
    #[arg(long, env = "MGMT_SERVER_INITIAL_ADMIN")]
    initial_admin: Option<String>,
    /// Seconds a deploy job stays claimed by this replica without renewal; a job whose
    /// replica died is taken over by another after this long.
    #[arg(long, env = "MGMT_SERVER_DEPLOY_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=3600))]
    deploy_lease_secs: u64,
    /// Seconds between looks at the deploy queue when no notification arrives (a
    /// safety net: new jobs wake the workers through PostgreSQL LISTEN/NOTIFY).
    #[arg(long, env = "MGMT_SERVER_DEPLOY_POLL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    deploy_poll_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .fmt_fields(mgmt_server::log_format::escaping_fields())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Operation::Run(args) => run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mgmt-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "mgmt-server".to_owned());
    let mut server_names = args.server_names.clone();
    for name in [
        hostname.clone(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        if !server_names.contains(&name) {
            server_names.push(name);
        }
    }
    if !args.listen.ip().is_unspecified() {
        server_names.push(args.listen.ip().to_string());
    }
    let initial_admin = match &args.initial_admin {
        Some(name) => {
            let password = std::env::var("MGMT_SERVER_INITIAL_ADMIN_PASSWORD").context(
                "--initial-admin needs the password in MGMT_SERVER_INITIAL_ADMIN_PASSWORD",
            )?;
            Some((name.clone(), password))
        }
        None => None,
    };
    let settings = ServerSettings {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        manager_name: args.name.clone().unwrap_or(hostname),
        server_names,
        initial_admin,
        database_owner_url: args.database_owner_url.clone(),
        allow_superuser: args.allow_superuser,
        secret_key_file: args.secret_key_file.clone(),
        workers: WorkerSettings {
            lease: Duration::from_secs(args.deploy_lease_secs),
            poll: Duration::from_secs(args.deploy_poll_secs),
            ..WorkerSettings::for_this_process()
        },
    };
    let center = ManagementCenter::start(&settings)
        .await
        .context("cannot start the management center")?;
    let ca_path = args.data_dir.join("ca.pem");
    std::fs::write(&ca_path, center.ca_certificate_pem())
        .with_context(|| format!("cannot write {}", ca_path.display()))?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(address = %args.listen, ca = %ca_path.display(), "management center listening (HTTPS)");
    let router = mgmt_server::app::router(&center);
    let served = tokio::select! {
        served = center.serve(listener, router) => served.context("HTTPS server"),
        signal = shutdown_signal() => signal,
    };
    tracing::info!("shutting down");
    center.stop().await;
    served
}

/// Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
