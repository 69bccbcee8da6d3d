//! `bench-lab`: the network benchmark of our sensor-agent against ocserv, side by side.
//!
//! For each server it builds a fresh three-namespace topology (see [`lab`]), starts the
//! server, and measures with openconnect from the client namespace: iperf3 throughput
//! through the tunnel (CSTP/TLS and DTLS, both directions) with the server's CPU, logins
//! per second (sequential and in parallel), connect-to-tunnel-up latency and the memory
//! of held idle sessions. The bare veth throughput (no VPN) is the ceiling. Results go
//! to a markdown file. Everything it starts is stopped, and the namespaces deleted, on
//! exit and on Ctrl-C / SIGTERM.

mod lab;
mod measure;
mod report;
mod servers;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::lab::{Topology, check_interrupted, pause};
use crate::measure::{Client, Sampled, Transport, iperf, start_iperf_server};
use crate::report::{Report, ServerResults};
use crate::servers::{Credentials, Kind, Server, sensor_config};

#[derive(Debug, Parser)]
#[command(about = "Network benchmarks: sensor-agent vs ocserv in network namespaces (root)")]
struct Cli {
    /// The sensor-agent binary (a release build).
    #[arg(long)]
    agent: PathBuf,
    /// Where the markdown results go.
    #[arg(long, default_value = "bench/results/network.md")]
    out: PathBuf,
    /// Shorter runs and fewer sessions: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Keep the work directory (configurations, certificates, logs) for inspection.
    #[arg(long)]
    keep_work_dir: bool,
    /// The suites to run (all by default).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Suite::ALL)]
    suites: Vec<Suite>,
}

/// The measurements, each for both servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// iperf3 through the tunnel (and over the bare veth).
    Throughput,
    /// Connect-to-tunnel-up latency.
    Connect,
    /// `openconnect --authenticate`, sequential and in parallel.
    Logins,
    /// Held idle sessions and their memory.
    Held,
}

impl Suite {
    const ALL: [Self; 4] = [Self::Throughput, Self::Connect, Self::Logins, Self::Held];
}

/// How much of everything a run does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) iperf_seconds: u32,
    pub(crate) sequential_logins: usize,
    pub(crate) parallel_logins: usize,
    pub(crate) parallelism: usize,
    pub(crate) connects: usize,
    pub(crate) held_sessions: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                iperf_seconds: 3,
                sequential_logins: 10,
                parallel_logins: 40,
                parallelism: 8,
                connects: 5,
                held_sessions: 100,
            }
        } else {
            Self {
                iperf_seconds: 10,
                sequential_logins: 50,
                parallel_logins: 200,
                parallelism: 8,
                connects: 20,
                held_sessions: 1000,
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    lab::catch_interrupts()?;
    let agent = std::fs::canonicalize(&cli.agent)
        .with_context(|| format!("no sensor-agent binary at {}", cli.agent.display()))?;
    let plan = Plan::new(cli.quick);
    let work = tempfile::Builder::new().prefix("bench-lab-").tempdir()?;
    let ticks = lab::ticks_per_second()?;
    let credentials = Credentials::generate(work.path())?;
    let mut report = Report::new(plan, cli.quick);
    let bench = Bench {
        agent: &agent,
        credentials: &credentials,
        plan,
        ticks,
        suites: &cli.suites,
    };
    let mut failed = false;
    for kind in [Kind::Ours, Kind::Ocserv] {
        check_interrupted()?;
        let dir = work.path().join(kind.label());
        std::fs::create_dir_all(&dir)?;
        let mut results = ServerResults::new(kind);
        // A failed suite ends this server's run; what it measured so far is reported.
        if let Err(e) = bench_server(&bench, &mut results, &dir, &mut report) {
            check_interrupted()?;
            let error = format!("{e:#}");
            eprintln!("bench-lab: [{}] failed: {error}", kind.label());
            results.error = Some(error);
            failed = true;
        }
        report.servers.push(results);
    }
    if let Some(parent) = cli.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&cli.out, report.markdown())
        .with_context(|| format!("cannot write {}", cli.out.display()))?;
    eprintln!("bench-lab: results in {}", cli.out.display());
    if cli.keep_work_dir || failed {
        let kept = work.keep();
        eprintln!("bench-lab: work directory kept at {}", kept.display());
    }
    if failed {
        anyhow::bail!("a server's run failed (see {})", cli.out.display());
    }
    Ok(())
}

fn progress(kind: Kind, what: &str) {
    eprintln!("bench-lab: [{}] {what}", kind.label());
}

/// What every server's run shares.
struct Bench<'a> {
    agent: &'a std::path::Path,
    credentials: &'a Credentials,
    plan: Plan,
    ticks: u64,
    suites: &'a [Suite],
}

fn bench_server(
    bench: &Bench<'_>,
    results: &mut ServerResults,
    dir: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let kind = results.kind;
    let Bench {
        agent,
        credentials,
        plan,
        ticks,
        suites,
    } = *bench;
    let topology = Topology::create()?;
    let _iperf_server = start_iperf_server(&topology, dir)?;
    if suites.contains(&Suite::Throughput) && report.bare.is_empty() {
        progress(kind, "bare veth throughput (no VPN)");
        topology.bare_route(true)?;
        for reverse in [false, true] {
            report
                .bare
                .push(iperf(&topology, None, plan.iperf_seconds, reverse)?);
        }
        topology.bare_route(false)?;
    }
    progress(kind, "starting the server");
    let server = match kind {
        Kind::Ours => {
            let config = sensor_config(credentials)?;
            Server::start_ours(&topology, agent, &config, dir)?
        }
        Kind::Ocserv => Server::start_ocserv(&topology, credentials, dir)?,
    };
    let client = Client {
        topology: &topology,
        credentials,
        server: &server,
        dir: dir.to_owned(),
        ticks_per_second: ticks,
    };
    results.command.clone_from(&server.command);
    results.commands.push((
        "tunnel (CSTP/TLS)".to_owned(),
        client.shown(&client.tunnel_args("bt0", Transport::Tls)?),
    ));
    results.commands.push((
        "tunnel (DTLS)".to_owned(),
        client.shown(&client.tunnel_args("bt0", Transport::Dtls)?),
    ));
    results
        .commands
        .push(("login".to_owned(), client.shown(&["--authenticate".into()])));
    results.commands.push((
        "held session".to_owned(),
        client.shown(&client.held_args()?.0),
    ));

    for transport in [Transport::Tls, Transport::Dtls] {
        if !suites.contains(&Suite::Throughput) {
            break;
        }
        progress(kind, &format!("throughput over {}", transport.label()));
        let tunnel = client.connect_tunnel("bt0", transport)?;
        // DTLS comes up right after the tunnel is configured; give it a moment.
        pause(std::time::Duration::from_millis(500))?;
        let mtu = tunnel.configured_mtu().unwrap_or_default();
        let dtls = tunnel.dtls_connected();
        let mut runs = Vec::new();
        for reverse in [false, true] {
            let sampled = Sampled {
                server: server.process.pid(),
                client: tunnel.process.pid(),
                ticks_per_second: ticks,
            };
            runs.push(iperf(
                &topology,
                Some(&sampled),
                plan.iperf_seconds,
                reverse,
            )?);
        }
        tunnel.close();
        results.throughput.push((transport, mtu, dtls, runs));
    }

    for transport in [Transport::Tls, Transport::Dtls] {
        if !suites.contains(&Suite::Connect) {
            break;
        }
        progress(
            kind,
            &format!("connect-to-tunnel-up latency over {}", transport.label()),
        );
        results
            .connect
            .push((transport, client.connect_latency(plan.connects, transport)?));
    }

    if suites.contains(&Suite::Logins) {
        progress(kind, "logins, sequential");
        results.sequential_logins = client.logins(plan.sequential_logins, 1)?;
        progress(kind, "logins, in parallel");
        results.parallel_logins = client.logins(plan.parallel_logins, plan.parallelism)?;
    }

    if suites.contains(&Suite::Held) {
        progress(kind, &format!("{} held sessions", plan.held_sessions));
        results.held = client.held_sessions(plan.held_sessions)?;
    }
    Ok(())
}
