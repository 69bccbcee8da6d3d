//! `sensor-agent`: runs the sensor (`run`) or talks to the running one (`show ...`,
//! `vpn-sessiondb logoff ...`).

use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::{Ipv4Net, Ipv6Net};
use sensor_agent::cli::{confirmation_prompt, is_confirmation, parse_words};
use sensor_agent::config_file::read_config_bytes;
use sensor_agent::config_store::{
    ConfigStore, DEFAULT_DATA_DIR, Deployer, LiveServices, is_nothing_applied, nothing_applied,
};
use sensor_agent::control::{self, ControlContext, DEFAULT_CONTROL_SOCKET};
use sensor_agent::dataplane::{
    DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_NAME, DEFAULT_TUN_QUEUE, Dataplane, Router, TunSettings,
};
use sensor_agent::headend::HeadendSettings;
use sensor_agent::manager::{AgentHandles, DEFAULT_MANAGEMENT_LISTEN, ManagerChannel};
use sensor_agent::services::{ServiceParts, Services, TunDevice};
use sensor_agent::sessions::{SessionDb, SessionDbSettings};
use time::OffsetDateTime;
use vpn_core::config::DeviceConfig;
use vpn_core::pool::PoolSet;

#[derive(Debug, Parser)]
#[command(version, about, infer_subcommands = true)]
struct Cli {
    /// The agent's control socket.
    #[arg(long, env = "SENSOR_AGENT_CONTROL_SOCKET", default_value = DEFAULT_CONTROL_SOCKET, global = true)]
    control_socket: PathBuf,
    #[command(subcommand)]
    command: Operation,
}

#[derive(Debug, Subcommand)]
enum Operation {
    /// Run the sensor: AnyConnect headend, data plane and control socket (needs root / CAP_NET_ADMIN).
    Run(RunArgs),
    /// `show running-config [section [name]]`, `show vpn-sessiondb [summary | [detail] anyconnect [filter ...]]`.
    Show {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// `vpn-sessiondb logoff name|ipaddress|tunnel-group|index X | anyconnect | all [noconfirm]`.
    #[command(name = "vpn-sessiondb")]
    VpnSessionDb {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
    /// `configure apply FILE`: deploy a configuration file to the running agent.
    #[command(subcommand)]
    Configure(ConfigureOperation),
}

#[derive(Debug, Subcommand)]
enum ConfigureOperation {
    /// Apply FILE (read by the agent) as a deploy: checked, written, sessions reconciled.
    Apply { file: PathBuf },
    /// `configure manager add <host[:port]> <registration-key> [<nat-id>]`, `configure manager delete`.
    #[command(subcommand)]
    Manager(ManagerOperation),
}

#[derive(Debug, Subcommand)]
enum ManagerOperation {
    /// Names the manager allowed to register this sensor (an address, a host name, or
    /// DONTRESOLVE with a NAT ID), with the one-time registration key typed on both sides.
    Add {
        host: String,
        registration_key: String,
        nat_id: Option<String>,
    },
    /// Forgets the manager (pending or registered); the running configuration stays.
    Delete,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Where the applied configuration and its history are kept; the agent starts with
    /// the last applied one, or with none (no headend) until a deploy brings one.
    #[arg(long, env = "SENSOR_AGENT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A device configuration (JSON) to apply at start (labs): it goes through the same
    /// checks as a deploy and must be newer than the running one unless identical.
    #[arg(long, env = "SENSOR_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Name of the TUN device.
    #[arg(long, env = "SENSOR_AGENT_TUN_NAME", default_value = DEFAULT_TUN_NAME)]
    tun_name: String,
    /// The headend's own IPv4 address on the TUN device, e.g. 10.77.0.1/24 (optional).
    #[arg(long, env = "SENSOR_AGENT_TUN_IPV4")]
    tun_ipv4: Option<Ipv4Net>,
    /// The headend's own IPv6 address on the TUN device (optional).
    #[arg(long, env = "SENSOR_AGENT_TUN_IPV6")]
    tun_ipv6: Option<Ipv6Net>,
    /// The headend's public IPv4 address, part of every audit session id.
    #[arg(long, env = "SENSOR_AGENT_HEADEND_ADDRESS", default_value_t = Ipv4Addr::UNSPECIFIED)]
    headend_address: Ipv4Addr,
    /// Most concurrent sessions.
    #[arg(long, env = "SENSOR_AGENT_DEVICE_CAPACITY", default_value_t = 250)]
    device_capacity: u32,
    /// Seconds a session whose client lost its connection waits for it to reconnect.
    #[arg(
        long,
        env = "SENSOR_AGENT_DISCONNECTED_TIMEOUT",
        default_value_t = 1800
    )]
    disconnected_timeout_secs: u32,
    /// Address and port of the management API the manager calls (TLS 1.3).
    #[arg(long, env = "SENSOR_AGENT_MANAGEMENT_LISTEN", default_value = DEFAULT_MANAGEMENT_LISTEN)]
    management_listen: SocketAddr,
    /// Address the AnyConnect headend listens on (port: `headend.ssl_port` of the config).
    #[arg(long, env = "SENSOR_AGENT_LISTEN", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    listen: IpAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Operation::Run(args) => run(&cli.control_socket, args),
        Operation::Show { words } if words == ["managers"] => {
            local_request(&cli.control_socket, control::LocalRequest::ShowManagers)
        }
        Operation::Show { words } => operator_command(&cli.control_socket, "show", words),
        Operation::VpnSessionDb { words } => {
            operator_command(&cli.control_socket, "vpn-sessiondb", words)
        }
        Operation::Configure(ConfigureOperation::Apply { file }) => {
            configure_apply(&cli.control_socket, &file)
        }
        Operation::Configure(ConfigureOperation::Manager(ManagerOperation::Add {
            host,
            registration_key,
            nat_id,
        })) => local_request(
            &cli.control_socket,
            control::LocalRequest::ConfigureManagerAdd {
                address: host,
                registration_key,
                nat_id,
            },
        ),
        Operation::Configure(ConfigureOperation::Manager(ManagerOperation::Delete)) => {
            local_request(
                &cli.control_socket,
                control::LocalRequest::ConfigureManagerDelete,
            )
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sensor-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sends one operator command to the running agent and prints its answer.
fn operator_command(socket: &Path, first: &str, rest: Vec<String>) -> anyhow::Result<ExitCode> {
    let mut words = vec![first.to_owned()];
    words.extend(rest);
    let command = match parse_words(&words) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Some(prompt) = confirmation_prompt(&command) {
        let mut stderr = std::io::stderr();
        write!(stderr, "{prompt}")?;
        stderr.flush()?;
        let mut answer = String::new();
        let read = std::io::stdin().lock().read_line(&mut answer)?;
        if read == 0 || !is_confirmation(&answer) {
            return Ok(ExitCode::FAILURE);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(control::send_command(socket, &command))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(answer.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Asks the running agent to apply `file`; prints its transcript or its refusal.
fn configure_apply(socket: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let path =
        std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    local_request(socket, control::LocalRequest::ConfigureApply { path })
}

/// Sends a request that is not an FTD show/logoff command; prints the answer or the refusal.
fn local_request(socket: &Path, request: control::LocalRequest) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(control::send_local_request(socket, &request)) {
        Ok(answer) => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(answer.as_bytes())?;
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(control::ControlError::Refused(reason)) => {
            eprintln!("ERROR: {reason}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

fn run(socket: &Path, args: RunArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(socket, args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(socket: &Path, args: RunArgs) -> anyhow::Result<()> {
    // Before anything is bound: a SIGINT/SIGTERM that comes as soon as the control
    // socket appears must stop the agent cleanly, not kill it.
    let shutdown = ShutdownSignals::install()?;
    let (store, config) = startup_config(&args)?;
    let pools = PoolSet::from_device_config(&config).context("address pools")?;
    let sessions = SessionDb::new(
        pools,
        SessionDbSettings {
            headend_address: args.headend_address,
            device_capacity: args.device_capacity,
            disconnected_timeout: time::Duration::seconds(i64::from(
                args.disconnected_timeout_secs,
            )),
            ..SessionDbSettings::default()
        },
    );
    let tun = TunSettings::for_config(&config, args.tun_name, args.tun_ipv4, args.tun_ipv6);
    let (router, queue) = Router::new(DEFAULT_DOWNLINK_QUEUE, DEFAULT_TUN_QUEUE);
    let dataplane = Dataplane::start(&tun, Arc::clone(&router), queue)?;
    let device_name = dataplane.device_name().to_owned();
    let nothing_applied = is_nothing_applied(&config);
    let (config_updates, config) = tokio::sync::watch::channel(config);
    let services = Services::new(
        ServiceParts {
            config: config.clone(),
            sessions: sessions.clone(),
            router,
            headend: HeadendSettings {
                disconnected_timeout_secs: args.disconnected_timeout_secs,
            },
            listen: args.listen,
            runtime: tokio::runtime::Handle::current(),
        },
        Some(TunDevice {
            dataplane,
            started_with: tun,
        }),
    );
    let running = Arc::clone(&config.borrow());
    services
        .start(&running)
        .context("cannot start the headend with the running configuration")?;
    if nothing_applied {
        tracing::info!(
            "no configuration has been applied; waiting for one from the manager (or `sensor-agent configure apply FILE`)"
        );
    } else if services.headend_address().is_none() {
        tracing::warn!("the configuration has no identity certificate; the headend is not started");
    }
    // Deploys (manager push, local apply) go through here; kept for the agent's life.
    let deployer = Arc::new(
        Deployer::new(store, config_updates, sessions.clone())
            .with_services(Arc::clone(&services) as Arc<dyn LiveServices>),
    );
    let manager = ManagerChannel::open(
        &args.data_dir,
        &hostname(),
        AgentHandles {
            deployer: Arc::clone(&deployer),
            sessions: sessions.clone(),
            config: config.clone(),
        },
        OffsetDateTime::now_utc(),
    )
    .context("management channel")?;
    let management = tokio::net::TcpListener::bind(args.management_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.management_listen))?;
    tracing::info!(address = %args.management_listen, registered = manager.device_id().is_some(), "management API listening");
    let management_task = tokio::spawn(Arc::clone(&manager).serve(management));
    let server = control::bind_control_socket(socket).await?;
    tracing::info!(socket = %server.path().display(), device = %device_name, "sensor-agent running");
    let context = ControlContext {
        config,
        sessions: sessions.clone(),
        deployer: Some(deployer),
        manager: Some(manager),
    };
    let control_task = tokio::spawn(server.serve(context));
    let housekeeping = tokio::spawn(housekeeping(sessions));
    shutdown.wait().await;
    tracing::info!("shutting down");
    // Aborting the control task drops the server, which removes the socket file.
    control_task.abort();
    management_task.abort();
    housekeeping.abort();
    services.stop_accepting();
    let _ = control_task.await;
    Ok(())
}

/// Opens the data directory, applies `--config` if given (skipped when identical to
/// the running configuration), and returns the store with the configuration to run:
/// the last applied one, or the [`nothing_applied`] placeholder.
fn startup_config(args: &RunArgs) -> anyhow::Result<(ConfigStore, Arc<DeviceConfig>)> {
    let mut store = ConfigStore::open(&args.data_dir)?;
    if let Some(path) = &args.config {
        let bytes = read_config_bytes(path)?;
        let offered_hash = DeviceConfig::from_json(&bytes)
            .ok()
            .map(|config| config.content_hash());
        let running_hash = store.running().map(|config| config.content_hash());
        if offered_hash.is_some() && offered_hash == running_hash {
            tracing::info!(config = %path.display(), "configuration already running");
        } else {
            let outcome = store
                .apply(&bytes, None, OffsetDateTime::now_utc())
                .with_context(|| format!("cannot apply {}", path.display()))?;
            for warning in &outcome.warnings {
                tracing::warn!(%warning, "configuration warning");
            }
            tracing::info!(version = outcome.version, hash = %outcome.hash, "configuration applied");
        }
    }
    let config = store
        .running()
        .map_or_else(|| Arc::new(nothing_applied()), Arc::clone);
    Ok((store, config))
}

/// This machine's host name (names the sensor to its manager).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "sensor".to_owned())
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment they are installed.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("catch SIGTERM")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Ends timed-out sessions once a second.
async fn housekeeping(sessions: SessionDb) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        sessions.expire(OffsetDateTime::now_utc());
    }
}
